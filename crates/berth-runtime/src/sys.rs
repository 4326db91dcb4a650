//! Thin wrappers over the few system calls the shim, the init and the
//! runtime need. Every `unsafe` block in the crate that talks to libc is
//! here or says why it is sound where it stands.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

impl WaitStatus {
    fn from_raw(status: libc::c_int) -> Option<WaitStatus> {
        if libc::WIFEXITED(status) {
            Some(WaitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(WaitStatus::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }

    /// The shell convention: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => c,
            WaitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// Fork the calling process. `Ok(None)` in the child, `Ok(Some(pid))` in the
/// parent.
///
/// # Safety
/// The process must be single-threaded: after `fork` in a multi-threaded
/// process the child may only call async-signal-safe functions, and the
/// callers of this function (the shim) go on running ordinary Rust.
pub unsafe fn fork() -> io::Result<Option<libc::pid_t>> {
    // SAFETY: fork has no memory-safety preconditions of its own; the
    // single-threadedness the child relies on is this function's contract.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

/// Start a new session: no controlling terminal, no process group shared
/// with the caller, so terminal and group signals aimed at the agent miss.
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    cvt(unsafe { libc::setsid() }).map(|_| ())
}

/// Become the reaper of orphaned descendants (the container's init, once
/// `runc run -d` exits), so their exit status comes to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag, no pointers.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
        .map(|_| ())
}

/// `waitpid(pid, WNOHANG?)`; `Ok(None)` when nothing has exited yet (with
/// `nohang`) or a child only stopped/continued. `pid = -1` waits for any child.
pub fn waitpid(pid: libc::pid_t, nohang: bool) -> io::Result<Option<(libc::pid_t, WaitStatus)>> {
    let mut status: libc::c_int = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: `status` is a valid, writable c_int for the call's duration.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if ret == 0 {
            return Ok(None);
        }
        return Ok(WaitStatus::from_raw(status).map(|s| (ret, s)));
    }
}

/// Send `sig` to `pid`; `sig = 0` only checks that it exists.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill takes plain integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

/// A pollable descriptor that becomes readable when `pid` exits, whoever its
/// parent is.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor
    // or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Point `fd` at `/dev/null` (read-write).
pub fn redirect_to_devnull(fd: RawFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open; dup2 atomically replaces `fd`.
    cvt(unsafe { libc::dup2(null.as_raw_fd(), fd) }).map(|_| ())
}

/// `state` and `starttime` from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    /// Clock ticks since boot; with the pid, identifies a process uniquely.
    pub start_time: u64,
}

pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    // The command name (field 2) is in parentheses and may hold anything,
    // so fields are counted from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, starttime field 22.
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

pub fn proc_stat(pid: libc::pid_t) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A process named so that pid reuse cannot fool us: pid plus start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidRecord {
    pub pid: libc::pid_t,
    pub start_time: u64,
}

impl PidRecord {
    pub fn of(pid: libc::pid_t) -> Option<PidRecord> {
        proc_stat(pid).map(|s| PidRecord {
            pid,
            start_time: s.start_time,
        })
    }

    pub fn render(&self) -> String {
        format!("{} {}\n", self.pid, self.start_time)
    }

    pub fn parse(text: &str) -> Option<PidRecord> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse().ok()?;
        let start_time = it.next()?.parse().ok()?;
        Some(PidRecord { pid, start_time })
    }

    /// Still running (not exited, not a zombie) and still the same process.
    pub fn is_alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some(s) if s.start_time == self.start_time && s.state != 'Z' && s.state != 'X')
    }
}

/// Write `data` to `path` so that readers see the old content or the whole
/// new one, never a part: a temporary file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Empty the calling thread's signal mask. Async-signal-safe (used between
/// fork and exec).
pub fn unblock_all_signals() -> io::Result<()> {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given; sigprocmask
    // reads it and does not keep the pointer.
    unsafe {
        cvt(libc::sigemptyset(set.as_mut_ptr()))?;
        cvt(libc::sigprocmask(
            libc::SIG_SETMASK,
            set.as_ptr(),
            std::ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// The capability bounding set of this process (`CapBnd` in
/// `/proc/self/status`), as a bit mask by capability number.
pub fn bounding_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The signals an init may not block: synchronous faults, which must kill
/// it, and the terminal stop signals.
const UNBLOCKABLE: &[libc::c_int] = &[
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// A set of signals, as `sigwaitinfo` takes it.
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// Every signal an init should wait for instead of having delivered.
    pub fn for_init() -> io::Result<SigSet> {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises the whole set it is given.
        cvt(unsafe { libc::sigfillset(set.as_mut_ptr()) })?;
        // SAFETY: initialised by sigfillset just above.
        let mut set = unsafe { set.assume_init() };
        for &sig in UNBLOCKABLE {
            // SAFETY: `set` is an initialised sigset_t.
            cvt(unsafe { libc::sigdelset(&mut set, sig) })?;
        }
        Ok(SigSet(set))
    }

    /// Block these signals for the calling thread (and what it forks).
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: both pointers are valid for the call; the old set is not wanted.
        let ret =
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        if ret != 0 {
            Err(io::Error::from_raw_os_error(ret))
        } else {
            Ok(())
        }
    }

    /// Wait for one of the (blocked) signals and return its number.
    pub fn wait(&self) -> io::Result<libc::c_int> {
        loop {
            // SAFETY: the set is initialised; a null info pointer is allowed.
            let sig = unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) };
            if sig == -1 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            return Ok(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_awkward_names() {
        let line = "1234 (we ird) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(
            parse_proc_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn pid_record_identifies_this_process() {
        let me = PidRecord::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        assert_eq!(PidRecord::parse(&me.render()), Some(me));
        let stale = PidRecord {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!stale.is_alive());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn wait_status_codes() {
        assert_eq!(WaitStatus::Exited(3).code(), 3);
        assert_eq!(WaitStatus::Signaled(9).code(), 137);
    }
}
