//! EC2 query parameters into typed input.
//!
//! The EC2 protocol flattens lists as `Name.N` (`VpcId.1`, `VpcId.2`) and
//! filters as `Filter.N.Name` / `Filter.N.Value.M`. Each action declares the
//! parameters it takes ([`Spec`]); any other parameter is `UnknownParameter`,
//! as EC2 answers. Scalars are validated by the caller through the typed
//! getters, so a bad value names the parameter.

use crate::Ec2Error;
use std::collections::BTreeMap;

/// The parameters one action accepts.
pub struct Spec {
    /// Single-valued parameters (`DryRun`, `MaxResults`, ...).
    pub scalars: &'static [&'static str],
    /// List parameters, by their flattened name (`VpcId` for `VpcId.N`).
    pub lists: &'static [&'static str],
    /// Whether `Filter.N.*` is accepted.
    pub filters: bool,
}

/// One `Filter.N`: values are OR'd, filters are AND'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Input {
    scalars: BTreeMap<&'static str, String>,
    lists: BTreeMap<&'static str, BTreeMap<u64, String>>,
    filters: Vec<Filter>,
}

/// Parameters common to every query request (signature version 2 and
/// presigned version 4 fields included): never the action's own.
fn is_common(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "AWSAccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "Timestamp"
            | "Expires"
            | "SecurityToken"
    ) || key.starts_with("X-Amz-")
}

/// `"12"` → 12; anything but plain ASCII digits is not an index.
fn index(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Input {
    pub fn parse(params: &[(String, String)], spec: &Spec) -> Result<Input, Ec2Error> {
        let mut input = Input::default();
        // Filter index → (name, value index → value).
        let mut filters: BTreeMap<u64, (Option<String>, BTreeMap<u64, String>)> = BTreeMap::new();
        let mut bare_filter = false;
        for (key, value) in params {
            if is_common(key) {
                continue;
            }
            if let Some(name) = spec.scalars.iter().find(|s| **s == key) {
                input.scalars.insert(name, value.clone());
                continue;
            }
            let (head, rest) = match key.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (key.as_str(), None),
            };
            if spec.filters && head == "Filter" {
                let Some(rest) = rest else {
                    // `Filter=` is what some SDKs send for an empty filter list.
                    bare_filter = true;
                    continue;
                };
                let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
                let n = index(n).ok_or_else(|| Ec2Error::UnknownParameter(key.clone()))?;
                let entry = filters.entry(n).or_default();
                match field.split_once('.') {
                    None if field == "Name" => entry.0 = Some(value.clone()),
                    Some(("Value", m)) => {
                        let m = index(m).ok_or_else(|| Ec2Error::UnknownParameter(key.clone()))?;
                        entry.1.insert(m, value.clone());
                    }
                    _ => return Err(Ec2Error::UnknownParameter(key.clone())),
                }
                continue;
            }
            if let Some(list) = spec.lists.iter().find(|l| **l == head) {
                match rest {
                    Some(n) => {
                        let n = index(n).ok_or_else(|| Ec2Error::UnknownParameter(key.clone()))?;
                        input.lists.entry(list).or_default().insert(n, value.clone());
                    }
                    // `VpcId=` with nothing in it: an empty list.
                    None if value.is_empty() => {}
                    None => return Err(Ec2Error::UnknownParameter(key.clone())),
                }
                continue;
            }
            return Err(Ec2Error::UnknownParameter(key.clone()));
        }
        if bare_filter && filters.is_empty() {
            return Err(Ec2Error::InvalidFilter("null".to_string()));
        }
        for (_, (name, values)) in filters {
            let name = name.ok_or_else(|| Ec2Error::InvalidFilter("null".to_string()))?;
            input.filters.push(Filter { name, values: values.into_values().collect() });
        }
        Ok(input)
    }

    /// A list parameter's values in index order, duplicates removed.
    pub fn list(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(items) = self.lists.get(name) {
            for v in items.values() {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        self.scalars.get(name).map(String::as_str)
    }

    /// A boolean parameter: `true` / `false` in any case.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, Ec2Error> {
        match self.string(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Ec2Error::InvalidParameterValue(format!(
                "Value ({v}) for parameter {name} is invalid. Expecting a boolean (true or false)."
            ))),
        }
    }

    /// `MaxResults`, checked against the action's bounds as EC2 does.
    pub fn max_results(&self, min: i64, max: i64) -> Result<Option<i64>, Ec2Error> {
        let Some(raw) = self.string("MaxResults") else { return Ok(None) };
        let n: i64 = raw.trim().parse().map_err(|_| {
            Ec2Error::InvalidParameterValue(format!(
                "Value ( {raw} ) for parameter maxResults is invalid. Expecting an integer."
            ))
        })?;
        if n < min {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value greater than {min}."
            )));
        }
        if n > max {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "Value ( {n} ) for parameter maxResults is invalid. Expecting a value less than {max}."
            )));
        }
        Ok(Some(n))
    }

    /// `NextToken`: every result fits on the first page (there are at most
    /// three resources and `MaxResults` is at least five), so Berth never
    /// hands out a token and any token is one it did not issue.
    pub fn no_next_token(&self) -> Result<(), Ec2Error> {
        match self.string("NextToken") {
            Some(t) if !t.is_empty() => Err(Ec2Error::InvalidPaginationToken),
            _ => Ok(()),
        }
    }

    /// `DryRun=true`: the caller may do this, which is all a dry run asks.
    pub fn dry_run(&self) -> Result<(), Ec2Error> {
        if self.bool("DryRun")? == Some(true) { Err(Ec2Error::DryRunOperation) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec { scalars: &["DryRun", "MaxResults", "NextToken"], lists: &["VpcId"], filters: true };

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn lists_in_index_order_without_duplicates() {
        let i = Input::parse(
            &p(&[
                ("Action", "DescribeVpcs"),
                ("Version", "2016-11-15"),
                ("VpcId.10", "c"),
                ("VpcId.2", "b"),
                ("VpcId.1", "a"),
                ("VpcId.3", "a"),
            ]),
            &SPEC,
        )
        .unwrap();
        assert_eq!(i.list("VpcId"), ["a", "b", "c"]);
        assert!(i.list("SubnetId").is_empty());
    }

    #[test]
    fn filters_in_order_with_values() {
        let i = Input::parse(
            &p(&[
                ("Filter.2.Name", "state"),
                ("Filter.2.Value.1", "available"),
                ("Filter.1.Value.2", "y"),
                ("Filter.1.Name", "vpc-id"),
                ("Filter.1.Value.1", "x"),
                ("Filter.3.Name", "is-default"),
            ]),
            &SPEC,
        )
        .unwrap();
        assert_eq!(
            i.filters(),
            [
                Filter { name: "vpc-id".into(), values: vec!["x".into(), "y".into()] },
                Filter { name: "state".into(), values: vec!["available".into()] },
                Filter { name: "is-default".into(), values: vec![] },
            ]
        );
    }

    #[test]
    fn unknown_parameters_are_named() {
        for key in [
            "Foo",
            "VpcId.x",
            "VpcId.1.2",
            "Filter.1.Nam",
            "Filter.x.Name",
            "Filter.1.Value.y",
            "SubnetId.1",
            "vpcid.1",
            "VpcId",
        ] {
            let err = Input::parse(&p(&[(key, "v")]), &SPEC).unwrap_err();
            assert!(matches!(&err, Ec2Error::UnknownParameter(k) if k == key), "{key}: {err:?}");
            assert_eq!(err.to_string(), format!("The parameter {key} is not recognized"));
        }
        let no_filters = Spec { scalars: &[], lists: &[], filters: false };
        assert!(matches!(Input::parse(&p(&[("Filter.1.Name", "x")]), &no_filters), Err(Ec2Error::UnknownParameter(_))));
    }

    #[test]
    fn common_parameters_are_ignored() {
        let i = Input::parse(
            &p(&[("Action", "X"), ("Version", "v"), ("X-Amz-Signature", "s"), ("AWSAccessKeyId", "a"), ("VpcId", "")]),
            &SPEC,
        )
        .unwrap();
        assert!(i.list("VpcId").is_empty());
    }

    #[test]
    fn filter_without_name_is_the_null_filter() {
        for pairs in [&[("Filter.1.Value.1", "x")][..], &[("Filter", "")][..]] {
            let err = Input::parse(&p(pairs), &SPEC).unwrap_err();
            assert_eq!(err.to_string(), "The filter 'null' is invalid");
        }
    }

    #[test]
    fn booleans() {
        let i = Input::parse(&p(&[("DryRun", "TRUE")]), &SPEC).unwrap();
        assert_eq!(i.bool("DryRun").unwrap(), Some(true));
        assert!(matches!(i.dry_run(), Err(Ec2Error::DryRunOperation)));
        let i = Input::parse(&p(&[("DryRun", "false")]), &SPEC).unwrap();
        assert!(i.dry_run().is_ok());
        let i = Input::parse(&p(&[("DryRun", "yes")]), &SPEC).unwrap();
        assert!(matches!(i.dry_run(), Err(Ec2Error::InvalidParameterValue(_))));
    }

    #[test]
    fn max_results_bounds() {
        let mr = |v: &str| Input::parse(&p(&[("MaxResults", v)]), &SPEC).unwrap().max_results(5, 1000);
        assert_eq!(mr("5").unwrap(), Some(5));
        assert_eq!(mr("1000").unwrap(), Some(1000));
        assert_eq!(
            mr("4").unwrap_err().to_string(),
            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
        );
        assert!(matches!(mr("1001"), Err(Ec2Error::InvalidParameterValue(_))));
        assert!(matches!(mr("ten"), Err(Ec2Error::InvalidParameterValue(_))));
        assert_eq!(Input::parse(&[], &SPEC).unwrap().max_results(5, 1000).unwrap(), None);
    }

    #[test]
    fn next_token() {
        assert!(Input::parse(&p(&[("NextToken", "")]), &SPEC).unwrap().no_next_token().is_ok());
        assert!(matches!(
            Input::parse(&p(&[("NextToken", "abc")]), &SPEC).unwrap().no_next_token(),
            Err(Ec2Error::InvalidPaginationToken)
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(pairs in proptest::collection::vec(("[A-Za-z.0-9-]{0,20}", ".{0,10}"), 0..12)) {
            let _ = Input::parse(&pairs, &SPEC);
        }
    }
}
