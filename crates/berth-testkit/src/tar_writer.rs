//! Reproducible tarballs: every header field that could vary between runs
//! (mtime, owner names, entry order) is fixed, so the same inputs always
//! give the same digests.

/// 2024-01-01T00:00:00Z. Not zero, so `ls -l` in a container looks sane.
pub(crate) const MTIME: u64 = 1_704_067_200;
pub(crate) const CREATED: &str = "2024-01-01T00:00:00Z";

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Dir {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::Dir {
            path: path.to_owned(),
            mode,
            uid: 0,
            gid: 0,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }

    pub fn file(path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.to_owned(),
            mode,
            data: data.into(),
        }
    }
}

/// Entries are written in the order given.
pub(crate) fn write(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(MTIME);
        header.set_uid(0);
        header.set_gid(0);
        // Writing into a Vec cannot fail; a path the tar format cannot
        // hold is a bug in the caller's image definition.
        let result = match entry {
            Entry::Dir {
                path,
                mode,
                uid,
                gid,
            } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(*uid);
                header.set_gid(*gid);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), std::io::empty())
            }
            Entry::File { path, mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, data.as_slice())
            }
            Entry::Symlink { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
        };
        if let Err(e) = result {
            panic!("tar entry {}: {e}", entry.path());
        }
    }
    builder
        .into_inner()
        .unwrap_or_else(|e| panic!("finish tar: {e}"))
}
