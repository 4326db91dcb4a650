//! Images and root filesystems as the task worker needs them: "make this
//! image available under this policy" and "give this container a root
//! filesystem". The real one joins berth-image's `ImageService` and
//! overlay snapshotter; the fake serves images from memory.

use crate::control::ControlPlane;
use berth_agent_protocol::RoleCredentials;
use berth_image::{Credentials, ImageConfig, ImageReference, ImageService, PullPolicy, Snapshotter};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An image ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyImage {
    pub digest: String,
    pub config: ImageConfig,
    pub layers: Vec<PathBuf>,
}

/// Why an image could not be made ready, worded for ECS's container
/// `reason` (`CannotPullContainerError: ...`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct PullFailure {
    pub reason: String,
}

#[async_trait::async_trait]
pub trait Images: Send + Sync {
    /// `session` is the task's execution role, with which private
    /// registries' logins are asked for (the agent's own credentials when
    /// the task has none).
    async fn ensure(&self, image: &str, policy: PullPolicy, session: Option<&RoleCredentials>) -> Result<ReadyImage, PullFailure>;
    /// The container's root filesystem (idempotent: an agent restart gets
    /// the same one back). Returns the directory that is its `/`.
    fn prepare_rootfs(&self, container_id: &str, layers: &[PathBuf]) -> Result<PathBuf, String>;
    fn release_rootfs(&self, container_id: &str) -> Result<(), String>;
}

/// Registry credentials by registry host (`127.0.0.1:5000`), as the ECS
/// agent's `ECS_ENGINE_AUTH_DATA` gives them.
pub type RegistryAuth = HashMap<String, Credentials>;

pub struct RealImages {
    service: ImageService,
    snapshotter: Arc<dyn Snapshotter>,
    auth: RegistryAuth,
    /// Where private registries' logins come from (ECR's
    /// GetAuthorizationToken on the control plane), if anywhere.
    logins: Option<Arc<dyn ControlPlane>>,
}

impl RealImages {
    pub fn new(service: ImageService, snapshotter: Arc<dyn Snapshotter>, auth: RegistryAuth) -> RealImages {
        RealImages { service, snapshotter, auth, logins: None }
    }

    /// Asks `control` for registry logins before each pull, signed with the
    /// task's execution role.
    pub fn with_registry_logins(mut self, control: Arc<dyn ControlPlane>) -> RealImages {
        self.logins = Some(control);
        self
    }

    /// The login for `registry` the control plane gives `session`, if any;
    /// `Err` says why none could be asked for.
    async fn login(&self, registry: &str, session: Option<&RoleCredentials>) -> Result<Option<Credentials>, String> {
        let Some(control) = &self.logins else { return Ok(None) };
        let answer = control.registry_authorization(session).await.map_err(|e| e.to_string())?;
        Ok(parse_authorization(&answer).remove(registry))
    }
}

/// Registry logins by host from an ECR `GetAuthorizationToken` answer:
/// each token is base64 of `user:password`, each proxy endpoint the
/// registry's URL.
pub fn parse_authorization(answer: &Value) -> HashMap<String, Credentials> {
    use base64::Engine;
    let mut out = HashMap::new();
    for d in answer.get("authorizationData").and_then(Value::as_array).into_iter().flatten() {
        let (Some(token), Some(endpoint)) = (d.get("authorizationToken").and_then(Value::as_str), d.get("proxyEndpoint").and_then(Value::as_str))
        else {
            continue;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token) else { continue };
        let Some((user, password)) = String::from_utf8_lossy(&raw).split_once(':').map(|(u, p)| (u.to_string(), p.to_string())) else {
            continue;
        };
        let host = endpoint.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        out.insert(host.to_string(), Credentials::new(user, password));
    }
    out
}

#[async_trait::async_trait]
impl Images for RealImages {
    async fn ensure(&self, image: &str, policy: PullPolicy, session: Option<&RoleCredentials>) -> Result<ReadyImage, PullFailure> {
        let reference = ImageReference::parse(image).map_err(|e| PullFailure {
            reason: format!("CannotPullContainerError: invalid reference format: {image}: {e}"),
        })?;
        // The control plane's login wins over the agent's own file: it is
        // what the task's execution role is allowed.
        let (login, login_error) = match self.login(reference.registry(), session).await {
            Ok(l) => (l, None),
            Err(e) => {
                tracing::warn!(image, error = %e, "cannot get registry logins with the task's execution role; pulling without them");
                (None, Some(e))
            }
        };
        let creds = login.as_ref().or_else(|| self.auth.get(reference.registry()));
        let pulled = self.service.ensure(&reference, policy, creds).await.map_err(|e| {
            let reason = e.cannot_pull_reason();
            // First, so the 255 characters ECS keeps of a reason hold it.
            let reason = match &login_error {
                // The registry wanted the login the execution role could
                // not get: ECS names the refused ECR call.
                Some(why) if e.kind() == berth_image::PullErrorKind::Unauthorized => format!("CannotPullECRContainerError: {why}"),
                Some(why) => {
                    let rest = reason.strip_prefix("CannotPullContainerError: ").unwrap_or(&reason);
                    format!("CannotPullContainerError: no registry credentials with the task's execution role ({why}); {rest}")
                }
                None => reason,
            };
            PullFailure { reason }
        })?;
        Ok(ReadyImage { digest: pulled.manifest_digest.to_string(), config: pulled.config, layers: pulled.layer_dirs })
    }

    fn prepare_rootfs(&self, container_id: &str, layers: &[PathBuf]) -> Result<PathBuf, String> {
        self.snapshotter.prepare(container_id, layers).map(|m| m.merged).map_err(|e| e.to_string())
    }

    fn release_rootfs(&self, container_id: &str) -> Result<(), String> {
        self.snapshotter.release(container_id).map_err(|e| e.to_string())
    }
}

/// Images in memory: each known name resolves to a config and an empty
/// layer directory. Unknown names fail the way a registry's 404 does.
#[derive(Default)]
pub struct FakeImages {
    images: Mutex<HashMap<String, ImageConfig>>,
    /// Served for any name not added (simulated hosts run anything).
    fallback: Option<ImageConfig>,
    root: PathBuf,
    pulls: Mutex<Vec<String>>,
    /// The access key of the session each pull was given, in order.
    sessions: Mutex<Vec<Option<String>>>,
}

impl FakeImages {
    pub fn new(root: impl Into<PathBuf>) -> FakeImages {
        FakeImages { root: root.into(), ..FakeImages::default() }
    }

    /// Images that resolve whatever their name, to `config`.
    pub fn any(root: impl Into<PathBuf>, config: ImageConfig) -> FakeImages {
        FakeImages { root: root.into(), fallback: Some(config), ..FakeImages::default() }
    }

    pub fn add(&self, image: &str, config: ImageConfig) {
        self.images.lock().unwrap_or_else(|p| p.into_inner()).insert(image.to_string(), config);
    }

    pub fn pulls(&self) -> Vec<String> {
        self.pulls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The access key id of the execution-role session of each pull.
    pub fn pull_sessions(&self) -> Vec<Option<String>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl Images for FakeImages {
    async fn ensure(&self, image: &str, _policy: PullPolicy, session: Option<&RoleCredentials>) -> Result<ReadyImage, PullFailure> {
        self.pulls.lock().unwrap_or_else(|p| p.into_inner()).push(image.to_string());
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).push(session.map(|s| s.access_key_id.clone()));
        let config = self.images.lock().unwrap_or_else(|p| p.into_inner()).get(image).cloned().or_else(|| self.fallback.clone());
        match config {
            Some(config) => Ok(ReadyImage { digest: format!("sha256:{:064x}", image.len()), config, layers: vec![] }),
            None => Err(PullFailure { reason: format!("CannotPullContainerError: {image}: not found") }),
        }
    }

    fn prepare_rootfs(&self, container_id: &str, _layers: &[PathBuf]) -> Result<PathBuf, String> {
        let dir = self.root.join(container_id);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    fn release_rootfs(&self, container_id: &str) -> Result<(), String> {
        match std::fs::remove_dir_all(self.root.join(container_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ecr_tokens_become_logins_by_registry_host() {
        let answer = json!({"authorizationData": [
            {"authorizationToken": "Y2k6czNjcmV0", "expiresAt": 1, "proxyEndpoint": "https://127.0.0.1:5000"},
            {"authorizationToken": "not base64!", "proxyEndpoint": "https://bad"},
            {"authorizationToken": "bm9jb2xvbg==", "proxyEndpoint": "https://nocolon"}
        ]});
        let logins = parse_authorization(&answer);
        assert_eq!(logins.len(), 1);
        let c = &logins["127.0.0.1:5000"];
        assert_eq!(c.username, "ci");
        assert!(parse_authorization(&json!({})).is_empty());
    }
}
