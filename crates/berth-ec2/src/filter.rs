//! EC2 filter semantics: a resource matches when every filter matches; a
//! filter matches when any of its values matches any of the resource's values
//! for that name. Values may use `*` (any run of characters), `?` (one
//! character) and `\` (escape the next character). A filter with no values
//! matches nothing, as EC2 answers an empty list for it.

use crate::Ec2Error;
use crate::params::Filter;

/// One value a resource has for a filter name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    /// Compared with the filter value case-insensitively (`true`, `True`).
    Bool(bool),
}

impl From<&str> for Field {
    fn from(s: &str) -> Field {
        Field::Text(s.to_string())
    }
}
impl From<&String> for Field {
    fn from(s: &String) -> Field {
        Field::Text(s.clone())
    }
}
impl From<bool> for Field {
    fn from(b: bool) -> Field {
        Field::Bool(b)
    }
}
impl From<u32> for Field {
    fn from(n: u32) -> Field {
        Field::Text(n.to_string())
    }
}

/// The filters one resource type answers to.
pub trait Filterable {
    /// Every filter name this type accepts.
    const FILTERS: &'static [&'static str];
    /// Whether `tag:<key>` filters are accepted too (the type has tags).
    const TAGGED: bool;
    /// This resource's values for `name` (one of `FILTERS` or `tag:<key>`);
    /// empty when it has none.
    fn fields(&self, name: &str) -> Vec<Field>;
}

/// Refuse a filter name the resource type does not know, as EC2 does,
/// before anything is matched.
pub fn check_names<T: Filterable>(filters: &[Filter]) -> Result<(), Ec2Error> {
    for f in filters {
        if !(T::FILTERS.contains(&f.name.as_str()) || (T::TAGGED && f.name.starts_with("tag:"))) {
            return Err(Ec2Error::InvalidFilter(f.name.clone()));
        }
    }
    Ok(())
}

/// Whether `resource` passes every filter. Names must have been checked.
pub fn matches<T: Filterable>(resource: &T, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let fields = resource.fields(&f.name);
        f.values.iter().any(|pattern| {
            fields.iter().any(|field| match field {
                Field::Text(text) => glob(pattern, text),
                Field::Bool(b) => glob(&pattern.to_ascii_lowercase(), if *b { "true" } else { "false" }),
            })
        })
    })
}

/// EC2's wildcard match of a whole value (a backslash escapes a wildcard).
pub fn glob(pattern: &str, text: &str) -> bool {
    berth_glob::matches(&berth_glob::compile(pattern, true), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_exact_and_wildcards() {
        assert!(glob("abc", "abc"));
        assert!(!glob("abc", "abcd"));
        assert!(!glob("abcd", "abc"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
        assert!(glob("*", ""));
        assert!(glob("*", "anything"));
        assert!(glob("us-east-1?", "us-east-1a"));
        assert!(!glob("us-east-1?", "us-east-1"));
        assert!(glob("172.31.*", "172.31.16.0/20"));
        assert!(glob("*16*", "172.31.16.0/20"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("a*a*a", "aaaa"));
        assert!(glob(r"a\*", "a*"));
        assert!(!glob(r"a\*", "ab"));
        assert!(glob(r"a\?", "a?"));
        assert!(glob("a\\", "a\\"));
        assert!(glob("sg-*", "sg-0123"));
    }

    struct R;
    impl Filterable for R {
        const FILTERS: &'static [&'static str] = &["name", "flag", "multi"];
        const TAGGED: bool = true;
        fn fields(&self, name: &str) -> Vec<Field> {
            match name {
                "name" => vec!["alpha".into()],
                "flag" => vec![true.into()],
                "multi" => vec!["x".into(), "y".into()],
                _ => vec![],
            }
        }
    }

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter { name: name.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn values_or_filters_and() {
        assert!(matches(&R, &[]));
        assert!(matches(&R, &[f("name", &["beta", "alpha"])]));
        assert!(!matches(&R, &[f("name", &["beta"])]));
        assert!(matches(&R, &[f("name", &["alpha"]), f("flag", &["true"])]));
        assert!(!matches(&R, &[f("name", &["alpha"]), f("flag", &["false"])]));
        assert!(matches(&R, &[f("flag", &["True"])]));
        assert!(matches(&R, &[f("multi", &["y"])]));
        assert!(!matches(&R, &[f("name", &[])]));
        assert!(!matches(&R, &[f("tag:Name", &["*"])]));
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(check_names::<R>(&[f("name", &["a"]), f("tag:x", &["b"])]).is_ok());
        let err = check_names::<R>(&[f("name", &["a"]), f("nope", &["b"])]).unwrap_err();
        assert_eq!(err.to_string(), "The filter 'nope' is invalid");
    }

    proptest::proptest! {
        #[test]
        fn glob_never_panics_and_star_matches_all(p in ".{0,12}", t in ".{0,24}") {
            let _ = glob(&p, &t);
            proptest::prop_assert!(glob("*", &t));
        }

        #[test]
        fn literal_text_matches_itself(t in "[^*?\\\\]{0,24}") {
            proptest::prop_assert!(glob(&t, &t));
        }
    }
}
