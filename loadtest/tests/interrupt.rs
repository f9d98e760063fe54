//! Ctrl-C in the middle of `loadtest compare`: every process it started is stopped, and
//! results.json is valid and holds the runs that finished.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use loadtest::model::Results;
use plumbing::{wait_until_blocking, Check, Signal};

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let parent_of = |p: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(all.iter().copied().filter(|c| parent_of(*c) == Some(p)));
        i += 1;
    }
    found.remove(0);
    found
}

/// Running, not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn ctrl_c_stops_everything_and_keeps_the_finished_runs() {
    let bins = PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = std::env::temp_dir().join(format!("loadtest-interrupt-{}", std::process::id()));
    let log = std::fs::File::create(
        std::env::temp_dir().join(format!("loadtest-interrupt-{}.log", std::process::id())),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "compare",
            "--quick",
            "--replicas",
            "2",
            "--servers",
            "token",
            "--scenarios",
            "read,login,refresh",
            "--no-experiments",
            "--users",
            "4",
        ])
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .env_remove("CARGO")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("loadtest starts");
    let pid = child.id();
    let results = out.join("results.json");
    // Interrupt during the second run, once the first is kept.
    wait_until_blocking(
        "the first run finished",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || match Results::read(&results) {
            Ok(r) if !r.runs.is_empty() => Check::Done(()),
            _ => match child.try_wait() {
                Ok(Some(status)) => Check::Failed(format!("loadtest exited early: {status}")),
                _ => Check::Waiting("no run yet".into()),
            },
        },
    )
    .unwrap();
    let started = descendants(pid);
    // Redis, two replicas, nginx and its workers.
    assert!(started.len() >= 5, "processes under loadtest: {started:?}");
    plumbing::signal(pid, Signal::Int).unwrap();
    let status = wait_until_blocking(
        "loadtest exits after Ctrl-C",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || match child.try_wait() {
            Ok(Some(status)) => Check::Done(status),
            _ => Check::Waiting("still running".into()),
        },
    )
    .unwrap_or_else(|e| {
        let _ = child.kill();
        panic!("{e}")
    });
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C");
    let left: Vec<u32> = started.into_iter().filter(|p| running(*p)).collect();
    assert!(left.is_empty(), "still running after Ctrl-C: {left:?}");
    let kept = Results::read(&results).expect("results.json is valid");
    assert!(!kept.runs.is_empty(), "the finished runs are kept");
    assert!(kept.runs.len() < 3, "it was interrupted before the end");
    assert!(
        kept.environment
            .notes
            .iter()
            .any(|n| n.starts_with("interrupted after")),
        "{:?}",
        kept.environment.notes
    );
    std::fs::remove_dir_all(&out).ok();
}
