//! Policies of users, groups and roles, which IAM treats alike:
//! Attach/Detach/ListAttached{User,Group,Role}Policies and the inline
//! Put/Get/Delete/List{User,Group,Role}Policy calls.

use super::groups::no_such_group;
use super::policies::not_found;
use super::roles::no_such_role;
use super::users::no_such_user;
use super::{Ctx, form, validate, xml};
use crate::builtin;
use crate::error::IamError;
use crate::model::IamState;
use std::collections::BTreeMap;

/// Which kind of identity holds the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    User,
    Group,
    Role,
}

/// An identity's inline policies (name → document) and attached ARNs.
type Slots<'s> = (&'s mut BTreeMap<String, String>, &'s mut Vec<String>);

impl Holder {
    fn name_param(self) -> &'static str {
        match self {
            Holder::User => "UserName",
            Holder::Group => "GroupName",
            Holder::Role => "RoleName",
        }
    }

    /// The noun capitalized, as in "User with name ...".
    fn title(self) -> &'static str {
        match self {
            Holder::User => "User",
            Holder::Group => "Group",
            Holder::Role => "Role",
        }
    }

    /// The longest name IAM accepts.
    fn max_name(self) -> usize {
        match self {
            Holder::User | Holder::Role => 64,
            Holder::Group => 128,
        }
    }

    /// The map key of the identity named `name` (ignoring case).
    pub fn key(self, s: &IamState, name: &str) -> Result<String, IamError> {
        let found = match self {
            Holder::User => s.user_key(name),
            Holder::Group => s.group_key(name),
            Holder::Role => s.role_key(name),
        };
        found.ok_or_else(|| self.missing(name))
    }

    fn remove(self, s: &mut IamState, key: &str) {
        match self {
            Holder::User => drop(s.users.remove(key)),
            Holder::Group => drop(s.groups.remove(key)),
            Holder::Role => drop(s.roles.remove(key)),
        }
    }

    /// What must go before the identity `key` can be deleted, as far as
    /// its policies go (IAM checks a role's attached policies first).
    pub fn policies_in_the_way(self, s: &IamState, key: &str) -> Option<&'static str> {
        let (inline, attached) = self.view(s, key).ok()?;
        let inline = (!inline.is_empty()).then_some("delete policies");
        let attached = (!attached.is_empty()).then_some("detach all policies");
        match self {
            Holder::Role => attached.or(inline),
            Holder::User | Holder::Group => inline.or(attached),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Holder::User => "user",
            Holder::Group => "group",
            Holder::Role => "role",
        }
    }

    /// IAM's quota on the total size of an identity's inline policies.
    fn inline_quota(self) -> usize {
        match self {
            Holder::User => 2048,
            Holder::Group => 5120,
            Holder::Role => 10240,
        }
    }

    fn quota(self) -> &'static str {
        match self {
            Holder::User => "PoliciesPerUser",
            Holder::Group => "PoliciesPerGroup",
            Holder::Role => "PoliciesPerRole",
        }
    }

    fn missing(self, name: &str) -> IamError {
        match self {
            Holder::User => no_such_user(name),
            Holder::Group => no_such_group(name),
            Holder::Role => no_such_role(name),
        }
    }

    fn slots<'s>(self, s: &'s mut IamState, name: &str) -> Result<Slots<'s>, IamError> {
        let found = match self {
            Holder::User => {
                let k = s.user_key(name);
                k.and_then(|k| s.users.get_mut(&k))
                    .map(|u| (&mut u.inline_policies, &mut u.attached_policies))
            }
            Holder::Group => {
                let k = s.group_key(name);
                k.and_then(|k| s.groups.get_mut(&k))
                    .map(|g| (&mut g.inline_policies, &mut g.attached_policies))
            }
            Holder::Role => {
                let k = s.role_key(name);
                k.and_then(|k| s.roles.get_mut(&k))
                    .map(|r| (&mut r.inline_policies, &mut r.attached_policies))
            }
        };
        found.ok_or_else(|| self.missing(name))
    }

    fn view<'s>(
        self,
        s: &'s IamState,
        name: &str,
    ) -> Result<(&'s BTreeMap<String, String>, &'s [String]), IamError> {
        let found = match self {
            Holder::User => s
                .user(name)
                .map(|u| (&u.inline_policies, u.attached_policies.as_slice())),
            Holder::Group => s
                .group(name)
                .map(|g| (&g.inline_policies, g.attached_policies.as_slice())),
            Holder::Role => s
                .role(name)
                .map(|r| (&r.inline_policies, r.attached_policies.as_slice())),
        };
        found.ok_or_else(|| self.missing(name))
    }
}

/// Count one more (or one fewer) attachment of `arn`.
fn count_attachment(s: &mut IamState, arn: &str, up: bool) {
    if builtin::aws_managed_info(arn).is_some() {
        let n = s.aws_policy_attachments.entry(arn.to_string()).or_insert(0);
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
        if *n == 0 {
            s.aws_policy_attachments.remove(arn);
        }
    } else if let Some(p) = s.policies.get_mut(arn) {
        p.attachment_count = if up {
            p.attachment_count + 1
        } else {
            p.attachment_count.saturating_sub(1)
        };
    }
}

pub async fn attach(cx: &Ctx<'_>, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    let arn = cx.form.required("PolicyArn")?.to_string();
    cx.iam
        .mutate(|s| {
            let exists = builtin::aws_managed_info(&arn).is_some() || s.policies.contains_key(&arn);
            let (_, attached) = holder.slots(s, &name)?;
            if !exists {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} does not exist or is not attachable."
                )));
            }
            if attached.contains(&arn) {
                return Ok(());
            }
            if attached.len() >= 10 {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for {}: 10",
                    holder.quota()
                )));
            }
            attached.push(arn.clone());
            count_attachment(s, &arn, true);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn detach(cx: &Ctx<'_>, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    let arn = cx.form.required("PolicyArn")?.to_string();
    cx.iam
        .mutate(|s| {
            let (_, attached) = holder.slots(s, &name)?;
            if !attached.contains(&arn) {
                return Err(not_found(&arn));
            }
            attached.retain(|a| *a != arn);
            count_attachment(s, &arn, false);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub fn list_attached(cx: &Ctx, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?;
    let prefix = super::path_prefix(cx)?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    let (_, attached) = holder.view(s, name)?;
    // (name, arn) of each attached policy under the path prefix.
    let found: Vec<(String, String)> = attached
        .iter()
        .filter_map(|arn| match builtin::aws_managed_info(arn) {
            Some(p) => Some((p.path, p.name.to_string(), arn)),
            None => s
                .policies
                .get(arn)
                .map(|p| (p.path.as_str(), p.name.clone(), arn)),
        })
        .filter(|(path, _, _)| path.starts_with(prefix))
        .map(|(_, n, a)| (n, a.clone()))
        .collect();
    cx.page_of("AttachedPolicies", found, |x, (n, a)| {
        x.text("PolicyName", n).text("PolicyArn", a);
    })
}

fn no_such_inline(holder: Holder, policy: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "The {} policy with name {policy} cannot be found.",
        holder.noun()
    ))
}

pub async fn put_inline(cx: &Ctx<'_>, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    let policy = cx.form.required("PolicyName")?.to_string();
    validate::name("policyName", &policy, 128)?;
    let document = cx.form.required("PolicyDocument")?.to_string();
    validate::policy_document(&document)?;
    cx.iam
        .mutate(|s| {
            let (inline, _) = holder.slots(s, &name)?;
            inline.insert(policy.clone(), document.clone());
            let total: usize = inline.values().map(|d| validate::policy_size(d)).sum();
            if total > holder.inline_quota() {
                // Nothing is written: mutate drops the changed copy on error.
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {} bytes exceeded for {} {name}",
                    holder.inline_quota(),
                    holder.noun()
                )));
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub fn get_inline(cx: &Ctx, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?;
    let policy = cx.form.required("PolicyName")?;
    let snap = cx.iam.snapshot();
    let s = snap.state();
    let (inline, _) = holder.view(s, name)?;
    let document = inline
        .get(policy)
        .ok_or_else(|| no_such_inline(holder, policy))?;
    // The holder's name as stored, not as asked (names ignore case).
    let stored = match holder {
        Holder::User => s.user(name).map(|u| u.name.as_str()),
        Holder::Group => s.group(name).map(|g| g.name.as_str()),
        Holder::Role => s.role(name).map(|r| r.name.as_str()),
    }
    .unwrap_or(name);
    let mut x = cx.response();
    x.text(holder.name_param(), stored)
        .text("PolicyName", policy)
        .text("PolicyDocument", &xml::url_encode(document));
    Ok(x.finish())
}

pub async fn delete_inline(cx: &Ctx<'_>, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    let policy = cx.form.required("PolicyName")?.to_string();
    cx.iam
        .mutate(|s| {
            let (inline, _) = holder.slots(s, &name)?;
            inline
                .remove(&policy)
                .map(|_| ())
                .ok_or_else(|| no_such_inline(holder, &policy))
        })
        .await?;
    Ok(cx.done())
}

pub fn list_inline(cx: &Ctx, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?;
    let snap = cx.iam.snapshot();
    let (inline, _) = holder.view(snap.state(), name)?;
    let names: Vec<String> = inline.keys().cloned().collect();
    let (page, next) = form::page(&cx.form, names)?;
    let mut x = cx.response();
    x.strings("PolicyNames", &page);
    xml::paging(&mut x, next.as_deref());
    Ok(x.finish())
}

/// DeleteUser, DeleteGroup and DeleteRole: refused while `in_the_way`
/// names something that must go first.
pub async fn delete_identity(
    cx: &Ctx<'_>,
    holder: Holder,
    in_the_way: impl Fn(&IamState, &str) -> Option<&'static str>,
) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    cx.iam
        .mutate(|s| {
            let k = holder.key(s, &name)?;
            if let Some(what) = in_the_way(s, &k) {
                return Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, must {what} first."
                )));
            }
            holder.remove(s, &k);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

/// Give the entry `old` of `map` the name `target` and, if given, the path
/// `path`; `naming` yields its name, path and ARN fields.
fn move_entry<T>(
    map: &mut BTreeMap<String, T>,
    old: &str,
    target: &str,
    path: Option<&String>,
    arn: impl Fn(&str, &str) -> String,
    naming: fn(&mut T) -> (&mut String, &mut String, &mut String),
) -> bool {
    let Some(mut entry) = map.remove(old) else {
        return false;
    };
    let (n, p, a) = naming(&mut entry);
    *n = target.to_string();
    if let Some(path) = path {
        *p = path.clone();
    }
    *a = arn(p, n);
    map.insert(target.to_string(), entry);
    true
}

/// UpdateUser and UpdateGroup: a new name and/or path.
pub async fn rename(cx: &Ctx<'_>, holder: Holder) -> Result<String, IamError> {
    let name = cx.form.required(holder.name_param())?.to_string();
    let title = holder.title();
    let new_name = cx.form.get(&format!("New{title}Name")).map(str::to_string);
    let new_path = cx.form.get("NewPath").map(str::to_string);
    if let Some(n) = &new_name {
        validate::name(&format!("new{title}Name"), n, holder.max_name())?;
    }
    if let Some(p) = &new_path {
        validate::path("newPath", p)?;
    }
    let account = cx.account();
    let noun = holder.noun();
    let arn = |path: &str, name: &str| format!("arn:aws:iam::{account}:{noun}{path}{name}");
    cx.iam
        .mutate(|s| {
            let old = holder.key(s, &name)?;
            let target = new_name.clone().unwrap_or_else(|| old.clone());
            if holder.key(s, &target).is_ok_and(|k| k != old) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "{title} with name {target} already exists."
                )));
            }
            let (p, t) = (new_path.as_ref(), target.as_str());
            let moved = match holder {
                Holder::User => move_entry(&mut s.users, &old, t, p, arn, |u| {
                    (&mut u.name, &mut u.path, &mut u.arn)
                }),
                Holder::Group => move_entry(&mut s.groups, &old, t, p, arn, |g| {
                    (&mut g.name, &mut g.path, &mut g.arn)
                }),
                Holder::Role => move_entry(&mut s.roles, &old, t, p, arn, |r| {
                    (&mut r.name, &mut r.path, &mut r.arn)
                }),
            };
            if !moved {
                return Err(holder.missing(&name));
            }
            // Whatever refers to the identity by name follows it.
            match holder {
                Holder::User if target != old => {
                    for k in s.access_keys.values_mut().filter(|k| k.user_name == old) {
                        k.user_name = target.clone();
                    }
                }
                Holder::Group => {
                    for u in s.users.values_mut() {
                        for g in u.groups.iter_mut().filter(|g| **g == old) {
                            *g = target.clone();
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        })
        .await?;
    Ok(cx.done())
}
