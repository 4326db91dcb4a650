//! Access keys: CreateAccessKey (the only answer that carries the secret),
//! ListAccessKeys, UpdateAccessKey, DeleteAccessKey, GetAccessKeyLastUsed.
//! Secrets are stored only sealed with the master key.

use super::users::{self, no_such_user, user_name_or_caller};
use super::{Ctx, validate, xml};
use crate::caller::CallerKind;
use crate::error::IamError;
use crate::model::AccessKey;

fn no_such_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
}

pub async fn create(cx: &Ctx<'_>) -> Result<String, IamError> {
    let name = user_name_or_caller(cx)?.to_string();
    let id = validate::random_id("AKIA", 16);
    let secret = validate::random_secret();
    let sealed = cx.iam.key().seal(&id, secret.as_bytes());
    let now = cx.now;
    let key = cx
        .iam
        .mutate(|s| {
            let user = users::key(s, &name)?;
            if s.access_keys
                .values()
                .filter(|k| k.user_name == user)
                .count()
                >= 2
            {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for AccessKeysPerUser: 2".into(),
                ));
            }
            let key = AccessKey {
                access_key_id: id.clone(),
                user_name: user,
                secret: sealed.clone(),
                status: "Active".into(),
                created_at: now,
            };
            s.access_keys.insert(id.clone(), key.clone());
            Ok(key)
        })
        .await?;
    let mut x = cx.response();
    x.open("AccessKey")
        .text("UserName", &key.user_name)
        .text("AccessKeyId", &key.access_key_id)
        .text("Status", &key.status)
        .text("SecretAccessKey", &secret)
        .text("CreateDate", &xml::date(key.created_at))
        .close("AccessKey");
    Ok(x.finish())
}

pub fn list(cx: &Ctx) -> Result<String, IamError> {
    let snap = cx.iam.snapshot();
    let s = snap.state();
    // The root's own key lives outside IAM's records: it lists none.
    let keys: Vec<&AccessKey> =
        if cx.form.get("UserName").is_none() && matches!(cx.caller.kind, CallerKind::Root) {
            Vec::new()
        } else {
            let name = user_name_or_caller(cx)?;
            let user = s.user(name).ok_or_else(|| no_such_user(name))?;
            s.access_keys
                .values()
                .filter(|k| k.user_name == user.name)
                .collect()
        };
    cx.page_of("AccessKeyMetadata", keys, |x, k| {
        x.text("UserName", &k.user_name)
            .text("AccessKeyId", &k.access_key_id)
            .text("Status", &k.status)
            .text("CreateDate", &xml::date(k.created_at));
    })
}

/// Whether key `id` belongs to the user the call is about (named, or the
/// caller); a key of another user answers as not found, as IAM does.
fn check_owner(cx: &Ctx, s: &crate::model::IamState, id: &str) -> Result<(), IamError> {
    let key = s.access_keys.get(id).ok_or_else(|| no_such_key(id))?;
    if cx.form.get("UserName").is_none() && matches!(cx.caller.kind, CallerKind::Root) {
        // The root may manage any user's key by its id alone.
        return Ok(());
    }
    let name = user_name_or_caller(cx)?;
    let user = s.user(name).ok_or_else(|| no_such_user(name))?;
    if key.user_name != user.name {
        return Err(no_such_key(id));
    }
    Ok(())
}

pub async fn update(cx: &Ctx<'_>) -> Result<String, IamError> {
    let id = cx.form.required("AccessKeyId")?.to_string();
    let status = cx.form.required("Status")?.to_string();
    if status != "Active" && status != "Inactive" {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
        )));
    }
    cx.iam
        .mutate(|s| {
            check_owner(cx, s, &id)?;
            let key = s.access_keys.get_mut(&id).ok_or_else(|| no_such_key(&id))?;
            key.status = status.clone();
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

pub async fn delete(cx: &Ctx<'_>) -> Result<String, IamError> {
    let id = cx.form.required("AccessKeyId")?.to_string();
    cx.iam
        .mutate(|s| {
            check_owner(cx, s, &id)?;
            s.access_keys.remove(&id);
            Ok(())
        })
        .await?;
    Ok(cx.done())
}

/// Berth does not record key use, so every key answers as never used.
pub fn last_used(cx: &Ctx) -> Result<String, IamError> {
    let id = cx.form.required("AccessKeyId")?;
    let snap = cx.iam.snapshot();
    let key = snap
        .state()
        .access_keys
        .get(id)
        .ok_or_else(|| no_such_key(id))?;
    let mut x = cx.response();
    x.text("UserName", &key.user_name)
        .open("AccessKeyLastUsed")
        .text("ServiceName", "N/A")
        .text("Region", "N/A")
        .close("AccessKeyLastUsed");
    Ok(x.finish())
}
