//! Account settings: PutAccountSetting, PutAccountSettingDefault,
//! DeleteAccountSetting, ListAccountSettings, and the effective value other
//! modules consult (CreateCluster reads `containerInsights`).
//!
//! ECS documents that the root user's setting *is* the account default ("if
//! the account setting for the root user is changed, it sets the default for
//! all the users and roles that no individual account setting was selected
//! for"). So one record serves both: PutAccountSettingDefault, and
//! PutAccountSetting aimed at the root user, write the record under
//! `Keys::account_setting("default", name)`; every other principal's record
//! lives under its own ARN. What a principal sees is its own record, else the
//! default record, else the AWS default of the setting.

use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use berth_arn::Arn;
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where a setting may be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Per principal, with the account default as fallback.
    Principal,
    /// Only for the whole account: PutAccountSettingDefault, or
    /// PutAccountSetting for the root user. ECS documents this for
    /// fargateTaskRetirementWaitPeriod ("you must use the root user") and
    /// only ever shows fargateFIPSMode being set with
    /// put-account-setting-default; both describe the Fargate fleet of the
    /// whole account, so a per-user value would mean nothing.
    AccountWide,
    /// Read-only: AWS manages it (type `aws_managed`). Only guardDutyActivate,
    /// which GuardDuty controls on the customer's behalf.
    AwsManaged,
}

struct Spec {
    name: &'static str,
    values: &'static [&'static str],
    /// What ECS reports when neither the principal nor the account set it.
    aws_default: &'static str,
    scope: Scope,
}

const ENABLED_DISABLED: &[&str] = &["enabled", "disabled"];
const ON_OFF: &[&str] = &["on", "off"];

/// Every setting ECS knows, in the order of the ECS model's `SettingName`
/// enum; ListAccountSettings returns them in this order.
const SETTINGS: &[Spec] = &[
    // Long ARNs: every account has been on them since 2021 and Berth only
    // issues long ARNs, so the default is enabled and disabling is refused.
    Spec { name: "serviceLongArnFormat", values: ENABLED_DISABLED, aws_default: "enabled", scope: Scope::Principal },
    Spec { name: "taskLongArnFormat", values: ENABLED_DISABLED, aws_default: "enabled", scope: Scope::Principal },
    Spec {
        name: "containerInstanceLongArnFormat",
        values: ENABLED_DISABLED,
        aws_default: "enabled",
        scope: Scope::Principal,
    },
    Spec { name: "awsvpcTrunking", values: ENABLED_DISABLED, aws_default: "disabled", scope: Scope::Principal },
    Spec {
        name: "containerInsights",
        values: &["enabled", "disabled", "enhanced"],
        aws_default: "disabled",
        scope: Scope::Principal,
    },
    Spec { name: "fargateFIPSMode", values: ENABLED_DISABLED, aws_default: "disabled", scope: Scope::AccountWide },
    // Tagging authorization has been on for every account since 2024; its
    // values are on/off, unlike the enabled/disabled of the others.
    Spec { name: "tagResourceAuthorization", values: ON_OFF, aws_default: "on", scope: Scope::Principal },
    Spec {
        name: "fargateTaskRetirementWaitPeriod",
        values: &["0", "7", "14"],
        aws_default: "7",
        scope: Scope::AccountWide,
    },
    Spec { name: "guardDutyActivate", values: ON_OFF, aws_default: "off", scope: Scope::AwsManaged },
    // ECS switched the default to non-blocking on 25 June 2025.
    Spec {
        name: "defaultLogDriverMode",
        values: &["blocking", "non-blocking"],
        aws_default: "non-blocking",
        scope: Scope::Principal,
    },
    Spec { name: "fargateEventWindows", values: ENABLED_DISABLED, aws_default: "disabled", scope: Scope::Principal },
    // Missing from the model's enum but a documented, accepted ECS setting
    // (`aws ecs put-account-setting --name dualStackIPv6`); clients do not
    // validate enums, so it reaches the server.
    Spec { name: "dualStackIPv6", values: ENABLED_DISABLED, aws_default: "disabled", scope: Scope::Principal },
];

const LONG_ARN_SETTINGS: &[&str] = &["serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat"];

/// The store's name for the root user's (= the account default's) records.
const DEFAULT_HOLDER: &str = "default";

fn spec(name: &str) -> EcsResult<&'static Spec> {
    SETTINGS.iter().find(|s| s.name == name).ok_or_else(|| {
        let valid: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        EcsError::invalid(format!("Invalid setting name '{name}'. Valid names are: {}", valid.join(", ")))
    })
}

fn validate_value(spec: &Spec, value: &str) -> EcsResult<()> {
    if !spec.values.contains(&value) {
        return Err(EcsError::invalid(format!(
            "Invalid value '{value}' for setting {}. Valid values are: {}",
            spec.name,
            spec.values.join(", ")
        )));
    }
    if value == "disabled" && LONG_ARN_SETTINGS.contains(&spec.name) {
        // ECS's own wording (Terraform matches on it when destroying a default).
        return Err(EcsError::invalid("You can no longer disable Long Arn settings"));
    }
    Ok(())
}

fn refuse_read_only(spec: &Spec) -> EcsResult<()> {
    if spec.scope == Scope::AwsManaged {
        return Err(EcsError::invalid(format!(
            "The {} account setting is read-only: Amazon GuardDuty manages it on your behalf.",
            spec.name
        )));
    }
    Ok(())
}

fn root_arn(ctx: &RequestContext) -> String {
    format!("arn:aws:iam::{}:root", ctx.account)
}

/// Who is calling, as far as account settings are concerned.
enum Caller {
    Root,
    /// Federated users have no settings of their own: they read the root
    /// user's and cannot set any.
    Federated,
    /// A user or role, by the ARN its settings are kept under.
    Principal(String),
}

fn caller(ctx: &RequestContext) -> Caller {
    let arn = ctx.principal_arn.as_str();
    if arn.ends_with(":root") {
        return Caller::Root;
    }
    if let Ok(parsed) = arn.parse::<Arn>()
        && parsed.service == "sts"
    {
        // An assumed-role session acts as its role: settings follow the
        // role, not the session that happens to be calling.
        if let Some(rest) = parsed.resource.strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or(rest);
            return Caller::Principal(format!("arn:{}:iam::{}:role/{role}", parsed.partition, parsed.account));
        }
        if parsed.resource.starts_with("federated-user/") {
            return Caller::Federated;
        }
    }
    Caller::Principal(arn.to_string())
}

/// The ARN whose settings the caller reads by default.
fn reading_holder(ctx: &RequestContext) -> String {
    match caller(ctx) {
        Caller::Root | Caller::Federated => root_arn(ctx),
        Caller::Principal(arn) => arn,
    }
}

/// The ARN a request acts on: its `principalArn` member, which only the root
/// user or that principal itself may name, else the caller.
fn target_holder(ctx: &RequestContext, principal_arn: Option<&str>, writing: bool) -> EcsResult<String> {
    let me = caller(ctx);
    let Some(given) = principal_arn.filter(|p| !p.is_empty()) else {
        return match me {
            Caller::Federated if writing => Err(EcsError::client(
                "Federated users assume the account settings of the root user and can't have explicit account settings.",
            )),
            _ => Ok(reading_holder(ctx)),
        };
    };
    let target = canonical_principal(ctx, given)?;
    let allowed = match &me {
        Caller::Root => true,
        Caller::Federated => false,
        Caller::Principal(arn) => *arn == target,
    };
    if !allowed {
        return Err(EcsError::client(format!(
            "Only the root user or the principal itself can use principalArn {given}."
        )));
    }
    Ok(target)
}

/// A `principalArn` member as the ARN its settings are kept under.
fn canonical_principal(ctx: &RequestContext, given: &str) -> EcsResult<String> {
    let bad = || {
        EcsError::invalid(format!(
            "Invalid principalArn {given}: it must be the ARN of an IAM user, an IAM role or the root user of account {}.",
            ctx.account
        ))
    };
    let arn: Arn = given.parse().map_err(|_| bad())?;
    if arn.account != ctx.account.as_str() {
        return Err(bad());
    }
    match arn.service.as_str() {
        "iam" if arn.resource == "root" => Ok(root_arn(ctx)),
        "iam" if arn.resource.len() > 5 && (arn.resource.starts_with("user/") || arn.resource.starts_with("role/")) => {
            Ok(given.to_string())
        }
        "sts" => match arn.resource.strip_prefix("assumed-role/").and_then(|r| r.split('/').next()) {
            Some(role) if !role.is_empty() => Ok(format!("arn:{}:iam::{}:role/{role}", arn.partition, arn.account)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn store_holder<'a>(ctx: &RequestContext, holder: &'a str) -> &'a str {
    if holder == root_arn(ctx) { DEFAULT_HOLDER } else { holder }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingRecord {
    name: String,
    value: String,
    principal_arn: String,
}

/// One setting as ECS renders it.
#[derive(Debug, Clone)]
struct Shown {
    name: &'static str,
    value: String,
    principal_arn: String,
    kind: &'static str,
}

impl Shown {
    fn to_json(&self) -> Value {
        json!({ "name": self.name, "value": self.value, "principalArn": self.principal_arn, "type": self.kind })
    }
}

async fn load_own(
    store: &dyn Store,
    keys: &Keys,
    ctx: &RequestContext,
    holder: &str,
    name: &str,
) -> EcsResult<Option<repo::Loaded<SettingRecord>>> {
    repo::load(store, &keys.account_setting(store_holder(ctx, holder), name)).await
}

/// The setting in effect for `holder`: its own, else the account default,
/// else the AWS default. Explicitly set values are type `user` whether set
/// for the principal or as the default (ECS reserves `aws_managed` for the
/// settings AWS controls); AWS defaults are reported as the root user's.
async fn effective(
    store: &dyn Store,
    keys: &Keys,
    ctx: &RequestContext,
    holder: &str,
    spec: &'static Spec,
) -> EcsResult<Shown> {
    let root = root_arn(ctx);
    if spec.scope == Scope::AwsManaged {
        return Ok(Shown { name: spec.name, value: spec.aws_default.into(), principal_arn: root, kind: "aws_managed" });
    }
    if let Some(own) = load_own(store, keys, ctx, holder, spec.name).await? {
        return Ok(Shown { name: spec.name, value: own.record.value, principal_arn: holder.into(), kind: "user" });
    }
    if let Some(default) = load_own(store, keys, ctx, &root, spec.name).await? {
        return Ok(Shown { name: spec.name, value: default.record.value, principal_arn: root, kind: "user" });
    }
    Ok(Shown { name: spec.name, value: spec.aws_default.into(), principal_arn: root, kind: "user" })
}

/// The value of an account setting for the caller (their own, else the
/// account default), or None when neither is set.
pub async fn effective_value(store: &dyn Store, ctx: &RequestContext, name: &str) -> EcsResult<Option<String>> {
    let keys = Keys::for_request(ctx);
    let holder = reading_holder(ctx);
    if let Some(own) = load_own(store, &keys, ctx, &holder, name).await? {
        return Ok(Some(own.record.value));
    }
    Ok(load_own(store, &keys, ctx, &root_arn(ctx), name).await?.map(|l| l.record.value))
}

async fn write(
    store: &dyn Store,
    ctx: &RequestContext,
    holder: &str,
    spec: &'static Spec,
    value: &str,
) -> EcsResult<Value> {
    let keys = Keys::for_request(ctx);
    let record = SettingRecord { name: spec.name.into(), value: value.into(), principal_arn: holder.into() };
    // Last writer wins, as in ECS: the new value does not depend on the old
    // one, so there is nothing to compare against.
    let txn = Txn::new().put(keys.account_setting(store_holder(ctx, holder), spec.name), repo::encode(&record)?);
    if !repo::commit(store, txn).await? {
        return Err(repo::too_much_contention());
    }
    let shown = Shown { name: spec.name, value: value.into(), principal_arn: holder.into(), kind: "user" };
    Ok(json!({ "setting": shown.to_json() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutInput {
    name: Option<String>,
    value: Option<String>,
    principal_arn: Option<String>,
}

pub async fn put(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: PutInput = input::parse(body)?;
    let spec = spec(input::required(&req.name, "name")?)?;
    let value = input::required(&req.value, "value")?;
    refuse_read_only(spec)?;
    validate_value(spec, value)?;
    let holder = target_holder(ctx, req.principal_arn.as_deref(), true)?;
    if spec.scope == Scope::AccountWide && holder != root_arn(ctx) {
        return Err(EcsError::invalid(format!(
            "The {} account setting applies to the whole account: set it with PutAccountSettingDefault, or as the root user.",
            spec.name
        )));
    }
    write(store, ctx, &holder, spec, value).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutDefaultInput {
    name: Option<String>,
    value: Option<String>,
}

/// Any principal may set the default (IAM decides who may call it in ECS).
pub async fn put_default(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: PutDefaultInput = input::parse(body)?;
    let spec = spec(input::required(&req.name, "name")?)?;
    let value = input::required(&req.value, "value")?;
    refuse_read_only(spec)?;
    validate_value(spec, value)?;
    write(store, ctx, &root_arn(ctx), spec, value).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInput {
    name: Option<String>,
    principal_arn: Option<String>,
}

/// Deleting a setting that is not set succeeds and returns the setting that
/// remains in effect: deletion is idempotent so retried calls do not fail.
pub async fn delete(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DeleteInput = input::parse(body)?;
    let spec = spec(input::required(&req.name, "name")?)?;
    refuse_read_only(spec)?;
    let holder = target_holder(ctx, req.principal_arn.as_deref(), true)?;
    let keys = Keys::for_request(ctx);
    let key = keys.account_setting(store_holder(ctx, &holder), spec.name);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let Some(current) = repo::load::<SettingRecord>(store, &key).await? else {
            return Ok(json!({ "setting": effective(store, &keys, ctx, &holder, spec).await?.to_json() }));
        };
        let txn = Txn::new().require(key.clone(), Some(current.mod_revision)).delete(key.clone());
        if repo::commit(store, txn).await? {
            let shown = Shown { name: spec.name, value: current.record.value, principal_arn: holder, kind: "user" };
            return Ok(json!({ "setting": shown.to_json() }));
        }
    }
    Err(repo::too_much_contention())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    name: Option<String>,
    value: Option<String>,
    principal_arn: Option<String>,
    effective_settings: Option<bool>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let limit = input::max_results(req.max_results, 10)?;
    let only = match req.name.as_deref() {
        Some(n) => Some(spec(n)?),
        None => None,
    };
    if req.value.is_some() && only.is_none() {
        return Err(EcsError::invalid("You must specify a setting name when you filter by value."));
    }
    let holder = target_holder(ctx, req.principal_arn.as_deref(), false)?;
    let keys = Keys::for_request(ctx);
    let mut shown: Vec<(usize, Shown)> = Vec::new();
    for (i, s) in SETTINGS.iter().enumerate() {
        if only.is_some_and(|o| o.name != s.name) {
            continue;
        }
        let item = if req.effective_settings.unwrap_or(false) {
            Some(effective(store, &keys, ctx, &holder, s).await?)
        } else {
            load_own(store, &keys, ctx, &holder, s.name).await?.map(|l| Shown {
                name: s.name,
                value: l.record.value,
                principal_arn: holder.clone(),
                kind: "user",
            })
        };
        if let Some(item) = item.filter(|it| req.value.as_ref().is_none_or(|v| *v == it.value)) {
            shown.push((i, item));
        }
    }
    // Positions in SETTINGS, zero-padded, order the same way the list is.
    let (page, next) =
        paging::page("ListAccountSettings", shown, |(i, _)| format!("{i:03}"), req.next_token.as_deref(), limit)?;
    let mut out = json!({ "settings": page.iter().map(|(_, s)| s.to_json()).collect::<Vec<_>>() });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::ServiceError;

    const ROOT: &str = "arn:aws:iam::123456789012:root";
    const ALICE: &str = "arn:aws:iam::123456789012:user/alice";
    const BOB: &str = "arn:aws:iam::123456789012:user/bob";

    use crate::test_support::{body, ctx_as, store};

    fn root() -> RequestContext {
        ctx_as(ROOT)
    }

    fn code(r: EcsResult<Value>) -> &'static str {
        r.unwrap_err().code()
    }

    async fn put_as(s: &dyn Store, c: &RequestContext, v: Value) -> EcsResult<Value> {
        put(s, c, body(v)).await
    }

    #[tokio::test]
    async fn put_for_self_returns_the_setting_and_is_effective() {
        let s = store();
        let alice = ctx_as(ALICE);
        let out = put_as(s.as_ref(), &alice, json!({"name": "containerInsights", "value": "enhanced"})).await.unwrap();
        assert_eq!(
            out,
            json!({"setting": {"name": "containerInsights", "value": "enhanced", "principalArn": ALICE, "type": "user"}})
        );
        assert_eq!(
            effective_value(s.as_ref(), &alice, "containerInsights").await.unwrap().as_deref(),
            Some("enhanced")
        );
        // Not the default: root and others are unaffected.
        assert_eq!(effective_value(s.as_ref(), &root(), "containerInsights").await.unwrap(), None);
        assert_eq!(effective_value(s.as_ref(), &ctx_as(BOB), "containerInsights").await.unwrap(), None);
    }

    #[tokio::test]
    async fn root_setting_is_the_account_default() {
        let s = store();
        let out = put_as(s.as_ref(), &root(), json!({"name": "awsvpcTrunking", "value": "enabled"})).await.unwrap();
        assert_eq!(out["setting"]["principalArn"], ROOT);
        assert_eq!(
            effective_value(s.as_ref(), &ctx_as(ALICE), "awsvpcTrunking").await.unwrap().as_deref(),
            Some("enabled")
        );
        // The same record as PutAccountSettingDefault writes.
        put_default(s.as_ref(), &ctx_as(BOB), body(json!({"name": "awsvpcTrunking", "value": "disabled"})))
            .await
            .unwrap();
        assert_eq!(effective_value(s.as_ref(), &root(), "awsvpcTrunking").await.unwrap().as_deref(), Some("disabled"));
    }

    #[tokio::test]
    async fn own_setting_wins_over_default() {
        let s = store();
        put_default(s.as_ref(), &root(), body(json!({"name": "containerInsights", "value": "enabled"}))).await.unwrap();
        put_as(s.as_ref(), &ctx_as(ALICE), json!({"name": "containerInsights", "value": "disabled"})).await.unwrap();
        assert_eq!(
            effective_value(s.as_ref(), &ctx_as(ALICE), "containerInsights").await.unwrap().as_deref(),
            Some("disabled")
        );
        assert_eq!(
            effective_value(s.as_ref(), &ctx_as(BOB), "containerInsights").await.unwrap().as_deref(),
            Some("enabled")
        );
    }

    #[tokio::test]
    async fn put_default_answers_with_root_and_type_user() {
        let s = store();
        let out =
            put_default(s.as_ref(), &ctx_as(ALICE), body(json!({"name": "defaultLogDriverMode", "value": "blocking"})))
                .await
                .unwrap();
        assert_eq!(
            out,
            json!({"setting": {"name": "defaultLogDriverMode", "value": "blocking", "principalArn": ROOT, "type": "user"}})
        );
    }

    #[tokio::test]
    async fn root_may_set_for_others_but_others_may_not() {
        let s = store();
        let out = put_as(
            s.as_ref(),
            &root(),
            json!({"name": "taskLongArnFormat", "value": "enabled", "principalArn": ALICE}),
        )
        .await
        .unwrap();
        assert_eq!(out["setting"]["principalArn"], ALICE);
        assert_eq!(
            effective_value(s.as_ref(), &ctx_as(ALICE), "taskLongArnFormat").await.unwrap().as_deref(),
            Some("enabled")
        );
        // A principal may name itself.
        put_as(s.as_ref(), &ctx_as(BOB), json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": BOB}))
            .await
            .unwrap();
        let r = put_as(
            s.as_ref(),
            &ctx_as(BOB),
            json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": ALICE}),
        )
        .await;
        assert_eq!(code(r), "ClientException");
        let r = put_as(
            s.as_ref(),
            &ctx_as(BOB),
            json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": ROOT}),
        )
        .await;
        assert_eq!(code(r), "ClientException");
    }

    #[tokio::test]
    async fn principal_arn_must_be_an_iam_principal_of_this_account() {
        let s = store();
        for bad in [
            "alice",
            "arn:aws:iam::999999999999:user/alice",
            "arn:aws:ecs:us-east-1:123456789012:cluster/x",
            "arn:aws:iam::123456789012:group/devs",
            "arn:aws:iam::123456789012:user/",
        ] {
            let r =
                put_as(s.as_ref(), &root(), json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": bad}))
                    .await;
            assert_eq!(code(r), "InvalidParameterException", "{bad}");
        }
        let role = "arn:aws:iam::123456789012:role/deployer";
        let out =
            put_as(s.as_ref(), &root(), json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": role}))
                .await
                .unwrap();
        assert_eq!(out["setting"]["principalArn"], role);
    }

    #[tokio::test]
    async fn assumed_role_sessions_act_as_their_role() {
        let s = store();
        let session = ctx_as("arn:aws:sts::123456789012:assumed-role/deployer/ci-run-7");
        let out = put_as(s.as_ref(), &session, json!({"name": "containerInsights", "value": "enabled"})).await.unwrap();
        assert_eq!(out["setting"]["principalArn"], "arn:aws:iam::123456789012:role/deployer");
        let other_session = ctx_as("arn:aws:sts::123456789012:assumed-role/deployer/ci-run-8");
        assert_eq!(
            effective_value(s.as_ref(), &other_session, "containerInsights").await.unwrap().as_deref(),
            Some("enabled")
        );
    }

    #[tokio::test]
    async fn federated_users_read_root_settings_and_cannot_set_their_own() {
        let s = store();
        let fed = ctx_as("arn:aws:sts::123456789012:federated-user/carol");
        put_default(s.as_ref(), &root(), body(json!({"name": "containerInsights", "value": "enabled"}))).await.unwrap();
        assert_eq!(effective_value(s.as_ref(), &fed, "containerInsights").await.unwrap().as_deref(), Some("enabled"));
        let r = put_as(s.as_ref(), &fed, json!({"name": "containerInsights", "value": "disabled"})).await;
        assert_eq!(code(r), "ClientException");
    }

    #[tokio::test]
    async fn names_and_values_are_validated() {
        let s = store();
        let r = put_as(s.as_ref(), &root(), json!({"name": "bogus", "value": "enabled"})).await;
        let e = r.unwrap_err();
        assert_eq!(e.code(), "InvalidParameterException");
        assert!(e.to_string().contains("containerInsights"), "{e}");
        let e = put_as(s.as_ref(), &root(), json!({"name": "containerInsights", "value": "on"})).await.unwrap_err();
        assert_eq!(e.code(), "InvalidParameterException");
        assert!(e.to_string().contains("enabled, disabled, enhanced"), "{e}");
        for (name, good, bad) in [
            ("awsvpcTrunking", "enabled", "on"),
            ("tagResourceAuthorization", "off", "disabled"),
            ("defaultLogDriverMode", "non-blocking", "nonblocking"),
            ("fargateEventWindows", "enabled", "true"),
            ("dualStackIPv6", "enabled", "yes"),
            ("fargateTaskRetirementWaitPeriod", "14", "3"),
            ("fargateFIPSMode", "enabled", "on"),
        ] {
            assert!(put_as(s.as_ref(), &root(), json!({"name": name, "value": good})).await.is_ok(), "{name}={good}");
            let r = put_as(s.as_ref(), &root(), json!({"name": name, "value": bad})).await;
            assert_eq!(code(r), "InvalidParameterException", "{name}={bad}");
        }
        assert_eq!(code(put_as(s.as_ref(), &root(), json!({"value": "enabled"})).await), "InvalidParameterException");
        assert_eq!(
            code(put_as(s.as_ref(), &root(), json!({"name": "awsvpcTrunking"})).await),
            "InvalidParameterException"
        );
        assert_eq!(code(put_as(s.as_ref(), &root(), json!({"name": 5, "value": "x"})).await), "SerializationException");
        let r = put_default(s.as_ref(), &root(), body(json!({"name": "nope", "value": "enabled"}))).await;
        assert_eq!(code(r), "InvalidParameterException");
    }

    #[tokio::test]
    async fn long_arn_settings_cannot_be_disabled() {
        let s = store();
        for name in LONG_ARN_SETTINGS {
            let e = put_as(s.as_ref(), &root(), json!({"name": name, "value": "disabled"})).await.unwrap_err();
            assert_eq!(e.code(), "InvalidParameterException");
            assert!(e.to_string().contains("You can no longer disable Long Arn settings"));
            let r = put_default(s.as_ref(), &root(), body(json!({"name": name, "value": "disabled"}))).await;
            assert_eq!(code(r), "InvalidParameterException");
            assert!(put_as(s.as_ref(), &ctx_as(ALICE), json!({"name": name, "value": "enabled"})).await.is_ok());
        }
    }

    #[tokio::test]
    async fn account_wide_settings_only_for_root_or_default() {
        let s = store();
        for (name, value) in [("fargateTaskRetirementWaitPeriod", "0"), ("fargateFIPSMode", "enabled")] {
            let r = put_as(s.as_ref(), &ctx_as(ALICE), json!({"name": name, "value": value})).await;
            assert_eq!(code(r), "InvalidParameterException", "{name}");
            let r = put_as(s.as_ref(), &root(), json!({"name": name, "value": value, "principalArn": ALICE})).await;
            assert_eq!(code(r), "InvalidParameterException", "{name}");
            put_default(s.as_ref(), &ctx_as(ALICE), body(json!({"name": name, "value": value}))).await.unwrap();
            assert_eq!(effective_value(s.as_ref(), &ctx_as(ALICE), name).await.unwrap().as_deref(), Some(value));
            let out = put_as(s.as_ref(), &root(), json!({"name": name, "value": value})).await.unwrap();
            assert_eq!(out["setting"]["principalArn"], ROOT);
        }
    }

    #[tokio::test]
    async fn guard_duty_activate_is_read_only() {
        let s = store();
        let r = put_as(s.as_ref(), &root(), json!({"name": "guardDutyActivate", "value": "on"})).await;
        assert_eq!(code(r), "InvalidParameterException");
        let r = put_default(s.as_ref(), &root(), body(json!({"name": "guardDutyActivate", "value": "on"}))).await;
        assert_eq!(code(r), "InvalidParameterException");
        let r = delete(s.as_ref(), &root(), body(json!({"name": "guardDutyActivate"}))).await;
        assert_eq!(code(r), "InvalidParameterException");
        let out = list(s.as_ref(), &root(), body(json!({"name": "guardDutyActivate", "effectiveSettings": true})))
            .await
            .unwrap();
        assert_eq!(
            out,
            json!({"settings": [{"name": "guardDutyActivate", "value": "off", "principalArn": ROOT, "type": "aws_managed"}]})
        );
    }

    #[tokio::test]
    async fn delete_returns_the_deleted_setting_and_falls_back() {
        let s = store();
        put_default(s.as_ref(), &root(), body(json!({"name": "containerInsights", "value": "enabled"}))).await.unwrap();
        put_as(s.as_ref(), &ctx_as(ALICE), json!({"name": "containerInsights", "value": "enhanced"})).await.unwrap();
        let out = delete(s.as_ref(), &ctx_as(ALICE), body(json!({"name": "containerInsights"}))).await.unwrap();
        assert_eq!(
            out,
            json!({"setting": {"name": "containerInsights", "value": "enhanced", "principalArn": ALICE, "type": "user"}})
        );
        assert_eq!(
            effective_value(s.as_ref(), &ctx_as(ALICE), "containerInsights").await.unwrap().as_deref(),
            Some("enabled")
        );
        // Idempotent: deleting again answers with what is in effect.
        let out = delete(s.as_ref(), &ctx_as(ALICE), body(json!({"name": "containerInsights"}))).await.unwrap();
        assert_eq!(out["setting"]["value"], "enabled");
        assert_eq!(out["setting"]["principalArn"], ROOT);
        // Root deleting its own removes the default.
        delete(s.as_ref(), &root(), body(json!({"name": "containerInsights"}))).await.unwrap();
        assert_eq!(effective_value(s.as_ref(), &ctx_as(ALICE), "containerInsights").await.unwrap(), None);
    }

    #[tokio::test]
    async fn delete_for_others_needs_root() {
        let s = store();
        put_as(s.as_ref(), &ctx_as(ALICE), json!({"name": "awsvpcTrunking", "value": "enabled"})).await.unwrap();
        let r = delete(s.as_ref(), &ctx_as(BOB), body(json!({"name": "awsvpcTrunking", "principalArn": ALICE}))).await;
        assert_eq!(code(r), "ClientException");
        let out =
            delete(s.as_ref(), &root(), body(json!({"name": "awsvpcTrunking", "principalArn": ALICE}))).await.unwrap();
        assert_eq!(out["setting"]["value"], "enabled");
        assert_eq!(effective_value(s.as_ref(), &ctx_as(ALICE), "awsvpcTrunking").await.unwrap(), None);
        assert_eq!(code(delete(s.as_ref(), &root(), body(json!({}))).await), "InvalidParameterException");
        assert_eq!(code(delete(s.as_ref(), &root(), body(json!({"name": "x"}))).await), "InvalidParameterException");
    }

    #[tokio::test]
    async fn list_without_effective_settings_shows_only_explicit_ones() {
        let s = store();
        let alice = ctx_as(ALICE);
        assert_eq!(list(s.as_ref(), &alice, body(json!({}))).await.unwrap(), json!({"settings": []}));
        put_default(s.as_ref(), &root(), body(json!({"name": "awsvpcTrunking", "value": "enabled"}))).await.unwrap();
        put_as(s.as_ref(), &alice, json!({"name": "containerInsights", "value": "enabled"})).await.unwrap();
        put_as(s.as_ref(), &alice, json!({"name": "tagResourceAuthorization", "value": "off"})).await.unwrap();
        let out = list(s.as_ref(), &alice, body(json!({}))).await.unwrap();
        assert_eq!(
            out,
            json!({"settings": [
                {"name": "containerInsights", "value": "enabled", "principalArn": ALICE, "type": "user"},
                {"name": "tagResourceAuthorization", "value": "off", "principalArn": ALICE, "type": "user"},
            ]})
        );
        let out =
            list(s.as_ref(), &alice, body(json!({"name": "tagResourceAuthorization", "value": "on"}))).await.unwrap();
        assert_eq!(out, json!({"settings": []}));
        let out =
            list(s.as_ref(), &alice, body(json!({"name": "tagResourceAuthorization", "value": "off"}))).await.unwrap();
        assert_eq!(out["settings"].as_array().unwrap().len(), 1);
        // Root's explicit settings are the defaults.
        let out = list(s.as_ref(), &root(), body(json!({}))).await.unwrap();
        assert_eq!(
            out,
            json!({"settings": [{"name": "awsvpcTrunking", "value": "enabled", "principalArn": ROOT, "type": "user"}]})
        );
        // Root may list another principal's; others may not.
        let out = list(s.as_ref(), &root(), body(json!({"principalArn": ALICE}))).await.unwrap();
        assert_eq!(out["settings"].as_array().unwrap().len(), 2);
        assert_eq!(code(list(s.as_ref(), &ctx_as(BOB), body(json!({"principalArn": ALICE}))).await), "ClientException");
    }

    #[tokio::test]
    async fn list_effective_settings_covers_every_setting() {
        let s = store();
        let alice = ctx_as(ALICE);
        put_default(s.as_ref(), &root(), body(json!({"name": "containerInsights", "value": "enabled"}))).await.unwrap();
        put_as(s.as_ref(), &alice, json!({"name": "awsvpcTrunking", "value": "enabled"})).await.unwrap();
        let out = list(s.as_ref(), &alice, body(json!({"effectiveSettings": true}))).await.unwrap();
        let settings = out["settings"].as_array().unwrap();
        assert_eq!(settings.len(), 10, "one page of 10");
        let token = out["nextToken"].as_str().unwrap();
        let rest =
            list(s.as_ref(), &alice, body(json!({"effectiveSettings": true, "nextToken": token}))).await.unwrap();
        assert!(rest.get("nextToken").is_none());
        let all: Vec<Value> = settings.iter().chain(rest["settings"].as_array().unwrap()).cloned().collect();
        let names: Vec<&str> = all.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>());
        let by = |n: &str| all.iter().find(|s| s["name"] == n).unwrap().clone();
        assert_eq!(
            by("awsvpcTrunking"),
            json!({"name": "awsvpcTrunking", "value": "enabled", "principalArn": ALICE, "type": "user"})
        );
        assert_eq!(
            by("containerInsights"),
            json!({"name": "containerInsights", "value": "enabled", "principalArn": ROOT, "type": "user"})
        );
        assert_eq!(by("serviceLongArnFormat")["value"], "enabled");
        assert_eq!(by("fargateFIPSMode")["value"], "disabled");
        assert_eq!(by("tagResourceAuthorization")["value"], "on");
        assert_eq!(by("fargateTaskRetirementWaitPeriod")["value"], "7");
        assert_eq!(by("defaultLogDriverMode")["value"], "non-blocking");
        assert_eq!(by("fargateEventWindows")["value"], "disabled");
        assert_eq!(by("guardDutyActivate")["type"], "aws_managed");
        // A single named effective setting, as Terraform reads it.
        let one = list(s.as_ref(), &ctx_as(BOB), body(json!({"name": "containerInsights", "effectiveSettings": true})))
            .await
            .unwrap();
        assert_eq!(
            one,
            json!({"settings": [{"name": "containerInsights", "value": "enabled", "principalArn": ROOT, "type": "user"}]})
        );
        // Value filters apply to effective values.
        let f = list(
            s.as_ref(),
            &alice,
            body(json!({"name": "awsvpcTrunking", "value": "disabled", "effectiveSettings": true})),
        )
        .await
        .unwrap();
        assert_eq!(f, json!({"settings": []}));
    }

    #[tokio::test]
    async fn list_pages_with_max_results() {
        let s = store();
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut b = json!({"effectiveSettings": true, "maxResults": 5});
            if let Some(t) = &token {
                b["nextToken"] = t.clone().into();
            }
            let out = list(s.as_ref(), &root(), body(b)).await.unwrap();
            pages += 1;
            let page = out["settings"].as_array().unwrap();
            assert!(page.len() <= 5);
            names.extend(page.iter().map(|s| s["name"].as_str().unwrap().to_string()));
            match out.get("nextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(names, SETTINGS.iter().map(|s| s.name.to_string()).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn list_input_is_validated() {
        let s = store();
        for b in [
            json!({"maxResults": 0}),
            json!({"maxResults": 11}),
            json!({"value": "enabled"}),
            json!({"name": "bogus"}),
            json!({"nextToken": "garbage!"}),
            json!({"principalArn": "not-an-arn"}),
        ] {
            assert_eq!(code(list(s.as_ref(), &root(), body(b.clone())).await), "InvalidParameterException", "{b}");
        }
        assert_eq!(
            code(list(s.as_ref(), &root(), body(json!({"effectiveSettings": "yes"}))).await),
            "SerializationException"
        );
        // Another operation's token is refused.
        let foreign = paging::encode("ListClusters", "x");
        assert_eq!(
            code(list(s.as_ref(), &root(), body(json!({"nextToken": foreign}))).await),
            "InvalidParameterException"
        );
    }

    #[tokio::test]
    async fn create_cluster_inherits_container_insights_default() {
        let s = store();
        put_default(s.as_ref(), &root(), body(json!({"name": "containerInsights", "value": "enhanced"})))
            .await
            .unwrap();
        let out = crate::clusters::create(s.as_ref(), &root(), body(json!({"clusterName": "c1"}))).await.unwrap();
        assert_eq!(out["cluster"]["settings"], json!([{"name": "containerInsights", "value": "enhanced"}]));
    }
}
