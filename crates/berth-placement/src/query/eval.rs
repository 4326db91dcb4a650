//! The reference evaluator: walks the expression for one instance. Placement
//! uses a faster form bound to a snapshot (`crate::bound`), checked against
//! this one by property tests; ListContainerInstances filters can use this
//! one directly.

use std::cmp::Ordering;

use super::{Argument, Condition, Expr, Operator, Subject};
use crate::model::InstanceView;

/// What an expression can ask about an instance.
pub trait Facts {
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> Option<&str>;
    /// `None` if the attribute is absent, `Some(None)` if it has no value.
    fn attribute(&self, name: &str) -> Option<Option<&str>>;
    fn ec2_instance_id(&self) -> Option<&str>;
    fn running_tasks_count(&self) -> u64;
    /// Whether `pred` holds for the group of any task on the instance.
    fn any_task_group(&self, pred: &mut dyn FnMut(&str) -> bool) -> bool;
}

impl Facts for InstanceView {
    fn agent_connected(&self) -> bool {
        self.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version.as_deref()
    }
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        InstanceView::attribute(self, name)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2_instance_id.as_deref()
    }
    fn running_tasks_count(&self) -> u64 {
        self.running_tasks.len() as u64
    }
    fn any_task_group(&self, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.running_tasks.iter().any(|t| pred(&t.group))
    }
}

pub(super) fn evaluate<F: Facts + ?Sized>(expr: &Expr, facts: &F) -> bool {
    match expr {
        Expr::And(a, b) => evaluate(a, facts) && evaluate(b, facts),
        Expr::Or(a, b) => evaluate(a, facts) || evaluate(b, facts),
        Expr::Not(e) => !evaluate(e, facts),
        Expr::Cond(c) => c.evaluate(facts),
    }
}

impl Condition {
    /// Evaluates this one condition against an instance.
    pub fn evaluate<F: Facts + ?Sized>(&self, facts: &F) -> bool {
        let positive = match &self.subject {
            Subject::Attribute(name) => match facts.attribute(name) {
                None => self.positive_holds(false, None),
                Some(value) => self.positive_holds(true, value),
            },
            Subject::AgentConnected => self.positive_holds(
                true,
                Some(if facts.agent_connected() {
                    "true"
                } else {
                    "false"
                }),
            ),
            Subject::AgentVersion => {
                let v = facts.agent_version();
                self.positive_holds(v.is_some(), v)
            }
            Subject::Ec2InstanceId => {
                let v = facts.ec2_instance_id();
                self.positive_holds(v.is_some(), v)
            }
            Subject::RunningTasksCount => {
                let n = facts.running_tasks_count().to_string();
                self.positive_holds(true, Some(&n))
            }
            Subject::TaskGroup => {
                if self.op.positive() == Operator::Exists {
                    facts.any_task_group(&mut |_| true)
                } else {
                    facts.any_task_group(&mut |g| self.positive_holds(true, Some(g)))
                }
            }
        };
        positive != self.op.is_negated()
    }

    /// Whether the positive form of the operator holds for one value of the
    /// subject. `present` says whether the subject exists at all (an
    /// attribute may exist without a value).
    pub fn positive_holds(&self, present: bool, value: Option<&str>) -> bool {
        let op = self.op.positive();
        if op == Operator::Exists {
            return present;
        }
        let Some(value) = value else { return false };
        match (&self.arg, op) {
            (Argument::Value(arg), Operator::Eq) => value == arg,
            (Argument::List(items), Operator::In) => items.iter().any(|i| i == value),
            (Argument::Pattern(p), Operator::Matches) => p.is_match(value),
            (Argument::Value(arg), Operator::Gt) => self.compare(value, arg) == Ordering::Greater,
            (Argument::Value(arg), Operator::Ge) => self.compare(value, arg) != Ordering::Less,
            (Argument::Value(arg), Operator::Lt) => self.compare(value, arg) == Ordering::Less,
            (Argument::Value(arg), Operator::Le) => self.compare(value, arg) != Ordering::Greater,
            // The parser never builds another combination.
            _ => false,
        }
    }

    fn compare(&self, value: &str, arg: &str) -> Ordering {
        match self.subject {
            Subject::AgentVersion => compare_segments(value, arg),
            _ => compare_values(value, arg),
        }
    }
}

/// Numbers numerically; anything else segment by segment.
pub fn compare_values(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>())
        && x.is_finite()
        && y.is_finite()
    {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    compare_segments(a, b)
}

/// Dot-separated segments, numeric ones numerically (`1.9 < 1.14`), a
/// leading `v` ignored.
pub fn compare_segments(a: &str, b: &str) -> Ordering {
    let strip = |s: &str| -> String { s.trim().trim_start_matches(['v', 'V']).to_owned() };
    let (a, b) = (strip(a), strip(b));
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}
