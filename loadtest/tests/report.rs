//! `loadtest report DIR` from a fixed results.json: every section is there, every number
//! in its tables comes from the fixture, nothing is fetched from the network, and a real
//! browser renders it with its charts and no console errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use loadtest::model::{Experiment, Phase, Results, Scenario, ServerKind};
use loadtest::report::svg::fmt_num;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/results.json");

fn build_report() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadtest-report-{}-{}", std::process::id(), uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(FIXTURE, dir.join("results.json")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("report")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn uuid() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn numbers_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap();
            out.insert(fmt_num(f));
            out.insert(format!("{f:.0}"));
        }
        Value::Array(a) => a.iter().for_each(|x| numbers_in(x, out)),
        Value::Object(o) => o.values().for_each(|x| numbers_in(x, out)),
        Value::String(s) => {
            out.insert(s.clone());
        }
        _ => {}
    }
}

fn cells(html: &str) -> Vec<String> {
    html.split("<td>")
        .skip(1)
        .filter_map(|s| s.split("</td>").next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_report_has_every_section_and_only_fixture_numbers_in_its_tables() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for id in [
        "machine",
        "scaling",
        "latency",
        "cpu",
        "redis",
        "shared-store",
        "redis-outage",
        "replica-loss",
        "revocation",
        "token-anatomy",
        "signing",
        "cost",
        "runs",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    for chart in [
        "throughput",
        "latency",
        "cpu",
        "redis",
        "credential-bytes",
        "shared-store",
    ] {
        assert!(
            dir.join("charts").join(format!("{chart}.svg")).is_file(),
            "{chart}.svg"
        );
        assert!(
            md.contains(&format!("(charts/{chart}.svg)")),
            "report.md links {chart}.svg"
        );
    }
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let typed = Results::read(Path::new(FIXTURE)).unwrap();
    // The scaling chart plots the sweep only, never an experiment's runs.
    let sweep_points: usize = typed
        .servers()
        .into_iter()
        .map(|s| typed.sweep(s, s.main_scenario()).len())
        .sum();
    let throughput = std::fs::read_to_string(dir.join("charts/throughput.svg")).unwrap();
    assert_eq!(throughput.matches("<circle").count(), sweep_points);
    let mut known = BTreeSet::new();
    numbers_in(&fixture, &mut known);
    for run in &typed.runs {
        let rps = fmt_num(run.rps);
        assert!(
            html.contains(&format!("<td>{rps}</td>")),
            "run rps {rps} is in the report"
        );
    }
    // The projection multiplies measured figures out; its arithmetic is checked below, every
    // other table must hold fixture values only.
    let (before, rest) = html.split_once("<section id=\"cost\">").unwrap();
    let (projection, after) = rest.split_once("</section>").unwrap();
    let session = typed.sweep(ServerKind::Session, Scenario::Read)[0];
    let cpus_for_1m = 1_000_000.0 * 0.1 * session.cpu_us_per_request.replicas / 1e6;
    assert!(
        projection.contains(&format!("<td>{}</td>", fmt_num(cpus_for_1m))),
        "1M users' replica CPUs"
    );
    // The fault tables add up timeline seconds (before, during, after the fault, by the
    // fault's times): check each row against the typed model and that they account for
    // every failure, then leave them out of the strict check too.
    let mut strict = before.to_owned() + after;
    for (id, e) in [
        ("redis-outage", Experiment::RedisOutage),
        ("replica-loss", Experiment::ReplicaLoss),
    ] {
        let (head, rest) = strict
            .split_once(&format!("<section id=\"{id}\">"))
            .unwrap();
        let (section, tail) = rest.split_once("</section>").unwrap();
        let (_, body) = section.split_once("<tbody>").unwrap();
        let rows: Vec<&str> = body.split("<tr>").skip(1).collect();
        let runs = typed.experiment(e);
        assert_eq!(rows.len(), runs.len(), "{id}: one row per arm");
        for (row, run) in rows.iter().zip(runs) {
            let timeline_failures: u64 = run.timeline.iter().map(|p| p.failed).sum();
            assert_eq!(
                timeline_failures, run.errors,
                "{id}: the timeline holds every failure"
            );
            let counts: Vec<u64> = cells(row)
                .iter()
                .skip(3)
                .take(3)
                .map(|c| c.parse::<u64>().unwrap())
                .collect();
            assert_eq!(
                counts,
                [Phase::Before, Phase::During, Phase::After]
                    .map(|p| run.failed_in(None, p))
                    .to_vec(),
                "{id}: before / during / after by the fault's times"
            );
            assert_eq!(
                counts.iter().sum::<u64>(),
                timeline_failures,
                "{id}: before + during + after = all failures"
            );
        }
        strict = head.to_owned() + tail;
    }
    let numeric = cells(&strict)
        .into_iter()
        .filter(|c| c.parse::<f64>().is_ok());
    for cell in numeric {
        assert!(
            known.contains(&cell),
            "table value {cell} is not in results.json"
        );
    }
    // The fixture's round-robin memory sessions failed, and the report says so.
    assert!(
        html.contains("With sessions in each replica&#39;s memory")
            || html.contains("With sessions in each replica's memory")
    );
    // The decoded token and the revocation window are shown as measured.
    let payload = &fixture["token_anatomy"]["payload"];
    assert!(html.contains(&format!(
        "&quot;sub&quot;: &quot;{}&quot;",
        payload["sub"].as_str().unwrap()
    )));
    let window = fixture["revocation"]["token_refused_after_ms"]
        .as_f64()
        .unwrap()
        / 1000.0;
    assert!(html.contains(&format!(
        "still accepted for {} s after logout",
        fmt_num(window)
    )));
    // The fixture's loadgen-bound runs are called what they are.
    assert!(html.contains("loadgen (not the server)"));
    assert!(
        html.contains("the load generator was")
            || html.contains("something other than the replicas was the bottleneck")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_report_fetches_nothing() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            assert!(
                part.starts_with('#'),
                "{attr}{} points outside the file",
                &part[..part.len().min(40)]
            );
        }
    }
    assert!(!html.contains("<script"), "no scripts at all");
    assert!(
        !html.contains("@import") && !html.contains("url("),
        "no external CSS"
    );
    std::fs::remove_dir_all(dir).ok();
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("this test needs a browser: install Debian's `chromium` package (.ci/run does)");
}

fn browser(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .args(args)
        .arg(format!("file://{}", dir.join("report.html").display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn a_browser_renders_the_charts_without_console_errors() {
    let dir = build_report();
    let shot = dir.join("report.png");
    let out = browser(
        &dir,
        &[
            "--window-size=1000,1600",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("CONSOLE"), "console output:\n{log}");
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot is {} bytes",
        png.len()
    );
    let dom = browser(&dir, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        11,
        "every chart is in the rendered page"
    );
    assert!(
        dom.contains("<polyline") && dom.contains("<rect x="),
        "lines and bars were drawn"
    );
    std::fs::remove_dir_all(dir).ok();
}
