//! Condition operators: parsing their names and deciding one condition
//! (operator, key, values) against a request, per the IAM reference for
//! condition operators, `...IfExists`, `Null` and the set qualifiers.

use berth_clock::civil::days_from_civil;
use std::net::IpAddr;

use crate::context::RequestContext;
use crate::error::PolicyError;
use crate::matching::{Variables, arn_match, compile};

/// The string comparisons of `String*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringOp {
    Equals,
    NotEquals,
    EqualsIgnoreCase,
    NotEqualsIgnoreCase,
    Like,
    NotLike,
}

/// The ordered comparisons shared by `Numeric*` and `Date*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equals,
    NotEquals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// An operator without its set qualifier and `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseOperator {
    String(StringOp),
    Numeric(Comparison),
    Date(Comparison),
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// `ForAnyValue:` / `ForAllValues:`, for multivalued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// A full condition operator such as `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub base: BaseOperator,
    pub qualifier: Option<SetQualifier>,
    pub if_exists: bool,
}

impl Operator {
    /// Parses an operator name; names are case-sensitive, as in IAM.
    pub fn parse(name: &str) -> Result<Operator, PolicyError> {
        let unknown = || PolicyError::ConditionOperator(name.to_owned());
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let cmp = |s: &str| match s {
            "Equals" => Some(Comparison::Equals),
            "NotEquals" => Some(Comparison::NotEquals),
            "LessThan" => Some(Comparison::LessThan),
            "LessThanEquals" => Some(Comparison::LessThanEquals),
            "GreaterThan" => Some(Comparison::GreaterThan),
            "GreaterThanEquals" => Some(Comparison::GreaterThanEquals),
            _ => None,
        };
        let base = match rest {
            "StringEquals" => BaseOperator::String(StringOp::Equals),
            "StringNotEquals" => BaseOperator::String(StringOp::NotEquals),
            "StringEqualsIgnoreCase" => BaseOperator::String(StringOp::EqualsIgnoreCase),
            "StringNotEqualsIgnoreCase" => BaseOperator::String(StringOp::NotEqualsIgnoreCase),
            "StringLike" => BaseOperator::String(StringOp::Like),
            "StringNotLike" => BaseOperator::String(StringOp::NotLike),
            "Bool" => BaseOperator::Bool,
            "IpAddress" => BaseOperator::IpAddress,
            "NotIpAddress" => BaseOperator::NotIpAddress,
            "ArnEquals" => BaseOperator::ArnEquals,
            "ArnLike" => BaseOperator::ArnLike,
            "ArnNotEquals" => BaseOperator::ArnNotEquals,
            "ArnNotLike" => BaseOperator::ArnNotLike,
            // `NullIfExists` is meaningless: Null is about existence.
            "Null" if !if_exists => BaseOperator::Null,
            other => {
                if let Some(c) = other.strip_prefix("Numeric").and_then(cmp) {
                    BaseOperator::Numeric(c)
                } else if let Some(c) = other.strip_prefix("Date").and_then(cmp) {
                    BaseOperator::Date(c)
                } else {
                    return Err(unknown());
                }
            }
        };
        Ok(Operator {
            base,
            qualifier,
            if_exists,
        })
    }

    /// Negated operators ask that the key match *none* of the values, and
    /// are true when the key is missing.
    pub fn is_negated(&self) -> bool {
        matches!(
            self.base,
            BaseOperator::String(
                StringOp::NotEquals | StringOp::NotEqualsIgnoreCase | StringOp::NotLike
            ) | BaseOperator::Numeric(Comparison::NotEquals)
                | BaseOperator::Date(Comparison::NotEquals)
                | BaseOperator::NotIpAddress
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnNotLike
        )
    }

    /// Checks at parse time that `value` is readable by this operator, so a
    /// typo is reported instead of silently never matching. Values holding a
    /// policy variable are only known at evaluation time.
    fn validate(&self, name: &str, value: &str) -> Result<(), PolicyError> {
        let ok = value.contains("${")
            || match self.base {
                BaseOperator::Numeric(_) => value.trim().parse::<f64>().is_ok(),
                BaseOperator::Date(_) => parse_date(value).is_some(),
                BaseOperator::Bool | BaseOperator::Null => {
                    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
                }
                BaseOperator::IpAddress | BaseOperator::NotIpAddress => parse_cidr(value).is_some(),
                _ => true,
            };
        if ok {
            Ok(())
        } else {
            Err(PolicyError::ConditionValue {
                operator: name.to_owned(),
                value: value.to_owned(),
            })
        }
    }
}

/// One condition: an operator applied to one key with one or more values.
/// A statement's conditions are ANDed; a condition's values are ORed.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub operator: Operator,
    pub key: String,
    pub values: Vec<String>,
}

impl Condition {
    /// Builds and validates a condition as read from a policy.
    pub(crate) fn new(
        operator_name: &str,
        key: String,
        values: Vec<String>,
    ) -> Result<Self, PolicyError> {
        let operator = Operator::parse(operator_name)?;
        for value in &values {
            operator.validate(operator_name, value)?;
        }
        Ok(Condition {
            operator,
            key,
            values,
        })
    }

    /// Whether the request satisfies this condition.
    pub(crate) fn evaluate(&self, ctx: &RequestContext, vars: Variables<'_>) -> bool {
        let request = ctx.lookup(&self.key);
        if self.operator.base == BaseOperator::Null {
            // `"true"` asks that the key be absent, `"false"` that it be present.
            let absent = request.is_none();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == absent);
        }
        let negated = self.operator.is_negated();
        let Some(request) = request else {
            return match self.operator.qualifier {
                // An empty set satisfies "all values" vacuously.
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => self.operator.if_exists,
                None => self.operator.if_exists || negated,
            };
        };
        // For a negated operator, one request value "passes" when it matches
        // none of the policy values.
        let passes = |value: &String| self.matches_any(value, vars) != negated;
        match self.operator.qualifier {
            Some(SetQualifier::ForAllValues) => request.iter().all(passes),
            Some(SetQualifier::ForAnyValue) => request.iter().any(passes),
            None if negated => !request.iter().any(|v| self.matches_any(v, vars)),
            None => request.iter().any(|v| self.matches_any(v, vars)),
        }
    }

    /// Whether `value` matches at least one policy value under the
    /// operator's positive form (`StringNotEquals` compares as `StringEquals`).
    fn matches_any(&self, value: &str, vars: Variables<'_>) -> bool {
        self.values
            .iter()
            .any(|policy_value| match self.operator.base {
                BaseOperator::String(op) => {
                    let Some(pattern) = compile(policy_value, vars) else {
                        return false;
                    };
                    match op {
                        StringOp::Equals | StringOp::NotEquals => pattern.to_text() == value,
                        StringOp::EqualsIgnoreCase | StringOp::NotEqualsIgnoreCase => {
                            pattern.to_text().to_lowercase() == value.to_lowercase()
                        }
                        StringOp::Like | StringOp::NotLike => pattern.matches(value, false),
                    }
                }
                BaseOperator::Numeric(cmp) => {
                    let parse = |s: &str| s.trim().parse::<f64>().ok();
                    match (
                        parse(value),
                        substitute(policy_value, vars).as_deref().and_then(parse),
                    ) {
                        (Some(a), Some(b)) => compare(cmp, a.partial_cmp(&b)),
                        _ => false,
                    }
                }
                BaseOperator::Date(cmp) => {
                    match (
                        parse_date(value),
                        substitute(policy_value, vars)
                            .as_deref()
                            .and_then(parse_date),
                    ) {
                        (Some(a), Some(b)) => compare(cmp, Some(a.cmp(&b))),
                        _ => false,
                    }
                }
                BaseOperator::Bool => {
                    substitute(policy_value, vars).is_some_and(|p| p.eq_ignore_ascii_case(value))
                }
                BaseOperator::IpAddress | BaseOperator::NotIpAddress => {
                    match (
                        value.parse::<IpAddr>().ok(),
                        substitute(policy_value, vars)
                            .as_deref()
                            .and_then(parse_cidr),
                    ) {
                        (Some(ip), Some(net)) => cidr_contains(net, ip),
                        _ => false,
                    }
                }
                BaseOperator::ArnEquals
                | BaseOperator::ArnLike
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnNotLike => arn_match(policy_value, value, vars),
                BaseOperator::Null => false,
            })
    }
}

/// A policy value with variables substituted, wildcards left as written.
fn substitute(policy_value: &str, vars: Variables<'_>) -> Option<String> {
    compile(policy_value, vars).map(|p| p.to_text())
}

/// Applies a comparison to an ordering (`None`: NaN, never matches).
fn compare(cmp: Comparison, ordering: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let Some(o) = ordering else { return false };
    match cmp {
        // NotEquals compares as Equals; the caller negates.
        Comparison::Equals | Comparison::NotEquals => o == Equal,
        Comparison::LessThan => o == Less,
        Comparison::LessThanEquals => o != Greater,
        Comparison::GreaterThan => o == Greater,
        Comparison::GreaterThanEquals => o != Less,
    }
}

/// Parses `addr` or `addr/prefix` (IPv4 or IPv6); a bare address is a
/// network of one.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((addr, prefix)) => (
            addr.parse::<IpAddr>().ok()?,
            Some(prefix.parse::<u8>().ok()?),
        ),
        None => (s.trim().parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some((addr, prefix))
}

/// Whether `ip` lies in the network; families never mix.
fn cidr_contains((net, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    let (net, ip, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let host_bits = u32::from(bits - prefix);
    // checked_shr: a /0 shifts by the full width, meaning "everything".
    (net ^ ip).checked_shr(host_bits).unwrap_or(0) == 0
}

/// Parses an IAM date: epoch seconds, or ISO 8601 (`2026-01-31`,
/// `2026-01-31T12:00Z`, `2026-01-31T12:00:00.5+02:00`; no zone means UTC).
/// Returns milliseconds since the epoch so instants compare exactly.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Some(i128::from(secs) * 1000);
    }
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // m and d were just checked to be in 1..=12 and 1..=31.
    let mut millis = i128::from(days_from_civil(y, m as u32, d as u32)) * 86_400_000;
    if let Some(time) = time {
        let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (sign, zone) = (if &time[i..=i] == "-" { -1 } else { 1 }, &time[i + 1..]);
            let (h, mm) = match zone.split_once(':') {
                Some((h, mm)) => (num(h)?, num(mm)?),
                None if zone.len() == 4 => (num(&zone[..2])?, num(&zone[2..])?),
                None => (num(zone)?, 0),
            };
            (&time[..i], sign * (h * 60 + mm))
        } else {
            (time, 0)
        };
        let (clock, frac) = match clock.split_once('.') {
            Some((c, f)) => (c, Some(f)),
            None => (clock, None),
        };
        let mut hms = clock.split(':');
        let h = num(hms.next()?)?;
        let mi = num(hms.next()?)?;
        let sec = hms.next().map(num).unwrap_or(Some(0))?;
        if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let frac_ms = match frac {
            Some(f) => {
                let digits: String = f.chars().chain("000".chars()).take(3).collect();
                num(&digits)?
            }
            None => 0,
        };
        millis += i128::from(((h * 60 + mi - offset) * 60 + sec) * 1000 + frac_ms);
    }
    Some(millis)
}


#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        Condition::new(
            op,
            key.to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        )
        .unwrap()
    }

    fn eval(c: &Condition, ctx: &RequestContext) -> bool {
        c.evaluate(ctx, Variables::Resolve(ctx))
    }

    fn ctx() -> RequestContext {
        RequestContext::new("ecs:RunTask", "*")
    }

    #[test]
    fn operator_names() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.base, BaseOperator::String(StringOp::Like));
        assert_eq!(op.qualifier, Some(SetQualifier::ForAllValues));
        assert!(op.if_exists);
        assert_eq!(
            Operator::parse("DateLessThanEquals").unwrap().base,
            BaseOperator::Date(Comparison::LessThanEquals)
        );
        for bad in [
            "StringEqualz",
            "stringequals",
            "NullIfExists",
            "Numeric",
            "ForSomeValues:StringEquals",
        ] {
            assert_eq!(
                Operator::parse(bad),
                Err(PolicyError::ConditionOperator(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (op, value) in [
            ("NumericLessThan", "ten"),
            ("DateLessThan", "yesterday"),
            ("Bool", "yes"),
            ("IpAddress", "10.0.0.0/33"),
        ] {
            assert!(
                matches!(
                    Condition::new(op, "k".into(), vec![value.into()]),
                    Err(PolicyError::ConditionValue { .. })
                ),
                "{op}"
            );
        }
    }

    #[test]
    fn string_family() {
        let c = ctx().with_key("aws:RequestedRegion", "eu-west-1");
        assert!(eval(
            &cond(
                "StringEquals",
                "aws:requestedregion",
                &["us-east-1", "eu-west-1"]
            ),
            &c
        ));
        assert!(!eval(
            &cond("StringEquals", "aws:RequestedRegion", &["EU-WEST-1"]),
            &c
        ));
        assert!(eval(
            &cond(
                "StringEqualsIgnoreCase",
                "aws:RequestedRegion",
                &["EU-WEST-1"]
            ),
            &c
        ));
        assert!(!eval(
            &cond(
                "StringNotEquals",
                "aws:RequestedRegion",
                &["us-east-1", "eu-west-1"]
            ),
            &c
        ));
        assert!(eval(
            &cond("StringNotEquals", "aws:RequestedRegion", &["us-east-1"]),
            &c
        ));
        assert!(!eval(
            &cond(
                "StringNotEqualsIgnoreCase",
                "aws:RequestedRegion",
                &["EU-West-1"]
            ),
            &c
        ));
        assert!(eval(
            &cond("StringLike", "aws:RequestedRegion", &["eu-*"]),
            &c
        ));
        assert!(!eval(
            &cond("StringLike", "aws:RequestedRegion", &["us-*"]),
            &c
        ));
        assert!(eval(
            &cond("StringNotLike", "aws:RequestedRegion", &["us-*"]),
            &c
        ));
        // StringEquals treats `*` literally.
        assert!(!eval(
            &cond("StringEquals", "aws:RequestedRegion", &["eu-*"]),
            &c
        ));
    }

    #[test]
    fn missing_keys() {
        let c = ctx();
        assert!(!eval(
            &cond("StringEquals", "aws:RequestedRegion", &["x"]),
            &c
        ));
        assert!(!eval(
            &cond("StringLike", "aws:RequestedRegion", &["*"]),
            &c
        ));
        assert!(eval(
            &cond("StringNotEquals", "aws:RequestedRegion", &["x"]),
            &c
        ));
        assert!(eval(
            &cond("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"]),
            &c
        ));
        assert!(eval(
            &cond("StringEqualsIfExists", "aws:RequestedRegion", &["x"]),
            &c
        ));
        assert!(!eval(&cond("NumericLessThan", "s3:max-keys", &["10"]), &c));
        assert!(eval(
            &cond("NumericLessThanIfExists", "s3:max-keys", &["10"]),
            &c
        ));
        // IfExists still applies the test when the key is present.
        let c = c.with_key("aws:RequestedRegion", "y");
        assert!(!eval(
            &cond("StringEqualsIfExists", "aws:RequestedRegion", &["x"]),
            &c
        ));
    }

    #[test]
    fn numeric_family() {
        let c = ctx().with_key("s3:max-keys", "10");
        let yes = |op: &str, v: &str| eval(&cond(op, "s3:max-keys", &[v]), &c);
        assert!(yes("NumericEquals", "10") && yes("NumericEquals", "10.0"));
        assert!(!yes("NumericNotEquals", "10") && yes("NumericNotEquals", "11"));
        assert!(yes("NumericLessThan", "11") && !yes("NumericLessThan", "10"));
        assert!(yes("NumericLessThanEquals", "10") && !yes("NumericLessThanEquals", "9"));
        assert!(yes("NumericGreaterThan", "9") && !yes("NumericGreaterThan", "10"));
        assert!(yes("NumericGreaterThanEquals", "10") && !yes("NumericGreaterThanEquals", "11"));
        // A request value that is not a number matches nothing.
        let c = ctx().with_key("s3:max-keys", "many");
        assert!(!eval(
            &cond("NumericGreaterThan", "s3:max-keys", &["0"]),
            &c
        ));
    }

    #[test]
    fn date_family() {
        let c = ctx().with_key("aws:CurrentTime", "2026-06-15T12:00:00Z");
        let yes = |op: &str, v: &str| eval(&cond(op, "aws:CurrentTime", &[v]), &c);
        assert!(yes("DateLessThan", "2026-12-31T23:59:59Z"));
        assert!(!yes("DateLessThan", "2026-06-15T12:00:00Z"));
        assert!(yes("DateLessThanEquals", "2026-06-15T12:00:00Z"));
        assert!(yes("DateGreaterThan", "2026-01-01"));
        assert!(yes("DateGreaterThanEquals", "2026-06-15T14:00:00+02:00"));
        assert!(yes("DateEquals", "2026-06-15T12:00:00.000Z"));
        assert!(yes("DateNotEquals", "2026-06-15"));
        // Epoch seconds compare with ISO dates: 1781524800 is 2026-06-15T12:00:00Z.
        assert!(yes("DateEquals", "1781524800"));
        let epoch = ctx().with_key("aws:EpochTime", "1781524800");
        assert!(eval(
            &cond("DateLessThan", "aws:EpochTime", &["2027-01-01T00:00:00Z"]),
            &epoch
        ));
    }

    #[test]
    fn date_parsing() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_date("1970-01-01T00:00:00.25Z"), Some(250));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800_000));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("noon"), None);
    }

    #[test]
    fn bool_operator() {
        let c = ctx().with_key("aws:SecureTransport", "true");
        assert!(eval(&cond("Bool", "aws:SecureTransport", &["true"]), &c));
        assert!(eval(&cond("Bool", "aws:SecureTransport", &["TRUE"]), &c));
        assert!(!eval(&cond("Bool", "aws:SecureTransport", &["false"]), &c));
        assert!(!eval(
            &cond("Bool", "aws:MultiFactorAuthPresent", &["false"]),
            &c
        ));
        assert!(eval(
            &cond("BoolIfExists", "aws:MultiFactorAuthPresent", &["false"]),
            &c
        ));
    }

    #[test]
    fn ip_addresses() {
        let v4 = ctx().with_key("aws:SourceIp", "203.0.113.7");
        let yes = |c: &RequestContext, op: &str, v: &[&str]| eval(&cond(op, "aws:SourceIp", v), c);
        assert!(yes(&v4, "IpAddress", &["203.0.113.0/24"]));
        assert!(yes(&v4, "IpAddress", &["192.0.2.0/24", "203.0.113.0/24"]));
        assert!(!yes(&v4, "IpAddress", &["192.0.2.0/24"]));
        assert!(yes(&v4, "IpAddress", &["203.0.113.7"]));
        assert!(yes(&v4, "IpAddress", &["0.0.0.0/0"]));
        assert!(yes(&v4, "NotIpAddress", &["192.0.2.0/24"]));
        assert!(!yes(&v4, "NotIpAddress", &["203.0.113.0/24"]));
        let v6 = ctx().with_key("aws:SourceIp", "2001:db8::1");
        assert!(yes(&v6, "IpAddress", &["2001:db8::/32"]));
        assert!(!yes(&v6, "IpAddress", &["2001:db9::/32", "203.0.113.0/24"]));
        assert!(yes(&v6, "IpAddress", &["::/0"]));
    }

    #[test]
    fn arn_family() {
        let c = ctx().with_key("aws:PrincipalArn", "arn:aws:iam::123456789012:role/admin");
        let yes = |op: &str, v: &str| eval(&cond(op, "aws:PrincipalArn", &[v]), &c);
        assert!(yes("ArnEquals", "arn:aws:iam::123456789012:role/admin"));
        assert!(yes("ArnLike", "arn:aws:iam::*:role/*"));
        assert!(!yes("ArnLike", "arn:aws:iam::*:user/*"));
        assert!(yes("ArnNotEquals", "arn:aws:iam::123456789012:role/other"));
        assert!(!yes("ArnNotLike", "arn:aws:iam::123456789012:role/*"));
        // Principal fields of the context stand in for the global keys.
        let c = ctx().with_principal_arn("arn:aws:iam::123456789012:user/bob");
        assert!(eval(
            &cond("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/*"]),
            &c
        ));
    }

    #[test]
    fn null_operator() {
        let c = ctx().with_key("aws:TokenIssueTime", "2026-01-01T00:00:00Z");
        assert!(eval(&cond("Null", "aws:TokenIssueTime", &["false"]), &c));
        assert!(!eval(&cond("Null", "aws:TokenIssueTime", &["true"]), &c));
        assert!(eval(&cond("Null", "aws:MultiFactorAuthAge", &["true"]), &c));
        assert!(!eval(
            &cond("Null", "aws:MultiFactorAuthAge", &["false"]),
            &c
        ));
    }

    #[test]
    fn set_qualifiers() {
        let tags = |v: &[&str]| ctx().with_values("aws:TagKeys", v.iter().copied());
        let any = cond("ForAnyValue:StringEquals", "aws:TagKeys", &["team", "env"]);
        let all = cond("ForAllValues:StringEquals", "aws:TagKeys", &["team", "env"]);
        assert!(eval(&any, &tags(&["team", "owner"])));
        assert!(!eval(&any, &tags(&["owner"])));
        assert!(
            !eval(&any, &ctx()),
            "ForAnyValue is false when the key is missing"
        );
        assert!(eval(&all, &tags(&["team", "env"])));
        assert!(!eval(&all, &tags(&["team", "owner"])));
        assert!(
            eval(&all, &ctx()),
            "ForAllValues is true when the key is missing"
        );
        // Negated operators: each request value must avoid every policy value.
        let none = cond("ForAllValues:StringNotEquals", "aws:TagKeys", &["secret"]);
        assert!(eval(&none, &tags(&["team", "env"])));
        assert!(!eval(&none, &tags(&["team", "secret"])));
        let some = cond("ForAnyValue:StringNotLike", "aws:TagKeys", &["t*"]);
        assert!(eval(&some, &tags(&["team", "env"])));
        assert!(!eval(&some, &tags(&["team", "tier"])));
        assert!(eval(
            &cond("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", &["x"]),
            &ctx()
        ));
    }

    #[test]
    fn variables_in_values() {
        let c = ctx()
            .with_username("bob")
            .with_key("s3:prefix", "home/bob/docs");
        assert!(eval(
            &cond("StringLike", "s3:prefix", &["home/${aws:username}/*"]),
            &c
        ));
        assert!(eval(
            &cond("StringEquals", "aws:username", &["${aws:username}"]),
            &c
        ));
        let alice = ctx()
            .with_username("alice")
            .with_key("s3:prefix", "home/bob/docs");
        assert!(!eval(
            &cond("StringLike", "s3:prefix", &["home/${aws:username}/*"]),
            &alice
        ));
        // Version 2008-10-17: no substitution.
        assert!(c.lookup("s3:prefix").is_some());
        assert!(
            !cond("StringLike", "s3:prefix", &["home/${aws:username}/*"])
                .evaluate(&c, Variables::Literal)
        );
    }
}
