//! A minimal init for containers with `initProcessEnabled` (what
//! `docker run --init` gives with tini), run as `berth init -- CMD ARGS...`.
//!
//! As pid 1 it starts the command as its only direct child, forwards every
//! signal it receives to it (a pid 1 without handlers would silently drop
//! SIGTERM), reaps every orphan re-parented to it so no zombies pile up,
//! and exits with the command's status (128 + signal if it was killed).

use crate::sys::{self, SigSet, WaitStatus};
use std::ffi::OsString;
use std::process::Command;

/// Entry point of `berth init [--] CMD [ARGS...]`; returns the exit code.
pub fn run(argv: Vec<OsString>) -> i32 {
    let mut argv = argv.into_iter().peekable();
    if argv.peek().is_some_and(|a| a == "--") {
        argv.next();
    }
    let Some(program) = argv.next() else {
        eprintln!("berth init: usage: berth init -- COMMAND [ARG...]");
        return 2;
    };
    let set = match SigSet::for_init() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth init: signal set: {e}");
            return 1;
        }
    };
    // Block before spawning, so nothing (SIGCHLD included) can slip by
    // between the spawn and the first wait. The child gets an empty mask
    // back (see pre_exec below).
    if let Err(e) = set.block() {
        eprintln!("berth init: blocking signals: {e}");
        return 1;
    }
    // Outside a pid namespace of our own, orphans come to the nearest
    // subreaper: be it, so they are still reaped.
    let _ = sys::set_child_subreaper();
    let mut command = Command::new(&program);
    command.args(argv);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls sigprocmask (via SigSet::unblock_all), which is
    // async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(sys::unblock_all_signals);
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth init: {}: {e}", program.to_string_lossy());
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let child_pid = child.id() as libc::pid_t;
    // We reap with waitpid(-1) below; `child` is never waited on through std.
    drop(child);
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth init: waiting for signals: {e}");
                return 1;
            }
        };
        if sig != libc::SIGCHLD {
            // The child may be gone already; nothing to forward to then.
            let _ = sys::kill(child_pid, sig);
            continue;
        }
        // SIGCHLD is not queued per child: reap everything that has exited.
        loop {
            match sys::waitpid(-1, true) {
                Ok(Some((pid, status))) if pid == child_pid => return exit_code(status),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    status.code()
}
