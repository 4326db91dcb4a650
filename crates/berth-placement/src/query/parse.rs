//! A recursive-descent parser working straight on the text: what a token is
//! depends on where it stands (a regular expression may contain `(`, `|`
//! and `*`), so there is no separate lexer.

use super::{
    Argument, Condition, Expr, MAX_DEPTH, MAX_EXPRESSION_LEN, Operator, Pattern, QueryError,
    Subject,
};

pub(super) fn parse(text: &str) -> Result<Expr, QueryError> {
    let len = text.chars().count();
    if len > MAX_EXPRESSION_LEN {
        return Err(QueryError::TooLong {
            len,
            max: MAX_EXPRESSION_LEN,
        });
    }
    if text.trim().is_empty() {
        return Err(QueryError::Empty);
    }
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    let expr = p.parse_or()?;
    p.skip_ws();
    if p.pos < p.src.len() {
        return Err(p.unexpected("'and', 'or' or the end of the expression"));
    }
    Ok(expr)
}

/// Characters a value may contain without quotes.
pub(super) fn is_bare_value_char(c: char) -> bool {
    !c.is_whitespace() && !"()[],&|'\"!=<>~".contains(c)
}

/// Characters that continue a word (keyword, subject or operator word).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || "_:.-/\\@".contains(c)
}

fn is_subject_char(c: char) -> bool {
    !c.is_whitespace() && !"()[],&|'\"!=<>~".contains(c)
}

fn is_attribute_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-./\\".contains(c)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
    }

    /// Consumes `sym` if the text continues with it.
    fn eat_sym(&mut self, sym: &str) -> bool {
        if self.rest().starts_with(sym) {
            self.pos += sym.len();
            true
        } else {
            false
        }
    }

    /// Consumes the keyword `word` (case-insensitive) if it stands here as a
    /// whole word.
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word)
            && !rest[word.len()..].chars().next().is_some_and(is_word_char)
        {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn describe_here(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            return "end of expression".to_owned();
        }
        let token: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(20)
            .collect();
        let token = if token.is_empty() {
            rest.chars().take(1).collect()
        } else {
            token
        };
        format!("{token:?}")
    }

    fn unexpected(&self, expected: &'static str) -> QueryError {
        QueryError::Unexpected {
            at: self.pos,
            found: self.describe_here(),
            expected,
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(QueryError::TooDeep { max: MAX_DEPTH })
        } else {
            Ok(())
        }
    }

    fn parse_or(&mut self) -> Result<Expr, QueryError> {
        let mut lhs = self.parse_and()?;
        loop {
            self.skip_ws();
            if self.eat_sym("||") || self.eat_word("or") {
                let rhs = self.parse_and()?;
                lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn parse_and(&mut self) -> Result<Expr, QueryError> {
        let mut lhs = self.parse_unary()?;
        loop {
            self.skip_ws();
            if self.eat_sym("&&") || self.eat_word("and") {
                let rhs = self.parse_unary()?;
                lhs = Expr::And(Box::new(lhs), Box::new(rhs));
            } else {
                return Ok(lhs);
            }
        }
    }

    fn parse_unary(&mut self) -> Result<Expr, QueryError> {
        self.skip_ws();
        if self.eat_sym("(") {
            self.enter()?;
            let inner = self.parse_or()?;
            self.skip_ws();
            if !self.eat_sym(")") {
                return Err(self.unexpected("')'"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        if self.eat_word("not") || self.eat_sym("!") {
            self.enter()?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_condition().map(Expr::Cond)
    }

    fn parse_condition(&mut self) -> Result<Condition, QueryError> {
        let at = self.pos;
        let token: &str = {
            let rest = self.rest();
            let end = rest
                .find(|c: char| !is_subject_char(c))
                .unwrap_or(rest.len());
            &rest[..end]
        };
        if token.is_empty() {
            return Err(self.unexpected("a subject such as attribute:NAME, '(' or 'not'"));
        }
        let subject = match token {
            "agentConnected" => Subject::AgentConnected,
            "agentVersion" => Subject::AgentVersion,
            "ec2InstanceId" => Subject::Ec2InstanceId,
            "runningTasksCount" => Subject::RunningTasksCount,
            "task:group" => Subject::TaskGroup,
            "registeredAt" => {
                return Err(QueryError::UnsupportedSubject {
                    at,
                    subject: token.to_owned(),
                });
            }
            _ => match token.strip_prefix("attribute:") {
                Some(name) if !name.is_empty() && name.chars().all(is_attribute_name_char) => {
                    Subject::Attribute(name.to_owned())
                }
                _ => {
                    return Err(QueryError::UnknownSubject {
                        at,
                        subject: token.to_owned(),
                    });
                }
            },
        };
        self.pos += token.len();
        self.skip_ws();
        let op_at = self.pos;
        let op = self.parse_operator()?;
        check_operator(&subject, op, op_at)?;
        self.skip_ws();
        let arg = match op {
            Operator::Exists | Operator::NotExists => Argument::None,
            Operator::In | Operator::NotIn => Argument::List(self.parse_list(&subject)?),
            Operator::Matches | Operator::NotMatches => Argument::Pattern(self.parse_pattern()?),
            _ => {
                let value_at = self.pos;
                let value = self.parse_value("a value")?;
                check_value(&subject, &value, value_at)?;
                Argument::Value(value)
            }
        };
        Ok(Condition { subject, op, arg })
    }

    fn parse_operator(&mut self) -> Result<Operator, QueryError> {
        const SYMBOLS: [(&str, Operator); 8] = [
            ("==", Operator::Eq),
            ("!=", Operator::Ne),
            (">=", Operator::Ge),
            ("<=", Operator::Le),
            ("=~", Operator::Matches),
            ("!~", Operator::NotMatches),
            (">", Operator::Gt),
            ("<", Operator::Lt),
        ];
        const WORDS: [(&str, Operator); 14] = [
            ("!exists", Operator::NotExists),
            ("!in", Operator::NotIn),
            ("equals", Operator::Eq),
            ("not_equals", Operator::Ne),
            ("greater_than_equal", Operator::Ge),
            ("greater_than", Operator::Gt),
            ("less_than_equal", Operator::Le),
            ("less_than", Operator::Lt),
            ("exists", Operator::Exists),
            ("not_exists", Operator::NotExists),
            ("in", Operator::In),
            ("not_in", Operator::NotIn),
            ("matches", Operator::Matches),
            ("not_matches", Operator::NotMatches),
        ];
        // Words first, so that `!exists` is not read as `!` + garbage.
        for (word, op) in WORDS {
            if self.eat_word(word) {
                return Ok(op);
            }
        }
        for (sym, op) in SYMBOLS {
            if self.eat_sym(sym) {
                return Ok(op);
            }
        }
        Err(self
            .unexpected("an operator (==, !=, >, >=, <, <=, exists, !exists, in, not_in, =~, !~)"))
    }

    /// A quoted or bare value. Inside quotes, `\` escapes the quote and
    /// itself; any other backslash is kept as written.
    fn parse_value(&mut self, expected: &'static str) -> Result<String, QueryError> {
        if let Some(q @ ('\'' | '"')) = self.peek() {
            return self.parse_quoted(q);
        }
        let rest = self.rest();
        let end = rest
            .find(|c: char| !is_bare_value_char(c))
            .unwrap_or(rest.len());
        if end == 0 {
            return Err(self.unexpected(expected));
        }
        self.pos += end;
        Ok(rest[..end].to_owned())
    }

    fn parse_quoted(&mut self, quote: char) -> Result<String, QueryError> {
        let start = self.pos;
        self.pos += quote.len_utf8();
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + c.len_utf8();
                return Ok(out);
            }
            if c == '\\' {
                match chars.clone().next() {
                    Some((_, n)) if n == quote || n == '\\' => {
                        chars.next();
                        out.push(n);
                        continue;
                    }
                    _ => {}
                }
            }
            out.push(c);
        }
        self.pos = start;
        Err(QueryError::Unexpected {
            at: start,
            found: "an unterminated quoted value".to_owned(),
            expected: "a closing quote",
        })
    }

    fn parse_list(&mut self, subject: &Subject) -> Result<Vec<String>, QueryError> {
        if !self.eat_sym("[") {
            return Err(self.unexpected("'[' to start the argument list"));
        }
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat_sym("]") {
            return Ok(items);
        }
        loop {
            self.skip_ws();
            let at = self.pos;
            let item = self.parse_value("a value in the argument list")?;
            check_value(subject, &item, at)?;
            items.push(item);
            self.skip_ws();
            if self.eat_sym(",") {
                continue;
            }
            if self.eat_sym("]") {
                return Ok(items);
            }
            return Err(self.unexpected("',' or ']'"));
        }
    }

    /// A quoted pattern, or a bare one that runs to the next whitespace (or
    /// an unbalanced `)`, which closes an enclosing group).
    fn parse_pattern(&mut self) -> Result<Pattern, QueryError> {
        let at = self.pos;
        let source = if let Some(q @ ('\'' | '"')) = self.peek() {
            self.parse_quoted(q)?
        } else {
            let rest = self.rest();
            let mut depth = 0usize;
            let mut in_class = false;
            let mut escaped = false;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match c {
                    '\\' => escaped = true,
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    '[' if !in_class => in_class = true,
                    ']' if in_class => in_class = false,
                    '(' if !in_class => depth += 1,
                    ')' if !in_class => {
                        if depth == 0 {
                            end = i;
                            break;
                        }
                        depth -= 1;
                    }
                    _ => {}
                }
            }
            if end == 0 {
                return Err(self.unexpected("a regular expression"));
            }
            self.pos += end;
            rest[..end].to_owned()
        };
        Pattern::new(&source).map_err(|reason| QueryError::InvalidPattern {
            at,
            pattern: source,
            reason,
        })
    }
}

/// The operators ECS documents for each subject.
fn check_operator(subject: &Subject, op: Operator, at: usize) -> Result<(), QueryError> {
    use Operator::*;
    let allowed: &[Operator] = match subject {
        Subject::Attribute(_) => return Ok(()),
        Subject::AgentConnected | Subject::Ec2InstanceId => {
            &[Eq, Ne, In, NotIn, Matches, NotMatches]
        }
        Subject::AgentVersion | Subject::RunningTasksCount => &[Eq, Ne, Gt, Ge, Lt, Le],
        Subject::TaskGroup => &[Eq, Ne, In, NotIn, Matches, NotMatches, Exists, NotExists],
    };
    if allowed.contains(&op) {
        Ok(())
    } else {
        Err(QueryError::OperatorNotAllowed {
            at,
            subject: subject.to_string(),
            operator: op.symbol().to_owned(),
        })
    }
}

fn check_value(subject: &Subject, value: &str, at: usize) -> Result<(), QueryError> {
    let reason = match subject {
        Subject::AgentConnected if value != "true" && value != "false" => "expected true or false",
        Subject::RunningTasksCount if value.parse::<u64>().is_err() => "expected a whole number",
        _ => return Ok(()),
    };
    Err(QueryError::InvalidValue {
        at,
        subject: subject.to_string(),
        value: value.to_owned(),
        reason,
    })
}
