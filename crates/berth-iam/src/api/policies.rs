//! Managed policies and their versions: CreatePolicy, GetPolicy,
//! ListPolicies, DeletePolicy, Create/Get/List/DeletePolicyVersion,
//! SetDefaultPolicyVersion, ListEntitiesForPolicy, and policy tags.
//!
//! AWS managed policies (`arn:aws:iam::aws:policy/...`, see
//! [`crate::builtin`]) are read-only, have one version `v1`, and keep their
//! attachment counts in [`IamState::aws_policy_attachments`].

use super::{
    Ctx, arn, form, merge_tags, path_prefix, required_tags, tag_keys, tags_page, validate, xml,
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
    let name = cx.form.required("PolicyName")?.to_string();
    validate::name("policyName", &name, 128)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    let document = cx.form.required("PolicyDocument")?.to_string();
    validate::managed_document(&document)?;
    let description = cx.form.get("Description").map(str::to_string);
    if let Some(d) = &description {
        validate::description("description", d, 1000)?;
    }
    let tags = form::tags(&cx.form, "Tags")?;
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
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
    let mut x = cx.response();
    x.open("Policy");
    xml::policy(&mut x, &policy, true);
    x.close("Policy");
    Ok(x.finish())
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    let mut x = cx.response();
    x.open("Policy");
    if let Some(p) = builtin::aws_managed_info(arn) {
        xml::aws_policy(&mut x, p, aws_attachments(snap.state(), arn), true);
    } else {
        let p = snap
            .state()
            .policies
            .get(arn)
            .ok_or_else(|| not_found(arn))?;
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
    let (page, next) = form::page(&cx.form, found)?;
    let mut x = cx.response();
    x.members("Policies", &page, |x, l| match l {
        Listed::Aws(p, n) => xml::aws_policy(x, p, *n, false),
        Listed::Local(p) => xml::policy(x, p, false),
    });
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
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
    let mut x = cx.response();
    x.open("PolicyVersion");
    xml::version(&mut x, &version, is_default, true);
    x.close("PolicyVersion");
    Ok(x.finish())
}

pub fn get_version(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let id = version_id(cx)?;
    let missing = || {
        IamError::NoSuchEntity(format!(
            "Policy {arn} version {id} does not exist or is not attachable."
        ))
    };
    let snap = cx.iam.snapshot();
    let (version, is_default) = if let Some(p) = builtin::aws_managed_info(arn) {
        if id != "v1" {
            return Err(missing());
        }
        (
            PolicyVersion {
                version_id: "v1".into(),
                document: p.document.into(),
                created_at: xml::AWS_POLICY_DATE,
            },
            true,
        )
    } else {
        let p = snap
            .state()
            .policies
            .get(arn)
            .ok_or_else(|| not_found(arn))?;
        let v = p
            .versions
            .iter()
            .find(|v| v.version_id == id)
            .ok_or_else(missing)?;
        (v.clone(), v.version_id == p.default_version_id)
    };
    let mut x = cx.response();
    x.open("PolicyVersion");
    xml::version(&mut x, &version, is_default, true);
    x.close("PolicyVersion");
    Ok(x.finish())
}

pub fn list_versions(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    let versions: Vec<(PolicyVersion, bool)> = if builtin::aws_managed_info(arn).is_some() {
        vec![(
            PolicyVersion {
                version_id: "v1".into(),
                document: String::new(),
                created_at: xml::AWS_POLICY_DATE,
            },
            true,
        )]
    } else {
        let p = snap
            .state()
            .policies
            .get(arn)
            .ok_or_else(|| not_found(arn))?;
        // Newest first, as IAM lists them.
        p.versions
            .iter()
            .rev()
            .map(|v| (v.clone(), v.version_id == p.default_version_id))
            .collect()
    };
    let (page, next) = form::page(&cx.form, versions)?;
    let mut x = cx.response();
    x.members("Versions", &page, |x, (v, d)| xml::version(x, v, *d, false));
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

pub async fn delete_version(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let id = version_id(cx)?;
    cx.iam
        .mutate(|s| {
            let p = customer_mut(s, &arn)?;
            if !p.versions.iter().any(|v| v.version_id == id) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {id} does not exist or is not attachable."
                )));
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
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} version {id} does not exist or is not attachable."
                )));
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
    if wants("Group") {
        found.extend(
            s.groups
                .values()
                .filter(|g| {
                    g.path.starts_with(prefix) && g.attached_policies.iter().any(|a| a == arn)
                })
                .map(|g| ("Group", g.name.as_str(), g.id.as_str())),
        );
    }
    if wants("User") {
        found.extend(
            s.users
                .values()
                .filter(|u| {
                    u.path.starts_with(prefix) && u.attached_policies.iter().any(|a| a == arn)
                })
                .map(|u| ("User", u.name.as_str(), u.id.as_str())),
        );
    }
    if wants("Role") {
        found.extend(
            s.roles
                .values()
                .filter(|r| {
                    r.path.starts_with(prefix) && r.attached_policies.iter().any(|a| a == arn)
                })
                .map(|r| ("Role", r.name.as_str(), r.id.as_str())),
        );
    }
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

pub async fn tag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let tags = required_tags(cx)?;
    cx.iam
        .mutate(|s| merge_tags(&mut customer_mut(s, &arn)?.tags, &tags))
        .await?;
    Ok(cx.done())
}

pub async fn untag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?.to_string();
    let keys = tag_keys(cx)?;
    cx.iam
        .mutate(|s| {
            customer_mut(s, &arn)?
                .tags
                .retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let arn = cx.form.required("PolicyArn")?;
    let snap = cx.iam.snapshot();
    if builtin::aws_managed_info(arn).is_some() {
        return tags_page(cx, &[]);
    }
    let p = snap
        .state()
        .policies
        .get(arn)
        .ok_or_else(|| not_found(arn))?;
    tags_page(cx, &p.tags)
}
