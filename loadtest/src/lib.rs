//! `loadtest`: measures session-server and token-server behind nginx and writes
//! results.json and the report students read.
//!
//! Data flows through the stages in this order, and each module imports only those before
//! it (no circle):
//!
//! | module | what it does |
//! |---|---|
//! | [`model`] | the results model: typed runs, faults and experiments; results.json |
//! | [`infra`] | processes (Redis, replicas, nginx), CPU budgets, `/proc` and Redis readers |
//! | [`measure`] | one measured run: goose scenarios, the recorder, fault injection, probes |
//! | [`orchestrate`] | the plan of jobs and the one run path for local, compose and existing deployments |
//! | [`report`] | report.html / report.md from the model alone |
//!
//! [`cli`] holds the command-line options; `main.rs` only parses them and calls [`run`].

pub mod cli;
pub mod infra;
pub mod measure;
pub mod model;
pub mod orchestrate;
pub mod report;

use std::path::PathBuf;

/// Runs one command; returns the report it wrote.
pub async fn run(command: cli::Command) -> anyhow::Result<PathBuf> {
    // Warnings to stderr, but none from chromiumoxide: Debian's Chromium speaks a newer
    // DevTools protocol than the crate knows, and it warns once for every event it cannot
    // parse (events the browser experiment does not use), over a hundred per run.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,chromiumoxide=off"))
        .with_writer(std::io::stderr)
        .try_init();
    match command {
        cli::Command::Compare(args) => orchestrate::compare(args).await,
        cli::Command::Run(args) => orchestrate::existing::run(args).await,
        cli::Command::Merge(args) => {
            let mut inputs = Vec::new();
            for dir in &args.dirs {
                inputs.push((
                    dir.clone(),
                    model::Results::read(&dir.join("results.json"))?,
                ));
            }
            let merged = measure::merge::merge(&inputs)?;
            let stamp = format!("{}-merged", infra::env_info::utc_stamp());
            let out = model::out_dir(args.out.as_deref(), &stamp);
            merged.write(&out)?;
            report::write(&merged, &out)?;
            Ok(out.join("report.html"))
        }
        cli::Command::Report { dir } => {
            let results = model::Results::read(&dir.join("results.json"))?;
            report::write(&results, &dir)?;
            Ok(dir.join("report.html"))
        }
    }
}

/// Resolves when the user asks to stop: Ctrl-C (SIGINT) or SIGTERM (`docker stop`), with
/// the signal's name.
///
/// Call it before any goose attack starts. Goose installs a Ctrl-C handler of its own
/// (first Ctrl-C: end the current run early and go on; second: exit at once, stopping
/// nothing); the process keeps the first handler installed, so this one wins and goose
/// keeps running until the work is dropped.
pub fn interrupt_signal() -> impl std::future::Future<Output = &'static str> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ours = ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .is_ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let sigint = async {
            if ours {
                rx.recv().await;
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        let sigterm = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sigint => "Ctrl-C",
            _ = sigterm => "SIGTERM",
        }
    }
}
