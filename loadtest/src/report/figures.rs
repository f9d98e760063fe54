//! Figures computed once, from every round that measured them, and printed with as many
//! significant figures as their spread supports (with the spread beside them).

use crate::model::{Bottleneck, CpuPerRequest, Phase, Results, Run, ServerKind};

/// One quantity over the runs that measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub runs: usize,
}

impl Figure {
    pub fn of(mut v: Vec<f64>) -> Option<Self> {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Self {
            median,
            lo: v[0],
            hi: v[n - 1],
            runs: n,
        })
    }

    /// The figure under a monotonic `f` (a decreasing one swaps the ends).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        let (a, b) = (f(self.lo), f(self.hi));
        Self {
            median: f(self.median),
            lo: a.min(b),
            hi: a.max(b),
            runs: self.runs,
        }
    }

    /// `16 (15 to 17 over 9 runs)`, rounded to the place of the spread's first digit; one
    /// run, or no spread, keeps three significant figures and says so.
    pub fn text(&self, unit: &str) -> String {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        let width = self.hi - self.lo;
        if self.runs < 2 || width <= 0.0 {
            return format!(
                "{}{unit} ({})",
                sig3(self.median),
                if self.runs < 2 {
                    "one run".to_string()
                } else {
                    format!("the same in {} runs", self.runs)
                }
            );
        }
        let place = width.log10().floor();
        let step = 10f64.powf(place);
        let decimals = (-place).max(0.0) as usize;
        let round = |v: f64| format!("{:.*}", decimals, (v / step).round() * step);
        format!(
            "{}{unit} ({} to {} over {} runs)",
            round(self.median),
            round(self.lo),
            round(self.hi),
            self.runs
        )
    }
}

impl Figure {
    /// `35 (31 to 37)`, for a table whose header names the unit and the runs.
    pub fn cell(&self) -> String {
        let t = self.text("");
        match t.split_once(" over ") {
            Some((head, _)) => format!("{head})"),
            None => t,
        }
    }
}

/// Three significant figures.
fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v:.0}");
    }
    let place = v.abs().log10().floor();
    let decimals = (2.0 - place).max(0.0) as usize;
    let step = 10f64.powf(place - 2.0);
    format!("{:.*}", decimals, (v / step).round() * step)
}

/// CPU microseconds per request of one component for `server`'s main scenario, over every
/// valid sweep run bound by its replicas (so it does not depend on the replica count).
pub fn cpu_us(
    results: &Results,
    server: ServerKind,
    pick: fn(&CpuPerRequest) -> Option<f64>,
) -> Option<Figure> {
    Figure::of(
        replica_bound(results, server)
            .filter_map(|r| pick(&r.cpu_us_per_request))
            .collect(),
    )
}

/// Redis commands per request of `server`'s main scenario, over the same runs.
pub fn redis_commands(results: &Results, server: ServerKind) -> Option<Figure> {
    Figure::of(
        replica_bound(results, server)
            .filter_map(|r| r.redis_commands_per_request)
            .collect(),
    )
}

fn replica_bound(results: &Results, server: ServerKind) -> impl Iterator<Item = &Run> {
    results
        .sweep(server, server.main_scenario())
        .into_iter()
        .filter(|r| r.bottleneck == Some(Bottleneck::Replicas))
}

/// How one group's main scenario grew over the sweep, first count to last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// Ratio of the median rounds.
    pub median: f64,
    /// The lowest and highest ratio any pair of rounds gives (slowest last over fastest
    /// first, and the other way round): the spread a difference must clear.
    pub lo: f64,
    pub hi: f64,
    /// Ratio of the replica counts.
    pub replicas: f64,
    /// Every round at every count was bound by the replicas.
    pub replica_bound: bool,
}

impl Growth {
    pub fn of(results: &Results, server: ServerKind) -> Option<Self> {
        let points = results.sweep_points(server, server.main_scenario());
        let (a, b) = (points.first()?, points.last()?);
        (b.replicas > a.replicas && a.min_rps() > 0.0).then(|| Self {
            median: b.median_rps() / a.median_rps(),
            lo: b.min_rps() / a.max_rps(),
            hi: b.max_rps() / a.min_rps(),
            replicas: f64::from(b.replicas) / f64::from(a.replicas),
            replica_bound: points.iter().all(|p| p.replica_bound()),
        })
    }

    /// Whether the two differ by more than the spread of their rounds.
    pub fn differs_from(&self, other: &Growth) -> bool {
        self.lo > other.hi || other.lo > self.hi
    }

    /// `3.73x (3.12 to 3.81)`.
    pub fn text(&self) -> String {
        format!(
            "{}x ({} to {} over the rounds)",
            super::svg::fmt_num(self.median),
            super::svg::fmt_num(self.lo),
            super::svg::fmt_num(self.hi)
        )
    }
}

/// What a fault did to the users of one run, computed once from its timeline: the rate of
/// answered requests before, during and after it (by when each request was sent, on the
/// timeline's own steps), who stayed logged in, and how long until service came back.
#[derive(Debug, Clone, Copy)]
pub struct FaultImpact<'a> {
    pub run: &'a Run,
    /// Requests answered successfully per second, sent before the fault.
    pub before_rps: f64,
    /// Sent while it was in force, as a share of before (1.0 = unchanged).
    pub during_share: Option<f64>,
    /// Sent after it was lifted (a killed replica is never lifted: `None`).
    pub after_share: Option<f64>,
    /// Users still logged in at the end, of those who started.
    pub kept: Option<(u32, u32)>,
    /// Seconds from the fault until the answered rate was back to `BACK_SHARE` of before
    /// for half a second; `None` when it never was within the window.
    pub back_after_s: Option<f64>,
}

/// The share of the rate before a fault that counts as service being back.
pub const BACK_SHARE: f64 = 0.9;

impl<'a> FaultImpact<'a> {
    pub fn of(run: &'a Run) -> Option<Self> {
        let fault = run.fault?;
        let step = run.timeline_step_s;
        if step <= 0.0 || run.duration_s <= 0.0 {
            return None;
        }
        let steps = (run.duration_s / step).round() as usize;
        let ok_at = |k: usize| -> u64 {
            let t = k as f64 * step;
            run.timeline
                .iter()
                .filter(|p| (p.t_s - t).abs() < step / 2.0)
                .map(|p| p.ok)
                .sum()
        };
        let rate_in = |phase: Phase| -> Option<f64> {
            let ks: Vec<usize> = (0..steps)
                .filter(|k| fault.phase(*k as f64 * step, step) == phase)
                .collect();
            (!ks.is_empty()).then(|| {
                ks.iter().map(|k| ok_at(*k)).sum::<u64>() as f64 / (ks.len() as f64 * step)
            })
        };
        let before_rps = rate_in(Phase::Before)?;
        let share = |v: Option<f64>| v.filter(|_| before_rps > 0.0).map(|v| v / before_rps);
        // Back: the first step from the fault on that opens half a second at BACK_SHARE of
        // the rate before.
        let span = ((0.5 / step).round() as usize).max(1);
        let first = (fault.at_s / step).floor() as usize;
        let back_after_s = (first..steps.saturating_sub(span))
            .find(|k| {
                let served: u64 = (*k..k + span).map(ok_at).sum();
                served as f64 / (span as f64 * step) >= BACK_SHARE * before_rps
            })
            .map(|k| (k as f64 * step - fault.at_s).max(0.0));
        Some(Self {
            run,
            before_rps,
            during_share: share(rate_in(Phase::During)),
            after_share: share(rate_in(Phase::After)),
            kept: run
                .users_logged_out
                .map(|out| (run.users().saturating_sub(out), run.users())),
            back_after_s,
        })
    }

    /// `31% of before`, or what was not seen.
    pub fn share_text(share: Option<f64>) -> String {
        share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_decides_the_digits() {
        let f = Figure::of(vec![15.6, 14.9, 16.3]).unwrap();
        assert_eq!(f.text("µs"), "16 µs (15 to 16 over 3 runs)");
        let f = Figure::of(vec![15.62, 15.71, 15.58]).unwrap();
        assert_eq!(f.text("µs"), "15.6 µs (15.6 to 15.7 over 3 runs)");
        let core = Figure::of(vec![6.1, 7.7, 9.2]).unwrap().map(|us| 1e6 / us);
        assert_eq!(core.text(""), "130000 (110000 to 160000 over 3 runs)");
        assert_eq!(
            Figure::of(vec![8.49]).unwrap().text("µs"),
            "8.49 µs (one run)"
        );
        assert_eq!(Figure::of(vec![]), None);
        assert_eq!(Figure::of(vec![2.0, 4.0]).unwrap().median, 3.0);
    }
}
