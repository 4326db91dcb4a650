//! ListTaskDefinitions and ListTaskDefinitionFamilies, answered from the
//! family records alone (one small record per family, however many
//! revisions it has).

use super::records::{FamilyRecord, Status};
use super::reference;
use super::validate::{is_simple_name, one_of};
use crate::context::RequestContext;
use crate::error::EcsResult;
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo;
use berth_store::Store;
use serde::Deserialize;
use serde_json::{Map, Value, json};

const MAX_RESULTS: i64 = 100;

fn status(text: &str) -> Status {
    match text {
        "INACTIVE" => Status::Inactive,
        "DELETE_IN_PROGRESS" => Status::DeleteInProgress,
        _ => Status::Active,
    }
}

/// Page position of a revision: strictly increasing in listing order for
/// either sort, as `paging::page` needs. Family names are ASCII letters,
/// digits, `-` and `_`; `\0` ends the family so "web" sorts before
/// "web-2". For DESC each byte is mirrored (`0x7f - b`) and the family is
/// ended by `0x7f`, which sorts after any mirrored byte, so "web-2" comes
/// first; revisions are mirrored the same way.
fn position(family: &str, revision: u32, descending: bool) -> String {
    if descending {
        let mirrored: String = family
            .bytes()
            .map(|b| char::from(0x7f - (b & 0x7f)))
            .collect();
        format!("{mirrored}\u{7f}{:010}", u32::MAX - revision)
    } else {
        format!("{family}\u{0}{revision:010}")
    }
}

async fn families(store: &dyn Store, keys: &Keys, prefix: &str) -> EcsResult<Vec<FamilyRecord>> {
    Ok(
        repo::load_all::<FamilyRecord>(store, &keys.task_definition_family(prefix))
            .await?
            .into_iter()
            .map(|(_, f)| f)
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// `familyPrefix` is, despite its name, the exact family to list (as the
/// ECS API reference documents).
pub async fn list(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let status_text = req.status.as_deref().unwrap_or("ACTIVE");
    one_of(
        status_text,
        "status",
        &["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"],
    )?;
    let sort = req.sort.as_deref().unwrap_or("ASC");
    one_of(sort, "sort", &["ASC", "DESC"])?;
    let limit = input::max_results(req.max_results, MAX_RESULTS)?;
    let keys = Keys::for_request(ctx);
    let records = match req.family_prefix.as_deref().filter(|f| !f.is_empty()) {
        Some(f) if !is_simple_name(f) => Vec::new(),
        Some(f) => repo::load::<FamilyRecord>(store, &keys.task_definition_family(f))
            .await?
            .map(|l| l.record)
            .into_iter()
            .collect(),
        None => families(store, &keys, "").await?,
    };
    let wanted = status(status_text);
    let mut items: Vec<(String, u32)> = records
        .iter()
        .flat_map(|f| {
            f.revisions(wanted)
                .iter()
                .map(move |r| (f.family.clone(), *r))
        })
        .collect();
    items.sort();
    let descending = sort == "DESC";
    if descending {
        items.reverse();
    }
    // A token is only meaningful for the order it was cut from.
    let operation = format!("ListTaskDefinitions/{status_text}/{sort}");
    let (page, next) = paging::page(
        &operation,
        items,
        |(f, r)| position(f, *r, descending),
        req.next_token.as_deref(),
        limit,
    )?;
    let arns: Vec<String> = page
        .iter()
        .map(|(f, r)| reference::arn(ctx, f, *r))
        .collect();
    let mut out = json!({ "taskDefinitionArns": arns });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

/// `status` defaults to ALL: the ECS API reference says both ACTIVE and
/// INACTIVE families are listed unless a status is given. A family is
/// ACTIVE while it has an ACTIVE revision and INACTIVE otherwise (its
/// revisions deregistered or being deleted, which ECS still lists).
pub async fn list_families(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let status_text = req.status.as_deref().unwrap_or("ALL");
    one_of(status_text, "status", &["ACTIVE", "INACTIVE", "ALL"])?;
    let limit = input::max_results(req.max_results, MAX_RESULTS)?;
    let keys = Keys::for_request(ctx);
    let prefix = req.family_prefix.as_deref().unwrap_or("");
    let names: Vec<String> = families(store, &keys, prefix)
        .await?
        .into_iter()
        .filter(|f| match status_text {
            "ACTIVE" => !f.active.is_empty(),
            "INACTIVE" => f.active.is_empty(),
            _ => true,
        })
        .map(|f| f.family)
        .collect();
    let operation = format!("ListTaskDefinitionFamilies/{status_text}");
    let (page, next) = paging::page(
        &operation,
        names,
        |f| f.clone(),
        req.next_token.as_deref(),
        limit,
    )?;
    let mut out = json!({ "families": page });
    if let Some(t) = next {
        out["nextToken"] = t.into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_listing_order() {
        let mut asc = vec![
            ("web".to_string(), 2u32),
            ("web-2".into(), 1),
            ("web".into(), 10),
            ("api".into(), 1),
            ("web_x".into(), 3),
        ];
        asc.sort();
        for w in asc.windows(2) {
            assert!(
                position(&w[0].0, w[0].1, false) < position(&w[1].0, w[1].1, false),
                "{w:?}"
            );
        }
        let mut desc = asc.clone();
        desc.reverse();
        for w in desc.windows(2) {
            assert!(
                position(&w[0].0, w[0].1, true) < position(&w[1].0, w[1].1, true),
                "{w:?}"
            );
        }
    }
}
