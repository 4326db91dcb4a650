//! IAM's input rules: names, paths, policy documents, and fresh ids.

use crate::error::IamError;
use rand::Rng;

/// A user, group, role, policy or instance profile name: `[\w+=,.@-]`,
/// 1..=`max` characters. `member` is the parameter as AWS names it in
/// messages (`userName`).
pub fn name(member: &str, value: &str, max: usize) -> Result<(), IamError> {
    let len = value.chars().count();
    if len < 1 || len > max {
        let bound = if len < 1 {
            "greater than or equal to 1".to_string()
        } else {
            format!("less than or equal to {max}")
        };
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// A path: `/`, or `/` + printable ASCII + `/`, at most 512 characters.
pub fn path(member: &str, value: &str) -> Result<(), IamError> {
    let ok = value == "/"
        || (value.len() >= 2
            && value.len() <= 512
            && value.starts_with('/')
            && value.ends_with('/')
            && value.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        return Ok(());
    }
    Err(IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
    )))
}

/// A path prefix for List calls: starts with `/`.
pub fn path_prefix(value: &str) -> Result<(), IamError> {
    if value.starts_with('/')
        && value.len() <= 512
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Ok(());
    }
    Err(IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*"
    )))
}

/// An identity policy document (managed or inline).
pub fn policy_document(doc: &str) -> Result<(), IamError> {
    if doc.chars().count() > 131_072 || doc.trim().is_empty() {
        return Err(IamError::MalformedPolicyDocument(
            "Syntax errors in policy.".into(),
        ));
    }
    berth_iam_policy::Policy::parse(doc)
        .map(|_| ())
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))
}

/// The size IAM counts against its quotas: characters other than whitespace.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// A managed policy version's document: parsed, and within IAM's 6,144
/// characters.
pub fn managed_document(doc: &str) -> Result<(), IamError> {
    if policy_size(doc) > 6144 {
        return Err(IamError::LimitExceeded(
            "Cannot exceed quota for PolicySize: 6144".into(),
        ));
    }
    policy_document(doc)
}

/// A role's trust policy: within IAM's default 2,048 characters, and valid.
pub fn trust_document(doc: &str) -> Result<(), IamError> {
    if policy_size(doc) > 2048 {
        return Err(IamError::LimitExceeded(
            "Cannot exceed quota for ACLSizePerRole: 2048".into(),
        ));
    }
    crate::trust::validate(doc)
}

pub fn description(member: &str, value: &str, max: usize) -> Result<(), IamError> {
    if value.chars().count() > max {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `prefix` + `n` random characters of `[A-Z0-9]` (IAM's unique ids and
/// access key ids).
pub fn random_id(prefix: &str, n: usize) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..n)
        .map(|_| UPPER_DIGITS[rng.random_range(0..UPPER_DIGITS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A 40-character secret access key of AWS's alphabet.
pub fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(name("userName", "a+b=c,d.e@f-g_h", 64).is_ok());
        assert!(name("userName", "a b", 64).is_err());
        assert!(name("userName", &"a".repeat(65), 64).is_err());
        assert!(name("userName", "", 64).is_err());
        assert!(path("path", "/").is_ok());
        assert!(path("path", "/a/b/").is_ok());
        assert!(path("path", "/a").is_err());
        assert!(path("path", "a/").is_err());
    }

    #[test]
    fn ids_have_iam_shapes() {
        let id = random_id("AIDA", 17);
        assert_eq!(id.len(), 21);
        assert!(id[4..].bytes().all(|b| UPPER_DIGITS.contains(&b)));
        assert_eq!(random_secret().len(), 40);
    }

    #[test]
    fn documents_report_the_parser_message() {
        let err = policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, IamError::MalformedPolicyDocument(ref m) if m == "Policy statement must contain actions."),
            "{err}"
        );
        assert!(policy_document("not json").is_err());
    }
}
