//! `berth`: the one binary. Subcommands start the parts of Berth.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

mod lb;

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
    /// Run a host agent: register this machine with a cluster and run the
    /// tasks the server places on it as containers.
    Agent(AgentArgs),
    /// Server and agent in one process, with this host registered in the
    /// cluster `default`: a complete single-machine Berth.
    Up(UpArgs),
    /// Print a task's container output (stdout and stderr) on this host.
    Logs(LogsArgs),
    /// Manage the host's image cache.
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(clap::Args)]
struct HostAgentArgs {
    /// The region the agent's requests are signed for.
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// The `ecs.instance-type` attribute this host reports.
    #[arg(long, default_value = "berth.host")]
    instance_type: String,
    /// The `ecs.availability-zone` attribute (default: the region + "a").
    #[arg(long)]
    availability_zone: Option<String>,
    /// MiB of memory kept for the host itself (ECS_RESERVED_MEMORY).
    #[arg(long, default_value_t = 0)]
    reserved_memory: u64,
    /// Custom attributes, `name=value` (repeatable).
    #[arg(long = "attribute", value_parser = parse_key_value)]
    attributes: Vec<(String, String)>,
    /// `LO-HI`: the host ports given to `hostPort` 0 port mappings on this
    /// host (registered as the `berth.dynamic-host-port-range` attribute;
    /// default: the server's range, 49153-65535). Give agents that share
    /// one network namespace disjoint ranges.
    #[arg(long, env = "ECS_DYNAMIC_HOST_PORT_RANGE", value_name = "LO-HI",
        value_parser = berth_agent::host::parse_dynamic_host_port_range)]
    dynamic_host_port_range: Option<(u16, u16)>,
    /// Image pull behaviour: default, always, once or prefer-cached
    /// (ECS_IMAGE_PULL_BEHAVIOR).
    #[arg(long, default_value = "default")]
    pull_policy: String,
    /// Registries spoken to over plain HTTP besides loopback ones (repeatable).
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// JSON file `{"host:port": {"username": "...", "password": "..."}}` with
    /// registry credentials (ECS_ENGINE_AUTH_DATA's docker format).
    #[arg(long, env = "BERTH_REGISTRY_AUTH_FILE")]
    registry_auth: Option<PathBuf>,
    /// The bridge tasks attach to, and its subnet.
    #[arg(long, default_value = "berth0")]
    bridge: String,
    #[arg(long, default_value = "172.29.0.0/16")]
    bridge_subnet: String,
    /// The OCI runtime binary.
    #[arg(long, default_value = "runc")]
    runc: PathBuf,
    /// Top-level cgroup of every task on this host.
    #[arg(long, default_value = "berth")]
    cgroup_prefix: String,
    /// Seconds a stopped task's containers and logs are kept
    /// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
    #[arg(long, default_value_t = 3 * 3600)]
    task_cleanup_wait: u64,
    /// The port on 127.0.0.1 where the agent serves tasks their role
    /// credentials and metadata (containers reach it at 169.254.170.2:80);
    /// 0 picks a free one, for several agents on one machine.
    #[arg(long, default_value_t = berth_agent::task_endpoint::DEFAULT_PORT)]
    task_endpoint_port: u16,
}

#[derive(clap::Args)]
struct AgentArgs {
    /// The cluster to join.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The Berth server, `http://host:port`.
    #[arg(long, env = "BERTH_ENDPOINT")]
    server: String,
    /// Where the image cache, task records and container state live.
    #[arg(long, default_value = "./berth-data", value_parser = absolute_path)]
    data_dir: PathBuf,
    /// The IPv4 address load balancers reach this host's published ports
    /// at (the `berth.host-address` attribute; default: the source address
    /// of the default route, else the first non-loopback address).
    #[arg(long)]
    advertise_address: Option<std::net::Ipv4Addr>,
    #[command(flatten)]
    host: HostAgentArgs,
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    host: HostAgentArgs,
}

#[derive(clap::Args)]
struct LogsArgs {
    /// The task's id or ARN.
    task: String,
    /// Only this container's output.
    #[arg(long)]
    container: Option<String>,
    /// Keep printing new output until the task stops.
    #[arg(long, short = 'f')]
    follow: bool,
    /// The data dir of the agent that runs the task.
    #[arg(long, default_value = "./berth-data", value_parser = absolute_path)]
    data_dir: PathBuf,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected name=value, got {s:?}"))
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
    #[arg(long, default_value = "./berth-data", value_parser = absolute_path)]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to serve the AWS APIs on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// Where the store and the root credentials live.
    #[arg(long, default_value = "./berth-data", value_parser = absolute_path)]
    data_dir: PathBuf,
    /// The 12-digit account id (default: generated on first start and kept).
    #[arg(long, env = "BERTH_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = berth_server::front_door::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Seconds an agent may stay silent before its host counts as lost:
    /// its service tasks are then stopped and replaced on other hosts
    /// (and stopped on the host if it comes back).
    #[arg(long, default_value_t = berth_ecs::container_instances::DISCONNECT_AFTER_SECS)]
    host_lost_after: u64,
    /// Address the load balancers' listeners bind (their ports come from
    /// the ELBv2 listeners).
    #[arg(long, default_value = "0.0.0.0")]
    lb_bind: std::net::IpAddr,
    /// Do not run the load balancer data plane in this process.
    #[arg(long)]
    no_lb: bool,
    /// Where HTTPS and TLS listeners find `NAME.pem` for the certificate
    /// `arn:aws:acm:...:certificate/NAME` (default: <data-dir>/certificates).
    #[arg(long)]
    lb_certificates: Option<PathBuf>,
    /// The master key that seals every secret Berth stores (access keys,
    /// instance credentials) and signs session tokens: 32 bytes, base64,
    /// created mode 0600 on first start (default: <data-dir>/master.key).
    /// Keep it off the disk that holds the store to make a stolen store
    /// useless. `BERTH_MASTER_KEY` (base64) overrides the file.
    #[arg(long, env = "BERTH_MASTER_KEY_FILE", value_parser = absolute_path)]
    master_key_file: Option<PathBuf>,
    /// JSON file `{"host:port": {"username": "...", "password": "..."}}`:
    /// private registries whose logins agents get through ECR's
    /// GetAuthorizationToken, signed with each task's execution role (so a
    /// role without `ecr:GetAuthorizationToken` cannot pull from them).
    #[arg(long, env = "BERTH_PRIVATE_REGISTRIES_FILE")]
    private_registries: Option<PathBuf>,
}

/// The server's private registry logins (`--private-registries`).
fn private_registries(args: &ServerArgs) -> anyhow::Result<berth_server::ecr::RegistryLogins> {
    let Some(path) = &args.private_registries else { return Ok(Default::default()) };
    Ok(berth_server::ecr::RegistryLogins::new(read_registry_logins(path)?.into_iter().map(|(host, l)| (host, l.username, l.password))))
}

/// A `{"host:port": {"username": ..., "password": ...}}` file
/// (`--registry-auth`, `--private-registries`).
fn read_registry_logins(path: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<String, RegistryLogin>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The service controller over `ecs`'s store and agent liveness, running
/// until the returned handle is dropped.
fn start_service_controller(ecs: &berth_ecs::Ecs, args: &ServerArgs) -> berth_ecs::services::controller::ControllerHandle {
    use berth_ecs::services::controller::{ControllerConfig, ServiceController};
    let config = ControllerConfig {
        host_lost_after: std::time::Duration::from_secs(args.host_lost_after),
        ..ControllerConfig::default()
    };
    ServiceController::new(ecs.store().clone(), ecs.liveness().clone(), Arc::new(berth_clock::SystemClock), config)
        .spawn()
}

/// The load balancer data plane over `store`, unless `--no-lb`.
async fn start_lb(args: &ServerArgs, store: Arc<dyn berth_store::Store>) -> Option<lb::LbHandle> {
    if args.no_lb {
        return None;
    }
    let options = berth_lb::supervisor::LbOptions {
        bind: args.lb_bind,
        cert_dir: args.lb_certificates.clone().unwrap_or_else(|| args.data_dir.join("certificates")),
        ..Default::default()
    };
    Some(lb::start(store, options).await)
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

/// Data dirs are made absolute once, here: container root filesystems,
/// bundles and shim sockets under them are handed to runc and the kernel,
/// which need absolute paths (`--data-dir ./berth-data` used to fail every
/// task with "rootfs must be an absolute path").
fn absolute_path(s: &str) -> Result<PathBuf, String> {
    std::path::absolute(s).map_err(|e| format!("{s:?}: {e}"))
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
        Command::Agent(args) => runtime.block_on(run_agent(args)),
        Command::Up(args) => runtime.block_on(run_up(args)),
        Command::Logs(args) => runtime.block_on(print_logs(args)),
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

/// What `berth server` and `berth up` both open before serving: the data
/// dir, the account identity, the store and the bound listener.
struct ServerParts {
    identity: berth_server::AccountIdentity,
    store: Arc<dyn berth_store::Store>,
    iam: Arc<berth_iam::Iam>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

async fn open_server(args: &ServerArgs) -> anyhow::Result<ServerParts> {
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
    let master = match std::env::var("BERTH_MASTER_KEY") {
        Ok(text) => berth_iam::MasterKey::from_base64(&text).context("BERTH_MASTER_KEY")?,
        Err(_) => {
            let path = args.master_key_file.clone().unwrap_or_else(|| args.data_dir.join("master.key"));
            berth_iam::MasterKey::load_or_create(&path).with_context(|| format!("the master key {}", path.display()))?
        }
    };
    let iam = berth_iam::Iam::open(store.clone(), identity.account_id.clone(), master)
        .await
        .map_err(|e| anyhow::anyhow!("reading the IAM state: {e}"))?;
    iam.spawn_watch();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    Ok(ServerParts { identity, store, iam, listener, addr })
}

async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let ServerParts { identity, store, iam, listener, addr } = open_server(&args).await?;

    let shutdown = shutdown_signal();
    announce(&identity, addr);
    let lb = start_lb(&args, store.clone()).await;
    let ecs = berth_ecs::Ecs::new(store).with_roles(Arc::new(berth_server::role_gate::IamRoleGate::new(iam.clone())));
    let _controller = start_service_controller(&ecs, &args);
    let door = berth_server::FrontDoor::new(
        identity,
        ecs,
        iam,
        Arc::new(berth_clock::SystemClock),
        args.max_body_bytes,
    )
    .with_registries(private_registries(&args)?);
    berth_server::serve(listener, Arc::new(door), shutdown).await;
    if let Some(lb) = lb {
        lb.stop().await;
    }
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

fn agent_config(
    host: HostAgentArgs,
    cluster: String,
    endpoint: String,
    data_dir: PathBuf,
) -> anyhow::Result<berth_agent::AgentConfig> {
    let pull_policy = host.pull_policy.parse().map_err(|e| anyhow::anyhow!("--pull-policy: {e}"))?;
    let registry_auth = match &host.registry_auth {
        None => Default::default(),
        Some(path) => {
            read_registry_logins(path)?.into_iter().map(|(k, v)| (k, berth_image::Credentials::new(v.username, v.password))).collect()
        }
    };
    // Each bridge gets its own nftables table, namespace and veth names, so
    // agents with different bridges on one machine (tests, or several
    // agents in network namespaces) never replace each other's port maps
    // nor take each other's namespaces and veths for strays on recovery.
    let default = berth_net::BridgeConfig::default();
    let (nft_table, netns_prefix, veth_prefix) = if host.bridge == default.bridge {
        (default.nft_table.clone(), default.netns_prefix.clone(), default.veth_prefix.clone())
    } else {
        // 'x' never starts the default "vb" names; 16 bits of the bridge
        // name tell agents apart.
        let hash = host.bridge.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
        (host.bridge.clone(), format!("{}-", host.bridge), format!("x{:04x}", hash & 0xffff))
    };
    let bridge = berth_net::BridgeConfig {
        nft_table,
        netns_prefix,
        veth_prefix,
        bridge: host.bridge,
        subnet: host.bridge_subnet.parse().map_err(|e| anyhow::anyhow!("--bridge-subnet: {e}"))?,
        ..berth_net::BridgeConfig::default()
    };
    Ok(berth_agent::AgentConfig {
        cluster,
        endpoint,
        region: host.region,
        data_dir,
        instance_type: host.instance_type,
        availability_zone: host.availability_zone,
        reserved_memory_mib: host.reserved_memory,
        reserved_ports: berth_agent::host::DEFAULT_RESERVED_PORTS.to_vec(),
        reserved_ports_udp: Vec::new(),
        custom_attributes: berth_agent::host::with_dynamic_host_port_range(host.attributes, host.dynamic_host_port_range),
        pull_policy,
        insecure_registries: host.insecure_registries,
        registry_auth,
        bridge,
        runc: host.runc,
        helper_exe: std::env::current_exe().context("locating the berth binary")?,
        cgroup_prefix: host.cgroup_prefix,
        task_cleanup_wait: std::time::Duration::from_secs(host.task_cleanup_wait),
        task_endpoint: Some(std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, host.task_endpoint_port))),
    })
}

#[derive(serde::Deserialize)]
struct RegistryLogin {
    username: String,
    password: String,
}

async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let layout = berth_agent::AgentLayout::new(&args.data_dir);
    let creds_path = layout.credentials();
    let creds = match berth_agent::load_credentials(&creds_path) {
        Some(c) => c,
        None => {
            // First start: trade an administrator's credentials for this
            // host's own, and never use the administrator's again.
            let (Ok(akid), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) else {
                anyhow::bail!(
                    "no instance credentials in {}: start the agent once with the account's root credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY to mint them",
                    creds_path.display()
                );
            };
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
            let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c)).take(64).collect();
            let minted = berth_agent::control::bootstrap_credentials(
                &args.server,
                &args.host.region,
                berth_agent::AgentCredentials { access_key_id: akid, secret_access_key: secret },
                if name.is_empty() { "host" } else { &name },
            )
            .await
            .context("minting this host's instance credentials")?;
            berth_agent::save_credentials(&creds_path, &minted).with_context(|| format!("saving {}", creds_path.display()))?;
            minted
        }
    };
    let control = Arc::new(berth_agent::HttpControlPlane::new(&args.server, &args.host.region, creds)?);
    let mut host = args.host;
    let address = args.advertise_address.unwrap_or_else(berth_agent::host::detect_host_address);
    host.attributes = berth_agent::host::with_host_address(std::mem::take(&mut host.attributes), address);
    let cfg = agent_config(host, args.cluster, args.server, args.data_dir)?;
    let engine = berth_agent::build_engine(cfg, control, Arc::new(berth_clock::SystemClock)).await?;
    let shutdown = shutdown_signal();
    engine.run(shutdown).await?;
    tracing::info!("agent stopped; containers keep running");
    Ok(())
}

async fn run_up(args: UpArgs) -> anyhow::Result<()> {
    let data_dir = args.server.data_dir.clone();
    let ServerParts { identity, store, iam, listener, addr } = open_server(&args.server).await?;
    let ecs = berth_ecs::Ecs::new(store.clone()).with_roles(Arc::new(berth_server::role_gate::IamRoleGate::new(iam.clone())));
    let _controller = start_service_controller(&ecs, &args.server);
    let lb = start_lb(&args.server, store.clone()).await;
    let region = berth_arn::Region::try_from(args.host.region.clone()).map_err(|e| anyhow::anyhow!("--region: {e}"))?;
    let root = berth_ecs::RequestContext {
        account: identity.account_id.clone(),
        region,
        principal_arn: identity.root_arn(),
        now: std::time::SystemTime::now(),
    };
    let mut body = serde_json::Map::new();
    body.insert("clusterName".into(), "default".into());
    ecs.handle(&root, "CreateCluster", body).await.map_err(|e| anyhow::anyhow!("creating the default cluster: {e}"))?;

    let layout = berth_agent::AgentLayout::new(&data_dir);
    let creds = match berth_agent::load_credentials(&layout.credentials()) {
        Some(c) => c,
        None => {
            let minted = berth_server::instance_credentials::mint(store.as_ref(), &identity.account_id, iam.key(), Some("local"), std::time::SystemTime::now())
                .await
                .context("minting the local agent's instance credentials")?;
            let c = berth_agent::AgentCredentials { access_key_id: minted.access_key_id, secret_access_key: minted.secret_access_key };
            berth_agent::save_credentials(&layout.credentials(), &c)?;
            c
        }
    };
    let endpoint = format!("http://{addr}");
    let control = Arc::new(berth_agent::HttpControlPlane::new(&endpoint, &args.host.region, creds)?);
    // Server and agent share the host: load balancers reach it on loopback.
    let mut host = args.host;
    host.attributes = berth_agent::host::with_host_address(std::mem::take(&mut host.attributes), std::net::Ipv4Addr::LOCALHOST);
    let cfg = agent_config(host, "default".into(), endpoint, data_dir)?;
    let engine = berth_agent::build_engine(cfg, control, Arc::new(berth_clock::SystemClock)).await?;

    let shutdown = shutdown_signal();
    announce(&identity, addr);
    let door = berth_server::FrontDoor::new(identity, ecs, iam, Arc::new(berth_clock::SystemClock), args.server.max_body_bytes)
        .with_registries(private_registries(&args.server)?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(berth_server::serve(listener, Arc::new(door), wait_stop(stop_rx.clone())));
    let agent = tokio::spawn(engine.run(wait_stop(stop_rx)));
    shutdown.await;
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = agent.await {
        tracing::warn!(error = %e, "agent");
    }
    let _ = server.await;
    if let Some(lb) = lb {
        lb.stop().await;
    }
    tracing::info!("stopped; containers keep running and are re-adopted on the next start");
    Ok(())
}

async fn print_logs(args: LogsArgs) -> anyhow::Result<()> {
    let layout = berth_agent::AgentLayout::new(&args.data_dir);
    let req = berth_agent::logs::LogsRequest {
        task: args.task,
        container: args.container,
        follow: args.follow,
        tasks_dir: layout.tasks(),
        containers_dir: layout.containers(),
        max_files: berth_runtime::logs::DEFAULT_MAX_FILES,
    };
    let mut out = std::io::stdout();
    berth_agent::logs::print(&req, &mut out).await?;
    Ok(())
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

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before announcing
/// readiness, so a signal sent right after `ready` is never lost (the
/// default action would kill the process without a clean shutdown).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dirs_become_absolute() {
        let p = absolute_path("./berth-data").unwrap();
        assert!(p.is_absolute(), "{p:?}");
        assert!(p.ends_with("berth-data"));
        let cli = Cli::try_parse_from(["berth", "up", "--data-dir", "rel/dir"]).unwrap();
        let Command::Up(args) = cli.command else { panic!("not up") };
        assert!(args.server.data_dir.is_absolute());
    }
}
