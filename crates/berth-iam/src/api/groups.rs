//! Groups and their members: CreateGroup, GetGroup, ListGroups,
//! UpdateGroup, DeleteGroup, AddUserToGroup, RemoveUserFromGroup,
//! ListGroupsForUser.

use super::attachments::{Holder, delete_identity};
use super::users::{self, no_such_user};
use super::{Ctx, arn, create_new, form, name_and_path, path_prefix, validate, xml};
use crate::error::IamError;
use crate::model::{Group, IamState, User};

pub fn no_such_group(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The group with name {name} cannot be found."))
}

pub fn key(state: &IamState, name: &str) -> Result<String, IamError> {
    state.group_key(name).ok_or_else(|| no_such_group(name))
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let (name, path) = name_and_path(cx, "GroupName", "groupName", 128)?;
    let group = Group {
        arn: arn(cx, "group", &path, &name),
        id: validate::random_id("AGPA", 17),
        name: name.clone(),
        path,
        created_at: cx.now,
        inline_policies: Default::default(),
        attached_policies: Vec::new(),
    };
    create_new(
        cx,
        &name,
        format!("Group with name {name} already exists."),
        |s, n| s.group(n).is_some(),
        |s| &mut s.groups,
        &group,
    )
    .await?;
    Ok(cx.answer("Group", |x| xml::group(x, &group)))
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
    cx.page_of("Groups", found, |x, g| xml::group(x, g))
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

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    delete_identity(cx, Holder::Group, |s, k| {
        if s.users.values().any(|u| u.groups.iter().any(|g| g == k)) {
            return Some("remove users from group");
        }
        Holder::Group.policies_in_the_way(s, k)
    })
    .await
}

/// Apply `change` to the user named by `UserName` (as given: `user`),
/// given the key of the group named by `GroupName`.
async fn with_member(
    cx: &Ctx<'_>,
    change: impl Fn(&mut User, String, &str) -> Result<(), IamError>,
) -> Result<String, IamError> {
    let group = cx.form.required("GroupName")?.to_string();
    let user = cx.form.required("UserName")?.to_string();
    cx.iam
        .mutate(|s| {
            let g = key(s, &group)?;
            let u = users::key(s, &user)?;
            let Some(record) = s.users.get_mut(&u) else {
                return Err(no_such_user(&user));
            };
            change(record, g, &user)
        })
        .await?;
    Ok(cx.done())
}

pub async fn add_user(cx: &Ctx<'_>) -> Result<String, IamError> {
    with_member(cx, |record, g, _| {
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
    .await
}

pub async fn remove_user(cx: &Ctx<'_>) -> Result<String, IamError> {
    with_member(cx, |record, g, user| {
        if !record.groups.contains(&g) {
            return Err(no_such_user(user));
        }
        record.groups.retain(|x| *x != g);
        Ok(())
    })
    .await
}
