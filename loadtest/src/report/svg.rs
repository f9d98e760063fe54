//! Small, dependency-free SVG charts: lines over replica counts and grouped bars. Text is
//! escaped, sizes are fixed, and nothing is fetched: the SVG can be inlined in HTML or
//! saved beside Markdown.

use std::fmt::Write;

/// Colour-blind-safe palette (Okabe-Ito).
const COLOURS: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];
const W: f64 = 640.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. p50 next to a solid p99).
    pub dashed: bool,
    /// Per point, the lowest and highest of its repetitions (drawn as a whisker); empty for
    /// none.
    pub spread: Vec<(f64, f64)>,
    /// Per point, whether it is marked (hollow): bound by something other than what the
    /// chart is about, or oversubscribed. Empty for none.
    pub marked: Vec<bool>,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
            spread: Vec::new(),
            marked: Vec::new(),
        }
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// How a line chart's x axis is laid out, and what else it shows.
#[derive(Default)]
pub struct LineOptions {
    /// x positions to scale (seconds); otherwise the x values sit evenly (replica counts).
    pub numeric_x: bool,
    /// A shaded span of x (a fault: from, to; to `None` = the end), with its caption.
    pub band: Option<(f64, Option<f64>, String)>,
    /// What a hollow point means, for the legend.
    pub marked_means: Option<String>,
}

/// A tidy upper bound for an axis: 1, 2 or 5 times a power of ten.
pub fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// Axis ticks: as many decimals as the scale needs, and no more.
fn fmt_tick(v: f64, max: f64) -> String {
    if max >= 50.0 {
        format!("{v:.0}")
    } else if max >= 5.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A category label on up to two lines (`session read` becomes `session` over `read`).
fn category_label(out: &mut String, x: f64, y: f64, text: &str) {
    let mut words = text.splitn(2, ' ');
    let first = escape(words.next().unwrap_or_default());
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{first}"#
    );
    if let Some(second) = words.next() {
        let _ = write!(
            out,
            r#"<tspan x="{x:.1}" dy="14">{}</tspan>"#,
            escape(second)
        );
    }
    out.push_str("</text>");
}

pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn frame(out: &mut String, title: &str, y_label: &str, y_max: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" style="max-width:100%;height:auto;font-family:sans-serif;font-size:12px"><title>{t}</title><rect width="{W}" height="{H}" fill="white"/><text x="{LEFT}" y="18" font-weight="bold">{t}</text>"#,
        t = escape(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        let y = TOP + plot_h - plot_h * i as f64 / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            v = fmt_tick(v, y_max)
        );
    }
    let _ = write!(
        out,
        r#"<text transform="translate(14,{cy}) rotate(-90)" text-anchor="middle">{l}</text>"#,
        cy = TOP + plot_h / 2.0,
        l = escape(y_label)
    );
}

fn legend(out: &mut String, names: &[(String, bool)]) {
    for (i, (name, dashed)) in names.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 18.0;
        let x = W - RIGHT + 12.0;
        let dash = if *dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="3"{dash}/><text x="{tx}" y="{ty}">{n}</text>"#,
            x2 = x + 18.0,
            c = COLOURS[i % COLOURS.len()],
            tx = x + 24.0,
            ty = y + 4.0,
            n = escape(name)
        );
    }
}

/// Lines over replica counts: one per series, with points marked.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    line_chart_with(title, x_label, y_label, series, &LineOptions::default())
}

/// Lines, with a choice of x axis, whiskers, hollow points and a shaded span.
pub fn line_chart_with(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    opts: &LineOptions,
) -> String {
    let xs: Vec<f64> = {
        let mut v: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.dedup();
        v
    };
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.spread.iter().map(|r| r.1))
            })
            .fold(0.0, f64::max),
    );
    let mut out = String::new();
    frame(&mut out, title, y_label, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let (x_min, x_max) = (
        xs.first().copied().unwrap_or(0.0),
        xs.last().copied().unwrap_or(1.0),
    );
    let x_span = if opts.numeric_x {
        (nice_max(x_max.max(1.0)) - x_min.min(0.0)).max(1e-9)
    } else {
        1.0
    };
    // Categorical spacing: replica counts 1, 2, 4, 8 sit evenly. Numeric: to scale.
    let x_of = |x: f64| {
        if opts.numeric_x {
            return LEFT + 20.0 + (plot_w - 40.0) * (x - x_min.min(0.0)) / x_span;
        }
        let i = xs.iter().position(|v| *v == x).unwrap_or(0) as f64;
        let n = xs.len().max(2) as f64 - 1.0;
        LEFT + 20.0 + (plot_w - 40.0) * if xs.len() < 2 { 0.5 } else { i / n }
    };
    let y_of = |y: f64| TOP + plot_h - plot_h * (y / y_max);
    if let Some((from, to, caption)) = &opts.band {
        let x1 = x_of(*from);
        let x2 = to.map_or(W - RIGHT, &x_of);
        let _ = write!(
            out,
            r##"<rect x="{x1:.1}" y="{TOP}" width="{w:.1}" height="{plot_h}" fill="#f0e442" fill-opacity="0.25"><title>{c}</title></rect><text x="{x1:.1}" y="{ty}" font-size="11">{c}</text>"##,
            w = (x2 - x1).max(1.0),
            ty = TOP - 4.0,
            c = escape(caption)
        );
    }
    let ticks: Vec<f64> = if opts.numeric_x {
        let top = nice_max(x_max.max(1.0));
        let step = nice_max(top / 8.0);
        (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= top + 1e-9)
            .collect()
    } else {
        xs.clone()
    };
    for x in &ticks {
        let label = if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            fmt_num(*x)
        };
        category_label(&mut out, x_of(*x), H - BOTTOM + 18.0, &label);
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        H - 10.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2.5"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        for (i, (x, y)) in s.points.iter().enumerate() {
            if let Some((lo, hi)) = s.spread.get(i) {
                let _ = write!(
                    out,
                    r#"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="1.5"><title>{}: {} to {}</title></line>"#,
                    y_of(*lo),
                    y_of(*hi),
                    escape(&s.name),
                    fmt_num(*lo),
                    fmt_num(*hi),
                    cx = x_of(*x),
                );
            }
            let hollow = s.marked.get(i).copied().unwrap_or(false);
            let fill = if hollow { "white" } else { c };
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{fill}" stroke="{c}" stroke-width="2"><title>{}: {}{}</title></circle>"#,
                x_of(*x),
                y_of(*y),
                if hollow { 5 } else { 3 },
                escape(&s.name),
                fmt_num(*y),
                if hollow { " (marked)" } else { "" }
            );
        }
    }
    legend(
        &mut out,
        &series
            .iter()
            .map(|s| (s.name.clone(), s.dashed))
            .collect::<Vec<_>>(),
    );
    if let Some(means) = &opts.marked_means {
        if series.iter().any(|s| s.marked.iter().any(|m| *m)) {
            let _ = write!(
                out,
                r##"<circle cx="{x}" cy="{y}" r="5" fill="white" stroke="#444" stroke-width="2"/><text x="{tx}" y="{ty}" font-size="11">{m}</text>"##,
                x = LEFT + 6.0,
                y = H - 12.0,
                tx = LEFT + 16.0,
                ty = H - 8.0,
                m = escape(means)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Bars per category; `stack` piles each category's values (CPU split by component),
/// otherwise they stand side by side.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    stack: bool,
) -> String {
    let totals: Vec<f64> = (0..categories.len())
        .map(|c| {
            let vals = series.iter().map(|(_, v)| v.get(c).copied().unwrap_or(0.0));
            if stack {
                vals.sum()
            } else {
                vals.fold(0.0, f64::max)
            }
        })
        .collect();
    let y_max = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let mut out = String::new();
    frame(&mut out, title, y_label, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / categories.len().max(1) as f64;
    let n = series.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let x0 = LEFT + slot * ci as f64 + slot * 0.15;
        let width = slot * 0.7;
        let mut base = 0.0;
        for (si, (name, vals)) in series.iter().enumerate() {
            let v = vals.get(ci).copied().unwrap_or(0.0);
            let h = plot_h * v / y_max;
            let (x, w, y) = if stack {
                (x0, width, TOP + plot_h - plot_h * base / y_max - h)
            } else {
                (x0 + width / n * si as f64, width / n, TOP + plot_h - h)
            };
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{cat} {name}: {v}</title></rect>"#,
                c = COLOURS[si % COLOURS.len()],
                cat = escape(cat),
                name = escape(name),
                v = fmt_num(v)
            );
            // A zero is a measured zero: say so, or the bar looks forgotten.
            if v == 0.0 && !stack {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">0</text>"#,
                    x + w / 2.0,
                    TOP + plot_h - 4.0
                );
            }
            base += v;
        }
        category_label(&mut out, x0 + width / 2.0, H - BOTTOM + 16.0, cat);
    }
    legend(
        &mut out,
        &series
            .iter()
            .map(|(n, _)| (n.clone(), false))
            .collect::<Vec<_>>(),
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(4100.0), 5000.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn charts_are_well_formed_and_escaped() {
        let mut line = Series::line("a<b", vec![(1.0, 1000.0), (2.0, 2000.0)]);
        line.spread = vec![(900.0, 1100.0), (1800.0, 2500.0)];
        line.marked = vec![false, true];
        let opts = LineOptions {
            marked_means: Some("hollow: bound elsewhere".into()),
            ..LineOptions::default()
        };
        let svg = line_chart_with("t&t", "replicas", "req/s", &[line], &opts);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a&lt;b") && svg.contains("t&amp;t"));
        // Two points, and the legend's hollow sample.
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(
            svg.contains(r##"fill="white" stroke="#0072B2""##),
            "the bound point is hollow"
        );
        assert!(svg.contains("1800 to 2500"), "the whisker spans the rounds");
        let zero = bar_chart("z", "n", &["a".into()], &[("p".into(), vec![0.0])], false);
        assert!(zero.contains(">0</text>"), "a zero bar is labelled");
        let b = bar_chart(
            "b",
            "us",
            &["x".into(), "y".into()],
            &[("p".into(), vec![1.0, 2.0]), ("q".into(), vec![3.0, 4.0])],
            true,
        );
        assert_eq!(b.matches("<rect x=").count(), 4);
    }
}
