//! A `memberOf` expression bound to one snapshot: every condition on a
//! string column becomes a truth table over that column's distinct values,
//! so evaluating an instance is a few array lookups. The result for every
//! instance as the snapshot stands is computed once (`base`); instances that
//! placement has since put tasks on are re-evaluated live when the
//! expression looks at `runningTasksCount` or `task:group`.

use crate::query::{Argument, Condition, Expr, Operator, Subject};
use crate::snapshot::{ABSENT, ClusterSnapshot, Column};

/// What placement has added to one instance, as far as expressions care.
#[derive(Clone, Copy)]
pub(crate) struct Added<'a> {
    pub(crate) tasks: u32,
    /// `(group id, count)`; ids past the snapshot's are request-local.
    pub(crate) groups: &'a [(u32, u32)],
}

impl Added<'_> {
    pub(crate) const NONE: Added<'static> = Added {
        tasks: 0,
        groups: &[],
    };
}

enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Const(bool),
    /// A column condition: the answer per value id, and for "absent".
    Column {
        column: ColumnRef,
        truth: Vec<bool>,
        absent: bool,
    },
    Agent {
        connected: bool,
        disconnected: bool,
    },
    Count {
        op: Operator,
        n: u64,
        negated: bool,
    },
    Group(GroupLeaf),
}

#[derive(Clone, Copy)]
enum ColumnRef {
    Attribute(u32),
    Ec2InstanceId,
    AgentVersion,
}

struct GroupLeaf {
    cond: Condition,
    exists: bool,
    negated: bool,
    /// Positive answer per snapshot group id.
    truth: Vec<bool>,
}

impl GroupLeaf {
    fn group_holds(&self, gid: u32, local_names: &[String], snapshot_groups: usize) -> bool {
        match self.truth.get(gid as usize) {
            Some(&t) => t,
            None => local_names
                .get(gid as usize - snapshot_groups)
                .is_some_and(|name| self.cond.positive_holds(true, Some(name))),
        }
    }
}

/// A bound expression plus its answer for every instance of the snapshot.
pub(crate) struct BoundExpr {
    root: Node,
    dynamic: bool,
    /// Bit `i`: whether instance `i` satisfies the expression as the
    /// snapshot stands.
    base: Vec<u64>,
}

impl BoundExpr {
    pub(crate) fn bind(expr: &Expr, snap: &ClusterSnapshot) -> BoundExpr {
        let root = bind_node(expr, snap);
        let n = snap.len();
        let mut base = vec![0u64; n.div_ceil(64)];
        for i in 0..n {
            if eval(&root, snap, i, Added::NONE, &[]) {
                base[i / 64] |= 1 << (i % 64);
            }
        }
        BoundExpr {
            root,
            dynamic: expr.is_dynamic(),
            base,
        }
    }

    /// Whether instance `i` satisfies the expression, given what placement
    /// has added to it (`None`: nothing).
    #[inline]
    pub(crate) fn holds(
        &self,
        snap: &ClusterSnapshot,
        i: usize,
        added: Option<Added<'_>>,
        local_names: &[String],
    ) -> bool {
        match added {
            Some(added) if self.dynamic => eval(&self.root, snap, i, added, local_names),
            _ => self.base[i / 64] >> (i % 64) & 1 == 1,
        }
    }
}

fn bind_node(expr: &Expr, snap: &ClusterSnapshot) -> Node {
    match expr {
        Expr::And(a, b) => Node::And(Box::new(bind_node(a, snap)), Box::new(bind_node(b, snap))),
        Expr::Or(a, b) => Node::Or(Box::new(bind_node(a, snap)), Box::new(bind_node(b, snap))),
        Expr::Not(e) => Node::Not(Box::new(bind_node(e, snap))),
        Expr::Cond(c) => bind_condition(c, snap),
    }
}

fn bind_condition(c: &Condition, snap: &ClusterSnapshot) -> Node {
    let negated = c.op.is_negated();
    let column_leaf = |column: ColumnRef, col: &Column| Node::Column {
        column,
        truth: col
            .values
            .iter()
            .map(|v| c.positive_holds(true, v.as_deref()) != negated)
            .collect(),
        absent: c.positive_holds(false, None) != negated,
    };
    match &c.subject {
        Subject::Attribute(name) => match snap.attribute_ids.get(name) {
            Some(&id) => column_leaf(ColumnRef::Attribute(id), &snap.columns[id as usize]),
            // No instance has it: every instance answers as "absent".
            None => Node::Const(c.positive_holds(false, None) != negated),
        },
        Subject::Ec2InstanceId => column_leaf(ColumnRef::Ec2InstanceId, &snap.ec2_instance_id),
        Subject::AgentVersion => column_leaf(ColumnRef::AgentVersion, &snap.agent_version),
        Subject::AgentConnected => Node::Agent {
            connected: c.positive_holds(true, Some("true")) != negated,
            disconnected: c.positive_holds(true, Some("false")) != negated,
        },
        Subject::RunningTasksCount => {
            let n = match &c.arg {
                Argument::Value(v) => v.parse::<u64>().ok(),
                _ => None,
            };
            match n {
                Some(n) => Node::Count {
                    op: c.op.positive(),
                    n,
                    negated,
                },
                // The parser only admits whole numbers here.
                None => Node::Const(negated),
            }
        }
        Subject::TaskGroup => {
            let exists = c.op.positive() == Operator::Exists;
            let truth = snap
                .groups
                .names
                .iter()
                .map(|g| exists || c.positive_holds(true, Some(g)))
                .collect();
            Node::Group(GroupLeaf {
                cond: c.clone(),
                exists,
                negated,
                truth,
            })
        }
    }
}

fn column(snap: &ClusterSnapshot, r: ColumnRef) -> &Column {
    match r {
        ColumnRef::Attribute(id) => &snap.columns[id as usize],
        ColumnRef::Ec2InstanceId => &snap.ec2_instance_id,
        ColumnRef::AgentVersion => &snap.agent_version,
    }
}

fn eval(
    node: &Node,
    snap: &ClusterSnapshot,
    i: usize,
    added: Added<'_>,
    local_names: &[String],
) -> bool {
    match node {
        Node::And(a, b) => {
            eval(a, snap, i, added, local_names) && eval(b, snap, i, added, local_names)
        }
        Node::Or(a, b) => {
            eval(a, snap, i, added, local_names) || eval(b, snap, i, added, local_names)
        }
        Node::Not(e) => !eval(e, snap, i, added, local_names),
        Node::Const(b) => *b,
        Node::Column {
            column: r,
            truth,
            absent,
        } => {
            let v = column(snap, *r).of[i];
            if v == ABSENT {
                *absent
            } else {
                truth[v as usize]
            }
        }
        Node::Agent {
            connected,
            disconnected,
        } => {
            if snap.instances()[i].agent_connected {
                *connected
            } else {
                *disconnected
            }
        }
        Node::Count { op, n, negated } => {
            let count = u64::from(snap.task_count[i]) + u64::from(added.tasks);
            let positive = match op {
                Operator::Eq => count == *n,
                Operator::Gt => count > *n,
                Operator::Ge => count >= *n,
                Operator::Lt => count < *n,
                Operator::Le => count <= *n,
                _ => false,
            };
            positive != *negated
        }
        Node::Group(leaf) => {
            let positive = if leaf.exists {
                snap.task_count[i] > 0 || added.tasks > 0
            } else {
                let groups = snap.groups.names.len();
                snap.groups
                    .of_instance(i)
                    .iter()
                    .any(|&(g, _)| leaf.truth[g as usize])
                    || added
                        .groups
                        .iter()
                        .any(|&(g, _)| leaf.group_holds(g, local_names, groups))
            };
            positive != leaf.negated
        }
    }
}
