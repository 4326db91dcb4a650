//! The IAM query API (version 2010-05-08): users, groups, roles, managed
//! and inline policies, access keys and instance profiles, answered with
//! IAM's XML.
//!
//! Every write goes through [`Iam::mutate`]; random ids, secrets and the
//! time are computed before it, so a retried change is the same change.
//! Modules: [`form`] reads parameters and pages lists, [`xml`] writes
//! responses, [`validate`] holds IAM's input rules; one module per
//! resource family answers its operations.

mod access_keys;
mod actions;
mod attachments;
mod form;
mod groups;
mod instance_profiles;
mod policies;
mod roles;
mod users;
mod validate;
mod xml;

#[cfg(test)]
mod tests;

use crate::QueryRequest;
use crate::caller::Caller;
use crate::error::IamError;
use crate::state::Iam;
use attachments::Holder;
use form::Form;
use std::time::UNIX_EPOCH;

/// What every operation reads: the parameters, the caller and the time.
pub(crate) struct Ctx<'a> {
    pub iam: &'a Iam,
    pub form: Form,
    pub action: &'a str,
    pub request_id: &'a str,
    pub caller: &'a Caller,
    /// Seconds since the epoch.
    pub now: u64,
}

impl Ctx<'_> {
    fn account(&self) -> String {
        self.iam.account().to_string()
    }

    /// The body of an action without a result element.
    fn done(&self) -> String {
        xml::no_result(self.action, self.request_id)
    }

    fn response(&self) -> xml::Xml {
        xml::response(self.action, self.request_id)
    }

    /// A List call's answer: one page of `items` as the members of
    /// `element`, each written by `each`, then the paging elements.
    fn page_of<T>(
        &self,
        element: &str,
        items: Vec<T>,
        each: impl FnMut(&mut xml::Xml, &T),
    ) -> Result<String, IamError> {
        let (page, next) = form::page(&self.form, items)?;
        let mut x = self.response();
        x.members(element, &page, each);
        xml::paging(&mut x, next.as_deref());
        Ok(x.finish())
    }

    /// A response whose result is the one element `element`, written by `body`.
    fn answer(&self, element: &str, body: impl FnOnce(&mut xml::Xml)) -> String {
        let mut x = self.response();
        x.open(element);
        body(&mut x);
        x.close(element);
        x.finish()
    }
}

/// Answer one IAM request (already authenticated and authorized by the
/// front door) with its XML body.
pub async fn handle(iam: &Iam, req: &QueryRequest<'_>) -> Result<String, IamError> {
    let action = req.action();
    let cx = Ctx {
        iam,
        form: Form::from_params(req.params),
        action,
        request_id: req.request_id,
        caller: req.caller,
        now: req
            .facts
            .now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    match action {
        "CreateUser" => users::create(&cx).await,
        "GetUser" => users::get(&cx),
        "ListUsers" => users::list(&cx),
        "UpdateUser" => attachments::rename(&cx, Holder::User).await,
        "DeleteUser" => users::delete(&cx).await,
        "TagUser" => users::retag(&cx, Retag::add).await,
        "UntagUser" => users::retag(&cx, Retag::remove).await,
        "ListUserTags" => users::list_tags(&cx),

        "CreateGroup" => groups::create(&cx).await,
        "GetGroup" => groups::get(&cx),
        "ListGroups" => groups::list(&cx),
        "UpdateGroup" => attachments::rename(&cx, Holder::Group).await,
        "DeleteGroup" => groups::delete(&cx).await,
        "AddUserToGroup" => groups::add_user(&cx).await,
        "RemoveUserFromGroup" => groups::remove_user(&cx).await,
        "ListGroupsForUser" => groups::list_for_user(&cx),

        "CreateRole" => roles::create(&cx).await,
        "GetRole" => roles::get(&cx),
        "ListRoles" => roles::list(&cx),
        "UpdateRole" => roles::update(&cx).await,
        "UpdateRoleDescription" => roles::update_description(&cx).await,
        "UpdateAssumeRolePolicy" => roles::update_trust(&cx).await,
        "DeleteRole" => roles::delete(&cx).await,
        "TagRole" => roles::retag(&cx, Retag::add).await,
        "UntagRole" => roles::retag(&cx, Retag::remove).await,
        "ListRoleTags" => roles::list_tags(&cx),

        "CreatePolicy" => policies::create(&cx).await,
        "GetPolicy" => policies::get(&cx),
        "ListPolicies" => policies::list(&cx),
        "DeletePolicy" => policies::delete(&cx).await,
        "CreatePolicyVersion" => policies::create_version(&cx).await,
        "GetPolicyVersion" => policies::get_version(&cx),
        "ListPolicyVersions" => policies::list_versions(&cx),
        "DeletePolicyVersion" => policies::delete_version(&cx).await,
        "SetDefaultPolicyVersion" => policies::set_default_version(&cx).await,
        "ListEntitiesForPolicy" => policies::list_entities(&cx),
        "TagPolicy" => policies::retag(&cx, Retag::add).await,
        "UntagPolicy" => policies::retag(&cx, Retag::remove).await,
        "ListPolicyTags" => policies::list_tags(&cx),

        "AttachUserPolicy" => attachments::attach(&cx, Holder::User).await,
        "AttachGroupPolicy" => attachments::attach(&cx, Holder::Group).await,
        "AttachRolePolicy" => attachments::attach(&cx, Holder::Role).await,
        "DetachUserPolicy" => attachments::detach(&cx, Holder::User).await,
        "DetachGroupPolicy" => attachments::detach(&cx, Holder::Group).await,
        "DetachRolePolicy" => attachments::detach(&cx, Holder::Role).await,
        "ListAttachedUserPolicies" => attachments::list_attached(&cx, Holder::User),
        "ListAttachedGroupPolicies" => attachments::list_attached(&cx, Holder::Group),
        "ListAttachedRolePolicies" => attachments::list_attached(&cx, Holder::Role),
        "PutUserPolicy" => attachments::put_inline(&cx, Holder::User).await,
        "PutGroupPolicy" => attachments::put_inline(&cx, Holder::Group).await,
        "PutRolePolicy" => attachments::put_inline(&cx, Holder::Role).await,
        "GetUserPolicy" => attachments::get_inline(&cx, Holder::User),
        "GetGroupPolicy" => attachments::get_inline(&cx, Holder::Group),
        "GetRolePolicy" => attachments::get_inline(&cx, Holder::Role),
        "DeleteUserPolicy" => attachments::delete_inline(&cx, Holder::User).await,
        "DeleteGroupPolicy" => attachments::delete_inline(&cx, Holder::Group).await,
        "DeleteRolePolicy" => attachments::delete_inline(&cx, Holder::Role).await,
        "ListUserPolicies" => attachments::list_inline(&cx, Holder::User),
        "ListGroupPolicies" => attachments::list_inline(&cx, Holder::Group),
        "ListRolePolicies" => attachments::list_inline(&cx, Holder::Role),

        "CreateAccessKey" => access_keys::create(&cx).await,
        "ListAccessKeys" => access_keys::list(&cx),
        "UpdateAccessKey" => access_keys::update(&cx).await,
        "DeleteAccessKey" => access_keys::delete(&cx).await,
        "GetAccessKeyLastUsed" => access_keys::last_used(&cx),

        "CreateInstanceProfile" => instance_profiles::create(&cx).await,
        "GetInstanceProfile" => instance_profiles::get(&cx),
        "ListInstanceProfiles" => instance_profiles::list(&cx),
        "DeleteInstanceProfile" => instance_profiles::delete(&cx).await,
        "AddRoleToInstanceProfile" => instance_profiles::add_role(&cx).await,
        "RemoveRoleFromInstanceProfile" => instance_profiles::remove_role(&cx).await,
        "ListInstanceProfilesForRole" => instance_profiles::list_for_role(&cx),
        "TagInstanceProfile" => instance_profiles::retag(&cx, Retag::add).await,
        "UntagInstanceProfile" => instance_profiles::retag(&cx, Retag::remove).await,
        "ListInstanceProfileTags" => instance_profiles::list_tags(&cx),

        "GetAccountSummary" => users::account_summary(&cx),

        other if actions::is_iam_action(other) => {
            Err(IamError::Unsupported(other.to_string(), "iam"))
        }
        other => Err(IamError::InvalidAction(other.to_string(), "2010-05-08")),
    }
}

/// `arn:aws:iam::ACCT:{kind}{path}{name}`.
fn arn(cx: &Ctx, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{}:{kind}{path}{name}", cx.account())
}

/// The name (`param`, checked as `member`, at most `max` characters) and
/// the Path (default `/`) of a Create call.
fn name_and_path(
    cx: &Ctx,
    param: &str,
    member: &str,
    max: usize,
) -> Result<(String, String), IamError> {
    let name = cx.form.required(param)?.to_string();
    validate::name(member, &name, max)?;
    let path = cx.form.get("Path").unwrap_or("/").to_string();
    validate::path("path", &path)?;
    Ok((name, path))
}

/// Store `value` as `name` in the map `map` picks, unless `exists` finds
/// that name taken: then EntityAlreadyExists with `taken`.
async fn create_new<T: Clone>(
    cx: &Ctx<'_>,
    name: &str,
    taken: String,
    exists: fn(&crate::model::IamState, &str) -> bool,
    map: fn(&mut crate::model::IamState) -> &mut std::collections::BTreeMap<String, T>,
    value: &T,
) -> Result<(), IamError> {
    cx.iam
        .mutate(|s| {
            if exists(s, name) {
                return Err(IamError::EntityAlreadyExists(taken.clone()));
            }
            map(s).insert(name.to_string(), value.clone());
            Ok(())
        })
        .await
}

/// The optional Tags of a Create call, at most 50.
fn create_tags(cx: &Ctx) -> Result<Vec<crate::model::Tag>, IamError> {
    let tags = form::tags(&cx.form, "Tags")?;
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    Ok(tags)
}

/// What a TagX or UntagX call does to a resource's tags.
enum Retag {
    Add(Vec<crate::model::Tag>),
    Remove(Vec<String>),
}

impl Retag {
    /// TagX: the Tags to merge in.
    fn add(cx: &Ctx) -> Result<Self, IamError> {
        required_tags(cx).map(Retag::Add)
    }

    /// UntagX: the TagKeys to drop.
    fn remove(cx: &Ctx) -> Result<Self, IamError> {
        tag_keys(cx).map(Retag::Remove)
    }

    fn apply(&self, tags: &mut Vec<crate::model::Tag>) -> Result<(), IamError> {
        match self {
            Retag::Add(new) => merge_tags(tags, new),
            Retag::Remove(keys) => {
                tags.retain(|t| !keys.contains(&t.key));
                Ok(())
            }
        }
    }
}

/// Merge `new` tags into `tags` (a key given again replaces its value),
/// within IAM's 50 tags per resource.
fn merge_tags(
    tags: &mut Vec<crate::model::Tag>,
    new: &[crate::model::Tag],
) -> Result<(), IamError> {
    let mut merged = tags.clone();
    for t in new {
        match merged.iter_mut().find(|m| m.key == t.key) {
            Some(m) => m.value = t.value.clone(),
            None => merged.push(t.clone()),
        }
    }
    if merged.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    *tags = merged;
    Ok(())
}

/// The TagKeys of an Untag call (required, at least one).
fn tag_keys(cx: &Ctx) -> Result<Vec<String>, IamError> {
    let keys = cx.form.strings("TagKeys");
    if keys.is_empty() {
        cx.form.required("TagKeys")?;
    }
    Ok(keys)
}

/// The Tags of a Tag call (required, at least one).
fn required_tags(cx: &Ctx) -> Result<Vec<crate::model::Tag>, IamError> {
    let tags = form::tags(&cx.form, "Tags")?;
    if tags.is_empty() {
        cx.form.required("Tags")?;
    }
    Ok(tags)
}

/// ListXTags' answer: one page of tags.
fn tags_page(cx: &Ctx, tags: &[crate::model::Tag]) -> Result<String, IamError> {
    let (page, next) = form::page(&cx.form, tags.to_vec())?;
    let mut x = cx.response();
    xml::tags(&mut x, "Tags", &page);
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

/// The PathPrefix filter of List calls (default `/`).
fn path_prefix<'a>(cx: &'a Ctx<'_>) -> Result<&'a str, IamError> {
    let prefix = cx.form.get("PathPrefix").unwrap_or("/");
    validate::path_prefix(prefix)?;
    Ok(prefix)
}
