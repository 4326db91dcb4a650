//! Wildcard patterns and policy variables: the one matcher behind actions,
//! resources, `String*Like` and `Arn*` conditions.
//!
//! A pattern is compiled to tokens first, so the text a policy variable
//! resolves to (and the escapes `${*}`, `${?}`, `${$}`) stays literal while
//! the `*` and `?` written in the policy stay wildcards.

use crate::context::RequestContext;
// `*` spans `:` and `/` in policies too, so the shared matcher fits as is.
use berth_glob::Token;

/// How `${...}` in a pattern is treated. Policy version `2008-10-17` predates
/// variables, so there the text is literal.
#[derive(Clone, Copy)]
pub(crate) enum Variables<'a> {
    /// `${...}` is plain text.
    Literal,
    /// `${key}` is replaced from the request context.
    Resolve(&'a RequestContext),
}

/// A pattern compiled against one request; `None` from [`compile`] means a
/// variable could not be resolved, which IAM treats as "does not match".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern(Vec<Token>);

/// Compiles `pattern`, substituting variables when `vars` allows it.
pub(crate) fn compile(pattern: &str, vars: Variables<'_>) -> Option<Pattern> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        // An unclosed `${` is plain text.
        if let (Variables::Resolve(ctx), true, Some(end)) =
            (vars, rest.starts_with("${"), rest.find('}'))
        {
            let inner = &rest[2..end];
            match inner {
                "*" | "?" | "$" => tokens.extend(inner.chars().map(Token::Literal)),
                _ => tokens.extend(resolve(inner, ctx)?.chars().map(Token::Literal)),
            }
            rest = &rest[end + 1..];
            continue;
        }
        tokens.push(match c {
            '*' => Token::Any,
            '?' => Token::One,
            other => Token::Literal(other),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(Pattern(tokens))
}

/// Resolves the inside of `${key}` or `${key, 'default'}`. A key with
/// several values cannot be substituted, so it counts as unresolved.
fn resolve(inner: &str, ctx: &RequestContext) -> Option<String> {
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let default = default.trim();
            let default = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or(default);
            (key.trim(), Some(default))
        }
        None => (inner.trim(), None),
    };
    match ctx.lookup(key).as_deref() {
        Some([one]) => Some(one.clone()),
        _ => default.map(str::to_owned),
    }
}

impl Pattern {
    /// Whether `text` matches, comparing characters case-insensitively when
    /// `ignore_case` is set (actions) and exactly otherwise (resources).
    pub(crate) fn matches(&self, text: &str, ignore_case: bool) -> bool {
        let text: Vec<char> = text.chars().collect();
        let eq =
            |p: char, t: char| p == t || (ignore_case && p.to_lowercase().eq(t.to_lowercase()));
        berth_glob::matches_with(&self.0, &text, eq)
    }

    /// The pattern as plain text, wildcards written back as `*` and `?`: what
    /// `StringEquals` compares against after variable substitution.
    pub(crate) fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|tok| match tok {
                Token::Literal(c) => *c,
                Token::Any => '*',
                Token::One => '?',
            })
            .collect()
    }
}

/// Matches `text` against `pattern` in one call.
pub(crate) fn wildcard_match(
    pattern: &str,
    text: &str,
    ignore_case: bool,
    vars: Variables<'_>,
) -> bool {
    if let Some(answer) = quick_match(pattern, text, ignore_case) {
        return answer;
    }
    compile(pattern, vars).is_some_and(|p| p.matches(text, ignore_case))
}

/// The answer for the shapes nearly every policy is written in — `*`, an
/// exact name, or a prefix followed by one trailing `*` — without
/// compiling the pattern (authorization runs on every request). `None` for
/// anything else (inner wildcards, `?`, variables, non-ASCII under
/// `ignore_case`), which the general matcher decides.
pub(crate) fn quick_match(pattern: &str, text: &str, ignore_case: bool) -> Option<bool> {
    if pattern == "*" {
        return Some(true);
    }
    if pattern.contains('?') || pattern.contains("${") || (ignore_case && !(pattern.is_ascii() && text.is_ascii())) {
        return None;
    }
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.find('*') {
        None => Some(eq(pattern, text)),
        Some(i) if i == pattern.len() - 1 => {
            let prefix = &pattern[..i];
            Some(text.len() >= prefix.len() && text.is_char_boundary(prefix.len()) && eq(prefix, &text[..prefix.len()]))
        }
        Some(_) => None,
    }
}

/// `ArnLike`/`ArnEquals`: both ARNs are split into their six `:`-separated
/// parts and each part is matched on its own, so a `*` never crosses a
/// part boundary (the resource part, the last, may itself contain `:`).
pub(crate) fn arn_match(pattern: &str, arn: &str, vars: Variables<'_>) -> bool {
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    pattern.len() == 6
        && arn.len() == 6
        && pattern
            .iter()
            .zip(&arn)
            .all(|(p, a)| wildcard_match(p, a, false, vars))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lit(pattern: &str, text: &str) -> bool {
        wildcard_match(pattern, text, false, Variables::Literal)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(lit("*", ""));
        assert!(lit("*", "anything:at/all"));
        assert!(lit("a*c", "abbbc"));
        assert!(lit("a*c", "ac"));
        assert!(!lit("a*c", "acb"));
        assert!(lit("a?c", "abc"));
        assert!(!lit("a?c", "ac"));
        assert!(lit("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c"));
        assert!(lit("*a*b*", "xxaxxbxx"));
        assert!(!lit("*a*b*", "xxbxxaxx"));
    }

    #[test]
    fn case_folding_is_opt_in() {
        assert!(wildcard_match(
            "ecs:describe*",
            "ECS:DescribeTasks",
            true,
            Variables::Literal
        ));
        assert!(!lit("ecs:describe*", "ECS:DescribeTasks"));
    }

    #[test]
    fn variables_and_escapes() {
        let ctx = RequestContext::new("s3:GetObject", "x").with_username("bob");
        let vars = Variables::Resolve(&ctx);
        assert!(wildcard_match(
            "home/${aws:username}/*",
            "home/bob/file",
            false,
            vars
        ));
        assert!(!wildcard_match(
            "home/${aws:username}/*",
            "home/alice/file",
            false,
            vars
        ));
        // Escapes are literal characters, not wildcards.
        assert!(wildcard_match("a${*}b", "a*b", false, vars));
        assert!(!wildcard_match("a${*}b", "axxb", false, vars));
        assert!(wildcard_match("a${?}${$}", "a?$", false, vars));
        // Keys are case-insensitive; defaults apply when a key is missing.
        assert!(wildcard_match("${AWS:UserName}", "bob", false, vars));
        assert!(wildcard_match(
            "${aws:PrincipalTag/team, 'none'}",
            "none",
            false,
            vars
        ));
        // An unresolved variable never matches, not even `*`-like text.
        assert!(!wildcard_match("${aws:PrincipalTag/team}", "", false, vars));
        // Under version 2008-10-17 the text is literal.
        assert!(lit("${aws:username}", "${aws:username}"));
    }

    #[test]
    fn substituted_values_are_literal() {
        let ctx = RequestContext::new("a:b", "x").with_username("b*b");
        let vars = Variables::Resolve(&ctx);
        assert!(wildcard_match("${aws:username}", "b*b", false, vars));
        assert!(!wildcard_match("${aws:username}", "bob", false, vars));
    }

    #[test]
    fn arn_parts_match_separately() {
        let v = Variables::Literal;
        assert!(arn_match(
            "arn:aws:iam::*:user/*",
            "arn:aws:iam::123456789012:user/a:b",
            v
        ));
        assert!(!arn_match(
            "arn:aws:iam::*",
            "arn:aws:iam::123456789012:user/a",
            v
        ));
        assert!(!arn_match("not-an-arn", "not-an-arn", v));
    }

    proptest! {
        /// A pattern without wildcards matches only itself.
        #[test]
        fn literal_pattern_matches_only_itself(p in "[a-zA-Z0-9:/._-]{0,16}", t in "[a-zA-Z0-9:/._-]{0,16}") {
            prop_assert!(lit(&p, &p));
            prop_assert_eq!(lit(&p, &t), p == t);
        }

        /// `*` alone matches everything; `prefix*` matches exactly the strings with that prefix.
        #[test]
        fn star_is_any_suffix(p in "[a-z:/]{0,8}", t in "[a-z:/]{0,16}") {
            prop_assert!(lit("*", &t));
            prop_assert_eq!(lit(&format!("{p}*"), &t), t.starts_with(&p));
        }

        /// The fast path, when it answers, answers as the general matcher
        /// does, in both case modes (including non-ASCII text).
        #[test]
        fn quick_match_agrees_with_the_matcher(p in "[a-cA-C:*?é]{0,6}", t in "[a-cA-C:é]{0,8}", ignore_case in any::<bool>()) {
            if let Some(quick) = quick_match(&p, &t, ignore_case) {
                let general = compile(&p, Variables::Literal).is_some_and(|c| c.matches(&t, ignore_case));
                prop_assert_eq!(quick, general, "pattern {:?} text {:?} ignore_case {}", p, t, ignore_case);
            }
        }
    }
}
