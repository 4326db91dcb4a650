//! Unpacking layers safely, once each, into overlay lower directories.
//!
//! A layer tarball is untrusted input. Every entry is created relative to
//! a directory file descriptor, walking parents one component at a time
//! with `O_NOFOLLOW | O_DIRECTORY`, so no symlink in the destination is ever
//! followed and nothing can be written outside the layer: `..` components
//! are refused, absolute paths are taken relative to the layer root, and
//! hard links may only point at entries already inside the layer. OCI
//! whiteouts become overlayfs ones (a 0:0 character device; the
//! `trusted.overlay.opaque` xattr for opaque directories).

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::digest::{Digest, HashingReader};
use crate::error::{ImageError, IoContext};
use crate::store::ContentStore;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping with no meaning here.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Layers must not smuggle in overlayfs metadata (redirects, metacopy,
/// opaque markers) of their own; only whiteout conversion writes it.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// What the media type claims; `None` when it names no compression
    /// (uncompressed, or a type we only learn from the bytes).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    pub fn from_magic(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if bytes.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Unpacks the layer blob `digest` (already in `store`) into
/// `layers/<diff_id hex>/` unless it is there already, checking that the
/// uncompressed stream hashes to `diff_id`. Blocking: run it off the async
/// runtime.
pub fn unpack_layer(
    store: &ContentStore,
    digest: &Digest,
    media_type: &str,
    diff_id: &Digest,
) -> Result<PathBuf, ImageError> {
    let final_dir = store.layer_dir(diff_id);
    if final_dir.is_dir() {
        return Ok(final_dir);
    }
    let blob = store.blob_path(digest);
    let file = std::fs::File::open(&blob).ctx(|| format!("open layer blob {digest}"))?;
    // A temporary sibling, renamed into place only when complete: a crash
    // never leaves a half layer under the final name.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{}-", &diff_id.hex()[..12]))
        .tempdir_in(store.layers_root())
        .ctx(|| "create temporary layer directory".into())?;
    let actual = extract_layer(file, media_type, tmp.path()).map_err(|e| label(e, digest))?;
    if &actual != diff_id {
        return Err(ImageError::InvalidLayer {
            layer: digest.to_string(),
            message: format!(
                "uncompressed content has digest {actual}, the image config says {diff_id}"
            ),
        });
    }
    let dir = std::fs::File::open(tmp.path()).ctx(|| "open temporary layer".into())?;
    // One syncfs instead of an fsync per file; the rename below must not
    // reach the disk before the files it publishes.
    rustix::fs::syncfs(&dir).ctx(|| "sync layer".into())?;
    drop(dir);
    match std::fs::rename(tmp.path(), &final_dir) {
        Ok(()) => {
            // Already moved: nothing left for TempDir's drop to delete.
            let _ = tmp.keep();
            Ok(final_dir)
        }
        // Another pull of an image sharing this layer finished first; its
        // copy is identical (same diff id), ours is discarded on drop.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
            ) =>
        {
            Ok(final_dir)
        }
        Err(e) => Err(ImageError::io(format!("publish layer {diff_id}"), e)),
    }
}

fn label(error: ImageError, digest: &Digest) -> ImageError {
    match error {
        ImageError::InvalidLayer { message, .. } => ImageError::InvalidLayer {
            layer: digest.to_string(),
            message,
        },
        other => other,
    }
}

/// Extracts one layer tarball (any supported compression) into the
/// existing, empty directory `dest`, returning the digest of the
/// uncompressed tar (the layer's diff id).
pub fn extract_layer(
    reader: impl Read,
    media_type: &str,
    dest: &Path,
) -> Result<Digest, ImageError> {
    let invalid = |message: String| ImageError::InvalidLayer {
        layer: dest.display().to_string(),
        message,
    };
    let mut reader = BufReader::with_capacity(128 * 1024, reader);
    let magic = reader.fill_buf().ctx(|| "read layer".into())?;
    let detected = Compression::from_magic(magic);
    let empty = magic.is_empty();
    if let Some(claimed) = Compression::from_media_type(media_type)
        && claimed != Compression::None
        && claimed != detected
        && !empty
    {
        return Err(invalid(format!(
            "media type {media_type} but the content is {detected:?}"
        )));
    }
    let mut hashing = HashingReader::new(decompress(reader, detected));
    let mut extractor = Extractor::new(dest)?;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive
            .entries()
            .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| invalid(format!("corrupt tar: {e}")))?;
            extractor.entry(entry)?;
        }
    }
    // The diff id covers the whole stream, tar padding included.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| invalid(format!("corrupt stream: {e}")))?;
    extractor.finish()?;
    Ok(hashing.finish().0)
}

/// A reader of the uncompressed stream.
pub(crate) fn decompress<'a, R: BufRead + 'a>(
    reader: R,
    compression: Compression,
) -> Box<dyn Read + 'a> {
    match compression {
        Compression::None => Box::new(reader),
        // Multi-member: parallel gzip tools write one member per chunk.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(ZstdReader::new(reader)),
    }
}

/// Metadata of one entry, gathered before its data is read.
struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    times: Timestamps,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Extractor {
    root: OwnedFd,
    dest: PathBuf,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(Vec<OsString>, Timestamps)>,
    /// The parent directory of the previous entry; tar lists siblings
    /// together, so this saves re-walking most paths.
    last_parent: Option<(Vec<OsString>, OwnedFd)>,
}

impl Extractor {
    fn new(dest: &Path) -> Result<Extractor, ImageError> {
        let root = rustix::fs::open(
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", dest.display()))?;
        // tempdir() makes 0700; a layer root is a normal directory.
        rustix::fs::fchmod(&root, Mode::from_raw_mode(0o755))
            .ctx(|| format!("chmod {}", dest.display()))?;
        Ok(Extractor {
            root,
            dest: dest.to_owned(),
            dir_times: Vec::new(),
            last_parent: None,
        })
    }

    fn invalid(&self, path: &[u8], message: impl std::fmt::Display) -> ImageError {
        ImageError::InvalidLayer {
            layer: self.dest.display().to_string(),
            message: format!("{}: {message}", String::from_utf8_lossy(path)),
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw_path = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let components = normalize(&raw_path).map_err(|m| self.invalid(&raw_path, m))?;
        // aufs keeps hard-link bookkeeping under `.wh..wh.plnk/`; like
        // Docker, skip anything in such a directory.
        if components
            .iter()
            .rev()
            .skip(1)
            .any(|c| c.as_bytes().starts_with(WHITEOUT_META_PREFIX.as_bytes()))
        {
            return Ok(());
        }
        let meta = self.meta(&mut entry, &raw_path)?;

        let Some((name, parents)) = components.split_last() else {
            // `./` itself: the layer root's own attributes.
            if kind == tar::EntryType::Directory {
                let root = rustix::io::dup(&self.root).ctx(|| "dup layer root".into())?;
                self.apply_fd_meta(&root, &meta, &raw_path)?;
                self.dir_times.push((Vec::new(), meta.times));
            }
            return Ok(());
        };
        let parent = self.open_parent(parents, &raw_path)?;
        let parent = parent.as_fd();
        let name_str = name.to_string_lossy();

        if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
            if name_str == OPAQUE_WHITEOUT {
                return rustix::fs::fsetxattr(parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .ctx(|| format!("mark {} opaque", String::from_utf8_lossy(&raw_path)));
            }
            if name_str.starts_with(WHITEOUT_META_PREFIX) {
                return Ok(());
            }
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(self.invalid(&raw_path, "invalid whiteout"));
            }
            let hidden = OsStr::from_bytes(&name.as_bytes()[WHITEOUT_PREFIX.len()..]);
            self.remove_existing(parent, hidden, false, &raw_path)?;
            rustix::fs::mknodat(
                parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rustix::fs::makedev(0, 0),
            )
            .ctx(|| format!("create whiteout for {}", String::from_utf8_lossy(&raw_path)))?;
            return self.apply_path_meta(parent, hidden, &meta, false, &raw_path);
        }

        match kind {
            tar::EntryType::Directory => {
                let existing_dir = self.remove_existing(parent, name, true, &raw_path)?;
                if !existing_dir {
                    rustix::fs::mkdirat(parent, name.as_os_str(), Mode::from_raw_mode(0o700))
                        .ctx(|| format!("create {}", String::from_utf8_lossy(&raw_path)))?;
                }
                let dir =
                    open_dir_nofollow(parent, name).map_err(|e| self.walk_error(e, &raw_path))?;
                self.apply_fd_meta(&dir, &meta, &raw_path)?;
                self.dir_times.push((components.clone(), meta.times));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.remove_existing(parent, name, false, &raw_path)?;
                let fd = rustix::fs::openat(
                    parent,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .ctx(|| format!("create {}", String::from_utf8_lossy(&raw_path)))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut entry, &mut file)
                    .map_err(|e| self.invalid(&raw_path, format!("reading content: {e}")))?;
                let fd = OwnedFd::from(file);
                self.apply_fd_meta(&fd, &meta, &raw_path)?;
                rustix::fs::futimens(&fd, &meta.times)
                    .ctx(|| format!("set times of {}", String::from_utf8_lossy(&raw_path)))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid(&raw_path, "symlink without a target"))?
                    .into_owned();
                self.remove_existing(parent, name, false, &raw_path)?;
                // The target is stored verbatim: it is only ever resolved
                // inside the container's root, never by us.
                rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, name.as_os_str())
                    .ctx(|| format!("create symlink {}", String::from_utf8_lossy(&raw_path)))?;
                self.apply_path_meta(parent, name, &meta, true, &raw_path)?;
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.invalid(&raw_path, "hard link without a target"))?
                    .into_owned();
                let target = normalize(&target_raw).map_err(|m| {
                    self.invalid(
                        &raw_path,
                        format!(
                            "hard link target {}: {m}",
                            String::from_utf8_lossy(&target_raw)
                        ),
                    )
                })?;
                if target == components {
                    return Ok(());
                }
                let Some((target_name, target_parents)) = target.split_last() else {
                    return Err(self.invalid(&raw_path, "hard link to the layer root"));
                };
                // Resolve the target inside the layer without creating or
                // following anything; it must already have been unpacked.
                let target_parent = self.walk(target_parents, false).map_err(|e| {
                    self.invalid(&raw_path, format!("hard link target not in layer: {e}"))
                })?;
                rustix::fs::statat(
                    &target_parent,
                    target_name.as_os_str(),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| {
                    self.invalid(&raw_path, format!("hard link target not in layer: {e}"))
                })?;
                self.remove_existing(parent, name, false, &raw_path)?;
                rustix::fs::linkat(
                    &target_parent,
                    target_name.as_os_str(),
                    parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| self.invalid(&raw_path, format!("hard link: {e}")))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.remove_existing(parent, name, false, &raw_path)?;
                rustix::fs::mknodat(
                    parent,
                    name.as_os_str(),
                    file_type,
                    Mode::empty(),
                    rustix::fs::makedev(major, minor),
                )
                .ctx(|| format!("create {}", String::from_utf8_lossy(&raw_path)))?;
                self.apply_path_meta(parent, name, &meta, false, &raw_path)?;
            }
            other => {
                tracing::warn!(path = %String::from_utf8_lossy(&raw_path), kind = ?other, "skipping unsupported tar entry");
            }
        }
        Ok(())
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        raw_path: &[u8],
    ) -> Result<EntryMeta, ImageError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.invalid(raw_path, e))? & 0o7777;
        // tar has already applied PAX uid/gid overrides to the header.
        let uid = header.uid().map_err(|e| self.invalid(raw_path, e))?;
        let gid = header.gid().map_err(|e| self.invalid(raw_path, e))?;
        let uid = u32::try_from(uid).map_err(|_| self.invalid(raw_path, "uid out of range"))?;
        let gid = u32::try_from(gid).map_err(|_| self.invalid(raw_path, "gid out of range"))?;
        let mut mtime = Timespec {
            tv_sec: header.mtime().unwrap_or(0).min(i64::MAX as u64) as i64,
            tv_nsec: 0,
        };
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry
            .pax_extensions()
            .map_err(|e| self.invalid(raw_path, e))?
        {
            for extension in extensions {
                let extension = extension.map_err(|e| self.invalid(raw_path, e))?;
                let key = extension.key_bytes();
                if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    if !name.starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) && !name.is_empty() {
                        xattrs.push((
                            OsStr::from_bytes(name).to_owned(),
                            extension.value_bytes().to_vec(),
                        ));
                    }
                } else if key == b"mtime" {
                    mtime = parse_pax_time(extension.value_bytes()).unwrap_or(mtime);
                } else if key == b"atime" {
                    atime = parse_pax_time(extension.value_bytes());
                }
            }
        }
        let times = Timestamps {
            last_access: atime.unwrap_or(mtime),
            last_modification: mtime,
        };
        Ok(EntryMeta {
            mode,
            uid,
            gid,
            times,
            xattrs,
        })
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs.
    fn apply_fd_meta(
        &self,
        fd: &OwnedFd,
        meta: &EntryMeta,
        raw_path: &[u8],
    ) -> Result<(), ImageError> {
        let p = || String::from_utf8_lossy(raw_path).into_owned();
        rustix::fs::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .ctx(|| format!("chown {}", p()))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode)).ctx(|| format!("chmod {}", p()))?;
        for (name, value) in &meta.xattrs {
            if let Err(e) = rustix::fs::fsetxattr(fd, name.as_os_str(), value, XattrFlags::empty())
            {
                // e.g. security.selinux on a host without SELinux: the file
                // is still usable, as with `docker load`.
                tracing::warn!(path = %p(), xattr = %name.to_string_lossy(), error = %e, "could not set xattr");
            }
        }
        Ok(())
    }

    /// Metadata for entries we cannot open (symlinks, devices, fifos).
    fn apply_path_meta(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &EntryMeta,
        symlink: bool,
        raw_path: &[u8],
    ) -> Result<(), ImageError> {
        let p = || String::from_utf8_lossy(raw_path).into_owned();
        rustix::fs::chownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", p()))?;
        if !symlink {
            // mknod applied the umask. The node was created by us a moment
            // ago in a directory only we write to, so following is moot.
            rustix::fs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .ctx(|| format!("chmod {}", p()))?;
        }
        rustix::fs::utimensat(parent, name, &meta.times, AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("set times of {}", p()))?;
        Ok(())
    }

    /// Clears the way for a new entry. Returns true if a directory exists
    /// and `keep_dir` asked to keep it (a directory entry over a directory
    /// only updates its attributes, as tar does).
    fn remove_existing(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        keep_dir: bool,
        raw_path: &[u8],
    ) -> Result<bool, ImageError> {
        let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => {
                return Err(ImageError::io(
                    format!("stat {}", String::from_utf8_lossy(raw_path)),
                    e.into(),
                ));
            }
        };
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        if is_dir {
            // The cached parent may be inside what is removed.
            self.last_parent = None;
            remove_tree_at(parent, name)
                .ctx(|| format!("replace {}", String::from_utf8_lossy(raw_path)))?;
        } else {
            rustix::fs::unlinkat(parent, name, AtFlags::empty())
                .ctx(|| format!("replace {}", String::from_utf8_lossy(raw_path)))?;
        }
        Ok(false)
    }

    fn open_parent(
        &mut self,
        parents: &[OsString],
        raw_path: &[u8],
    ) -> Result<OwnedFd, ImageError> {
        if let Some((cached, fd)) = &self.last_parent
            && cached.as_slice() == parents
        {
            return rustix::io::dup(fd).ctx(|| "dup directory".into());
        }
        let fd = self
            .walk(parents, true)
            .map_err(|e| self.walk_error(e, raw_path))?;
        let copy = rustix::io::dup(&fd).ctx(|| "dup directory".into())?;
        self.last_parent = Some((parents.to_vec(), copy));
        Ok(fd)
    }

    fn walk_error(&self, e: Errno, raw_path: &[u8]) -> ImageError {
        match e {
            Errno::LOOP | Errno::NOTDIR => self.invalid(
                raw_path,
                "a parent is a symlink or not a directory; refusing to follow it",
            ),
            other => ImageError::io(
                format!("open parent of {}", String::from_utf8_lossy(raw_path)),
                other.into(),
            ),
        }
    }

    /// Opens `components` under the root, one level at a time, refusing
    /// symlinks; creates missing directories (root-owned 0755, as Docker
    /// does for implied parents) when `create`.
    fn walk(&self, components: &[OsString], create: bool) -> Result<OwnedFd, Errno> {
        let mut current = rustix::io::dup(&self.root)?;
        for component in components {
            current = match open_dir_nofollow(current.as_fd(), component) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    rustix::fs::mkdirat(
                        &current,
                        component.as_os_str(),
                        Mode::from_raw_mode(0o755),
                    )?;
                    let fd = open_dir_nofollow(current.as_fd(), component)?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755))?;
                    fd
                }
                Err(e) => return Err(e),
            };
        }
        Ok(current)
    }

    fn finish(mut self) -> Result<(), ImageError> {
        self.last_parent = None;
        for (components, times) in std::mem::take(&mut self.dir_times) {
            let path = || {
                components
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            // A later entry may have replaced the directory; then its
            // times are not ours to set.
            let Ok(dir) = self.walk(&components, false) else {
                continue;
            };
            rustix::fs::futimens(&dir, &times).ctx(|| format!("set times of {}", path()))?;
        }
        Ok(())
    }
}

fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `rm -rf parent/name` through file descriptors, never following links.
fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let dir = open_dir_nofollow(parent, name)?;
    let mut names = Vec::new();
    {
        let mut reader = rustix::fs::Dir::read_from(&dir)?;
        while let Some(entry) = reader.read() {
            let entry = entry?;
            let entry_name = entry.file_name().to_bytes();
            if entry_name == b"." || entry_name == b".." {
                continue;
            }
            names.push((
                OsStr::from_bytes(entry_name).to_owned(),
                entry.file_type() == FileType::Directory,
            ));
        }
    }
    for (entry_name, is_dir) in names {
        if is_dir {
            remove_tree_at(dir.as_fd(), &entry_name)?;
        } else {
            rustix::fs::unlinkat(&dir, entry_name.as_os_str(), AtFlags::empty())?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

/// Splits an entry path into components relative to the layer root.
/// Leading `/` and `.` components are dropped; `..` is refused outright
/// rather than resolved, since no well-formed layer contains it.
fn normalize(path: &[u8]) -> Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("path contains \"..\"; refusing to write outside the layer"),
            c => out.push(OsStr::from_bytes(c).to_owned()),
        }
    }
    Ok(out)
}

/// PAX times are decimal seconds with an optional fraction.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let mut nanos = String::from(frac);
    if !nanos.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    nanos.truncate(9);
    while nanos.len() < 9 {
        nanos.push('0');
    }
    let mut tv_nsec: i64 = nanos.parse().ok()?;
    let mut tv_sec = tv_sec;
    if s.starts_with('-') && tv_nsec > 0 {
        // "-1.5" is 1.5 s before the epoch: seconds -2, nanos 0.5e9.
        tv_sec -= 1;
        tv_nsec = 1_000_000_000 - tv_nsec;
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

/// Decodes every frame of a zstd stream, skipping skippable frames;
/// ruzstd's `StreamingDecoder` stops after the first frame, and layers
/// written by parallel compressors have many.
struct ZstdReader<R: BufRead> {
    source: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdReader<R> {
    fn new(source: R) -> Self {
        ZstdReader {
            source,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.decoder.init(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let skipped = io::copy(
                            &mut (&mut self.source).take(u64::from(length)),
                            &mut io::sink(),
                        )?;
                        if skipped != u64::from(length) {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "truncated zstd skippable frame",
                            ));
                        }
                        continue;
                    }
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            if self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                self.in_frame = false;
                continue;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(io::Error::other)?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        let n = |p: &str| {
            normalize(p.as_bytes()).map(|v| {
                v.iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(n("a/b/c").unwrap(), ["a", "b", "c"]);
        assert_eq!(n("/etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(n("./usr//bin/").unwrap(), ["usr", "bin"]);
        assert!(n("./").unwrap().is_empty());
        assert!(n("../x").is_err());
        assert!(n("a/../../x").is_err());
        assert!(n("a/..").is_err());
    }

    #[test]
    fn pax_times() {
        let t = parse_pax_time(b"1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time(b"-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time(b"x").is_none());
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::from_magic(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::from_magic(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(Compression::from_magic(b"usr/"), Compression::None);
        assert_eq!(
            Compression::from_media_type(crate::manifest::media_type::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(crate::manifest::media_type::OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type(crate::manifest::media_type::OCI_LAYER),
            Some(Compression::None)
        );
    }

    #[test]
    fn zstd_multiple_frames_and_skippable_frames() {
        let mut stream = ruzstd::encoding::compress_to_vec(
            &b"hello "[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        // A skippable frame: magic 0x184D2A50, length 3, payload.
        stream.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        stream.extend(ruzstd::encoding::compress_to_vec(
            &b"world"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        let mut out = String::new();
        ZstdReader::new(&stream[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
