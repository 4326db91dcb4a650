//! Start throttling for tasks that keep failing.
//!
//! ECS documents ("service throttle logic") only that when a service's
//! tasks repeatedly fail to start, the scheduler waits longer and longer
//! between launch attempts, up to a cap. Neither the schedule nor what
//! resets it is published (we remember the cap as about 15 minutes but
//! could not confirm it), so these are ours:
//!
//! * fewer than [`FREE_FAILURES`] consecutive failures: no throttling;
//! * from then on, after the last failure, wait
//!   `BASE_DELAY_MS × 2^(failures − FREE_FAILURES)`, capped at
//!   [`MAX_DELAY_MS`] (15 s, 30 s, 1 min, … 15 min), starting nothing;
//! * once the wait is over, one task at a time (a probe: nothing more
//!   starts while it is PENDING), so a broken image costs one failure per
//!   delay, not a whole batch.
//!
//! A task of the service that started after the last failure and has
//! stayed RUNNING for [`STABLE_RUNNING_MS`](crate::STABLE_RUNNING_MS)
//! resets the count (one that only just reached RUNNING may be crashing).

/// Consecutive failures tolerated before throttling.
pub const FREE_FAILURES: u32 = 3;
/// The first delay.
pub const BASE_DELAY_MS: u64 = 15_000;
/// The longest delay.
pub const MAX_DELAY_MS: u64 = 15 * 60_000;

/// The throttle's memory, carried from one plan to the next view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    pub consecutive_failures: u32,
    pub last_failure_at_ms: u64,
}

/// What the throttle allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    Unlimited,
    /// At most this many starts.
    AtMost(u32),
    /// Nothing until this many milliseconds have passed.
    WaitMs(u64),
}

impl Throttle {
    /// The delay after the last failure, if throttled.
    pub fn delay_ms(&self) -> Option<u64> {
        let over = self.consecutive_failures.checked_sub(FREE_FAILURES)?;
        // A shift past 2^20 already exceeds the cap; clamping keeps it in range.
        let delay = BASE_DELAY_MS.saturating_mul(1u64 << over.min(20));
        Some(delay.min(MAX_DELAY_MS))
    }

    pub fn allowance(&self, now_ms: u64) -> Allowance {
        match self.delay_ms() {
            None => Allowance::Unlimited,
            Some(delay) => {
                let until = self.last_failure_at_ms.saturating_add(delay);
                if now_ms < until {
                    Allowance::WaitMs(until - now_ms)
                } else {
                    Allowance::AtMost(1)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_from_the_fourth_failure_and_caps() {
        let d = |n| {
            Throttle {
                consecutive_failures: n,
                last_failure_at_ms: 0,
            }
            .delay_ms()
        };
        assert_eq!(d(0), None);
        assert_eq!(d(2), None);
        assert_eq!(d(3), Some(15_000));
        assert_eq!(d(4), Some(30_000));
        assert_eq!(d(9), Some(900_000));
        assert_eq!(d(u32::MAX), Some(MAX_DELAY_MS));
    }

    #[test]
    fn waits_then_allows_one_probe() {
        let t = Throttle {
            consecutive_failures: 4,
            last_failure_at_ms: 1_000,
        };
        assert_eq!(t.allowance(1_000), Allowance::WaitMs(30_000));
        assert_eq!(t.allowance(30_999), Allowance::WaitMs(1));
        assert_eq!(t.allowance(31_000), Allowance::AtMost(1));
        assert_eq!(Throttle::default().allowance(0), Allowance::Unlimited);
    }
}
