//! Roles: CreateRole, GetRole, ListRoles, UpdateRole(Description),
//! UpdateAssumeRolePolicy, DeleteRole, and their tags.

use super::xml::RoleView;
use super::{
    Ctx, arn, form, merge_tags, path_prefix, required_tags, tag_keys, tags_page, validate, xml,
};
use crate::error::IamError;
use crate::model::{IamState, Role};

pub fn no_such_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

pub fn key(state: &IamState, name: &str) -> Result<String, IamError> {
    state.role_key(name).ok_or_else(|| no_such_role(name))
}

/// MaxSessionDuration: 3600..=43200 seconds.
fn max_session_duration(cx: &Ctx) -> Result<Option<u32>, IamError> {
    match cx.form.int("MaxSessionDuration")? {
        None => Ok(None),
        Some(n) if (3600..=43200).contains(&n) => Ok(Some(n as u32)),
        Some(n) => {
            let bound = if n < 3600 {
                "greater than or equal to 3600"
            } else {
                "less than or equal to 43200"
            };
            Err(IamError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value {bound}"
            )))
        }
    }
}

fn role_answer(cx: &Ctx, role: &Role, view: RoleView) -> String {
    let mut x = cx.response();
    x.open("Role");
    xml::role(&mut x, role, view);
    x.close("Role");
    x.finish()
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?.to_string();
    validate::name("roleName", &name, 64)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    let document = cx.form.required("AssumeRolePolicyDocument")?.to_string();
    validate::trust_document(&document)?;
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
    let role = Role {
        arn: arn(cx, "role", &path, &name),
        id: validate::random_id("AROA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        assume_role_policy_document: document,
        description,
        max_session_duration: max_session_duration(cx)?.unwrap_or(3600),
        inline_policies: Default::default(),
        attached_policies: Vec::new(),
        tags,
    };
    cx.iam
        .mutate(|s| {
            if s.role(&name).is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Role with name {name} already exists."
                )));
            }
            s.roles.insert(name.clone(), role.clone());
            Ok(())
        })
        .await?;
    Ok(role_answer(cx, &role, RoleView::Created))
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?;
    let snap = cx.iam.snapshot();
    let role = snap.state().role(name).ok_or_else(|| no_such_role(name))?;
    Ok(role_answer(cx, role, RoleView::Full))
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let found: Vec<&Role> = snap
        .state()
        .roles
        .values()
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let (page, next) = form::page(&cx.form, found)?;
    let mut x = cx.response();
    x.members("Roles", &page, |x, r| xml::role(x, r, RoleView::Listed));
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

/// Apply `change` to the role named by `RoleName` and return it as stored.
async fn change_role(
    cx: &Ctx<'_>,
    mut change: impl FnMut(&mut Role) -> Result<(), IamError>,
) -> Result<Role, IamError> {
    let name = cx.form.required("RoleName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let role = s.roles.get_mut(&k).ok_or_else(|| no_such_role(&name))?;
            change(role)?;
            Ok(role.clone())
        })
        .await
}

pub async fn update(cx: &Ctx<'_>) -> Result<String, IamError> {
    let description = cx.form.get("Description").map(str::to_string);
    if let Some(d) = &description {
        validate::description("description", d, 1000)?;
    }
    let duration = max_session_duration(cx)?;
    change_role(cx, |r| {
        if let Some(d) = &description {
            r.description = Some(d.clone());
        }
        if let Some(n) = duration {
            r.max_session_duration = n;
        }
        Ok(())
    })
    .await?;
    // UpdateRole's result is an empty structure.
    let x = cx.response();
    Ok(x.finish())
}

pub async fn update_description(cx: &Ctx<'_>) -> Result<String, IamError> {
    let description = cx.form.required("Description")?.to_string();
    validate::description("description", &description, 1000)?;
    let role = change_role(cx, |r| {
        r.description = Some(description.clone());
        Ok(())
    })
    .await?;
    Ok(role_answer(cx, &role, RoleView::Created))
}

pub async fn update_trust(cx: &Ctx<'_>) -> Result<String, IamError> {
    let document = cx.form.required("PolicyDocument")?.to_string();
    validate::trust_document(&document)?;
    change_role(cx, |r| {
        r.assume_role_policy_document = document.clone();
        Ok(())
    })
    .await?;
    Ok(cx.done())
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let conflict = |what: &str| {
                Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, must {what} first."
                )))
            };
            if s.instance_profiles_of_role(&k).next().is_some() {
                return conflict("remove roles from instance profile");
            }
            let Some(role) = s.roles.get(&k) else {
                return Err(no_such_role(&name));
            };
            if !role.attached_policies.is_empty() {
                return conflict("detach all policies");
            }
            if !role.inline_policies.is_empty() {
                return conflict("delete policies");
            }
            s.roles.remove(&k);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn tag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let tags = required_tags(cx)?;
    change_role(cx, |r| merge_tags(&mut r.tags, &tags)).await?;
    Ok(cx.done())
}

pub async fn untag(cx: &Ctx<'_>) -> Result<String, IamError> {
    let keys = tag_keys(cx)?;
    change_role(cx, |r| {
        r.tags.retain(|t| !keys.contains(&t.key));
        Ok(())
    })
    .await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?;
    let snap = cx.iam.snapshot();
    let role = snap.state().role(name).ok_or_else(|| no_such_role(name))?;
    tags_page(cx, &role.tags)
}
