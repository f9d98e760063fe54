//! Several load generators against one deployment: two real `loadtest run --instance I/2`
//! processes at once against one token-server replica behind nginx (over one Redis), then
//! `loadtest merge`. Counts add up and latency comes from the merged histograms, and the
//! fixed rates the generators offered add up too.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use loadtest::infra::cpu_budget::CpuBudget;
use loadtest::infra::topology::{Balance, Group, GroupSpec, Redis, StoreAddr};
use loadtest::measure::recorder::{add_into, decode, latency_of};
use loadtest::model::{Results, Scenario, ServerKind};

fn loadtest(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadtest"));
    c.args(args).env_remove("CARGO");
    c
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn generator(url: &str, instance: &str, out: &Path) -> Command {
    let mut c = loadtest(&[
        "run",
        "--target",
        &format!("token={url}"),
        "--instance",
        instance,
        "--scenarios",
        "read",
        "--users",
        "4",
        // At a fixed rate: the merged run was offered both generators' rates.
        "--rate",
        "150",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--out",
    ]);
    c.arg(out);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_generators_at_once_merge_into_one_measurement() {
    let work = std::env::temp_dir().join(format!("loadtest-merge-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let work = work.canonicalize().unwrap();
    let bins = PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf();
    let redis = Redis::start(&work).await.expect("redis-server starts");
    let spec = GroupSpec {
        kind: ServerKind::Token,
        replicas: 1,
        bin_dir: &bins,
        store: StoreAddr::Url(redis.url.clone()),
        session_key: &"k".repeat(64),
        jwt_secret: &"s".repeat(48),
        lb_workers: 1,
        workers_per_replica: 1,
        extra_env: Vec::new(),
        balance: Balance::RoundRobin,
    };
    let mut group = Group::start(&spec, &mut CpuBudget::new(None).unwrap(), &work)
        .await
        .expect("a token-server replica behind nginx starts");
    let url = group.url();
    let (runs, merged) = (work.join("runs"), work.join("merged"));
    let (d1, d2) = (runs.join("generator-1-of-2"), runs.join("generator-2-of-2"));

    // Both at once, as two machines' generators would run.
    // The same --out for both: each writes its own folder below it.
    let a = generator(&url, "1/2", &runs).output();
    let b = generator(&url, "2/2", &runs).output();
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(move || a),
        tokio::task::spawn_blocking(move || b)
    );
    ok(a.unwrap().unwrap(), "generator 1/2");
    ok(b.unwrap().unwrap(), "generator 2/2");
    let (r1, r2) = (
        Results::read(&d1.join("results.json")).unwrap(),
        Results::read(&d2.join("results.json")).unwrap(),
    );
    assert_eq!(r1.environment.instance.unwrap().to_string(), "1/2");

    ok(
        loadtest(&["merge"])
            .arg(&d1)
            .arg(&d2)
            .arg("--out")
            .arg(&merged)
            .output()
            .unwrap(),
        "merge",
    );
    let m = Results::read(&merged.join("results.json")).unwrap();
    assert!(merged.join("report.html").is_file());
    assert_eq!(m.environment.merged_from.len(), 2);
    let read = |r: &Results| {
        r.runs
            .iter()
            .find(|x| x.server == ServerKind::Token && x.scenario == Scenario::Read)
            .cloned()
            .expect("a token read run")
    };
    let (x1, x2, x) = (read(&r1), read(&r2), read(&m));
    assert!(x1.requests > 0 && x2.requests > 0);
    assert_eq!(x.requests, x1.requests + x2.requests);
    assert_eq!(x.errors, x1.errors + x2.errors);
    assert_eq!(x.users(), 8);
    assert_eq!(x.setup.open.map(|o| o.offered_rps), Some(300.0));
    let open = x
        .open_model
        .as_ref()
        .expect("the merged run is at a fixed rate");
    let slots = decode(x.histograms.as_ref().unwrap().from_slot.as_ref().unwrap()).unwrap();
    assert_eq!(
        slots.len(),
        x.requests,
        "every request's slot latency, added"
    );
    assert!(open.latency_us_intended.p50 >= open.latency_us_actual.p50);
    assert_eq!(
        open.late_starts,
        x1.open_model.as_ref().unwrap().late_starts + x2.open_model.as_ref().unwrap().late_starts
    );
    assert!((x.rps - (x1.rps + x2.rps)).abs() < 1e-6);
    assert_eq!(
        x.requests_by_route.values().sum::<u64>(),
        x1.requests_by_route.values().sum::<u64>() + x2.requests_by_route.values().sum::<u64>()
    );
    // Latency: exactly what the two histograms added together say, not a mean of the
    // two generators' percentiles.
    let mut both = decode(&x1.histograms.as_ref().unwrap().all).unwrap();
    add_into(
        &mut both,
        &decode(&x2.histograms.as_ref().unwrap().all).unwrap(),
    )
    .unwrap();
    assert_eq!(both.len(), x.requests);
    assert_eq!(x.latency_ms, latency_of(&both));
    let (lo, hi) = (
        x1.latency_ms.p99.min(x2.latency_ms.p99),
        x1.latency_ms.p99.max(x2.latency_ms.p99),
    );
    assert!(
        x.latency_ms.p99 >= lo && x.latency_ms.p99 <= hi,
        "{:?}",
        x.latency_ms
    );
    // The load generators' CPU adds up: two processes.
    let cores = |r: &loadtest::model::Run| r.cpu_cores_used.loadgen.unwrap();
    assert!((cores(&x) - (cores(&x1) + cores(&x2))).abs() < 1e-9);

    // Bad input: one folder, the same generator twice, a missing one.
    let refused = |dirs: &[&Path], why: &str| {
        let mut c = loadtest(&["merge"]);
        for d in dirs {
            c.arg(d);
        }
        let out = c.arg("--out").arg(work.join("refused")).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{dirs:?} merged");
        assert!(text.contains(why), "{dirs:?}: expected `{why}` in {text}");
        assert!(!text.contains("panicked"), "{text}");
    };
    refused(&[&d1], "required");
    refused(&[&d1, &d1], "are both generator 1/2");
    refused(&[&d1, &merged], "not one of several generators");
    assert!(!work.join("refused").exists());
    let bad_instance = loadtest(&[
        "run",
        "--target",
        "token=http://127.0.0.1:1",
        "--instance",
        "3/2",
    ])
    .output()
    .unwrap();
    assert!(!bad_instance.status.success());
    assert!(String::from_utf8_lossy(&bad_instance.stderr).contains("I must be 1 to N"));

    group.stop();
    drop(group);
    drop(redis);
    std::fs::remove_dir_all(&work).unwrap();
}
