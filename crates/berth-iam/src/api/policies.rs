//! Managed policies and their versions: CreatePolicy, GetPolicy,
//! ListPolicies, DeletePolicy, Create/Get/List/DeletePolicyVersion,
//! SetDefaultPolicyVersion, ListEntitiesForPolicy, and policy tags.
//!
//! AWS managed policies (`arn:aws:iam::aws:policy/...`, see
//! [`crate::builtin`]) are read-only, have one version `v1`, and keep their
//! attachment counts in [`IamState::aws_policy_attachments`].

use super::{
    Ctx, Retag, arn, create_tags, form, name_and_path, path_prefix, tags_page, validate, xml,
};
use crate::builtin::{self, AwsManagedPolicy};
use crate::error::IamError;
use crate::model::{IamState, ManagedPolicy, PolicyVersion};

pub fn not_found(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} was not found."))
}

/// A customer managed policy by ARN, for changing.
fn customer_mut<'s>(s: &'s mut IamState, arn: &str) -> Result<&'s mut ManagedPolicy, IamError> {
    if builtin::aws_managed_info(arn).is_some() {
        return Err(IamError::InvalidInput(format!(
            "Policy {arn} is an AWS managed policy and cannot be changed."
        )));
    }
    s.policies.get_mut(arn).ok_or_else(|| not_found(arn))
}

fn no_such_version(arn: &str, id: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "Policy {arn} version {id} does not exist or is not attachable."
    ))
}

/// A customer managed policy by ARN.
fn customer<'s>(s: &'s IamState, arn: &str) -> Result<&'s ManagedPolicy, IamError> {
    s.policies.get(arn).ok_or_else(|| not_found(arn))
}

/// The one version of an AWS managed policy.
fn aws_version(document: &str) -> PolicyVersion {
    PolicyVersion {
        version_id: "v1".into(),
        document: document.into(),
        created_at: xml::AWS_POLICY_DATE,
    }
}

/// A policy version id: `v` + digits.
fn version_id(cx: &Ctx) -> Result<String, IamError> {
    let id = cx.form.required("VersionId")?;
    let ok = id.len() > 1 && id.starts_with('v') && id[1..].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{id}' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?"
        )));
    }
    Ok(id.to_string())
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let (name, path) = name_and_path(cx, "PolicyName", "policyName", 128)?;
    let document = cx.form.required("PolicyDocument")?.to_string();
    validate::managed_document(&document)?;
    let description = cx.form.get("Description").map(str::to_string);
    if let Some(d) = &description {
        validate::description("description", d, 1000)?;
    }
    let tags = create_tags(cx)?;
    let policy = ManagedPolicy {
        arn: arn(cx, "policy", &path, &name),
        id: validate::random_id("ANPA", 17),
        name: name.clone(),
        path,
        description,
        created_at: cx.now,
        updated_at: cx.now,
        default_version_id: "v1".into(),
        versions: vec![PolicyVersion {
            version_id: "v1".into(),
            document,
            created_at: cx.now,
        }],
        next_version: 2,
        attachment_count: 0,
        tags,
    };
    cx.iam
        .mutate(|s| {
            // Policy names are unique in the account whatever their path.
            if s.policies
                .values()
                .any(|p| p.name.eq_ignore_ascii_case(&name))
            {
                return Err(IamError::EntityAlreadyExists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            s.policies.insert(policy.arn.clone(), policy.clone());
            Ok(())
        })
        .await?;
    Ok(cx.answer("Policy", |x| xml::policy(x, &policy, true)))
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    let mut x = cx.response();
    x.open("Policy");
    if let Some(p) = builtin::aws_managed_info(arn) {
        xml::aws_policy(&mut x, p, aws_attachments(snap.state(), arn), true);
    } else {
        let p = customer(snap.state(), arn)?;
        xml::policy(&mut x, p, true);
    }
    x.close("Policy");
    Ok(x.finish())
}

fn aws_attachments(s: &IamState, arn: &str) -> u32 {
    s.aws_policy_attachments.get(arn).copied().unwrap_or(0)
}

enum Listed<'s> {
    Aws(&'static AwsManagedPolicy, u32),
    Local(&'s ManagedPolicy),
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let scope = cx.form.get("Scope").unwrap_or("All");
    if !matches!(scope, "All" | "AWS" | "Local") {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
        )));
    }
    let only_attached = cx.form.bool("OnlyAttached")?.unwrap_or(false);
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    let mut found: Vec<Listed> = Vec::new();
    if scope != "Local" {
        let mut aws: Vec<&'static AwsManagedPolicy> = builtin::AWS_MANAGED.iter().collect();
        aws.sort_by_key(|p| p.name);
        found.extend(
            aws.into_iter()
                .map(|p| Listed::Aws(p, aws_attachments(s, &p.arn()))),
        );
    }
    if scope != "AWS" {
        let mut local: Vec<&ManagedPolicy> = s.policies.values().collect();
        local.sort_by(|a, b| a.name.cmp(&b.name));
        found.extend(local.into_iter().map(Listed::Local));
    }
    found.retain(|l| {
        let (path, count) = match l {
            Listed::Aws(p, n) => (p.path, *n),
            Listed::Local(p) => (p.path.as_str(), p.attachment_count),
        };
        path.starts_with(prefix) && (!only_attached || count > 0)
    });
    cx.page_of("Policies", found, |x, l| match l {
        Listed::Aws(p, n) => xml::aws_policy(x, p, *n, false),
        Listed::Local(p) => xml::policy(x, p, false),
    })
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    cx.iam
        .mutate(|s| {
            let p = customer_mut(s, &arn)?;
            if p.attachment_count > 0 {
                return Err(IamError::DeleteConflict("Cannot delete a policy attached to entities.".into()));
            }
            if p.versions.len() > 1 {
                return Err(IamError::DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
                ));
            }
            s.policies.remove(&arn);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn create_version(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let document = cx.form.required("PolicyDocument")?.to_string();
    let set_default = cx.form.bool("SetAsDefault")?.unwrap_or(false);
    validate::managed_document(&document)?;
    let now = cx.now;
    let (version, is_default) = cx
        .iam
        .mutate(|s| {
            let p = customer_mut(s, &arn)?;
            if p.versions.len() >= 5 {
                return Err(IamError::LimitExceeded(
                    "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into(),
                ));
            }
            let v = PolicyVersion { version_id: format!("v{}", p.next_version), document: document.clone(), created_at: now };
            p.next_version += 1;
            p.versions.push(v.clone());
            if set_default {
                p.default_version_id = v.version_id.clone();
                p.updated_at = now;
            }
            Ok((v, set_default))
        })
        .await?;
    Ok(cx.answer("PolicyVersion", |x| {
        xml::version(x, &version, is_default, true)
    }))
}

pub fn get_version(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let id = version_id(cx)?;
    let missing = || no_such_version(arn, &id);
    let snap = cx.iam.snapshot();
    let (version, is_default) = if let Some(p) = builtin::aws_managed_info(arn) {
        if id != "v1" {
            return Err(missing());
        }
        (aws_version(p.document), true)
    } else {
        let p = customer(snap.state(), arn)?;
        let v = p
            .versions
            .iter()
            .find(|v| v.version_id == id)
            .ok_or_else(missing)?;
        (v.clone(), v.version_id == p.default_version_id)
    };
    Ok(cx.answer("PolicyVersion", |x| {
        xml::version(x, &version, is_default, true)
    }))
}

pub fn list_versions(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    let versions: Vec<(PolicyVersion, bool)> = if builtin::aws_managed_info(arn).is_some() {
        vec![(aws_version(""), true)]
    } else {
        let p = customer(snap.state(), arn)?;
        // Newest first, as IAM lists them.
        p.versions
            .iter()
            .rev()
            .map(|v| (v.clone(), v.version_id == p.default_version_id))
            .collect()
    };
    cx.page_of("Versions", versions, |x, (v, d)| {
        xml::version(x, v, *d, false)
    })
}

pub async fn delete_version(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let id = version_id(cx)?;
    cx.iam
        .mutate(|s| {
            let p = customer_mut(s, &arn)?;
            if !p.versions.iter().any(|v| v.version_id == id) {
                return Err(no_such_version(&arn, &id));
            }
            if p.default_version_id == id {
                return Err(IamError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            p.versions.retain(|v| v.version_id != id);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn set_default_version(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let id = version_id(cx)?;
    let now = cx.now;
    cx.iam
        .mutate(|s| {
            let p = customer_mut(s, &arn)?;
            if !p.versions.iter().any(|v| v.version_id == id) {
                return Err(no_such_version(&arn, &id));
            }
            if p.default_version_id != id {
                p.default_version_id = id.clone();
                p.updated_at = now;
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub fn list_entities(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let filter = cx.form.get("EntityFilter");
    if let Some(f) = filter.filter(|f| {
        !matches!(
            *f,
            "User" | "Role" | "Group" | "LocalManagedPolicy" | "AWSManagedPolicy"
        )
    }) {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{f}' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [User, Role, Group, LocalManagedPolicy, AWSManagedPolicy]"
        )));
    }
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    if builtin::aws_managed_info(arn).is_none() && !s.policies.contains_key(arn) {
        return Err(not_found(arn));
    }
    let wants = |kind: &str| filter.is_none_or(|f| f == kind || f.ends_with("ManagedPolicy"));
    // (kind, name, id): one list so that paging spans all three kinds.
    let mut found: Vec<(&str, &str, &str)> = Vec::new();
    // (kind, path, attached ARNs, name, id) of every identity.
    type Entry<'s> = (&'static str, &'s str, &'s [String], &'s str, &'s str);
    let groups = s.groups.values().map(|g| {
        let e: Entry = ("Group", &g.path, &g.attached_policies, &g.name, &g.id);
        e
    });
    let users = s.users.values().map(|u| {
        let e: Entry = ("User", &u.path, &u.attached_policies, &u.name, &u.id);
        e
    });
    let roles = s.roles.values().map(|r| {
        let e: Entry = ("Role", &r.path, &r.attached_policies, &r.name, &r.id);
        e
    });
    found.extend(
        groups
            .chain(users)
            .chain(roles)
            .filter(|(kind, path, attached, _, _)| {
                wants(kind) && path.starts_with(prefix) && attached.iter().any(|a| a == arn)
            })
            .map(|(kind, _, _, name, id)| (kind, name, id)),
    );
    let (page, next) = form::page(&cx.form, found)?;
    let of = |kind: &str| {
        page.iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, n, i)| (*n, *i))
            .collect::<Vec<_>>()
    };
    let mut x = cx.response();
    x.members("PolicyGroups", &of("Group"), |x, (n, i)| {
        x.text("GroupName", n).text("GroupId", i);
    });
    x.members("PolicyUsers", &of("User"), |x, (n, i)| {
        x.text("UserName", n).text("UserId", i);
    });
    x.members("PolicyRoles", &of("Role"), |x, (n, i)| {
        x.text("RoleName", n).text("RoleId", i);
    });
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

/// TagPolicy and UntagPolicy (customer managed policies only).
pub async fn retag(
    cx: &Ctx<'_>,
    change: fn(&Ctx) -> Result<Retag, IamError>,
) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let change = change(cx)?;
    cx.iam
        .mutate(|s| change.apply(&mut customer_mut(s, &arn)?.tags))
        .await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    if builtin::aws_managed_info(arn).is_some() {
        return tags_page(cx, &[]);
    }
    let p = customer(snap.state(), arn)?;
    tags_page(cx, &p.tags)
}
