//! `dependsOn`: when a container may start, given how the containers it
//! depends on are doing. Pure.

use crate::health::HealthStatus;
use crate::plan::{Dependency, DependencyCondition};

/// What the task worker knows about one container, as far as its
/// dependents care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NotStarted,
    Running(HealthStatus),
    Exited(Option<i32>),
    /// It will never run (its start failed, or its own dependencies can
    /// never be met).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Wait,
    /// The condition can never hold; the reason is ECS-worded.
    Never(String),
}

/// Whether a container with `deps` may start now. `progress` answers for
/// a container name (`None`: no such container in the task).
pub fn readiness(deps: &[Dependency], progress: impl Fn(&str) -> Option<Progress>) -> Readiness {
    let mut wait = false;
    for d in deps {
        let Some(p) = progress(&d.container) else {
            return Readiness::Never(format!("dependency container {} is not part of the task", d.container));
        };
        let never = |what: &str| {
            Readiness::Never(format!(
                "dependency container {} {what}; condition {} cannot be met",
                d.container,
                d.condition.as_ecs()
            ))
        };
        match (&d.condition, p) {
            (_, Progress::Failed) => return never("failed to start"),
            (DependencyCondition::Start, Progress::Running(_) | Progress::Exited(_)) => {}
            (DependencyCondition::Complete, Progress::Exited(_)) => {}
            (DependencyCondition::Success, Progress::Exited(Some(0))) => {}
            (DependencyCondition::Success, Progress::Exited(code)) => {
                return never(&format!("exited with code {}", code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into())));
            }
            (DependencyCondition::Healthy, Progress::Running(HealthStatus::Healthy)) => {}
            (DependencyCondition::Healthy, Progress::Running(HealthStatus::Unhealthy)) => return never("is unhealthy"),
            (DependencyCondition::Healthy, Progress::Exited(_)) => return never("exited before it was healthy"),
            _ => wait = true,
        }
    }
    if wait { Readiness::Wait } else { Readiness::Ready }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(c: &str, condition: DependencyCondition) -> Dependency {
        Dependency { container: c.into(), condition }
    }

    #[test]
    fn each_condition() {
        use DependencyCondition::*;
        use Progress::*;
        let cases: &[(DependencyCondition, Progress, Readiness)] = &[
            (Start, NotStarted, Readiness::Wait),
            (Start, Running(HealthStatus::Unknown), Readiness::Ready),
            (Start, Exited(Some(1)), Readiness::Ready),
            (Complete, Running(HealthStatus::Healthy), Readiness::Wait),
            (Complete, Exited(Some(3)), Readiness::Ready),
            (Success, Exited(Some(0)), Readiness::Ready),
            (Success, Running(HealthStatus::Unknown), Readiness::Wait),
            (Healthy, Running(HealthStatus::Unknown), Readiness::Wait),
            (Healthy, Running(HealthStatus::Healthy), Readiness::Ready),
        ];
        for (cond, p, want) in cases {
            assert_eq!(&readiness(&[dep("a", cond.clone())], |_| Some(*p)), want, "{cond:?} {p:?}");
        }
        for (cond, p) in [(Success, Exited(Some(2))), (Healthy, Exited(Some(0))), (Healthy, Running(HealthStatus::Unhealthy)), (Start, Failed)] {
            assert!(matches!(readiness(&[dep("a", cond.clone())], |_| Some(p)), Readiness::Never(_)), "{cond:?} {p:?}");
        }
    }

    #[test]
    fn all_dependencies_must_hold_and_unknown_names_never_do() {
        use DependencyCondition::*;
        let deps = [dep("a", Start), dep("b", Complete)];
        let state = |n: &str| Some(if n == "a" { Progress::Running(HealthStatus::Unknown) } else { Progress::NotStarted });
        assert_eq!(readiness(&deps, state), Readiness::Wait);
        let done = |_: &str| Some(Progress::Exited(Some(0)));
        assert_eq!(readiness(&deps, done), Readiness::Ready);
        assert!(matches!(readiness(&[dep("zz", Start)], |_| None), Readiness::Never(_)));
        assert_eq!(readiness(&[], |_| None), Readiness::Ready);
    }
}
