//! Containers on one host, for the Berth agent.
//!
//! # The OCI runtime runs out of process: runc, under a shim
//!
//! Berth does not create namespaces and cgroups itself. It writes an OCI
//! bundle and has `runc` run it, in a process of its own, supervised by a
//! small per-container *shim* (the role conmon plays for Podman and
//! containerd-shim for containerd):
//!
//! - **Never fork the agent.** Creating a container means `clone` with new
//!   namespaces, `setns`, `pivot_root`, dropping capabilities: things that
//!   cannot be done safely from a multi-threaded async process. libcontainer
//!   (youki) forks its caller, so linking it into the agent is out; runc
//!   (or crun, youki's CLI — same command line) in a child process is the
//!   proven, audited path, and swapping runtimes is a path in a config.
//! - **Containers outlive the agent.** The shim is re-parented away from
//!   the agent and owns the container: it is the child subreaper that
//!   collects the container's real wait status, it drains stdout/stderr into
//!   rotated JSON-lines logs, and it leaves `exit.json` behind. An agent that
//!   restarts (upgrade, crash) re-adopts running containers from their state
//!   directories ([`runc::RuncRuntime::recover`]) and still learns how the
//!   ones that ended while it was away exited.
//! - **Cost.** `runc` is a Go binary: about 40–50 ms a start on this kind
//!   of machine. The shim adds one fork/exec of the helper binary and a pipe
//!   handshake: measured with `examples/start_latency.rs` (busybox `true`,
//!   median of 20, interleaved, release build, 2 cores), `start()` returns
//!   "running" in ≈ 53–59 ms and `exit.json` is there at ≈ 56–62 ms, against
//!   ≈ 47–50 ms for a bare foreground `runc run` of the same bundle
//!   (create to exit): 1.13–1.24× bare.
//!
//! The `berth` binary exposes [`shim::run`] as the hidden `berth shim`
//! subcommand and [`init::run`] as `berth init` (the init for containers
//! with `initProcessEnabled`, bind-mounted into the container under
//! [`initkit::INIT_DIR`] together with the dynamic loader and libraries it
//! needs, so it runs in any image). Both must be dispatched before any
//! thread starts (no async runtime yet): the shim forks, and the init's
//! signal mask is per thread.
//!
//! # What the caller prepares
//!
//! [`spec::ContainerSpec`] is already resolved: `args` is entryPoint +
//! command merged with the image config, `user` is numeric
//! ([`user::resolve_in_rootfs`] reads the image's passwd/group), the rootfs
//! is unpacked, and the task's cgroup exists
//! ([`cgroups::CgroupManager::create_task`], with
//! [`cgroups::CgroupManager::container_path`] as the spec's `cgroupsPath`).
//!
//! # Layout (functional core, imperative shell)
//!
//! - [`spec`]: pure. [`spec::ContainerSpec`] → OCI `config.json`.
//! - [`etc`], [`user`]: pure rendering of `/etc/hosts`, `/etc/resolv.conf`,
//!   `/etc/hostname`; resolution of the ECS `user` against the image's
//!   passwd/group.
//! - [`runtime`]: the [`runtime::ContainerRuntime`] trait, exit statuses,
//!   and [`runtime::stop`] (SIGTERM, `stopTimeout`, SIGKILL).
//! - [`runc`]: [`runc::RuncRuntime`], the real runtime. [`fake`]:
//!   [`fake::FakeRuntime`], for tests of callers.
//! - [`shim`], [`init`]: the two helper processes. [`logs`]: the log format
//!   and rotation. [`initkit`]: what is mounted to run the init.
//! - [`cgroups`]: task-level cgroup v1 parents ([`cgroups::CgroupManager`],
//!   real and fake); runc creates each container's cgroup beneath its task's.

pub mod cgroups;
pub mod etc;
pub mod fake;
pub mod init;
pub mod initkit;
pub mod logs;
pub mod runc;
pub mod runtime;
pub mod shim;
pub mod spec;
mod sys;
pub mod user;

pub use cgroups::{CgroupManager, FakeCgroups, TaskLimits, V1Cgroups};
pub use fake::FakeRuntime;
pub use runc::{RuncConfig, RuncRuntime};
pub use runtime::{ContainerRuntime, ContainerState, ExitStatus, RuntimeError, Signal, stop};
pub use spec::ContainerSpec;
