//! `loadtest`: see lib.rs. Parses the command line, runs it, and stops cleanly on Ctrl-C
//! or SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = loadtest::cli::Cli::parse();
    let interrupted = loadtest::interrupt_signal();
    // Interrupted, the work future is dropped when `select!` returns: every process it
    // started is stopped by PID on the way out, and results.json keeps the runs that
    // finished.
    let outcome = tokio::select! {
        outcome = loadtest::run(cli.command) => outcome,
        signal = interrupted => {
            Err(anyhow::anyhow!("interrupted by {signal}; everything it started was stopped"))
        }
    };
    match outcome {
        Ok(report) => println!("report: {}", report.display()),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            let interrupted = e.to_string().starts_with("interrupted");
            std::process::exit(if interrupted { 130 } else { 1 });
        }
    }
}
