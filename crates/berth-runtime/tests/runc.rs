//! Real containers: runc under the shim, on a busybox root filesystem.

mod common;

use berth_runtime::runtime::OOM_REASON;
use berth_runtime::spec::{DnsConfig, HostEntry, NsMode, Resources, Rlimit};
use berth_runtime::{
    CgroupManager, ContainerRuntime, ContainerState, RuntimeError, Signal, TaskLimits, stop, user,
};
use common::{Harness, WAIT};
use std::time::{Duration, Instant};

fn read(path: impl AsRef<std::path::Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[tokio::test]
async fn runs_a_command_and_keeps_its_output_and_exit_code() {
    let h = Harness::new("exit");
    let spec = h.sh("c", "echo hi; echo oops >&2; exit 3");
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(status.signal, None);
    assert!(!status.oom_killed);
    assert!(status.finished_at > 1.7e9, "{status:?}");
    assert_eq!(out, "hi\n");
    assert_eq!(err, "oops\n");
    // The log is JSON lines in Docker's shape.
    let first = std::fs::read_to_string(h.rt.log_path(&spec.id)).unwrap();
    let line: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    assert!(matches!(line["stream"].as_str(), Some("stdout" | "stderr")));
    assert_eq!(
        h.rt.state(&spec.id).await.unwrap(),
        ContainerState::Exited(status)
    );
}

#[tokio::test]
async fn env_cwd_user_hostname_and_rlimits_are_visible_inside() {
    let h = Harness::new("env");
    let mut spec = h.sh(
        "c",
        "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo host=$(hostname) file=$(cat /etc/hostname); \
         echo pwd=$(pwd); echo nofile=$(ulimit -n); env",
    );
    spec.user = user::resolve_in_rootfs(Some("app"), &h.rootfs()).unwrap();
    spec.cwd = Some("/home/app".into());
    spec.env = vec![("FOO".into(), "bar baz".into())];
    spec.hostname = Some("berthy".into());
    spec.rlimits = vec![Rlimit::from_ecs("nofile", 1234, 2048).unwrap()];
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    assert!(out.contains("uid=1000 gid=1000 groups=1000 50\n"), "{out}");
    assert!(out.contains("host=berthy file=berthy\n"), "{out}");
    assert!(out.contains("pwd=/home/app\n"), "{out}");
    assert!(out.contains("nofile=1234\n"), "{out}");
    for var in [
        "FOO=bar baz",
        "HOME=/home/app",
        "HOSTNAME=berthy",
        "PATH=/usr/local/sbin:",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(var)),
            "{var} missing from {out}"
        );
    }
}

#[tokio::test]
async fn missing_working_directory_is_created() {
    let h = Harness::new("cwd");
    let mut spec = h.sh("c", "pwd");
    spec.cwd = Some("/srv/app".into());
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    assert_eq!(out, "/srv/app\n");
}

#[tokio::test]
async fn extra_hosts_and_dns_servers_are_in_etc() {
    let h = Harness::new("etc");
    let mut spec = h.sh("c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf");
    spec.extra_hosts = vec![HostEntry {
        hostname: "db.internal".into(),
        ip_address: "10.0.0.5".into(),
    }];
    spec.dns = Some(DnsConfig {
        servers: vec!["10.0.0.2".into()],
        search: vec!["svc.local".into()],
        options: vec![],
    });
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    let (hosts, resolv) = out.split_once("---\n").unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("10.0.0.5\tdb.internal\n"), "{hosts}");
    assert_eq!(resolv, "nameserver 10.0.0.2\nsearch svc.local\n");
}

#[tokio::test]
async fn cgroup_limits_reach_the_container_and_task_cgroups() {
    let h = Harness::new("cgroups");
    h.create_task(&TaskLimits {
        cpu_units: Some(512),
        memory_bytes: Some(256 << 20),
        pids: Some(200),
    });
    let mut spec = h.sh(
        "c",
        "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) shares=$(cat /sys/fs/cgroup/cpu/cpu.shares); \
         echo ready; exec sleep 1000",
    );
    spec.resources = Resources {
        cpu_shares: Some(256),
        memory_limit_bytes: Some(64 << 20),
        memory_reservation_bytes: Some(32 << 20),
        pids_limit: Some(50),
        ..Resources::default()
    };
    h.rt.start(&spec).await.unwrap();
    let out = h.wait_for_output(&spec.id, "ready").await;
    // Inside: runc mounts the container's own cgroups at /sys/fs/cgroup.
    assert!(
        out.contains(&format!("mem={} shares=256\n", 64 << 20)),
        "{out}"
    );
    // Outside, in the container's cgroup under the task's.
    assert_eq!(
        read(
            h.cgroup_dir("memory", &spec.id)
                .join("memory.limit_in_bytes")
        ),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(
            h.cgroup_dir("memory", &spec.id)
                .join("memory.soft_limit_in_bytes")
        ),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        read(h.cgroup_dir("cpu", &spec.id).join("cpu.shares")),
        "256"
    );
    assert_eq!(read(h.cgroup_dir("pids", &spec.id).join("pids.max")), "50");
    // The task level: ECS task cpu 512 = half a CPU as a CFS quota.
    assert_eq!(
        read(h.task_cgroup_dir("cpu").join("cpu.cfs_quota_us")),
        "50000"
    );
    assert_eq!(
        read(h.task_cgroup_dir("cpu").join("cpu.cfs_period_us")),
        "100000"
    );
    assert_eq!(
        read(h.task_cgroup_dir("memory").join("memory.limit_in_bytes")),
        (256u64 << 20).to_string()
    );
    assert_eq!(read(h.task_cgroup_dir("pids").join("pids.max")), "200");
    let stats = h.cg.memory_stats(&spec.cgroups_path).unwrap();
    assert_eq!(stats.limit_bytes, 64 << 20);
    assert!(stats.usage_bytes > 0);

    h.rt.kill(&spec.id, Signal::KILL).await.unwrap();
    let status = h.rt.wait(&spec.id, WAIT).await.unwrap().unwrap();
    assert_eq!(
        (status.exit_code, status.signal, status.oom_killed),
        (Some(137), Some(9), false)
    );

    // delete releases runc's state, the container's cgroups and its files;
    // remove_task the task's cgroups in every hierarchy.
    h.rt.delete(&spec.id).await.unwrap();
    assert!(!h.runc_knows(&spec.id));
    assert!(!h.rt.state_dir(&spec.id).exists());
    assert!(!h.cgroup_dir("memory", &spec.id).exists());
    assert_eq!(
        h.rt.state(&spec.id).await.unwrap(),
        ContainerState::NotFound
    );
    h.cg.remove_task(&h.task).unwrap();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let dir = hierarchy
            .unwrap()
            .path()
            .join(common::CGROUP_PREFIX)
            .join(&h.task);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_an_out_of_memory_error() {
    let h = Harness::new("oom");
    h.create_task(&TaskLimits {
        cpu_units: None,
        memory_bytes: Some(256 << 20),
        pids: None,
    });
    // Doubling a shell string allocates until the OOM killer steps in.
    let mut spec = h.sh("c", "x=a; while :; do x=$x$x; done");
    spec.resources.memory_limit_bytes = Some(16 << 20);
    let (status, _, err) = h.run(&spec).await;
    assert_eq!(
        (status.exit_code, status.signal),
        (Some(137), Some(9)),
        "{err}"
    );
    assert!(status.oom_killed, "{status:?}");
    assert_eq!(status.reason().as_deref(), Some(OOM_REASON));
}

#[tokio::test]
async fn exceeding_the_task_memory_limit_is_an_out_of_memory_error() {
    let h = Harness::new("task-oom");
    h.create_task(&TaskLimits {
        cpu_units: None,
        memory_bytes: Some(16 << 20),
        pids: None,
    });
    // No container-level limit: the task's 16 MiB is what is hit.
    let spec = h.sh("c", "x=a; while :; do x=$x$x; done");
    let (status, _, err) = h.run(&spec).await;
    assert_eq!(
        (status.exit_code, status.signal),
        (Some(137), Some(9)),
        "{err}"
    );
    assert!(status.oom_killed, "{status:?}");
}

#[tokio::test]
async fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let h = Harness::new("stop-kill");
    let spec = h.sh("c", "trap '' TERM; echo ready; sleep 1000");
    h.rt.start(&spec).await.unwrap();
    h.wait_for_output(&spec.id, "ready").await;
    let begun = Instant::now();
    let status = stop(&h.rt, &spec.id, Duration::from_secs(2)).await.unwrap();
    let took = begun.elapsed();
    assert_eq!((status.exit_code, status.signal), (Some(137), Some(9)));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
async fn stop_returns_as_soon_as_sigterm_is_honoured() {
    let h = Harness::new("stop-term");
    let spec = h.sh(
        "c",
        "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done",
    );
    h.rt.start(&spec).await.unwrap();
    h.wait_for_output(&spec.id, "ready").await;
    let begun = Instant::now();
    let status = stop(&h.rt, &spec.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "{:?}",
        begun.elapsed()
    );
    assert_eq!((status.exit_code, status.signal), (Some(0), None));
    assert!(h.output(&spec.id).await.0.contains("bye\n"));
    // Stopping again is harmless and answers the same.
    assert_eq!(
        stop(&h.rt, &spec.id, Duration::from_secs(1)).await.unwrap(),
        status
    );
}

#[tokio::test]
async fn init_process_reaps_zombies_and_forwards_sigterm() {
    let h = Harness::new("init");
    let mut spec = h.sh(
        "c",
        "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); \
         (sleep 0.2 &); sleep 1; \
         echo zombies=$(cat /proc/[0-9]*/stat | awk '$3 == \"Z\"' | wc -l); \
         trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
    );
    spec.init = true;
    h.rt.start(&spec).await.unwrap();
    let out = h.wait_for_output(&spec.id, "ready").await;
    assert!(out.contains("pid1=/.berth-init/"), "{out}");
    assert!(out.contains(" init -- sh -c "), "{out}");
    assert!(out.contains("zombies=0\n"), "{out}");
    let status = stop(&h.rt, &spec.id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (status.exit_code, status.signal),
        (Some(7), None),
        "{:?}",
        h.output(&spec.id).await
    );
    assert!(h.output(&spec.id).await.0.contains("got-term\n"));
}

#[tokio::test]
async fn init_exits_with_the_signal_of_its_child() {
    let h = Harness::new("init-sig");
    let mut spec = h.sh("c", "grep Sig /proc/self/status; kill -USR1 $$; sleep 5");
    spec.init = true;
    let (status, _, err) = h.run(&spec).await;
    assert_eq!(
        status.exit_code,
        Some(128 + libc::SIGUSR1),
        "{err} {:?}",
        h.output(&spec.id).await
    );
}

#[tokio::test]
async fn readonly_root_filesystem_refuses_writes() {
    let h = Harness::new("ro");
    let mut spec = h.sh("c", "touch /x; echo rc=$?; touch /dev/shm/y && echo shm-ok");
    spec.readonly_rootfs = true;
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0));
    assert!(out.contains("rc=1\n"), "{out}");
    assert!(out.contains("shm-ok\n"), "{out}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!h.rootfs().join("x").exists());
}

#[tokio::test]
async fn a_new_runtime_recovers_running_and_exited_containers() {
    let h = Harness::new("recover");
    let spec = h.spec("c", &["sleep", "1000"]);
    let pid = h.rt.start(&spec).await.unwrap();
    assert_eq!(
        h.rt.state(&spec.id).await.unwrap(),
        ContainerState::Running { pid }
    );

    // The agent restarts: a fresh runtime over the same state directories.
    let again = h.runtime();
    assert_eq!(
        again.recover(&spec.id).await.unwrap(),
        ContainerState::Running { pid }
    );
    assert_eq!(again.list().await.unwrap(), vec![spec.id.clone()]);
    assert_eq!(
        again
            .wait(&spec.id, Duration::from_millis(50))
            .await
            .unwrap(),
        None
    );
    again.kill(&spec.id, Signal::KILL).await.unwrap();
    let status = again.wait(&spec.id, WAIT).await.unwrap().unwrap();
    assert_eq!((status.exit_code, status.signal), (Some(137), Some(9)));

    let third = h.runtime();
    assert_eq!(
        third.recover(&spec.id).await.unwrap(),
        ContainerState::Exited(status)
    );
    // Killing an exited container is not an error.
    third.kill(&spec.id, Signal::TERM).await.unwrap();
}

#[tokio::test]
async fn pid_and_network_namespaces_are_the_containers_own() {
    let h = Harness::new("ns");
    let spec = h.sh(
        "c",
        "echo pid=$$; echo procs=$(ls /proc | grep -c '^[0-9]'); cat /proc/net/dev",
    );
    let (status, out, err) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    assert!(out.contains("pid=1\n"), "{out}");
    let procs: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs < 10, "{out}");
    let interfaces: Vec<&str> = out
        .lines()
        .skip(4)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, vec!["lo"], "{out}");
}

#[tokio::test]
async fn a_container_can_join_another_ones_network_namespace() {
    let h = Harness::new("join");
    let first = h.spec("a", &["sleep", "1000"]);
    let pid = h.rt.start(&first).await.unwrap();
    let netns = format!("/proc/{pid}/ns/net");
    let want = std::fs::read_link(&netns).unwrap();
    let mut second = h.sh("b", "readlink /proc/self/ns/net");
    second.namespaces.network = NsMode::Join(netns.into());
    let (status, out, err) = h.run(&second).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    assert_eq!(out.trim(), want.to_string_lossy());
    assert_ne!(std::fs::read_link("/proc/self/ns/net").unwrap(), want);
    h.rt.kill(&first.id, Signal::KILL).await.unwrap();
}

#[tokio::test]
async fn privileged_containers_get_every_capability() {
    let h = Harness::new("priv");
    let mut normal = h.sh("n", "grep CapEff /proc/self/status");
    let mut privileged = h.sh("p", "grep CapEff /proc/self/status; ls /dev");
    privileged.privileged = true;
    normal.readonly_rootfs = false;
    let (_, out_n, _) = h.run(&normal).await;
    let (status, out_p, err) = h.run(&privileged).await;
    assert_eq!(status.exit_code, Some(0), "{err}");
    // Docker's default set vs. everything the kernel has.
    assert!(out_n.contains("00000000a80425fb"), "{out_n}");
    let eff = u64::from_str_radix(
        out_p
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap(),
        16,
    )
    .unwrap();
    // Every capability the runtime itself holds (a sandbox may withhold some).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    let all = (1u64 << berth_runtime::spec::ALL_CAPABILITIES.len()) - 1;
    assert_eq!(eff, u64::from_str_radix(bnd, 16).unwrap() & all, "{out_p}");
    assert!(eff.count_ones() > 30, "{out_p}");
    // Host devices are there (those runc always adds aside).
    let host = berth_runtime::runc::host_devices();
    let extra = host.iter().find(|d| {
        d.path.matches('/').count() == 2
            && ![
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
            ]
            .contains(&d.path.as_str())
    });
    if let Some(d) = extra {
        let name = d.path.trim_start_matches("/dev/");
        assert!(
            out_p.lines().any(|l| l == name),
            "{name} missing from {out_p}"
        );
    }
}

#[tokio::test]
async fn unprivileged_containers_cannot_mount() {
    let h = Harness::new("seccomp");
    let spec = h.sh(
        "c",
        "mkdir -p /mnt/t; mount -t tmpfs none /mnt/t; echo rc=$?",
    );
    let (status, out, _) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0));
    assert!(out.contains("rc=") && !out.contains("rc=0"), "{out}");
}

#[tokio::test]
async fn a_command_that_cannot_start_is_reported_with_runcs_reason() {
    let h = Harness::new("fail");
    let spec = h.spec("c", &["/no/such/binary"]);
    let err = h.rt.start(&spec).await.unwrap_err();
    match &err {
        RuntimeError::StartFailed { message, .. } => {
            assert!(message.contains("/no/such/binary"), "{message}")
        }
        other => panic!("unexpected {other:?}"),
    }
    let ContainerState::Exited(status) = h.rt.state(&spec.id).await.unwrap() else {
        panic!("not exited")
    };
    assert_eq!(status.exit_code, None);
    assert!(
        status
            .reason()
            .unwrap()
            .starts_with("CannotStartContainerError: "),
        "{status:?}"
    );
    h.rt.delete(&spec.id).await.unwrap();
    assert!(!h.rt.state_dir(&spec.id).exists());
    // Starting twice under one id is refused.
    let twice = h.spec("d", &["true"]);
    h.rt.start(&twice).await.unwrap();
    assert!(matches!(
        h.rt.start(&twice).await,
        Err(RuntimeError::AlreadyExists(_))
    ));
}

#[tokio::test]
async fn logs_rotate_by_size() {
    let h = Harness::with_config("rotate", |cfg| {
        cfg.log_max_bytes = 4096;
        cfg.log_max_files = 3;
    });
    let spec = h.sh("c", "seq 1 3000");
    let (status, out, _) = h.run(&spec).await;
    assert_eq!(status.exit_code, Some(0));
    let base = h.rt.log_path(&spec.id);
    for n in 0..3 {
        let len = std::fs::metadata(berth_runtime::logs::rotated_path(&base, n))
            .unwrap()
            .len();
        assert!(len <= 4096, "file {n} is {len} bytes");
    }
    assert!(!berth_runtime::logs::rotated_path(&base, 3).exists());
    // The newest lines are kept, in order, the oldest rotated away.
    let nums: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(*nums.last().unwrap(), 3000);
    assert!(nums.len() < 3000);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test]
async fn a_container_whose_shim_died_is_still_seen_and_ends_as_unknown() {
    let h = Harness::new("lost");
    let spec = h.spec("c", &["sleep", "1000"]);
    let pid = h.rt.start(&spec).await.unwrap();
    let shim_pid: i32 = read(h.rt.state_dir(&spec.id).join("shim.pid"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // SAFETY: kill with plain integers; shim_pid is the shim this test started.
    assert_eq!(unsafe { libc::kill(shim_pid, libc::SIGKILL) }, 0);
    while std::path::Path::new(&format!("/proc/{shim_pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{shim_pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // runc still knows it: running, unsupervised.
    assert_eq!(
        h.rt.state(&spec.id).await.unwrap(),
        ContainerState::Running { pid }
    );
    h.rt.kill(&spec.id, Signal::KILL).await.unwrap();
    let status = h.rt.wait(&spec.id, WAIT).await.unwrap().unwrap();
    assert_eq!(status.exit_code, None);
    assert!(
        status.reason().unwrap().starts_with("InternalError: "),
        "{status:?}"
    );
    h.rt.delete(&spec.id).await.unwrap();
    assert!(!h.runc_knows(&spec.id));
}
