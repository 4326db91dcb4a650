//! Roles: CreateRole, GetRole, ListRoles, UpdateRole(Description),
//! UpdateAssumeRolePolicy, DeleteRole, and their tags.

use super::attachments::{Holder, delete_identity};
use super::xml::RoleView;
use super::{
    Ctx, Retag, arn, create_new, create_tags, name_and_path, path_prefix, tags_page, validate, xml,
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
    cx.answer("Role", |x| xml::role(x, role, view))
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let (name, path) = name_and_path(cx, "RoleName", "roleName", 64)?;
    let document = cx.form.required("AssumeRolePolicyDocument")?.to_string();
    validate::trust_document(&document)?;
    let description = cx.form.get("Description").map(str::to_string);
    if let Some(d) = &description {
        validate::description("description", d, 1000)?;
    }
    let tags = create_tags(cx)?;
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
    create_new(
        cx,
        &name,
        format!("Role with name {name} already exists."),
        |s, n| s.role(n).is_some(),
        |s| &mut s.roles,
        &role,
    )
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
    cx.page_of("Roles", found, |x, r| xml::role(x, r, RoleView::Listed))
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
    delete_identity(cx, Holder::Role, |s, k| {
        if s.instance_profiles_of_role(k).next().is_some() {
            return Some("remove roles from instance profile");
        }
        Holder::Role.policies_in_the_way(s, k)
    })
    .await
}

/// TagRole and UntagRole.
pub async fn retag(
    cx: &Ctx<'_>,
    change: fn(&Ctx) -> Result<Retag, IamError>,
) -> Result<String, IamError> {
    let change = change(cx)?;
    change_role(cx, |r| change.apply(&mut r.tags)).await?;
    Ok(cx.done())
}

pub fn list_tags(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("RoleName")?;
    let snap = cx.iam.snapshot();
    let role = snap.state().role(name).ok_or_else(|| no_such_role(name))?;
    tags_page(cx, &role.tags)
}
