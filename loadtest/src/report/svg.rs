//! Small, dependency-free SVG charts: lines over replica counts and grouped bars. Text is
//! escaped, sizes are fixed, and nothing is fetched: the SVG can be inlined in HTML or
//! saved beside Markdown.

use std::fmt::Write;

/// One colour per model on every chart (Okabe-Ito, colour-blind safe), chosen by the
/// series' name, so a model keeps its colour wherever it appears; the variants of the token
/// model have their own.
const MODEL_COLOURS: [(&str, &str); 5] = [
    ("denylist", "#CC79A7"),
    ("EdDSA", "#E69F00"),
    ("session", "#0072B2"),
    ("token", "#D55E00"),
    ("public", "#009E73"),
];
/// Series that are not a model (CPU by component, route groups), also by name.
const OTHER_COLOURS: [(&str, &str); 6] = [
    ("replica", "#56B4E9"),
    ("Redis", "#882255"),
    ("nginx", "#999933"),
    ("load generator", "#555555"),
    ("refresh", "#44AA99"),
    ("login", "#AA4499"),
];
const FALLBACK: [&str; 3] = ["#332288", "#117733", "#888888"];

/// The colour of a series, from its name: the first model named in it, else a component.
pub fn colour_of(name: &str, index: usize) -> &'static str {
    let lower = name.to_lowercase();
    MODEL_COLOURS
        .iter()
        .chain(OTHER_COLOURS.iter())
        .find(|(key, _)| lower.contains(&key.to_lowercase()))
        .map_or(FALLBACK[index % FALLBACK.len()], |(_, c)| c)
}

const W: f64 = 640.0;
/// The plot's own height; the legend below it adds rows.
const H: f64 = 320.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 64.0;
/// Roughly the width of one character at 12 px, for laying out the legend.
const CHAR_W: f64 = 6.8;

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
    /// The top of the y axis, when charts compared side by side must share it.
    pub y_max: Option<f64>,
    /// Draw each series' ideal scaling from its first point (y grows with x), dotted.
    pub ideal: bool,
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
fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
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
    // Ticks at round values: a top of 2×10^k in four steps, 1× or 5× in five.
    let mantissa = y_max / 10f64.powf(y_max.log10().floor());
    let n = if (mantissa - 2.0).abs() < 1e-9 { 4 } else { 5 };
    for i in 0..=n {
        let v = y_max * i as f64 / n as f64;
        let y = TOP + plot_h - plot_h * i as f64 / n as f64;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{v}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            v = fmt_tick(v, y_max / n as f64)
        );
    }
    let _ = write!(
        out,
        r#"<text transform="translate(16,{cy}) rotate(-90)" text-anchor="middle">{l}</text>"#,
        cy = TOP + plot_h / 2.0,
        l = escape(y_label)
    );
}

/// The legend, below the plot in rows that wrap at the chart's width (no name is ever
/// cut); returns the height it took.
fn legend(out: &mut String, names: &[(String, bool)], extra: &[(String, &str)]) -> f64 {
    let (mut x, mut y) = (LEFT, H + 4.0);
    let mut place = |w: f64| -> (f64, f64) {
        if x + w > W - 4.0 && x > LEFT {
            x = LEFT;
            y += 18.0;
        }
        let at = (x, y);
        x += w + 16.0;
        at
    };
    for (i, (name, dashed)) in names.iter().enumerate() {
        let (lx, ly) = place(24.0 + name.chars().count() as f64 * CHAR_W);
        let dash = if *dashed {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<line x1="{lx}" x2="{x2}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="3"{dash}/><text x="{tx}" y="{ty}">{n}</text>"#,
            x2 = lx + 18.0,
            c = colour_of(name, i),
            tx = lx + 24.0,
            ty = ly + 4.0,
            n = escape(name)
        );
    }
    for (text, sample) in extra {
        let (lx, ly) = place(24.0 + text.chars().count() as f64 * CHAR_W);
        let _ = write!(
            out,
            r#"{sample}<text x="{tx}" y="{ty}" font-size="12">{t}</text>"#,
            sample = sample
                .replace("{x}", &format!("{lx}"))
                .replace("{y}", &format!("{ly}"))
                .replace("{x2}", &format!("{}", lx + 18.0)),
            tx = lx + 24.0,
            ty = ly + 4.0,
            t = escape(text)
        );
    }
    y - H + 18.0
}

/// Closes the SVG, setting its height to hold the legend.
fn finish(mut out: String, legend_h: f64) -> String {
    let total = H + legend_h;
    out = out.replacen(
        &format!("viewBox=\"0 0 {W} {H}\""),
        &format!("viewBox=\"0 0 {W} {total}\""),
        1,
    );
    out = out.replacen(
        &format!("<rect width=\"{W}\" height=\"{H}\""),
        &format!("<rect width=\"{W}\" height=\"{total}\""),
        1,
    );
    out.push_str("</svg>");
    out
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
    let y_max = opts.y_max.unwrap_or_else(|| nice_max(max_y(series)));
    let mut out = String::new();
    frame(&mut out, title, y_label, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let (x_min, x_max) = (
        xs.first().copied().unwrap_or(0.0),
        xs.last().copied().unwrap_or(1.0),
    );
    // A numeric axis ends at the data's end, so none of it is left empty.
    let x_span = if opts.numeric_x {
        (x_max.max(1e-9) - x_min.min(0.0)).max(1e-9)
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
            r##"<rect x="{x1:.1}" y="{TOP}" width="{w:.1}" height="{plot_h}" fill="#f0e442" fill-opacity="0.25"><title>{c}</title></rect>"##,
            w = (x2 - x1).max(1.0),
            c = escape(caption)
        );
    }
    let ticks: Vec<f64> = if opts.numeric_x {
        let step = nice_max(x_max.max(1e-9) / 8.0);
        (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= x_max + 1e-9)
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
        H - 14.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let c = colour_of(&s.name, i);
        if let (true, Some(&(x0, y0))) = (opts.ideal, s.points.first()) {
            if x0 > 0.0 {
                let pts: Vec<String> = xs
                    .iter()
                    .filter(|x| **x >= x0)
                    .map(|x| format!("{:.1},{:.1}", x_of(*x), y_of((y0 * x / x0).min(y_max))))
                    .collect();
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="1,4" points="{}"/>"#,
                    pts.join(" ")
                );
            }
        }
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
            // A dense line (a timeline) is its points; markers would hide it.
            if s.points.len() > 30 && s.marked.is_empty() {
                continue;
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
    let mut extra = Vec::new();
    if opts.ideal {
        extra.push((
            "ideal: the first point times the replicas".to_string(),
            r##"<line x1="{x}" x2="{x2}" y1="{y}" y2="{y}" stroke="#444" stroke-width="1.5" stroke-dasharray="1,4"/>"##,
        ));
    }
    if let Some(means) = &opts.marked_means {
        if series.iter().any(|s| s.marked.iter().any(|m| *m)) {
            extra.push((
                means.clone(),
                r##"<circle cx="{x}" cy="{y}" r="5" fill="white" stroke="#444" stroke-width="2"/>"##,
            ));
        }
    }
    if let Some((_, _, caption)) = &opts.band {
        extra.push((
            caption.clone(),
            r##"<rect x="{x}" y="{y}" width="18" height="8" transform="translate(0,-4)" fill="#f0e442" fill-opacity="0.5"/>"##,
        ));
    }
    let names: Vec<(String, bool)> = series.iter().map(|s| (s.name.clone(), s.dashed)).collect();
    let h = legend(&mut out, &names, &extra);
    finish(out, h)
}

/// The highest value any series reaches (its whiskers included).
pub fn max_y(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.spread.iter().map(|r| r.1))
        })
        .fold(0.0, f64::max)
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
                // One series: the categories are what differ (models), so they get the colours.
                c = if series.len() == 1 {
                    colour_of(cat, ci)
                } else {
                    colour_of(name, si)
                },
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
    let names: Vec<(String, bool)> = if series.len() == 1 {
        Vec::new()
    } else {
        series.iter().map(|(n, _)| (n.clone(), false)).collect()
    };
    let h = legend(&mut out, &names, &[]);
    finish(out, h)
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
            svg.contains(r##"fill="white" stroke="#332288""##),
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
