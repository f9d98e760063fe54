//! `loadtest`: see lib.rs. Parses the command line, runs it on a runtime of
//! `--loadgen-threads` threads (by default sized to the machine), and stops cleanly on Ctrl-C or SIGTERM.

use clap::Parser;

fn main() {
    let cli = loadtest::cli::Cli::parse();
    let threads = cli.loadgen_threads(loadtest::infra::procfs::available_cpus());
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.into())
            .enable_all()
            .build(),
    };
    let runtime = runtime.unwrap_or_else(|e| {
        eprintln!("loadtest: cannot start the async runtime: {e}");
        std::process::exit(1);
    });
    let outcome = runtime.block_on(async {
        let interrupted = loadtest::interrupt_signal();
        // Interrupted, the work future is dropped when `select!` returns: every process it
        // started is stopped by PID on the way out, and results.json keeps the runs that
        // finished.
        tokio::select! {
            outcome = loadtest::run(cli.command) => outcome,
            signal = interrupted => Err(anyhow::anyhow!(
                "interrupted by {signal}; everything it started was stopped"
            )),
        }
    });
    match outcome {
        Ok(report) => {
            println!("report: {}", report.display());
            // Where this runs tells the user what to run next (docker-compose.yml's loadtest
            // service names the command that gives the whole report).
            if let Some(line) = std::env::var("LOADTEST_CLOSING_LINE")
                .ok()
                .filter(|l| !l.trim().is_empty())
            {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            let interrupted = e.to_string().starts_with("interrupted");
            std::process::exit(if interrupted { 130 } else { 1 });
        }
    }
}
