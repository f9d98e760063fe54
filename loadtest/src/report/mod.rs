//! The report students read: `report.html` (one self-contained file, charts inline) and
//! `report.md` (the same text, charts as SVG files beside it), built from results.json
//! alone. Every number in them comes from that file; the prose only says what those
//! numbers support, and says "not visible" (never 0) for what the run could not see.
//!
//! It opens with the answer (`answer.rs`: findings, which model to choose when, caveats)
//! and the verdicts on the study note's claims (`claims.rs`, `verdicts.rs`), then the two
//! models as a student meets them (`student.rs`: flows; the token taken apart), then the
//! results (`curve.rs`, `sweep.rs`, `experiments.rs`, `store.rs`, `browser.rs`), and last an
//! appendix, collapsed in HTML: how each result was measured, every run, the machine.
//! The figures they quote are computed once (`figures.rs`).

mod answer;
mod browser;
pub mod claims;
mod curve;
mod experiments;
pub mod figures;
mod store;
mod student;
pub mod summary;
pub mod svg;
mod sweep;
pub mod verdicts;

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
    /// A column whose cells are verdict labels, drawn as badges in HTML.
    pub badge_column: Option<usize>,
}

impl Table {
    pub fn new(headers: &[&str], rows: Vec<Vec<String>>) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
            links: Vec::new(),
            badge_column: None,
        }
    }
}

/// A chart, the file it is saved as beside report.md, and a one-line caption that says
/// what to look at.
pub struct Chart {
    pub file: String,
    pub caption: String,
    pub svg: String,
}

impl Chart {
    pub fn new(file: impl Into<String>, caption: impl Into<String>, svg: String) -> Self {
        Self {
            file: file.into(),
            caption: caption.into(),
            svg,
        }
    }
}

/// Where a section stands in the report: what a student reads in order, and what is kept
/// for whoever wants to check (the appendix, collapsed in HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Answer,
    Concepts,
    Results,
    Appendix,
}

pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub part: Part,
    /// What the numbers mean, for a student: shown first.
    pub reading: Vec<String>,
    /// What was measured and how: gathered in the appendix, under the section's title.
    pub method: String,
    pub charts: Vec<Chart>,
    pub table: Option<Table>,
    /// Verbatim text (decoded tokens, cookies) with a caption.
    pub code: Vec<(String, String)>,
}

impl Section {
    pub fn new(id: &'static str, title: impl Into<String>) -> Self {
        Self {
            id,
            title: title.into(),
            part: Part::Results,
            reading: Vec::new(),
            method: String::new(),
            charts: Vec::new(),
            table: None,
            code: Vec::new(),
        }
    }
}

/// Whether the containers' CPU was read, and their budget set, through the Docker Engine
/// (`compare --via compose` since schema 4; older compose runs wrote the containers'
/// cgroup files from the host).
fn through_engine(results: &Results) -> bool {
    results
        .environment
        .config
        .get("cpu_seen")
        .is_some_and(|seen| seen.contains("Docker Engine"))
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
    let mut put = |part: Part, s: Vec<Section>| {
        v.extend(s.into_iter().map(|x| Section { part, ..x }));
    };
    put(Part::Answer, answer::section(results).into_iter().collect());
    put(Part::Answer, vec![answer::caveats(results)]);
    put(Part::Concepts, vec![student::flows()]);
    put(
        Part::Concepts,
        experiments::token_anatomy(results).into_iter().collect(),
    );
    let mut results_part = Vec::new();
    results_part.extend(curve::section(results));
    let (scaling, calibration) = sweep::scaling(results);
    results_part.extend(scaling);
    results_part.extend(sweep::open_model(results));
    results_part.extend(sweep::cpu(results));
    results_part.extend(sweep::redis_and_bytes(results));
    results_part.extend(experiments::store_bound(results));
    results_part.extend(store::store_cluster(results));
    results_part.extend(store::store_latency(results));
    results_part.extend(experiments::shared_store(results));
    results_part.extend(experiments::redis_outage(results));
    results_part.extend(experiments::replica_loss(results));
    results_part.extend(store::store_failover(results));
    results_part.extend(experiments::revocation(results));
    results_part.extend(experiments::authority(results));
    results_part.extend(experiments::access_token_lifetime(results));
    results_part.extend(experiments::server_memory(results));
    results_part.extend(experiments::signing(results));
    let (browser, browser_cases) = browser::sections(results).unzip();
    results_part.extend(browser);
    put(Part::Results, results_part);
    let mut appendix = vec![verdicts::rules_section()];
    appendix.extend(calibration);
    appendix.extend(sweep::latency(results));
    appendix.extend(browser_cases);
    appendix.extend(student::security(results));
    appendix.extend(experiments::cost_projection(results));
    appendix.extend(sweep::invalid_runs(results));
    appendix.push(sweep::machine(results));
    appendix.push(student::glossary());
    appendix.push(sweep::all_runs(results));
    put(Part::Appendix, appendix);
    let present: Vec<(&'static str, String)> = v.iter().map(|s| (s.id, s.title.clone())).collect();
    let verdicts = Section {
        part: Part::Answer,
        ..verdicts::section(results, &present)
    };
    let at = v
        .iter()
        .position(|s| s.part != Part::Answer)
        .unwrap_or(v.len());
    v.insert(at, verdicts);
    v
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;line-height:1.5;color:#111}\
table{border-collapse:collapse;width:100%;font-size:.9rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}\
figure{margin:1rem 0}figcaption{font-size:.9rem;color:#333;margin:.25rem 0}pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5rem;font-size:.85rem}section{margin-bottom:2rem}.reading{background:#f5f9ff;border-left:4px solid #0072B2;padding:.5rem 1rem}.method{color:#444;font-size:.95rem}.byline{color:#444}\
#answer .reading{background:#fffbea;border-left-color:#E69F00}#caveats .reading{background:#f6f6f6;border-left-color:#888;font-size:.92rem}\
nav ol{columns:2;font-size:.92rem}\
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-weight:600;white-space:nowrap}\
.v-confirmed{background:#d7f0e4;color:#00553a}.v-qualified{background:#fdeed2;color:#7a4a00}.v-same{background:#e3eef8;color:#0b4a7a}\
.v-partly{background:#efe3f1;color:#6a2a60}.v-refuted{background:#fbdcd0;color:#8a2c00}.v-none{background:#eee;color:#444}\
details.appendix>summary{font-size:1.4rem;font-weight:bold;cursor:pointer;margin:1rem 0}\
@media print{body{max-width:none}section{page-break-inside:avoid}}";

/// A part's heading in the contents.
fn part_title(p: Part) -> &'static str {
    match p {
        Part::Answer => "The answer",
        Part::Concepts => "The two models",
        Part::Results => "Results",
        Part::Appendix => "Appendix: how it was measured, every run, the machine",
    }
}

/// Every section's method, gathered for the appendix under the section's title.
fn methods(sections: &[Section]) -> Section {
    let mut rows = Vec::new();
    let mut links = Vec::new();
    for s in sections
        .iter()
        .filter(|s| s.part != Part::Appendix && !s.method.is_empty())
    {
        rows.push(vec![s.method.clone()]);
        links.push((s.id.to_string(), s.title.clone()));
    }
    Section {
        part: Part::Appendix,
        table: Some(Table {
            links,
            ..Table::new(&["what was measured and how", "section"], rows)
        }),
        ..Section::new("methods", "How each result was measured")
    }
}

fn html_table(out: &mut String, t: &Table) {
    out.push_str("<table><thead><tr>");
    for h in &t.headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, r) in t.rows.iter().enumerate() {
        out.push_str("<tr>");
        for (j, c) in r.iter().enumerate() {
            match claims::Verdict::from_name(c).filter(|_| t.badge_column == Some(j)) {
                Some(v) => {
                    let _ = write!(
                        out,
                        "<td><span class=\"badge {}\">{}</span></td>",
                        v.class(),
                        escape(c)
                    );
                }
                None => {
                    let _ = write!(out, "<td>{}</td>", escape(c));
                }
            }
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

fn html_section(out: &mut String, s: &Section) {
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
    // A section in the appendix keeps its method; the others' are gathered there.
    if s.part == Part::Appendix && !s.method.is_empty() {
        let _ = write!(out, "<p class=\"method\">{}</p>", escape(&s.method));
    }
    for c in &s.charts {
        let _ = write!(
            out,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            c.svg,
            escape(&c.caption)
        );
    }
    if let Some(t) = &s.table {
        html_table(out, t);
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

/// The contents, by part.
fn contents(sections: &[Section]) -> Vec<(Part, Vec<(&'static str, &str)>)> {
    let mut parts: Vec<(Part, Vec<(&'static str, &str)>)> = Vec::new();
    for s in sections {
        match parts.last_mut() {
            Some((p, v)) if *p == s.part => v.push((s.id, &s.title)),
            _ => parts.push((s.part, vec![(s.id, &s.title)])),
        }
    }
    parts
}

/// The contents, by part, as a nav.
fn html_contents(out: &mut String, sections: &[Section], methods: &Section) {
    out.push_str("<nav id=\"contents\"><ol>");
    for (part, items) in contents(sections) {
        let _ = write!(out, "<li><b>{}</b><ul>", escape(part_title(part)));
        for (id, title) in items {
            let _ = write!(out, "<li><a href=\"#{id}\">{}</a></li>", escape(title));
        }
        if part == Part::Appendix {
            let _ = write!(
                out,
                "<li><a href=\"#methods\">{}</a></li>",
                escape(&methods.title)
            );
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ol></nav>");
}

pub fn html(results: &Results, sections: &[Section]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sessions vs tokens: measured</title><style>{CSS}</style></head><body><h1>Sessions vs tokens: what was measured</h1><p class=\"byline\">{}. Built from results.json alone.</p>",
        escape(&byline(results))
    );
    let methods = methods(sections);

    let mut in_appendix = false;
    for (i, s) in sections.iter().enumerate() {
        // The contents right after the answer: the first screen is the answer itself.
        if i == 1 || (i == 0 && s.id != "answer") {
            html_contents(&mut out, sections, &methods);
        }
        if s.part == Part::Appendix && !in_appendix {
            in_appendix = true;
            let _ = write!(
                out,
                "<details class=\"appendix\" id=\"appendix\"><summary>{}</summary>",
                escape(part_title(Part::Appendix))
            );
            html_section(&mut out, &methods);
        }
        html_section(&mut out, s);
    }
    if in_appendix {
        out.push_str("</details>");
    }
    out.push_str("</body></html>\n");
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// When and where the run was made, in one line.
fn byline(results: &Results) -> String {
    let e = &results.environment;
    format!(
        "Measured {} on {} ({} CPUs, {:.0} GiB)",
        e.started_at,
        e.cpu_model,
        e.cpus,
        e.memory_bytes as f64 / (1u64 << 30) as f64
    )
}

fn md_table(out: &mut String, t: &Table) {
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
        if let Some(j) = t.badge_column {
            if let Some(c) = cells.get_mut(j) {
                *c = format!("**{c}**");
            }
        }
        match t.links.get(i) {
            Some((id, text)) if !id.is_empty() => cells.push(format!("[{}](#{id})", md_cell(text))),
            Some((_, text)) => cells.push(md_cell(text)),
            None => {}
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn md_section(out: &mut String, s: &Section) {
    let _ = write!(out, "<a id=\"{}\"></a>\n\n## {}\n\n", s.id, s.title);
    for p in &s.reading {
        let _ = write!(out, "> {p}\n>\n");
    }
    if !s.reading.is_empty() {
        out.push('\n');
    }
    if s.part == Part::Appendix && !s.method.is_empty() {
        let _ = write!(out, "{}\n\n", s.method);
    }
    for c in &s.charts {
        let _ = write!(
            out,
            "![{}](charts/{})\n\n*{}*\n\n",
            c.caption, c.file, c.caption
        );
    }
    if let Some(t) = &s.table {
        md_table(out, t);
    }
    for (caption, text) in &s.code {
        let _ = write!(out, "{caption}:\n\n```\n{text}\n```\n\n");
    }
}

/// The contents, by part, as a list.
fn md_contents(out: &mut String, sections: &[Section], methods: &Section) {
    for (part, items) in contents(sections) {
        let _ = writeln!(out, "- **{}**", part_title(part));
        for (id, title) in items {
            let _ = writeln!(out, "  - [{title}](#{id})");
        }
        if part == Part::Appendix {
            let _ = writeln!(out, "  - [{}](#methods)", methods.title);
        }
    }
    out.push('\n');
}

pub fn markdown(results: &Results, sections: &[Section]) -> String {
    let mut out = format!(
        "# Sessions vs tokens: what was measured\n\n{}. Built from results.json alone.\n\n",
        byline(results)
    );
    let methods = methods(sections);
    let mut in_appendix = false;
    for (i, s) in sections.iter().enumerate() {
        if i == 1 || (i == 0 && s.id != "answer") {
            md_contents(&mut out, sections, &methods);
        }
        if s.part == Part::Appendix && !in_appendix {
            in_appendix = true;
            let _ = write!(out, "# {}\n\n", part_title(Part::Appendix));
            md_section(&mut out, &methods);
        }
        md_section(&mut out, s);
    }
    out
}

/// Writes report.html, report.md and charts/*.svg into `dir`.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<()> {
    let sections = sections(results);
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts)?;
    for s in &sections {
        for c in &s.charts {
            std::fs::write(charts.join(&c.file), &c.svg)?;
        }
    }
    std::fs::write(dir.join("report.html"), html(results, &sections))?;
    std::fs::write(dir.join("report.md"), markdown(results, &sections))?;
    Ok(())
}
