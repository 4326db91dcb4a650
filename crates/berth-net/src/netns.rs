//! Running code inside a network namespace.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling *thread*
//! only. Doing it on a tokio worker would leave that worker (and every
//! future task scheduled on it) in the wrong namespace, so these helpers
//! always start a fresh OS thread, switch it, run the closure, and let the
//! thread end with it. Sockets created on that thread stay in the
//! namespace after the thread is gone, so a listener opened here can be
//! handed back and used anywhere.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread::JoinHandle;

/// Moves the calling thread into the network namespace at `path` (a
/// `/run/netns/NAME` bind mount or `/proc/PID/ns/net`). Only for threads
/// that are about to end or are dedicated to that namespace.
fn enter(path: &Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: a plain syscall on a valid descriptor; it affects only the
    // calling thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a new thread inside the namespace at `path` and waits for
/// it. Blocks: from async code, call it through `spawn_blocking`.
pub fn run_in<R, F>(path: &Path, f: F) -> io::Result<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    spawn_in(path, f)?
        .join()
        .map_err(|_| io::Error::other("the closure run in the namespace panicked"))
}

/// Starts `f` on a new thread inside the namespace at `path`. Returns once
/// the thread is in the namespace (or with the reason it could not get
/// there); `f` goes on running.
pub fn spawn_in<R, F>(path: &Path, f: F) -> io::Result<JoinHandle<R>>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let path = path.to_path_buf();
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<()>>(1);
    let handle = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let entered = enter(&path);
            let ok = entered.is_ok();
            let _ = tx.send(entered);
            if !ok {
                // The caller got the error; `f` must not run in the wrong
                // namespace. End the thread quietly (no panic hook).
                std::panic::resume_unwind(Box::new("setns failed"));
            }
            f()
        })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("the namespace thread ended early")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_an_error() {
        let err = run_in(Path::new("/run/netns/berth-no-such-namespace"), || 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn own_namespace_runs() {
        // Our own namespace: setns into it is allowed and changes nothing.
        let pid = std::process::id();
        let r = run_in(Path::new(&format!("/proc/{pid}/ns/net")), || 7);
        match r {
            Ok(v) => assert_eq!(v, 7),
            // Without CAP_SYS_ADMIN setns is refused; that is fine here.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
        }
    }
}
