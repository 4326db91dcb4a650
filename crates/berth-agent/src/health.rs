//! Health checks as Docker runs them and ECS reports them: a container
//! starts UNKNOWN; one passing check makes it HEALTHY; `retries`
//! consecutive failures make it UNHEALTHY; failures inside `startPeriod`
//! do not count (a success there still does). Pure bookkeeping; the task
//! worker runs the checks.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_ecs(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "UNKNOWN",
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthState {
    pub status: HealthStatus,
    pub consecutive_failures: u32,
}

impl HealthState {
    /// Records one check's result (`passed`: exit code 0 within the
    /// timeout).
    pub fn record(&mut self, passed: bool, in_start_period: bool, retries: u32) {
        if passed {
            self.status = HealthStatus::Healthy;
            self.consecutive_failures = 0;
            return;
        }
        if in_start_period {
            return;
        }
        self.consecutive_failures += 1;
        if self.consecutive_failures >= retries.max(1) {
            self.status = HealthStatus::Unhealthy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_after_one_pass_unhealthy_after_retries_failures() {
        let mut h = HealthState::default();
        assert_eq!(h.status, HealthStatus::Unknown);
        h.record(false, false, 3);
        h.record(false, false, 3);
        assert_eq!(h.status, HealthStatus::Unknown);
        h.record(true, false, 3);
        assert_eq!((h.status, h.consecutive_failures), (HealthStatus::Healthy, 0));
        for _ in 0..2 {
            h.record(false, false, 3);
        }
        assert_eq!(h.status, HealthStatus::Healthy, "two failures of three allowed");
        h.record(false, false, 3);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        h.record(true, false, 3);
        assert_eq!(h.status, HealthStatus::Healthy);
    }

    #[test]
    fn start_period_failures_do_not_count_but_passes_do() {
        let mut h = HealthState::default();
        for _ in 0..10 {
            h.record(false, true, 1);
        }
        assert_eq!((h.status, h.consecutive_failures), (HealthStatus::Unknown, 0));
        h.record(true, true, 1);
        assert_eq!(h.status, HealthStatus::Healthy);
    }
}
