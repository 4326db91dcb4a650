//! AWS-style wildcard matching: `*` matches any run of characters
//! (including none), `?` exactly one. IAM policies, ELB rule conditions and
//! EC2 filters all use it, each with its own way of writing patterns
//! (escapes, policy variables, case folding); they compile their patterns
//! into [`Token`]s and share this one matcher.

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Any,
}

/// Compile `pattern` with `*` and `?` as wildcards; with `escapes`, `\*`,
/// `\?` and `\\` stand for the literal characters (a trailing backslash
/// stands for itself).
pub fn compile(pattern: &str, escapes: bool) -> Vec<Token> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '\\' if escapes => Token::Literal(chars.next().unwrap_or('\\')),
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Literal(c),
        });
    }
    out
}

/// Whether the whole of `text` matches `pattern`, literals compared with
/// `eq(pattern_char, text_char)`. Greedy with one backtrack point (the last
/// `*` swallows one more character on a mismatch): linear in practice and
/// never exponential, so no pattern can make a caller slow.
pub fn matches_with(pattern: &[Token], text: &[char], eq: impl Fn(char, char) -> bool) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                p += 1;
                t += 1;
            }
            Some(Token::Literal(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == Token::Any)
}

/// [`matches_with`] comparing characters exactly.
pub fn matches(pattern: &[Token], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    matches_with(pattern, &text, |p, t| p == t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        matches(&compile(p, true), t)
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(m("*", ""));
        assert!(m("a*c", "abbbc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*b*", "abc"));
        assert!(!m("abc", "abcd"));
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m("a\\", "a\\"));
        assert!(!matches(&compile(r"a\*", false), "a*"));
        assert!(matches(&compile(r"a\*", false), "a\\xyz"));
    }

    #[test]
    fn custom_comparison() {
        let text: Vec<char> = "ABC".chars().collect();
        assert!(matches_with(&compile("a*", false), &text, |p, t| p.eq_ignore_ascii_case(&t)));
        assert!(!matches_with(&compile("a*", false), &text, |p, t| p == t));
    }

    #[test]
    fn no_exponential_blowup() {
        let text = "a".repeat(10_000);
        assert!(!m(&("*a".repeat(50) + "b"), &text));
    }
}
