//! Instance credentials: each agent's own long-lived access key, so hosts
//! never hold the account root key.
//!
//! A key is minted by the root (over `POST /agent/v1/credentials`, or in
//! process by `berth up` before its listener starts) and kept in the store
//! at `iam/{account}/instance-credentials/{accessKeyId}`. Its principal is
//! `arn:aws:sts::{account}:assumed-role/BerthInstanceRole/{name}`, the shape
//! AWS gives an EC2 instance profile's session, and [`crate::authz`] lets it
//! do only what an agent needs.
//!
//! The front door resolves a request's key on every request, so lookups go
//! through [`InstanceCredentialCache`]. The key ids look like the root
//! key's (`AKIA` + 16), not like session keys (`ASIA`), because there is no
//! session token: a plain long-lived key pair, revocable later by deleting
//! the record.

use crate::credentials::{CredentialError, random_access_key_id, random_secret};
use berth_arn::AccountId;
use berth_iam::MasterKey;
use berth_iam::sealing::Sealed;
use berth_store::{Store, Txn, TxnOutcome};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The role every instance principal assumes.
pub const ROLE_NAME: &str = berth_ecs::container_instances::AGENT_ROLE_NAME;

/// A minted key pair and the principal it authenticates as.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub principal_arn: String,
}

impl fmt::Debug for InstanceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"****")
            .field("principal_arn", &self.principal_arn)
            .finish()
    }
}

impl From<InstanceCredentials> for berth_agent_protocol::CredentialsResponse {
    fn from(c: InstanceCredentials) -> Self {
        berth_agent_protocol::CredentialsResponse {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            principal_arn: c.principal_arn,
        }
    }
}

/// The stored record. The secret is sealed with the master key (which is
/// never in the store), bound to the access key id.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    access_key_id: String,
    sealed_secret_access_key: Sealed,
    principal_arn: String,
    created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

pub fn key(account: &AccountId, access_key_id: &str) -> String {
    format!("iam/{account}/instance-credentials/{access_key_id}")
}

/// `arn:aws:sts::{account}:assumed-role/BerthInstanceRole/{session}`.
pub fn principal_arn(account: &AccountId, session: &str) -> String {
    berth_iam::caller::assumed_role_arn(account, ROLE_NAME, session)
}

/// The caller an instance key (principal `principal_arn`) authenticates as.
pub fn caller(account: &AccountId, principal_arn: &str) -> berth_iam::Caller {
    berth_iam::Caller {
        kind: berth_iam::CallerKind::Instance { session_name: principal_arn.rsplit('/').next().unwrap_or_default().to_string() },
        user_id: user_id(account, principal_arn),
        arn: principal_arn.to_string(),
        account: account.clone(),
        token_issued_at: None,
    }
}

/// The role's unique id (`AROA` + 17), stable per account: AWS shows an
/// assumed role's caller as `{roleId}:{session}`.
pub fn role_id(account: &AccountId) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let text = format!("{account}/{ROLE_NAME}");
    let mut out = String::from("AROA");
    // FNV-1a, re-salted until there are enough digits: stable across builds
    // and processes, unlike std's hasher.
    let mut salt = 0u64;
    while out.len() < 21 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for _ in 0..12 {
            if out.len() == 21 {
                break;
            }
            out.push(char::from(ALPHABET[(h & 31) as usize]));
            h >>= 5;
        }
        salt += 1;
    }
    out
}

/// GetCallerIdentity's `UserId` for an instance principal: `{roleId}:{session}`.
pub fn user_id(account: &AccountId, principal_arn: &str) -> String {
    let session = principal_arn.rsplit('/').next().unwrap_or(principal_arn);
    format!("{}:{session}", role_id(account))
}

/// A session name as AWS allows one (`RoleSessionName`): 2-64 of
/// letters, digits and `+=,.@_-`. It ends up in an ARN, so nothing else.
pub fn validate_name(name: &str) -> Result<(), CredentialError> {
    let ok_len = (2..=64).contains(&name.len());
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(CredentialError::InvalidName(format!(
            "Invalid name {name:?}: it must be 2 to 64 letters, digits or any of +=,.@_-"
        )))
    }
}

/// Could `akid` have been minted here? Filters garbage (and anything that
/// would make an odd store key) before a store read.
fn plausible_key_id(akid: &str) -> bool {
    akid.len() == 20 && akid.starts_with("AKIA") && akid.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Mint a new key pair for an agent and store it (durably: it returns
/// after the store committed). Needs no front door, so `berth up` can call
/// it before its listener starts.
pub async fn mint(
    store: &dyn Store,
    account: &AccountId,
    master: &MasterKey,
    name: Option<&str>,
    now: SystemTime,
) -> Result<InstanceCredentials, CredentialError> {
    if let Some(n) = name {
        validate_name(n)?;
    }
    // 80 random bits per id: a taken one means a broken random source, so
    // a few draws are plenty.
    for _ in 0..3 {
        let access_key_id = random_access_key_id();
        let secret = random_secret();
        let record = Record {
            principal_arn: principal_arn(account, name.unwrap_or(&access_key_id)),
            sealed_secret_access_key: master.seal(&access_key_id, secret.as_bytes()),
            access_key_id,
            created_at: berth_clock::epoch_seconds(now),
            name: name.map(str::to_string),
        };
        let k = key(account, &record.access_key_id);
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| CredentialError::CorruptRecord { key: k.clone(), reason: e.to_string() })?;
        match store.txn(Txn::new().require(k.clone(), None).put(k, bytes)).await? {
            TxnOutcome::Committed { .. } => {
                return Ok(InstanceCredentials {
                    access_key_id: record.access_key_id,
                    secret_access_key: secret,
                    principal_arn: record.principal_arn,
                });
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(CredentialError::KeyIdsExhausted)
}

fn credentials_of(k: String, r: Record, master: &MasterKey) -> Result<InstanceCredentials, CredentialError> {
    let secret = master
        .open_string(&r.access_key_id, &r.sealed_secret_access_key)
        .map_err(|e| CredentialError::CorruptRecord { key: k, reason: e.to_string() })?;
    Ok(InstanceCredentials { access_key_id: r.access_key_id, secret_access_key: secret, principal_arn: r.principal_arn })
}

/// The credentials stored under `access_key_id`, straight from the store.
pub async fn lookup(
    store: &dyn Store,
    account: &AccountId,
    master: &MasterKey,
    access_key_id: &str,
) -> Result<Option<InstanceCredentials>, CredentialError> {
    if !plausible_key_id(access_key_id) {
        return Ok(None);
    }
    let k = key(account, access_key_id);
    let Some(v) = store.get(&k).await? else { return Ok(None) };
    let record: Record = serde_json::from_slice(&v.value)
        .map_err(|e| CredentialError::CorruptRecord { key: k.clone(), reason: e.to_string() })?;
    credentials_of(k, record, master).map(Some)
}

/// [`lookup`] with the answers kept in memory.
///
/// Only keys that exist are kept: an unknown key id costs a store read each
/// time (cheap, and nothing an attacker can grow), and a key minted by
/// anyone sharing the store is found on its first use. Keys are never
/// deleted today; when revocation comes it must [`forget`](Self::forget)
/// here as well (or on a store watch, with several servers).
pub struct InstanceCredentialCache {
    store: Arc<dyn Store>,
    account: AccountId,
    master: MasterKey,
    known: RwLock<HashMap<String, Arc<InstanceCredentials>>>,
}

impl InstanceCredentialCache {
    pub fn new(store: Arc<dyn Store>, account: AccountId, master: MasterKey) -> InstanceCredentialCache {
        InstanceCredentialCache { store, account, master, known: RwLock::new(HashMap::new()) }
    }

    pub async fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<InstanceCredentials>>, CredentialError> {
        if let Some(hit) = self.known.read().unwrap_or_else(|p| p.into_inner()).get(access_key_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(found) = lookup(self.store.as_ref(), &self.account, &self.master, access_key_id).await? else { return Ok(None) };
        let found = Arc::new(found);
        self.known.write().unwrap_or_else(|p| p.into_inner()).insert(access_key_id.to_string(), found.clone());
        Ok(Some(found))
    }

    /// Keep credentials just minted, so their first request needs no read.
    pub fn remember(&self, creds: &InstanceCredentials) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(creds.access_key_id.clone(), Arc::new(creds.clone()));
    }

    pub fn forget(&self, access_key_id: &str) {
        self.known.write().unwrap_or_else(|p| p.into_inner()).remove(access_key_id);
    }

    /// The store the credentials live in (mints go there).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key that seals their secrets.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::memory::MemoryStore;
    use std::time::{Duration, UNIX_EPOCH};

    fn account() -> AccountId {
        "123456789012".parse().unwrap()
    }

    fn master() -> MasterKey {
        static KEY: std::sync::OnceLock<MasterKey> = std::sync::OnceLock::new();
        KEY.get_or_init(MasterKey::generate).clone()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_000_000)
    }

    #[tokio::test]
    async fn mint_stores_a_fresh_key_that_lookup_finds() {
        let store = MemoryStore::new();
        let a = mint(&store, &account(), &master(), Some("host-a"), now()).await.unwrap();
        assert!(plausible_key_id(&a.access_key_id), "{}", a.access_key_id);
        assert_eq!(a.secret_access_key.len(), 40);
        assert_eq!(a.principal_arn, "arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a");
        assert_eq!(lookup(&store, &account(), &master(), &a.access_key_id).await.unwrap(), Some(a.clone()));

        let raw = store.get(&key(&account(), &a.access_key_id)).await.unwrap().unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
        assert_eq!(stored["name"], "host-a");
        assert_eq!(stored["createdAt"], 1_795_000_000.0);
        // Sealed at rest: the secret is nowhere in the record.
        assert!(stored.get("secretAccessKey").is_none());
        assert!(!String::from_utf8_lossy(&raw.value).contains(&a.secret_access_key));
        assert!(stored["sealedSecretAccessKey"].as_str().unwrap().starts_with("v1:"));
        // A different master key cannot read it.
        let e = lookup(&store, &account(), &MasterKey::generate(), &a.access_key_id).await.unwrap_err();
        assert!(matches!(e, CredentialError::CorruptRecord { .. }), "{e}");

        // Unnamed: the key id is the session name. Every mint is a new key.
        let b = mint(&store, &account(), &master(), None, now()).await.unwrap();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert_eq!(b.principal_arn, format!("arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/{}", b.access_key_id));
        assert!(serde_json::from_slice::<serde_json::Value>(&store.get(&key(&account(), &b.access_key_id)).await.unwrap().unwrap().value)
            .unwrap()
            .get("name")
            .is_none());
    }

    #[tokio::test]
    async fn lookup_of_unknown_or_foreign_keys_finds_nothing() {
        let store = MemoryStore::new();
        let a = mint(&store, &account(), &master(), Some("host-a"), now()).await.unwrap();
        let other: AccountId = "210987654321".parse().unwrap();
        assert_eq!(lookup(&store, &other, &master(), &a.access_key_id).await.unwrap(), None);
        assert_eq!(lookup(&store, &account(), &master(), "AKIAAAAAAAAAAAAAAAAA").await.unwrap(), None);
        // Not even read: a key id that cannot be one of ours.
        assert_eq!(lookup(&store, &account(), &master(), "../../etc").await.unwrap(), None);
    }

    #[tokio::test]
    async fn names_are_checked_before_anything_is_stored() {
        let store = MemoryStore::new();
        for bad in ["", "a", "has space", "slash/inside", &"x".repeat(65)] {
            let e = mint(&store, &account(), &master(), Some(bad), now()).await.unwrap_err();
            assert!(matches!(e, CredentialError::InvalidName(_)), "{bad:?}: {e}");
        }
        assert!(berth_store::list_all(&store, "iam/").await.unwrap().is_empty());
        for good in ["ip-10-0-0-1.ec2.internal", "host_a", "a@b=c,d+e"] {
            mint(&store, &account(), &master(), Some(good), now()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn corrupt_record_is_an_error_not_a_miss() {
        let store = MemoryStore::new();
        let k = key(&account(), "AKIAAAAAAAAAAAAAAAAA");
        store.txn(Txn::new().put(k, b"not json".to_vec())).await.unwrap();
        let e = lookup(&store, &account(), &master(), "AKIAAAAAAAAAAAAAAAAA").await.unwrap_err();
        assert!(matches!(e, CredentialError::CorruptRecord { .. }), "{e}");
    }

    #[tokio::test]
    async fn cache_answers_from_memory_after_the_first_lookup() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let cache = InstanceCredentialCache::new(store.clone(), account(), master());
        let a = mint(store.as_ref(), &account(), &master(), Some("host-a"), now()).await.unwrap();
        // Minted behind the cache's back (as `berth up` does): found on first use.
        assert_eq!(cache.lookup(&a.access_key_id).await.unwrap().as_deref(), Some(&a));
        // Gone from the store, still known: the second lookup did not read.
        store.txn(Txn::new().delete(key(&account(), &a.access_key_id))).await.unwrap();
        assert_eq!(cache.lookup(&a.access_key_id).await.unwrap().as_deref(), Some(&a));
        cache.forget(&a.access_key_id);
        assert_eq!(cache.lookup(&a.access_key_id).await.unwrap(), None);

        // Misses are not kept: a key minted after a miss is found.
        let b_id = "AKIABBBBBBBBBBBBBBBB";
        assert_eq!(cache.lookup(b_id).await.unwrap(), None);
        let b = mint(store.as_ref(), &account(), &master(), Some("host-b"), now()).await.unwrap();
        assert_eq!(cache.lookup(&b.access_key_id).await.unwrap().as_deref(), Some(&b));

        // Remembered credentials need no store at all.
        let c = InstanceCredentials {
            access_key_id: "AKIACCCCCCCCCCCCCCCC".into(),
            secret_access_key: "s".repeat(40),
            principal_arn: principal_arn(&account(), "host-c"),
        };
        cache.remember(&c);
        assert_eq!(cache.lookup(&c.access_key_id).await.unwrap().as_deref(), Some(&c));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = InstanceCredentials {
            access_key_id: "AKIACCCCCCCCCCCCCCCC".into(),
            secret_access_key: "super-secret-material-0123456789abcdefgh".into(),
            principal_arn: principal_arn(&account(), "host-c"),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("AKIACCCCCCCCCCCCCCCC"));
    }

    #[test]
    fn caller_identity_of_an_instance() {
        let rid = role_id(&account());
        assert_eq!(rid.len(), 21);
        assert!(rid.starts_with("AROA") && rid.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(rid, role_id(&account()));
        assert_ne!(rid, role_id(&"210987654321".parse().unwrap()));
        assert_eq!(user_id(&account(), &principal_arn(&account(), "host-a")), format!("{rid}:host-a"));
    }
}
