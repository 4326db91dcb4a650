//! The account's identity: its 12-digit id and the root access key.
//!
//! On first start both are generated and written to the data dir with mode
//! 0600; `BERTH_ACCOUNT_ID`, `BERTH_ROOT_ACCESS_KEY_ID` and
//! `BERTH_ROOT_SECRET_ACCESS_KEY` override them (automation, CI). The secret
//! is never logged: [`Secret`]'s Debug prints a placeholder.

use berth_arn::AccountId;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid credentials file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("invalid account id {0:?}: it must be exactly 12 digits")]
    AccountId(String),
    #[error("BERTH_ROOT_ACCESS_KEY_ID and BERTH_ROOT_SECRET_ACCESS_KEY must be set together")]
    HalfSetRootKey,
    #[error("invalid root access key: {0}")]
    BadRootKey(&'static str),
    /// An instance credential's session name (see `instance_credentials`).
    #[error("{0}")]
    InvalidName(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// A stored instance credential record that does not parse.
    #[error("instance credential record {key} is corrupt: {reason}")]
    CorruptRecord { key: String, reason: String },
    /// Several freshly drawn access key ids were all taken: the random
    /// source is broken, not unlucky.
    #[error("could not draw an unused access key id")]
    KeyIdsExhausted,
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, Clone)]
pub struct AccountIdentity {
    pub account_id: AccountId,
    pub root_access_key_id: String,
    pub root_secret_access_key: Secret,
    /// True when the root key came from this run's first start (so the
    /// operator should be told how to export it).
    pub newly_created: bool,
    /// Where the root key is kept, when it is kept in the data dir.
    pub file: Option<PathBuf>,
}

impl AccountIdentity {
    pub fn root_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRootKey {
    account_id: String,
    access_key_id: String,
    secret_access_key: Secret,
}

pub const ROOT_KEY_FILE: &str = "root-credentials.json";

/// What the environment (or flags) may override.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub account_id: Option<String>,
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key: Option<String>,
}

impl Overrides {
    pub fn from_env() -> Overrides {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Overrides {
            account_id: var("BERTH_ACCOUNT_ID"),
            root_access_key_id: var("BERTH_ROOT_ACCESS_KEY_ID"),
            root_secret_access_key: var("BERTH_ROOT_SECRET_ACCESS_KEY"),
        }
    }
}

/// Load the identity from `data_dir`, creating it on first start.
pub fn load_or_create(data_dir: &Path, overrides: &Overrides) -> Result<AccountIdentity, CredentialError> {
    let path = data_dir.join(ROOT_KEY_FILE);
    let stored = read_stored(&path)?;
    let account_text = overrides
        .account_id
        .clone()
        .or_else(|| stored.as_ref().map(|s| s.account_id.clone()))
        .unwrap_or_else(random_account_id);
    let account_id: AccountId =
        account_text.parse().map_err(|_| CredentialError::AccountId(account_text.clone()))?;

    match (&overrides.root_access_key_id, &overrides.root_secret_access_key) {
        (Some(id), Some(secret)) => {
            validate_key(id, secret)?;
            return Ok(AccountIdentity {
                account_id,
                root_access_key_id: id.clone(),
                root_secret_access_key: Secret(secret.clone()),
                newly_created: false,
                file: None,
            });
        }
        (None, None) => {}
        _ => return Err(CredentialError::HalfSetRootKey),
    }

    if let Some(s) = stored
        && s.account_id == account_id.as_str()
    {
        return Ok(AccountIdentity {
            account_id,
            root_access_key_id: s.access_key_id,
            root_secret_access_key: s.secret_access_key,
            newly_created: false,
            file: Some(path),
        });
    }
    let created = StoredRootKey {
        account_id: account_id.to_string(),
        access_key_id: random_access_key_id(),
        secret_access_key: Secret(random_secret()),
    };
    write_private(&path, &created)?;
    Ok(AccountIdentity {
        account_id,
        root_access_key_id: created.access_key_id,
        root_secret_access_key: created.secret_access_key,
        newly_created: true,
        file: Some(path),
    })
}

fn validate_key(id: &str, secret: &str) -> Result<(), CredentialError> {
    if id.len() < 16 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CredentialError::BadRootKey("the access key id must be 16-128 letters and digits"));
    }
    if secret.len() < 16 || secret.chars().any(char::is_whitespace) {
        return Err(CredentialError::BadRootKey("the secret must be at least 16 characters without spaces"));
    }
    Ok(())
}

fn read_stored(path: &Path) -> Result<Option<StoredRootKey>, CredentialError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CredentialError::Invalid { path: path.into(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialError::Io { path: path.into(), source: e }),
    }
}

/// Write with mode 0600 from the start (never world-readable, not even
/// briefly), via a temp file and rename so a crash leaves old or new.
fn write_private(path: &Path, key: &StoredRootKey) -> Result<(), CredentialError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CredentialError::Io { path: path.into(), source };
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(key)
        .map_err(|e| CredentialError::Invalid { path: path.into(), reason: e.to_string() })?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

fn random_account_id() -> String {
    let mut rng = rand::rng();
    // A leading non-zero digit keeps the id from looking like a placeholder.
    let first = rng.random_range(1..=9u8);
    let rest: String = (0..11).map(|_| char::from(b'0' + rng.random_range(0..=9u8))).collect();
    format!("{first}{rest}")
}

pub(crate) fn random_access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("AKIA{tail}")
}

pub(crate) fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn first_start_creates_private_file_and_second_start_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &Overrides::default()).unwrap();
        assert!(first.newly_created);
        let mode = std::fs::metadata(dir.path().join(ROOT_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create(dir.path(), &Overrides::default()).unwrap();
        assert!(!second.newly_created);
        assert_eq!(first.root_access_key_id, second.root_access_key_id);
        assert_eq!(first.account_id, second.account_id);
        assert!(!format!("{second:?}").contains(second.root_secret_access_key.expose()));
    }

    #[test]
    fn environment_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            account_id: Some("111122223333".into()),
            root_access_key_id: Some("AKIAEXAMPLEEXAMPLE12".into()),
            root_secret_access_key: Some("secret-secret-secret".into()),
        };
        let id = load_or_create(dir.path(), &o).unwrap();
        assert_eq!(id.account_id.as_str(), "111122223333");
        assert_eq!(id.root_access_key_id, "AKIAEXAMPLEEXAMPLE12");
        assert!(!dir.path().join(ROOT_KEY_FILE).exists());
        let half = Overrides { root_access_key_id: Some("AKIAEXAMPLEEXAMPLE12".into()), ..Default::default() };
        assert!(matches!(load_or_create(dir.path(), &half), Err(CredentialError::HalfSetRootKey)));
        let bad = Overrides { account_id: Some("12".into()), ..Default::default() };
        assert!(matches!(load_or_create(dir.path(), &bad), Err(CredentialError::AccountId(_))));
    }
}
