//! `loadtest run --rate` for real, against one replica of the public group behind nginx:
//! a replica frozen for a second shows in latency counted from each request's slot and not
//! in latency from its send (coordinated omission accounted for), and a rate above what
//! the machine can serve makes the run invalid.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loadtest::infra::cpu_budget::CpuBudget;
use loadtest::infra::topology::{Balance, Group, GroupSpec, Redis, StoreAddr};
use loadtest::model::{Invalid, Results, Run, ServerKind};

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// `loadtest run` against `url` with `args`, its one run read back.
fn run_against(url: &str, out: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--target", &format!("public={url}")])
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("CARGO")
        .spawn()
        .expect("loadtest starts")
}

fn the_run(out: &Path) -> Run {
    let results = Results::read(&out.join("results.json")).expect("results.json is written");
    assert_eq!(results.runs.len(), 1);
    results.runs.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_shows_from_the_slot_and_a_rate_above_capacity_is_invalid() {
    let bins = bin_dir();
    assert!(
        bins.join("token-server").is_file(),
        "token-server is not built next to loadtest; run `cargo test --workspace`"
    );
    let work = std::env::temp_dir().join(format!("lt-open-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let redis = Redis::start(&work).await.expect("redis-server starts");
    let spec = GroupSpec {
        kind: ServerKind::Public,
        replicas: 1,
        bin_dir: &bins,
        store: StoreAddr::Url(redis.url.clone()),
        session_key: "local-only-test-session-key-0123456789abcdef0123456789abcdef01234",
        jwt_secret: "local-only-test-jwt-secret-0123456789abcdef0123456789",
        lb_workers: 1,
        workers_per_replica: 1,
        extra_env: Vec::new(),
        balance: Balance::RoundRobin,
    };
    let mut budget = CpuBudget::new(None).unwrap();
    let group = Group::start(&spec, &mut budget, &work)
        .await
        .expect("the group starts");
    let url = group.url();
    let replica = group.replicas[0].proc_.pid();

    // 500 requests a second for 4 s; the replica frozen for 1 s in the middle of it.
    let out = work.join("frozen");
    let began = Instant::now();
    let mut child = run_against(
        &url,
        &out,
        &[
            "--rate",
            "500",
            "--users",
            "64",
            "--warmup",
            "1s",
            "--duration",
            "4s",
        ],
    );
    tokio::time::sleep_until((began + Duration::from_millis(2300)).into()).await;
    signal(replica, "-STOP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(replica, "-CONT");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "loadtest run: {status}");
    let frozen = the_run(&out);
    let open = frozen.open_model.clone().expect("an open-model run");
    let (intended, actual) = (open.latency_us_intended, open.latency_us_actual);
    // About a quarter of the slots fell in the freeze: waited up to a second to start.
    assert!(
        open.late_starts as f64 >= 0.1 * frozen.requests as f64,
        "{} late of {}",
        open.late_starts,
        frozen.requests
    );
    assert!(intended.p90 > 300_000, "from the slot: {intended:?}");
    assert!(actual.p90 < 50_000, "from the send: {actual:?}");
    assert!(intended.max >= 700_000, "{intended:?}");
    assert!(frozen.valid(), "{:?}", frozen.invalid);

    // Far more than one replica on this machine can serve: achieved under 95% of it.
    let out = work.join("overload");
    let mut child = run_against(
        &url,
        &out,
        &[
            "--rate",
            "100000",
            "--users",
            "64",
            "--warmup",
            "1s",
            "--duration",
            "2s",
        ],
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "loadtest run: {status}");
    let overload = the_run(&out);
    assert!(!overload.valid());
    assert!(
        overload
            .invalid
            .iter()
            .any(|i| matches!(i, Invalid::BelowOfferedRate { offered_rps, .. } if *offered_rps == 100000.0)),
        "{:?}",
        overload.invalid
    );
    let report = std::fs::read_to_string(out.join("report.md")).expect("the report is written");
    assert!(
        report.contains("left out of every median and verdict"),
        "the report lists the invalid run"
    );
    drop(group);
    drop(redis);
    std::fs::remove_dir_all(&work).ok();
}
