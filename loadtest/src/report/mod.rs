//! The report students read: `report.html` (one self-contained file, charts inline) and
//! `report.md` (the same text, charts as SVG files beside it), built from results.json
//! alone. Every number in them comes from that file; the prose only says what those
//! numbers support.

mod experiments;
pub mod summary;
pub mod svg;

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use crate::model::{Bottleneck, Results, Run, Scenario, ServerKind};
use svg::{bar_chart, escape, fmt_num, line_chart, Series};

/// A table rendered the same way into both formats.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub struct Section {
    pub id: &'static str,
    pub title: String,
    /// What was measured and how.
    pub method: String,
    pub charts: Vec<(String, String)>,
    pub table: Option<Table>,
    /// What the numbers mean, for a student.
    pub reading: Vec<String>,
    /// Verbatim text (decoded tokens, cookies) with a caption.
    pub code: Vec<(String, String)>,
}

fn row(cells: &[String]) -> Vec<String> {
    cells.to_vec()
}

/// What limited a run, in the tables' words.
fn bottleneck_text(r: &Run) -> String {
    match r.bottleneck {
        Some(Bottleneck::Replicas) => "replicas".into(),
        Some(b) => format!("{} (not the server)", b.name()),
        None => "no bottleneck found".into(),
    }
}

/// Limited by something other than the servers being measured.
fn bound_elsewhere(r: &Run) -> Option<Bottleneck> {
    r.bottleneck.filter(|b| *b != Bottleneck::Replicas)
}

/// `server` or `server (experiment: variant)`.
fn run_name(r: &Run) -> String {
    match r.experiment {
        Some(e) => format!(
            "{} ({}: {})",
            r.server.name(),
            e.name(),
            r.variant.describe(r.server)
        ),
        None => r.server.name().into(),
    }
}

fn machine(results: &Results) -> Section {
    let e = &results.environment;
    let mut rows = vec![
        row(&[
            "CPU".into(),
            format!("{} ({} CPUs available)", e.cpu_model, e.cpus),
        ]),
        row(&[
            "memory".into(),
            format!("{:.1} GiB", e.memory_bytes as f64 / (1u64 << 30) as f64),
        ]),
        row(&["kernel".into(), e.kernel.clone()]),
        row(&[
            "CPU budget per replica enforced by".into(),
            e.cpu_budget_method.clone(),
        ]),
        row(&["measured".into(), e.started_at.clone()]),
    ];
    for (k, v) in &e.versions {
        rows.push(row(&[k.clone(), v.clone()]));
    }
    for (k, v) in &e.config {
        rows.push(row(&[k.clone(), v.clone()]));
    }
    let limited: Vec<&Run> = results
        .runs
        .iter()
        .filter(|r| bound_elsewhere(r).is_some())
        .collect();
    let mut reading = Vec::new();
    if e.cpus <= 4 {
        reading.push(format!(
            "This machine has {} CPUs. The load generator, nginx and Redis run on the same cores as the \
             replicas, so they compete with the servers being measured.",
            e.cpus
        ));
    }
    if limited.is_empty() {
        reading.push("No run was limited by the load generator, nginx or Redis.".into());
    } else {
        let names: BTreeSet<&str> = limited
            .iter()
            .filter_map(|r| bound_elsewhere(r).map(Bottleneck::name))
            .collect();
        reading.push(format!(
            "In {} of {} runs something other than the replicas was the bottleneck ({}). Those runs show \
             that component's limit, not the server's capacity; they are marked in every table.",
            limited.len(),
            results.runs.len(),
            names.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if results.runs.iter().any(|r| r.oversubscribed) {
        reading.push("Some replica counts asked for more CPUs than the machine has (marked oversubscribed): more replicas could not get more CPU there.".into());
    }
    for n in &e.notes {
        reading.push(format!("Note from the run: {n}"));
    }
    Section {
        id: "machine",
        code: Vec::new(),
        title: "The machine and how it was measured".into(),
        method: "Each run starts N replicas behind nginx (round robin, keep-alive to the replicas) and drives them with goose \
                 users through nginx. Users sign up and log in during a warm-up that is never counted; only the measured \
                 window after it is. CPU comes from /proc for every process, Redis commands from INFO commandstats, and \
                 the spread over replicas from each replica's /metrics."
            .into(),
        charts: Vec::new(),
        table: Some(Table { headers: vec!["what".into(), "value".into()], rows }),
        reading,
    }
}

fn all_runs(results: &Results) -> Section {
    let rows = results
        .runs
        .iter()
        .map(|r| {
            row(&[
                run_name(r),
                r.scenario.name().into(),
                r.replicas.to_string(),
                fmt_num(r.rps),
                fmt_num(r.latency_ms.p50),
                fmt_num(r.latency_ms.p99),
                r.errors.to_string(),
                r.redis_commands_per_request.map_or("-".into(), fmt_num),
                fmt_num(r.cpu_us_per_request.replicas),
                bottleneck_text(r)
                    + if r.oversubscribed {
                        ", oversubscribed"
                    } else {
                        ""
                    },
            ])
        })
        .collect();
    Section {
        id: "runs",
        code: Vec::new(),
        title: "Every run".into(),
        method: "One line per run: requests per second and latency seen by the client in the measured window, errors \
                 (any answer that is not 2xx), Redis commands per request, and the replicas' CPU per request."
            .into(),
        charts: Vec::new(),
        table: Some(Table {
            headers: ["server", "scenario", "replicas", "req/s", "p50 ms", "p99 ms", "errors", "Redis cmd/req", "replica CPU us/req", "limited by"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
        reading: Vec::new(),
    }
}

fn scaling(results: &Results) -> Section {
    let mut series = Vec::new();
    let mut reading = Vec::new();
    for s in results.servers() {
        let runs = results.sweep(s, s.main_scenario());
        if runs.is_empty() {
            continue;
        }
        series.push(Series {
            name: format!("{} {}", s.name(), s.main_scenario().name()),
            points: runs.iter().map(|r| (r.replicas as f64, r.rps)).collect(),
            dashed: false,
        });
        if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
            if last.replicas > first.replicas && first.rps > 0.0 {
                let limited: Vec<String> = runs
                    .iter()
                    .filter_map(|r| match (bound_elsewhere(r), r.oversubscribed) {
                        (Some(b), _) => Some(format!("at {} replica(s) {} was saturated", r.replicas, b.name())),
                        (None, true) => Some(format!(
                            "at {} replica(s) the replicas asked for more CPUs than the machine has",
                            r.replicas
                        )),
                        (None, false) => None,
                    })
                    .collect();
                reading.push(format!(
                    "{}: {} req/s with {} replica(s), {} req/s with {}: {}x.{}",
                    s.name(),
                    fmt_num(first.rps),
                    first.replicas,
                    fmt_num(last.rps),
                    last.replicas,
                    fmt_num(last.rps / first.rps),
                    if limited.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " These are not the server's limits: {}. Those figures show what this machine could \
                             give, not how the model scales.",
                            limited.join("; ")
                        )
                    }
                ));
            }
        }
    }
    let session = results.sweep(ServerKind::Session, Scenario::Read);
    if let Some(r) = session
        .iter()
        .find(|r| r.bottleneck == Some(Bottleneck::Redis))
    {
        reading.push(format!(
            "session read hit Redis at {} replicas: every request reads the session there, so the shared store, \
             not the replicas, set the ceiling.",
            r.replicas
        ));
    } else if !session.is_empty() {
        reading.push(
            "session read never saturated Redis in these runs: each request costs one Redis read, but Redis had room \
             to spare at these rates."
                .into(),
        );
    }
    let budget = results.runs.iter().find_map(|r| r.cpus_per_replica);
    Section {
        id: "scaling",
        code: Vec::new(),
        title: "Does throughput grow with replicas?".into(),
        method: match budget {
            Some(c) => format!("Each replica was held to {} CPU during the window, so capacity can only grow by adding replicas.", fmt_num(c)),
            None => "No CPU budget per replica was set: replicas share the machine with the load generator, nginx and Redis.".into(),
        },
        charts: vec![("throughput.svg".into(), line_chart("Requests per second by replica count", "replicas", "req/s", &series))],
        table: None,
        reading,
    }
}

fn latency(results: &Results) -> Section {
    let mut series = Vec::new();
    for s in results.servers() {
        let runs = results.sweep(s, s.main_scenario());
        if runs.is_empty() {
            continue;
        }
        let s = s.name();
        series.push(Series {
            name: format!("{s} p99"),
            points: runs
                .iter()
                .map(|r| (r.replicas as f64, r.latency_ms.p99))
                .collect(),
            dashed: false,
        });
        series.push(Series {
            name: format!("{s} p50"),
            points: runs
                .iter()
                .map(|r| (r.replicas as f64, r.latency_ms.p50))
                .collect(),
            dashed: true,
        });
    }
    Section {
        id: "latency",
        code: Vec::new(),
        title: "How long a request takes".into(),
        method: "Latency measured by the client, from sending a request to reading its whole answer: p50 is the median, p99 \
                 the time 99% of requests beat. With a fixed number of users, more capacity means less queueing."
            .into(),
        charts: vec![("latency.svg".into(), line_chart("Latency p50 (dashed) and p99 by replica count", "replicas", "ms", &series))],
        table: None,
        reading: Vec::new(),
    }
}

fn cpu(results: &Results) -> Section {
    let runs: Vec<&Run> = results
        .servers()
        .into_iter()
        .flat_map(|s| results.sweep(s, s.main_scenario()).into_iter().take(1))
        .collect();
    let cats: Vec<String> = runs
        .iter()
        .map(|r| format!("{} x{}", r.server.name(), r.replicas))
        .collect();
    let comp = |f: fn(&Run) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let series = vec![
        (
            "replicas".to_string(),
            comp(|r| r.cpu_us_per_request.replicas),
        ),
        ("Redis".to_string(), comp(|r| r.cpu_us_per_request.redis)),
        ("nginx".to_string(), comp(|r| r.cpu_us_per_request.lb)),
        (
            "load generator".to_string(),
            comp(|r| r.cpu_us_per_request.loadgen),
        ),
    ];
    let rows = runs
        .iter()
        .map(|r| {
            let c = &r.cpu_us_per_request;
            row(&[
                format!("{} {} x{}", r.server.name(), r.scenario.name(), r.replicas),
                fmt_num(c.replicas),
                fmt_num(c.redis),
                fmt_num(c.lb),
                fmt_num(c.loadgen),
            ])
        })
        .collect();
    let mut reading = Vec::new();
    let get = |s: ServerKind| runs.iter().find(|r| r.server == s).copied();
    if let (Some(t), Some(p)) = (get(ServerKind::Token), get(ServerKind::Public)) {
        reading.push(format!(
            "A token-authenticated read cost the replicas {} us of CPU against {} us for the same route without \
             authentication: verifying the signature is the difference.",
            fmt_num(t.cpu_us_per_request.replicas),
            fmt_num(p.cpu_us_per_request.replicas)
        ));
    }
    if let (Some(s), Some(t)) = (get(ServerKind::Session), get(ServerKind::Token)) {
        reading.push(format!(
            "A session read cost {} us in the replica plus {} us in Redis; a token read {} us and {} us in Redis.",
            fmt_num(s.cpu_us_per_request.replicas),
            fmt_num(s.cpu_us_per_request.redis),
            fmt_num(t.cpu_us_per_request.replicas),
            fmt_num(t.cpu_us_per_request.redis)
        ));
    }
    if let Some(r) = runs
        .iter()
        .find(|r| r.cpu_us_per_request.loadgen > r.cpu_us_per_request.replicas)
    {
        reading.push(format!(
            "The load generator spent more CPU per request ({} us) than the {} replicas ({} us): on a small machine \
             the tool measuring can cost more than the thing measured.",
            fmt_num(r.cpu_us_per_request.loadgen),
            r.server.name(),
            fmt_num(r.cpu_us_per_request.replicas)
        ));
    }
    Section {
        id: "cpu",
        code: Vec::new(),
        title: "Where the CPU goes per request".into(),
        method: "CPU microseconds per measured request for each component, at the smallest replica count.".into(),
        charts: vec![("cpu.svg".into(), bar_chart("CPU microseconds per request", "us", &cats, &series, true))],
        table: Some(Table { headers: ["run", "replicas us", "Redis us", "nginx us", "load generator us"].map(String::from).to_vec(), rows }),
        reading,
    }
}

fn redis_and_bytes(results: &Results) -> Section {
    let mut runs: Vec<&Run> = Vec::new();
    for s in results.servers() {
        for sc in [
            Scenario::Read,
            Scenario::Refresh,
            Scenario::Login,
            Scenario::Public,
        ] {
            if let Some(r) = results.sweep(s, sc).into_iter().next() {
                runs.push(r);
            }
        }
    }
    let cats: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {}", r.server.name(), r.scenario.name()))
        .collect();
    let redis: Vec<f64> = runs
        .iter()
        .map(|r| r.redis_commands_per_request.unwrap_or(0.0))
        .collect();
    let by_server: Vec<&Run> = results
        .servers()
        .into_iter()
        .filter_map(|s| results.sweep(s, s.main_scenario()).into_iter().next())
        .collect();
    let bytes_cats: Vec<String> = by_server.iter().map(|r| r.server.name().into()).collect();
    let bytes: Vec<f64> = by_server
        .iter()
        .map(|r| r.credential_bytes as f64)
        .collect();
    let mut reading = Vec::new();
    let read = |s: ServerKind| results.sweep(s, Scenario::Read).into_iter().next();
    if let (Some(s), Some(t)) = (read(ServerKind::Session), read(ServerKind::Token)) {
        reading.push(format!(
            "Every session read asked Redis {} times per request; every token read {} times. That is the stateful \
             versus stateless difference in one number: the session lives in Redis, the token carries its own proof.",
            s.redis_commands_per_request.map_or("-".into(), fmt_num),
            t.redis_commands_per_request.map_or("-".into(), fmt_num)
        ));
        reading.push(format!(
            "The price of carrying the proof: a token request sends {} bytes of credentials, a session request {}.",
            t.credential_bytes, s.credential_bytes
        ));
    }
    Section {
        id: "redis",
        code: Vec::new(),
        title: "Redis commands and credential bytes per request".into(),
        method: "Redis commands per request from INFO commandstats over the window; credential bytes are the Cookie or \
                 Authorization header a request carries."
            .into(),
        charts: vec![
            ("redis.svg".into(), bar_chart("Redis commands per request", "commands", &cats, &[("commands".into(), redis)], false)),
            ("credential-bytes.svg".into(), bar_chart("Credential bytes per request", "bytes", &bytes_cats, &[("bytes".into(), bytes)], false)),
        ],
        table: None,
        reading,
    }
}

pub fn sections(results: &Results) -> Vec<Section> {
    let mut v = vec![
        machine(results),
        scaling(results),
        latency(results),
        cpu(results),
        redis_and_bytes(results),
    ];
    v.extend(experiments::shared_store(results));
    v.extend(experiments::redis_outage(results));
    v.extend(experiments::replica_loss(results));
    v.extend(experiments::revocation(results));
    v.extend(experiments::token_anatomy(results));
    v.extend(experiments::signing(results));
    v.extend(experiments::cost_projection(results));
    v.push(all_runs(results));
    v
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem;line-height:1.5;color:#111}\
table{border-collapse:collapse;width:100%;font-size:.9rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}\
figure{margin:1rem 0}pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5rem;font-size:.85rem}section{margin-bottom:2rem}.reading{background:#f5f9ff;border-left:4px solid #0072B2;padding:.5rem 1rem}\
@media print{body{max-width:none}section{page-break-inside:avoid}}";

pub fn html(results: &Results, sections: &[Section]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Sessions vs tokens: measured</title><style>{CSS}</style></head><body><h1>Sessions vs tokens: measured</h1><p>Measured {} on {} ({} CPUs). Built from results.json alone.</p><nav><ul>",
        escape(&results.environment.started_at),
        escape(&results.environment.cpu_model),
        results.environment.cpus
    );
    for s in sections {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}</a></li>",
            s.id,
            escape(&s.title)
        );
    }
    out.push_str("</ul></nav>");
    for s in sections {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{}</h2><p>{}</p>",
            s.id,
            escape(&s.title),
            escape(&s.method)
        );
        for (_, svg) in &s.charts {
            let _ = write!(out, "<figure>{svg}</figure>");
        }
        for (caption, text) in &s.code {
            let _ = write!(
                out,
                "<figure><figcaption>{}</figcaption><pre>{}</pre></figure>",
                escape(caption),
                escape(text)
            );
        }
        if let Some(t) = &s.table {
            out.push_str("<table><thead><tr>");
            for h in &t.headers {
                let _ = write!(out, "<th>{}</th>", escape(h));
            }
            out.push_str("</tr></thead><tbody>");
            for r in &t.rows {
                out.push_str("<tr>");
                for c in r {
                    let _ = write!(out, "<td>{}</td>", escape(c));
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        if !s.reading.is_empty() {
            out.push_str("<div class=\"reading\">");
            for p in &s.reading {
                let _ = write!(out, "<p>{}</p>", escape(p));
            }
            out.push_str("</div>");
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn markdown(results: &Results, sections: &[Section]) -> String {
    let mut out = format!(
        "# Sessions vs tokens: measured\n\nMeasured {} on {} ({} CPUs). Built from results.json alone.\n\n",
        results.environment.started_at, results.environment.cpu_model, results.environment.cpus
    );
    for s in sections {
        let _ = write!(out, "## {}\n\n{}\n\n", s.title, s.method);
        for (name, _) in &s.charts {
            let _ = write!(out, "![{}](charts/{name})\n\n", s.title);
        }
        for (caption, text) in &s.code {
            let _ = write!(out, "{caption}:\n\n```\n{text}\n```\n\n");
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
            for r in &t.rows {
                let _ = writeln!(
                    out,
                    "| {} |",
                    r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                );
            }
            out.push('\n');
        }
        for p in &s.reading {
            let _ = write!(out, "> {p}\n>\n");
        }
        out.push('\n');
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
