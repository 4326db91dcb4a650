//! Temporary credentials: session tokens that carry their own claims.
//!
//! OWNED BY HELPER A — the signatures below are the contract.

use crate::sealing::{MasterKey, hmac_sha256, open_with, seal_with};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;

/// The fixed start of every token, so a token of another scheme (or
/// another system) is told apart before any decryption.
const TOKEN_PREFIX: &str = "BSv1.";
/// The associated data of the sealed claims: binds the ciphertext to this
/// use, so nothing else sealed under the key passes for a token.
const TOKEN_AAD: &[u8] = b"berth-session-v1";
/// Tokens longer than this are refused before any work (a real one is a
/// few hundred characters).
const MAX_TOKEN_LEN: usize = 4096;
/// RFC 4648's base32 alphabet, as AWS's temporary key ids use.
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Whose session a token is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SessionSubject {
    /// AssumeRole, or a task role served to a task (`session_name` = task id).
    #[serde(rename_all = "camelCase")]
    AssumedRole { role_name: String, role_id: String, session_name: String },
    /// GetSessionToken by an IAM user.
    #[serde(rename_all = "camelCase")]
    User { name: String, user_id: String, path: String },
    /// GetSessionToken by the account root.
    Root,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionClaims {
    /// The 12-digit account.
    pub account: String,
    pub subject: SessionSubject,
    /// Seconds since the epoch.
    pub issued_at: u64,
    pub expires_at: u64,
}

/// What STS hands out.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// `ASIA` + 16 uppercase letters/digits.
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Garbage, tampered, sealed under another master key, or not the
    /// token of this access key id.
    #[error("The security token included in the request is invalid.")]
    Invalid,
    #[error("The security token included in the request is expired")]
    Expired,
}

/// What the token seals: the claims and the access key id they were
/// issued with, so a token cannot be paired with another id.
#[derive(serde::Serialize, serde::Deserialize)]
struct TokenBody {
    akid: String,
    claims: SessionClaims,
}

/// Mint credentials for `claims`. No store write: everything needed to
/// verify them later is in the token.
pub fn mint(key: &MasterKey, claims: &SessionClaims) -> SessionCredentials {
    let mut rng = rand::rng();
    let tail: String = (0..16).map(|_| BASE32[rng.random_range(0..BASE32.len())] as char).collect();
    let access_key_id = format!("ASIA{tail}");
    let body = TokenBody { akid: access_key_id.clone(), claims: claims.clone() };
    // Plain data with string keys always serialises.
    let plaintext = serde_json::to_vec(&body).unwrap_or_default();
    let sealed = seal_with(&key.derive("session-seal"), TOKEN_AAD, &plaintext);
    let session_token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed));
    let secret_access_key = secret_of(key, &session_token);
    SessionCredentials { access_key_id, secret_access_key, session_token, expires_at: claims.expires_at }
}

/// The claims of `token` if it is intact, belongs to `access_key_id` and
/// has not expired at `now_secs`; and the secret access key the request
/// must have been signed with.
pub fn verify(key: &MasterKey, access_key_id: &str, token: &str, now_secs: u64) -> Result<(SessionClaims, String), SessionError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(SessionError::Invalid);
    }
    let encoded = token.strip_prefix(TOKEN_PREFIX).ok_or(SessionError::Invalid)?;
    let sealed = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SessionError::Invalid)?;
    let plaintext = open_with(&key.derive("session-seal"), TOKEN_AAD, sealed).map_err(|_| SessionError::Invalid)?;
    let body: TokenBody = serde_json::from_slice(&plaintext).map_err(|_| SessionError::Invalid)?;
    if body.akid != access_key_id {
        return Err(SessionError::Invalid);
    }
    if now_secs >= body.claims.expires_at {
        return Err(SessionError::Expired);
    }
    Ok((body.claims, secret_of(key, token)))
}

/// The secret access key of a token: derived from it, so it is never
/// stored, and only the holder of the master key can compute it. 30 bytes
/// of MAC make AWS's 40 characters.
fn secret_of(key: &MasterKey, token: &str) -> String {
    let mac = hmac_sha256(&key.derive("session-secret"), token.as_bytes());
    STANDARD.encode(&mac[..30])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claims(expires_at: u64) -> SessionClaims {
        SessionClaims {
            account: "123456789012".into(),
            subject: SessionSubject::AssumedRole {
                role_name: "app".into(),
                role_id: "AROAEXAMPLEEXAMPLE123".into(),
                session_name: "task-1".into(),
            },
            issued_at: 1_000,
            expires_at,
        }
    }

    #[test]
    fn mint_then_verify() {
        let key = MasterKey::generate();
        for c in [
            claims(5_000),
            SessionClaims { subject: SessionSubject::Root, ..claims(5_000) },
            SessionClaims {
                subject: SessionSubject::User { name: "alice".into(), user_id: "AIDAEXAMPLE".into(), path: "/ops/".into() },
                ..claims(5_000)
            },
        ] {
            let creds = mint(&key, &c);
            assert_eq!(creds.access_key_id.len(), 20);
            assert!(creds.access_key_id.starts_with("ASIA"));
            assert!(creds.access_key_id[4..].bytes().all(|b| BASE32.contains(&b)), "{}", creds.access_key_id);
            assert_eq!(creds.secret_access_key.len(), 40);
            assert!(creds.session_token.starts_with("BSv1."));
            assert_eq!(creds.expires_at, 5_000);
            let (got, secret) = verify(&key, &creds.access_key_id, &creds.session_token, 1_000).unwrap();
            assert_eq!(got, c);
            assert_eq!(secret, creds.secret_access_key);
        }
    }

    #[test]
    fn two_mints_differ() {
        let key = MasterKey::generate();
        let (a, b) = (mint(&key, &claims(5_000)), mint(&key, &claims(5_000)));
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert_ne!(a.session_token, b.session_token);
    }

    #[test]
    fn tampered_tokens_are_invalid() {
        let key = MasterKey::generate();
        let creds = mint(&key, &claims(5_000));
        let token = &creds.session_token;
        let mid = token.len() / 2;
        let flip = |c: char| if c == 'A' { 'B' } else { 'A' };
        let flipped: String = token.char_indices().map(|(i, c)| if i == mid { flip(c) } else { c }).collect();
        let cases = [
            flipped,
            token[..token.len() - 1].to_string(),
            token[..mid].to_string(),
            format!("{token}A"),
            format!("{token}AAAA"),
            token.replacen("BSv1.", "BSv2.", 1),
            token.replacen("BSv1.", "", 1),
            String::new(),
            "BSv1.".into(),
            "x".repeat(MAX_TOKEN_LEN + 1),
        ];
        for bad in &cases {
            assert_eq!(verify(&key, &creds.access_key_id, bad, 1_000), Err(SessionError::Invalid), "{bad}");
        }
    }

    #[test]
    fn another_key_or_id_is_invalid() {
        let key = MasterKey::generate();
        let creds = mint(&key, &claims(5_000));
        assert_eq!(verify(&MasterKey::generate(), &creds.access_key_id, &creds.session_token, 1_000), Err(SessionError::Invalid));
        let other = mint(&key, &claims(5_000));
        assert_eq!(verify(&key, &other.access_key_id, &creds.session_token, 1_000), Err(SessionError::Invalid));
        assert_eq!(verify(&key, "ASIAAAAAAAAAAAAAAAAA", &creds.session_token, 1_000), Err(SessionError::Invalid));
    }

    #[test]
    fn expiry_boundary() {
        let key = MasterKey::generate();
        let creds = mint(&key, &claims(5_000));
        assert!(verify(&key, &creds.access_key_id, &creds.session_token, 4_999).is_ok());
        assert_eq!(verify(&key, &creds.access_key_id, &creds.session_token, 5_000), Err(SessionError::Expired));
        assert_eq!(verify(&key, &creds.access_key_id, &creds.session_token, u64::MAX), Err(SessionError::Expired));
        // A tampered token is Invalid even when it would be expired: no
        // claim of an unverified token is believed.
        let bad = format!("{}A", creds.session_token);
        assert_eq!(verify(&key, &creds.access_key_id, &bad, 9_999), Err(SessionError::Invalid));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn mutations_never_verify(pos in any::<prop::sample::Index>(), replacement in any::<char>(), op in 0u8..3) {
            let key = MasterKey::generate();
            let creds = mint(&key, &claims(5_000));
            let mut chars: Vec<char> = creds.session_token.chars().collect();
            let i = pos.index(chars.len());
            match op {
                0 => {
                    prop_assume!(chars[i] != replacement);
                    chars[i] = replacement;
                }
                1 => { chars.remove(i); }
                _ => chars.insert(i, replacement),
            }
            let mutated: String = chars.into_iter().collect();
            prop_assert_eq!(verify(&key, &creds.access_key_id, &mutated, 1_000), Err(SessionError::Invalid));
        }
    }
}
