//! The functional core: a typed [`ContainerSpec`] in, an OCI runtime-spec
//! `config.json` out. No IO here; everything the host contributes (the
//! bundle directory, the init kit, the host's devices for privileged
//! containers) comes in through [`BundleInputs`].

use crate::initkit::InitKit;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The OCI runtime-spec version written into `config.json`.
pub const OCI_VERSION: &str = "1.0.2";

/// `PATH` given to a container whose environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set for unprivileged containers.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (0..=40), for privileged containers.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths hidden from unprivileged containers (Docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths read-only in unprivileged containers (Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One container, as the agent wants it run. `args` is the final argv
/// (entryPoint + command already merged with the image config by the caller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// runc's container id: `[A-Za-z0-9_.+-]`, 1..=128 characters.
    pub id: String,
    /// Absolute host path of the prepared root filesystem.
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    /// `(name, value)` pairs, in order; later duplicates win inside the container.
    pub env: Vec<(String, String)>,
    /// Working directory inside the container; `/` when `None`.
    pub cwd: Option<String>,
    /// Already resolved (see [`crate::user::resolve_in_rootfs`]).
    pub user: User,
    pub hostname: Option<String>,
    /// ECS `extraHosts`: extra lines of `/etc/hosts`.
    pub extra_hosts: Vec<HostEntry>,
    /// ECS `dnsServers`/`dnsSearchDomains`. `None`: the runtime derives
    /// `/etc/resolv.conf` from the host's.
    pub dns: Option<DnsConfig>,
    /// Extra mounts (volumes, tmpfs), after the standard ones.
    pub mounts: Vec<Mount>,
    pub namespaces: Namespaces,
    pub resources: Resources,
    pub rlimits: Vec<Rlimit>,
    pub readonly_rootfs: bool,
    /// All capabilities, no seccomp filter, no masked paths, host devices.
    pub privileged: bool,
    /// ECS `linuxParameters.capabilities.add`/`.drop` (`CAP_` prefix optional).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// ECS `systemControls`.
    pub sysctls: BTreeMap<String, String>,
    /// ECS `linuxParameters.initProcessEnabled`: run `berth init` as pid 1.
    pub init: bool,
    /// The container's cgroup, absolute from the hierarchy root, e.g.
    /// `/berth/<task>/<container>` (see [`crate::cgroups::CgroupManager`]).
    pub cgroups_path: String,
    /// Size of `/dev/shm` (ECS `sharedMemorySize`); 64 MiB when `None`.
    pub shm_size_bytes: Option<u64>,
}

impl ContainerSpec {
    /// A spec with defaults: root user, new namespaces of every kind, no
    /// limits, cgroup `/berth/<id>`.
    pub fn new(
        id: impl Into<String>,
        rootfs: impl Into<PathBuf>,
        args: Vec<String>,
    ) -> ContainerSpec {
        let id = id.into();
        ContainerSpec {
            cgroups_path: format!("/berth/{id}"),
            id,
            rootfs: rootfs.into(),
            args,
            env: Vec::new(),
            cwd: None,
            user: User::root(),
            hostname: None,
            extra_hosts: Vec::new(),
            dns: None,
            mounts: Vec::new(),
            namespaces: Namespaces::default(),
            resources: Resources::default(),
            rlimits: Vec::new(),
            readonly_rootfs: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            sysctls: BTreeMap::new(),
            init: false,
            shm_size_bytes: None,
        }
    }
}

/// A numeric identity, resolved from the image's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, used for `HOME` when unset.
    pub home: Option<String>,
}

impl User {
    pub fn root() -> User {
        User {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: Some("/root".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    pub hostname: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// An OCI mount, as runc takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub destination: String,
    pub source: String,
    /// `bind`, `tmpfs`, `proc`, ...
    pub kind: String,
    pub options: Vec<String>,
}

impl Mount {
    /// A recursive bind mount of a host path.
    pub fn bind(
        source: impl Into<String>,
        destination: impl Into<String>,
        readonly: bool,
    ) -> Mount {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        options.push(if readonly { "ro" } else { "rw" }.to_string());
        Mount {
            destination: destination.into(),
            source: source.into(),
            kind: "bind".into(),
            options,
        }
    }

    /// A tmpfs of at most `size_bytes` (ECS `linuxParameters.tmpfs`).
    pub fn tmpfs(destination: impl Into<String>, size_bytes: u64, extra: &[&str]) -> Mount {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
        options.extend(extra.iter().map(|s| s.to_string()));
        options.push(format!("size={size_bytes}"));
        Mount {
            destination: destination.into(),
            source: "tmpfs".into(),
            kind: "tmpfs".into(),
            options,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "destination": self.destination,
            "type": self.kind,
            "source": self.source,
            "options": self.options,
        })
    }
}

/// Where a namespace comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NsMode {
    /// A fresh namespace for this container.
    #[default]
    New,
    /// The host's (no namespace of this kind).
    Host,
    /// Join an existing one, e.g. `/proc/<pid>/ns/net` or a bind-mounted
    /// netns under `/run/netns` set up by the agent's networking.
    Join(PathBuf),
}

/// The namespaces a container gets. A mount namespace is always new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespaces {
    pub pid: NsMode,
    pub network: NsMode,
    pub ipc: NsMode,
    pub uts: NsMode,
}

/// Container-level cgroup limits (the task-level parent is set up by
/// [`crate::cgroups::CgroupManager::create_task`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// `cpu.shares` (ECS container `cpu`; at least 2).
    pub cpu_shares: Option<u64>,
    pub cpu_quota_us: Option<i64>,
    pub cpu_period_us: Option<u64>,
    /// Hard limit (ECS `memory`).
    pub memory_limit_bytes: Option<i64>,
    /// Soft limit (ECS `memoryReservation`).
    pub memory_reservation_bytes: Option<i64>,
    /// Memory plus swap (OCI semantics); `None` leaves the kernel default.
    pub memory_swap_bytes: Option<i64>,
    pub memory_swappiness: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// A resource limit, by its kernel name (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rlimit {
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

impl Rlimit {
    /// From an ECS `ulimits` entry (`name` as ECS spells it: `nofile`, `core`,
    /// ...). `None` for a name ECS does not define.
    pub fn from_ecs(name: &str, soft: u64, hard: u64) -> Option<Rlimit> {
        const NAMES: &[&str] = &[
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
        ];
        NAMES.contains(&name).then(|| Rlimit {
            kind: format!("RLIMIT_{}", name.to_ascii_uppercase()),
            soft,
            hard,
        })
    }
}

/// A device node for `linux.devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What the host contributes to a bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundleInputs<'a> {
    /// Holds the generated `hosts`, `hostname` and `resolv.conf`.
    pub bundle_dir: &'a Path,
    /// Required when the spec asks for an init process.
    pub init: Option<&'a InitKit>,
    /// The host's devices, given to privileged containers.
    pub host_devices: &'a [Device],
    /// Whether the bundle has a `resolv.conf` to mount.
    pub resolv_conf: bool,
    /// The capabilities the runtime itself holds (bit = capability
    /// number). A privileged container gets all of these; asking for one
    /// outside this set would make runc fail. `None`: all of them.
    pub bounding_capabilities: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("invalid container id {0:?}: use 1 to 128 of A-Z a-z 0-9 _ . + -")]
    InvalidId(String),
    #[error("the container has no command to run")]
    NoCommand,
    #[error("{what} must be an absolute path, got {path:?}")]
    NotAbsolute { what: &'static str, path: String },
    #[error("invalid environment variable name {0:?}")]
    InvalidEnvName(String),
    #[error("a hostname needs a new UTS namespace")]
    HostnameWithoutUts,
    #[error("initProcessEnabled needs the berth init binary, which was not found")]
    NoInitKit,
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("invalid value {value:?} for {what}")]
    InvalidValue { what: &'static str, value: String },
}

/// Whether `id` is acceptable to runc (and safe as a path component).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

fn absolute(what: &'static str, path: &str) -> Result<(), SpecError> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(SpecError::NotAbsolute {
            what,
            path: path.to_string(),
        })
    }
}

fn normalize_cap(name: &str) -> Result<String, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(name.to_string()))
    }
}

/// The capability set a container's process gets, given the bounding set
/// of the runtime (see [`BundleInputs::bounding_capabilities`]).
pub fn capabilities(spec: &ContainerSpec, bounding: Option<u64>) -> Result<Vec<String>, SpecError> {
    if spec.privileged {
        let held = |n: usize| bounding.is_none_or(|mask| n < 64 && mask & (1u64 << n) != 0);
        return Ok(ALL_CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(n, _)| held(*n))
            .map(|(_, s)| s.to_string())
            .collect());
    }
    let drop: Vec<String> = spec
        .cap_drop
        .iter()
        .map(|c| normalize_cap_or_all(c))
        .collect::<Result<_, _>>()?;
    let add: Vec<String> = spec
        .cap_add
        .iter()
        .map(|c| normalize_cap_or_all(c))
        .collect::<Result<_, _>>()?;
    let base: &[&str] = if add.iter().any(|c| c == "ALL") {
        ALL_CAPABILITIES
    } else {
        DEFAULT_CAPABILITIES
    };
    let mut caps: Vec<String> = Vec::new();
    for cap in base
        .iter()
        .map(|s| s.to_string())
        .chain(add.into_iter().filter(|c| c != "ALL"))
    {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    if drop.iter().any(|c| c == "ALL") {
        caps.clear();
    }
    caps.retain(|c| !drop.contains(c));
    Ok(caps)
}

fn normalize_cap_or_all(name: &str) -> Result<String, SpecError> {
    if name.trim().eq_ignore_ascii_case("ALL") {
        Ok("ALL".to_string())
    } else {
        normalize_cap(name)
    }
}

/// The final environment: the spec's, in order, with `PATH`, `HOSTNAME` and
/// `HOME` added when absent (as Docker does).
pub fn environment(spec: &ContainerSpec) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<String> = Vec::with_capacity(spec.env.len() + 3);
    let has = |name: &str| spec.env.iter().any(|(k, _)| k == name);
    if !has("PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if let (Some(h), false) = (&spec.hostname, has("HOSTNAME")) {
        env.push(format!("HOSTNAME={h}"));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(SpecError::InvalidEnvName(k.clone()));
        }
        env.push(format!("{k}={v}"));
    }
    if !has("HOME") {
        env.push(format!("HOME={}", spec.user.home.as_deref().unwrap_or("/")));
    }
    Ok(env)
}

fn namespaces_json(spec: &ContainerSpec) -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |kind: &str, mode: &NsMode| match mode {
        NsMode::New => out.push(json!({ "type": kind })),
        NsMode::Join(path) => out.push(json!({ "type": kind, "path": path })),
        NsMode::Host => {}
    };
    let ns = &spec.namespaces;
    push("pid", &ns.pid);
    push("network", &ns.network);
    push("ipc", &ns.ipc);
    push("uts", &ns.uts);
    push("mount", &NsMode::New);
    out
}

fn standard_mounts(spec: &ContainerSpec) -> Vec<Value> {
    let shm = spec.shm_size_bytes.unwrap_or(64 << 20);
    let sys_ro = if spec.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ];
    if spec.namespaces.network == NsMode::Host && !spec.privileged {
        // sysfs cannot be mounted fresh without a network namespace of our
        // own; give the host's read-only, as Docker does.
        mounts.push(
            json!({"destination": "/sys", "type": "bind", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
        );
    } else {
        mounts.push(
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                           "options": ["nosuid", "noexec", "nodev", sys_ro]}),
        );
    }
    mounts.push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", sys_ro]}),
    );
    mounts
}

/// The seccomp filter for unprivileged containers: allow by default, refuse
/// (EPERM) the calls Docker's profile refuses to containers without the
/// matching capability. A deny list keeps it short and robust to new syscalls.
pub fn seccomp_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut denied: Vec<&str> = vec![
        "add_key",
        "bpf",
        "create_module",
        "get_kernel_syms",
        "keyctl",
        "lookup_dcookie",
        "nfsservctl",
        "open_by_handle_at",
        "perf_event_open",
        "query_module",
        "request_key",
        "sysfs",
        "_sysctl",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
        "kexec_load",
        "kexec_file_load",
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "move_mount",
        "open_tree",
    ];
    if !has("CAP_SYS_ADMIN") {
        denied.extend([
            "mount",
            "umount",
            "umount2",
            "unshare",
            "setns",
            "pivot_root",
            "quotactl",
            "name_to_handle_at",
        ]);
    }
    if !has("CAP_SYS_MODULE") {
        denied.extend(["init_module", "finit_module", "delete_module"]);
    }
    if !has("CAP_SYS_BOOT") {
        denied.push("reboot");
    }
    if !has("CAP_SYS_TIME") {
        denied.extend([
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
            "clock_adjtime",
            "adjtimex",
        ]);
    }
    if !has("CAP_SYS_PACCT") {
        denied.push("acct");
    }
    if !has("CAP_SYS_RAWIO") {
        denied.extend(["iopl", "ioperm"]);
    }
    if !has("CAP_SYS_NICE") {
        denied.extend(["move_pages", "mbind", "set_mempolicy"]);
    }
    let mut seen = Vec::new();
    denied.retain(|n| {
        if seen.contains(n) {
            false
        } else {
            seen.push(*n);
            true
        }
    });
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }],
    })
}

fn resources_json(spec: &ContainerSpec) -> Value {
    let r = &spec.resources;
    let mut res = serde_json::Map::new();
    res.insert(
        "devices".into(),
        if spec.privileged {
            json!([{"allow": true, "access": "rwm"}])
        } else {
            json!([{"allow": false, "access": "rwm"}])
        },
    );
    let mut memory = serde_json::Map::new();
    if let Some(v) = r.memory_limit_bytes {
        memory.insert("limit".into(), json!(v));
    }
    if let Some(v) = r.memory_reservation_bytes {
        memory.insert("reservation".into(), json!(v));
    }
    if let Some(v) = r.memory_swap_bytes {
        memory.insert("swap".into(), json!(v));
    }
    if let Some(v) = r.memory_swappiness {
        memory.insert("swappiness".into(), json!(v));
    }
    if !memory.is_empty() {
        res.insert("memory".into(), Value::Object(memory));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(v) = r.cpu_shares {
        cpu.insert("shares".into(), json!(v.max(2)));
    }
    if let Some(v) = r.cpu_quota_us {
        cpu.insert("quota".into(), json!(v));
    }
    if let Some(v) = r.cpu_period_us {
        cpu.insert("period".into(), json!(v));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(v) = r.pids_limit {
        res.insert("pids".into(), json!({ "limit": v }));
    }
    Value::Object(res)
}

/// Render the OCI `config.json` for `spec`.
pub fn oci_config(spec: &ContainerSpec, inputs: &BundleInputs<'_>) -> Result<Value, SpecError> {
    if !valid_id(&spec.id) {
        return Err(SpecError::InvalidId(spec.id.clone()));
    }
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }
    absolute("rootfs", &spec.rootfs.to_string_lossy())?;
    absolute("cgroupsPath", &spec.cgroups_path)?;
    let cwd = spec.cwd.as_deref().filter(|c| !c.is_empty()).unwrap_or("/");
    absolute("workingDirectory", cwd)?;
    if spec.hostname.is_some() && spec.namespaces.uts != NsMode::New {
        return Err(SpecError::HostnameWithoutUts);
    }
    for m in &spec.mounts {
        absolute("mount destination", &m.destination)?;
    }
    for k in spec.sysctls.keys() {
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(SpecError::InvalidValue {
                what: "systemControls namespace",
                value: k.clone(),
            });
        }
    }

    let caps = capabilities(spec, inputs.bounding_capabilities)?;
    let mut args: Vec<String> = Vec::new();
    let mut mounts = standard_mounts(spec);
    let bundle = inputs.bundle_dir.to_string_lossy();
    mounts.push(Mount::bind(format!("{bundle}/hosts"), "/etc/hosts", false).to_json());
    if spec.namespaces.uts == NsMode::New {
        mounts.push(Mount::bind(format!("{bundle}/hostname"), "/etc/hostname", false).to_json());
    }
    if inputs.resolv_conf {
        mounts.push(
            Mount::bind(format!("{bundle}/resolv.conf"), "/etc/resolv.conf", false).to_json(),
        );
    }
    if spec.init {
        let kit = inputs.init.ok_or(SpecError::NoInitKit)?;
        mounts.extend(kit.mounts().iter().map(Mount::to_json));
        args.extend(kit.argv_prefix());
    }
    args.extend(spec.args.iter().cloned());
    mounts.extend(spec.mounts.iter().map(Mount::to_json));

    let rlimits: Vec<Value> = spec
        .rlimits
        .iter()
        .map(|r| json!({"type": r.kind, "hard": r.hard, "soft": r.soft}))
        .collect();

    let mut process = json!({
        "terminal": false,
        "user": {
            "uid": spec.user.uid,
            "gid": spec.user.gid,
        },
        "args": args,
        "env": environment(spec)?,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": false,
    });
    if !spec.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(spec.user.additional_gids);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = json!(rlimits);
    }

    let mut linux = json!({
        "namespaces": namespaces_json(spec),
        "cgroupsPath": spec.cgroups_path,
        "resources": resources_json(spec),
    });
    if spec.privileged {
        let devices: Vec<Value> = inputs
            .host_devices
            .iter()
            .map(|d| {
                json!({"path": d.path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
                       "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid})
            })
            .collect();
        if !devices.is_empty() {
            linux["devices"] = json!(devices);
        }
    } else {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        linux["seccomp"] = seccomp_profile(&caps);
    }
    if !spec.sysctls.is_empty() {
        linux["sysctl"] = json!(spec.sysctls);
    }

    let mut config = json!({
        "ociVersion": OCI_VERSION,
        "root": { "path": spec.rootfs, "readonly": spec.readonly_rootfs },
        "process": process,
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(h) = &spec.hostname {
        config["hostname"] = json!(h);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> BundleInputs<'static> {
        BundleInputs {
            bundle_dir: Path::new("/b"),
            init: None,
            host_devices: &[],
            resolv_conf: true,
            bounding_capabilities: None,
        }
    }

    fn minimal() -> ContainerSpec {
        ContainerSpec::new("c1", "/r", vec!["sh".into(), "-c".into(), "true".into()])
    }

    #[test]
    fn minimal_spec_renders_the_whole_config() {
        let got = oci_config(&minimal(), &inputs()).unwrap();
        let caps = json!(DEFAULT_CAPABILITIES);
        let expected = json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/r", "readonly": false},
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh", "-c", "true"],
                "env": [format!("PATH={DEFAULT_PATH}"), "HOME=/root"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": false,
            },
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/etc/hosts", "type": "bind", "source": "/b/hosts", "options": ["rbind", "rprivate", "rw"]},
                {"destination": "/etc/hostname", "type": "bind", "source": "/b/hostname",
                 "options": ["rbind", "rprivate", "rw"]},
                {"destination": "/etc/resolv.conf", "type": "bind", "source": "/b/resolv.conf",
                 "options": ["rbind", "rprivate", "rw"]},
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "cgroupsPath": "/berth/c1",
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "maskedPaths": MASKED_PATHS,
                "readonlyPaths": READONLY_PATHS,
                "seccomp": seccomp_profile(&DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            },
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn full_spec_renders_process_resources_and_namespaces() {
        let mut s = minimal();
        s.env = vec![("FOO".into(), "bar".into()), ("HOME".into(), "/h".into())];
        s.cwd = Some("/app".into());
        s.user = User {
            uid: 1000,
            gid: 1001,
            additional_gids: vec![5, 6],
            home: Some("/home/app".into()),
        };
        s.hostname = Some("web".into());
        s.namespaces.network = NsMode::Join("/run/netns/t1".into());
        s.namespaces.ipc = NsMode::Host;
        s.resources = Resources {
            cpu_shares: Some(1),
            cpu_quota_us: Some(50_000),
            cpu_period_us: Some(100_000),
            memory_limit_bytes: Some(64 << 20),
            memory_reservation_bytes: Some(32 << 20),
            memory_swap_bytes: Some(64 << 20),
            memory_swappiness: None,
            pids_limit: Some(100),
        };
        s.rlimits = vec![Rlimit::from_ecs("nofile", 1024, 4096).unwrap()];
        s.readonly_rootfs = true;
        s.cgroups_path = "/berth/task-1/c1".into();
        s.sysctls.insert("net.core.somaxconn".into(), "1024".into());
        let got = oci_config(&s, &inputs()).unwrap();
        assert_eq!(got["hostname"], json!("web"));
        assert_eq!(got["root"], json!({"path": "/r", "readonly": true}));
        assert_eq!(
            got["process"]["user"],
            json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6]})
        );
        assert_eq!(got["process"]["cwd"], json!("/app"));
        assert_eq!(
            got["process"]["env"],
            json!([
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=web",
                "FOO=bar",
                "HOME=/h"
            ])
        );
        assert_eq!(
            got["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}])
        );
        assert_eq!(
            got["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "network", "path": "/run/netns/t1"}, {"type": "uts"}, {"type": "mount"}])
        );
        assert_eq!(got["linux"]["cgroupsPath"], json!("/berth/task-1/c1"));
        assert_eq!(
            got["linux"]["resources"],
            json!({
                "devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 67108864, "reservation": 33554432, "swap": 67108864},
                "cpu": {"shares": 2, "quota": 50000, "period": 100000},
                "pids": {"limit": 100},
            })
        );
        assert_eq!(
            got["linux"]["sysctl"],
            json!({"net.core.somaxconn": "1024"})
        );
    }

    #[test]
    fn privileged_gets_all_caps_devices_and_no_seccomp() {
        let mut s = minimal();
        s.privileged = true;
        let devs = [Device {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            file_mode: 0o666,
            uid: 0,
            gid: 0,
        }];
        let got = oci_config(
            &s,
            &BundleInputs {
                host_devices: &devs,
                ..inputs()
            },
        )
        .unwrap();
        assert_eq!(
            got["process"]["capabilities"]["bounding"],
            json!(ALL_CAPABILITIES)
        );
        assert!(got["linux"].get("seccomp").is_none());
        assert!(got["linux"].get("maskedPaths").is_none());
        assert_eq!(
            got["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
        // Only what the runtime holds: here everything but CAP_SYS_RESOURCE (24).
        let bounded = oci_config(
            &s,
            &BundleInputs {
                bounding_capabilities: Some(0x1ff_feff_ffff),
                ..inputs()
            },
        )
        .unwrap();
        let caps = bounded["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 1);
        assert!(!caps.contains(&json!("CAP_SYS_RESOURCE")));
        assert_eq!(
            got["linux"]["devices"],
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}])
        );
        let sys = got["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert_eq!(sys["options"][3], json!("rw"));
    }

    #[test]
    fn init_wraps_the_command_and_mounts_the_kit() {
        let kit = InitKit {
            binary: "/usr/bin/berth".into(),
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            libraries: vec![("libc.so.6".into(), "/lib/x86_64-linux-gnu/libc.so.6".into())],
        };
        let mut s = minimal();
        s.init = true;
        assert_eq!(oci_config(&s, &inputs()), Err(SpecError::NoInitKit));
        let got = oci_config(
            &s,
            &BundleInputs {
                init: Some(&kit),
                ..inputs()
            },
        )
        .unwrap();
        assert_eq!(
            got["process"]["args"],
            json!([
                "/.berth-init/ld.so",
                "--library-path",
                "/.berth-init/lib",
                "/.berth-init/berth",
                "init",
                "--",
                "sh",
                "-c",
                "true"
            ])
        );
        let dests: Vec<&str> = got["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert!(dests.ends_with(&[
            "/.berth-init",
            "/.berth-init/ld.so",
            "/.berth-init/lib/libc.so.6",
            "/.berth-init/berth"
        ]));
    }

    #[test]
    fn capabilities_add_and_drop() {
        let mut s = minimal();
        s.cap_add = vec!["net_admin".into(), "CAP_SYS_ADMIN".into()];
        s.cap_drop = vec!["MKNOD".into()];
        let caps = capabilities(&s, None).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        let seccomp = seccomp_profile(&caps);
        assert!(
            !seccomp["syscalls"][0]["names"]
                .as_array()
                .unwrap()
                .contains(&json!("mount"))
        );
        s.cap_drop = vec!["all".into()];
        assert!(capabilities(&s, None).unwrap().is_empty());
        s.cap_add = vec!["CAP_FLY".into()];
        assert_eq!(
            capabilities(&s, None),
            Err(SpecError::UnknownCapability("CAP_FLY".into()))
        );
    }

    #[test]
    fn invalid_specs_are_refused() {
        let mut s = minimal();
        s.id = "../etc".into();
        assert_eq!(
            oci_config(&s, &inputs()),
            Err(SpecError::InvalidId("../etc".into()))
        );
        let mut s = minimal();
        s.args.clear();
        assert_eq!(oci_config(&s, &inputs()), Err(SpecError::NoCommand));
        let mut s = minimal();
        s.cwd = Some("app".into());
        assert!(matches!(
            oci_config(&s, &inputs()),
            Err(SpecError::NotAbsolute { .. })
        ));
        let mut s = minimal();
        s.hostname = Some("h".into());
        s.namespaces.uts = NsMode::Host;
        assert_eq!(
            oci_config(&s, &inputs()),
            Err(SpecError::HostnameWithoutUts)
        );
        let mut s = minimal();
        s.env = vec![("A=B".into(), "c".into())];
        assert_eq!(
            oci_config(&s, &inputs()),
            Err(SpecError::InvalidEnvName("A=B".into()))
        );
    }

    #[test]
    fn host_network_binds_sys_and_skips_hostname_file() {
        let mut s = minimal();
        s.namespaces.network = NsMode::Host;
        s.namespaces.uts = NsMode::Host;
        let got = oci_config(
            &s,
            &BundleInputs {
                resolv_conf: false,
                ..inputs()
            },
        )
        .unwrap();
        let mounts = got["mounts"].as_array().unwrap();
        let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
        assert_eq!(sys["type"], json!("bind"));
        assert!(
            !mounts
                .iter()
                .any(|m| m["destination"] == "/etc/hostname"
                    || m["destination"] == "/etc/resolv.conf")
        );
    }

    #[test]
    fn ecs_ulimit_names_map_to_rlimits() {
        assert_eq!(Rlimit::from_ecs("core", 0, 0).unwrap().kind, "RLIMIT_CORE");
        assert_eq!(
            Rlimit::from_ecs("msgqueue", 1, 2).unwrap(),
            Rlimit {
                kind: "RLIMIT_MSGQUEUE".into(),
                soft: 1,
                hard: 2
            }
        );
        assert!(Rlimit::from_ecs("bogus", 1, 1).is_none());
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut s = minimal();
        s.namespaces.network = NsMode::Join("/run/netns/x".into());
        let text = serde_json::to_string(&s).unwrap();
        let back: ContainerSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
