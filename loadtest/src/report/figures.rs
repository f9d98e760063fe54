//! Figures computed once, from every round that measured them, and printed with as many
//! significant figures as their spread supports (with the spread beside them).

use crate::model::{Bottleneck, CpuPerRequest, Results, Run, ServerKind};

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
