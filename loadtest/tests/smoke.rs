//! `loadtest compare --quick` for real: Redis, two replicas of each server behind nginx,
//! every scenario, and the results.json it writes checked against what each model claims.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn compare_quick_measures_both_models_honestly() {
    let bins = bin_dir();
    for server in ["session-server", "token-server"] {
        assert!(
            bins.join(server).is_file(),
            "{server} is not built next to loadtest; run `cargo test --workspace` (or build it first)"
        );
    }
    let out = std::env::temp_dir().join(format!("loadtest-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["compare", "--quick", "--replicas", "2", "--users", "8"])
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .env_remove("CARGO")
        .status()
        .expect("loadtest runs");
    assert!(status.success(), "loadtest compare --quick failed");

    let raw = std::fs::read(out.join("results.json")).expect("results.json was written");
    let results: Value = serde_json::from_slice(&raw).expect("results.json is JSON");
    assert_eq!(results["schema_version"], 1);
    let env = &results["environment"];
    for key in [
        "cpu_model",
        "cpus",
        "kernel",
        "versions",
        "config",
        "cpu_budget_method",
    ] {
        assert!(env.get(key).is_some(), "environment.{key}");
    }
    assert!(env["config"]["password_hash"]
        .as_str()
        .unwrap()
        .starts_with("argon2id"));
    let all = results["runs"].as_array().expect("runs is a list");
    let (runs, experiments): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|r| r["experiment"].is_null());
    // session and token: read, login, refresh; public: public.
    assert_eq!(runs.len(), 7, "{:#}", results["environment"]["notes"]);
    shared_store_behaves(&experiments);
    revocation_behaves(&results, &experiments);
    token_anatomy_behaves(&results);
    faults_behave(&experiments);
    let eddsa = experiments
        .iter()
        .find(|r| r["variant"] == "EdDSA")
        .expect("the EdDSA run");
    assert_eq!(
        eddsa["errors"], 0,
        "EdDSA tokens verify on every replica: {}",
        eddsa["errors_by_status"]
    );
    assert_eq!(eddsa["redis_commands_per_request"], 0.0);
    for run in runs {
        let name = format!("{} {}", run["server"], run["scenario"]);
        assert!(run["rps"].as_f64().unwrap() > 0.0, "{name}: no throughput");
        assert_eq!(
            run["errors"], 0,
            "{name}: errors {}",
            run["errors_by_status"]
        );
        assert!(
            run["duration_s"].as_f64().unwrap() > 1.0,
            "{name}: window too short"
        );
        for key in ["p50", "p90", "p99", "max"] {
            assert!(
                run["latency_ms"][key].as_f64().unwrap() > 0.0,
                "{name}: latency {key}"
            );
        }
        let spread: Vec<u64> = run["requests_per_replica"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(spread.len(), 2, "{name}");
        assert!(
            spread.iter().all(|n| *n > 0),
            "{name}: a replica got no requests: {spread:?}"
        );
        assert!(
            run["cpu_us_per_request"]["replicas"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert!(
            run["cpu_us_per_request"]["loadgen"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        let redis = run["redis_commands_per_request"].as_f64().unwrap();
        match (
            run["server"].as_str().unwrap(),
            run["scenario"].as_str().unwrap(),
        ) {
            ("session", "read") => {
                assert!(redis >= 1.0, "{name}: {redis} Redis commands per request")
            }
            ("token", "read") | ("public", _) => assert_eq!(redis, 0.0, "{name}"),
            _ => {}
        }
        match run["server"].as_str().unwrap() {
            "session" => assert!(run["credential_bytes"].as_u64().unwrap() > 40, "{name}"),
            "token" => assert!(run["credential_bytes"].as_u64().unwrap() > 200, "{name}"),
            _ => assert_eq!(run["credential_bytes"], 0),
        }
    }
    for file in [
        "report.html",
        "report.md",
        "charts/throughput.svg",
        "charts/shared-store.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} was written");
    }
    std::fs::remove_dir_all(&out).ok();
}

/// Memory sessions behind round robin fail for the requests that land on the other
/// replica; sticky routing and Redis do not.
fn shared_store_behaves(runs: &[&Value]) {
    let runs: Vec<&Value> = runs
        .iter()
        .copied()
        .filter(|r| r["experiment"] == "shared-store")
        .collect();
    assert_eq!(runs.len(), 3, "three shared-store arms");
    let arm = |v: &str| {
        *runs
            .iter()
            .find(|r| r["variant"] == v)
            .unwrap_or_else(|| panic!("arm {v}"))
    };
    let rate = |r: &Value| r["errors"].as_f64().unwrap() / r["requests"].as_f64().unwrap();
    let rr = arm("memory store, round robin");
    assert!(
        rate(rr) > 0.2,
        "round-robin memory sessions failed only {:.0}%",
        rate(rr) * 100.0
    );
    assert!(
        rr["errors_by_status"]["401"].as_u64().unwrap() > 0,
        "the failures are 401s"
    );
    let sticky = arm("memory store, sticky");
    assert_eq!(
        sticky["errors"], 0,
        "sticky memory sessions: {}",
        sticky["errors_by_status"]
    );
    assert_eq!(
        sticky["redis_commands_per_request"], 0.0,
        "memory sessions never ask Redis"
    );
    let redis = arm("Redis store, round robin");
    assert_eq!(
        redis["errors"], 0,
        "Redis sessions: {}",
        redis["errors_by_status"]
    );
    assert!(redis["redis_commands_per_request"].as_f64().unwrap() >= 1.0);
}

/// After logout a session id is refused at once; an access token works until it expires
/// (plus the leeway), unless the denylist is on; the denylist costs a Redis read.
fn revocation_behaves(results: &Value, runs: &[&Value]) {
    let r = &results["revocation"];
    assert!(
        r["session_refused_after_ms"].as_f64().unwrap() < 1000.0,
        "{r}"
    );
    assert!(
        r["denylist_refused_after_ms"].as_f64().unwrap() < 1000.0,
        "{r}"
    );
    let token_ms = r["token_refused_after_ms"]
        .as_f64()
        .expect("the access token expired in the end");
    let ttl_ms = r["access_token_ttl_s"].as_f64().unwrap() * 1000.0;
    let leeway_ms = r["leeway_s"].as_f64().unwrap() * 1000.0;
    assert!(token_ms >= ttl_ms, "refused before it expired: {r}");
    assert!(
        token_ms <= ttl_ms + leeway_ms + 2000.0,
        "accepted past expiry and leeway: {r}"
    );
    let deny = runs
        .iter()
        .find(|x| x["variant"] == "token with denylist")
        .expect("denylist run");
    assert_eq!(deny["errors"], 0);
    assert!(
        deny["redis_commands_per_request"].as_f64().unwrap() >= 1.0,
        "{deny}"
    );
}

/// Anyone can read a token; nobody can change it. A session cookie says nothing.
fn token_anatomy_behaves(results: &Value) {
    let a = &results["token_anatomy"];
    assert_eq!(a["header"]["typ"], "at+jwt");
    assert!(a["payload"]["sub"].is_string() && a["payload"]["roles"].is_array());
    assert_eq!(a["original_status"], 200);
    assert_eq!(a["tampered_payload_status"], 401);
    assert_eq!(a["tampered_signature_status"], 401);
    assert_eq!(a["session_cookie_status"], 200);
    assert_eq!(a["altered_cookie_status"], 401);
    let cookie = a["session_cookie"].as_str().unwrap();
    let name = a["payload"]["preferred_username"].as_str().unwrap();
    assert!(
        !cookie.contains("probe") && !cookie.contains(name),
        "the cookie is opaque: {cookie}"
    );
}

fn failed(run: &Value, route: Option<&str>, seconds: std::ops::RangeInclusive<u64>) -> u64 {
    run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            route.is_none_or(|r| p["route"] == r) && seconds.contains(&p["t_s"].as_u64().unwrap())
        })
        .map(|p| p["failed"].as_u64().unwrap())
        .sum()
}

/// Redis frozen: session reads fail, token reads do not, refreshes fail, nothing hangs.
/// A replica killed: sticky memory sessions lose users, Redis sessions and tokens do not.
fn faults_behave(runs: &[&Value]) {
    let arm = |exp: &str, v: &str| {
        *runs
            .iter()
            .find(|r| r["experiment"] == exp && r["variant"] == v)
            .unwrap_or_else(|| panic!("{exp} {v}"))
    };
    let all = 0..=u64::MAX;
    let session = arm("redis-outage", "session");
    let token = arm("redis-outage", "token");
    assert!(
        failed(session, Some("/api/me"), all.clone()) > 0,
        "session reads failed while Redis was frozen"
    );
    assert_eq!(
        failed(token, Some("/api/me"), all.clone()),
        0,
        "token reads never need Redis"
    );
    assert!(
        failed(token, Some("/auth/refresh"), all.clone()) > 0,
        "token refreshes need Redis"
    );
    for r in [session, token] {
        assert!(
            r["errors_by_status"]["503"].as_u64().unwrap() > 0,
            "{}",
            r["errors_by_status"]
        );
        assert!(
            r["latency_ms"]["max"].as_f64().unwrap() < 3000.0,
            "nothing hangs: {}",
            r["latency_ms"]
        );
    }
    let sticky = arm("replica-loss", "session, memory store, sticky");
    let tail = 5..=u64::MAX;
    assert!(
        failed(sticky, None, tail.clone()) > 0,
        "users of the dead replica lost their sessions"
    );
    for v in ["session, Redis store", "token"] {
        let r = arm("replica-loss", v);
        let requests = r["requests"].as_u64().unwrap();
        let errors = r["errors"].as_u64().unwrap();
        assert!(
            errors * 100 <= requests,
            "{v}: {errors} of {requests} failed"
        );
        assert_eq!(
            failed(r, None, tail.clone()),
            0,
            "{v}: failures after the kill"
        );
    }
}
