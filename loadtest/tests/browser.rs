//! Experiment `browser` without a browser: skipped with a note that says what to install,
//! and the rest of the run goes on. (With Chromium, the smoke test asserts every case.)

use std::path::PathBuf;
use std::process::Command;

use loadtest::model::Results;

#[test]
fn without_chromium_the_experiment_is_skipped_and_the_run_goes_on() {
    let bins = PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = std::env::temp_dir().join(format!("loadtest-no-browser-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args([
            "compare",
            "--quick",
            "--servers",
            "token",
            "--replicas",
            "1",
            "--users",
            "4",
            "--cpus-per-replica",
            "none",
            "--experiments",
            "browser,token-anatomy",
            "--chromium",
            "/nonexistent/chromium",
        ])
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .env_remove("CARGO")
        .output()
        .expect("loadtest runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("apt-get install -y chromium"),
        "the message says what to install:\n{stderr}"
    );
    let r = Results::read(&out.join("results.json")).unwrap();
    assert!(r.browser.is_none());
    assert!(r.token_anatomy.is_some(), "the other experiment still ran");
    assert!(
        r.environment
            .notes
            .iter()
            .any(|n| n.starts_with("browser: skipped") && n.contains("chromium")),
        "{:?}",
        r.environment.notes
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| S5 |") && report.contains("not measurable here"));
    std::fs::remove_dir_all(out).unwrap();
}
