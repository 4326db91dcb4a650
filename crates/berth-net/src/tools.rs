//! [`HostTools`]: the narrow seam between Berth's networking logic and the
//! kernel. [`SystemTools`] drives iproute2's `ip` and nftables' `nft`
//! binaries and reads `/sys` and `/proc`; [`RecordingTools`] records what it
//! is asked and fails on demand, for tests of the logic above it.
//!
//! Every method blocks (it may run a child process): call it from a
//! blocking context, never on an async worker.

use crate::error::NetError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub trait HostTools: Send + Sync + 'static {
    /// `ip [-n NETNS] -batch -` with `script` on stdin; stops at the first
    /// failing line.
    fn ip_batch(&self, netns: Option<&str>, script: &str) -> Result<(), NetError>;
    /// `nft -f -` with `script` on stdin: one atomic transaction.
    fn nft(&self, script: &str) -> Result<(), NetError>;
    /// Writes `/proc/sys/{key}` (`key` like `net/ipv4/conf/berth0/forwarding`).
    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetError>;
    /// Whether a link of this name exists in the agent's namespace.
    fn link_exists(&self, name: &str) -> bool;
    /// Whether `/run/netns/{name}` exists.
    fn netns_exists(&self, name: &str) -> bool;
    /// The names under `/run/netns`.
    fn list_netns(&self) -> Vec<String>;
    /// The links enslaved to `bridge`.
    fn bridge_ports(&self, bridge: &str) -> Vec<String>;
    /// The host's IPv4 routes (main table).
    fn routes(&self) -> Vec<crate::routes::Route>;
}

/// The real kernel, through `ip` and `nft`.
#[derive(Debug, Clone)]
pub struct SystemTools {
    ip: Option<PathBuf>,
    nft: Option<PathBuf>,
}

const SEARCH_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Finds an executable on `PATH` or in the usual system directories
/// (`/usr/sbin` is often missing from a non-root `PATH`).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SEARCH_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl Default for SystemTools {
    fn default() -> Self {
        SystemTools::new()
    }
}

impl SystemTools {
    pub fn new() -> SystemTools {
        SystemTools {
            ip: find_binary("ip"),
            nft: find_binary("nft"),
        }
    }

    /// Fails unless both `ip` and `nft` are installed.
    pub fn check(&self) -> Result<(), NetError> {
        self.ip_path()?;
        self.nft_path()?;
        Ok(())
    }

    fn ip_path(&self) -> Result<&Path, NetError> {
        self.ip.as_deref().ok_or(NetError::ToolMissing {
            tool: "ip",
            hint: " (Debian: apt-get install iproute2)",
        })
    }

    fn nft_path(&self) -> Result<&Path, NetError> {
        self.nft.as_deref().ok_or(NetError::ToolMissing {
            tool: "nft",
            hint: " (Debian: apt-get install nftables)",
        })
    }
}

fn run_with_stdin(program: &Path, args: &[&str], stdin: &str) -> Result<(), NetError> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::io(format!("starting `{command}`"), e))?;
    {
        let mut input = child.stdin.take().expect("piped");
        // A tool that fails early closes its stdin; its stderr says why.
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io(format!("waiting for `{command}`"), e))?;
    if out.status.success() {
        tracing::trace!(%command, script = stdin, "ran");
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(NetError::Tool {
        command,
        status: out.status.to_string(),
        stderr: if stderr.is_empty() {
            format!("(no message) for input:\n{stdin}")
        } else {
            stderr
        },
    })
}

impl HostTools for SystemTools {
    fn ip_batch(&self, netns: Option<&str>, script: &str) -> Result<(), NetError> {
        let ip = self.ip_path()?;
        match netns {
            Some(ns) => run_with_stdin(ip, &["-n", ns, "-batch", "-"], script),
            None => run_with_stdin(ip, &["-batch", "-"], script),
        }
    }

    fn nft(&self, script: &str) -> Result<(), NetError> {
        run_with_stdin(self.nft_path()?, &["-f", "-"], script)
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetError> {
        let path = Path::new("/proc/sys").join(key);
        std::fs::write(&path, value)
            .map_err(|e| NetError::io(format!("writing {value} to {}", path.display()), e))
    }

    // /proc/net/dev lists the links of the reader's own network namespace;
    // /sys/class/net shows the namespace /sys was mounted in, which differs
    // when the agent runs in a namespace of its own (`nsenter --net`).
    fn link_exists(&self, name: &str) -> bool {
        std::fs::read_to_string("/proc/net/dev").is_ok_and(|t| proc_net_dev_links(&t).iter().any(|l| l == name))
    }

    fn netns_exists(&self, name: &str) -> bool {
        Path::new(crate::config::NETNS_DIR).join(name).exists()
    }

    fn list_netns(&self) -> Vec<String> {
        list_dir(Path::new(crate::config::NETNS_DIR))
    }

    fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        let Ok(ip) = self.ip_path() else { return Vec::new() };
        match std::process::Command::new(ip).args(["-o", "link", "show", "master", bridge]).output() {
            Ok(out) if out.status.success() => ip_link_names(&String::from_utf8_lossy(&out.stdout)),
            _ => Vec::new(),
        }
    }

    fn routes(&self) -> Vec<crate::routes::Route> {
        std::fs::read_to_string("/proc/net/route")
            .map(|t| crate::routes::parse_proc_net_route(&t))
            .unwrap_or_default()
    }
}

/// Interface names in `/proc/net/dev` (two header lines, then `name: counters`).
pub fn proc_net_dev_links(text: &str) -> Vec<String> {
    text.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(name, _)| name.trim().to_string()).collect()
}

/// Names in `ip -o link show` output (`7: vb0a1d0002@if2: <...> ...`), sorted.
pub fn ip_link_names(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    v.sort();
    v
}

fn list_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// One thing [`RecordingTools`] was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    IpBatch {
        netns: Option<String>,
        script: String,
    },
    Nft(String),
    Sysctl {
        key: String,
        value: String,
    },
}

/// A [`HostTools`] that changes nothing: it records every call, keeps a
/// toy model of links and namespaces (from the scripts it is given) so the
/// existence checks answer sensibly, and fails calls whose script contains
/// a chosen string.
#[derive(Debug, Default)]
pub struct RecordingTools {
    inner: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<ToolCall>,
    links: std::collections::BTreeSet<String>,
    /// link -> bridge
    ports: std::collections::BTreeMap<String, String>,
    netns: std::collections::BTreeSet<String>,
    routes: Vec<crate::routes::Route>,
    fail_on: Vec<String>,
}

impl RecordingTools {
    pub fn new() -> RecordingTools {
        RecordingTools::default()
    }

    pub fn calls(&self) -> Vec<ToolCall> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .calls
            .clone()
    }

    /// Any later call whose script (or sysctl key) contains `needle` fails.
    pub fn fail_on(&self, needle: &str) {
        self.lock().fail_on.push(needle.to_string());
    }

    pub fn clear_failures(&self) {
        self.lock().fail_on.clear();
    }

    /// Pretend a link or namespace vanished (a reboot, an operator).
    pub fn forget_link(&self, name: &str) {
        self.lock().links.remove(name);
    }

    pub fn forget_netns(&self, name: &str) {
        self.lock().netns.remove(name);
    }

    /// Pretend a namespace exists that Berth did not record.
    pub fn add_netns(&self, name: &str) {
        self.lock().netns.insert(name.to_string());
    }

    /// Pretend a link exists, on `bridge` if given.
    pub fn add_link(&self, name: &str, bridge: Option<&str>) {
        let mut r = self.lock();
        r.links.insert(name.to_string());
        if let Some(b) = bridge {
            r.ports.insert(name.to_string(), b.to_string());
        }
    }

    /// Pretend the host has this route.
    pub fn add_route(&self, iface: &str, destination: crate::addr::Ipv4Net) {
        self.lock().routes.push(crate::routes::Route {
            iface: iface.to_string(),
            destination,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(r: &Recorded, text: &str) -> Result<(), NetError> {
        match r.fail_on.iter().find(|n| text.contains(n.as_str())) {
            Some(n) => Err(NetError::Injected(format!("script contains {n:?}"))),
            None => Ok(()),
        }
    }
}

impl HostTools for RecordingTools {
    fn ip_batch(&self, netns: Option<&str>, script: &str) -> Result<(), NetError> {
        let mut r = self.lock();
        r.calls.push(ToolCall::IpBatch {
            netns: netns.map(str::to_string),
            script: script.to_string(),
        });
        Self::check(&r, script)?;
        if netns.is_some() {
            return Ok(());
        }
        for line in script.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["netns", "add", name] => {
                    r.netns.insert(name.to_string());
                }
                ["netns", "del", name] => {
                    r.netns.remove(*name);
                }
                ["link", "add", "name", name, ..] => {
                    r.links.insert(name.to_string());
                }
                ["link", "del", "dev", name] => {
                    r.links.remove(*name);
                    r.ports.remove(*name);
                }
                ["link", "set", "dev", name, "master", bridge] => {
                    r.ports.insert(name.to_string(), bridge.to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn nft(&self, script: &str) -> Result<(), NetError> {
        let mut r = self.lock();
        r.calls.push(ToolCall::Nft(script.to_string()));
        Self::check(&r, script)
    }

    fn write_sysctl(&self, key: &str, value: &str) -> Result<(), NetError> {
        let mut r = self.lock();
        r.calls.push(ToolCall::Sysctl {
            key: key.to_string(),
            value: value.to_string(),
        });
        Self::check(&r, key)
    }

    fn link_exists(&self, name: &str) -> bool {
        self.lock().links.contains(name)
    }

    fn netns_exists(&self, name: &str) -> bool {
        self.lock().netns.contains(name)
    }

    fn list_netns(&self) -> Vec<String> {
        self.lock().netns.iter().cloned().collect()
    }

    fn bridge_ports(&self, bridge: &str) -> Vec<String> {
        let r = self.lock();
        r.ports
            .iter()
            .filter(|(l, b)| b.as_str() == bridge && r.links.contains(l.as_str()))
            .map(|(l, _)| l.clone())
            .collect()
    }

    fn routes(&self) -> Vec<crate::routes::Route> {
        self.lock().routes.clone()
    }
}

#[cfg(test)]
mod link_listing_tests {
    use super::*;

    #[test]
    fn reads_links_from_proc_and_ip() {
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 1 2 3\nvb0a1d0002: 4 5\n  eth0: 6\n";
        assert_eq!(proc_net_dev_links(dev), vec!["lo", "vb0a1d0002", "eth0"]);
        let ip = "9: vbac1e0203@if2: <BROADCAST,UP> mtu 1500 master bt1\n7: vbac1e0202@if2: <BROADCAST> mtu 1500\n";
        assert_eq!(ip_link_names(ip), vec!["vbac1e0202", "vbac1e0203"]);
    }
}
