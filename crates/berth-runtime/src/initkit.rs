//! What it takes to run `berth init` inside any image.
//!
//! The init is the `berth` binary itself, bind-mounted read-only under
//! [`INIT_DIR`]. A dynamically linked binary cannot run in an image without
//! a compatible glibc (busybox, alpine, distroless), so the kit also binds
//! the host's dynamic loader and the libraries the binary needs, and starts
//! the init through the loader with `--library-path`: the image's own
//! libraries are never used. A static binary is bound alone.

use crate::spec::Mount;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the kit appears inside the container.
pub const INIT_DIR: &str = "/.berth-init";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitKit {
    /// The host path of the binary that implements `init`.
    pub binary: PathBuf,
    /// The ELF interpreter (dynamic loader), absent for a static binary.
    pub interpreter: Option<PathBuf>,
    /// `(soname, host path)` of every library the binary loads.
    pub libraries: Vec<(String, PathBuf)>,
}

impl InitKit {
    /// Inspect `binary` on the host: its ELF interpreter, and the libraries
    /// the interpreter would load (`ld.so --list`, which never runs the
    /// program).
    pub fn discover(binary: &Path) -> std::io::Result<InitKit> {
        let bytes = std::fs::read(binary)?;
        let interpreter = elf_interpreter(&bytes).map(PathBuf::from);
        let mut libraries = Vec::new();
        if let Some(interp) = &interpreter {
            let out = std::process::Command::new(interp)
                .arg("--list")
                .arg(binary)
                .output()?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "{} --list {}: {}",
                    interp.display(),
                    binary.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            libraries = parse_ld_list(&String::from_utf8_lossy(&out.stdout))
                .map_err(std::io::Error::other)?;
        }
        Ok(InitKit {
            binary: binary.to_path_buf(),
            interpreter,
            libraries,
        })
    }

    /// The mounts that make the kit appear under [`INIT_DIR`]: a small tmpfs
    /// (so nothing is created in the image's root but one empty directory),
    /// then read-only binds of each file.
    pub fn mounts(&self) -> Vec<Mount> {
        let mut mounts = vec![Mount::tmpfs(INIT_DIR, 1 << 20, &["mode=755"])];
        if let Some(interp) = &self.interpreter {
            mounts.push(Mount::bind(
                interp.to_string_lossy(),
                format!("{INIT_DIR}/ld.so"),
                true,
            ));
            for (soname, path) in &self.libraries {
                mounts.push(Mount::bind(
                    path.to_string_lossy(),
                    format!("{INIT_DIR}/lib/{soname}"),
                    true,
                ));
            }
        }
        mounts.push(Mount::bind(
            self.binary.to_string_lossy(),
            format!("{INIT_DIR}/berth"),
            true,
        ));
        mounts
    }

    /// The argv that precedes the container's own command.
    pub fn argv_prefix(&self) -> Vec<String> {
        let mut argv = Vec::new();
        if self.interpreter.is_some() {
            argv.push(format!("{INIT_DIR}/ld.so"));
            argv.push("--library-path".into());
            argv.push(format!("{INIT_DIR}/lib"));
        }
        argv.push(format!("{INIT_DIR}/berth"));
        argv.push("init".into());
        argv.push("--".into());
        argv
    }
}

/// The `PT_INTERP` of a 64-bit little-endian ELF file, if it has one.
pub fn elf_interpreter(bytes: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let phoff = usize::try_from(u64_at(32)?).ok()?;
    let phentsize = usize::from(u16_at(54)?);
    let phnum = usize::from(u16_at(56)?);
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? == PT_INTERP {
            let off = usize::try_from(u64_at(ph + 8)?).ok()?;
            let len = usize::try_from(u64_at(ph + 32)?).ok()?;
            let raw = bytes.get(off..off.checked_add(len)?)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            return std::str::from_utf8(&raw[..end]).ok().map(str::to_string);
        }
    }
    None
}

/// Parse the output of `ld.so --list`: `soname => /path (0x...)` lines.
/// The vDSO and the loader's own line carry no `=>` and are skipped.
pub fn parse_ld_list(text: &str) -> Result<Vec<(String, PathBuf)>, String> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let Some((soname, rest)) = line.split_once("=>") else {
            continue;
        };
        let soname = soname.trim();
        let path = rest.trim().split(" (").next().unwrap_or("").trim();
        if path.is_empty() || path == "not found" || !path.starts_with('/') {
            return Err(format!("library {soname} not found for the init binary"));
        }
        if !soname.is_empty() && !soname.contains('/') {
            libs.push((soname.to_string(), PathBuf::from(path)));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ld_list_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd2b7f1000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0d5c2a0000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0d5c0bf000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0d5c33c000)\n";
        assert_eq!(
            parse_ld_list(out).unwrap(),
            vec![
                (
                    "libgcc_s.so.1".to_string(),
                    PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1")
                ),
                (
                    "libc.so.6".to_string(),
                    PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")
                ),
            ]
        );
        assert!(parse_ld_list("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn finds_the_interpreter_of_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        // Built for the gnu target: dynamically linked against glibc.
        let interp = elf_interpreter(&bytes).expect("a dynamically linked test binary");
        assert!(interp.contains("ld-linux"), "{interp}");
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        let kit = InitKit::discover(&exe).unwrap();
        assert!(
            kit.libraries
                .iter()
                .any(|(name, _)| name.starts_with("libc.so")),
            "{kit:?}"
        );
    }

    #[test]
    fn static_kit_is_the_binary_alone() {
        let kit = InitKit {
            binary: "/usr/bin/berth".into(),
            interpreter: None,
            libraries: vec![],
        };
        assert_eq!(kit.argv_prefix(), vec!["/.berth-init/berth", "init", "--"]);
        let dests: Vec<String> = kit.mounts().into_iter().map(|m| m.destination).collect();
        assert_eq!(dests, vec!["/.berth-init", "/.berth-init/berth"]);
    }
}
