//! What the measured window saw from the client side: latency per route, status counts.
//! Goose runs the users; this records only while the window is open, so warm-up and
//! set-up (signup, login) never count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::results::Latency;

pub struct Recorder {
    open: AtomicBool,
    /// Every request sent, window or not: the progress line's live rate.
    pub sent: AtomicU64,
    /// Users that finished their set-up (signup, login).
    pub ready_users: AtomicUsize,
    inner: Mutex<Window>,
}

#[derive(Default)]
pub struct Window {
    pub by_route: BTreeMap<String, Histogram<u64>>,
    pub by_status: BTreeMap<String, u64>,
    /// (second since the window opened, route) -> (answered 2xx, failed).
    pub timeline: BTreeMap<(u64, String), (u64, u64)>,
    opened: Option<Instant>,
}

pub static RECORDER: LazyLock<Recorder> = LazyLock::new(|| Recorder {
    open: AtomicBool::new(false),
    sent: AtomicU64::new(0),
    ready_users: AtomicUsize::new(0),
    inner: Mutex::new(Window::default()),
});

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 us to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

impl Recorder {
    /// Clears everything for a new run.
    pub fn reset(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.sent.store(0, Ordering::SeqCst);
        self.ready_users.store(0, Ordering::SeqCst);
        *self.lock() = Window::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open(&self, open: bool) {
        if open {
            self.lock().opened = Some(Instant::now());
        }
        self.open.store(open, Ordering::SeqCst);
    }

    /// `status` 0 means no HTTP answer at all (connection refused, timeout).
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if !self.open.load(Ordering::Relaxed) {
            return;
        }
        let us = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        let mut w = self.lock();
        if !w.by_route.contains_key(route) {
            w.by_route.insert(route.to_owned(), histogram());
        }
        if let Some(h) = w.by_route.get_mut(route) {
            let _ = h.record(us);
        }
        *w.by_status.entry(status.to_string()).or_default() += 1;
        let second = w.opened.map_or(0, |t| t.elapsed().as_secs());
        let bucket = w.timeline.entry((second, route.to_owned())).or_default();
        if (200..300).contains(&status) {
            bucket.0 += 1;
        } else {
            bucket.1 += 1;
        }
    }

    pub fn take(&self) -> Window {
        std::mem::take(&mut *self.lock())
    }
}

impl Window {
    pub fn requests(&self) -> u64 {
        self.by_status.values().sum()
    }

    pub fn errors_by_status(&self) -> BTreeMap<String, u64> {
        self.by_status
            .iter()
            .filter(|(s, _)| !s.starts_with('2'))
            .map(|(s, n)| (s.clone(), *n))
            .collect()
    }

    pub fn latency(&self) -> Latency {
        let mut all = histogram();
        for h in self.by_route.values() {
            let _ = all.add(h);
        }
        latency_of(&all)
    }

    pub fn latency_by_route(&self) -> BTreeMap<String, Latency> {
        self.by_route
            .iter()
            .map(|(r, h)| (r.clone(), latency_of(h)))
            .collect()
    }
}

fn latency_of(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Latency {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_open_window_counts() {
        let r = Recorder {
            open: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            ready_users: AtomicUsize::new(0),
            inner: Mutex::new(Window::default()),
        };
        r.record("/api/me", 200, Duration::from_millis(1));
        r.open(true);
        for ms in 1..=100 {
            r.record("/api/me", 200, Duration::from_millis(ms));
        }
        r.record("/api/items", 503, Duration::from_millis(7));
        r.record("/api/items", 0, Duration::from_secs(10));
        let w = r.take();
        assert_eq!(r.sent.load(Ordering::SeqCst), 103);
        assert_eq!(w.requests(), 102);
        assert_eq!(
            w.errors_by_status(),
            BTreeMap::from([("0".into(), 1), ("503".into(), 1)])
        );
        let me = &w.latency_by_route()["/api/me"];
        assert!((me.p50 - 50.0).abs() < 0.5, "{me:?}");
        assert!((me.p99 - 99.0).abs() < 0.5, "{me:?}");
        assert!((w.latency().max - 10_000.0).abs() < 10.0);
    }
}
