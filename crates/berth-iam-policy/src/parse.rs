//! Reading a policy document: the JSON grammar of identity-based policies
//! and the validation IAM applies before it stores one.

use serde_json::{Map, Value};

use crate::conditions::Condition;
use crate::error::PolicyError;

/// The policy language version. Only `2012-10-17` substitutes policy
/// variables; a document without `Version` is `2008-10-17`, as in IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2008_10_17,
    V2012_10_17,
}

/// Whether a matching statement grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action`/`Resource` (the listed patterns) or their `Not` forms
/// (everything except the listed patterns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    Except(Vec<String>),
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    /// ANDed; empty means unconditional.
    pub conditions: Vec<Condition>,
}

/// A parsed identity-based policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates an identity-based policy document.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(json).map_err(|_| PolicyError::Syntax)?;
        let Value::Object(doc) = value else {
            return Err(PolicyError::Syntax);
        };
        let mut version = Version::V2008_10_17;
        let mut id = None;
        let mut statements = None;
        for (key, value) in &doc {
            match key.as_str() {
                "Version" => {
                    version = match value.as_str() {
                        Some("2012-10-17") => Version::V2012_10_17,
                        Some("2008-10-17") => Version::V2008_10_17,
                        _ => return Err(PolicyError::Version(value.to_string())),
                    }
                }
                "Id" => id = Some(string(value)?),
                "Statement" => statements = Some(value),
                _ => return Err(PolicyError::Syntax),
            }
        }
        let statements = match statements.ok_or(PolicyError::MissingStatement)? {
            Value::Array(items) => items.iter().map(statement).collect::<Result<Vec<_>, _>>()?,
            single @ Value::Object(_) => vec![statement(single)?],
            _ => return Err(PolicyError::Syntax),
        };
        let mut sids: Vec<&str> = statements.iter().filter_map(|s| s.sid.as_deref()).collect();
        sids.sort_unstable();
        if let Some(pair) = sids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(PolicyError::DuplicateSid(pair[0].to_owned()));
        }
        Ok(Policy {
            version,
            id,
            statements,
        })
    }
}

/// Reads one statement object.
fn statement(value: &Value) -> Result<Statement, PolicyError> {
    let Value::Object(fields) = value else {
        return Err(PolicyError::Syntax);
    };
    let mut sid = None;
    let mut effect = None;
    let (mut action, mut not_action, mut resource, mut not_resource) = (None, None, None, None);
    let mut conditions = Vec::new();
    for (key, value) in fields {
        match key.as_str() {
            "Sid" => sid = Some(string(value)?),
            "Effect" => {
                effect = Some(match value.as_str() {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err(PolicyError::InvalidEffect(value.to_string())),
                })
            }
            "Action" => action = Some(string_list(value)?),
            "NotAction" => not_action = Some(string_list(value)?),
            "Resource" => resource = Some(string_list(value)?),
            "NotResource" => not_resource = Some(string_list(value)?),
            "Condition" => conditions = condition_block(value)?,
            "Principal" | "NotPrincipal" => return Err(PolicyError::Principal),
            _ => return Err(PolicyError::Syntax),
        }
    }
    let effect = effect.ok_or(PolicyError::MissingEffect)?;
    let actions = match (action, not_action) {
        (Some(_), Some(_)) => return Err(PolicyError::BothActionAndNotAction),
        (Some(a), None) => Patterns::Only(a),
        (None, Some(a)) => Patterns::Except(a),
        (None, None) => return Err(PolicyError::MissingAction),
    };
    let resources = match (resource, not_resource) {
        (Some(_), Some(_)) => return Err(PolicyError::BothResourceAndNotResource),
        (Some(r), None) => Patterns::Only(r),
        (None, Some(r)) => Patterns::Except(r),
        (None, None) => return Err(PolicyError::MissingResource),
    };
    let (Patterns::Only(list) | Patterns::Except(list)) = &actions;
    if list.is_empty() {
        return Err(PolicyError::MissingAction);
    }
    if let Some(bad) = list.iter().find(|a| {
        *a != "*"
            && !a
                .split_once(':')
                .is_some_and(|(v, n)| !v.is_empty() && !n.is_empty())
    }) {
        return Err(PolicyError::ActionVendor(bad.clone()));
    }
    let (Patterns::Only(list) | Patterns::Except(list)) = &resources;
    if list.is_empty() {
        return Err(PolicyError::MissingResource);
    }
    if let Some(bad) = list.iter().find(|r| *r != "*" && !r.starts_with("arn:")) {
        return Err(PolicyError::ResourceFormat(bad.clone()));
    }
    Ok(Statement {
        sid,
        effect,
        actions,
        resources,
        conditions,
    })
}

/// Reads `{"Operator": {"key": value-or-values, ...}, ...}` into one
/// [`Condition`] per operator and key.
fn condition_block(value: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = value else {
        return Err(PolicyError::Syntax);
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let Value::Object(keys): &Value = keys else {
            return Err(PolicyError::Syntax);
        };
        let keys: &Map<String, Value> = keys;
        for (key, values) in keys {
            conditions.push(Condition::new(operator, key.clone(), scalar_list(values)?)?);
        }
    }
    Ok(conditions)
}

/// A JSON string.
fn string(value: &Value) -> Result<String, PolicyError> {
    value.as_str().map(str::to_owned).ok_or(PolicyError::Syntax)
}

/// A string or an array of strings (`Action`, `Resource`).
fn string_list(value: &Value) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items.iter().map(string).collect(),
        _ => Err(PolicyError::Syntax),
    }
}

/// A condition value: IAM accepts strings, numbers and booleans, alone or in
/// an array, and compares their text.
fn scalar_list(value: &Value) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::Syntax),
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> PolicyError {
        Policy::parse(json).unwrap_err()
    }

    #[test]
    fn statement_as_object_or_array() {
        let one = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*"}}"#).unwrap();
        assert_eq!(one.version, Version::V2012_10_17);
        assert_eq!(one.statements.len(), 1);
        assert_eq!(
            one.statements[0].actions,
            Patterns::Only(vec!["ecs:*".into()])
        );
        let many = Policy::parse(
            r#"{"Version":"2008-10-17","Id":"p1","Statement":[
                {"Sid":"A","Effect":"Allow","Action":["ecs:List*","ecs:Describe*"],"Resource":"*"},
                {"Sid":"B","Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:ecs:*"],
                 "Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","us-east-1"],"aws:username":"bob"},"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"s3:max-keys":10}}}]}"#,
        )
        .unwrap();
        assert_eq!(many.version, Version::V2008_10_17);
        assert_eq!(many.id.as_deref(), Some("p1"));
        let b = &many.statements[1];
        assert_eq!(b.effect, Effect::Deny);
        assert_eq!(b.actions, Patterns::Except(vec!["iam:*".into()]));
        assert_eq!(b.resources, Patterns::Except(vec!["arn:aws:ecs:*".into()]));
        assert_eq!(b.conditions.len(), 4);
        assert_eq!(b.conditions[0].values, vec!["eu-west-1", "us-east-1"]);
        assert_eq!(b.conditions[2].values, vec!["false"]);
        assert_eq!(b.conditions[3].values, vec!["10"]);
    }

    #[test]
    fn missing_version_is_2008() {
        let p = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .unwrap();
        assert_eq!(p.version, Version::V2008_10_17);
    }

    #[test]
    fn malformed_documents() {
        let cases = [
            ("not json", PolicyError::Syntax),
            ("[]", PolicyError::Syntax),
            (r#"{"Version":"2012-10-17"}"#, PolicyError::MissingStatement),
            (
                r#"{"Version":"2013-01-01","Statement":[]}"#,
                PolicyError::Version("\"2013-01-01\"".into()),
            ),
            (
                r#"{"Statement":[{"Action":"*","Resource":"*"}]}"#,
                PolicyError::MissingEffect,
            ),
            (
                r#"{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}"#,
                PolicyError::InvalidEffect("\"allow\"".into()),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                PolicyError::MissingAction,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
                PolicyError::MissingAction,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"iam:*","Resource":"*"}]}"#,
                PolicyError::BothActionAndNotAction,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
                PolicyError::MissingResource,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}]}"#,
                PolicyError::BothResourceAndNotResource,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
                PolicyError::Principal,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"RunTask","Resource":"*"}]}"#,
                PolicyError::ActionVendor("RunTask".into()),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"bucket"}]}"#,
                PolicyError::ResourceFormat("bucket".into()),
            ),
            (
                r#"{"Statement":[{"Sid":"x","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"x","Effect":"Deny","Action":"*","Resource":"*"}]}"#,
                PolicyError::DuplicateSid("x".into()),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"a:b":"c"}}}]}"#,
                PolicyError::ConditionOperator("StringEqualz".into()),
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"c"}}]}"#,
                PolicyError::Syntax,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Extra":1}]}"#,
                PolicyError::Syntax,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":7,"Resource":"*"}]}"#,
                PolicyError::Syntax,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(err(json), expected, "{json}");
        }
    }

    #[test]
    fn messages_follow_iam() {
        assert_eq!(
            PolicyError::MissingEffect.to_string(),
            "Missing required field Effect"
        );
        assert_eq!(
            PolicyError::MissingAction.to_string(),
            "Policy statement must contain actions."
        );
        assert_eq!(
            PolicyError::Principal.to_string(),
            "Policy document should not specify a principal."
        );
        assert_eq!(
            PolicyError::ConditionOperator("StringEqualz".into()).to_string(),
            "Invalid Condition type : StringEqualz."
        );
    }
}
