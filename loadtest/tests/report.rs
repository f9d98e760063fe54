//! `loadtest report DIR` from a fixed results.json (a real `compare` run): the verdicts
//! come first with all 18 claims, every section is there, every number in its tables and
//! quoted prose comes from the fixture, fault counts follow the recorded fault times, CPU
//! that was not seen produces no CPU prose and no projection, nothing is fetched from the
//! network, and a real browser renders it with its charts and no console errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use loadtest::model::{Experiment, Mode, Phase, Results};
use loadtest::report::svg::fmt_num;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/results.json");

/// Writes `results` into a new folder and runs `loadtest report` on it.
fn build_report_of(results: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("loadtest-report-{}-{}", std::process::id(), uuid()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), results).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("report")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn build_report() -> PathBuf {
    build_report_of(&std::fs::read_to_string(FIXTURE).unwrap())
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
            // Milliseconds quoted as seconds.
            out.insert(fmt_num(f / 1000.0));
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

/// One section's HTML.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let (_, rest) = html
        .split_once(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("section {id}"));
    rest.split_once("</section>").unwrap().0
}

fn fixture() -> (Value, Results) {
    let raw = std::fs::read_to_string(FIXTURE).unwrap();
    (
        serde_json::from_str(&raw).unwrap(),
        Results::read(Path::new(FIXTURE)).unwrap(),
    )
}

#[test]
fn the_report_opens_with_a_verdict_for_every_claim() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let first = html.split("<section id=\"").nth(1).unwrap();
    assert!(first.starts_with("verdicts\""), "the verdicts come first");
    let verdicts = section(&html, "verdicts");
    let (_, body) = verdicts.split_once("<tbody>").unwrap();
    let rows: Vec<Vec<String>> = body.split("<tr>").skip(1).map(cells).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        [
            "S1", "S2", "S3", "S4", "S5", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
            "T10", "J1", "J2", "J3"
        ],
        "all 18 claims of CLAIMS.md, in its order"
    );
    for r in &rows {
        assert!(
            ["confirmed", "qualified", "refuted", "not measurable here"].contains(&r[2].as_str()),
            "{r:?}"
        );
        assert!(!r[3].is_empty(), "{}: a figure or a reason", r[0]);
    }
    // J1 and J2 are refuted with the live token, and every link lands on a section.
    for j in ["J1", "J2"] {
        let r = rows.iter().find(|r| r[0] == j).unwrap();
        assert_eq!(r[2], "refuted", "{r:?}");
    }
    let (_, token) = fixture();
    let live = &token.token_anatomy.as_ref().unwrap().access_token;
    assert!(
        verdicts.contains(live.as_str()),
        "the live token is the example"
    );
    assert!(verdicts.contains("base64url(header)"));
    for link in verdicts.split("href=\"#").skip(1) {
        let id = link.split('"').next().unwrap();
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "link to {id}"
        );
    }
    // The browser claims are decided by the browser experiment, and link to it.
    for id in ["S5", "T4"] {
        let r = rows.iter().find(|r| r[0] == id).unwrap();
        assert_ne!(r[2], "not measurable here", "{r:?}");
    }
    let s5 = rows.iter().find(|r| r[0] == "S5").unwrap();
    assert!(
        s5[3].contains(&token.browser.as_ref().unwrap().browser),
        "{s5:?}"
    );
    let t4 = rows.iter().find(|r| r[0] == "T4").unwrap();
    assert_eq!(t4[2], "qualified", "CSRF gone, XSS not: {t4:?}");
    assert!(t4[3].contains("localStorage"), "{t4:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_report_has_every_section_and_only_fixture_numbers_in_its_tables() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for id in [
        "verdicts",
        "scaling",
        "budget",
        "latency",
        "cpu",
        "redis",
        "store-bound",
        "shared-store",
        "redis-outage",
        "replica-loss",
        "revocation",
        "authority",
        "access-token-lifetime",
        "server-memory",
        "token-anatomy",
        "signing",
        "browser",
        "security",
        "flows",
        "cost",
        "machine",
        "glossary",
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
        "store-bound",
        "access-token-lifetime",
        "flow-session",
        "flow-token",
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
    let (fixture, typed) = fixture();
    // The scaling chart: one point per replica count of each group, whiskers for rounds.
    let points: usize = typed
        .servers()
        .into_iter()
        .map(|s| typed.sweep_points(s, s.main_scenario()).len())
        .sum();
    let throughput = std::fs::read_to_string(dir.join("charts/throughput.svg")).unwrap();
    let circles = throughput.matches("<circle").count();
    assert!(
        circles == points || circles == points + 1,
        "{circles} points (+ the legend's hollow sample) for {points}"
    );
    assert!(throughput.contains(" to "), "the rounds' spread is drawn");
    let mut known = BTreeSet::new();
    numbers_in(&fixture, &mut known);
    for run in &typed.runs {
        let rps = fmt_num(run.rps);
        assert!(
            html.contains(&format!("<td>{rps}</td>")),
            "run rps {rps} is in the report"
        );
    }
    // Tables of raw figures hold fixture values only; sections that add up or divide
    // (fault phases, slopes, rates, the projection, medians' ratios) are checked apart.
    let derived = [
        "verdicts",
        "cost",
        "server-memory",
        "access-token-lifetime",
        "redis-outage",
        "replica-loss",
    ];
    let mut strict = html.clone();
    for id in derived {
        let s = section(&html, id).to_owned();
        strict = strict.replace(&s, "");
    }
    for cell in cells(&strict)
        .into_iter()
        .filter(|c| c.parse::<f64>().is_ok())
    {
        assert!(
            known.contains(&cell),
            "table value {cell} is not in results.json"
        );
    }
    // Sections whose prose quotes measured figures as they are: every number in it is
    // one of the fixture's, or a small count or unit (seconds, percent of a whole).
    for id in [
        "redis",
        "revocation",
        "token-anatomy",
        "signing",
        "authority",
        "browser",
    ] {
        let s = section(&html, id);
        let prose: String = s
            .split("<div class=\"reading\">")
            .nth(1)
            .and_then(|r| r.split("</div>").next())
            .unwrap_or_default()
            .to_owned();
        let words = prose.split(|c: char| !(c.is_ascii_digit() || c == '.'));
        for w in words.map(|w| w.trim_matches('.')).filter(|w| !w.is_empty()) {
            if w.parse::<f64>().is_err() {
                continue;
            }
            let small = w.parse::<u32>().is_ok_and(|n| n <= 100);
            assert!(
                small || known.contains(w),
                "{id}: the prose's {w} is not in results.json"
            );
        }
    }
    let payload = &fixture["token_anatomy"]["payload"];
    assert!(html.contains(&format!(
        "&quot;sub&quot;: &quot;{}&quot;",
        payload["sub"].as_str().unwrap()
    )));
    std::fs::remove_dir_all(dir).ok();
}

/// Before / during / after are the model's phases of each timeline step against the
/// recorded fault times; recomputed here from the raw JSON, they must agree with the table.
#[test]
fn fault_numbers_follow_the_recorded_fault_times() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let (raw, typed) = fixture();
    for (id, e) in [
        ("redis-outage", Experiment::RedisOutage),
        ("replica-loss", Experiment::ReplicaLoss),
    ] {
        let (_, body) = section(&html, id).split_once("<tbody>").unwrap();
        let rows: Vec<&str> = body.split("<tr>").skip(1).collect();
        let runs = typed.experiment(e);
        assert_eq!(rows.len(), runs.len(), "{id}: one row per arm");
        let raw_runs: Vec<&Value> = raw["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["experiment"] == e.name())
            .collect();
        for ((row, run), json) in rows.iter().zip(runs).zip(raw_runs) {
            let counts: Vec<u64> = cells(row)
                .iter()
                .skip(3)
                .take(3)
                .map(|c| c.parse::<u64>().unwrap())
                .collect();
            // Independently: a step [t, t + step) is before when it ends by the injection,
            // after when it starts at or after the lift, during otherwise.
            let at = json["fault"]["at_s"].as_f64().unwrap();
            let end = json["fault"]["lasts_s"].as_f64().map(|l| at + l);
            let step = json["timeline_step_s"].as_f64().unwrap();
            let mut by_hand = [0u64; 3];
            for p in json["timeline"].as_array().unwrap() {
                let t = p["t_s"].as_f64().unwrap();
                let i = if t + step <= at + 1e-6 {
                    0
                } else if end.is_some_and(|e| t + 1e-6 >= e) {
                    2
                } else {
                    1
                };
                by_hand[i] += p["failed"].as_u64().unwrap();
            }
            assert_eq!(counts, by_hand.to_vec(), "{id}: by the recorded times");
            assert_eq!(
                counts,
                [Phase::Before, Phase::During, Phase::After]
                    .map(|p| run.failed_in(None, p))
                    .to_vec()
            );
            assert_eq!(
                counts.iter().sum::<u64>(),
                run.errors,
                "{id}: every failure"
            );
            let kept = cells(row)[7].clone();
            let users = run.users();
            assert_eq!(
                kept,
                format!("{} of {users}", users - run.users_logged_out.unwrap()),
                "{id}: users still logged in"
            );
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// CPU the run could not see is "not visible": no CPU section, no projection, no CPU
/// prose, and the tables say so instead of 0.
#[test]
fn cpu_not_visible_gives_no_cpu_prose_and_no_projection() {
    let mut raw: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    raw["environment"]["mode"] = serde_json::json!("existing");
    for run in raw["runs"].as_array_mut().unwrap() {
        for figure in ["cpu_us_per_request", "cpu_cores_used"] {
            for c in ["replicas", "redis", "lb"] {
                run[figure][c] = Value::Null;
            }
        }
        run["bottleneck"] = Value::Null;
    }
    raw["calibration"] = Value::Null;
    let typed = Results::from_json(raw.to_string().as_bytes()).unwrap();
    assert_eq!(typed.environment.mode, Mode::Existing);
    let dir = build_report_of(&raw.to_string());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for id in ["cpu", "cost", "budget"] {
        assert!(
            !html.contains(&format!("<section id=\"{id}\">")),
            "no {id} section"
        );
    }
    let readings: String = html
        .split("<div class=\"reading\">")
        .skip(1)
        .filter_map(|r| r.split("</div>").next())
        .collect();
    assert!(
        !readings.contains(" 0 µs"),
        "no CPU figure of 0 in the prose"
    );
    for s in ["in the replica plus", "cost the replicas"] {
        assert!(!readings.contains(s), "no CPU prose: {s}");
    }
    let runs = section(&html, "runs");
    assert!(
        runs.contains("<td>not visible</td>"),
        "the table says not visible"
    );
    assert!(html.contains("not visible"));
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
    assert!(!html.contains("@import"), "no external CSS");
    // In attributes and styles, `url(` may only point inside the page (arrow markers).
    for pattern in ["\"url(", ":url(", ": url("] {
        for part in html.split(pattern).skip(1) {
            assert!(
                part.starts_with('#'),
                "{pattern}{}: only references inside the page",
                &part[..part.len().min(20)]
            );
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

fn chromium() -> PathBuf {
    // The same search as experiment `browser` (PATH, then Debian's sbin folders).
    loadtest::measure::browser::find_chromium(None)
        .unwrap_or_else(|e| panic!("this test needs a browser (.ci/run installs it): {e:#}"))
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
    let charts = std::fs::read_to_string(dir.join("report.md"))
        .unwrap()
        .matches("](charts/")
        .count();
    let dom = browser(&dir, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        charts,
        "every chart is in the rendered page"
    );
    assert!(
        dom.contains("<polyline") && dom.contains("<rect x="),
        "lines and bars were drawn"
    );
    std::fs::remove_dir_all(dir).ok();
}
