//! The reference registry (`docker-registry`, CNCF distribution 2.8 on
//! Debian) as a child process, one per test.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result, http};

/// Debian package `docker-registry`.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// Hang guard: a healthy registry answers in well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts when another process grabs the port between our probe and
/// the registry's bind.
const PORT_ATTEMPTS: usize = 5;
/// Every response of our registry carries this header with a per-instance
/// value, so a test never mistakes another test's registry, which took
/// the port we picked, for its own.
const IDENTITY_HEADER: &str = "X-Berth-Testkit-Registry";

/// A running registry on `127.0.0.1:<free port>`, storing into its own
/// temporary directory. Dropping it kills the process and deletes the
/// storage.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    host: String,
    storage: PathBuf,
    log: PathBuf,
    // Declared last so it is removed after the process is gone.
    _dir: tempfile::TempDir,
}

enum Outcome {
    Ready,
    PortTaken,
}

impl Registry {
    /// A registry that lets anyone push and pull.
    pub fn start() -> Result<Registry> {
        Registry::start_inner(None)
    }

    /// A registry that requires HTTP Basic auth (htpasswd) for every
    /// request, pushes and pulls alike.
    pub fn start_with_basic_auth(user: &str, password: &str) -> Result<Registry> {
        Registry::start_inner(Some((user, password)))
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The storage root (`rootdirectory` of the filesystem driver).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The registry's output so far (warnings and errors only), for
    /// failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replaces the stored content of blob `digest` (`sha256:<hex>` or bare
    /// hex) with different bytes of the same length, so the registry keeps
    /// serving it with the same size and a client sees a digest mismatch.
    pub fn corrupt_blob(&self, digest: &str) -> Result<()> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!("{digest:?} is not a sha256 digest")));
        }
        let path = self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        let mut bytes =
            std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        if bytes.is_empty() {
            return Err(Error::Invalid(format!(
                "blob {digest} is empty; there is nothing to corrupt"
            )));
        }
        // Flipping every bit changes every byte, so the digest must change.
        for b in &mut bytes {
            *b = !*b;
        }
        std::fs::write(&path, &bytes).map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    fn start_inner(credentials: Option<(&str, &str)>) -> Result<Registry> {
        if !Path::new(REGISTRY_BIN).exists() {
            return Err(Error::Invalid(format!(
                "{REGISTRY_BIN} is missing: install the Debian package docker-registry (test.sh does)"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .map_err(|e| Error::io("create registry directory", e))?;
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).map_err(|e| Error::io("create registry storage", e))?;
        let htpasswd = match credentials {
            Some((user, _)) if user.is_empty() || user.contains([':', '\n']) => {
                return Err(Error::Invalid(format!(
                    "{user:?} cannot be an htpasswd user name"
                )));
            }
            Some((user, password)) => {
                let path = dir.path().join("htpasswd");
                // Cost 4, bcrypt's minimum: these are throwaway test
                // passwords and every auth check pays the cost.
                let hash = bcrypt::hash(password, 4)
                    .map_err(|e| Error::Invalid(format!("bcrypt: {e}")))?;
                std::fs::write(&path, format!("{user}:{hash}\n"))
                    .map_err(|e| Error::io("write htpasswd", e))?;
                Some(path)
            }
            None => None,
        };
        let identity = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config_path = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");

        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let host = format!("127.0.0.1:{port}");
            let config = config_yaml(&host, &storage, htpasswd.as_deref(), &identity)?;
            std::fs::write(&config_path, config)
                .map_err(|e| Error::io("write registry config", e))?;
            let mut child = spawn(&config_path, &log)?;
            match wait_ready(&mut child, &host, &identity, &log) {
                Ok(Outcome::Ready) => {
                    return Ok(Registry {
                        child,
                        host,
                        storage,
                        log,
                        _dir: dir,
                    });
                }
                Ok(Outcome::PortTaken) => {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
        }
        Err(Error::RegistryStart {
            message: format!("port already in use on {PORT_ATTEMPTS} attempts"),
            log: last_log,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SIGKILL: there is nothing to flush, and a registry that ignores
        // SIGTERM must not outlive its test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago. The registry binds it itself, so
/// there is a window for someone else to take it; the caller retries.
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("bind 127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("local address of probe socket", e))?
        .port();
    Ok(port)
}

/// Strings are written as JSON strings, which YAML reads as double-quoted
/// scalars: paths under any `TMPDIR` stay intact.
fn config_yaml(
    host: &str,
    storage: &Path,
    htpasswd: Option<&Path>,
    identity: &str,
) -> Result<String> {
    let quote = |path: &Path| -> Result<String> {
        let s = path
            .to_str()
            .ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", path.display())))?;
        Ok(serde_json::Value::from(s).to_string())
    };
    let json = |s: &str| serde_json::Value::from(s).to_string();
    // No `storage.cache` section: without a blob descriptor cache the
    // registry stats the filesystem on every request, so corrupt_blob's
    // edits are what clients get.
    let mut config = format!(
        "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: {secret}
  headers:
    {IDENTITY_HEADER}: [{identity}]
",
        storage = quote(storage)?,
        addr = json(host),
        secret = json(identity),
        identity = json(identity),
    );
    if let Some(htpasswd) = htpasswd {
        config.push_str(&format!(
            "auth:
  htpasswd:
    realm: berth-testkit
    path: {}
",
            quote(htpasswd)?
        ));
    }
    Ok(config)
}

fn spawn(config: &Path, log: &Path) -> Result<Child> {
    let stdout = File::create(log).map_err(|e| Error::io("create registry log", e))?;
    let stderr = stdout
        .try_clone()
        .map_err(|e| Error::io("duplicate registry log handle", e))?;
    let mut command = Command::new(REGISTRY_BIN);
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        // A file, not a pipe: nobody drains a pipe while the test runs,
        // and a registry blocked on a full pipe would hang the test.
        .stdout(stdout)
        .stderr(stderr);
    // REGISTRY_* variables override the config file.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    command
        .spawn()
        .map_err(|e| Error::io(format!("spawn {REGISTRY_BIN}"), e))
}

fn wait_ready(child: &mut Child, host: &str, identity: &str, log: &Path) -> Result<Outcome> {
    let deadline = Instant::now() + START_TIMEOUT;
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let mut last_error = None;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("wait for docker-registry", e))?
        {
            let log = read_log();
            if log.contains("address already in use") {
                return Ok(Outcome::PortTaken);
            }
            return Err(Error::RegistryStart {
                message: format!("it exited with {status}"),
                log,
            });
        }
        match http::send(host, "GET", "/v2/", &[], &[]) {
            Ok(response)
                if response.header(IDENTITY_HEADER) == Some(identity)
                    && matches!(response.status, 200 | 401) =>
            {
                return Ok(Outcome::Ready);
            }
            Ok(response) if response.header(IDENTITY_HEADER) == Some(identity) => {
                return Err(Error::RegistryStart {
                    message: format!(
                        "GET /v2/ answered {}: {}",
                        response.status,
                        response.body_text()
                    ),
                    log: read_log(),
                });
            }
            // Someone else's server on our port: our registry will exit
            // with "address already in use".
            Ok(_) => {}
            // Not listening yet.
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::RegistryStart {
                message: format!(
                    "no answer on {host} within {START_TIMEOUT:?} (last error: {})",
                    last_error.map_or_else(|| "none".to_owned(), |e| e.to_string())
                ),
                log: read_log(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
