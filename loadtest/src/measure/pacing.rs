//! The open model's schedule: when each request *should* start, whether or not earlier ones
//! were answered. Every simulated user (here: a connection) takes the next start time from
//! one shared schedule, waits for it, and sends; a user that was still busy takes its
//! slot late, and the request's latency counts from the slot, not from the send. That is
//! what wrk2 and oha `--latency-correction` do to account for coordinated omission: a
//! server that stalls cannot slow the schedule down and hide its stall from the figures.
//!
//! The hot path is one atomic add and, for Poisson arrivals, one xorshift step: no lock and
//! no allocation.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::model::{Arrivals, OpenLoad};

/// A start is late when it came this long after its slot. tokio's timer has a 1 ms
/// granularity, so a user waiting for its slot may wake up to 1 ms after it: that is the
/// timer, not the system under test.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

pub struct Schedule {
    arrivals: Arrivals,
    /// The mean gap between starts, in ns.
    mean_gap_ns: f64,
    /// Set when the users are ready: the schedule runs from then on.
    origin: OnceLock<Instant>,
    /// The next slot, in ns after the origin.
    next_ns: AtomicU64,
}

impl Schedule {
    pub fn new(load: OpenLoad) -> anyhow::Result<Self> {
        anyhow::ensure!(
            load.offered_rps.is_finite() && load.offered_rps > 0.0,
            "an arrival rate must be a positive number of requests per second, not {}",
            load.offered_rps
        );
        Ok(Self {
            arrivals: load.arrivals,
            mean_gap_ns: 1e9 / load.offered_rps,
            origin: OnceLock::new(),
            next_ns: AtomicU64::new(0),
        })
    }

    /// Starts the schedule now (once; later calls change nothing).
    pub fn start(&self) {
        let _ = self.origin.set(Instant::now());
    }

    pub fn started(&self) -> Option<Instant> {
        self.origin.get().copied()
    }

    /// The start time of the next request; `None` before the schedule started.
    pub fn next_slot(&self) -> Option<Instant> {
        let origin = *self.origin.get()?;
        let gap = match self.arrivals {
            Arrivals::Constant => self.mean_gap_ns,
            Arrivals::Poisson => self.mean_gap_ns * exponential(),
        };
        // Rounded per slot; at 200,000 req/s a slot is 5,000 ns, so rounding is < 0.01%.
        let at = self
            .next_ns
            .fetch_add(gap.round() as u64, Ordering::Relaxed);
        Some(origin + Duration::from_nanos(at))
    }
}

/// A draw of the exponential distribution of mean 1.
fn exponential() -> f64 {
    // Uniform in (0, 1]: ln(0) is never taken.
    let u = (xorshift() >> 11) as f64 / (1u64 << 53) as f64;
    -(1.0 - u).ln()
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // Each thread its own sequence; any non-zero start will do.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let thread = std::thread::current().id();
    let h = format!("{thread:?}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (t ^ h) | 1
}

fn xorshift() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rps: f64, arrivals: Arrivals) -> Schedule {
        Schedule::new(OpenLoad {
            offered_rps: rps,
            arrivals,
        })
        .unwrap()
    }

    #[test]
    fn nothing_is_due_before_the_start() {
        let s = schedule(100.0, Arrivals::Constant);
        assert!(s.next_slot().is_none());
        s.start();
        let origin = s.started().unwrap();
        assert_eq!(s.next_slot(), Some(origin));
        assert_eq!(s.next_slot(), Some(origin + Duration::from_millis(10)));
        s.start();
        assert_eq!(s.started(), Some(origin), "started once");
    }

    #[test]
    fn poisson_arrivals_keep_the_mean_rate_with_spread_gaps() {
        let s = schedule(1000.0, Arrivals::Poisson);
        s.start();
        let origin = s.started().unwrap();
        let slots: Vec<Duration> = (0..20_000)
            .map(|_| s.next_slot().unwrap() - origin)
            .collect();
        let mean_gap_ms = slots.last().unwrap().as_secs_f64() * 1000.0 / 19_999.0;
        assert!((mean_gap_ms - 1.0).abs() < 0.05, "{mean_gap_ms}");
        let gaps: Vec<f64> = slots
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
            .collect();
        // Exponential gaps: about 37% longer than the mean, and some ten times shorter.
        let longer = gaps.iter().filter(|g| **g > 1.0).count() as f64 / gaps.len() as f64;
        assert!((longer - (-1.0f64).exp()).abs() < 0.03, "{longer}");
        assert!(gaps.iter().any(|g| *g < 0.1));
    }

    #[test]
    fn a_rate_that_is_not_one_is_refused() {
        for rps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Schedule::new(OpenLoad {
                offered_rps: rps,
                arrivals: Arrivals::Constant
            })
            .is_err());
        }
    }
}
