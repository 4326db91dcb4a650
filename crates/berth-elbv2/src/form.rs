//! Query-protocol form parameters as a nested view.
//!
//! ELBv2 flattens lists as `Name.member.N` and structures as
//! `Name.member.N.Field`, nesting freely (`DefaultActions.member.1.
//! ForwardConfig.TargetGroups.member.2.Weight`). A [`Form`] is a flat map
//! from which sub-forms are cut by prefix, so every shape is read the same way.

use crate::Elbv2Error;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Form(BTreeMap<String, String>);

impl Form {
    pub fn from_params(params: &[(String, String)]) -> Form {
        Form(params.iter().cloned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required scalar; missing answers AWS's "must not be null" wording.
    pub fn required(&self, key: &str) -> Result<&str, Elbv2Error> {
        self.get(key).ok_or_else(|| {
            Elbv2Error::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ))
        })
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Elbv2Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                Elbv2Error::Validation(format!("'{v}' is not a valid integer for '{key}'"))
            }),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Elbv2Error> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(Elbv2Error::Validation(format!(
                "'{v}' is not a valid boolean for '{key}'"
            ))),
        }
    }

    /// The members of `prefix.member.N` (each a sub-form), in index order.
    pub fn members(&self, prefix: &str) -> Vec<Form> {
        let head = format!("{prefix}.member.");
        let mut by_index: BTreeMap<u64, Form> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(&head) else {
                continue;
            };
            let (idx, field) = match rest.split_once('.') {
                Some((i, f)) => (i, f),
                None => (rest, ""),
            };
            let Ok(idx) = idx.parse::<u64>() else {
                continue;
            };
            by_index
                .entry(idx)
                .or_default()
                .0
                .insert(field.to_string(), v.clone());
        }
        by_index.into_values().collect()
    }

    /// The scalar members of `prefix.member.N`, in index order.
    pub fn strings(&self, prefix: &str) -> Vec<String> {
        self.members(prefix)
            .into_iter()
            .filter_map(|m| m.get("").map(str::to_string))
            .collect()
    }

    /// Whether any key of the list `prefix` is present (an empty list in the
    /// query protocol is `prefix=` with no members).
    pub fn has(&self, prefix: &str) -> bool {
        let dot = format!("{prefix}.");
        self.0.keys().any(|k| k == prefix || k.starts_with(&dot))
    }

    /// The sub-form under `prefix.` (a nested structure).
    pub fn sub(&self, prefix: &str) -> Form {
        let head = format!("{prefix}.");
        Form(
            self.0
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&head).map(|r| (r.to_string(), v.clone())))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// AWS names members in validation messages in camelCase.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form::from_params(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn members_are_ordered_by_numeric_index_and_nest() {
        let f = form(&[
            ("Subnets.member.10", "b"),
            ("Subnets.member.2", "a"),
            ("A.member.1.ForwardConfig.TargetGroups.member.1.Weight", "3"),
            ("A.member.1.Type", "forward"),
        ]);
        assert_eq!(f.strings("Subnets"), vec!["a", "b"]);
        let a = &f.members("A")[0];
        assert_eq!(a.get("Type"), Some("forward"));
        assert_eq!(
            a.sub("ForwardConfig").members("TargetGroups")[0].get("Weight"),
            Some("3")
        );
    }

    #[test]
    fn missing_required_uses_aws_wording() {
        let err = form(&[]).required("Name").unwrap_err();
        assert!(err.to_string().contains("Value null at 'name'"));
    }
}
