//! One request to the task endpoint, answered from the registry: a pure
//! function of (registry view, statistics source, peer address, method,
//! path), so every rule is tested without a socket.
//!
//! Routes (as the ECS agent serves them at 169.254.170.2):
//! - `GET /v2/credentials/{id}`: the task role's session;
//! - `GET /v3|v4/{id}`, `/task`, `/stats`, `/task/stats`: metadata and
//!   statistics of the container whose metadata id is `{id}` and its task.
//!
//! A request is answered only for the task whose address it comes from
//! ([`super::registry::peer_allowed`]); from anywhere else it gets the same
//! answer as an unknown id, so ids cannot be probed.

use super::metadata::{container_json, task_json};
use super::registry::View;
use super::stats::StatsSource;
use serde_json::{Map, Value, json};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply { status: 200, body }
    }
}

/// The ECS agent's credentials error: `{"code", "message", "HTTPErrorCode"}`.
fn credentials_error(status: u16, code: &str, message: &str) -> Reply {
    Reply { status, body: json!({"code": code, "message": format!("CredentialsV2Request: {message}"), "HTTPErrorCode": status}) }
}

/// The ECS agent's metadata errors are a bare JSON string.
fn not_found(prefix: &str, what: &str, id: &str) -> Reply {
    let reason = match what {
        "task" => format!("unable to get task arn from request: unable to get task Arn from v3 endpoint ID: {id}"),
        _ => format!("unable to get container ID from request: unable to get docker ID from v3 endpoint ID: {id}"),
    };
    Reply { status: 404, body: json!(format!("{prefix}: {reason}")) }
}

pub fn handle(view: &View<'_>, stats: &dyn StatsSource, peer: IpAddr, method: &str, path: &str) -> Reply {
    let path = path.split('?').next().unwrap_or_default();
    if method != "GET" {
        return Reply { status: 405, body: json!("405 method not allowed") };
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v2", "credentials"] | ["v2", "credentials", ""] => {
            credentials_error(400, "NoIdInRequest", "No Credential ID in the request")
        }
        ["v2", "credentials", id] => match view.task_role(id, peer) {
            Some((_, role)) => Reply::ok(json!({
                "RoleArn": role.role_arn,
                "AccessKeyId": role.access_key_id,
                "SecretAccessKey": role.secret_access_key,
                "Token": role.session_token,
                "Expiration": role.expiration,
            })),
            None => credentials_error(400, "InvalidIdInRequest", "Credentials not found"),
        },
        [version @ ("v3" | "v4"), id, rest @ ..] if !id.is_empty() => {
            let v = version.to_uppercase();
            let found = view.container(id, peer);
            match rest {
                [] => match found {
                    Some((task, c)) => Reply::ok(container_json(view.host, task, c)),
                    None => not_found(&format!("{v} container metadata handler"), "container", id),
                },
                ["task"] => match found {
                    Some((task, _)) => Reply::ok(task_json(view.host, task)),
                    None => not_found(&format!("{v} task metadata handler"), "task", id),
                },
                ["stats"] => match found {
                    Some((task, c)) => Reply::ok(stats.container_stats(task, c).unwrap_or(Value::Null)),
                    None => not_found(&format!("{v} container stats handler"), "container", id),
                },
                ["task", "stats"] => match found {
                    Some((task, _)) => {
                        let all: Map<String, Value> = task
                            .containers
                            .iter()
                            .map(|c| (c.runtime_id.clone(), stats.container_stats(task, c).unwrap_or(Value::Null)))
                            .collect();
                        Reply::ok(Value::Object(all))
                    }
                    None => not_found(&format!("{v} task stats handler"), "task", id),
                },
                _ => Reply { status: 404, body: json!("404 page not found") },
            }
        }
        _ => Reply { status: 404, body: json!("404 page not found") },
    }
}
