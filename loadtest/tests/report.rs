//! `loadtest report DIR` from a fixed results.json (a real `compare` run): the verdicts
//! come first with all 18 claims, every section is there, every number in its tables and
//! quoted prose comes from the fixture, fault counts follow the recorded fault times, CPU
//! that was not seen produces no CPU prose and no projection, nothing is fetched from the
//! network, and a real browser renders it with its charts and no console errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use loadtest::model::{Attempt, Experiment, Mode, Outcome, Phase, Results, ServerKind};
use loadtest::report::claims::{ClaimId, Verdict};
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

/// A cell's text, tags (a verdict's badge) stripped.
fn text_of(cell: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in cell.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The page's words as a reader meets them: tags, charts and code left out.
fn words_of(html: &str) -> Vec<String> {
    let mut h = html.to_owned();
    // Verbatim code (a token, its decoded JSON) is shown, not read as prose.
    for (open, close) in [
        ("<svg", "</svg>"),
        ("<style>", "</style>"),
        ("<title>", "</title>"),
        ("<pre>", "</pre>"),
    ] {
        while let Some(a) = h.find(open) {
            let b = h[a..].find(close).map_or(h.len(), |b| a + b + close.len());
            h.replace_range(a..b, " ");
        }
    }
    text_of(&h.replace('<', " <").replace('>', "> "))
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_report_opens_with_the_answer_then_a_verdict_for_every_claim() {
    let dir = build_report();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let order: Vec<&str> = html
        .split("<section id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(&order[..3], ["answer", "caveats", "verdicts"], "{order:?}");
    let verdicts = section(&html, "verdicts");
    let (_, body) = verdicts.split_once("<tbody>").unwrap();
    let rows: Vec<Vec<String>> = body
        .split("<tr>")
        .skip(1)
        .map(|r| cells(r).iter().map(|c| text_of(c)).collect())
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        ClaimId::ALL.map(ClaimId::code),
        "all 18 claims of CLAIMS.md, in its order"
    );
    // The label shown is the one the claim's rule gave, drawn as a badge, and every label's
    // rule is stated in the section.
    let (_, typed) = fixture();
    let findings = loadtest::report::verdicts::evaluate(&typed);
    for (r, (claim, f)) in rows.iter().zip(&findings) {
        assert_eq!(r[0], claim.code());
        assert_eq!(r[2], f.verdict.name(), "{r:?}");
        assert!(!r[3].is_empty(), "{}: a figure or a reason", r[0]);
        assert!(verdicts.contains(&format!(
            "<span class=\"badge {}\">{}</span>",
            f.verdict.class(),
            f.verdict.name()
        )));
    }
    for v in Verdict::ALL {
        assert!(verdicts.contains(v.rule()), "the meaning of {}", v.name());
    }
    let rules = section(&html, "claim-rules");
    for c in ClaimId::ALL {
        assert!(rules.contains(c.rule()), "{c}'s own rule is stated");
    }
    let label = |id: &str| rows.iter().find(|r| r[0] == id).unwrap()[2].clone();
    for j in ["J1", "J2"] {
        assert_eq!(label(j), "refuted", "the live token refutes {j}");
    }
    // No label contradicts its rule, checked here from the fixture's own figures.
    // T2 compares the models' scaling: overlapping ranges of rounds are no difference.
    let growth = |server: ServerKind| {
        let points = typed.sweep_points(server, server.main_scenario());
        let (a, b) = (points.first().unwrap(), points.last().unwrap());
        (b.min_rps() / a.max_rps(), b.max_rps() / a.min_rps())
    };
    let (t, s) = (growth(ServerKind::Token), growth(ServerKind::Session));
    let overlap = t.0 <= s.1 && s.0 <= t.1;
    assert_eq!(
        overlap,
        label("T2") == "no difference",
        "T2: {t:?} against {s:?}"
    );
    // S5 names CORS: where the browser's own cookie rules stopped the cookie, it is not
    // confirmed.
    let b = typed.browser.as_ref().unwrap();
    let preflight_stopped_cookie = b.cases.iter().any(|c| {
        c.carrier.is_session()
            && c.attempt == Attempt::ApiCrossSite
            && c.outcome == Outcome::PreflightRefused
    });
    assert_eq!(label("S5") == "confirmed", preflight_stopped_cookie, "S5");
    // T10's CDN half is never measured here.
    assert_eq!(label("T10"), "partly measured");
    // T8: a payload of ids and times is not "nothing", nor user data.
    assert_eq!(label("T8"), "qualified");
    let t4 = rows.iter().find(|r| r[0] == "T4").unwrap();
    assert_eq!(t4[2], "qualified", "CSRF gone, XSS not: {t4:?}");
    assert!(t4[3].contains("localStorage"), "{t4:?}");
    for link in verdicts.split("href=\"#").skip(1) {
        let id = link.split('"').next().unwrap();
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "link to {id}"
        );
    }
    let live = &typed.token_anatomy.as_ref().unwrap().access_token;
    assert!(
        section(&html, "token-anatomy").contains(live.as_str()),
        "the live token is the example"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The committed default run (schema 4, every default experiment): the report a student
/// opens first.
const DEFAULT_RUN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../results/2cpu-default/results.json"
);

/// The answer is the first thing a student reads: within the page's first 200 words, and
/// every figure in it is the run's, or a share that the fault tables show. Checked on the
/// fixture and on the committed default run.
#[test]
fn the_answer_is_on_the_first_screen_and_quotes_only_the_run() {
    for source in [FIXTURE, DEFAULT_RUN] {
        let raw = std::fs::read_to_string(source).unwrap();
        let dir = build_report_of(&raw);
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let answer = words_of(section(&html, "answer"));
        let first: Vec<String> = words_of(&html).into_iter().take(200).collect();
        assert!(
            first.windows(answer.len()).any(|w| w == answer.as_slice()),
            "{source}: the answer ({} words) is within the first 200 words",
            answer.len()
        );
        let mut known = BTreeSet::new();
        numbers_in(&serde_json::from_str(&raw).unwrap(), &mut known);
        let faults = [
            section(&html, "redis-outage"),
            section(&html, "replica-loss"),
        ]
        .concat();
        // A run of schema 3 has no latency curve: its answer quotes no fraction of capacity.
        let curve = if html.contains("<section id=\"latency-curve\">") {
            section(&html, "latency-curve")
        } else {
            ""
        };
        for w in &answer {
            let w = w.trim_matches(|c: char| !(c.is_ascii_digit() || c == '%'));
            if let Some(pct) = w.strip_suffix('%') {
                if pct.parse::<u32>().is_ok() {
                    assert!(
                        faults.contains(&format!("<td>{w}</td>"))
                            || curve.contains(&format!("<th>{w}</th>")),
                        "{source}: the answer's {w} is in a fault table or the curve's fractions"
                    );
                }
                continue;
            }
            if w.parse::<f64>().is_ok() {
                assert!(
                    known.contains(w),
                    "{source}: the answer's {w} is not in results.json"
                );
            }
        }
        // The body a student reads before the appendix (contents left out) stays short.
        let body = html.split("<details class=\"appendix\"").next().unwrap();
        let body = match (body.find("<nav"), body.find("</nav>")) {
            (Some(a), Some(b)) => format!("{}{}", &body[..a], &body[b..]),
            _ => body.to_owned(),
        };
        let n = words_of(&body).len();
        assert!(n < 4000, "{source}: {n} words before the appendix");
        std::fs::remove_dir_all(dir).ok();
    }
}

/// A model keeps its colour on every chart: the legends and the bars of one model never
/// change colour.
#[test]
fn every_model_keeps_its_colour_across_charts() {
    let dir = build_report();
    let mut seen: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    let mut charts = 0;
    for e in std::fs::read_dir(dir.join("charts")).unwrap() {
        let svg = std::fs::read_to_string(e.unwrap().path()).unwrap();
        charts += 1;
        // Legend entries: a sample line, then its name; bars: a rect titled with its name.
        let legend: Vec<(String, String)> = svg
            .split("<line ")
            .skip(1)
            // Legend samples are 3 px lines (the flow diagrams' arrows are not).
            .filter(|l| {
                l.split("/>")
                    .next()
                    .is_some_and(|l| l.contains("stroke-width=\"3\""))
            })
            .filter_map(|l| {
                let colour = l.split("stroke=\"").nth(1)?.split('"').next()?;
                let name = l
                    .split_once("/><text ")?
                    .1
                    .split_once('>')?
                    .1
                    .split('<')
                    .next()?;
                Some((colour.to_owned(), name.to_owned()))
            })
            .collect();
        // A bar chart without a legend colours its bars by their category (a model).
        let bars: Vec<(String, String)> = if legend.is_empty() {
            svg.split("<rect ")
                .skip(1)
                .filter_map(|r| {
                    let colour = r.split("fill=\"").nth(1)?.split('"').next()?;
                    let title = r.split("<title>").nth(1)?.split('<').next()?;
                    Some((colour.to_owned(), title.to_owned()))
                })
                .collect()
        } else {
            Vec::new()
        };
        let entries = legend.into_iter().chain(bars);
        for (colour, name) in entries {
            let lower = name.to_lowercase();
            let model = ["denylist", "eddsa", "session", "token", "public"]
                .into_iter()
                .find(|m| lower.contains(m));
            if let Some(m) = model {
                seen.entry(m).or_default().insert(colour);
            }
        }
    }
    assert!(charts >= 10, "{charts} charts");
    assert!(seen.len() >= 3, "{seen:?}");
    for (model, colours) in &seen {
        assert_eq!(colours.len(), 1, "{model} is drawn in {colours:?}");
    }
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
            let row = cells(row);
            // Independently: a step [t, t + step) is before when it ends by the injection,
            // after when it starts at or after the lift, during otherwise.
            let at = json["fault"]["at_s"].as_f64().unwrap();
            let end = json["fault"]["lasts_s"].as_f64().map(|l| at + l);
            let step = json["timeline_step_s"].as_f64().unwrap();
            let phase = |t: f64| {
                if t + step <= at + 1e-6 {
                    0
                } else if end.is_some_and(|e| t + 1e-6 >= e) {
                    2
                } else {
                    1
                }
            };
            let mut failed = [0u64; 3];
            let mut ok = [0u64; 3];
            for p in json["timeline"].as_array().unwrap() {
                let i = phase(p["t_s"].as_f64().unwrap());
                failed[i] += p["failed"].as_u64().unwrap();
                ok[i] += p["ok"].as_u64().unwrap();
            }
            // Rates over the steps of each phase, every step of the window counted.
            let steps = (json["duration_s"].as_f64().unwrap() / step).round() as usize;
            let mut n = [0usize; 3];
            for k in 0..steps {
                n[phase(k as f64 * step)] += 1;
            }
            let rate = |i: usize| ok[i] as f64 / (n[i] as f64 * step);
            assert_eq!(row[1], fmt_num(rate(0)), "{id}: answered per second before");
            assert_eq!(
                row[2],
                format!("{:.0}%", 100.0 * rate(1) / rate(0)),
                "{id}: during, as a share of before"
            );
            if n[2] > 0 {
                assert_eq!(
                    row[3],
                    format!("{:.0}%", 100.0 * rate(2) / rate(0)),
                    "{id}: after"
                );
            } else {
                assert_eq!(row[3], "-", "{id}: a kill is never lifted");
            }
            assert_eq!(
                row[4],
                failed[1].to_string(),
                "{id}: failed during, by the recorded times"
            );
            assert_eq!(failed[1], run.failed_in(None, Phase::During));
            assert_eq!(
                failed.iter().sum::<u64>(),
                run.errors,
                "{id}: every failure in some phase"
            );
            let users = run.users();
            assert_eq!(
                row[5],
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

/// Measured in the DOM of the page Chromium rendered, 1100 px wide, appendix open: no
/// chart's text overlaps another text's box, and none sticks out of its chart (clipped).
#[test]
fn no_text_overlaps_in_the_rendered_page() {
    let dir = build_report();
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    const CHECK: &str = r#"<script>
(() => {
  const bad = [];
  document.querySelectorAll('details').forEach(d => d.open = true);
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')]
      .map(t => [t.textContent, t.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0);
    for (const [name, r] of texts) {
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        bad.push('clipped: ' + name);
    }
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++) {
        const [a, b] = [texts[i][1], texts[j][1]];
        const ox = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const oy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (ox > 1 && oy > 1) bad.push('overlap: ' + texts[i][0] + ' / ' + texts[j][0]);
      }
  }
  const out = document.createElement('pre');
  out.id = 'overlap-check';
  out.textContent = JSON.stringify(bad);
  document.body.appendChild(out);
})();
</script></body>"#;
    std::fs::write(dir.join("report.html"), page.replace("</body>", CHECK)).unwrap();
    let dom = browser(&dir, &["--window-size=1100,1400", "--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let found = dom
        .split("<pre id=\"overlap-check\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .expect("the check ran in the page");
    let found = found.replace("&quot;", "\"").replace("&amp;", "&");
    let bad: Vec<String> = serde_json::from_str(&found).unwrap();
    assert!(
        bad.is_empty(),
        "{} text boxes overlap or are clipped:\n{}",
        bad.len(),
        bad.join("\n")
    );
    std::fs::remove_dir_all(dir).ok();
}
