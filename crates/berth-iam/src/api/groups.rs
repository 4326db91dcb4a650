//! Groups and their members: CreateGroup, GetGroup, ListGroups,
//! UpdateGroup, DeleteGroup, AddUserToGroup, RemoveUserFromGroup,
//! ListGroupsForUser.

use super::users::{self, no_such_user};
use super::{Ctx, arn, form, path_prefix, validate, xml};
use crate::error::IamError;
use crate::model::{Group, IamState, User};

pub fn no_such_group(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The group with name {name} cannot be found."))
}

pub fn key(state: &IamState, name: &str) -> Result<String, IamError> {
    state.group_key(name).ok_or_else(|| no_such_group(name))
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("GroupName")?.to_string();
    validate::name("groupName", &name, 128)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    let group = Group {
        arn: arn(cx, "group", &path, &name),
        id: validate::random_id("AGPA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        inline_policies: Default::default(),
        attached_policies: Vec::new(),
    };
    cx.iam
        .mutate(|s| {
            if s.group(&name).is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Group with name {name} already exists."
                )));
            }
            s.groups.insert(name.clone(), group.clone());
            Ok(())
        })
        .await?;
    let mut x = cx.response();
    x.open("Group");
    xml::group(&mut x, &group);
    x.close("Group");
    Ok(x.finish())
}

pub fn get(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("GroupName")?;
    let snap = cx.iam.snapshot();
    let group = snap
        .state()
        .group(name)
        .ok_or_else(|| no_such_group(name))?;
    let members: Vec<&User> = snap
        .state()
        .users
        .values()
        .filter(|u| u.groups.contains(&group.name))
        .collect();
    let (page, next) = form::page(&cx.form, members)?;
    let mut x = cx.response();
    x.open("Group");
    xml::group(&mut x, group);
    x.close("Group");
    x.members("Users", &page, |x, u| xml::user(x, u, false));
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let prefix = path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let found: Vec<&Group> = snap
        .state()
        .groups
        .values()
        .filter(|g| g.path.starts_with(prefix))
        .collect();
    list_answer(cx, found)
}

fn list_answer(cx: &Ctx, found: Vec<&Group>) -> Result<String, IamError> {
    let (page, next) = form::page(&cx.form, found)?;
    let mut x = cx.response();
    x.members("Groups", &page, |x, g| xml::group(x, g));
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

pub fn list_for_user(cx: &Ctx) -> Result<String, IamError> {
    let name = cx.form.required("UserName")?;
    let snap = cx.iam.snapshot();
    let user = snap.state().user(name).ok_or_else(|| no_such_user(name))?;
    let found: Vec<&Group> = user
        .groups
        .iter()
        .filter_map(|g| snap.state().group(g))
        .collect();
    list_answer(cx, found)
}

pub async fn update(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("GroupName")?.to_string();
    let new_name = cx.form.get("NewGroupName").map(str::to_string);
    let new_path = cx.form.get("NewPath").map(str::to_string);
    if let Some(n) = &new_name {
        validate::name("newGroupName", n, 128)?;
    }
    if let Some(p) = &new_path {
        validate::path("newPath", p)?;
    }
    let account = cx.account();
    cx.iam
        .mutate(|s| {
            let old = key(s, &name)?;
            let target = new_name.clone().unwrap_or_else(|| old.clone());
            if s.group(&target).is_some_and(|g| g.name != old) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Group with name {target} already exists."
                )));
            }
            let Some(mut group) = s.groups.remove(&old) else {
                return Err(no_such_group(&name));
            };
            group.name = target.clone();
            if let Some(p) = &new_path {
                group.path = p.clone();
            }
            group.arn = format!("arn:aws:iam::{account}:group{}{}", group.path, group.name);
            s.groups.insert(target.clone(), group);
            for u in s.users.values_mut() {
                for g in u.groups.iter_mut().filter(|g| **g == old) {
                    *g = target.clone();
                }
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = cx.form.required("GroupName")?.to_string();
    cx.iam
        .mutate(|s| {
            let k = key(s, &name)?;
            let conflict = |what: &str| {
                Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, must {what} first."
                )))
            };
            if s.users.values().any(|u| u.groups.contains(&k)) {
                return conflict("remove users from group");
            }
            let Some(group) = s.groups.get(&k) else {
                return Err(no_such_group(&name));
            };
            if !group.inline_policies.is_empty() {
                return conflict("delete policies");
            }
            if !group.attached_policies.is_empty() {
                return conflict("detach all policies");
            }
            s.groups.remove(&k);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn add_user(cx: &Ctx<'_>) -> Result<String, IamError> {
    let group = cx.form.required("GroupName")?.to_string();
    let user = cx.form.required("UserName")?.to_string();
    cx.iam
        .mutate(|s| {
            let g = key(s, &group)?;
            let u = users::key(s, &user)?;
            let Some(record) = s.users.get_mut(&u) else {
                return Err(no_such_user(&user));
            };
            if !record.groups.contains(&g) {
                if record.groups.len() >= 10 {
                    return Err(IamError::LimitExceeded(
                        "Cannot exceed quota for GroupsPerUser: 10".into(),
                    ));
                }
                record.groups.push(g);
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn remove_user(cx: &Ctx<'_>) -> Result<String, IamError> {
    let group = cx.form.required("GroupName")?.to_string();
    let user = cx.form.required("UserName")?.to_string();
    cx.iam
        .mutate(|s| {
            let g = key(s, &group)?;
            let u = users::key(s, &user)?;
            let Some(record) = s.users.get_mut(&u) else {
                return Err(no_such_user(&user));
            };
            if !record.groups.contains(&g) {
                return Err(no_such_user(&user));
            }
            record.groups.retain(|x| *x != g);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}
