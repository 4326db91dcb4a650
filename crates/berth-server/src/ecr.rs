//! The slice of Amazon ECR that pulling private images needs:
//! `GetAuthorizationToken`, answering with the login of every registry the
//! operator gave this server (`berth server --registry-auth`).
//!
//! This is how a task's execution role matters on a Berth host, as on ECS:
//! the agent asks for a registry's login with the task's execution-role
//! credentials (its instance credentials for a task without one), so a
//! task whose execution role lacks `ecr:GetAuthorizationToken` cannot pull
//! from those registries. Registry passwords stay with the server (a file
//! the operator keeps, never in the store); agents see them only through
//! this call, and only for the life of a pull.

use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long ECR says a token is good for (12 hours, as ECR's).
pub const TOKEN_SECS: u64 = 12 * 3600;

/// Registry logins by `host[:port]`.
#[derive(Clone, Default)]
pub struct RegistryLogins {
    logins: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for RegistryLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.logins.keys()).finish()
    }
}

impl RegistryLogins {
    pub fn new(logins: impl IntoIterator<Item = (String, String, String)>) -> RegistryLogins {
        RegistryLogins { logins: logins.into_iter().map(|(host, user, password)| (host, (user, password))).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
    }

    /// ECR's `GetAuthorizationToken` response: one `authorizationData`
    /// per registry, the token being base64 of `user:password` and the
    /// proxy endpoint the registry's URL.
    pub fn authorization_token(&self, now: SystemTime) -> Value {
        let expires = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + TOKEN_SECS;
        let data: Vec<Value> = self
            .logins
            .iter()
            .map(|(host, (user, password))| {
                json!({
                    "authorizationToken": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")),
                    "expiresAt": expires,
                    "proxyEndpoint": format!("https://{host}"),
                })
            })
            .collect();
        json!({ "authorizationData": data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_base64_logins_per_registry_and_debug_shows_no_password() {
        let logins = RegistryLogins::new([("127.0.0.1:5000".to_string(), "ci".to_string(), "s3cret".to_string())]);
        let out = logins.authorization_token(UNIX_EPOCH + std::time::Duration::from_secs(1_000));
        let d = &out["authorizationData"][0];
        assert_eq!(d["authorizationToken"], "Y2k6czNjcmV0");
        assert_eq!(d["expiresAt"], 1_000 + TOKEN_SECS);
        assert_eq!(d["proxyEndpoint"], "https://127.0.0.1:5000");
        assert!(!format!("{logins:?}").contains("s3cret"));
        assert_eq!(RegistryLogins::default().authorization_token(UNIX_EPOCH)["authorizationData"], json!([]));
    }
}
