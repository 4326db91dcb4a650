//! The STS query API (version 2011-06-15): GetCallerIdentity, AssumeRole
//! and GetSessionToken. Temporary credentials are minted by
//! [`crate::sessions`] and cost no store write.

use crate::QueryRequest;
use crate::caller::{Caller, CallerKind};
use crate::directory::request_context;
use crate::error::IamError;
use crate::sessions::{self, SessionClaims, SessionCredentials, SessionSubject};
use crate::state::Iam;
use crate::trust::{self, Assumer, TrustDecision};
use berth_iam_policy::Decision;
use berth_wire::query::xml_escape;
use std::time::UNIX_EPOCH;

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION: &str = "2011-06-15";

/// STS actions Berth does not serve: answered as unsupported rather than
/// unknown, so a client learns the difference.
const UNSUPPORTED: &[&str] = &[
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetFederationToken",
];

/// A session of a role assuming another role lasts at most an hour (AWS's
/// role chaining limit), as do the root's GetSessionToken sessions.
const ONE_HOUR: u32 = 3600;
const MIN_DURATION: u32 = 900;
/// AssumeRole's API limit; each role's MaxSessionDuration is at most this.
const MAX_ROLE_DURATION: u32 = 43_200;
const MAX_SESSION_TOKEN_DURATION: u32 = 129_600;
const DEFAULT_SESSION_TOKEN_DURATION: u32 = 43_200;

/// Answer one STS request (already authenticated; STS authorizes its own
/// calls: GetCallerIdentity needs no permission, AssumeRole checks the
/// caller's identity policies and the role's trust policy).
pub async fn handle(iam: &Iam, req: &QueryRequest<'_>) -> Result<String, IamError> {
    match req.action() {
        "GetCallerIdentity" => Ok(get_caller_identity(req)),
        "AssumeRole" => assume_role(iam, req),
        "GetSessionToken" => get_session_token(iam, req),
        action if UNSUPPORTED.contains(&action) => Err(IamError::Unsupported(action.to_string(), "sts")),
        action => Err(IamError::InvalidAction(action.to_string(), VERSION)),
    }
}

fn get_caller_identity(req: &QueryRequest<'_>) -> String {
    let caller = req.caller;
    respond(
        "GetCallerIdentity",
        &format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            xml_escape(&caller.arn),
            xml_escape(&caller.user_id),
            xml_escape(caller.account.as_str())
        ),
        req.request_id,
    )
}

fn assume_role(iam: &Iam, req: &QueryRequest<'_>) -> Result<String, IamError> {
    let caller = req.caller;
    let mut invalid = Violations::default();
    let role_arn = req.param("RoleArn");
    match role_arn {
        None => invalid.null("roleArn"),
        Some(arn) if arn.chars().count() < 20 => invalid.add(arn, "roleArn", "Member must have length greater than or equal to 20"),
        Some(arn) if arn.chars().count() > 2048 => invalid.add(arn, "roleArn", "Member must have length less than or equal to 2048"),
        Some(_) => {}
    }
    let session_name = req.param("RoleSessionName");
    match session_name {
        None => invalid.null("roleSessionName"),
        Some(name) => {
            let len = name.chars().count();
            if len < 2 {
                invalid.add(name, "roleSessionName", "Member must have length greater than or equal to 2");
            }
            if len > 64 {
                invalid.add(name, "roleSessionName", "Member must have length less than or equal to 64");
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
                invalid.add(name, "roleSessionName", "Member must satisfy regular expression pattern: [\\w+=,.@-]*");
            }
        }
    }
    let duration = duration_param(req, MAX_ROLE_DURATION, &mut invalid)?;
    invalid.into_result()?;
    let (Some(role_arn), Some(session_name)) = (role_arn, session_name) else {
        // Both were checked present above.
        return Err(IamError::Internal("AssumeRole parameters vanished after validation".into()));
    };
    // Session policies and session tags would narrow or label the session;
    // Berth models neither, and silently ignoring a session policy would
    // hand out more than was asked for.
    for (name, what) in
        [("Policy", "session policies"), ("PolicyArns.member.1.arn", "session policies"), ("Tags.member.1.Key", "session tags")]
    {
        if req.param(name).is_some() {
            return Err(IamError::Unsupported(format!("AssumeRole with {what}"), "sts"));
        }
    }

    let denied =
        || IamError::AccessDenied(format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", caller.arn));
    // An agent's instance credentials exist to run its tasks; they are not
    // a way into any role, whatever a trust policy says.
    if matches!(caller.kind, CallerKind::Instance { .. }) {
        return Err(denied());
    }
    let snapshot = iam.snapshot();
    let account = iam.account().as_str();
    let role = snapshot.state().role_by_arn(role_arn).filter(|_| role_arn.split(':').nth(4) == Some(account)).ok_or_else(denied)?;

    let mut ctx = request_context(caller, "sts:AssumeRole", role_arn, req.facts).with_key("sts:RoleSessionName", session_name);
    if let Some(external_id) = req.param("ExternalId") {
        ctx = ctx.with_key("sts:ExternalId", external_id);
    }
    if let Some(source_identity) = req.param("SourceIdentity") {
        ctx = ctx.with_key("sts:SourceIdentity", source_identity);
    }
    let trusted = trust::evaluate_in(role, Assumer::Principal { arn: &caller.arn, account: caller.account.as_str() }, &ctx);
    let allowed = if caller.is_root() {
        trusted != TrustDecision::Denied
    } else {
        // The identity side: an explicit Deny refuses even a principal the
        // trust policy names; one the trust policy names by account only
        // needs an Allow as well.
        match snapshot.authorize(caller, "sts:AssumeRole", role_arn, req.facts) {
            Decision::ExplicitDeny { .. } => false,
            decision => match trusted {
                TrustDecision::AllowedByName => true,
                TrustDecision::AllowedByAccount => decision.is_allowed(),
                TrustDecision::Denied => false,
            },
        }
    };
    if !allowed {
        return Err(denied());
    }

    let chained = matches!(caller.kind, CallerKind::AssumedRole { .. });
    let duration = match duration {
        Some(d) if chained && d > ONE_HOUR => {
            return Err(IamError::Validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assuming other roles.".into(),
            ));
        }
        Some(d) if d > role.max_session_duration => {
            return Err(IamError::Validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into()));
        }
        Some(d) => d,
        None => ONE_HOUR,
    };

    let now = now_secs(req);
    let claims = SessionClaims {
        account: account.to_string(),
        subject: SessionSubject::AssumedRole {
            role_name: role.name.clone(),
            role_id: role.id.clone(),
            session_name: session_name.to_string(),
        },
        issued_at: now,
        expires_at: now + u64::from(duration),
    };
    let minted = sessions::mint(iam.key(), &claims);
    tracing::info!(caller = %caller.arn, role = %role.arn, session = session_name, access_key_id = %minted.access_key_id, "AssumeRole");
    let body = format!(
        "<AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>{}",
        xml_escape(&format!("{}:{session_name}", role.id)),
        xml_escape(&crate::caller::assumed_role_arn(iam.account(), &role.name, session_name)),
        credentials_xml(&minted)
    );
    Ok(respond("AssumeRole", &body, req.request_id))
}

fn get_session_token(iam: &Iam, req: &QueryRequest<'_>) -> Result<String, IamError> {
    let caller = req.caller;
    // Session credentials (a role's, or an earlier GetSessionToken's) and
    // agents' instance credentials cannot make more sessions.
    let session = caller.token_issued_at.is_some() || matches!(caller.kind, CallerKind::AssumedRole { .. } | CallerKind::Instance { .. });
    if session {
        return Err(IamError::AccessDenied("Cannot call GetSessionToken with session credentials".into()));
    }
    let mut invalid = Violations::default();
    let requested = duration_param(req, MAX_SESSION_TOKEN_DURATION, &mut invalid)?;
    invalid.into_result()?;
    let account = iam.account().as_str();
    let (subject, duration) = match &caller.kind {
        // The root's sessions last at most an hour; AWS shortens a longer
        // request rather than refusing it.
        CallerKind::Root => (SessionSubject::Root, requested.unwrap_or(ONE_HOUR).min(ONE_HOUR)),
        CallerKind::User { name } => {
            let snapshot = iam.snapshot();
            let path = match snapshot.state().user(name) {
                Some(user) => user.path.clone(),
                None => user_path_from_arn(caller).ok_or_else(|| IamError::AccessDenied("The user no longer exists.".into()))?,
            };
            let subject = SessionSubject::User { name: name.clone(), user_id: caller.user_id.clone(), path };
            (subject, requested.unwrap_or(DEFAULT_SESSION_TOKEN_DURATION))
        }
        CallerKind::AssumedRole { .. } | CallerKind::Instance { .. } => {
            return Err(IamError::AccessDenied("Cannot call GetSessionToken with session credentials".into()));
        }
    };
    let now = now_secs(req);
    let claims = SessionClaims { account: account.to_string(), subject, issued_at: now, expires_at: now + u64::from(duration) };
    let minted = sessions::mint(iam.key(), &claims);
    tracing::info!(caller = %caller.arn, access_key_id = %minted.access_key_id, "GetSessionToken");
    Ok(respond("GetSessionToken", &credentials_xml(&minted), req.request_id))
}

/// `DurationSeconds` if given: an integer of at least 900 and at most `max`.
fn duration_param(req: &QueryRequest<'_>, max: u32, invalid: &mut Violations) -> Result<Option<u32>, IamError> {
    let Some(text) = req.param("DurationSeconds") else {
        return Ok(None);
    };
    let Ok(value) = text.trim().parse::<i64>() else {
        return Err(IamError::Validation(format!("Value '{text}' for parameter DurationSeconds is invalid. It must be an integer.")));
    };
    if value < i64::from(MIN_DURATION) {
        invalid.add(text, "durationSeconds", &format!("Member must have value greater than or equal to {MIN_DURATION}"));
        return Ok(None);
    }
    if value > i64::from(max) {
        invalid.add(text, "durationSeconds", &format!("Member must have value less than or equal to {max}"));
        return Ok(None);
    }
    // In 900..=max, which fits.
    Ok(u32::try_from(value).ok())
}

/// The constraint violations of one request, reported together as AWS's
/// validation layer does.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, value: &str, member: &str, constraint: &str) {
        self.0.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"));
    }

    fn null(&mut self, member: &str) {
        self.0.push(format!("Value null at '{member}' failed to satisfy constraint: Member must not be null"));
    }

    fn into_result(self) -> Result<(), IamError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(IamError::Validation(format!("1 validation error detected: {}", self.0[0]))),
            n => Err(IamError::Validation(format!("{n} validation errors detected: {}", self.0.join("; ")))),
        }
    }
}

/// The path of a user from its ARN (`arn:aws:iam::A:user/PATH/NAME`).
fn user_path_from_arn(caller: &Caller) -> Option<String> {
    let rest = caller.arn.strip_prefix(&format!("arn:aws:iam::{}:user", caller.account))?;
    let name_at = rest.rfind('/')?;
    Some(rest[..=name_at].to_string())
}

fn now_secs(req: &QueryRequest<'_>) -> u64 {
    req.facts.now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn credentials_xml(c: &SessionCredentials) -> String {
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        xml_escape(&c.access_key_id),
        xml_escape(&c.secret_access_key),
        xml_escape(&c.session_token),
        berth_clock::civil::iso8601_seconds(i64::try_from(c.expires_at).unwrap_or(i64::MAX))
    )
}

fn respond(action: &str, result: &str, request_id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        xml_escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::RequestFacts;
    use crate::model::{Role, User};
    use crate::sealing::MasterKey;
    use crate::sessions::SessionError;
    use berth_arn::AccountId;
    use berth_store::memory::MemoryStore;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    const ACCT: &str = "123456789012";
    const NOW: u64 = 1_800_000_000;
    const ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn account() -> AccountId {
        ACCT.parse().unwrap()
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
            source_ip: Some("192.0.2.10".parse().unwrap()),
            region: "us-east-1".into(),
            secure_transport: true,
        }
    }

    fn trust(principal: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#)
    }

    fn role(name: &str, trust_doc: &str, max: u32) -> Role {
        Role {
            name: name.into(),
            id: format!("AROA{:0>17}", name.to_uppercase()),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCT}:role/{name}"),
            created_at: 0,
            assume_role_policy_document: trust_doc.into(),
            description: None,
            max_session_duration: max,
            inline_policies: Default::default(),
            attached_policies: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn user(name: &str, path: &str, policy: Option<&str>) -> User {
        User {
            name: name.into(),
            id: format!("AIDA{:0>17}", name.to_uppercase()),
            path: path.into(),
            arn: format!("arn:aws:iam::{ACCT}:user{path}{name}"),
            created_at: 0,
            inline_policies: policy.map(|p| [("p".to_string(), p.to_string())].into()).unwrap_or_default(),
            attached_policies: Vec::new(),
            groups: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn user_caller(u: &User) -> Caller {
        Caller {
            kind: CallerKind::User { name: u.name.clone() },
            arn: u.arn.clone(),
            user_id: u.id.clone(),
            account: account(),
            token_issued_at: None,
        }
    }

    fn session_caller(r: &Role, session: &str) -> Caller {
        Caller {
            kind: CallerKind::AssumedRole { role_name: r.name.clone(), session_name: session.into() },
            arn: format!("arn:aws:sts::{ACCT}:assumed-role/{}/{session}", r.name),
            user_id: format!("{}:{session}", r.id),
            account: account(),
            token_issued_at: Some(NOW - 10),
        }
    }

    fn instance_caller() -> Caller {
        Caller {
            kind: CallerKind::Instance { session_name: "host-a".into() },
            arn: format!("arn:aws:sts::{ACCT}:assumed-role/BerthInstanceRole/host-a"),
            user_id: "AROAINSTANCE:host-a".into(),
            account: account(),
            token_issued_at: None,
        }
    }

    async fn iam_with(roles: Vec<Role>, users: Vec<User>) -> Arc<Iam> {
        let iam = Iam::open(Arc::new(MemoryStore::new()), account(), MasterKey::generate()).await.unwrap();
        iam.mutate(|s| {
            for r in &roles {
                trust::validate(&r.assume_role_policy_document).unwrap();
                s.roles.insert(r.name.clone(), r.clone());
            }
            for u in &users {
                s.users.insert(u.name.clone(), u.clone());
            }
            Ok(())
        })
        .await
        .unwrap();
        iam
    }

    async fn call(iam: &Iam, caller: &Caller, params: &[(&str, &str)]) -> Result<String, IamError> {
        let params: Vec<(String, String)> =
            [("Version", VERSION)].iter().chain(params).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let facts = facts();
        let req = QueryRequest { params: &params, request_id: "req-1", caller, facts: &facts };
        handle(iam, &req).await
    }

    async fn assume(iam: &Iam, caller: &Caller, role: &str, extra: &[(&str, &str)]) -> Result<String, IamError> {
        let arn = format!("arn:aws:iam::{ACCT}:role/{role}");
        let mut params = vec![("Action", "AssumeRole"), ("RoleArn", arn.as_str()), ("RoleSessionName", "s1")];
        params.extend_from_slice(extra);
        call(iam, caller, &params).await
    }

    fn element<'a>(xml: &'a str, name: &str) -> &'a str {
        let open = format!("<{name}>");
        let start = xml.find(&open).unwrap_or_else(|| panic!("no {name} in {xml}")) + open.len();
        let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
        &xml[start..end]
    }

    /// The claims behind the credentials in `xml`, checked as the front door does.
    fn verify(iam: &Iam, xml: &str) -> SessionClaims {
        let (claims, secret) = sessions::verify(iam.key(), element(xml, "AccessKeyId"), element(xml, "SessionToken"), NOW).unwrap();
        assert_eq!(secret, element(xml, "SecretAccessKey"));
        assert_eq!(element(xml, "Expiration"), berth_clock::civil::iso8601_seconds(claims.expires_at as i64));
        claims
    }

    fn denial(caller: &Caller, role: &str) -> String {
        format!("User: {} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::{ACCT}:role/{role}", caller.arn)
    }

    fn assert_denied(result: Result<String, IamError>, caller: &Caller, role: &str) {
        match result {
            Err(IamError::AccessDenied(m)) => assert_eq!(m, denial(caller, role)),
            other => panic!("expected AccessDenied, got {other:?}"),
        }
    }

    fn validation(result: Result<String, IamError>) -> String {
        match result {
            Err(IamError::Validation(m)) => m,
            other => panic!("expected ValidationError, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn get_caller_identity_needs_no_policy() {
        let iam = iam_with(vec![], vec![]).await;
        let bare = user("nobody", "/", None);
        let xml = call(&iam, &user_caller(&bare), &[("Action", "GetCallerIdentity")]).await.unwrap();
        assert_eq!(
            xml,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/nobody</Arn><UserId>AIDA00000000000NOBODY</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        );
        let xml = call(&iam, &instance_caller(), &[("Action", "GetCallerIdentity")]).await.unwrap();
        assert_eq!(element(&xml, "UserId"), "AROAINSTANCE:host-a");
        let xml = call(&iam, &Caller::root(&account()), &[("Action", "GetCallerIdentity")]).await.unwrap();
        assert_eq!(element(&xml, "Arn"), "arn:aws:iam::123456789012:root");
        assert_eq!(element(&xml, "UserId"), ACCT);
    }

    #[tokio::test]
    async fn assume_role_trusted_by_user_arn() {
        let alice = user("alice", "/team/", None);
        let r = role("app", &trust(&format!(r#"{{"AWS":"{}"}}"#, alice.arn)), 3600);
        let iam = iam_with(vec![r.clone()], vec![alice.clone()]).await;
        // Named by the trust policy: no identity policy needed.
        let xml = assume(&iam, &user_caller(&alice), "app", &[]).await.unwrap();
        assert!(
            xml.starts_with("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><AssumedRoleUser>"),
            "{xml}"
        );
        assert!(
            xml.ends_with("</AssumeRoleResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></AssumeRoleResponse>"),
            "{xml}"
        );
        assert!(!xml.contains("PackedPolicySize"));
        assert_eq!(element(&xml, "AssumedRoleId"), format!("{}:s1", r.id));
        assert_eq!(element(element(&xml, "AssumedRoleUser"), "Arn"), "arn:aws:sts::123456789012:assumed-role/app/s1");
        assert!(element(&xml, "AccessKeyId").starts_with("ASIA"));
        let claims = verify(&iam, &xml);
        assert_eq!(claims.account, ACCT);
        assert_eq!(
            claims.subject,
            SessionSubject::AssumedRole { role_name: "app".into(), role_id: r.id.clone(), session_name: "s1".into() }
        );
        assert_eq!((claims.issued_at, claims.expires_at), (NOW, NOW + 3600));
        assert_eq!(element(&xml, "Expiration"), berth_clock::civil::iso8601_seconds((NOW + 3600) as i64));
        // The credentials expire when they say.
        assert_eq!(
            sessions::verify(iam.key(), element(&xml, "AccessKeyId"), element(&xml, "SessionToken"), NOW + 3600).map(|_| ()),
            Err(SessionError::Expired)
        );
    }

    #[tokio::test]
    async fn trusted_by_account_needs_an_identity_policy() {
        let alice = user("alice", "/", Some(ADMIN));
        let scoped = user(
            "scoped",
            "/",
            Some(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::{ACCT}:role/app"}}]}}"#
            )),
        );
        let bob = user("bob", "/", None);
        let r = role("app", &trust(&format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:root"}}"#)), 3600);
        let other = role("other", &trust(&format!(r#"{{"AWS":"{ACCT}"}}"#)), 3600);
        let iam = iam_with(vec![r, other], vec![alice.clone(), scoped.clone(), bob.clone()]).await;
        assume(&iam, &user_caller(&alice), "app", &[]).await.unwrap();
        assume(&iam, &user_caller(&scoped), "app", &[]).await.unwrap();
        assert_denied(assume(&iam, &user_caller(&scoped), "other", &[]).await, &user_caller(&scoped), "other");
        assert_denied(assume(&iam, &user_caller(&bob), "app", &[]).await, &user_caller(&bob), "app");
        // The root needs no identity policy.
        assume(&iam, &Caller::root(&account()), "app", &[]).await.unwrap();
    }

    #[tokio::test]
    async fn denied_without_trust() {
        let alice = user("alice", "/", Some(ADMIN));
        let svc = role("svc", &trust(r#"{"Service":"ecs-tasks.amazonaws.com"}"#), 3600);
        let bob_only = role("bobs", &trust(&format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:user/bob"}}"#)), 3600);
        let iam = iam_with(vec![svc, bob_only], vec![alice.clone()]).await;
        let caller = user_caller(&alice);
        // Admin rights do not make a role trust you.
        assert_denied(assume(&iam, &caller, "svc", &[]).await, &caller, "svc");
        assert_denied(assume(&iam, &caller, "bobs", &[]).await, &caller, "bobs");
        let root = Caller::root(&account());
        assert_denied(assume(&iam, &root, "svc", &[]).await, &root, "svc");
        // A missing role, or one of another account, reads the same.
        assert_denied(assume(&iam, &caller, "nosuch", &[]).await, &caller, "nosuch");
        let foreign = "arn:aws:iam::210987654321:role/svc";
        match call(&iam, &caller, &[("Action", "AssumeRole"), ("RoleArn", foreign), ("RoleSessionName", "s1")]).await {
            Err(IamError::AccessDenied(m)) => assert!(m.ends_with(&format!("on resource: {foreign}")), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn explicit_deny_in_identity_policy_wins() {
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}"#;
        let carol = user("carol", "/", Some(deny));
        let r = role("app", &trust(&format!(r#"{{"AWS":"{}"}}"#, carol.arn)), 3600);
        let iam = iam_with(vec![r], vec![carol.clone()]).await;
        assert_denied(assume(&iam, &user_caller(&carol), "app", &[]).await, &user_caller(&carol), "app");
    }

    #[tokio::test]
    async fn trust_conditions_see_the_request() {
        let alice = user("alice", "/", None);
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole","Condition":{{"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}},"StringEquals":{{"sts:ExternalId":"xyz"}}}}}}]}}"#,
            alice.arn
        );
        let iam = iam_with(vec![role("app", &doc, 3600)], vec![alice.clone()]).await;
        let caller = user_caller(&alice);
        assume(&iam, &caller, "app", &[("ExternalId", "xyz")]).await.unwrap();
        assert_denied(assume(&iam, &caller, "app", &[("ExternalId", "abc")]).await, &caller, "app");
        assert_denied(assume(&iam, &caller, "app", &[]).await, &caller, "app");
    }

    #[tokio::test]
    async fn instance_callers_are_always_denied() {
        let caller = instance_caller();
        let r = role("app", &trust(&format!(r#"{{"AWS":["{}","{ACCT}"]}}"#, caller.arn)), 3600);
        let open = role("open", &trust(r#""*""#), 3600);
        let iam = iam_with(vec![r, open], vec![]).await;
        assert_denied(assume(&iam, &caller, "app", &[]).await, &caller, "app");
        assert_denied(assume(&iam, &caller, "open", &[]).await, &caller, "open");
        assert!(matches!(call(&iam, &caller, &[("Action", "GetSessionToken")]).await, Err(IamError::AccessDenied(_))));
    }

    #[tokio::test]
    async fn role_sessions_chain_for_at_most_an_hour() {
        let first = role("first", &trust(r#""*""#), 3600);
        let second = role("second", &trust(&format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:role/first"}}"#)), 43_200);
        let iam = iam_with(vec![first.clone(), second.clone()], vec![]).await;
        let caller = session_caller(&first, "one");
        let xml = assume(&iam, &caller, "second", &[]).await.unwrap();
        let claims = verify(&iam, &xml);
        assert_eq!(claims.expires_at - claims.issued_at, 3600);
        assert_eq!(element(element(&xml, "AssumedRoleUser"), "Arn"), "arn:aws:sts::123456789012:assumed-role/second/s1");
        assume(&iam, &caller, "second", &[("DurationSeconds", "3600")]).await.unwrap();
        assert_eq!(
            validation(assume(&iam, &caller, "second", &[("DurationSeconds", "3601")]).await),
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assuming other roles."
        );
        // A session of another role is not named by the trust policy.
        let stranger = session_caller(&second, "x");
        assert_denied(assume(&iam, &stranger, "second", &[]).await, &stranger, "second");
    }

    #[tokio::test]
    async fn a_session_of_a_deleted_role_keeps_no_identity_permissions() {
        // Trusted by account only, so the identity side decides; the
        // caller's role record has a different id (deleted and recreated).
        let policy_role = {
            let mut r = role("first", &trust(r#""*""#), 3600);
            r.inline_policies.insert("p".into(), ADMIN.into());
            r
        };
        let target = role("target", &trust(&format!(r#"{{"AWS":"{ACCT}"}}"#)), 3600);
        let iam = iam_with(vec![policy_role.clone(), target], vec![]).await;
        let live = session_caller(&policy_role, "one");
        assume(&iam, &live, "target", &[]).await.unwrap();
        let mut stale = live.clone();
        stale.user_id = "AROAOLDOLDOLDOLDOLD00:one".into();
        assert_denied(assume(&iam, &stale, "target", &[]).await, &stale, "target");
    }

    #[tokio::test]
    async fn duration_limits() {
        let alice = user("alice", "/", None);
        let trusted = trust(&format!(r#"{{"AWS":"{}"}}"#, alice.arn));
        let iam = iam_with(vec![role("short", &trusted, 3600), role("long", &trusted, 43_200)], vec![alice.clone()]).await;
        let caller = user_caller(&alice);
        let lasts = |xml: String| {
            let c = verify(&iam, &xml);
            c.expires_at - c.issued_at
        };
        assert_eq!(lasts(assume(&iam, &caller, "short", &[("DurationSeconds", "900")]).await.unwrap()), 900);
        assert_eq!(lasts(assume(&iam, &caller, "long", &[]).await.unwrap()), 3600);
        assert_eq!(lasts(assume(&iam, &caller, "long", &[("DurationSeconds", "43200")]).await.unwrap()), 43_200);
        assert_eq!(
            validation(assume(&iam, &caller, "short", &[("DurationSeconds", "3601")]).await),
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        );
        assert_eq!(
            validation(assume(&iam, &caller, "short", &[("DurationSeconds", "899")]).await),
            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
        assert_eq!(
            validation(assume(&iam, &caller, "long", &[("DurationSeconds", "43201")]).await),
            "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
        );
        assert!(validation(assume(&iam, &caller, "long", &[("DurationSeconds", "soon")]).await).contains("'soon'"));
    }

    #[tokio::test]
    async fn session_name_validation() {
        let alice = user("alice", "/", None);
        let iam = iam_with(vec![role("app", &trust(&format!(r#"{{"AWS":"{}"}}"#, alice.arn)), 3600)], vec![alice.clone()]).await;
        let caller = user_caller(&alice);
        let arn = format!("arn:aws:iam::{ACCT}:role/app");
        let with_name = |name: String| {
            let (arn, caller, iam) = (arn.clone(), caller.clone(), iam.clone());
            async move { call(&iam, &caller, &[("Action", "AssumeRole"), ("RoleArn", &arn), ("RoleSessionName", &name)]).await }
        };
        for ok in ["ab".to_string(), "my_session+=,.@-1".to_string(), "x".repeat(64)] {
            let xml = with_name(ok.clone()).await.unwrap();
            assert!(element(&xml, "Arn").ends_with(&format!("/app/{ok}")));
        }
        assert_eq!(
            validation(with_name("bad name".into()).await),
            "1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        );
        assert_eq!(
            validation(with_name("a".into()).await),
            "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );
        assert!(validation(with_name("y".repeat(65)).await).ends_with("Member must have length less than or equal to 64"));
        assert_eq!(
            validation(with_name("/".into()).await),
            "2 validation errors detected: Value '/' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; Value '/' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        );
        assert_eq!(
            validation(call(&iam, &caller, &[("Action", "AssumeRole")]).await),
            "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"
        );
        assert!(matches!(
            call(&iam, &caller, &[("Action", "AssumeRole"), ("RoleArn", &arn), ("RoleSessionName", "s1"), ("Policy", "{}")]).await,
            Err(IamError::Unsupported(..))
        ));
    }

    #[tokio::test]
    async fn get_session_token_for_root_and_users() {
        let alice = user("alice", "/ops/", None);
        let iam = iam_with(vec![], vec![alice.clone()]).await;
        let lasts = |claims: &SessionClaims| claims.expires_at - claims.issued_at;

        let root = Caller::root(&account());
        let xml = call(&iam, &root, &[("Action", "GetSessionToken")]).await.unwrap();
        assert!(xml.starts_with("<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetSessionTokenResult><Credentials><AccessKeyId>ASIA"), "{xml}");
        let claims = verify(&iam, &xml);
        assert_eq!(claims.subject, SessionSubject::Root);
        assert_eq!(lasts(&claims), 3600);
        let xml = call(&iam, &root, &[("Action", "GetSessionToken"), ("DurationSeconds", "7200")]).await.unwrap();
        assert_eq!(lasts(&verify(&iam, &xml)), 3600, "the root's sessions are cut to an hour");

        let caller = user_caller(&alice);
        let xml = call(&iam, &caller, &[("Action", "GetSessionToken")]).await.unwrap();
        let claims = verify(&iam, &xml);
        assert_eq!(claims.subject, SessionSubject::User { name: "alice".into(), user_id: alice.id.clone(), path: "/ops/".into() });
        assert_eq!(lasts(&claims), 43_200);
        let xml = call(&iam, &caller, &[("Action", "GetSessionToken"), ("DurationSeconds", "129600")]).await.unwrap();
        assert_eq!(lasts(&verify(&iam, &xml)), 129_600);
        assert!(
            validation(call(&iam, &caller, &[("Action", "GetSessionToken"), ("DurationSeconds", "129601")]).await)
                .ends_with("less than or equal to 129600")
        );
        assert!(
            validation(call(&iam, &caller, &[("Action", "GetSessionToken"), ("DurationSeconds", "600")]).await)
                .ends_with("greater than or equal to 900")
        );
    }

    #[tokio::test]
    async fn session_credentials_cannot_get_session_tokens() {
        let r = role("app", &trust(r#""*""#), 3600);
        let alice = user("alice", "/", None);
        let iam = iam_with(vec![r.clone()], vec![alice.clone()]).await;
        let mut from_session = user_caller(&alice);
        from_session.token_issued_at = Some(NOW - 5);
        let mut root_session = Caller::root(&account());
        root_session.token_issued_at = Some(NOW - 5);
        for caller in [session_caller(&r, "s"), from_session, root_session] {
            match call(&iam, &caller, &[("Action", "GetSessionToken")]).await {
                Err(IamError::AccessDenied(m)) => assert_eq!(m, "Cannot call GetSessionToken with session credentials"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unknown_and_unsupported_actions() {
        let iam = iam_with(vec![], vec![]).await;
        let root = Caller::root(&account());
        match call(&iam, &root, &[("Action", "AssumeRoleWithWebIdentity")]).await {
            Err(e @ IamError::Unsupported(..)) => {
                assert_eq!(e.to_string(), "Operation AssumeRoleWithWebIdentity is not supported by sts in this version of Berth.")
            }
            other => panic!("{other:?}"),
        }
        match call(&iam, &root, &[("Action", "ListBuckets")]).await {
            Err(e @ IamError::InvalidAction(..)) => {
                assert_eq!(e.to_string(), "Could not find operation ListBuckets for version 2011-06-15")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_paths_from_arns() {
        let u = user("alice", "/a/b/", None);
        assert_eq!(user_path_from_arn(&user_caller(&u)).as_deref(), Some("/a/b/"));
        let u = user("bob", "/", None);
        assert_eq!(user_path_from_arn(&user_caller(&u)).as_deref(), Some("/"));
    }
}
