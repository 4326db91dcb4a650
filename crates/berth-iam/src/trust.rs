//! Trust policies (a role's AssumeRolePolicyDocument): which principals
//! may assume the role.
//!
//! A trust policy is a resource-based policy: each statement names its
//! principals (`Principal`, or everyone but them with `NotPrincipal`) and
//! may not name a resource (the resource is the role). Berth reads the
//! principal element itself and hands the rest of each statement — Effect,
//! Action, Condition — to berth-iam-policy, with `Resource: "*"`, so the
//! action and condition semantics are exactly those of identity policies.

use crate::error::IamError;
use crate::model::Role;
use berth_iam_policy::{Decision, Patterns, Policy, RequestContext};
use serde_json::{Map, Value};

/// Who asks to assume a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assumer<'a> {
    /// An AWS service principal, e.g. `ecs-tasks.amazonaws.com`.
    Service(&'a str),
    /// An IAM principal of some account (user, role session, root).
    Principal { arn: &'a str, account: &'a str },
}

/// How a role's trust policy answers `sts:AssumeRole` by `who`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustDecision {
    /// A statement names this principal (or service) itself.
    AllowedByName,
    /// A statement names the principal's account (or `*`): the principal's
    /// own identity policies must also allow `sts:AssumeRole`.
    AllowedByAccount,
    Denied,
}

/// The action every trust decision is about.
const ASSUME_ROLE: &str = "sts:AssumeRole";

/// Check a trust policy as IAM does on CreateRole and
/// UpdateAssumeRolePolicy; errors are `MalformedPolicyDocument` worded as
/// IAM words them.
pub fn validate(document: &str) -> Result<(), IamError> {
    TrustPolicy::parse(document).map(|_| ()).map_err(IamError::MalformedPolicyDocument)
}

/// The trust policy's answer for `who`, with no request facts: conditions
/// on keys the request would carry (`aws:SourceIp`, ...) do not hold.
/// A service is taken to act for the role's own account
/// (`aws:SourceAccount`), as ECS does for a task of that account.
pub fn evaluate(role: &Role, who: Assumer<'_>) -> TrustDecision {
    let mut ctx = RequestContext::new(ASSUME_ROLE, role.arn.clone());
    match who {
        Assumer::Principal { arn, account } => ctx = ctx.with_principal_arn(arn).with_account(account),
        Assumer::Service(service) => {
            ctx = ctx.with_key("aws:PrincipalServiceName", service);
            if let Some(account) = arn_account(&role.arn) {
                ctx = ctx.with_key("aws:SourceAccount", account);
            }
        }
    }
    evaluate_in(role, who, &ctx)
}

/// [`evaluate`] against the request's context (its principal fields and
/// condition keys, e.g. from `directory::request_context`); the action and
/// resource are always `sts:AssumeRole` on the role.
pub fn evaluate_in(role: &Role, who: Assumer<'_>, ctx: &RequestContext) -> TrustDecision {
    match TrustPolicy::parse(&role.assume_role_policy_document) {
        Ok(policy) => policy.decide(who, &role.arn, ctx),
        Err(e) => {
            // Documents are validated when written; one that no longer
            // parses trusts nobody.
            tracing::warn!(role = %role.arn, error = %e, "a stored trust policy does not parse; it trusts nobody");
            TrustDecision::Denied
        }
    }
}

/// A parsed trust policy.
#[derive(Debug)]
struct TrustPolicy {
    statements: Vec<TrustStatement>,
}

#[derive(Debug)]
struct TrustStatement {
    principals: Principals,
    /// `NotPrincipal`: the statement applies to everyone *except* them.
    negated: bool,
    /// The statement without its principal, as a one-statement policy (so
    /// it keeps the document's version for policy variables).
    rest: Policy,
}

/// The principal element.
#[derive(Debug, Default)]
struct Principals {
    /// `"Principal": "*"`.
    everyone: bool,
    aws: Vec<AwsPrincipal>,
    services: Vec<String>,
    /// Berth has no identity providers: kept so the document is accepted,
    /// never matched.
    #[allow(dead_code)]
    federated: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum AwsPrincipal {
    /// `"AWS": "*"`.
    Any,
    /// `"123456789012"` or `arn:aws:iam::123456789012:root`.
    Account(String),
    /// A user, role, role session or federated user ARN.
    Arn(String),
}

/// How strongly a statement's principal element names the assumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Named {
    No,
    ByAccount,
    ByName,
}

impl TrustPolicy {
    fn parse(document: &str) -> Result<TrustPolicy, String> {
        const SYNTAX: &str = "Syntax errors in policy.";
        let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(document) else {
            return Err(SYNTAX.into());
        };
        let raw = match doc.remove("Statement") {
            Some(Value::Array(items)) => items,
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(SYNTAX.into()),
            None => return Err("Missing required field Statement".into()),
        };
        let mut principals = Vec::with_capacity(raw.len());
        let mut stripped = Vec::with_capacity(raw.len());
        for statement in raw {
            let Value::Object(mut fields) = statement else {
                return Err(SYNTAX.into());
            };
            for prohibited in ["Resource", "NotResource"] {
                if fields.contains_key(prohibited) {
                    return Err(format!("Has prohibited field {prohibited}"));
                }
            }
            let (element, negated) = match (fields.remove("Principal"), fields.remove("NotPrincipal")) {
                (Some(_), Some(_)) => return Err("Statement can not contain both Principal and NotPrincipal.".into()),
                (Some(p), None) => (p, false),
                (None, Some(p)) => (p, true),
                (None, None) => return Err("Missing required field Principal".into()),
            };
            principals.push((parse_principals(&element)?, negated));
            fields.insert("Resource".into(), Value::String("*".into()));
            stripped.push(Value::Object(fields));
        }
        // The rest of the grammar (Version, Sid, Effect, Action, Condition)
        // is the identity policy language's.
        doc.insert("Statement".into(), Value::Array(stripped));
        let parsed = Policy::parse(&Value::Object(doc).to_string()).map_err(|e| e.to_string())?;
        let mut statements = Vec::with_capacity(parsed.statements.len());
        for ((principals, negated), statement) in principals.into_iter().zip(parsed.statements) {
            let (Patterns::Only(actions) | Patterns::Except(actions)) = &statement.actions;
            if actions.iter().any(|a| !is_sts_action(a)) {
                return Err("AssumeRole policy may only specify STS AssumeRole actions.".into());
            }
            let rest = Policy { version: parsed.version, id: None, statements: vec![statement] };
            statements.push(TrustStatement { principals, negated, rest });
        }
        Ok(TrustPolicy { statements })
    }

    fn decide(&self, who: Assumer<'_>, role_arn: &str, ctx: &RequestContext) -> TrustDecision {
        let mut ctx = ctx.clone();
        ctx.action = ASSUME_ROLE.into();
        ctx.resource = role_arn.into();
        if let Assumer::Principal { arn, account } = who {
            if ctx.principal_arn.is_empty() {
                ctx.principal_arn = arn.into();
            }
            if ctx.account.is_empty() {
                ctx.account = account.into();
            }
        }
        let mut best = Named::No;
        for statement in &self.statements {
            let named = statement.principals.names(who);
            let applies = match (statement.negated, named) {
                (false, Named::No) | (true, Named::ByAccount | Named::ByName) => None,
                (false, named) => Some(named),
                // Everyone but the listed principals: not named, so at
                // most as strong as a `*`.
                (true, Named::No) => Some(Named::ByAccount),
            };
            let Some(named) = applies else { continue };
            match berth_iam_policy::evaluate(&[&statement.rest], &ctx) {
                Decision::ExplicitDeny { .. } => return TrustDecision::Denied,
                Decision::Allow { .. } => best = best.max(named),
                Decision::ImplicitDeny => {}
            }
        }
        match best {
            Named::ByName => TrustDecision::AllowedByName,
            Named::ByAccount => TrustDecision::AllowedByAccount,
            Named::No => TrustDecision::Denied,
        }
    }
}

impl Principals {
    fn names(&self, who: Assumer<'_>) -> Named {
        let mut best = if self.everyone { Named::ByAccount } else { Named::No };
        match who {
            Assumer::Service(service) => {
                if self.services.iter().any(|s| s.eq_ignore_ascii_case(service)) {
                    best = Named::ByName;
                }
            }
            Assumer::Principal { arn, account } => {
                for p in &self.aws {
                    let named = match p {
                        AwsPrincipal::Any => Named::ByAccount,
                        AwsPrincipal::Account(a) if a == account => Named::ByAccount,
                        AwsPrincipal::Account(_) => Named::No,
                        AwsPrincipal::Arn(listed) if listed == arn || session_of_role(arn, listed) => Named::ByName,
                        AwsPrincipal::Arn(_) => Named::No,
                    };
                    best = best.max(named);
                }
            }
        }
        best
    }
}

/// Whether `caller` (`arn:aws:sts::A:assumed-role/R/S`) is a session of
/// `role` (`arn:aws:iam::A:role/PATH/R`): trust policies name a role's
/// sessions by the role.
fn session_of_role(caller: &str, role: &str) -> bool {
    let Some((account, rest)) = caller.strip_prefix("arn:aws:sts::").and_then(|r| r.split_once(':')) else {
        return false;
    };
    let Some(role_name) = rest.strip_prefix("assumed-role/").and_then(|r| r.split('/').next()) else {
        return false;
    };
    let Some(path_and_name) =
        role.strip_prefix("arn:aws:iam::").and_then(|r| r.strip_prefix(account)).and_then(|r| r.strip_prefix(":role/"))
    else {
        return false;
    };
    path_and_name.rsplit('/').next() == Some(role_name)
}

/// The principal element: `"*"` or `{"AWS"|"Service"|"Federated": one or many}`.
fn parse_principals(element: &Value) -> Result<Principals, String> {
    let mut out = Principals::default();
    let fields: &Map<String, Value> = match element {
        Value::String(s) if s == "*" => {
            out.everyone = true;
            return Ok(out);
        }
        Value::String(s) => return Err(format!("Invalid principal in policy: \"{s}\"")),
        Value::Object(fields) if !fields.is_empty() => fields,
        _ => return Err("Syntax errors in policy.".into()),
    };
    for (kind, values) in fields {
        let values: Vec<&str> = match values {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) if !items.is_empty() => {
                items.iter().map(|v| v.as_str().ok_or_else(|| "Syntax errors in policy.".to_string())).collect::<Result<_, _>>()?
            }
            _ => return Err("Syntax errors in policy.".into()),
        };
        let invalid = |v: &str| format!("Invalid principal in policy: \"{}\":\"{v}\"", kind.to_ascii_uppercase());
        for v in values {
            match kind.as_str() {
                "AWS" => out.aws.push(aws_principal(v).ok_or_else(|| invalid(v))?),
                "Service" if is_service_name(v) => out.services.push(v.to_string()),
                "Federated" if !v.is_empty() => out.federated.push(v.to_string()),
                _ => return Err(invalid(v)),
            }
        }
    }
    Ok(out)
}

/// An `AWS` principal: `*`, an account id, or the ARN of an account root,
/// user, role, role session or federated user. IAM allows no other
/// wildcards in principals.
fn aws_principal(v: &str) -> Option<AwsPrincipal> {
    if v == "*" {
        return Some(AwsPrincipal::Any);
    }
    if is_account(v) {
        return Some(AwsPrincipal::Account(v.to_string()));
    }
    if v.contains('*') || v.contains('?') {
        return None;
    }
    let (service, rest) =
        if let Some(rest) = v.strip_prefix("arn:aws:iam::") { ("iam", rest) } else { ("sts", v.strip_prefix("arn:aws:sts::")?) };
    let (account, resource) = rest.split_once(':')?;
    if !is_account(account) {
        return None;
    }
    let segments = |r: &str, n: usize| {
        let parts: Vec<&str> = r.split('/').collect();
        parts.len() >= n && parts.iter().all(|p| !p.is_empty())
    };
    let ok = match service {
        "iam" if resource == "root" => return Some(AwsPrincipal::Account(account.to_string())),
        "iam" => ["user/", "role/"].iter().any(|kind| resource.strip_prefix(kind).is_some_and(|r| segments(r, 1))),
        _ => {
            resource.strip_prefix("assumed-role/").is_some_and(|r| r.split('/').count() == 2 && segments(r, 2))
                || resource.strip_prefix("federated-user/").is_some_and(|r| segments(r, 1))
        }
    };
    ok.then(|| AwsPrincipal::Arn(v.to_string()))
}

fn is_account(v: &str) -> bool {
    v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())
}

/// `name.amazonaws.com` (or `.amazonaws.com.cn`), the shape of every AWS
/// service principal.
fn is_service_name(v: &str) -> bool {
    let host = v.strip_suffix(".amazonaws.com").or_else(|| v.strip_suffix(".amazonaws.com.cn"));
    host.is_some_and(|h| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    })
}

/// Trust policies grant STS actions only (`sts:AssumeRole`,
/// `sts:TagSession`, `sts:AssumeRoleWith*`, ...), or all of them.
fn is_sts_action(pattern: &str) -> bool {
    pattern == "*" || pattern.split_once(':').is_some_and(|(vendor, _)| vendor.eq_ignore_ascii_case("sts"))
}

/// The account of an ARN (its fifth field).
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| is_account(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_iam_policy::RequestContext;

    const ACCT: &str = "123456789012";
    const OTHER: &str = "210987654321";
    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    const BOB: &str = "arn:aws:iam::123456789012:user/team/bob";

    fn role(document: &str) -> Role {
        validate(document).unwrap_or_else(|e| panic!("{e}: {document}"));
        Role {
            name: "app".into(),
            id: "AROAEXAMPLEEXAMPLE123".into(),
            path: "/".into(),
            arn: format!("arn:aws:iam::{ACCT}:role/app"),
            created_at: 0,
            assume_role_policy_document: document.into(),
            description: None,
            max_session_duration: 3600,
            inline_policies: Default::default(),
            attached_policies: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn trusting(principal: &str) -> Role {
        role(&format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#))
    }

    fn user(arn: &str) -> Assumer<'_> {
        Assumer::Principal { arn, account: ACCT }
    }

    const ROOT: Assumer<'static> = Assumer::Principal { arn: "arn:aws:iam::123456789012:root", account: ACCT };

    #[test]
    fn ecs_tasks_service() {
        let r = trusting(r#"{"Service":"ecs-tasks.amazonaws.com"}"#);
        assert_eq!(evaluate(&r, Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::AllowedByName);
        assert_eq!(evaluate(&r, Assumer::Service("ec2.amazonaws.com")), TrustDecision::Denied);
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
        assert_eq!(evaluate(&r, ROOT), TrustDecision::Denied);
        let list = trusting(r#"{"Service":["ec2.amazonaws.com","ecs-tasks.amazonaws.com"]}"#);
        assert_eq!(evaluate(&list, Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::AllowedByName);
        // ECS's documented confused-deputy guard holds for the role's own account.
        let guarded = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"ecs-tasks.amazonaws.com"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"aws:SourceAccount":"{ACCT}"}}}}}}]}}"#
        ));
        assert_eq!(evaluate(&guarded, Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::AllowedByName);
        let foreign = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"ecs-tasks.amazonaws.com"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"aws:SourceAccount":"{OTHER}"}}}}}}]}}"#
        ));
        assert_eq!(evaluate(&foreign, Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::Denied);
    }

    #[test]
    fn user_arn() {
        let r = trusting(&format!(r#"{{"AWS":"{ALICE}"}}"#));
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByName);
        assert_eq!(evaluate(&r, user(BOB)), TrustDecision::Denied);
        assert_eq!(evaluate(&r, ROOT), TrustDecision::Denied);
        assert_eq!(evaluate(&r, Assumer::Principal { arn: ALICE, account: OTHER }), TrustDecision::AllowedByName);
        let many = trusting(&format!(r#"{{"AWS":["{ALICE}","{BOB}"]}}"#));
        assert_eq!(evaluate(&many, user(BOB)), TrustDecision::AllowedByName);
    }

    #[test]
    fn account_root_and_id_forms() {
        for principal in [format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:root"}}"#), format!(r#"{{"AWS":"{ACCT}"}}"#)] {
            let r = trusting(&principal);
            assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByAccount, "{principal}");
            assert_eq!(evaluate(&r, ROOT), TrustDecision::AllowedByAccount, "{principal}");
            let other = Assumer::Principal { arn: "arn:aws:iam::210987654321:user/alice", account: OTHER };
            assert_eq!(evaluate(&r, other), TrustDecision::Denied, "{principal}");
            assert_eq!(evaluate(&r, Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::Denied);
        }
        // Naming the user too makes it by name.
        let both = trusting(&format!(r#"{{"AWS":["{ACCT}","{ALICE}"]}}"#));
        assert_eq!(evaluate(&both, user(ALICE)), TrustDecision::AllowedByName);
        assert_eq!(evaluate(&both, user(BOB)), TrustDecision::AllowedByAccount);
    }

    #[test]
    fn everyone() {
        for principal in [r#""*""#, r#"{"AWS":"*"}"#] {
            let r = trusting(principal);
            assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByAccount);
            let other = Assumer::Principal { arn: "arn:aws:iam::210987654321:user/x", account: OTHER };
            assert_eq!(evaluate(&r, other), TrustDecision::AllowedByAccount);
        }
        // A service is named only by a Service principal (or everyone).
        assert_eq!(evaluate(&trusting(r#""*""#), Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::AllowedByAccount);
        assert_eq!(evaluate(&trusting(r#"{"AWS":"*"}"#), Assumer::Service("ecs-tasks.amazonaws.com")), TrustDecision::Denied);
    }

    #[test]
    fn deny_wins() {
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"sts:AssumeRole"}},
                {{"Effect":"Allow","Principal":{{"AWS":"{BOB}"}},"Action":"sts:AssumeRole"}},
                {{"Effect":"Deny","Principal":{{"AWS":"{BOB}"}},"Action":"sts:*"}}]}}"#
        ));
        assert_eq!(evaluate(&r, user(BOB)), TrustDecision::Denied);
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByAccount);
        // Deny to everyone but alice.
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"sts:AssumeRole"}},
                {{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"sts:AssumeRole"}}]}}"#
        ));
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByAccount);
        assert_eq!(evaluate(&r, user(BOB)), TrustDecision::Denied);
        // A Deny of another action does not refuse AssumeRole.
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[
                {{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":["sts:AssumeRole","sts:TagSession"]}},
                {{"Effect":"Deny","Principal":"*","Action":"sts:TagSession"}}]}}"#
        ));
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::AllowedByName);
    }

    #[test]
    fn conditions() {
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"sts:AssumeRole",
                "Condition":{{"IpAddress":{{"aws:SourceIp":"192.0.2.0/24"}}}}}}]}}"#
        ));
        let from = |ip: &str| {
            let ctx = RequestContext::new("ignored", "ignored").with_principal_arn(ALICE).with_account(ACCT).with_key("aws:SourceIp", ip);
            evaluate_in(&r, user(ALICE), &ctx)
        };
        assert_eq!(from("192.0.2.7"), TrustDecision::AllowedByName);
        assert_eq!(from("198.51.100.1"), TrustDecision::Denied);
        // Without the facts the condition does not hold.
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
        // Conditions on the principal come from the assumer.
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"sts:AssumeRole",
                "Condition":{{"ArnLike":{{"aws:PrincipalArn":"arn:aws:iam::{ACCT}:user/team/*"}}}}}}]}}"#
        ));
        assert_eq!(evaluate(&r, user(BOB)), TrustDecision::AllowedByAccount);
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
    }

    #[test]
    fn role_sessions_match_by_role() {
        let r = trusting(&format!(r#"{{"AWS":"arn:aws:iam::{ACCT}:role/ops/deployer"}}"#));
        let session = "arn:aws:sts::123456789012:assumed-role/deployer/ci-42";
        assert_eq!(evaluate(&r, user(session)), TrustDecision::AllowedByName);
        let other_role = "arn:aws:sts::123456789012:assumed-role/deployer2/ci-42";
        assert_eq!(evaluate(&r, user(other_role)), TrustDecision::Denied);
        let other_account = "arn:aws:sts::210987654321:assumed-role/deployer/ci-42";
        assert_eq!(evaluate(&r, Assumer::Principal { arn: other_account, account: OTHER }), TrustDecision::Denied);
        // A session ARN names that session only.
        let one = trusting(&format!(r#"{{"AWS":"{session}"}}"#));
        assert_eq!(evaluate(&one, user(session)), TrustDecision::AllowedByName);
        assert_eq!(evaluate(&one, user("arn:aws:sts::123456789012:assumed-role/deployer/other")), TrustDecision::Denied);
        assert!(session_of_role("arn:aws:sts::123456789012:assumed-role/r/s", "arn:aws:iam::123456789012:role/r"));
        assert!(!session_of_role("arn:aws:iam::123456789012:user/r", "arn:aws:iam::123456789012:role/r"));
    }

    #[test]
    fn federated_never_matches() {
        let r = role(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"},
               {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity"]}]}"#,
        );
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
        assert_eq!(evaluate(&r, ROOT), TrustDecision::Denied);
        assert_eq!(evaluate(&r, Assumer::Service("cognito-identity.amazonaws.com")), TrustDecision::Denied);
    }

    #[test]
    fn other_actions_do_not_grant_assume_role() {
        let r = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"sts:TagSession"}}}}"#
        ));
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
        let all = role(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"sts:*"}}}}"#
        ));
        assert_eq!(evaluate(&all, user(ALICE)), TrustDecision::AllowedByName);
    }

    #[test]
    fn a_corrupt_stored_document_trusts_nobody() {
        let mut r = trusting(r#""*""#);
        r.assume_role_policy_document = "{".into();
        assert_eq!(evaluate(&r, user(ALICE)), TrustDecision::Denied);
    }

    #[test]
    fn malformed_documents() {
        let stmt = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#);
        let cases = [
            ("not json".to_string(), "Syntax errors in policy."),
            ("[]".to_string(), "Syntax errors in policy."),
            (r#"{"Version":"2012-10-17"}"#.to_string(), "Missing required field Statement"),
            (stmt(r#""Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*""#), "Has prohibited field Resource"),
            (stmt(r#""Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","NotResource":"*""#), "Has prohibited field NotResource"),
            (stmt(r#""Effect":"Allow","Action":"sts:AssumeRole""#), "Missing required field Principal"),
            (
                stmt(r#""Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"sts:AssumeRole""#),
                "Statement can not contain both Principal and NotPrincipal.",
            ),
            (stmt(r#""Effect":"Allow","Principal":{"Service":"x"},"Action":"sts:AssumeRole""#), r#"Invalid principal in policy: "SERVICE":"x""#),
            (
                stmt(r#""Effect":"Allow","Principal":{"Service":"ECS-TASKS.amazonaws.com"},"Action":"sts:AssumeRole""#),
                r#"Invalid principal in policy: "SERVICE":"ECS-TASKS.amazonaws.com""#,
            ),
            (stmt(r#""Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole""#), r#"Invalid principal in policy: "AWS":"bob""#),
            (
                stmt(r#""Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"sts:AssumeRole""#),
                r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*""#,
            ),
            (
                stmt(r#""Effect":"Allow","Principal":{"AWS":"arn:aws:iam::12345:root"},"Action":"sts:AssumeRole""#),
                r#"Invalid principal in policy: "AWS":"arn:aws:iam::12345:root""#,
            ),
            (
                stmt(r#""Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:group/devs"},"Action":"sts:AssumeRole""#),
                r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:group/devs""#,
            ),
            (stmt(r#""Effect":"Allow","Principal":{"Bogus":"x"},"Action":"sts:AssumeRole""#), r#"Invalid principal in policy: "BOGUS":"x""#),
            (stmt(r#""Effect":"Allow","Principal":"bob","Action":"sts:AssumeRole""#), r#"Invalid principal in policy: "bob""#),
            (stmt(r#""Effect":"Allow","Principal":{},"Action":"sts:AssumeRole""#), "Syntax errors in policy."),
            (stmt(r#""Effect":"Allow","Principal":{"AWS":[]},"Action":"sts:AssumeRole""#), "Syntax errors in policy."),
            (stmt(r#""Effect":"Allow","Principal":{"AWS":7},"Action":"sts:AssumeRole""#), "Syntax errors in policy."),
            (stmt(r#""Effect":"Allow","Principal":"*""#), "Policy statement must contain actions."),
            (stmt(r#""Principal":"*","Action":"sts:AssumeRole""#), "Missing required field Effect"),
            (stmt(r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject""#), "AssumeRole policy may only specify STS AssumeRole actions."),
            (
                stmt(r#""Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEqualz":{"a:b":"c"}}"#),
                "Invalid Condition type : StringEqualz.",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#.to_string(),
                "Statement IDs (SID) in a single policy must be unique.",
            ),
            (r#"{"Version":"2012-10-17","Statement":["x"]}"#.to_string(), "Syntax errors in policy."),
        ];
        for (doc, message) in cases {
            match validate(&doc) {
                Err(IamError::MalformedPolicyDocument(m)) => assert_eq!(m, message, "{doc}"),
                other => panic!("{doc}: {other:?}"),
            }
        }
    }

    #[test]
    fn valid_documents() {
        let docs = [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            r#"{"Version":"2008-10-17","Statement":{"Sid":"","Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/a/b","arn:aws:iam::123456789012:role/r","arn:aws:sts::123456789012:assumed-role/r/s","arn:aws:sts::123456789012:federated-user/f"]},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com","AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#,
        ];
        for doc in docs {
            assert!(validate(doc).is_ok(), "{doc}: {:?}", validate(doc));
        }
    }
}
