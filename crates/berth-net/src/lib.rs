//! Task networking for the Berth agent: ECS's network modes on a Linux
//! host.
//!
//! | mode | what a task gets |
//! | --- | --- |
//! | `bridge` (the Linux EC2 default) | its own network namespace, a veth pair (host end on the Berth bridge, task end `eth0`), an address from the bridge's subnet, a default route via the bridge; container ports reach the host through published host ports (static, or dynamic ones placement chose from the ephemeral range) on every host address, 127.0.0.1 included, and from other hosts |
//! | `awsvpc` | the same namespace, veth and address, reported as an ECS `ElasticNetworkInterface` attachment ([`TaskNetwork::eni_attachment`], with `privateIPv4Address`); reachable at its own address from the host and from hosts that route the subnet to this one |
//! | `host` | nothing: the host's own stack |
//! | `none` | a namespace with only loopback |
//!
//! One namespace per *task* (all its containers join it, as in awsvpc and
//! as a Kubernetes pod), named `/run/netns/{prefix}{task_id}`: the path
//! goes to the runtime as `NsMode::Join(path)` (see `berth-runtime`'s
//! `spec.rs`), and the namespace outlives the agent like the containers
//! do.
//!
//! # Decisions
//!
//! **`ip` and `nft` binaries, not netlink in process.** Everything the
//! kernel is told goes through iproute2's `ip -batch` and nftables'
//! `nft -f`, behind the [`HostTools`] trait:
//! - *Lean and safe in a multi-threaded agent.* Creating a named namespace
//!   means `unshare` plus a bind mount, and configuring links inside it
//!   means `setns`; `ip netns add` and `ip -n` do that in their own process,
//!   so the agent never switches namespaces on a thread it shares.
//!   rtnetlink would add an async netlink stack (and its own
//!   `NetworkNamespace::add` forks the caller), and NAT still needs nftables,
//!   whose only complete, stable interface is the `nft` binary (the netlink
//!   crates for it bind the C libnftnl).
//! - *Batched, so cheap.* A task network is two processes (`ip -batch` in
//!   the host namespace, `ip -n NS -batch` inside): ≈ 15 ms here. A port
//!   change is one `nft -f`.
//! - *Atomic and inspectable.* `nft -f` applies a whole table in one
//!   transaction; operators debug with the same commands Berth runs.
//!   The scripts are rendered by pure functions ([`render`]) and tested as
//!   text; [`tools::RecordingTools`] tests the logic without a kernel.
//!
//! **Published ports are nftables DNAT, not a userspace proxy.** The
//! bridge's table (`ip {nft_table}`, owned by Berth and replaced whole on
//! every change) maps host ports to task address and port, in
//! `prerouting` (other hosts, tasks) and `output` (the host itself) for
//! packets to any local address. No process sits in the data path (no
//! per-connection cost, connections survive agent restarts, UDP works as
//! UDP, other hosts see the client's real address). Two costs, both
//! handled: DNAT of 127.0.0.1 to a bridge address needs
//! `route_localnet=1` on the bridge, and such connections (and hairpin
//! ones from tasks on the same bridge) are masqueraded to the bridge's
//! address so replies come back through the host. Host ports are a set
//! placement already made conflict-free; a clash is still refused here
//! ([`NetError::PortInUse`]) so a placement bug is seen, not silently
//! half-applied.
//!
//! **The credentials endpoint** (169.254.170.2:80, for task roles) is a
//! DNAT in the same table, from the bridge (bridge and awsvpc tasks) and
//! from the host (host-mode tasks) to an address and port of the agent's:
//! [`Network::set_credentials_endpoint`].
//!
//! **State before kernel.** IPAM and every task record live in a JSON file
//! (`{state_dir}/net-{bridge}.json`, written atomically) that is updated
//! before the kernel is touched; [`Network::recover`] reconciles after a
//! restart: intact tasks kept, lost ones freed, Berth-named strays removed.
//!
//! # Host requirements
//!
//! Root (CAP_NET_ADMIN, CAP_SYS_ADMIN), iproute2 and nftables (Debian:
//! `apt-get install iproute2 nftables`); kernel modules for veth, bridge,
//! nf_tables and nf_nat (loaded on demand). With `enable_ip_forward`, the
//! host forwards IPv4 (`net.ipv4.ip_forward=1`), as Docker's bridge needs
//! too. A firewall elsewhere that drops forwarded packets (Docker's own
//! `FORWARD` policy, say) also drops other hosts' traffic to published
//! ports: allow the Berth bridge there.
//!
//! # Layout (functional core, imperative shell)
//!
//! - Pure: [`addr`] (subnets, derived MACs and names), [`ipam`] (the
//!   allocator), [`config`], [`types`], [`state`] (bookkeeping shared by
//!   the real network and the fake), [`render`] (`ip` and `nft` scripts),
//!   [`routes`] (the host's routes, for subnet conflicts).
//! - Shell: [`tools`] ([`HostTools`]: the kernel seam), [`linux`]
//!   ([`LinuxNetwork`]), [`netns`] (running code inside a namespace on a
//!   dedicated thread), [`ports`] (host-port diagnostics).
//! - [`network`]: the [`Network`] trait; [`fake`]: [`FakeNetwork`].

pub mod addr;
pub mod config;
pub mod error;
pub mod fake;
pub mod ipam;
pub mod linux;
pub mod netns;
pub mod network;
pub mod ports;
pub mod render;
pub mod routes;
pub mod state;
pub mod tools;
pub mod types;

pub use addr::Ipv4Net;
pub use config::BridgeConfig;
pub use error::NetError;
pub use fake::FakeNetwork;
pub use ipam::{Ipam, IpamError};
pub use linux::LinuxNetwork;
pub use network::Network;
pub use tools::{HostTools, SystemTools};
pub use types::{
    CREDENTIALS_ADDR, CredentialsEndpoint, EniAttachment, NetworkMode, PortMapping, Protocol,
    PublishedPort, Recovered, TaskNetwork,
};
