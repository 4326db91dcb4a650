//! Time is a side effect: everything that reads it takes a [`Clock`], so
//! tests and simulations can drive it by hand with [`FakeClock`].

pub mod civil;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct FakeClock(Mutex<SystemTime>);

impl FakeClock {
    pub fn at_epoch_secs(secs: u64) -> FakeClock {
        FakeClock(Mutex::new(UNIX_EPOCH + Duration::from_secs(secs)))
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
    pub fn set(&self, to: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the epoch with millisecond precision, the way AWS JSON
/// protocols write timestamps (`1732423252.123`).
pub fn epoch_seconds(t: SystemTime) -> f64 {
    let ms = t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    (ms as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let c = FakeClock::at_epoch_secs(1_000);
        assert_eq!(epoch_seconds(c.now()), 1000.0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(epoch_seconds(c.now()), 1001.5);
    }
}
