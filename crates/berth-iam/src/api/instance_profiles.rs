//! Instance profiles: Create/Get/List/DeleteInstanceProfile,
//! Add/RemoveRoleToInstanceProfile, ListInstanceProfilesForRole, and tags.

use super::roles::{self, no_such_role};
use super::{
    Ctx, arn, form, merge_tags, path_prefix, required_tags, tag_keys, tags_page, validate, xml,
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

fn profile_answer(cx: &Ctx, p: &InstanceProfile, s: &IamState) -> String {
    let mut x = cx.response();
    x.open("InstanceProfile");
    xml::instance_profile(&mut x, p, s);
    x.close("InstanceProfile");
    x.finish()
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("InstanceProfileName")?.to_string();
    validate::name("instanceProfileName", &name, 128)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    let tags = form::tags(&cx.form, "Tags")?;
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    let profile = InstanceProfile {
        arn: arn(cx, "instance-profile", &path, &name),
        id: validate::random_id("AIPA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        roles: Vec::new(),
        tags,
    };
    cx.iam
        .mutate(|s| {
            if s.instance_profile(&name).is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Instance Profile {name} already exists."
                )));
            }
            s.instance_profiles.insert(name.clone(), profile.clone());
            Ok(())
        })
        .await?;
    Ok(profile_answer(cx, &profile, &IamState::default()))
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("InstanceProfileName")?;
    let snap = cx.iam.snapshot();
    let p = snap
        .state()
        .instance_profile(name)
        .ok_or_else(|| no_such_profile(name))?;
    Ok(profile_answer(cx, p, snap.state()))
}

fn list_answer(cx: &Ctx, found: Vec<&InstanceProfile>, s: &IamState) -> Result<String, IamError> {
    let (page, next) = form::page(&cx.form, found)?;
    let mut x = cx.response();
    x.members("InstanceProfiles", &page, |x, p| {
        xml::instance_profile(x, p, s)
    });
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
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

pub async fn add_role(cx: &Ctx<'_>) -> Result<String, IamError> {
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
            if !p.roles.is_empty() {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
                ));
            }
            p.roles.push(r);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn remove_role(cx: &Ctx<'_>) -> Result<String, IamError> {
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
            if !p.roles.contains(&r) {
                return Err(no_such_role(&role));
            }
            p.roles.retain(|x| *x != r);
            Ok(())
        })
        .await?;
    Ok(cx.done())
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

pub async fn tag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let tags = required_tags(cx)?;
    change(cx, |p| merge_tags(&mut p.tags, &tags)).await?;
    Ok(cx.done())
}

pub async fn untag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let keys = tag_keys(cx)?;
    change(cx, |p| {
        p.tags.retain(|t| !keys.contains(&t.key));
        Ok(())
    })
    .await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("InstanceProfileName")?;
    let snap = cx.iam.snapshot();
    let p = snap
        .state()
        .instance_profile(name)
        .ok_or_else(|| no_such_profile(name))?;
    tags_page(cx, &p.tags)
}
