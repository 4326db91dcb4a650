//! Users: CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser, their
//! tags, and GetAccountSummary.

use super::{
    Ctx, arn, form, merge_tags, path_prefix, required_tags, tag_keys, tags_page, validate, xml,
};
use crate::caller::CallerKind;
use crate::error::IamError;
use crate::model::{IamState, User};

pub fn no_such_user(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

/// The user named by `UserName` (required).
fn named<'s>(state: &'s IamState, cx: &Ctx) -> Result<&'s User, IamError> {
    let name = cx.form.required("UserName")?;
    state.user(name).ok_or_else(|| no_such_user(name))
}

/// The map key of the user named by `UserName`.
pub fn key(state: &IamState, name: &str) -> Result<String, IamError> {
    state.user_key(name).ok_or_else(|| no_such_user(name))
}

/// The user a call without `UserName` is about: the calling user. The root
/// and role sessions must name one, as in IAM.
pub fn user_name_or_caller<'a>(cx: &'a Ctx) -> Result<&'a str, IamError> {
    if let Some(name) = cx.form.get("UserName") {
        return Ok(name);
    }
    match &cx.caller.kind {
        CallerKind::User { name } => Ok(name),
        _ => Err(IamError::Validation(
            "Must specify userName when calling with non-User credentials".into(),
        )),
    }
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    validate::name("userName", &name, 64)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    let tags = form::tags(&cx.form, "Tags")?;
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    let user = User {
        arn: arn(cx, "user", &path, &name),
        id: validate::random_id("AIDA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        inline_policies: Default::default(),
        attached_policies: Vec::new(),
        groups: Vec::new(),
        tags,
    };
    let user = cx
        .iam
        .mutate(|s| {
            if s.user(&name).is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {name} already exists."
                )));
            }
            s.users.insert(name.clone(), user.clone());
            Ok(user.clone())
        })
        .await?;
    let mut x = cx.response();
    x.open("User");
    xml::user(&mut x, &user, true);
    x.close("User");
    Ok(x.finish())
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let mut x = cx.response();
    x.open("User");
    match (cx.form.get("UserName"), &cx.caller.kind) {
        (None, CallerKind::Root) => {
            // IAM answers the root user with the account id and the root
            // ARN and no name or path. The root has no record, so its
            // creation date is unknown; now is the least surprising value.
            x.text("UserId", &cx.account())
                .text("Arn", &cx.caller.arn)
                .text("CreateDate", &xml::date(cx.now));
        }
        _ => {
            let name = user_name_or_caller(cx)?;
            let user = snap.state().user(name).ok_or_else(|| no_such_user(name))?;
            xml::user(&mut x, user, true);
        }
    }
    x.close("User");
    Ok(x.finish())
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let found: Vec<&User> = snap
        .state()
        .users
        .values()
        .filter(|u| u.path.starts_with(prefix))
        .collect();
    let (page, next) = form::page(&cx.form, found)?;
    let mut x = cx.response();
    x.members("Users", &page, |x, u| xml::user(x, u, false));
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

pub async fn update(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    let new_name = cx.form.get("NewUserName").map(str::to_string);
    let new_path = cx.form.get("NewPath").map(str::to_string);
    if let Some(n) = &new_name {
        validate::name("newUserName", n, 64)?;
    }
    if let Some(p) = &new_path {
        validate::path("newPath", p)?;
    }
    let account = cx.account();
    cx.iam
        .mutate(|s| {
            let old = key(s, &name)?;
            let target = new_name.clone().unwrap_or_else(|| old.clone());
            if s.user(&target).is_some_and(|other| other.name != old) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {target} already exists."
                )));
            }
            let Some(mut user) = s.users.remove(&old) else {
                return Err(no_such_user(&name));
            };
            user.name = target.clone();
            if let Some(p) = &new_path {
                user.path = p.clone();
            }
            user.arn = format!("arn:aws:iam::{account}:user{}{}", user.path, user.name);
            s.users.insert(target.clone(), user);
            if target != old {
                for k in s.access_keys.values_mut().filter(|k| k.user_name == old) {
                    k.user_name = target.clone();
                }
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let conflict = |what: &str| {
                Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, must {what} first."
                )))
            };
            if s.access_keys.values().any(|a| a.user_name == k) {
                return conflict("delete access keys");
            }
            let Some(user) = s.users.get(&k) else {
                return Err(no_such_user(&name));
            };
            if !user.inline_policies.is_empty() {
                return conflict("delete policies");
            }
            if !user.attached_policies.is_empty() {
                return conflict("detach all policies");
            }
            if !user.groups.is_empty() {
                return conflict("remove users from group");
            }
            s.users.remove(&k);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn tag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    let tags = required_tags(cx)?;
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let user = s.users.get_mut(&k).ok_or_else(|| no_such_user(&name))?;
            merge_tags(&mut user.tags, &tags)
        })
        .await?;
    Ok(cx.done())
}

pub async fn untag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    let keys = tag_keys(cx)?;
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let user = s.users.get_mut(&k).ok_or_else(|| no_such_user(&name))?;
            user.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let user = named(snap.state(), cx)?;
    tags_page(cx, &user.tags)
}

/// GetAccountSummary: the counts Berth keeps, and IAM's default quotas.
pub fn account_summary(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let s = snap.state();
    let versions: usize = s.policies.values().map(|p| p.versions.len()).sum();
    let entries: Vec<(&str, usize)> = vec![
        ("AccessKeysPerUserQuota", 2),
        ("AccountAccessKeysPresent", 1),
        ("AccountMFAEnabled", 0),
        ("AccountSigningCertificatesPresent", 0),
        ("AssumeRolePolicySizeQuota", 2048),
        ("AttachedPoliciesPerGroupQuota", 10),
        ("AttachedPoliciesPerRoleQuota", 10),
        ("AttachedPoliciesPerUserQuota", 10),
        ("GlobalEndpointTokenVersion", 1),
        ("GroupPolicySizeQuota", 5120),
        ("Groups", s.groups.len()),
        ("GroupsPerUserQuota", 10),
        ("GroupsQuota", 300),
        ("InstanceProfiles", s.instance_profiles.len()),
        ("InstanceProfilesQuota", 1000),
        ("MFADevices", 0),
        ("MFADevicesInUse", 0),
        ("Policies", s.policies.len()),
        ("PoliciesQuota", 1500),
        ("PolicySizeQuota", 6144),
        ("PolicyVersionsInUse", versions),
        ("PolicyVersionsInUseQuota", 10000),
        ("Providers", 0),
        ("RolePolicySizeQuota", 10240),
        ("Roles", s.roles.len()),
        ("RolesQuota", 1000),
        ("ServerCertificates", 0),
        ("ServerCertificatesQuota", 20),
        ("SigningCertificatesPerUserQuota", 2),
        ("UserPolicySizeQuota", 2048),
        ("Users", s.users.len()),
        ("UsersQuota", 5000),
        ("VersionsPerPolicyQuota", 5),
    ];
    let mut x = cx.response();
    x.open("SummaryMap");
    for (k, v) in entries {
        x.open("entry")
            .text("key", k)
            .num("value", v)
            .close("entry");
    }
    x.close("SummaryMap");
    Ok(x.finish())
}
