//! `loadtest`: measures session-server and token-server behind nginx and writes results.json.

mod cli;
mod compare;
mod compose;
mod cpu_budget;
mod env_info;
mod measure;
mod probe;
mod probes;
mod procfs;
mod prometheus_text;
mod recorder;
mod redis_info;
mod report;
mod results;
mod run_existing;
mod scenarios;
mod summary;
mod sweep;
mod topology;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    let work = async {
        match cli.command {
            cli::Command::Compare(args) => compare::compare(args).await,
            cli::Command::Run(args) => run_existing::run(args).await,
            cli::Command::Report { dir } => {
                let results = results::Results::read(&dir.join("results.json"))?;
                report::write(&results, &dir)?;
                Ok(dir.join("report.html"))
            }
        }
    };
    // Ctrl-C drops the work future: every process it started is stopped on the way out.
    let outcome = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(report) => println!("report: {}", report.display()),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            std::process::exit(1);
        }
    }
}
