//! `berth`: the one binary. Subcommands start the parts of Berth.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "berth", version, about = "A self-hosted container orchestrator that speaks the Amazon ECS API")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: the AWS-compatible API on one listener.
    Server(ServerArgs),
    /// Manage the host's image cache.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import an OCI-layout or `docker save` tarball (optionally gzipped)
    /// into the image cache, for hosts without a registry.
    Load(ImageLoadArgs),
}

#[derive(clap::Args)]
struct ImageLoadArgs {
    /// The archive to import.
    file: PathBuf,
    /// Also name the archive's (single) image this way, e.g. `127.0.0.1:5000/demo/busybox:1`.
    #[arg(long)]
    reference: Option<String>,
    /// The host's data dir; images live in `<data-dir>/images`.
    #[arg(long, default_value = "./berth-data")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to serve the AWS APIs on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Where the store and the root credentials live.
    #[arg(long, default_value = "./berth-data")]
    data_dir: PathBuf,
    /// The 12-digit account id (default: generated on first start and kept).
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = berth_server::front_door::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
}

/// Helper processes the agent starts. They are dispatched before anything
/// else runs: the shim forks and the init's signal mask is per thread, so
/// both must start single-threaded, before clap or a runtime exists.
fn dispatch_helper_process() -> Option<i32> {
    let mut args = std::env::args_os();
    let _program = args.next();
    match args.next()?.to_str()? {
        "shim" => Some(berth_runtime::shim::run(args.collect())),
        "init" => Some(berth_runtime::init::run(args.collect())),
        _ => None,
    }
}

fn main() -> anyhow::Result<()> {
    if let Some(code) = dispatch_helper_process() {
        std::process::exit(code);
    }
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Server(args) => runtime.block_on(run_server(args)),
        Command::Image(ImageCommand::Load(args)) => runtime.block_on(load_image(args)),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let mut overrides = berth_server::credentials::Overrides::from_env();
    if args.account_id.is_some() {
        overrides.account_id = args.account_id.clone();
    }
    let identity = berth_server::credentials::load_or_create(&args.data_dir, &overrides)?;
    let store_path = args.data_dir.join("berth.redb");
    let store = berth_store::redb_backend::RedbStore::open(&store_path)
        .with_context(|| format!("opening the store {}", store_path.display()))?;
    let store: Arc<dyn berth_store::Store> = Arc::new(store);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;

    announce(&identity, addr);
    let door = berth_server::FrontDoor::new(
        identity,
        berth_ecs::Ecs::new(store),
        Arc::new(berth_clock::SystemClock),
        args.max_body_bytes,
    );
    berth_server::serve(listener, Arc::new(door), shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Tell the operator where Berth listens and how to reach it. The secret is
/// printed only on the run that created it, and only to stdout, never to
/// the log.
fn announce(identity: &berth_server::AccountIdentity, addr: SocketAddr) {
    tracing::info!(%addr, account = %identity.account_id, access_key_id = %identity.root_access_key_id, "berth server listening");
    println!("berth server listening on http://{addr} (account {})", identity.account_id);
    if identity.newly_created {
        println!("Root credentials were created and saved (mode 0600) in {}.", identity.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        println!("To use them:");
        println!("  export AWS_ENDPOINT_URL=http://{addr} AWS_DEFAULT_REGION=us-east-1");
        println!("  export AWS_ACCESS_KEY_ID={}", identity.root_access_key_id);
        println!("  export AWS_SECRET_ACCESS_KEY={}", identity.root_secret_access_key.expose());
    } else if let Some(file) = &identity.file {
        println!("Root credentials: {}", file.display());
    }
    // Tests and scripts wait for this line to learn the port.
    println!("ready {addr}");
}

async fn load_image(args: ImageLoadArgs) -> anyhow::Result<()> {
    let reference = args
        .reference
        .as_deref()
        .map(berth_image::ImageReference::parse)
        .transpose()
        .context("parsing --reference")?;
    let store = berth_image::ContentStore::open(args.data_dir.join("images"))?;
    let registry = berth_image::RegistryClient::new(berth_image::RegistryConfig::default())?;
    let service = berth_image::ImageService::new(store, registry);
    let loaded = service
        .load(&args.file, reference.as_ref())
        .await
        .with_context(|| format!("loading {}", args.file.display()))?;
    for image in loaded {
        let names: Vec<String> = image.references.iter().map(ToString::to_string).collect();
        println!("Loaded {} ({})", if names.is_empty() { "<unnamed>".to_string() } else { names.join(", ") }, image.manifest_digest);
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
