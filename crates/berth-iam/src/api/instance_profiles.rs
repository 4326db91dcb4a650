//! Instance profiles: Create/Get/List/DeleteInstanceProfile,
//! Add/RemoveRoleToInstanceProfile, ListInstanceProfilesForRole, and tags.

use super::roles::{self, no_such_role};
use super::{
    Ctx, Retag, arn, create_new, create_tags, name_and_path, path_prefix, tags_page, validate, xml,
};
use crate::error::IamError;
use crate::model::{IamState, InstanceProfile};

fn no_such_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn key(s: &IamState, name: &str) -> Result<String, IamError> {
    s.instance_profile(name)
        .map(|p| p.name.clone())
        .ok_or_else(|| no_such_profile(name))
}

/// The profile named by `InstanceProfileName` (required).
fn named<'s>(s: &'s IamState, cx: &Ctx) -> Result<&'s InstanceProfile, IamError> {
    let name = cx.form.required("InstanceProfileName")?;
    s.instance_profile(name)
        .ok_or_else(|| no_such_profile(name))
}

fn profile_answer(cx: &Ctx, p: &InstanceProfile, s: &IamState) -> String {
    cx.answer("InstanceProfile", |x| xml::instance_profile(x, p, s))
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let (name, path) = name_and_path(cx, "InstanceProfileName", "instanceProfileName", 128)?;
    let tags = create_tags(cx)?;
    let profile = InstanceProfile {
        arn: arn(cx, "instance-profile", &path, &name),
        id: validate::random_id("AIPA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        roles: Vec::new(),
        tags,
    };
    create_new(
        cx,
        &name,
        format!("Instance Profile {name} already exists."),
        |s, n| s.instance_profile(n).is_some(),
        |s| &mut s.instance_profiles,
        &profile,
    )
    .await?;
    Ok(profile_answer(cx, &profile, &IamState::default()))
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let p = named(snap.state(), cx)?;
    Ok(profile_answer(cx, p, snap.state()))
}

fn list_answer(cx: &Ctx, found: Vec<&InstanceProfile>, s: &IamState) -> Result<String, IamError> {
    cx.page_of("InstanceProfiles", found, |x, p| {
        xml::instance_profile(x, p, s)
    })
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    list_answer(
        cx,
        s.instance_profiles
            .values()
            .filter(|p| p.path.starts_with(prefix))
            .collect(),
        s,
    )
}

pub fn list_for_role(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    let role = s.role(name).ok_or_else(|| no_such_role(name))?;
    list_answer(cx, s.instance_profiles_of_role(&role.name).collect(), s)
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("InstanceProfileName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            if s.instance_profiles
                .get(&k)
                .is_some_and(|p| !p.roles.is_empty())
            {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove roles from instance profile first.".into(),
                ));
            }
            s.instance_profiles.remove(&k);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

/// Apply `change` to the profile named by `InstanceProfileName`, given
/// the key of the role named by `RoleName` and that name as given.
async fn with_role(
    cx: &Ctx<'_>,
    change: impl Fn(&mut InstanceProfile, String, &str) -> Result<(), IamError>,
) -> Result<String, IamError> {
    let name = cx.form.required("InstanceProfileName")?.to_string();
    let role = cx.form.required("RoleName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let r = roles::key(s, &role)?;
            let p = s
                .instance_profiles
                .get_mut(&k)
                .ok_or_else(|| no_such_profile(&name))?;
            change(p, r, &role)
        })
        .await?;
    Ok(cx.done())
}

pub async fn add_role(cx: &Ctx<'_>) -> Result<String, IamError> {
    with_role(cx, |p, r, _| {
        if !p.roles.is_empty() {
            return Err(IamError::LimitExceeded(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
            ));
        }
        p.roles.push(r);
        Ok(())
    })
    .await
}

pub async fn remove_role(cx: &Ctx<'_>) -> Result<String, IamError> {
    with_role(cx, |p, r, role| {
        if !p.roles.contains(&r) {
            return Err(no_such_role(role));
        }
        p.roles.retain(|x| *x != r);
        Ok(())
    })
    .await
}

async fn change(
    cx: &Ctx<'_>,
    mut f: impl FnMut(&mut InstanceProfile) -> Result<(), IamError>,
) -> Result<(), IamError> {
    let name = cx.form.required("InstanceProfileName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            f(s.instance_profiles
                .get_mut(&k)
                .ok_or_else(|| no_such_profile(&name))?)
        })
        .await
}

/// TagInstanceProfile and UntagInstanceProfile.
pub async fn retag(
    cx: &Ctx<'_>,
    change: fn(&Ctx) -> Result<Retag, IamError>,
) -> Result<String, IamError> {
    let change = change(cx)?;
    self::change(cx, |p| change.apply(&mut p.tags)).await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let p = named(snap.state(), cx)?;
    tags_page(cx, &p.tags)
}
