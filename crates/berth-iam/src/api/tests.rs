//! Operation-level tests through [`handle`] over a `MemoryStore`.

use super::*;
use crate::caller::{Caller, CallerKind, RequestFacts};
use crate::sealing::MasterKey;
use berth_arn::AccountId;
use berth_store::memory::MemoryStore;
use berth_wire::ServiceError;
use std::sync::Arc;
use std::time::Duration;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}]}"#;
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

struct Env {
    iam: Arc<Iam>,
    caller: Caller,
}

impl Env {
    async fn new() -> Env {
        let account: AccountId = "123456789012".parse().unwrap();
        let iam = Iam::open(
            Arc::new(MemoryStore::new()),
            account.clone(),
            MasterKey::generate(),
        )
        .await
        .unwrap();
        Env {
            iam,
            caller: Caller::root(&account),
        }
    }

    fn as_user(&self, name: &str) -> Env {
        let caller = Caller {
            kind: CallerKind::User { name: name.into() },
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
            user_id: "AIDAEXAMPLE".into(),
            account: self.caller.account.clone(),
            token_issued_at: None,
        };
        Env {
            iam: self.iam.clone(),
            caller,
        }
    }

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, IamError> {
        let mut p: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), "2010-05-08".into()),
        ];
        p.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let facts = RequestFacts {
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            source_ip: None,
            region: "us-east-1".into(),
            secure_transport: false,
        };
        let req = QueryRequest {
            params: &p,
            request_id: "req-1",
            caller: &self.caller,
            facts: &facts,
        };
        handle(&self.iam, &req).await
    }

    async fn ok(&self, action: &str, params: &[(&str, &str)]) -> String {
        match self.call(action, params).await {
            Ok(x) => x,
            Err(e) => panic!("{action} failed: {} {e}", e.code()),
        }
    }

    /// The texts of every `<tag>` in the answer to a call that must succeed.
    async fn all(&self, action: &str, params: &[(&str, &str)], tag: &str) -> Vec<String> {
        all(&self.ok(action, params).await, tag)
    }

    /// The text of the first `<tag>` in the answer to a call that must succeed.
    async fn one(&self, action: &str, params: &[(&str, &str)], tag: &str) -> String {
        one(&self.ok(action, params).await, tag)
    }

    /// Make each call in turn; each must succeed.
    async fn oks(&self, calls: &[(&str, &[(&str, &str)])]) {
        for (action, params) in calls {
            self.ok(action, params).await;
        }
    }

    /// `action` is refused until `what` is done first.
    async fn conflicts(&self, action: &str, params: &[(&str, &str)], what: &str) {
        assert_eq!(
            self.err(action, params).await,
            (
                "DeleteConflict",
                format!("Cannot delete entity, must {what} first.")
            )
        );
    }

    /// The error's code and message.
    async fn err(&self, action: &str, params: &[(&str, &str)]) -> (&'static str, String) {
        let e = self.call(action, params).await.expect_err(action);
        (e.code(), e.to_string())
    }
}

/// The text of every `<tag>` element, in order.
fn all(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

fn one(xml: &str, tag: &str) -> String {
    all(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

#[tokio::test]
async fn user_lifecycle_and_errors() {
    let env = Env::new().await;
    let x = env
        .ok(
            "CreateUser",
            &[
                ("UserName", "alice"),
                ("Path", "/team/"),
                ("Tags.member.1.Key", "k"),
                ("Tags.member.1.Value", "v"),
            ],
        )
        .await;
    assert!(x.starts_with("<CreateUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><CreateUserResult><User>"), "{x}");
    assert_eq!(one(&x, "Arn"), "arn:aws:iam::123456789012:user/team/alice");
    assert!(one(&x, "UserId").starts_with("AIDA"));
    assert_eq!(one(&x, "UserId").len(), 21);
    assert_eq!(one(&x, "CreateDate"), "2023-11-14T22:13:20Z");
    assert_eq!(one(&x, "Key"), "k");

    assert_eq!(
        env.err("CreateUser", &[("UserName", "ALICE")]).await,
        (
            "EntityAlreadyExists",
            "User with name ALICE already exists.".into()
        )
    );
    assert_eq!(
        env.err("CreateUser", &[("UserName", "a b")]).await.0,
        "ValidationError"
    );
    assert_eq!(
        env.err("CreateUser", &[("UserName", "b"), ("Path", "nope")])
            .await
            .0,
        "ValidationError"
    );
    assert_eq!(env.err("CreateUser", &[]).await.0, "ValidationError");
    assert_eq!(
        env.err("GetUser", &[("UserName", "bob")]).await,
        (
            "NoSuchEntity",
            "The user with name bob cannot be found.".into()
        )
    );

    let x = env.ok("GetUser", &[("UserName", "alice")]).await;
    assert_eq!(one(&x, "UserName"), "alice");
    env.ok("CreateUser", &[("UserName", "bob")]).await;
    let x = env.ok("ListUsers", &[("PathPrefix", "/team/")]).await;
    assert_eq!(all(&x, "UserName"), vec!["alice"]);
    assert_eq!(one(&x, "IsTruncated"), "false");
    assert!(!x.contains("<Tags>"), "ListUsers leaves tags out");

    env.ok(
        "UpdateUser",
        &[
            ("UserName", "alice"),
            ("NewUserName", "carol"),
            ("NewPath", "/"),
        ],
    )
    .await;
    assert_eq!(
        env.one("GetUser", &[("UserName", "carol")], "Arn").await,
        "arn:aws:iam::123456789012:user/carol"
    );
    assert_eq!(
        env.err(
            "UpdateUser",
            &[("UserName", "carol"), ("NewUserName", "bob")]
        )
        .await
        .0,
        "EntityAlreadyExists"
    );

    env.ok(
        "TagUser",
        &[
            ("UserName", "carol"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v2"),
            ("Tags.member.2.Key", "z"),
        ],
    )
    .await;
    let x = env.ok("ListUserTags", &[("UserName", "carol")]).await;
    assert_eq!(all(&x, "Value"), vec!["v2", ""]);
    env.ok(
        "UntagUser",
        &[("UserName", "carol"), ("TagKeys.member.1", "k")],
    )
    .await;
    assert_eq!(
        env.all("ListUserTags", &[("UserName", "carol")], "Key")
            .await,
        vec!["z"]
    );

    let x = env.ok("DeleteUser", &[("UserName", "carol")]).await;
    assert_eq!(
        x,
        "<DeleteUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></DeleteUserResponse>"
    );
    assert_eq!(
        env.err("DeleteUser", &[("UserName", "carol")]).await.0,
        "NoSuchEntity"
    );
}

#[tokio::test]
async fn list_users_pages_with_markers() {
    let env = Env::new().await;
    for n in ["u1", "u2", "u3", "u4", "u5"] {
        env.ok("CreateUser", &[("UserName", n)]).await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p = vec![("MaxItems", "2")];
        if let Some(m) = &marker {
            p.push(("Marker", m.as_str()));
        }
        let x = env.ok("ListUsers", &p).await;
        seen.extend(all(&x, "UserName"));
        if one(&x, "IsTruncated") == "false" {
            assert!(all(&x, "Marker").is_empty());
            break;
        }
        marker = Some(one(&x, "Marker"));
    }
    assert_eq!(seen, vec!["u1", "u2", "u3", "u4", "u5"]);
    assert_eq!(
        env.err("ListUsers", &[("MaxItems", "1001")]).await.0,
        "ValidationError"
    );
}

#[tokio::test]
async fn get_user_without_a_name_is_the_caller() {
    let env = Env::new().await;
    let x = env.ok("GetUser", &[]).await;
    assert_eq!(one(&x, "Arn"), "arn:aws:iam::123456789012:root");
    assert_eq!(one(&x, "UserId"), "123456789012");
    assert!(all(&x, "UserName").is_empty());
    env.ok("CreateUser", &[("UserName", "dave")]).await;
    let x = env.as_user("dave").ok("GetUser", &[]).await;
    assert_eq!(one(&x, "UserName"), "dave");
}

#[tokio::test]
async fn delete_user_conflicts() {
    let env = Env::new().await;
    let user: &[(&str, &str)] = &[("UserName", "u")];
    let group: &[(&str, &str)] = &[("GroupName", "g")];
    let member: &[(&str, &str)] = &[("UserName", "u"), ("GroupName", "g")];
    let inline: &[(&str, &str)] = &[("UserName", "u"), ("PolicyName", "p")];
    let admin: &[(&str, &str)] = &[("UserName", "u"), ("PolicyArn", ADMIN)];
    env.oks(&[
        ("CreateUser", user),
        ("CreateGroup", group),
        (
            "PutUserPolicy",
            &[inline, &[("PolicyDocument", DOC)]].concat(),
        ),
        ("AttachUserPolicy", admin),
        ("AddUserToGroup", member),
    ])
    .await;
    env.conflicts("DeleteUser", user, "delete policies").await;
    env.ok("DeleteUserPolicy", inline).await;
    env.conflicts("DeleteUser", user, "detach all policies")
        .await;
    env.ok("DetachUserPolicy", admin).await;
    env.conflicts("DeleteUser", user, "remove users from group")
        .await;
    env.conflicts("DeleteGroup", group, "remove users from group")
        .await;
    env.oks(&[
        ("RemoveUserFromGroup", member),
        ("DeleteUser", user),
        ("DeleteGroup", group),
    ])
    .await;
}

#[tokio::test]
async fn groups_and_members() {
    let env = Env::new().await;
    let x = env
        .ok("CreateGroup", &[("GroupName", "devs"), ("Path", "/eng/")])
        .await;
    assert!(one(&x, "GroupId").starts_with("AGPA"));
    assert_eq!(one(&x, "Arn"), "arn:aws:iam::123456789012:group/eng/devs");
    assert_eq!(
        env.err("CreateGroup", &[("GroupName", "DEVS")]).await.0,
        "EntityAlreadyExists"
    );
    env.ok("CreateUser", &[("UserName", "a")]).await;
    env.ok("CreateUser", &[("UserName", "b")]).await;
    env.ok(
        "AddUserToGroup",
        &[("UserName", "a"), ("GroupName", "devs")],
    )
    .await;
    env.ok(
        "AddUserToGroup",
        &[("UserName", "b"), ("GroupName", "devs")],
    )
    .await;
    let x = env.ok("GetGroup", &[("GroupName", "devs")]).await;
    assert_eq!(all(&x, "UserName"), vec!["a", "b"]);
    let x = env.ok("ListGroupsForUser", &[("UserName", "a")]).await;
    assert_eq!(all(&x, "GroupName"), vec!["devs"]);
    assert_eq!(
        env.all("ListGroups", &[("PathPrefix", "/other/")], "GroupName")
            .await,
        Vec::<String>::new()
    );
    assert!(
        env.ok("ListGroups", &[("PathPrefix", "/other/")])
            .await
            .contains("<Groups/>")
    );
    assert_eq!(
        env.err(
            "AddUserToGroup",
            &[("UserName", "a"), ("GroupName", "nope")]
        )
        .await,
        (
            "NoSuchEntity",
            "The group with name nope cannot be found.".into()
        )
    );
    env.ok(
        "AttachGroupPolicy",
        &[("GroupName", "devs"), ("PolicyArn", ADMIN)],
    )
    .await;
    let x = env
        .ok("ListAttachedGroupPolicies", &[("GroupName", "devs")])
        .await;
    assert_eq!(all(&x, "PolicyName"), vec!["AdministratorAccess"]);
}

#[tokio::test]
async fn roles_and_their_trust_policy() {
    let env = Env::new().await;
    let x = env
        .ok(
            "CreateRole",
            &[
                ("RoleName", "task"),
                ("AssumeRolePolicyDocument", TRUST),
                ("Description", "d"),
                ("MaxSessionDuration", "7200"),
            ],
        )
        .await;
    assert!(one(&x, "RoleId").starts_with("AROA"));
    assert_eq!(one(&x, "AssumeRolePolicyDocument"), xml::url_encode(TRUST));
    assert!(one(&x, "AssumeRolePolicyDocument").starts_with("%7B%22Version%22"));
    assert_eq!(one(&x, "MaxSessionDuration"), "7200");
    assert_eq!(
        env.err(
            "CreateRole",
            &[("RoleName", "task"), ("AssumeRolePolicyDocument", TRUST)]
        )
        .await,
        (
            "EntityAlreadyExists",
            "Role with name task already exists.".into()
        )
    );
    assert_eq!(
        env.err("CreateRole", &[("RoleName", "r2")]).await.0,
        "ValidationError"
    );
    assert_eq!(
        env.err(
            "CreateRole",
            &[
                ("RoleName", "r2"),
                ("AssumeRolePolicyDocument", TRUST),
                ("MaxSessionDuration", "60")
            ]
        )
        .await
        .0,
        "ValidationError"
    );
    assert_eq!(
        env.err(
            "CreateRole",
            &[("RoleName", "r2"), ("AssumeRolePolicyDocument", "{")]
        )
        .await
        .0,
        "MalformedPolicyDocument"
    );
    assert_eq!(
        env.err("GetRole", &[("RoleName", "nope")]).await,
        (
            "NoSuchEntity",
            "The role with name nope cannot be found.".into()
        )
    );

    let x = env
        .ok(
            "UpdateRole",
            &[
                ("RoleName", "task"),
                ("Description", "new"),
                ("MaxSessionDuration", "3600"),
            ],
        )
        .await;
    assert!(x.contains("<UpdateRoleResult></UpdateRoleResult>"), "{x}");
    let x = env.ok("GetRole", &[("RoleName", "task")]).await;
    assert_eq!(one(&x, "Description"), "new");
    assert!(x.contains("<RoleLastUsed/>"));
    let other = TRUST.replace("ecs-tasks", "ec2");
    env.ok(
        "UpdateAssumeRolePolicy",
        &[("RoleName", "task"), ("PolicyDocument", &other)],
    )
    .await;
    let x = env.ok("ListRoles", &[]).await;
    assert_eq!(one(&x, "AssumeRolePolicyDocument"), xml::url_encode(&other));

    env.ok(
        "TagRole",
        &[
            ("RoleName", "task"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "x"),
        ],
    )
    .await;
    assert_eq!(
        env.all("ListRoleTags", &[("RoleName", "task")], "Key")
            .await,
        vec!["team"]
    );
    env.ok(
        "UntagRole",
        &[("RoleName", "task"), ("TagKeys.member.1", "team")],
    )
    .await;
    assert!(
        env.ok("ListRoleTags", &[("RoleName", "task")])
            .await
            .contains("<Tags/>")
    );
}

#[tokio::test]
async fn delete_role_conflicts() {
    let env = Env::new().await;
    let role: &[(&str, &str)] = &[("RoleName", "r")];
    let profile: &[(&str, &str)] = &[("InstanceProfileName", "ip")];
    let in_profile: &[(&str, &str)] = &[("InstanceProfileName", "ip"), ("RoleName", "r")];
    let inline: &[(&str, &str)] = &[("RoleName", "r"), ("PolicyName", "inline")];
    let admin: &[(&str, &str)] = &[("RoleName", "r"), ("PolicyArn", ADMIN)];
    env.oks(&[
        (
            "CreateRole",
            &[role, &[("AssumeRolePolicyDocument", TRUST)]].concat(),
        ),
        ("CreateInstanceProfile", profile),
        ("AddRoleToInstanceProfile", in_profile),
        ("AttachRolePolicy", admin),
        (
            "PutRolePolicy",
            &[inline, &[("PolicyDocument", DOC)]].concat(),
        ),
    ])
    .await;
    let in_use = "remove roles from instance profile";
    env.conflicts("DeleteRole", role, in_use).await;
    env.conflicts("DeleteInstanceProfile", profile, in_use)
        .await;
    env.ok("RemoveRoleFromInstanceProfile", in_profile).await;
    env.conflicts("DeleteRole", role, "detach all policies")
        .await;
    env.ok("DetachRolePolicy", admin).await;
    env.conflicts("DeleteRole", role, "delete policies").await;
    env.oks(&[
        ("DeleteRolePolicy", inline),
        ("DeleteRole", role),
        ("DeleteInstanceProfile", profile),
    ])
    .await;
    assert!(env.iam.snapshot().state().roles.is_empty());
}

#[tokio::test]
async fn managed_policy_versions() {
    let env = Env::new().await;
    let x = env
        .ok(
            "CreatePolicy",
            &[
                ("PolicyName", "p"),
                ("PolicyDocument", DOC),
                ("Description", "desc"),
            ],
        )
        .await;
    let arn = one(&x, "Arn");
    assert_eq!(arn, "arn:aws:iam::123456789012:policy/p");
    assert!(one(&x, "PolicyId").starts_with("ANPA"));
    assert_eq!(one(&x, "DefaultVersionId"), "v1");
    assert_eq!(
        env.err(
            "CreatePolicy",
            &[
                ("PolicyName", "p"),
                ("Path", "/x/"),
                ("PolicyDocument", DOC)
            ]
        )
        .await,
        (
            "EntityAlreadyExists",
            "A policy called p already exists. Duplicate names are not allowed.".into()
        )
    );
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#;
    assert_eq!(
        env.err(
            "CreatePolicy",
            &[("PolicyName", "q"), ("PolicyDocument", bad)]
        )
        .await,
        (
            "MalformedPolicyDocument",
            "Policy statement must contain actions.".into()
        )
    );

    for n in 2..=5 {
        let x = env
            .ok(
                "CreatePolicyVersion",
                &[
                    ("PolicyArn", &arn),
                    ("PolicyDocument", DOC),
                    ("SetAsDefault", if n == 3 { "true" } else { "false" }),
                ],
            )
            .await;
        assert_eq!(one(&x, "VersionId"), format!("v{n}"));
    }
    assert_eq!(
        env.err("CreatePolicyVersion", &[("PolicyArn", &arn), ("PolicyDocument", DOC)]).await,
        (
            "LimitExceeded",
            "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into()
        )
    );
    assert_eq!(
        env.one("GetPolicy", &[("PolicyArn", &arn)], "DefaultVersionId")
            .await,
        "v3"
    );
    let x = env.ok("ListPolicyVersions", &[("PolicyArn", &arn)]).await;
    assert_eq!(all(&x, "VersionId"), vec!["v5", "v4", "v3", "v2", "v1"]);
    assert!(!x.contains("<Document>"));
    assert_eq!(
        env.err(
            "DeletePolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", "v3")]
        )
        .await,
        (
            "DeleteConflict",
            "Cannot delete the default version of a policy.".into()
        )
    );
    let x = env
        .ok(
            "GetPolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", "v2")],
        )
        .await;
    assert_eq!(one(&x, "Document"), xml::url_encode(DOC));
    assert_eq!(one(&x, "IsDefaultVersion"), "false");
    assert_eq!(
        env.err(
            "GetPolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", "v9")]
        )
        .await
        .0,
        "NoSuchEntity"
    );
    env.ok(
        "SetDefaultPolicyVersion",
        &[("PolicyArn", &arn), ("VersionId", "v1")],
    )
    .await;
    assert_eq!(
        env.err("DeletePolicy", &[("PolicyArn", &arn)]).await.0,
        "DeleteConflict"
    );
    for v in ["v2", "v3", "v4", "v5"] {
        env.ok(
            "DeletePolicyVersion",
            &[("PolicyArn", &arn), ("VersionId", v)],
        )
        .await;
    }
    env.ok("CreateUser", &[("UserName", "u")]).await;
    env.ok(
        "AttachUserPolicy",
        &[("UserName", "u"), ("PolicyArn", &arn)],
    )
    .await;
    assert_eq!(
        env.one("GetPolicy", &[("PolicyArn", &arn)], "AttachmentCount")
            .await,
        "1"
    );
    let x = env
        .ok("ListEntitiesForPolicy", &[("PolicyArn", &arn)])
        .await;
    assert_eq!(all(&x, "UserName"), vec!["u"]);
    assert!(x.contains("<PolicyRoles/>"));
    assert_eq!(
        env.err("DeletePolicy", &[("PolicyArn", &arn)]).await,
        (
            "DeleteConflict",
            "Cannot delete a policy attached to entities.".into()
        )
    );
    env.ok(
        "DetachUserPolicy",
        &[("UserName", "u"), ("PolicyArn", &arn)],
    )
    .await;
    env.ok("DeletePolicy", &[("PolicyArn", &arn)]).await;
    assert_eq!(
        env.err("GetPolicy", &[("PolicyArn", &arn)]).await,
        ("NoSuchEntity", format!("Policy {arn} was not found."))
    );
}

#[tokio::test]
async fn aws_managed_policies() {
    let env = Env::new().await;
    let x = env.ok("GetPolicy", &[("PolicyArn", ADMIN)]).await;
    assert_eq!(one(&x, "PolicyName"), "AdministratorAccess");
    assert_eq!(one(&x, "AttachmentCount"), "0");
    let x = env
        .ok(
            "GetPolicyVersion",
            &[("PolicyArn", ADMIN), ("VersionId", "v1")],
        )
        .await;
    assert_eq!(one(&x, "IsDefaultVersion"), "true");
    env.ok(
        "CreateRole",
        &[("RoleName", "r"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .await;
    env.ok(
        "AttachRolePolicy",
        &[("RoleName", "r"), ("PolicyArn", ADMIN)],
    )
    .await;
    env.ok(
        "AttachRolePolicy",
        &[("RoleName", "r"), ("PolicyArn", ADMIN)],
    )
    .await;
    assert_eq!(
        env.iam.snapshot().state().aws_policy_attachments.get(ADMIN),
        Some(&1)
    );
    let x = env
        .ok(
            "ListPolicies",
            &[("Scope", "AWS"), ("OnlyAttached", "true")],
        )
        .await;
    assert_eq!(all(&x, "PolicyName"), vec!["AdministratorAccess"]);
    let x = env.ok("ListPolicies", &[("Scope", "AWS")]).await;
    assert_eq!(
        all(&x, "PolicyName").len(),
        crate::builtin::AWS_MANAGED.len()
    );
    assert!(
        env.ok("ListPolicies", &[("Scope", "Local")])
            .await
            .contains("<Policies/>")
    );
    assert_eq!(
        env.err("DeletePolicy", &[("PolicyArn", ADMIN)]).await.0,
        "InvalidInput"
    );
    let missing = "arn:aws:iam::aws:policy/NotAPolicy";
    assert_eq!(
        env.err(
            "AttachRolePolicy",
            &[("RoleName", "r"), ("PolicyArn", missing)]
        )
        .await,
        (
            "NoSuchEntity",
            format!("Policy {missing} does not exist or is not attachable.")
        )
    );
}

#[tokio::test]
async fn at_most_ten_attached_policies() {
    let env = Env::new().await;
    env.ok("CreateUser", &[("UserName", "u")]).await;
    for i in 0..11 {
        let name = format!("p{i}");
        let arn = one(
            &env.ok(
                "CreatePolicy",
                &[("PolicyName", &name), ("PolicyDocument", DOC)],
            )
            .await,
            "Arn",
        );
        let r = env
            .call(
                "AttachUserPolicy",
                &[("UserName", "u"), ("PolicyArn", &arn)],
            )
            .await;
        if i < 10 {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert_eq!(
                (e.code(), e.to_string()),
                (
                    "LimitExceeded",
                    "Cannot exceed quota for PoliciesPerUser: 10".into()
                )
            );
        }
    }
    let x = env
        .ok(
            "ListAttachedUserPolicies",
            &[("UserName", "u"), ("MaxItems", "4")],
        )
        .await;
    assert_eq!(all(&x, "PolicyArn").len(), 4);
    assert_eq!(one(&x, "IsTruncated"), "true");
}

#[tokio::test]
async fn inline_policies() {
    let env = Env::new().await;
    env.ok("CreateUser", &[("UserName", "u")]).await;
    env.ok(
        "PutUserPolicy",
        &[
            ("UserName", "u"),
            ("PolicyName", "b"),
            ("PolicyDocument", DOC),
        ],
    )
    .await;
    env.ok(
        "PutUserPolicy",
        &[
            ("UserName", "u"),
            ("PolicyName", "a"),
            ("PolicyDocument", DOC),
        ],
    )
    .await;
    let x = env.ok("ListUserPolicies", &[("UserName", "u")]).await;
    assert!(
        x.contains("<PolicyNames><member>a</member><member>b</member></PolicyNames>"),
        "{x}"
    );
    let x = env
        .ok("GetUserPolicy", &[("UserName", "U"), ("PolicyName", "a")])
        .await;
    assert_eq!(one(&x, "UserName"), "u");
    assert_eq!(one(&x, "PolicyDocument"), xml::url_encode(DOC));
    assert_eq!(
        env.err("GetUserPolicy", &[("UserName", "u"), ("PolicyName", "zz")])
            .await,
        (
            "NoSuchEntity",
            "The user policy with name zz cannot be found.".into()
        )
    );
    assert_eq!(
        env.err(
            "PutUserPolicy",
            &[
                ("UserName", "u"),
                ("PolicyName", "c"),
                ("PolicyDocument", "nope")
            ]
        )
        .await
        .0,
        "MalformedPolicyDocument"
    );
    assert_eq!(
        env.err(
            "PutRolePolicy",
            &[
                ("RoleName", "nope"),
                ("PolicyName", "c"),
                ("PolicyDocument", DOC)
            ]
        )
        .await,
        (
            "NoSuchEntity",
            "The role with name nope cannot be found.".into()
        )
    );
    env.ok(
        "DeleteUserPolicy",
        &[("UserName", "u"), ("PolicyName", "a")],
    )
    .await;
    assert_eq!(
        env.all("ListUserPolicies", &[("UserName", "u")], "member")
            .await,
        vec!["b"]
    );
    // The snapshot the authorizer reads sees the inline policy.
    assert_eq!(
        env.iam
            .snapshot()
            .policies_for(&env.as_user("u").caller)
            .len(),
        1
    );
}

/// Needs the sealing of helper A (MasterKey::seal).
#[tokio::test]
async fn access_keys() {
    let env = Env::new().await;
    env.ok("CreateUser", &[("UserName", "u")]).await;
    let x = env.ok("CreateAccessKey", &[("UserName", "u")]).await;
    let id = one(&x, "AccessKeyId");
    let secret = one(&x, "SecretAccessKey");
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    assert_eq!(one(&x, "Status"), "Active");
    let stored = env.iam.snapshot().state().access_keys[&id].clone();
    assert_eq!(
        env.iam.key().open_string(&id, &stored.secret).unwrap(),
        secret
    );
    assert!(!serde_json::to_string(&stored).unwrap().contains(&secret));

    env.as_user("u").ok("CreateAccessKey", &[]).await;
    assert_eq!(
        env.err("CreateAccessKey", &[("UserName", "u")]).await,
        (
            "LimitExceeded",
            "Cannot exceed quota for AccessKeysPerUser: 2".into()
        )
    );
    assert_eq!(env.err("CreateAccessKey", &[]).await.0, "ValidationError");
    let x = env.ok("ListAccessKeys", &[("UserName", "u")]).await;
    assert_eq!(all(&x, "AccessKeyId").len(), 2);
    assert!(!x.contains("SecretAccessKey"));
    env.ok(
        "UpdateAccessKey",
        &[
            ("UserName", "u"),
            ("AccessKeyId", &id),
            ("Status", "Inactive"),
        ],
    )
    .await;
    assert!(!env.iam.snapshot().state().access_keys[&id].is_active());
    assert_eq!(
        env.err(
            "UpdateAccessKey",
            &[("AccessKeyId", &id), ("Status", "Off")]
        )
        .await
        .0,
        "ValidationError"
    );
    let x = env
        .ok("GetAccessKeyLastUsed", &[("AccessKeyId", &id)])
        .await;
    assert_eq!(
        (
            one(&x, "ServiceName"),
            one(&x, "Region"),
            one(&x, "UserName")
        ),
        ("N/A".into(), "N/A".into(), "u".into())
    );
    assert_eq!(
        env.err("DeleteUser", &[("UserName", "u")]).await,
        (
            "DeleteConflict",
            "Cannot delete entity, must delete access keys first.".into()
        )
    );
    env.ok(
        "DeleteAccessKey",
        &[("UserName", "u"), ("AccessKeyId", &id)],
    )
    .await;
    assert_eq!(
        env.err("DeleteAccessKey", &[("AccessKeyId", &id)]).await.0,
        "NoSuchEntity"
    );
}

#[tokio::test]
async fn instance_profiles() {
    let env = Env::new().await;
    env.ok(
        "CreateRole",
        &[("RoleName", "r"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .await;
    env.ok(
        "CreateRole",
        &[("RoleName", "r2"), ("AssumeRolePolicyDocument", TRUST)],
    )
    .await;
    let x = env
        .ok(
            "CreateInstanceProfile",
            &[("InstanceProfileName", "ip"), ("Path", "/p/")],
        )
        .await;
    assert!(one(&x, "InstanceProfileId").starts_with("AIPA"));
    assert_eq!(
        one(&x, "Arn"),
        "arn:aws:iam::123456789012:instance-profile/p/ip"
    );
    assert!(x.contains("<Roles/>"));
    assert_eq!(
        env.err("CreateInstanceProfile", &[("InstanceProfileName", "ip")])
            .await
            .0,
        "EntityAlreadyExists"
    );
    env.ok(
        "AddRoleToInstanceProfile",
        &[("InstanceProfileName", "ip"), ("RoleName", "r")],
    )
    .await;
    assert_eq!(
        env.err(
            "AddRoleToInstanceProfile",
            &[("InstanceProfileName", "ip"), ("RoleName", "r2")]
        )
        .await,
        (
            "LimitExceeded",
            "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into()
        )
    );
    let x = env
        .ok("GetInstanceProfile", &[("InstanceProfileName", "ip")])
        .await;
    assert_eq!(all(&x, "RoleName"), vec!["r"]);
    let x = env
        .ok("ListInstanceProfilesForRole", &[("RoleName", "r")])
        .await;
    assert_eq!(all(&x, "InstanceProfileName"), vec!["ip"]);
    assert!(
        env.ok("ListInstanceProfilesForRole", &[("RoleName", "r2")])
            .await
            .contains("<InstanceProfiles/>")
    );
    assert_eq!(
        env.all("ListInstanceProfiles", &[], "InstanceProfileName")
            .await,
        vec!["ip"]
    );
    assert_eq!(
        env.err("GetInstanceProfile", &[("InstanceProfileName", "x")])
            .await
            .0,
        "NoSuchEntity"
    );
}

#[tokio::test]
async fn unknown_and_unsupported_actions() {
    let env = Env::new().await;
    assert_eq!(
        env.err("CreateLoginProfile", &[]).await.0,
        "UnsupportedOperation"
    );
    assert_eq!(
        env.err("CreateBucket", &[]).await,
        (
            "InvalidAction",
            "Could not find operation CreateBucket for version 2010-05-08".into()
        )
    );
    let x = env.ok("GetAccountSummary", &[]).await;
    assert!(
        x.contains("<entry><key>Users</key><value>0</value></entry>"),
        "{x}"
    );
}

#[tokio::test]
async fn writes_reach_the_store() {
    let env = Env::new().await;
    env.ok("CreateUser", &[("UserName", "persisted")]).await;
    let again = Iam::open(
        env.iam.store().clone(),
        env.caller.account.clone(),
        env.iam.key().clone(),
    )
    .await
    .unwrap();
    assert!(again.snapshot().state().user("persisted").is_some());
}
