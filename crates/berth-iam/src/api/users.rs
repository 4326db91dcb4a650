//! Users: CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser, their
//! tags, and GetAccountSummary.

use super::attachments::{Holder, delete_identity};
use super::{
    Ctx, Retag, arn, create_new, create_tags, name_and_path, path_prefix, tags_page, validate, xml,
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
    let (name, path) = name_and_path(cx, "UserName", "userName", 64)?;
    let tags = create_tags(cx)?;
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
    create_new(
        cx,
        &name,
        format!("User with name {name} already exists."),
        |s, n| s.user(n).is_some(),
        |s| &mut s.users,
        &user,
    )
    .await?;
    Ok(cx.answer("User", |x| xml::user(x, &user, true)))
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
    cx.page_of("Users", found, |x, u| xml::user(x, u, false))
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    delete_identity(cx, Holder::User, |s, k| {
        if s.access_keys.values().any(|a| a.user_name == k) {
            return Some("delete access keys");
        }
        Holder::User.policies_in_the_way(s, k).or_else(|| {
            let member = s.users.get(k).is_some_and(|u| !u.groups.is_empty());
            member.then_some("remove users from group")
        })
    })
    .await
}

/// TagUser and UntagUser.
pub async fn retag(
    cx: &Ctx<'_>,
    change: fn(&Ctx) -> Result<Retag, IamError>,
) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?.to_string();
    let change = change(cx)?;
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let user = s.users.get_mut(&k).ok_or_else(|| no_such_user(&name))?;
            change.apply(&mut user.tags)
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
