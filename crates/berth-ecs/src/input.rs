//! Turning a request body into typed input, with ECS's error classes:
//! wrong JSON types are `SerializationException`, missing or out-of-range
//! members `InvalidParameterException` (or `ClientException` where ECS uses it).

use crate::error::{EcsError, EcsResult};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Deserialize the whole request object into `T`. Unknown members are
/// ignored, as AWS services do.
pub fn parse<T: DeserializeOwned>(body: Map<String, Value>) -> EcsResult<T> {
    serde_json::from_value(Value::Object(body)).map_err(|e| EcsError::Serialization(describe_serde_error(&e)))
}

fn describe_serde_error(e: &serde_json::Error) -> String {
    // serde_json appends " at line X column Y" which means nothing for a value.
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text).to_string();
    format!("Request could not be deserialized: {text}")
}

/// A member that must be present and non-empty.
pub fn required<'a>(value: &'a Option<String>, member: &str) -> EcsResult<&'a str> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(EcsError::invalid(format!("{member} can not be blank."))),
    }
}

/// `maxResults` as ECS checks it: 1..=max.
pub fn max_results(value: Option<i64>, max: i64) -> EcsResult<usize> {
    match value {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(_) => Err(EcsError::invalid(format!("maxResults must be between 1 and {max}."))),
    }
}

/// ECS's name rule for clusters, services, capacity providers and task
/// definition families: 1 to 255 letters, digits, hyphens and underscores.
pub fn is_simple_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        cluster_name: Option<String>,
        #[allow(dead_code)]
        count: Option<i64>,
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let body = serde_json::json!({"clusterName": 5}).as_object().cloned().unwrap();
        let err = parse::<Sample>(body).unwrap_err();
        assert!(matches!(err, EcsError::Serialization(_)), "{err:?}");
        assert!(!err.to_string().contains("line"));
    }

    #[test]
    fn unknown_members_are_ignored() {
        let body = serde_json::json!({"clusterName": "a", "zzz": [1]}).as_object().cloned().unwrap();
        assert_eq!(parse::<Sample>(body).unwrap().cluster_name.as_deref(), Some("a"));
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(max_results(None, 100).unwrap(), 100);
        assert_eq!(max_results(Some(1), 100).unwrap(), 1);
        assert!(max_results(Some(0), 100).is_err());
        assert!(max_results(Some(101), 100).is_err());
    }
}

