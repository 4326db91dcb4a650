//! One request's way through the server: body limit, authentication,
//! routing, and rendering in the caller's protocol.
//!
//! JSON protocols are routed by `X-Amz-Target`; the query protocol
//! (`Action=...` form bodies) by the SigV4 signing name. Every response is a
//! complete body (no chunking), so hyper writes it in one piece.
//!
//! Four kinds of key sign requests: the account root key (kept in memory,
//! never looked up), IAM users' access keys (from berth-iam's snapshot),
//! temporary session credentials (`ASIA...` with a session token that
//! carries its own sealed claims, see `berth_iam::sessions`) and instance
//! credentials (looked up in the store through a cache, see
//! [`crate::instance_credentials`]). Every request is named as an IAM
//! action on its resources ([`crate::resources`]) and authorized by the
//! caller's identity policies ([`crate::authz`]) once it is routed.

use crate::authz::{self, Action};
use crate::credentials::{AccountIdentity, CredentialError};
use crate::instance_credentials::{self, InstanceCredentialCache};
use crate::resources;
use berth_arn::Region;
use berth_iam::sessions::{self, SessionError, SessionSubject};
use berth_iam::{Caller, Iam, RequestFacts};
use berth_clock::Clock;
use berth_ecs::{Ecs, RequestContext};
use berth_sigv4::{Authenticated, RequestParts, SigV4Error};
use berth_wire::target::{JsonService, Target};
use berth_wire::{ServiceError, json, new_request_id, query};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Instant;

/// 10 MiB: well above any ECS request (task definitions are capped at 64 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The peer address of the connection a request came on (set by the
/// listener), for `aws:SourceIp`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

pub struct FrontDoor {
    identity: AccountIdentity,
    ecs: Ecs,
    iam: Arc<Iam>,
    instance_keys: InstanceCredentialCache,
    clock: Arc<dyn Clock>,
    max_body_bytes: usize,
    /// Private registries' logins, handed out by ECR GetAuthorizationToken.
    registries: crate::ecr::RegistryLogins,
}

/// An error produced by the front door itself, before any service ran.
#[derive(Debug, thiserror::Error)]
enum DoorError {
    #[error("Request body exceeds the limit of {0} bytes.")]
    TooLarge(usize),
    #[error("Could not read the request body.")]
    BodyRead,
    #[error("{0}")]
    InvalidRegion(String),
    #[error("Credential should be scoped to correct service: '{0}'. ")]
    WrongService(&'static str),
    #[error("Operation {0} is not supported by {1} in this version of Berth.")]
    ServiceNotServed(String, &'static str),
    #[error("The action or operation requested is invalid. Verify that the action is typed correctly.")]
    UnknownTarget,
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    /// A session token past its expiry, in a JSON protocol.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// The same, in the query protocol.
    #[error("The security token included in the request is expired")]
    QueryExpiredToken,
    /// Denied by [`authz::decide`], in a JSON protocol.
    #[error("{0}")]
    AccessDenied(String),
    /// Denied by [`authz::decide`], in the query protocol (STS, IAM, ...).
    #[error("{0}")]
    QueryAccessDenied(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Serialization(String),
    /// A store failure (logged where it happened, never shown).
    #[error("The server encountered an internal error. Try again later.")]
    Internal,
}

impl From<CredentialError> for DoorError {
    fn from(e: CredentialError) -> DoorError {
        match e {
            CredentialError::InvalidName(m) => DoorError::InvalidParameter(m),
            other => {
                tracing::error!(error = %other, "instance credentials");
                DoorError::Internal
            }
        }
    }
}

impl ServiceError for DoorError {
    fn code(&self) -> &'static str {
        match self {
            DoorError::TooLarge(_) => "RequestEntityTooLarge",
            DoorError::BodyRead => "SerializationException",
            DoorError::InvalidRegion(_) | DoorError::WrongService(_) => "InvalidSignatureException",
            DoorError::ServiceNotServed(..) => "UnsupportedOperationException",
            DoorError::UnknownTarget => "UnknownOperationException",
            DoorError::InvalidAction(_) => "InvalidAction",
            DoorError::ExpiredToken => "ExpiredTokenException",
            DoorError::QueryExpiredToken => "ExpiredToken",
            DoorError::AccessDenied(_) => "AccessDeniedException",
            DoorError::QueryAccessDenied(_) => "AccessDenied",
            DoorError::InvalidParameter(_) => "InvalidParameterException",
            DoorError::Serialization(_) => "SerializationException",
            DoorError::Internal => "ServerException",
        }
    }
    fn status(&self) -> u16 {
        match self {
            DoorError::TooLarge(_) => 413,
            DoorError::ExpiredToken | DoorError::QueryExpiredToken | DoorError::QueryAccessDenied(_) => 403,
            DoorError::Internal => 500,
            _ => 400,
        }
    }
}

/// Why authentication refused a request.
enum Refusal {
    SigV4(SigV4Error),
    Door(DoorError),
}

/// The two query services berth-iam answers.
#[derive(Clone, Copy)]
enum IamService {
    Iam,
    Sts,
}

/// `X-Amz-Security-Token` from the headers, or from the query string of a
/// presigned request.
fn session_token_of(request: &RequestParts<'_>) -> Option<String> {
    if let Some(v) = request.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    query::parse_form(request.query.as_bytes()).into_iter().find(|(k, _)| k == "X-Amz-Security-Token").map(|(_, v)| v)
}

/// Which wire protocol the caller speaks, so errors come back in it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json,
    Query,
}

impl FrontDoor {
    /// Instance credentials are looked up in `ecs`'s store; identities,
    /// policies and sessions come from `iam`, whose master key also seals
    /// the instance credentials' secrets.
    pub fn new(identity: AccountIdentity, ecs: Ecs, iam: Arc<Iam>, clock: Arc<dyn Clock>, max_body_bytes: usize) -> FrontDoor {
        let instance_keys = InstanceCredentialCache::new(ecs.store().clone(), identity.account_id.clone(), iam.key().clone());
        FrontDoor { identity, ecs, iam, instance_keys, clock, max_body_bytes, registries: Default::default() }
    }

    /// Serve these registries' logins through ECR's GetAuthorizationToken.
    pub fn with_registries(mut self, registries: crate::ecr::RegistryLogins) -> FrontDoor {
        self.registries = registries;
        self
    }

    /// `Some(denial)` unless `caller`'s policies allow `action` on every
    /// one of `resources`.
    fn denied(&self, caller: &Caller, action: Action<'_>, resources: &[String], facts: &RequestFacts) -> Option<String> {
        authz::check(&self.iam.snapshot(), caller, action, resources, facts).err().map(|d| d.message)
    }

    /// Verify the signature and name the principal. The root key is
    /// compared in memory; IAM users' keys and sessions are resolved from
    /// the IAM snapshot; any other key id is read (through the cache)
    /// before verifying, because `berth_sigv4::verify` asks for the secret
    /// synchronously and the store is async.
    async fn authenticate(&self, request: &RequestParts<'_>, now: std::time::SystemTime, protocol: Protocol) -> Result<(Authenticated, Caller), Refusal> {
        let root_key = self.identity.root_access_key_id.as_str();
        let account = &self.identity.account_id;
        // A request whose scope does not parse fails in verify below, with
        // the same error and without a store read.
        let claimed = berth_sigv4::parse_scope(request).ok().map(|s| s.access_key_id);
        let mut known: Option<(String, Caller)> = None;
        // A long-term key with a session token is refused, as AWS does.
        if claimed.as_deref().is_some_and(|k| !k.starts_with("ASIA")) && session_token_of(request).is_some() {
            return Err(Refusal::SigV4(SigV4Error::UnrecognizedClient));
        }
        match claimed.as_deref() {
            Some(akid) if akid == root_key => {
                known = Some((self.identity.root_secret_access_key.expose().to_string(), Caller::root(account)));
            }
            Some(akid) if akid.starts_with("ASIA") => {
                let Some(token) = session_token_of(request) else {
                    return Err(Refusal::SigV4(SigV4Error::UnrecognizedClient));
                };
                let now_secs = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                match sessions::verify(self.iam.key(), akid, &token, now_secs) {
                    Ok((claims, secret)) if claims.account == account.as_str() => {
                        known = Some((secret, self.session_caller(claims.subject, claims.issued_at)));
                    }
                    Ok(_) | Err(SessionError::Invalid) => return Err(Refusal::SigV4(SigV4Error::UnrecognizedClient)),
                    Err(SessionError::Expired) => {
                        let e = if protocol == Protocol::Query { DoorError::QueryExpiredToken } else { DoorError::ExpiredToken };
                        return Err(Refusal::Door(e));
                    }
                }
            }
            Some(akid) => {
                let snapshot = self.iam.snapshot();
                if let Some(key) = snapshot.state().access_keys.get(akid) {
                    let user = snapshot.state().user(&key.user_name);
                    if let (true, Some(user)) = (key.is_active(), user) {
                        match self.iam.key().open_string(akid, &key.secret) {
                            Ok(secret) => {
                                known = Some((secret, Caller::user(account, &user.name, &user.id, &user.arn)));
                            }
                            Err(e) => {
                                tracing::error!(error = %e, access_key_id = akid, "an IAM access key's secret cannot be opened (wrong master key?)");
                                return Err(Refusal::Door(DoorError::Internal));
                            }
                        }
                    }
                } else if let Some(c) = self.instance_keys.lookup(akid).await.map_err(|e| Refusal::Door(e.into()))? {
                    known = Some((c.secret_access_key.clone(), instance_credentials::caller(account, &c.principal_arn)));
                }
            }
            None => {}
        }
        let lookup = |akid: &str| match (&known, claimed.as_deref()) {
            (Some((secret, _)), Some(claimed)) if claimed == akid => Some(secret.clone()),
            _ => None,
        };
        let auth = berth_sigv4::verify(request, now, &lookup).map_err(Refusal::SigV4)?;
        // verify only succeeds for the key `lookup` knew.
        match known {
            Some((_, caller)) if claimed.as_deref() == Some(auth.access_key_id.as_str()) => Ok((auth, caller)),
            _ => Err(Refusal::SigV4(SigV4Error::UnrecognizedClient)),
        }
    }

    /// The principal a verified session token names.
    fn session_caller(&self, subject: SessionSubject, issued_at: u64) -> Caller {
        let account = self.identity.account_id.clone();
        let mut caller = match subject {
            SessionSubject::Root => Caller::root(&account),
            SessionSubject::User { name, user_id, path } => {
                Caller::user(&account, &name, &user_id, &format!("arn:aws:iam::{account}:user{path}{name}"))
            }
            SessionSubject::AssumedRole { role_name, role_id, session_name } => {
                Caller::role_session(&account, &role_name, &role_id, &session_name)
            }
        };
        caller.token_issued_at = Some(issued_at);
        caller
    }

    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = new_request_id();
        if req.method() == Method::GET && req.uri().path() == "/health" {
            return respond(StatusCode::OK, "application/json", Bytes::from_static(b"{\"status\":\"ok\"}"), &request_id, started);
        }
        let protocol = if req.headers().contains_key("x-amz-target") { Protocol::Json } else { guess_protocol(&req) };
        let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let err = if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    DoorError::TooLarge(self.max_body_bytes)
                } else {
                    DoorError::BodyRead
                };
                return render_error(protocol, &err, None, &request_id, started);
            }
        };
        let now = self.clock.now();
        let request = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body: &body,
        };
        let (auth, caller) = match self.authenticate(&request, now, protocol).await {
            Ok(a) => a,
            Err(Refusal::SigV4(e)) => return render_sigv4_error(protocol, &e, &request_id, started),
            Err(Refusal::Door(e)) => return render_error(protocol, &e, None, &request_id, started),
        };
        let region = match Region::try_from(auth.region.clone()) {
            Ok(r) => r,
            Err(_) => {
                let err = DoorError::InvalidRegion(format!(
                    "Credential should be scoped to a valid region, not '{}'. ",
                    auth.region
                ));
                return render_error(protocol, &err, None, &request_id, started);
            }
        };
        let facts = RequestFacts {
            now,
            source_ip: peer,
            region: region.to_string(),
            // Berth's listener speaks plain HTTP; a TLS proxy in front says so.
            secure_transport: parts.headers.get("x-forwarded-proto").is_some_and(|v| v == "https"),
        };
        let ctx = RequestContext {
            account: self.identity.account_id.clone(),
            region,
            principal_arn: caller.arn.clone(),
            now,
        };
        if parts.uri.path() == berth_agent_protocol::POLL_PATH {
            return self.handle_poll(&ctx, &caller, &facts, &parts.method, &auth.service, &body, &request_id, started).await;
        }
        if parts.uri.path() == berth_agent_protocol::CREDENTIALS_PATH {
            return self.handle_mint(&ctx, &caller, &facts, &parts.method, &auth.service, &body, &request_id, started).await;
        }
        match protocol {
            Protocol::Json => {
                let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
                let endpoint = endpoint_of(&parts.headers);
                self.handle_json(&ctx, &caller, &facts, &auth.service, target, &body, endpoint.as_deref(), &request_id, started)
                    .await
            }
            Protocol::Query => {
                let form = if parts.method == Method::GET {
                    query::parse_form(parts.uri.query().unwrap_or("").as_bytes())
                } else {
                    query::parse_form(&body)
                };
                self.handle_query(&ctx, &caller, &facts, &auth.service, &form, &request_id, started).await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle_json(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        facts: &RequestFacts,
        signing_service: &str,
        target: &str,
        body: &[u8],
        endpoint: Option<&str>,
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let (service, operation) = match berth_wire::target::parse(target) {
            Some(Target::Known { service, operation }) => (service, operation),
            _ => return render_error(Protocol::Json, &DoorError::UnknownTarget, None, request_id, started),
        };
        if signing_service != service.name() {
            return render_error(Protocol::Json, &DoorError::WrongService(service.name()), None, request_id, started);
        }
        // A name outside the ECS model is UnknownOperationException for
        // everyone; anything else is authorized on the resources its body
        // names.
        let is_operation = service != JsonService::Ecs || berth_ecs::operations::is_ecs_operation(operation);
        let input = match json::parse_body(body) {
            Ok(i) => i,
            Err(e) => return render_error(Protocol::Json, &e, Some(operation), request_id, started),
        };
        let action = Action { service: authz::iam_prefix(service.name()), name: operation };
        if is_operation && !caller.is_root() {
            let (named, keys) = if service == JsonService::Ecs {
                (
                    resources::ecs(&ctx.region, &ctx.account, operation, &input),
                    resources::ecs_condition_keys(&ctx.region, &ctx.account, operation, &input),
                )
            } else {
                (vec!["*".to_string()], Vec::new())
            };
            if let Err(denial) = authz::check_with(&self.iam.snapshot(), caller, action, &named, facts, &keys) {
                return render_error(Protocol::Json, &DoorError::AccessDenied(denial.message), Some(operation), request_id, started);
            }
        }
        match service {
            JsonService::Ecs => match self.ecs.handle_with_endpoint(ctx, operation, input, endpoint).await {
                Ok(value) => {
                    tracing::debug!(operation, request_id, "ok");
                    // Serialising a serde_json::Value cannot fail.
                    let bytes = serde_json::to_vec(&value).unwrap_or_default();
                    respond(StatusCode::OK, json::CONTENT_TYPE_1_1, Bytes::from(bytes), request_id, started)
                }
                Err(e) => render_error(Protocol::Json, &e, Some(operation), request_id, started),
            },
            JsonService::Ecr if operation == "GetAuthorizationToken" => {
                let value = self.registries.authorization_token(ctx.now);
                // Serialising a serde_json::Value cannot fail.
                let bytes = serde_json::to_vec(&value).unwrap_or_default();
                respond(StatusCode::OK, json::CONTENT_TYPE_1_1, Bytes::from(bytes), request_id, started)
            }
            other => render_error(
                Protocol::Json,
                &DoorError::ServiceNotServed(operation.to_string(), other.name()),
                Some(operation),
                request_id,
                started,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn handle_query(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        facts: &RequestFacts,
        signing_service: &str,
        form: &[(String, String)],
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let action = form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()).unwrap_or("");
        if signing_service == "ec2" {
            // Names that are no EC2 action get berth-ec2's own answer.
            let named = Action { service: "ec2", name: action };
            if berth_ec2::operations::is_ec2_action(action) && self.denied(caller, named, &["*".to_string()], facts).is_some() {
                let message = authz::ec2_denial_message(&caller.arn, named);
                let xml = berth_ec2::xml::error_document("UnauthorizedOperation", &message, request_id);
                return respond(StatusCode::FORBIDDEN, "text/xml", Bytes::from(xml), request_id, started);
            }
            return self.handle_ec2(ctx, form, request_id, started);
        }
        if signing_service == "sts" {
            // STS authorizes its own calls: GetCallerIdentity needs no
            // permission, AssumeRole weighs the role's trust policy too.
            return self.handle_iam_service(caller, facts, form, action, IamService::Sts, request_id, started).await;
        }
        let query_service = matches!(signing_service, "iam" | "elasticloadbalancing" | "monitoring");
        let named = Action { service: authz::iam_prefix(signing_service), name: action };
        let targets = match signing_service {
            "iam" => resources::iam(&self.iam.snapshot(), form),
            "elasticloadbalancing" => resources::elbv2(form),
            _ => vec!["*".to_string()],
        };
        let result: Result<String, DoorError> = match (signing_service, action) {
            (_, a) if query_service && !a.is_empty() && let Some(denial) = self.denied(caller, named, &targets, facts) => {
                Err(DoorError::QueryAccessDenied(denial))
            }
            ("iam", _) => return self.handle_iam_service(caller, facts, form, action, IamService::Iam, request_id, started).await,
            ("elasticloadbalancing", _) => return self.handle_elbv2(ctx, form, action, request_id, started).await,
            (_, a) if query_service && !a.is_empty() => {
                Err(DoorError::ServiceNotServed(a.to_string(), static_service_name(signing_service)))
            }
            _ => Err(DoorError::InvalidAction(action.to_string())),
        };
        match result {
            Ok(xml) => respond(StatusCode::OK, "text/xml", Bytes::from(xml), request_id, started),
            Err(e) => render_error(Protocol::Query, &e, Some(action), request_id, started),
        }
    }
}

impl FrontDoor {
    /// The agent's long poll (see berth-agent-protocol): SigV4 with the
    /// signing name `ecs`, a JSON `PollRequest` in, a `PollResponse` out,
    /// errors as ECS JSON errors.
    #[allow(clippy::too_many_arguments)]
    async fn handle_poll(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        facts: &RequestFacts,
        method: &Method,
        signing_service: &str,
        body: &[u8],
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        const OP: &str = "Poll";
        let denial = self.denied(caller, Action::POLL, &["*".to_string()], facts);
        if let Some(refusal) = agent_endpoint_refusal(denial, method, signing_service, OP, request_id, started) {
            return refusal;
        }
        let req: berth_agent_protocol::PollRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                let err = berth_ecs::EcsError::Serialization(format!("Request could not be deserialized: {e}"));
                return render_error(Protocol::Json, &err, Some(OP), request_id, started);
            }
        };
        match self.ecs.poll(ctx, req).await {
            Ok(resp) => {
                // Serialising plain data structures cannot fail.
                let bytes = serde_json::to_vec(&resp).unwrap_or_default();
                respond(StatusCode::OK, json::CONTENT_TYPE_1_1, Bytes::from(bytes), request_id, started)
            }
            Err(e) => render_error(Protocol::Json, &e, Some(OP), request_id, started),
        }
    }

    /// Mint instance credentials for an agent (`POST /agent/v1/credentials`,
    /// see berth-agent-protocol): root only, SigV4 with the signing name
    /// `ecs`, a JSON `CredentialsRequest` in (an empty body is `{}`), a
    /// `CredentialsResponse` out, errors as ECS JSON errors.
    #[allow(clippy::too_many_arguments)]
    async fn handle_mint(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        facts: &RequestFacts,
        method: &Method,
        signing_service: &str,
        body: &[u8],
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        const OP: &str = "CreateInstanceCredentials";
        let denial = self.denied(caller, Action::CREATE_INSTANCE_CREDENTIALS, &["*".to_string()], facts);
        if let Some(refusal) = agent_endpoint_refusal(denial, method, signing_service, OP, request_id, started) {
            return refusal;
        }
        let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
        let req: berth_agent_protocol::CredentialsRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                let err = DoorError::Serialization(format!("Request could not be deserialized: {e}"));
                return render_error(Protocol::Json, &err, Some(OP), request_id, started);
            }
        };
        let store = self.instance_keys.store().clone();
        match instance_credentials::mint(store.as_ref(), &ctx.account, self.instance_keys.master(), req.name.as_deref(), ctx.now).await {
            Ok(creds) => {
                self.instance_keys.remember(&creds);
                tracing::info!(access_key_id = %creds.access_key_id, principal = %creds.principal_arn, by = %caller.arn, request_id, "minted instance credentials");
                let resp = berth_agent_protocol::CredentialsResponse::from(creds);
                // Serialising plain data structures cannot fail.
                let bytes = serde_json::to_vec(&resp).unwrap_or_default();
                respond(StatusCode::OK, json::CONTENT_TYPE_1_1, Bytes::from(bytes), request_id, started)
            }
            Err(e) => render_error(Protocol::Json, &DoorError::from(e), Some(OP), request_id, started),
        }
    }

    /// ELBv2 (signing name `elasticloadbalancing`), over the ECS store:
    /// its records live beside ECS's, where the data plane (berth-lb)
    /// reads them. An empty `Action` reaches berth-elbv2 too, which answers
    /// ELB's own `InvalidAction`.
    async fn handle_elbv2(
        &self,
        ctx: &RequestContext,
        form: &[(String, String)],
        action: &str,
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let request = berth_elbv2::Elbv2Request {
            account: &ctx.account,
            region: &ctx.region,
            now: ctx.now,
            params: form,
            request_id,
        };
        match berth_elbv2::handle(self.ecs.store().as_ref(), &request).await {
            Ok(xml) => {
                tracing::debug!(operation = action, request_id, "ok");
                respond(StatusCode::OK, "text/xml", Bytes::from(xml), request_id, started)
            }
            Err(berth_elbv2::Elbv2Error::Internal(detail)) => {
                // A store failure: logged here, never shown to the caller.
                tracing::error!(operation = action, request_id, error = %detail, "elbv2 store failure");
                render_error(Protocol::Query, &DoorError::Internal, Some(action), request_id, started)
            }
            Err(e) => {
                tracing::debug!(code = e.code(), operation = action, request_id, "elbv2 client error");
                // ELB's error document carries the API's namespace.
                let (status, xml) = query::render_error(&e, request_id);
                let xml = xml.replacen(
                    "<ErrorResponse>",
                    &format!("<ErrorResponse xmlns=\"{}\">", berth_elbv2::xml::ELBV2_NAMESPACE),
                    1,
                );
                respond(status_of(status), "text/xml", Bytes::from(xml), request_id, started)
            }
        }
    }

    /// IAM and STS (berth-iam), each with its own XML namespace in errors.
    #[allow(clippy::too_many_arguments)]
    async fn handle_iam_service(
        &self,
        caller: &Caller,
        facts: &RequestFacts,
        form: &[(String, String)],
        action: &str,
        service: IamService,
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let request = berth_iam::QueryRequest { params: form, request_id, caller, facts };
        let (result, namespace) = match service {
            IamService::Iam => (berth_iam::api::handle(&self.iam, &request).await, "https://iam.amazonaws.com/doc/2010-05-08/"),
            IamService::Sts => (berth_iam::sts::handle(&self.iam, &request).await, "https://sts.amazonaws.com/doc/2011-06-15/"),
        };
        match result {
            Ok(xml) => {
                tracing::debug!(operation = action, request_id, "ok");
                respond(StatusCode::OK, "text/xml", Bytes::from(xml), request_id, started)
            }
            Err(berth_iam::IamError::Internal(detail)) => {
                // A store failure: logged here, never shown to the caller.
                tracing::error!(operation = action, request_id, error = %detail, "iam store failure");
                render_error(Protocol::Query, &DoorError::Internal, Some(action), request_id, started)
            }
            Err(e) => {
                tracing::debug!(code = e.code(), operation = action, request_id, "iam client error");
                let (status, xml) = query::render_error(&e, request_id);
                let xml = xml.replacen("<ErrorResponse>", &format!("<ErrorResponse xmlns=\"{namespace}\">"), 1);
                respond(status_of(status), "text/xml", Bytes::from(xml), request_id, started)
            }
        }
    }

    /// EC2 speaks the query protocol with its own error document.
    fn handle_ec2(
        &self,
        ctx: &RequestContext,
        form: &[(String, String)],
        request_id: &str,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let request = berth_ec2::Ec2Request { account: &ctx.account, region: &ctx.region, params: form, request_id };
        match berth_ec2::handle(&request) {
            Ok(xml) => respond(StatusCode::OK, "text/xml", Bytes::from(xml), request_id, started),
            Err(e) => {
                tracing::debug!(code = e.code(), request_id, "ec2 client error");
                let xml = berth_ec2::render_error(&e, request_id);
                respond(status_of(e.status()), "text/xml", Bytes::from(xml), request_id, started)
            }
        }
    }
}

/// `http://HOST[:PORT]` as the caller addressed this server (Berth's
/// listener speaks plain HTTP; a TLS-terminating proxy in front says so in
/// `X-Forwarded-Proto`).
/// The checks every `/agent/v1/*` endpoint makes before reading its body:
/// signed for `ecs`, a POST, and allowed to this caller.
fn agent_endpoint_refusal(
    denial: Option<String>,
    method: &Method,
    signing_service: &str,
    op: &'static str,
    request_id: &str,
    started: Instant,
) -> Option<Response<Full<Bytes>>> {
    let err = if signing_service != "ecs" {
        DoorError::WrongService("ecs")
    } else if method != Method::POST {
        DoorError::UnknownTarget
    } else if let Some(denial) = denial {
        DoorError::AccessDenied(denial)
    } else {
        return None;
    };
    Some(render_error(Protocol::Json, &err, Some(op), request_id, started))
}

fn endpoint_of(headers: &http::HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).filter(|h| !h.is_empty())?;
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    Some(format!("{scheme}://{host}"))
}

fn static_service_name(s: &str) -> &'static str {
    match s {
        "iam" => "iam",
        "sts" => "sts",
        "elasticloadbalancing" => "elasticloadbalancing",
        _ => "monitoring",
    }
}

/// Without `X-Amz-Target`, a form body or an `Action` query parameter means
/// the query protocol; anything else is answered as JSON.
fn guess_protocol<B>(req: &Request<B>) -> Protocol {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let action_in_query = req.uri().query().is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    if form || action_in_query { Protocol::Query } else { Protocol::Json }
}

fn render_sigv4_error(protocol: Protocol, e: &SigV4Error, request_id: &str, started: Instant) -> Response<Full<Bytes>> {
    tracing::debug!(code = e.json_code(), request_id, "authentication failed");
    match protocol {
        Protocol::Json => {
            let (status, body) = json::render_error(e);
            respond(status_of(status), json::CONTENT_TYPE_1_1, Bytes::from(body), request_id, started)
        }
        Protocol::Query => {
            let xml = query::error_xml(e.query_code(), &e.to_string(), true, request_id);
            respond(status_of(e.query_status()), "text/xml", Bytes::from(xml), request_id, started)
        }
    }
}

fn render_error(
    protocol: Protocol,
    e: &dyn ServiceError,
    operation: Option<&str>,
    request_id: &str,
    started: Instant,
) -> Response<Full<Bytes>> {
    if e.status() >= 500 {
        tracing::warn!(code = e.code(), operation, request_id, "server fault");
    } else {
        tracing::debug!(code = e.code(), operation, request_id, "client error");
    }
    match protocol {
        Protocol::Json => {
            let (status, body) = json::render_error(e);
            let mut resp = respond(status_of(status), json::CONTENT_TYPE_1_1, Bytes::from(body), request_id, started);
            if let Ok(v) = HeaderValue::from_str(e.code()) {
                resp.headers_mut().insert("x-amzn-errortype", v);
            }
            resp
        }
        Protocol::Query if e.status() >= 500 => {
            // The query protocol's name for a server fault (as internal_error).
            let xml = query::error_xml("InternalFailure", &e.message(), false, request_id);
            respond(status_of(e.status()), "text/xml", Bytes::from(xml), request_id, started)
        }
        Protocol::Query => {
            let (status, xml) = query::render_error(e, request_id);
            respond(status_of(status), "text/xml", Bytes::from(xml), request_id, started)
        }
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A complete response with the AWS request id and the server-side time
/// (`Server-Timing`, read by the benchmark).
fn respond(status: StatusCode, content_type: &'static str, body: Bytes, request_id: &str, started: Instant) -> Response<Full<Bytes>> {
    let micros = started.elapsed().as_micros();
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={}.{:03}", micros / 1000, micros % 1000)) {
        h.insert("server-timing", v);
    }
    resp
}

/// The response for a request whose handler panicked: a server fault in the
/// caller's protocol, never a dropped connection.
pub fn internal_error(json_protocol: bool) -> Response<Full<Bytes>> {
    let request_id = new_request_id();
    let message = "The server encountered an internal error. Try again later.";
    let (ct, body) = if json_protocol {
        (json::CONTENT_TYPE_1_1, json::error_body("ServerException", message))
    } else {
        ("text/xml", query::error_xml("InternalFailure", message, false, &request_id).into_bytes())
    };
    respond(StatusCode::INTERNAL_SERVER_ERROR, ct, Bytes::from(body), &request_id, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{self, Overrides};
    use berth_clock::FakeClock;
    use berth_sigv4::signer::{self, Credentials, SigningParams};
    use http::HeaderMap;

    const AKID: &str = "AKIAFRONTDOORELBV201";
    const SECRET: &str = "front-door-elbv2-secret-key-0123456789";

    fn door(dir: &std::path::Path) -> (FrontDoor, Arc<FakeClock>) {
        let identity = credentials::load_or_create(
            dir,
            &Overrides {
                account_id: Some("123456789012".into()),
                root_access_key_id: Some(AKID.into()),
                root_secret_access_key: Some(SECRET.into()),
            },
        )
        .unwrap();
        let clock = Arc::new(FakeClock::at_epoch_secs(1_795_000_000));
        let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
        let iam = Iam::with_state(store.clone(), identity.account_id.clone(), berth_iam::MasterKey::generate(), Default::default(), 0);
        let door = FrontDoor::new(identity, Ecs::new(store), iam, clock.clone(), DEFAULT_MAX_BODY_BYTES);
        (door, clock)
    }

    async fn elbv2(door: &FrontDoor, clock: &FakeClock, form: &str) -> (u16, String) {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let params = SigningParams {
            credentials: Credentials { access_key_id: AKID, secret_access_key: SECRET, session_token: None },
            region: "us-east-1",
            service: "elasticloadbalancing",
            time: clock.now(),
        };
        signer::sign("POST", "/", "", &mut headers, form.as_bytes(), &params).unwrap();
        let mut req = Request::builder().method("POST").uri("/");
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let resp = door.handle(req.body(Full::new(Bytes::from(form.to_string()))).unwrap()).await;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn elbv2_is_served_with_query_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (door, clock) = door(dir.path());
        let (status, xml) = elbv2(
            &door,
            &clock,
            "Action=CreateLoadBalancer&Version=2015-12-01&Name=front&Subnets.member.1=subnet-a&Subnets.member.2=subnet-b",
        )
        .await;
        assert_eq!(status, 200, "{xml}");
        assert!(xml.starts_with("<CreateLoadBalancerResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"), "{xml}");
        assert!(xml.contains("<LoadBalancerName>front</LoadBalancerName>"), "{xml}");
        let (status, xml) = elbv2(&door, &clock, "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=front").await;
        assert_eq!(status, 200);
        assert!(xml.contains("<Code>active</Code>"), "{xml}");
        let (status, xml) = elbv2(&door, &clock, "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=gone").await;
        assert_eq!(status, 400);
        assert!(xml.contains("<Type>Sender</Type><Code>LoadBalancerNotFound</Code>"), "{xml}");
        assert!(xml.starts_with("<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">"), "{xml}");
        let (status, xml) = elbv2(&door, &clock, "Action=NoSuchThing&Version=2015-12-01").await;
        assert_eq!(status, 400);
        assert!(xml.contains("<Code>InvalidAction</Code>"), "{xml}");
    }
}
