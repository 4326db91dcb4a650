//! The ECS cluster query language: what `memberOf` placement constraints and
//! the `filter` of ListContainerInstances are written in.
//!
//! ```text
//! expression := or
//! or         := and (("or" | "||") and)*
//! and        := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" expression ")" | condition
//! condition  := subject operator [argument]
//! subject    := agentConnected | agentVersion | attribute:NAME | ec2InstanceId
//!             | runningTasksCount | task:group
//! operator   := == | equals | != | not_equals | > | greater_than
//!             | >= | greater_than_equal | < | less_than | <= | less_than_equal
//!             | exists | !exists | not_exists | in | !in | not_in
//!             | =~ | matches | !~ | not_matches
//! argument   := value | "[" value ("," value)* "]"      (in / not_in)
//! value      := bare-word | 'quoted' | "quoted"
//! ```
//!
//! Keywords and operator words are case-insensitive; subjects are spelled as
//! ECS spells them. `not` binds tighter than `and`, which binds tighter than
//! `or`.
//!
//! Semantics, where ECS's documentation is silent:
//! * Every negative operator is the negation of its positive one:
//!   `attribute:stack != prod` holds on an instance without a `stack`
//!   attribute, and `task:group != db` means "runs no task of group `db`"
//!   (the same as `not(task:group == db)`).
//! * `task:group` has many values, one per task on the instance: a positive
//!   operator holds if it holds for any of them; `task:group exists` holds on
//!   an instance that runs any task.
//! * An attribute present without a value satisfies `exists` and nothing
//!   that compares a value.
//! * `=~` takes a Java regular expression (as ECS documents) and must match
//!   the whole value, like Java's `String.matches`: `t2.*` matches
//!   `t2.micro`, and a lone `*` is an error, as in ECS. Supported: literals,
//!   `.`, classes (`[a-z]`, `[^0-9]`, `\d \w \s` and their negations),
//!   `* + ? {n} {n,} {n,m}` (lazy `?` suffix accepted), groups `(…)`,
//!   `(?:…)`, alternation `|`, anchors `^ $` and a leading `(?i)`. Matching
//!   runs in time linear in the value (a Pike VM), so no pattern can stall
//!   the scheduler.
//! * `>`, `<`, `>=`, `<=` compare numbers numerically when both sides are
//!   numbers, and otherwise compare dot-separated segments (numeric segments
//!   numerically), so `agentVersion < 1.14.5` works as expected.
//! * `registeredAt` is recognised but rejected: Berth's instance view does
//!   not carry the registration time to placement.

mod eval;
mod parse;
mod regex;

use std::fmt;

pub use eval::Facts;
pub use regex::{Pattern, PatternError};

/// The longest expression ECS accepts in a placement constraint.
pub const MAX_EXPRESSION_LEN: usize = 2000;

/// How deep parentheses and negations may nest.
pub const MAX_DEPTH: usize = 64;

/// A parsed cluster query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

/// `subject operator [argument]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub subject: Subject,
    pub op: Operator,
    pub arg: Argument,
}

/// What a condition looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    AgentConnected,
    AgentVersion,
    Attribute(String),
    Ec2InstanceId,
    RunningTasksCount,
    TaskGroup,
}

impl Subject {
    /// Whether the subject changes as tasks are placed (so a placement
    /// engine must re-evaluate it for instances it placed onto).
    pub fn is_dynamic(&self) -> bool {
        matches!(self, Subject::RunningTasksCount | Subject::TaskGroup)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::AgentConnected => f.write_str("agentConnected"),
            Subject::AgentVersion => f.write_str("agentVersion"),
            Subject::Attribute(name) => write!(f, "attribute:{name}"),
            Subject::Ec2InstanceId => f.write_str("ec2InstanceId"),
            Subject::RunningTasksCount => f.write_str("runningTasksCount"),
            Subject::TaskGroup => f.write_str("task:group"),
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl Operator {
    /// The symbol used when printing (`==`, `not_in`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::Ne => "!=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Exists => "exists",
            Operator::NotExists => "not_exists",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Matches => "=~",
            Operator::NotMatches => "!~",
        }
    }

    /// Whether this is the negation of another operator.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Operator::Ne | Operator::NotExists | Operator::NotIn | Operator::NotMatches
        )
    }

    /// The positive operator this one negates (itself if not negated).
    pub fn positive(self) -> Operator {
        match self {
            Operator::Ne => Operator::Eq,
            Operator::NotExists => Operator::Exists,
            Operator::NotIn => Operator::In,
            Operator::NotMatches => Operator::Matches,
            other => other,
        }
    }
}

/// The right-hand side of a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Argument {
    /// `exists` / `not_exists` take none.
    None,
    Value(String),
    List(Vec<String>),
    Pattern(Pattern),
}

/// A bad expression. The API layer maps every variant to
/// `InvalidParameterException` with this text as the message. Positions
/// are 0-based byte offsets into the expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the expression is empty")]
    Empty,
    #[error("the expression is {len} characters long; the maximum is {max}")]
    TooLong { len: usize, max: usize },
    #[error("the expression nests parentheses or negations more than {max} levels deep")]
    TooDeep { max: usize },
    #[error("unexpected {found} at position {at} of the expression: expected {expected}")]
    Unexpected {
        at: usize,
        found: String,
        expected: &'static str,
    },
    #[error(
        "unknown subject {subject:?} at position {at} of the expression: expected agentConnected, \
         agentVersion, attribute:NAME, ec2InstanceId, runningTasksCount or task:group"
    )]
    UnknownSubject { at: usize, subject: String },
    #[error("the subject {subject} (position {at}) is not supported in Berth expressions")]
    UnsupportedSubject { at: usize, subject: String },
    #[error("the operator {operator} (position {at}) cannot be used with {subject}")]
    OperatorNotAllowed {
        at: usize,
        subject: String,
        operator: String,
    },
    #[error("invalid value {value:?} for {subject} at position {at} of the expression: {reason}")]
    InvalidValue {
        at: usize,
        subject: String,
        value: String,
        reason: &'static str,
    },
    #[error("invalid regular expression {pattern:?} at position {at} of the expression: {reason}")]
    InvalidPattern {
        at: usize,
        pattern: String,
        reason: PatternError,
    },
}

/// Parses a cluster query expression.
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    parse::parse(text)
}

impl Expr {
    /// Evaluates the expression against one instance.
    pub fn evaluate<F: Facts + ?Sized>(&self, facts: &F) -> bool {
        eval::evaluate(self, facts)
    }

    /// Whether any condition looks at something placement changes
    /// (`runningTasksCount`, `task:group`).
    pub fn is_dynamic(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.is_dynamic() || b.is_dynamic(),
            Expr::Not(e) => e.is_dynamic(),
            Expr::Cond(c) => c.subject.is_dynamic(),
        }
    }

    /// Calls `f` on every condition, left to right.
    pub fn for_each_condition<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.for_each_condition(f);
                b.for_each_condition(f);
            }
            Expr::Not(e) => e.for_each_condition(f),
            Expr::Cond(c) => f(c),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            Expr::Not(..) | Expr::Cond(..) => 3,
        }
    }

    fn fmt_child(&self, child: &Expr, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        let _ = self;
        if child.precedence() < min {
            write!(f, "({child})")
        } else {
            write!(f, "{child}")
        }
    }
}

/// Prints the expression in a canonical form that [`parse`] reads back to
/// an equal expression.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(a, b) => {
                self.fmt_child(a, f, 1)?;
                f.write_str(" or ")?;
                // `or` is parsed left-associatively: a right operand that is
                // itself an `or` needs parentheses to round-trip.
                self.fmt_child(b, f, 2)
            }
            Expr::And(a, b) => {
                self.fmt_child(a, f, 2)?;
                f.write_str(" and ")?;
                self.fmt_child(b, f, 3)
            }
            Expr::Not(e) => write!(f, "not ({e})"),
            Expr::Cond(c) => write!(f, "{c}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.op.symbol())?;
        match &self.arg {
            Argument::None => Ok(()),
            Argument::Value(v) => {
                f.write_str(" ")?;
                write_value(f, v)
            }
            Argument::List(items) => {
                f.write_str(" [")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_value(f, v)?;
                }
                f.write_str("]")
            }
            Argument::Pattern(p) => {
                f.write_str(" ")?;
                write_quoted(f, p.as_str())
            }
        }
    }
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    if !v.is_empty() && v.chars().all(parse::is_bare_value_char) {
        f.write_str(v)
    } else {
        write_quoted(f, v)
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in v.chars() {
        if c == '\'' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("'")
}

#[cfg(test)]
mod tests;
