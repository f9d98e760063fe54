//! A Redis Cluster primary killed under load while each replica is held to a small CPU
//! budget: the conditions in which redis-rs's cluster client stalled for good (every call
//! timing out until the server restarted; see `auth_core::redis_conn`). Run through
//! `loadtest compare --experiments store-cluster`, as a user would: both models' servers
//! must serve again within the window, and every login watched through the failover must
//! answer.

use std::path::PathBuf;
use std::process::Command;

use loadtest::model::{FaultKind, Results};

#[test]
fn the_servers_recover_from_a_primary_failover_under_load() {
    let bins = PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = std::env::temp_dir().join(format!("loadtest-failover-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "compare",
            "--servers",
            "session",
            "--replicas",
            "1",
            "--rounds",
            "1",
        ])
        // 64 users on a replica held to a tenth of a CPU: many calls in flight while the
        // client recovers, and a slow task to recover them in.
        .args(["--users", "64", "--cpus-per-replica", "0.1"])
        .args(["--duration", "3s", "--warmup", "4s", "--scenarios", "read"])
        .args(["--experiments", "store-cluster"])
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .env_remove("CARGO")
        .status()
        .expect("loadtest runs");
    assert!(status.success(), "loadtest compare failed: {status:?}");
    let results = Results::read(&out.join("results.json")).expect("results.json reads");
    let failovers: Vec<_> = results
        .runs
        .iter()
        .filter(|r| r.fault.is_some_and(|f| f.kind == FaultKind::KillPrimary))
        .collect();
    assert_eq!(failovers.len(), 2, "one failover per model");
    for r in failovers {
        let who = format!("{} failover", r.server.name());
        let fo = r
            .failover
            .unwrap_or_else(|| panic!("{who}: logins not checked"));
        assert_eq!(fo.unanswered, 0, "{who}: {fo:?}");
        assert!(
            !r.failing_at_end(),
            "{who}: still failing when the window closed"
        );
        assert!(
            r.failing_s().unwrap() < 8.0,
            "{who}: failed for {:?} s",
            r.failing_s()
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
