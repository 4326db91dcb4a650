//! The agent's side of the control plane: ECS operations and the long
//! poll, behind [`ControlPlane`] so the task engine can be tested against
//! an in-process server and simulated hosts can share one.

use berth_agent_protocol::{PollRequest, PollResponse, RoleCredentials, POLL_HOLD_SECS, POLL_PATH};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::fmt;
use std::time::{Duration, SystemTime};

const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const JSON_1_1: &str = "application/x-amz-json-1.1";
const ECR_GET_AUTHORIZATION_TOKEN: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

/// Who signs a request, for which service.
struct Signer<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: Option<&'a str>,
    service: &'a str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// The server could not be reached or the connection broke: retry.
    #[error("cannot reach the control plane: {0}")]
    Unreachable(String),
    /// The server answered with an AWS error.
    #[error("{code}: {message}")]
    Api { code: String, message: String },
    #[error("unreadable answer from the control plane: {0}")]
    Decode(String),
}

impl ControlError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ControlError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[async_trait::async_trait]
pub trait ControlPlane: Send + Sync {
    /// One ECS JSON operation (`RegisterContainerInstance`, ...).
    async fn call(&self, operation: &str, body: Value) -> Result<Value, ControlError>;
    /// One long poll: returns within [`POLL_HOLD_SECS`] (plus latency).
    async fn poll(&self, req: &PollRequest) -> Result<PollResponse, ControlError>;
    /// ECR's `GetAuthorizationToken`: the logins of the private registries
    /// the server hands out, asked for with `session` (a task's execution
    /// role) or, for a task without one, with the agent's own credentials.
    /// A control plane with no registries answers none.
    async fn registry_authorization(&self, session: Option<&RoleCredentials>) -> Result<Value, ControlError> {
        let _ = session;
        Ok(serde_json::json!({ "authorizationData": [] }))
    }
}

/// AWS credentials the agent signs with.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for AgentCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The real thing: SigV4-signed HTTP to a Berth server.
pub struct HttpControlPlane {
    client: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    credentials: AgentCredentials,
}

impl HttpControlPlane {
    /// `endpoint` is `http://host:port` or `https://host[:port]`.
    pub fn new(endpoint: &str, region: &str, credentials: AgentCredentials) -> Result<HttpControlPlane, ControlError> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let host = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .ok_or_else(|| ControlError::Unreachable(format!("{endpoint}: the endpoint must start with http:// or https://")))?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        // The same rustls setup (ring, web PKI roots) as image pulls.
        let tls = berth_image::registry::tls_config(&[]).map_err(|e| ControlError::Unreachable(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(5))
            // A poll is held up to POLL_HOLD_SECS; anything far beyond is a dead connection.
            .timeout(Duration::from_secs(POLL_HOLD_SECS + 25))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ControlError::Unreachable(e.to_string()))?;
        Ok(HttpControlPlane { client, endpoint, host, region: region.to_string(), credentials })
    }

    async fn post(&self, path: &str, target: Option<&str>, body: Vec<u8>) -> Result<Value, ControlError> {
        let signer = Signer {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: &self.credentials.secret_access_key,
            session_token: None,
            service: "ecs",
        };
        self.post_as(&signer, path, target, body).await
    }

    async fn post_as(&self, signer: &Signer<'_>, path: &str, target: Option<&str>, body: Vec<u8>) -> Result<Value, ControlError> {
        let mut headers = HeaderMap::new();
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| ControlError::Unreachable(e.to_string()));
        headers.insert(http::header::HOST, value(&self.host)?);
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
        if let Some(t) = target {
            headers.insert("x-amz-target", value(t)?);
        }
        let params = berth_sigv4::signer::SigningParams {
            credentials: berth_sigv4::signer::Credentials {
                access_key_id: signer.access_key_id,
                secret_access_key: signer.secret_access_key,
                session_token: signer.session_token,
            },
            region: &self.region,
            service: signer.service,
            time: SystemTime::now(),
        };
        berth_sigv4::signer::sign("POST", path, "", &mut headers, &body, &params)
            .map_err(|e| ControlError::Unreachable(e.to_string()))?;
        headers.remove(http::header::HOST);
        let response = self
            .client
            .post(format!("{}{path}", self.endpoint))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| ControlError::Unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ControlError::Unreachable(e.to_string()))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        if status.is_server_error() && json.get("__type").is_none() {
            return Err(ControlError::Unreachable(format!("HTTP {status}")));
        }
        let code = json
            .get("__type")
            .and_then(Value::as_str)
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = json.get("message").or_else(|| json.get("Message")).and_then(Value::as_str).unwrap_or_default().to_string();
        Err(ControlError::Api { code, message })
    }
}

#[async_trait::async_trait]
impl ControlPlane for HttpControlPlane {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, ControlError> {
        let body = serde_json::to_vec(&body).map_err(|e| ControlError::Decode(e.to_string()))?;
        self.post("/", Some(&format!("{ECS_TARGET_PREFIX}.{operation}")), body).await
    }

    async fn poll(&self, req: &PollRequest) -> Result<PollResponse, ControlError> {
        let body = serde_json::to_vec(req).map_err(|e| ControlError::Decode(e.to_string()))?;
        let v = self.post(POLL_PATH, None, body).await?;
        serde_json::from_value(v).map_err(|e| ControlError::Decode(e.to_string()))
    }

    async fn registry_authorization(&self, session: Option<&RoleCredentials>) -> Result<Value, ControlError> {
        let signer = match session {
            Some(s) => Signer {
                access_key_id: &s.access_key_id,
                secret_access_key: &s.secret_access_key,
                session_token: Some(&s.session_token),
                service: "ecr",
            },
            None => Signer {
                access_key_id: &self.credentials.access_key_id,
                secret_access_key: &self.credentials.secret_access_key,
                session_token: None,
                service: "ecr",
            },
        };
        self.post_as(&signer, "/", Some(ECR_GET_AUTHORIZATION_TOKEN), b"{}".to_vec()).await
    }
}

/// Mints this host's instance credentials from an administrator's
/// (`POST /agent/v1/credentials`, allowed to the account root only).
pub async fn bootstrap_credentials(
    endpoint: &str,
    region: &str,
    admin: AgentCredentials,
    name: &str,
) -> Result<AgentCredentials, ControlError> {
    let plane = HttpControlPlane::new(endpoint, region, admin)?;
    let body = serde_json::to_vec(&serde_json::json!({ "name": name })).map_err(|e| ControlError::Decode(e.to_string()))?;
    let v = plane.post(berth_agent_protocol::CREDENTIALS_PATH, None, body).await?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| ControlError::Decode(format!("no {k}")));
    Ok(AgentCredentials { access_key_id: field("accessKeyId")?, secret_access_key: field("secretAccessKey")? })
}
