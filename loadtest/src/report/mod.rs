//! The report students read: `report.html` (one self-contained file, charts inline) and
//! `report.md` (the same text, charts as SVG files beside it), built from results.json
//! alone. Every number in them comes from that file; the prose only says what those
//! numbers support, and says "not visible" (never 0) for what the run could not see.
//!
//! It opens with the verdicts on the study note's claims (`verdicts.rs`), then the sweep
//! (`sweep.rs`), the experiments (`experiments.rs`; the store beyond one machine in
//! `store.rs`), and the pages a student needs to read
//! them (`student.rs`: flows, security, glossary).

mod browser;
mod curve;
mod experiments;
pub mod figures;
mod store;
mod student;
pub mod summary;
pub mod svg;
mod sweep;
mod verdicts;

use std::fmt::Write;
use std::path::Path;

use crate::model::{Bottleneck, Results, Run};
use svg::{escape, fmt_num};

/// A table rendered the same way into both formats.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Per row, the id of the section it points to, shown as a link in a last column
    /// (empty: no such column).
    pub links: Vec<(String, String)>,
}

impl Table {
    pub fn new(headers: &[&str], rows: Vec<Vec<String>>) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
            links: Vec::new(),
        }
    }
}

pub struct Section {
    pub id: &'static str,
    pub title: String,
    /// What the numbers mean, for a student: shown first.
    pub reading: Vec<String>,
    /// What was measured and how.
    pub method: String,
    pub charts: Vec<(String, String)>,
    pub table: Option<Table>,
    /// Verbatim text (decoded tokens, cookies) with a caption.
    pub code: Vec<(String, String)>,
}

impl Section {
    pub fn new(id: &'static str, title: impl Into<String>) -> Self {
        Self {
            id,
            title: title.into(),
            reading: Vec::new(),
            method: String::new(),
            charts: Vec::new(),
            table: None,
            code: Vec::new(),
        }
    }
}

fn row(cells: &[String]) -> Vec<String> {
    cells.to_vec()
}

/// A CPU figure in microseconds, or "not visible".
fn us(v: Option<f64>) -> String {
    v.map_or("not visible".into(), |v| format!("{} µs", fmt_num(v)))
}

/// A figure that may be missing: its number, or `missing`.
fn num_or(v: Option<f64>, missing: &str) -> String {
    v.map_or(missing.into(), fmt_num)
}

/// What limited a run, in the tables' words.
fn bottleneck_text(r: &Run) -> String {
    let mut s = match r.bottleneck {
        Some(Bottleneck::Replicas) => "replicas".to_string(),
        Some(b) => format!("{} (not the servers)", b.name()),
        None if r.cpu_us_per_request.replicas.is_none() => "not visible".into(),
        // Version 4 names `concurrency` where nothing was saturated in a closed loop; at a
        // fixed rate, nothing saturated means the schedule set the pace.
        None if r.open_model.is_some() => "none: the offered rate set the pace".into(),
        None => "no bottleneck found".into(),
    };
    if r.oversubscribed {
        s.push_str(", oversubscribed");
    }
    s
}

/// `token read`, or `public` alone (its scenario has its name).
fn group_scenario(r: &Run) -> String {
    if r.scenario == r.server.main_scenario() && r.server == crate::model::ServerKind::Public {
        r.server.name().into()
    } else {
        format!("{} {}", r.server.name(), r.scenario.name())
    }
}

/// `server` or `server (experiment: variant)`.
fn run_name(r: &Run) -> String {
    match r.experiment {
        Some(e) => format!(
            "{} ({}: {})",
            r.server.name(),
            e.name(),
            r.variant().describe(r.server)
        ),
        None => r.server.name().into(),
    }
}

pub fn sections(results: &Results) -> Vec<Section> {
    let mut v = Vec::new();
    v.extend(sweep::scaling(results));
    v.extend(curve::section(results));
    v.extend(sweep::latency(results));
    v.extend(sweep::open_model(results));
    v.extend(sweep::cpu(results));
    v.extend(sweep::redis_and_bytes(results));
    v.extend(experiments::store_bound(results));
    v.extend(store::store_cluster(results));
    v.extend(store::store_failover(results));
    v.extend(store::store_latency(results));
    v.extend(experiments::shared_store(results));
    v.extend(experiments::redis_outage(results));
    v.extend(experiments::replica_loss(results));
    v.extend(experiments::revocation(results));
    v.extend(experiments::authority(results));
    v.extend(experiments::access_token_lifetime(results));
    v.extend(experiments::server_memory(results));
    v.extend(experiments::token_anatomy(results));
    v.extend(experiments::signing(results));
    v.extend(browser::section(results));
    v.extend(student::security(results));
    v.push(student::flows());
    v.extend(experiments::cost_projection(results));
    v.extend(sweep::invalid_runs(results));
    v.push(sweep::machine(results));
    v.push(student::glossary());
    v.push(sweep::all_runs(results));
    let present: Vec<(&'static str, String)> = v.iter().map(|s| (s.id, s.title.clone())).collect();
    v.insert(0, verdicts::section(results, &present));
    v
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;line-height:1.5;color:#111}\
table{border-collapse:collapse;width:100%;font-size:.9rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}\
figure{margin:1rem 0}pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5rem;font-size:.85rem}section{margin-bottom:2rem}.reading{background:#f5f9ff;border-left:4px solid #0072B2;padding:.5rem 1rem}.method{color:#444;font-size:.95rem}.byline{color:#444}\
@media print{body{max-width:none}section{page-break-inside:avoid}}";

pub fn html(results: &Results, sections: &[Section]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sessions vs tokens: measured</title><style>{CSS}</style></head><body><h1>Sessions vs tokens: what was measured</h1><p class=\"byline\">{}. Built from results.json alone.</p>",
        escape(&byline(results))
    );
    for s in sections {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{}</h2>",
            s.id,
            escape(&s.title)
        );
        if !s.reading.is_empty() {
            out.push_str("<div class=\"reading\">");
            for p in &s.reading {
                let _ = write!(out, "<p>{}</p>", escape(p));
            }
            out.push_str("</div>");
        }
        if !s.method.is_empty() {
            let _ = write!(out, "<p class=\"method\">{}</p>", escape(&s.method));
        }
        for (_, svg) in &s.charts {
            let _ = write!(out, "<figure>{svg}</figure>");
        }
        if let Some(t) = &s.table {
            out.push_str("<table><thead><tr>");
            for h in &t.headers {
                let _ = write!(out, "<th>{}</th>", escape(h));
            }
            out.push_str("</tr></thead><tbody>");
            for (i, r) in t.rows.iter().enumerate() {
                out.push_str("<tr>");
                for c in r {
                    let _ = write!(out, "<td>{}</td>", escape(c));
                }
                match t.links.get(i) {
                    Some((id, text)) if !id.is_empty() => {
                        let _ = write!(out, "<td><a href=\"#{id}\">{}</a></td>", escape(text));
                    }
                    Some((_, text)) => {
                        let _ = write!(out, "<td>{}</td>", escape(text));
                    }
                    None => {}
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        for (caption, text) in &s.code {
            let _ = write!(
                out,
                "<figure><figcaption>{}</figcaption><pre>{}</pre></figure>",
                escape(caption),
                escape(text)
            );
        }
        out.push_str("</section>");
    }
    out.push_str("<nav id=\"contents\"><h2>Contents</h2><ul>");
    for s in sections {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            s.id,
            escape(&s.title)
        );
    }
    out.push_str("</ul></nav></body></html>\n");
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// When and where the run was made, in one line.
fn byline(results: &Results) -> String {
    let e = &results.environment;
    format!(
        "Measured {} on {} ({} CPUs, {:.0} GiB); contents at the end",
        e.started_at,
        e.cpu_model,
        e.cpus,
        e.memory_bytes as f64 / (1u64 << 30) as f64
    )
}

pub fn markdown(results: &Results, sections: &[Section]) -> String {
    let mut out = format!(
        "# Sessions vs tokens: what was measured\n\n{}. Built from results.json alone.\n\n",
        byline(results)
    );
    for s in sections {
        let _ = write!(out, "## {}\n\n", s.title);
        for p in &s.reading {
            let _ = write!(out, "> {p}\n>\n");
        }
        if !s.reading.is_empty() {
            out.push('\n');
        }
        if !s.method.is_empty() {
            let _ = write!(out, "{}\n\n", s.method);
        }
        for (name, _) in &s.charts {
            let _ = write!(out, "![{}](charts/{name})\n\n", s.title);
        }
        if let Some(t) = &s.table {
            let _ = writeln!(
                out,
                "| {} |",
                t.headers
                    .iter()
                    .map(|h| md_cell(h))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            let _ = writeln!(out, "|{}|", vec!["---"; t.headers.len()].join("|"));
            for (i, r) in t.rows.iter().enumerate() {
                let mut cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                match t.links.get(i) {
                    Some((id, text)) if !id.is_empty() => {
                        cells.push(format!("[{}](#{id})", md_cell(text)))
                    }
                    Some((_, text)) => cells.push(md_cell(text)),
                    None => {}
                }
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out.push('\n');
        }
        for (caption, text) in &s.code {
            let _ = write!(out, "{caption}:\n\n```\n{text}\n```\n\n");
        }
    }
    out
}

/// Writes report.html, report.md and charts/*.svg into `dir`.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<()> {
    let sections = sections(results);
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts)?;
    for s in &sections {
        for (name, svg) in &s.charts {
            std::fs::write(charts.join(name), svg)?;
        }
    }
    std::fs::write(dir.join("report.html"), html(results, &sections))?;
    std::fs::write(dir.join("report.md"), markdown(results, &sections))?;
    Ok(())
}
