//! What the measured window saw from the client side: latency per route, status counts, and
//! (for fault experiments) answered and failed requests per second. Goose runs the users;
//! this records only while the window is open, so warm-up and set-up (signup, login) never
//! count. One recorder per run, shared by that run's users.
//!
//! It is on every request's path, so recording allocates nothing: routes are the scenarios'
//! `&'static str` templates and statuses plain numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::model::{Histograms, Latency, OpenModel, Percentiles, TimelinePoint};

use super::pacing::LATE_AFTER;

#[derive(Default)]
pub struct Recorder {
    open: AtomicBool,
    /// Every request sent, window or not: the progress line's live rate.
    pub sent: AtomicU64,
    /// Users that finished their set-up (signup, login).
    pub ready_users: AtomicUsize,
    /// Set-up requests (signup, login) the servers refused with 429: their throttling,
    /// which counts per client address, held the load generator back.
    pub setup_throttled: AtomicU64,
    /// Hands each simulated user a number of its own.
    next_user: AtomicUsize,
    inner: Mutex<Window>,
}

/// The timeline's step: fine enough that a fault's edges fall within 0.1 s of where they
/// were, coarse enough to stay a few hundred points per run.
pub const TIMELINE_STEP_S: f64 = 0.1;

/// (step since the window opened, by send time; route) -> (answered 2xx, failed, of
/// which 401).
type Timeline = BTreeMap<(u64, &'static str), (u64, u64, u64)>;

#[derive(Default)]
pub struct Window {
    /// Latency by route template (a handful of routes: a list beats a map).
    by_route: Vec<(&'static str, Histogram<u64>)>,
    by_status: BTreeMap<u16, u64>,
    /// Users whose credential was refused in the window.
    logged_out: BTreeSet<usize>,
    /// Kept only when the window was opened with a timeline.
    timeline: Option<Timeline>,
    opened: Option<Instant>,
    /// Open model only: latency from each request's slot, and how late it started.
    from_slot: Option<Histogram<u64>>,
    late_by: Option<Histogram<u64>>,
    late_starts: u64,
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 us to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the window (with a per-second timeline if asked), or closes it.
    pub fn open(&self, open: bool, timeline: bool) {
        if open {
            let mut w = self.lock();
            w.opened = Some(Instant::now());
            w.timeline = timeline.then(BTreeMap::new);
        }
        self.open.store(open, Ordering::SeqCst);
    }

    pub fn user_ready(&self) {
        self.ready_users.fetch_add(1, Ordering::SeqCst);
    }

    /// A number for a new simulated user.
    pub fn next_user(&self) -> usize {
        self.next_user.fetch_add(1, Ordering::Relaxed)
    }

    /// User `user`'s credential was refused (401) inside the window: from the user's side,
    /// logged out.
    pub fn logged_out(&self, user: usize) {
        if self.open.load(Ordering::Relaxed) {
            self.lock().logged_out.insert(user);
        }
    }

    /// `status` 0 means no HTTP answer at all (connection refused, timeout); `elapsed` is
    /// from the send, and `late` (open model) how long after its slot the request was sent.
    pub fn record(
        &self,
        route: &'static str,
        status: u16,
        elapsed: Duration,
        late: Option<Duration>,
    ) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if !self.open.load(Ordering::Relaxed) {
            return;
        }
        let us = micros(elapsed);
        let mut w = self.lock();
        if let Some(late) = late {
            let from_slot = w.from_slot.get_or_insert_with(histogram);
            let _ = from_slot.record(micros(elapsed + late));
            let _ = w.late_by.get_or_insert_with(histogram).record(micros(late));
            if late > LATE_AFTER {
                w.late_starts += 1;
            }
        }
        let i = match w.by_route.iter().position(|(r, _)| *r == route) {
            Some(i) => i,
            None => {
                w.by_route.push((route, histogram()));
                w.by_route.len() - 1
            }
        };
        let _ = w.by_route[i].1.record(us);
        *w.by_status.entry(status).or_default() += 1;
        // Filed by when the request was sent: a request sent during a fault and answered
        // after it belongs to the fault.
        let step = w.opened.map_or(0, |t| {
            (t.elapsed().saturating_sub(elapsed).as_secs_f64() / TIMELINE_STEP_S) as u64
        });
        if let Some(timeline) = w.timeline.as_mut() {
            let bucket = timeline.entry((step, route)).or_default();
            if (200..300).contains(&status) {
                bucket.0 += 1;
            } else {
                bucket.1 += 1;
                if status == 401 {
                    bucket.2 += 1;
                }
            }
        }
    }

    pub fn take(&self) -> Window {
        std::mem::take(&mut *self.lock())
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, 60_000_000)
}

impl Window {
    /// What an open-model window saw (`None` for a closed loop); `achieved_rps` is the
    /// caller's, who knows the window's length.
    pub fn open_model(&self, achieved_rps: f64) -> Option<OpenModel> {
        let (from_slot, late_by) = (self.from_slot.as_ref()?, self.late_by.as_ref()?);
        let mut actual = histogram();
        for (_, h) in &self.by_route {
            let _ = actual.add(h);
        }
        Some(OpenModel {
            achieved_rps,
            late_starts: self.late_starts,
            late_after_us: LATE_AFTER.as_micros() as u64,
            late_by_us: percentiles(late_by),
            latency_us_intended: percentiles(from_slot),
            latency_us_actual: percentiles(&actual),
        })
    }

    pub fn requests(&self) -> u64 {
        self.by_status.values().sum()
    }

    pub fn errors_by_status(&self) -> BTreeMap<u16, u64> {
        self.by_status
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    pub fn latency(&self) -> Latency {
        let mut all = histogram();
        for (_, h) in &self.by_route {
            let _ = all.add(h);
        }
        latency_of(&all)
    }

    /// Every histogram, serialized for results.json (`loadtest run`, for `merge`).
    pub fn histograms(&self) -> anyhow::Result<Histograms> {
        let mut all = histogram();
        let mut by_route = BTreeMap::new();
        for (r, h) in &self.by_route {
            let _ = all.add(h);
            by_route.insert(r.to_string(), encode(h)?);
        }
        Ok(Histograms {
            all: encode(&all)?,
            by_route,
            from_slot: self.from_slot.as_ref().map(encode).transpose()?,
            late_by: self.late_by.as_ref().map(encode).transpose()?,
        })
    }

    pub fn latency_by_route(&self) -> BTreeMap<String, Latency> {
        self.by_route
            .iter()
            .map(|(r, h)| (r.to_string(), latency_of(h)))
            .collect()
    }

    /// The timeline, when one was kept.
    pub fn timeline(&self) -> Vec<TimelinePoint> {
        self.timeline
            .iter()
            .flatten()
            .map(|((step, route), (ok, failed, refused))| TimelinePoint {
                // Rounded to the step, so 0.30000000000000004 reads 0.3.
                t_s: (*step as f64 * TIMELINE_STEP_S * 10.0).round() / 10.0,
                route: route.to_string(),
                ok: *ok,
                failed: *failed,
                refused: *refused,
            })
            .collect()
    }

    /// Requests by route template.
    pub fn requests_by_route(&self) -> BTreeMap<String, u64> {
        self.by_route
            .iter()
            .map(|(r, h)| (r.to_string(), h.len()))
            .collect()
    }

    /// How many users were refused at least once.
    pub fn users_logged_out(&self) -> u32 {
        self.logged_out.len() as u32
    }
}

/// A histogram as results.json keeps it: V2, deflated, base64.
pub fn encode(h: &Histogram<u64>) -> anyhow::Result<String> {
    use base64::Engine;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot serialize a latency histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The inverse of [`encode`]; an error names what was wrong, never panics.
pub fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("a latency histogram is not base64: {e}"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("a latency histogram cannot be read: {e:?}"))
}

/// Adds `from` into `into`, whatever their bounds (a histogram read back may auto-resize).
pub fn add_into(into: &mut Histogram<u64>, from: &Histogram<u64>) -> anyhow::Result<()> {
    into.add(from)
        .map_err(|e| anyhow::anyhow!("latency histograms cannot be added: {e:?}"))
}

/// p50, p90, p99, p99.9 and max of a histogram of microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// p50, p90, p99 and max of a histogram, in ms.
pub fn latency_of(h: &Histogram<u64>) -> Latency {
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
        let r = Recorder::default();
        r.record("/api/me", 200, Duration::from_millis(1), None);
        r.open(true, true);
        for ms in 1..=100 {
            r.record("/api/me", 200, Duration::from_millis(ms), None);
        }
        r.record("/api/items", 503, Duration::from_millis(7), None);
        r.record("/api/items", 0, Duration::from_secs(10), None);
        let w = r.take();
        assert_eq!(r.sent.load(Ordering::SeqCst), 103);
        assert_eq!(w.requests(), 102);
        assert_eq!(w.errors_by_status(), BTreeMap::from([(0, 1), (503, 1)]));
        let me = &w.latency_by_route()["/api/me"];
        assert!((me.p50 - 50.0).abs() < 0.5, "{me:?}");
        assert!((me.p99 - 99.0).abs() < 0.5, "{me:?}");
        assert!((w.latency().max - 10_000.0).abs() < 10.0);
        let timeline = w.timeline();
        let me_ok: u64 = timeline
            .iter()
            .filter(|p| p.route == "/api/me")
            .map(|p| p.ok)
            .sum();
        let items_failed: u64 = timeline
            .iter()
            .filter(|p| p.route == "/api/items")
            .map(|p| p.failed)
            .sum();
        assert_eq!((me_ok, items_failed), (100, 2));
        assert_eq!(w.requests_by_route()["/api/me"], 100);
        // Every request here was sent within the first 0.1 s step... except the 100 ms ones:
        // a request is filed by when it was sent, not when it was answered.
        assert!(timeline.iter().all(|p| p.t_s == 0.0), "{timeline:?}");
    }

    #[test]
    fn a_refused_credential_logs_its_user_out_once() {
        let r = Recorder::default();
        let (a, b) = (r.next_user(), r.next_user());
        assert_ne!(a, b);
        r.logged_out(a);
        r.open(true, true);
        r.logged_out(b);
        r.logged_out(b);
        r.record("/api/me", 401, Duration::from_millis(1), None);
        let w = r.take();
        assert_eq!(
            w.users_logged_out(),
            1,
            "only inside the window, once per user"
        );
        assert_eq!(w.timeline()[0].refused, 1);
    }

    #[test]
    fn histograms_survive_results_json_and_add_up() {
        let r = Recorder::default();
        r.open(true, false);
        for ms in 1..=100 {
            r.record("/api/me", 200, Duration::from_millis(ms), None);
        }
        let h = r.take().histograms().unwrap();
        let me = decode(&h.by_route["/api/me"]).unwrap();
        assert_eq!(me.len(), 100);
        let mut twice = decode(&h.all).unwrap();
        add_into(&mut twice, &me).unwrap();
        assert_eq!(twice.len(), 200);
        assert!((latency_of(&twice).p50 - 50.0).abs() < 0.5);
        assert!(decode("not base64!").is_err());
        assert!(decode("aGVsbG8=").is_err(), "base64, but no histogram");
    }

    #[test]
    fn an_open_window_counts_from_the_slot_and_counts_late_starts() {
        let r = Recorder::default();
        r.open(true, false);
        for _ in 0..98 {
            r.record(
                "/api/me",
                200,
                Duration::from_millis(1),
                Some(Duration::from_micros(500)),
            );
        }
        // Two requests that waited a second for a connection, then took 1 ms.
        for _ in 0..2 {
            r.record(
                "/api/me",
                200,
                Duration::from_millis(1),
                Some(Duration::from_secs(1)),
            );
        }
        let o = r.take().open_model(100.0).unwrap();
        assert_eq!(o.late_starts, 2);
        assert!((999..=1001).contains(&o.latency_us_actual.max), "{o:?}");
        assert!((1499..=1501).contains(&o.latency_us_intended.p50), "{o:?}");
        assert!(o.latency_us_intended.p99 > 1_000_000, "{o:?}");
        assert!(o.late_by_us.max >= 999_000, "{o:?}");
        let closed = Recorder::default();
        closed.open(true, false);
        closed.record("/api/me", 200, Duration::from_millis(1), None);
        assert!(closed.take().open_model(1.0).is_none());
    }

    #[test]
    fn no_timeline_unless_asked() {
        let r = Recorder::default();
        r.open(true, false);
        r.record("/api/me", 200, Duration::from_millis(1), None);
        let w = r.take();
        assert_eq!(w.requests(), 1);
        assert!(w.timeline().is_empty());
    }
}
