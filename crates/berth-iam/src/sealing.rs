//! The master key and sealing (authenticated encryption) of secrets at rest.
//!
//! OWNED BY HELPER A — the signatures below are the contract.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::io::Write;
use std::path::Path;

/// AES-GCM's tag.
const TAG_LEN: usize = 16;
/// The version marker of [`Sealed`] text, so another scheme can follow.
const SEALED_PREFIX: &str = "v1:";

/// 32 random bytes kept outside the store (a 0600 file, or the environment).
/// Every secret Berth stores is sealed with a key derived from it, and
/// session tokens are sealed and signed with others.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(****)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("the master key is not valid: {0}")]
    BadKey(String),
    /// The sealed value was altered, or sealed under another key or purpose.
    #[error("a sealed value could not be opened")]
    Open,
}

/// A sealed secret as stored: `v1:` then base64 of nonce ‖ ciphertext ‖ tag.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(****)")
    }
}

impl MasterKey {
    /// A fresh random key (tests, and first start).
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; 32];
        // The thread RNG is a CSPRNG seeded from the OS (rand's documented
        // guarantee), and unlike ring's SystemRandom it cannot fail.
        rand::rng().fill_bytes(&mut bytes);
        MasterKey { bytes }
    }

    /// The key in `path` (44 characters of base64, mode 0600), created on
    /// first use.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, SealError> {
        let io = |source: std::io::Error| SealError::Io { path: path.to_path_buf(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_shared(path);
                return MasterKey::from_base64(&text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = MasterKey::generate();
        // Written whole to a private temporary and renamed into place, so a
        // crash never leaves a half-written key, and two servers starting
        // at once agree on one key (the loser of the link race reads the
        // winner's).
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = (|| {
            let mut file = open_private(&tmp)?;
            file.write_all(format!("{}\n", STANDARD.encode(key.bytes)).as_bytes())?;
            file.sync_all()?;
            match std::fs::hard_link(&tmp, path) {
                // A file system without hard links: rename, giving up only
                // the tie-break between two first starts.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => std::fs::rename(&tmp, path).map_err(|_| e),
                linked => linked,
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                sync_parent(path);
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => MasterKey::from_base64(&std::fs::read_to_string(path).map_err(io)?),
            Err(e) => Err(io(e)),
        }
    }

    /// A key given as base64 (`BERTH_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Result<MasterKey, SealError> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.len() != 44 {
            return Err(SealError::BadKey(format!("expected 44 characters of base64, found {}", text.len())));
        }
        let decoded = STANDARD.decode(text).map_err(|_| SealError::BadKey("not base64".into()))?;
        let bytes: [u8; 32] = decoded.try_into().map_err(|_| SealError::BadKey("expected 32 bytes".into()))?;
        Ok(MasterKey { bytes })
    }

    /// An independent 32-byte key for one purpose (`"session-seal"`,
    /// `"session-secret"`, `"credentials-id"`, ...), so no two uses share a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac_sha256(&self.bytes, format!("berth/{purpose}").as_bytes())
    }

    /// A MAC of `message` under the key for `purpose`: ids only the holder
    /// of the master key can compute (e.g. a task's credentials id).
    pub fn mac(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.derive(purpose), message)
    }

    /// Seal `plaintext`; `context` (e.g. the access key id) is bound as
    /// associated data, so a sealed value moved to another record fails to open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Sealed {
        let sealed = seal_with(&self.derive("seal"), context.as_bytes(), plaintext);
        Sealed(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Vec<u8>, SealError> {
        let text = sealed.0.strip_prefix(SEALED_PREFIX).ok_or(SealError::Open)?;
        let bytes = STANDARD.decode(text).map_err(|_| SealError::Open)?;
        open_with(&self.derive("seal"), context.as_bytes(), bytes)
    }

    /// `open` for text secrets.
    pub fn open_string(&self, context: &str, sealed: &Sealed) -> Result<String, SealError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| SealError::Open)
    }
}

/// HMAC-SHA256 of `message` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// AES-256-GCM under `key` with a random nonce: nonce ‖ ciphertext ‖ tag.
/// Random 96-bit nonces are safe for far more seals than one key will see
/// (NIST's bound is 2^32).
pub(crate) fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    let mut in_out = plaintext.to_vec();
    // A 32-byte key is exactly what AES-256-GCM takes, and sealing fails
    // only for inputs over 2^36 bytes, which nothing here approaches.
    less_safe_key(key)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut in_out)
        .expect("AES-256-GCM seals any plaintext under 64 GiB");
    out.extend_from_slice(&in_out);
    out
}

/// The reverse of [`seal_with`]; any failure is [`SealError::Open`].
pub(crate) fn open_with(key: &[u8; 32], aad: &[u8], mut sealed: Vec<u8>) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Open);
    }
    let mut body = sealed.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&sealed).map_err(|_| SealError::Open)?;
    let plain_len = less_safe_key(key).open_in_place(nonce, Aad::from(aad), &mut body).map_err(|_| SealError::Open)?.len();
    body.truncate(plain_len);
    Ok(body)
}

fn less_safe_key(key: &[u8; 32]) -> LessSafeKey {
    // AES-256 takes exactly 32 bytes, which the type guarantees.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// A new file only the owner can read.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A key others can read is still used (refusing would take the server
/// down over a chmod), but said loudly.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "the master key file is readable by other users; chmod 600 it");
        }
    }
}

/// Make the new directory entry durable; best effort, since the key is
/// already on disk and a failure here changes nothing the caller can act on.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = MasterKey::generate();
        let sealed = key.seal("AKIAEXAMPLE", b"wJalrXUtnFEMI/K7MDENG");
        assert!(sealed.0.starts_with("v1:"));
        assert_eq!(key.open("AKIAEXAMPLE", &sealed).unwrap(), b"wJalrXUtnFEMI/K7MDENG");
        assert_eq!(key.open_string("AKIAEXAMPLE", &sealed).unwrap(), "wJalrXUtnFEMI/K7MDENG");
        let empty = key.seal("c", b"");
        assert_eq!(key.open("c", &empty).unwrap(), b"");
        // A fresh nonce each time: equal secrets do not look equal at rest.
        assert_ne!(key.seal("c", b"same"), key.seal("c", b"same"));
        // Serialized as the bare string.
        let json = serde_json::to_string(&sealed).unwrap();
        assert_eq!(json, format!("\"{}\"", sealed.0));
        assert_eq!(serde_json::from_str::<Sealed>(&json).unwrap(), sealed);
    }

    #[test]
    fn tampering_is_refused() {
        let key = MasterKey::generate();
        let sealed = key.seal("ctx", b"secret value");
        let mut raw = STANDARD.decode(sealed.0.strip_prefix("v1:").unwrap()).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            let tampered = Sealed(format!("v1:{}", STANDARD.encode(&raw)));
            assert!(matches!(key.open("ctx", &tampered), Err(SealError::Open)), "byte {i}");
            raw[i] ^= 0x01;
        }
        let cases = ["", "v1:", "v1:AAAA", "v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "v1:!!!!", &sealed.0[3..]];
        for bad in cases {
            assert!(matches!(key.open("ctx", &Sealed(bad.into())), Err(SealError::Open)), "{bad:?}");
        }
        let truncated = Sealed(sealed.0[..sealed.0.len() - 4].to_string());
        assert!(key.open("ctx", &truncated).is_err());
    }

    #[test]
    fn wrong_context_or_key_is_refused() {
        let key = MasterKey::generate();
        let sealed = key.seal("AKIA1", b"secret");
        assert!(matches!(key.open("AKIA2", &sealed), Err(SealError::Open)));
        assert!(matches!(MasterKey::generate().open("AKIA1", &sealed), Err(SealError::Open)));
        let bytes = b"\xff\xfe";
        assert!(matches!(key.open_string("c", &key.seal("c", bytes)), Err(SealError::Open)));
    }

    #[test]
    fn derived_keys_are_distinct_and_stable() {
        let key = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(key.derive("session-seal"), key.derive("session-seal"));
        assert_ne!(key.derive("session-seal"), key.derive("session-secret"));
        assert_ne!(key.derive("seal"), MasterKey::generate().derive("seal"));
        // HMAC-SHA256(master, "berth/" + purpose).
        assert_eq!(key.derive("x"), hmac_sha256(&[7u8; 32], b"berth/x"));
    }

    #[test]
    fn file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/master.key");
        let key = MasterKey::load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 45);
        assert!(text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(again.bytes, key.bytes);
        let sealed = key.seal("c", b"v");
        assert_eq!(again.open("c", &sealed).unwrap(), b"v");
        assert_eq!(MasterKey::from_base64(&text).unwrap().bytes, key.bytes);
        assert_eq!(MasterKey::from_base64(text.trim_end()).unwrap().bytes, key.bytes);
        // No temporary is left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn bad_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for bad in ["", "short\n", &"A".repeat(43), &format!("{}!", &"A".repeat(43)), &STANDARD.encode([1u8; 33])] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(MasterKey::load_or_create(&path), Err(SealError::BadKey(_))), "{bad:?}");
        }
        assert!(matches!(MasterKey::from_base64("not base64 at all, but exactly 44 chars!!!!"), Err(SealError::BadKey(_))));
        // A directory where the file should be is an I/O error, not a new key.
        let as_dir = dir.path().join("d");
        std::fs::create_dir(&as_dir).unwrap();
        assert!(matches!(MasterKey::load_or_create(&as_dir), Err(SealError::Io { .. })));
    }

    #[test]
    fn debug_never_shows_bytes() {
        let key = MasterKey::from_base64(&STANDARD.encode([0xabu8; 32])).unwrap();
        let shown = format!("{key:?} {:?}", key.seal("c", b"hunter2"));
        assert_eq!(shown, "MasterKey(****) Sealed(****)");
        assert!(!shown.contains("171") && !shown.contains("ab"));
    }
}
