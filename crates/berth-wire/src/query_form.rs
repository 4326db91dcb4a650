//! Query-protocol form parameters as a nested view, shared by the query
//! services (ELBv2, IAM).
//!
//! Lists are flattened as `Name.member.N` and structures as
//! `Name.member.N.Field`, nesting freely (`DefaultActions.member.1.
//! ForwardConfig.TargetGroups.member.2.Weight`). A [`Form`] is a flat map
//! from which sub-forms are cut by prefix, so every shape is read the same way.
//!
//! Reads that can fail answer a [`FormError`]; each service converts it
//! into its own error (`impl From<FormError> for …Error`), so `?` works in
//! service code and each service keeps its own wording where AWS's differs.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Default)]
pub struct Form(BTreeMap<String, String>);

/// Why reading a form parameter failed. `Display` gives the wording the
/// services share (and IAM's for the rest); a service whose AWS original
/// words a variant differently matches on it in its `From` impl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A required scalar is absent.
    Missing { key: String },
    /// A scalar that should be an integer is not one.
    NotInteger { key: String, value: String },
    /// A scalar that should be `true` or `false` is neither.
    NotBoolean { key: String, value: String },
    /// An integer outside `min..=max` (e.g. a page size).
    OutOfRange { key: String, value: i64, min: i64, max: i64 },
    /// A paging marker that does not name a position in the list.
    BadMarker,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Missing { key } => write!(
                f,
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ),
            FormError::NotInteger { key, value } => {
                write!(f, "Invalid value '{value}' for parameter {key}: not an integer")
            }
            FormError::NotBoolean { key, value } => {
                write!(f, "Invalid value '{value}' for parameter {key}: not a boolean")
            }
            FormError::OutOfRange { key, value, min, max } => {
                let bound = if value < min {
                    format!("greater than or equal to {min}")
                } else {
                    format!("less than or equal to {max}")
                };
                write!(
                    f,
                    "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must have value {bound}",
                    lower_first(key)
                )
            }
            FormError::BadMarker => f.write_str("Invalid Marker."),
        }
    }
}

impl std::error::Error for FormError {}

/// `(key, value)` pairs, e.g. `[("Names.member.1", "a")].into_iter().collect()`.
impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Form {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Form {
        Form(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl Form {
    pub fn from_params(params: &[(String, String)]) -> Form {
        Form(params.iter().cloned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required scalar; missing is [`FormError::Missing`] (AWS's "must not
    /// be null" wording).
    pub fn required(&self, key: &str) -> Result<&str, FormError> {
        self.get(key).ok_or_else(|| FormError::Missing { key: key.to_string() })
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, FormError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| FormError::NotInteger {
                key: key.to_string(),
                value: v.to_string(),
            }),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, FormError> {
        match self.get(key) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(v) => Err(FormError::NotBoolean {
                key: key.to_string(),
                value: v.to_string(),
            }),
        }
    }

    /// The members of `prefix.member.N` (each a sub-form), in index order.
    /// A scalar member is the sub-form's `""` key.
    pub fn members(&self, prefix: &str) -> Vec<Form> {
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

    /// One page of an already filtered, stably ordered list, and the marker
    /// of the next page (the index of its first item) when there is one.
    /// The page size is the parameter `size_key` (ELBv2's `PageSize`, IAM's
    /// `MaxItems`), `1..=max`, `default` when absent; the position is
    /// `Marker`.
    pub fn page<T>(
        &self,
        items: Vec<T>,
        size_key: &str,
        default: usize,
        max: i64,
    ) -> Result<(Vec<T>, Option<String>), FormError> {
        let size = match self.int(size_key)? {
            None => default,
            Some(n) if (1..=max).contains(&n) => n as usize,
            Some(n) => {
                return Err(FormError::OutOfRange {
                    key: size_key.to_string(),
                    value: n,
                    min: 1,
                    max,
                });
            }
        };
        let start = match self.get("Marker") {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|i| *i <= items.len())
                .ok_or(FormError::BadMarker)?,
        };
        let total = items.len();
        let end = start.saturating_add(size).min(total);
        let next = (end < total).then(|| end.to_string());
        Ok((
            items.into_iter().skip(start).take(end - start).collect(),
            next,
        ))
    }
}

/// AWS names members in validation messages in camelCase.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_ordered_by_numeric_index_and_nest() {
        let f = Form::from_iter([
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
        assert!(f.has("Subnets") && !f.has("Sub"));
    }

    #[test]
    fn missing_required_uses_aws_wording() {
        let err = Form::default().required("UserName").unwrap_err();
        assert!(err.to_string().contains("Value null at 'userName'"));
    }

    #[test]
    fn scalars_are_checked() {
        let f = Form::from_iter([("N", "x"), ("B", "yes"), ("M", "7"), ("T", "true")]);
        assert_eq!(f.int("M"), Ok(Some(7)));
        assert_eq!(f.int("Z"), Ok(None));
        assert!(matches!(f.int("N"), Err(FormError::NotInteger { .. })));
        assert_eq!(f.bool("T"), Ok(Some(true)));
        assert!(matches!(f.bool("B"), Err(FormError::NotBoolean { .. })));
    }

    #[test]
    fn pages_by_index_marker() {
        let items: Vec<u32> = (0..5).collect();
        let page = |pairs: &[(&str, &str)]| {
            Form::from_iter(pairs.iter().copied()).page(items.clone(), "MaxItems", 100, 1000)
        };
        let (p, next) = page(&[("MaxItems", "2")]).unwrap();
        assert_eq!((p, next.as_deref()), (vec![0, 1], Some("2")));
        let (p, next) = page(&[("MaxItems", "2"), ("Marker", "4")]).unwrap();
        assert_eq!((p, next), (vec![4], None));
        let (p, next) = page(&[]).unwrap();
        assert_eq!((p.len(), next), (5, None));
        assert_eq!(
            page(&[("MaxItems", "0")]).unwrap_err().to_string(),
            "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert_eq!(
            page(&[("MaxItems", "1001")]).unwrap_err().to_string(),
            "1 validation error detected: Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000"
        );
        assert_eq!(page(&[("Marker", "x")]).unwrap_err(), FormError::BadMarker);
        assert_eq!(page(&[("Marker", "6")]).unwrap_err(), FormError::BadMarker);
    }
}
