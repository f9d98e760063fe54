//! Experiment `latency-curve`: what a request costs a user, against load. Each group's
//! capacity on one replica with a whole core, then its latency at fixed fractions of it,
//! counted from each request's slot (the open model), on shared axes.

use super::svg::{fmt_num, line_chart_with, LineOptions, Series};
use super::{bottleneck_text, row, Chart, Section, Table};
use crate::model::{Experiment, Results, Run, ServerKind, Variant};

/// The latency goal a rate must meet to count as sustained: p99 from the slot.
pub const LATENCY_GOAL_P99_MS: f64 = 10.0;

/// One group of the curve: its capacity run and its fixed-rate runs, slowest first.
pub struct Curve<'a> {
    pub server: ServerKind,
    pub variant: Variant,
    pub capacity: &'a Run,
    pub points: Vec<&'a Run>,
}

impl Curve<'_> {
    pub fn name(&self) -> String {
        match self.variant {
            Variant::Standard => self.server.name().to_string(),
            v => format!("{} ({})", self.server.name(), v.describe(self.server)),
        }
    }

    /// The highest rate achieved whose p99 from the slot met the goal.
    pub fn within_goal(&self) -> Option<f64> {
        self.points
            .iter()
            .filter_map(|r| {
                let o = r.open_model.as_ref()?;
                let p99_ms = o.latency_us_intended.p99 as f64 / 1000.0;
                (p99_ms <= LATENCY_GOAL_P99_MS).then_some(o.achieved_rps)
            })
            .reduce(f64::max)
    }

    /// p50 from the send at the lightest load, in µs: a request's own time, no queue.
    pub fn unloaded_us(&self) -> Option<u64> {
        let r = self.points.first()?;
        Some(r.open_model.as_ref()?.latency_us_actual.p50)
    }
}

/// Every group of the curve that has a capacity run, in the order they ran.
pub fn curves(results: &Results) -> Vec<Curve<'_>> {
    let runs = results.experiment(Experiment::LatencyCurve);
    let mut out: Vec<Curve> = Vec::new();
    for r in runs.iter().filter(|r| r.setup.open.is_none()) {
        let mut points: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|p| {
                p.setup.open.is_some() && p.server == r.server && p.variant() == r.variant()
            })
            .collect();
        points.sort_by(|a, b| offered(a).total_cmp(&offered(b)));
        out.push(Curve {
            server: r.server,
            variant: r.variant(),
            capacity: r,
            points,
        });
    }
    out
}

fn offered(r: &Run) -> f64 {
    r.setup.open.map_or(0.0, |o| o.offered_rps)
}

/// A fixed-rate run's offered rate as a whole percentage of its group's capacity.
fn percent_of_capacity(c: &Curve, r: &Run) -> Option<u32> {
    (c.capacity.rps > 0.0).then(|| (100.0 * offered(r) / c.capacity.rps).round() as u32)
}

/// The fractions of capacity the curves were run at, as they ran (a table column each).
fn percents(curves: &[Curve]) -> Vec<u32> {
    let mut all: Vec<u32> = curves
        .iter()
        .flat_map(|c| c.points.iter().filter_map(|r| percent_of_capacity(c, r)))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// "10, 50 and 80%".
fn list_percents(p: &[u32]) -> String {
    let words: Vec<String> = p.iter().map(u32::to_string).collect();
    match words.split_last() {
        Some((last, [])) => format!("{last}%"),
        Some((last, rest)) => format!("{} and {last}%", rest.join(", ")),
        None => "no fraction".into(),
    }
}

pub fn section(results: &Results) -> Option<Section> {
    let curves = curves(results);
    if curves.iter().all(|c| c.points.is_empty()) {
        return None;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let mut series = Vec::new();
    for c in &curves {
        let pts = |q: fn(&crate::model::Percentiles) -> u64| {
            c.points
                .iter()
                .filter_map(|r| {
                    let o = r.open_model.as_ref()?;
                    Some((o.achieved_rps, ms(q(&o.latency_us_intended))))
                })
                .collect()
        };
        series.push(Series::line(format!("{} p99", c.name()), pts(|q| q.p99)));
        series.push(Series::line(format!("{} p50", c.name()), pts(|q| q.p50)).dashed());
    }
    let public = curves
        .iter()
        .find(|c| c.server == ServerKind::Public)
        .and_then(Curve::unloaded_us);
    let percents = percents(&curves);
    let rows = curves
        .iter()
        .map(|c| {
            let at = |pct: &u32| {
                c.points
                    .iter()
                    .find(|r| percent_of_capacity(c, r) == Some(*pct))
                    .and_then(|r| {
                        let o = r.open_model.as_ref()?;
                        Some(format!(
                            "{} / {}",
                            fmt_num(ms(o.latency_us_intended.p50)),
                            fmt_num(ms(o.latency_us_intended.p99))
                        ))
                    })
                    .unwrap_or_else(|| "not measured".into())
            };
            let cost = match (c.unloaded_us(), public, c.server) {
                (_, _, ServerKind::Public) => "(the baseline)".into(),
                (Some(own), Some(base), _) => format!("{} µs", own as i64 - base as i64),
                _ => "not measured".into(),
            };
            let mut cells = vec![
                c.name(),
                format!(
                    "{}: {}",
                    fmt_num(c.capacity.rps),
                    bottleneck_text(c.capacity)
                ),
                c.within_goal()
                    .map_or("none of the rates tried".into(), fmt_num),
            ];
            cells.extend(percents.iter().map(at));
            cells.push(cost);
            row(&cells)
        })
        .collect();
    let costs: Vec<String> = curves
        .iter()
        .filter(|c| c.server != ServerKind::Public)
        .filter_map(|c| {
            Some(format!(
                "{} {} µs",
                c.name(),
                c.unloaded_us()? as i64 - public? as i64
            ))
        })
        .collect();
    let mut reading = vec![format!(
        "At light load each line is a request's own time; it bends up near the group's capacity, where requests \
         queue. Lower is faster; further right is more served per core. The goal: p99 at most {} ms from the slot.",
        fmt_num(LATENCY_GOAL_P99_MS)
    )];
    if !costs.is_empty() {
        reading.push(format!(
            "What a credential check costs a user (the median at the lightest load, minus the public group's): \
             {}. A few tens of µs either way is within one run's timing noise.",
            costs.join("; ")
        ));
    }
    let header: Vec<String> = [
        "group",
        "capacity, req/s: bound by",
        "within the goal, req/s",
    ]
    .into_iter()
    .map(String::from)
    .chain(percents.iter().map(|p| format!("{p}%")))
    .chain(["a credential check costs".to_string()])
    .collect();
    Some(Section {
        reading,
        method: format!(
            "Each group ran on one replica with one worker and no CPU quota (a quota replica's latency would \
             be its quota period), behind the same nginx. Its capacity is a closed-loop run's throughput ({} \
             users); then fixed-rate runs at {} of it, each request's latency counted from \
             when it should have started. Table: ms from the slot, p50 / p99, at each fraction; \"within the \
             goal\" is the highest rate achieved with p99 ≤ {} ms. Latency from the slot includes up to a \
             millisecond of the load generator's own timer (it wakes on whole milliseconds, as wrk2's does), \
             the same for every group: what a credential check costs is therefore taken from the send.",
            curves.first().map_or(0, |c| c.capacity.users()),
            list_percents(&percents),
            fmt_num(LATENCY_GOAL_P99_MS)
        ),
        charts: vec![Chart::new(
            "latency-curve.svg",
            "Read from the left: compare the lines at light load (a request's own time), then where each bends up \
             (near its own capacity).",
            line_chart_with(
                "Latency from the slot against requests per second (p50 dashed, p99 solid)",
                "requests per second achieved",
                "milliseconds",
                &series,
                &LineOptions {
                    numeric_x: true,
                    ..LineOptions::default()
                },
            ),
        )],
        table: Some(Table::new(
            &header.iter().map(String::as_str).collect::<Vec<_>>(),
            rows,
        )),
        ..Section::new("latency-curve", "What a request costs a user: latency against load")
    })
}
