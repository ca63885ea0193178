//! Time as Greenlight sees it: a `Clock` trait so that tests can control time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A future that completes when the clock reaches an instant.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of "now" for releases, schedules and plugins.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Completes once the clock reads `at_ms` or later.
    fn sleep_until(&self, at_ms: u64) -> Sleep;

    /// The manual clock behind this one, when time only moves on request.
    fn manual(&self) -> Option<&ManualClock> {
        None
    }
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let wait = at_ms.saturating_sub(self.now_ms());
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to: for tests, and for daemons started
/// with a manual clock so that end-to-end tests run bake periods and
/// expiries without waiting.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ms: Arc<watch::Sender<u64>>,
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new(0)
    }
}

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: u64) -> ManualClock {
        ManualClock {
            now_ms: Arc::new(watch::Sender::new(now_ms)),
        }
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, by: u64) {
        self.now_ms.send_modify(|now| *now = now.saturating_add(by));
    }

    /// Sets the clock; it never moves backwards.
    pub fn set_ms(&self, to: u64) {
        self.now_ms.send_modify(|now| *now = (*now).max(to));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now_ms.borrow()
    }

    fn sleep_until(&self, at_ms: u64) -> Sleep {
        let mut rx = self.now_ms.subscribe();
        Box::pin(async move {
            // The sender lives as long as any clone of the clock; if it is
            // gone, nobody can move time any more and the wait never ends.
            if rx.wait_for(|now| *now >= at_ms).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    fn manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_gets_there() {
        let clock = ManualClock::new(1_000);
        let sleep = clock.sleep_until(1_500);
        let waiter = tokio::spawn(sleep);
        clock.advance_ms(499);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance_ms(1);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the sleep ends")
            .unwrap();
        clock.set_ms(0);
        assert_eq!(clock.now_ms(), 1_500, "the clock never goes back");
    }
}
