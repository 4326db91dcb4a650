//! IAM's query-protocol parameters: [`berth_wire::query_form::Form`]
//! (scalars, `Name.member.N` lists, Marker paging) plus IAM's tags and its
//! MaxItems page size.

use crate::error::IamError;
use crate::model::Tag;
pub use berth_wire::query_form::{Form, FormError};

/// The shared wording is IAM's.
impl From<FormError> for IamError {
    fn from(e: FormError) -> Self {
        IamError::Validation(e.to_string())
    }
}

/// `prefix.member.N.Key` / `.Value`, in index order; a tag without a
/// key is a validation error, one without a value has value "".
pub fn tags(form: &Form, prefix: &str) -> Result<Vec<Tag>, IamError> {
    let mut out: Vec<Tag> = Vec::new();
    for (i, m) in form.members(prefix).into_iter().enumerate() {
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

/// One page of an already filtered, stably ordered list, and the marker of
/// the next page (the index of its first item) when there is one. IAM's
/// MaxItems is 1..=1000, default 100.
pub fn page<T>(form: &Form, items: Vec<T>) -> Result<(Vec<T>, Option<String>), IamError> {
    Ok(form.page(items, "MaxItems", 100, 1000)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_in_index_order() {
        let f = Form::from_iter([
            ("Tags.member.2.Key", "k2"),
            ("Tags.member.1.Key", "k1"),
            ("Tags.member.1.Value", "v1"),
        ]);
        let read = tags(&f, "Tags").unwrap();
        assert_eq!(
            read,
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
        assert!(tags(&Form::from_iter([("Tags.member.1.Key", "aws:x")]), "Tags").is_err());
    }

    #[test]
    fn pages_by_index_marker() {
        let items: Vec<u32> = (0..5).collect();
        let (p, next) = page(&Form::from_iter([("MaxItems", "2")]), items.clone()).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = page(&Form::from_iter([("MaxItems", "2"), ("Marker", "4")]), items.clone()).unwrap();
        assert_eq!((p, next), (vec![4], None));
        assert!(page(&Form::from_iter([("MaxItems", "0")]), items.clone()).is_err());
        assert_eq!(
            page(&Form::from_iter([("Marker", "x")]), items.clone()).unwrap_err().to_string(),
            "Invalid Marker."
        );
        assert_eq!(
            page(&Form::from_iter([("MaxItems", "x")]), items).unwrap_err().to_string(),
            "Invalid value 'x' for parameter MaxItems: not an integer"
        );
    }

    #[test]
    fn missing_required_uses_aws_wording() {
        let err = IamError::from(Form::default().required("UserName").unwrap_err());
        assert!(err.to_string().contains("Value null at 'userName'"));
    }
}
