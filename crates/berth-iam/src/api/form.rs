//! IAM's query-protocol parameters: scalars, `Name.member.N` lists, tags,
//! and Marker/MaxItems paging.
//!
//! (berth-elbv2 has a richer `Form` for deeply nested shapes, tied to its
//! own error type; IAM's inputs are flat, so this one stays small.)

use crate::error::IamError;
use crate::model::Tag;
use std::collections::BTreeMap;

pub struct Form(BTreeMap<String, String>);

impl Form {
    pub fn from_params(params: &[(String, String)]) -> Form {
        Form(params.iter().cloned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required scalar; missing answers AWS's "must not be null" wording.
    pub fn required(&self, key: &str) -> Result<&str, IamError> {
        self.get(key).ok_or_else(|| {
            IamError::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ))
        })
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, IamError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                IamError::Validation(format!(
                    "Invalid value '{v}' for parameter {key}: not an integer"
                ))
            }),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, IamError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(IamError::Validation(format!(
                "Invalid value '{v}' for parameter {key}: not a boolean"
            ))),
        }
    }

    /// The scalar members of `prefix.member.N`, in index order.
    pub fn strings(&self, prefix: &str) -> Vec<String> {
        self.members(prefix)
            .into_iter()
            .filter_map(|m| m.get("").map(str::to_string))
            .collect()
    }

    /// `prefix.member.N.Key` / `.Value`, in index order; a tag without a
    /// key is a validation error, one without a value has value "".
    pub fn tags(&self, prefix: &str) -> Result<Vec<Tag>, IamError> {
        let mut out: Vec<Tag> = Vec::new();
        for (i, m) in self.members(prefix).into_iter().enumerate() {
            let Some(key) = m.get("Key") else {
                return Err(IamError::Validation(format!(
                    "1 validation error detected: Value null at 'tags.{}.member.key' failed to satisfy constraint: Member must not be null",
                    i + 1
                )));
            };
            check_tag(key, m.get("Value").unwrap_or(""))?;
            if out.iter().any(|t| t.key == key) {
                return Err(IamError::InvalidInput(
                    "Duplicate tag keys found. Please note that Tag keys are case insensitive."
                        .into(),
                ));
            }
            out.push(Tag {
                key: key.to_string(),
                value: m.get("Value").unwrap_or("").to_string(),
            });
        }
        Ok(out)
    }

    fn members(&self, prefix: &str) -> Vec<Form> {
        let head = format!("{prefix}.member.");
        let mut by_index: BTreeMap<u64, Form> = BTreeMap::new();
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(&head) else {
                continue;
            };
            let (idx, field) = rest.split_once('.').unwrap_or((rest, ""));
            let Ok(idx) = idx.parse::<u64>() else {
                continue;
            };
            by_index
                .entry(idx)
                .or_insert_with(|| Form(BTreeMap::new()))
                .0
                .insert(field.to_string(), v.clone());
        }
        by_index.into_values().collect()
    }
}

fn check_tag(key: &str, value: &str) -> Result<(), IamError> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{key}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128"
        )));
    }
    if value.chars().count() > 256 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(IamError::InvalidInput(
            "Tag keys starting with 'aws:' are reserved for internal use.".into(),
        ));
    }
    Ok(())
}

/// AWS names members in validation messages in camelCase.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One page of an already filtered, stably ordered list, and the marker of
/// the next page (the index of its first item) when there is one. IAM's
/// MaxItems is 1..=1000, default 100.
pub fn page<T>(form: &Form, items: Vec<T>) -> Result<(Vec<T>, Option<String>), IamError> {
    let size = match form.int("MaxItems")? {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            let bound = if n < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 1000"
            };
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
    };
    let start = match form.get("Marker") {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|i| *i <= items.len())
            .ok_or_else(|| IamError::Validation("Invalid Marker.".into()))?,
    };
    let total = items.len();
    let end = start.saturating_add(size).min(total);
    let next = (end < total).then(|| end.to_string());
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
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
    fn reads_lists_and_tags_in_index_order() {
        let f = form(&[
            ("TagKeys.member.10", "b"),
            ("TagKeys.member.2", "a"),
            ("Tags.member.2.Key", "k2"),
            ("Tags.member.1.Key", "k1"),
            ("Tags.member.1.Value", "v1"),
        ]);
        assert_eq!(f.strings("TagKeys"), vec!["a", "b"]);
        let tags = f.tags("Tags").unwrap();
        assert_eq!(
            tags,
            vec![
                Tag {
                    key: "k1".into(),
                    value: "v1".into()
                },
                Tag {
                    key: "k2".into(),
                    value: "".into()
                }
            ]
        );
        assert!(
            form(&[("Tags.member.1.Key", "aws:x")])
                .tags("Tags")
                .is_err()
        );
    }

    #[test]
    fn pages_by_index_marker() {
        let items: Vec<u32> = (0..5).collect();
        let (p, next) = page(&form(&[("MaxItems", "2")]), items.clone()).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = page(&form(&[("MaxItems", "2"), ("Marker", "4")]), items.clone()).unwrap();
        assert_eq!((p, next), (vec![4], None));
        assert!(page(&form(&[("MaxItems", "0")]), items.clone()).is_err());
        assert!(page(&form(&[("Marker", "x")]), items).is_err());
    }

    #[test]
    fn missing_required_uses_aws_wording() {
        let err = form(&[]).required("UserName").unwrap_err();
        assert!(err.to_string().contains("Value null at 'userName'"));
    }
}
