//! The decision: IAM's evaluation logic for identity-based policies within
//! one account. An explicit Deny in any policy wins; otherwise an Allow in
//! any policy allows; otherwise the request is implicitly denied.
//!
//! Out of scope: permissions boundaries, service control policies, resource
//! control policies, resource-based policies, session policies and
//! cross-account access, each of which adds a further gate in AWS.

use crate::context::RequestContext;
use crate::matching::{Variables, compile, quick_match, wildcard_match};
use crate::parse::{Effect, Patterns, Policy, Statement, Version};

/// The outcome of evaluating a request, naming the statement that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A Deny statement matched; nothing can override it.
    ExplicitDeny { sid: Option<String> },
    /// An Allow statement matched and no Deny did.
    Allow { sid: Option<String> },
    /// No statement matched: denied by default.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// Evaluates `ctx` against every policy attached to the principal.
pub fn evaluate(policies: &[&Policy], ctx: &RequestContext) -> Decision {
    let mut allow = None;
    for policy in policies {
        for statement in &policy.statements {
            if !applies(statement, policy.version, ctx) {
                continue;
            }
            match statement.effect {
                // A Deny cannot be overridden, so the search can stop.
                Effect::Deny => {
                    return Decision::ExplicitDeny {
                        sid: statement.sid.clone(),
                    };
                }
                Effect::Allow => {
                    allow.get_or_insert_with(|| statement.sid.clone());
                }
            }
        }
    }
    match allow {
        Some(sid) => Decision::Allow { sid },
        None => Decision::ImplicitDeny,
    }
}

/// Whether a statement covers the request: its action, its resource and
/// all its conditions match.
fn applies(statement: &Statement, version: Version, ctx: &RequestContext) -> bool {
    let vars = match version {
        Version::V2012_10_17 => Variables::Resolve(ctx),
        Version::V2008_10_17 => Variables::Literal,
    };
    // Actions never hold variables and compare case-insensitively.
    let action = |pattern: &String| wildcard_match(pattern, &ctx.action, true, Variables::Literal);
    let action_matches = match &statement.actions {
        Patterns::Only(list) => list.iter().any(action),
        Patterns::Except(list) => !list.iter().any(action),
    };
    // Resources are case-sensitive; an unresolved variable matches nothing,
    // so under NotResource it also excludes nothing.
    let resource = |pattern: &String| {
        quick_match(pattern, &ctx.resource, false)
            .unwrap_or_else(|| compile(pattern, vars).is_some_and(|p| p.matches(&ctx.resource, false)))
    };
    let resource_matches = match &statement.resources {
        Patterns::Only(list) => list.iter().any(resource),
        Patterns::Except(list) => !list.iter().any(resource),
    };
    action_matches && resource_matches && statement.conditions.iter().all(|c| c.evaluate(ctx, vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/abc";

    fn policy(json: &str) -> Policy {
        Policy::parse(json).unwrap()
    }

    /// A one-statement 2012-10-17 policy.
    fn stmt(body: &str) -> Policy {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#
        ))
    }

    fn decide(p: &Policy, action: &str, resource: &str) -> Decision {
        evaluate(&[p], &RequestContext::new(action, resource))
    }

    fn allow(sid: &str) -> Decision {
        Decision::Allow {
            sid: Some(sid.into()),
        }
    }

    fn deny(sid: &str) -> Decision {
        Decision::ExplicitDeny {
            sid: Some(sid.into()),
        }
    }

    #[test]
    fn allow_and_implicit_deny() {
        let p = stmt(r#"{"Sid":"Run","Effect":"Allow","Action":"ecs:RunTask","Resource":"*"}"#);
        assert_eq!(decide(&p, "ecs:RunTask", TASK), allow("Run"));
        assert!(decide(&p, "ecs:RunTask", TASK).is_allowed());
        assert_eq!(decide(&p, "ecs:StopTask", TASK), Decision::ImplicitDeny);
        assert_eq!(
            evaluate(&[], &RequestContext::new("ecs:RunTask", TASK)),
            Decision::ImplicitDeny
        );
        let anon = stmt(r#"{"Effect":"Allow","Action":"ecs:RunTask","Resource":"*"}"#);
        assert_eq!(
            decide(&anon, "ecs:RunTask", TASK),
            Decision::Allow { sid: None }
        );
    }

    #[test]
    fn explicit_deny_overrides_allow_across_policies() {
        let admin = stmt(r#"{"Sid":"Admin","Effect":"Allow","Action":"*","Resource":"*"}"#);
        let guard =
            stmt(r#"{"Sid":"NoDelete","Effect":"Deny","Action":"ecs:Delete*","Resource":"*"}"#);
        let ctx = RequestContext::new(
            "ecs:DeleteCluster",
            "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        );
        assert_eq!(evaluate(&[&admin, &guard], &ctx), deny("NoDelete"));
        assert_eq!(evaluate(&[&guard, &admin], &ctx), deny("NoDelete"));
        assert_eq!(
            evaluate(
                &[&admin, &guard],
                &RequestContext::new("ecs:ListClusters", "*")
            ),
            allow("Admin")
        );
        assert!(!evaluate(&[&guard], &RequestContext::new("ecs:ListClusters", "*")).is_allowed());
    }

    #[test]
    fn not_action_with_allow_grants_everything_except() {
        // IAM docs: allow everything except IAM.
        let p = stmt(r#"{"Sid":"AllButIam","Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#);
        assert_eq!(decide(&p, "ecs:RunTask", TASK), allow("AllButIam"));
        assert_eq!(decide(&p, "iam:CreateUser", "*"), Decision::ImplicitDeny);
    }

    #[test]
    fn not_action_with_deny_denies_everything_except() {
        // IAM docs: deny everything except IAM unless MFA is present.
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"},
                {"Sid":"OnlyIamWithoutMfa","Effect":"Deny","NotAction":"iam:*","Resource":"*",
                 "Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}"#,
        );
        assert_eq!(decide(&p, "iam:ListUsers", "*"), allow("All"));
        assert_eq!(decide(&p, "ecs:RunTask", TASK), deny("OnlyIamWithoutMfa"));
        let mfa =
            RequestContext::new("ecs:RunTask", TASK).with_key("aws:MultiFactorAuthPresent", "true");
        assert_eq!(evaluate(&[&p], &mfa), allow("All"));
    }

    #[test]
    fn not_resource() {
        let p = stmt(
            r#"{"Sid":"NotProd","Effect":"Allow","Action":"ecs:*","NotResource":"arn:aws:ecs:*:*:*/prod/*"}"#,
        );
        assert_eq!(
            decide(
                &p,
                "ecs:StopTask",
                "arn:aws:ecs:us-east-1:123456789012:task/dev/abc"
            ),
            allow("NotProd")
        );
        assert_eq!(decide(&p, "ecs:StopTask", TASK), Decision::ImplicitDeny);
    }

    #[test]
    fn action_wildcards_and_case() {
        let describe =
            stmt(r#"{"Sid":"D","Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}"#);
        assert!(decide(&describe, "ecs:DescribeTasks", TASK).is_allowed());
        assert!(decide(&describe, "ECS:describetasks", TASK).is_allowed());
        assert!(!decide(&describe, "ecs:ListTasks", TASK).is_allowed());
        assert!(!decide(&describe, "ec2:DescribeInstances", TASK).is_allowed());
        let service = stmt(r#"{"Sid":"S","Effect":"Allow","Action":"ecs:*","Resource":"*"}"#);
        assert!(decide(&service, "ecs:RunTask", TASK).is_allowed());
        assert!(!decide(&service, "ecr:GetAuthorizationToken", "*").is_allowed());
        let all = stmt(r#"{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}"#);
        assert!(decide(&all, "elasticloadbalancing:CreateLoadBalancer", "*").is_allowed());
        let one = stmt(r#"{"Sid":"Q","Effect":"Allow","Action":"ecs:?unTask","Resource":"*"}"#);
        assert!(decide(&one, "ecs:RunTask", TASK).is_allowed());
        assert!(!decide(&one, "ecs:ReRunTask", TASK).is_allowed());
    }

    #[test]
    fn resource_wildcards_are_case_sensitive() {
        let p = stmt(
            r#"{"Sid":"Prod","Effect":"Allow","Action":"ecs:StopTask","Resource":"arn:aws:ecs:us-east-1:123456789012:task/prod/*"}"#,
        );
        assert!(decide(&p, "ecs:StopTask", TASK).is_allowed());
        assert!(
            !decide(
                &p,
                "ecs:StopTask",
                "arn:aws:ecs:us-east-1:123456789012:task/PROD/abc"
            )
            .is_allowed()
        );
        assert!(
            !decide(
                &p,
                "ecs:StopTask",
                "arn:aws:ecs:us-west-2:123456789012:task/prod/abc"
            )
            .is_allowed()
        );
        // `*` spans `:` and `/`.
        let wide = stmt(
            r#"{"Sid":"W","Effect":"Allow","Action":"ecs:StopTask","Resource":"arn:aws:ecs:*"}"#,
        );
        assert!(decide(&wide, "ecs:StopTask", TASK).is_allowed());
        let list = stmt(
            r#"{"Sid":"L","Effect":"Allow","Action":"ecs:StopTask","Resource":["arn:aws:ecs:*:*:task/dev/*","arn:aws:ecs:*:*:task/prod/*"]}"#,
        );
        assert!(decide(&list, "ecs:StopTask", TASK).is_allowed());
    }

    #[test]
    fn conditions_and_within_a_statement() {
        // Several operators AND, several keys AND, several values OR.
        let p = stmt(
            r#"{"Sid":"C","Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{
                "StringEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"],"aws:PrincipalTag/team":"web"},
                "Bool":{"aws:SecureTransport":"true"}}}"#,
        );
        let ok = RequestContext::new("ecs:RunTask", TASK)
            .with_key("aws:RequestedRegion", "us-east-1")
            .with_key("aws:PrincipalTag/team", "web")
            .with_key("aws:SecureTransport", "true");
        assert!(evaluate(&[&p], &ok).is_allowed());
        let wrong_region = ok.clone().with_key("aws:RequestedRegion", "ap-south-1");
        assert!(!evaluate(&[&p], &wrong_region).is_allowed());
        let mut no_tag = ok.clone();
        no_tag.keys.remove("aws:PrincipalTag/team");
        assert!(!evaluate(&[&p], &no_tag).is_allowed());
        let insecure = ok.with_key("aws:SecureTransport", "false");
        assert!(!evaluate(&[&p], &insecure).is_allowed());
    }

    #[test]
    fn source_ip_deny() {
        // IAM docs: deny access based on the source IP.
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"},
                {"Sid":"OfficeOnly","Effect":"Deny","Action":"*","Resource":"*",
                 "Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24","2001:db8::/32"]}}}]}"#,
        );
        let from = |ip: &str| {
            evaluate(
                &[&p],
                &RequestContext::new("ecs:RunTask", TASK).with_key("aws:SourceIp", ip),
            )
        };
        assert_eq!(from("203.0.113.9"), allow("All"));
        assert_eq!(from("2001:db8::42"), allow("All"));
        assert_eq!(from("198.51.100.1"), deny("OfficeOnly"));
        // Without a source address the negated operator is true: denied.
        assert_eq!(decide(&p, "ecs:RunTask", TASK), deny("OfficeOnly"));
    }

    #[test]
    fn current_time_window() {
        // IAM docs: allow within a date range.
        let p = stmt(
            r#"{"Sid":"Window","Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{
                "DateGreaterThan":{"aws:CurrentTime":"2026-04-01T00:00:00Z"},
                "DateLessThan":{"aws:CurrentTime":"2026-06-30T23:59:59Z"}}}"#,
        );
        let at = |t: &str| {
            evaluate(
                &[&p],
                &RequestContext::new("ecs:RunTask", TASK).with_key("aws:CurrentTime", t),
            )
        };
        assert!(at("2026-05-01T12:00:00Z").is_allowed());
        assert!(!at("2026-07-01T00:00:00Z").is_allowed());
        assert!(!at("2026-03-31T23:59:59Z").is_allowed());
        assert!(
            !decide(&p, "ecs:RunTask", TASK).is_allowed(),
            "no time, no access"
        );
    }

    #[test]
    fn policy_variables_in_resources() {
        // IAM docs: each user gets their own home prefix.
        let p = stmt(
            r#"{"Sid":"Home","Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::bucket/home/${aws:username}/*","arn:aws:s3:::bucket/ids/${aws:userid}"]}"#,
        );
        let bob = |resource: &str| {
            evaluate(
                &[&p],
                &RequestContext::new("s3:GetObject", resource)
                    .with_username("bob")
                    .with_user_id("AIDAEXAMPLE"),
            )
        };
        assert!(bob("arn:aws:s3:::bucket/home/bob/notes.txt").is_allowed());
        assert!(!bob("arn:aws:s3:::bucket/home/alice/notes.txt").is_allowed());
        assert!(bob("arn:aws:s3:::bucket/ids/AIDAEXAMPLE").is_allowed());
        // A role has no user name: the variable does not resolve, no match.
        assert!(!decide(&p, "s3:GetObject", "arn:aws:s3:::bucket/home//x").is_allowed());
        // Version 2008-10-17 treats `${...}` as literal text.
        let old = policy(
            r#"{"Version":"2008-10-17","Statement":[{"Sid":"Lit","Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}"}]}"#,
        );
        let ctx = |r: &str| RequestContext::new("s3:GetObject", r).with_username("bob");
        assert!(!evaluate(&[&old], &ctx("arn:aws:s3:::b/bob")).is_allowed());
        assert!(evaluate(&[&old], &ctx("arn:aws:s3:::b/${aws:username}")).is_allowed());
    }

    #[test]
    fn escapes_in_resources() {
        let p = stmt(
            r#"{"Sid":"E","Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/literal${*}star"}"#,
        );
        assert!(decide(&p, "s3:GetObject", "arn:aws:s3:::b/literal*star").is_allowed());
        assert!(!decide(&p, "s3:GetObject", "arn:aws:s3:::b/literalXstar").is_allowed());
    }

    #[test]
    fn tag_conditions_with_set_qualifiers() {
        // IAM docs: allow tagging only with approved tag keys.
        let p = stmt(
            r#"{"Sid":"Tags","Effect":"Allow","Action":"ecs:TagResource","Resource":"*","Condition":{
                "ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]},
                "Null":{"aws:TagKeys":"false"}}}"#,
        );
        let tag = |keys: &[&str]| {
            evaluate(
                &[&p],
                &RequestContext::new("ecs:TagResource", TASK)
                    .with_values("aws:TagKeys", keys.iter().copied()),
            )
        };
        assert!(tag(&["team"]).is_allowed());
        assert!(tag(&["team", "env"]).is_allowed());
        assert!(!tag(&["team", "cost-center"]).is_allowed());
        // ForAllValues alone would pass an empty request; Null closes that hole.
        assert!(!decide(&p, "ecs:TagResource", TASK).is_allowed());
    }

    #[test]
    fn principal_keys_come_from_the_context() {
        let p = stmt(
            r#"{"Sid":"Own","Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{
                "StringEquals":{"aws:PrincipalAccount":"123456789012"},
                "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/ops-*"}}}"#,
        );
        let ctx = RequestContext::new("ecs:RunTask", TASK)
            .with_account("123456789012")
            .with_principal_arn("arn:aws:iam::123456789012:user/ops-alice");
        assert!(evaluate(&[&p], &ctx).is_allowed());
        let other = ctx
            .clone()
            .with_principal_arn("arn:aws:iam::123456789012:user/dev-bob");
        assert!(!evaluate(&[&p], &other).is_allowed());
    }
}
