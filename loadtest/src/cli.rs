//! Command-line options.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::model::{Experiment, Scenario, ServerKind};

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    version,
    about = "Measure session-server and token-server across replica counts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads the load generator runs on. One costs the least CPU per request (no
    /// hand-offs between threads); raise it on a large machine when runs are marked as
    /// bound by `loadgen`.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub loadgen_threads: u16,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start Redis, N replicas of each server and nginx in front of them, sweep replica
    /// counts, run every scenario, and write results.json.
    Compare(CompareArgs),
    /// Measure a deployment that already runs (docker compose, another machine).
    Run(RunArgs),
    /// Rebuild report.html, report.md and charts/ from DIR/results.json alone.
    Report {
        /// A folder holding results.json (e.g. reports/latest).
        dir: PathBuf,
    },
}

/// A duration such as `20s`, `500ms`, `2m` or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (e.g. 20s, 500ms, 2m)"))?;
        let secs = match unit {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" => n * 60.0,
            _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s or m)")),
        };
        if !secs.is_finite() || !(0.0..=24.0 * 3600.0).contains(&secs) {
            return Err(format!("`{s}` is out of range"));
        }
        Ok(Span(Duration::from_secs_f64(secs)))
    }
}

/// Options that both commands share.
#[derive(Args, Debug, Clone)]
pub struct Measure {
    /// Measured time per run.
    #[arg(long, default_value = "20s")]
    pub duration: Span,
    /// Time per run before measuring: users sign up and log in, connections warm up.
    #[arg(long, default_value = "5s")]
    pub warmup: Span,
    /// Concurrent simulated users.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// Scenarios to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "read,login,refresh,public"
    )]
    pub scenarios: Vec<Scenario>,
    /// In the `refresh` scenario, refresh the credential every K reads.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub refresh_every: u32,
    /// Where results.json goes (default: reports/<timestamp>/, with reports/latest pointing at it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A seconds-long smoke run: 3 s, 1 s warm-up, at most 8 users, 1 replica unless
    /// --replicas says otherwise.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Replica counts to sweep [default: 1,2,4; with --quick: 1].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=64))]
    pub replicas: Option<Vec<u32>>,
    /// Server groups to measure.
    #[arg(long, value_delimiter = ',', default_value = "session,token,public")]
    pub servers: Vec<ServerKind>,
    /// CPU budget of each replica, in CPUs (e.g. 0.25), so capacity grows with replicas while
    /// the load generator, nginx and Redis keep their room. Enforced with cgroup cpu quotas
    /// when writable, else with taskset (whole CPUs only); results say which.
    #[arg(long)]
    pub cpus_per_replica: Option<f64>,
    /// nginx worker processes (default: a quarter of the CPUs, at least 1).
    #[arg(long)]
    pub lb_workers: Option<u32>,
    /// Experiments to run after the sweep: `shared-store` (session-server with sessions in
    /// each replica's memory behind round robin, then sticky routing, then Redis),
    /// `token-anatomy` (a real token taken apart), `revocation` (how long credentials
    /// outlive logout, and what the access-token denylist costs), `signing` (HS256 against
    /// EdDSA access tokens), `redis-outage` (Redis frozen mid-run), `replica-loss` (a replica
    /// killed mid-run).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "shared-store,redis-outage,replica-loss,revocation,token-anatomy,signing"
    )]
    pub experiments: Vec<Experiment>,
    /// Run the sweep only.
    #[arg(long)]
    pub no_experiments: bool,
    /// Where the replicas run: `local` starts Redis, the servers and nginx as processes;
    /// `compose` scales the services of docker-compose.yml to each replica count (`docker
    /// compose up -d --scale ...`), reloads its nginx, and measures through it. `compose`
    /// needs a Linux host with Docker Engine and Compose, and runs the sweep only.
    #[arg(long, value_enum, default_value = "local")]
    pub via: Via,
    /// The compose file that `--via compose` drives.
    #[arg(long, default_value = "docker-compose.yml")]
    pub compose_file: PathBuf,
    /// Directory holding the session-server and token-server binaries (default: next to
    /// this program; `cargo run` builds them first).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    #[command(flatten)]
    pub measure: Measure,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A group to measure, as KIND=URL (KIND: session, token or public), e.g.
    /// `token=http://127.0.0.1:8082`. Repeat it to measure several groups in one report.
    #[arg(long = "target", required = true)]
    pub targets: Vec<KindValue>,
    /// The deployment's Redis, to count Redis commands per request (optional).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// One replica's own base URL, as KIND=URL, to see how requests spread (repeatable).
    #[arg(long = "replica-url")]
    pub replica_urls: Vec<KindValue>,
    /// Every replica of a group at once, as KIND=HOST:PORT: each address HOST resolves to
    /// is one replica (docker compose's service names resolve that way).
    #[arg(long = "replicas-of")]
    pub replicas_of: Vec<KindValue>,
    #[command(flatten)]
    pub measure: Measure,
}

/// `KIND=VALUE`, e.g. `token=http://127.0.0.1:8082`.
#[derive(Debug, Clone, PartialEq)]
pub struct KindValue {
    pub server: ServerKind,
    pub value: String,
}

impl FromStr for KindValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not KIND=VALUE (e.g. token=http://127.0.0.1:8082)"))?;
        let server = ServerKind::from_str(kind.trim(), true)
            .map_err(|_| format!("`{kind}` is not session, token or public"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("`{s}`: nothing after `=`"));
        }
        Ok(Self {
            server,
            value: value.to_owned(),
        })
    }
}

/// Where `compare` runs the replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Processes started by this command on this machine.
    Local,
    /// The services of docker-compose.yml, scaled with `docker compose up -d --scale`.
    Compose,
}

impl CompareArgs {
    pub fn replica_counts(&self) -> Vec<u32> {
        match &self.replicas {
            Some(r) => r.clone(),
            None if self.measure.quick => vec![1],
            None => vec![1, 2, 4],
        }
    }
}

impl Measure {
    /// Every option at its default, as a plain `loadtest run` would have them (for tests).
    #[cfg(test)]
    pub fn defaults() -> Self {
        let cli = Cli::try_parse_from(["loadtest", "run", "--target", "token=http://127.0.0.1:1"])
            .expect("the defaults parse");
        match cli.command {
            Command::Run(r) => r.measure,
            _ => unreachable!("parsed as run"),
        }
    }

    /// Applies `--quick`.
    pub fn effective(&self) -> Measure {
        let mut m = self.clone();
        if m.quick {
            m.duration = Span(Duration::from_secs(3));
            m.warmup = Span(Duration::from_secs(1));
            m.users = m.users.min(8);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
    }

    #[test]
    fn durations() {
        assert_eq!("20s".parse::<Span>().unwrap().0, Duration::from_secs(20));
        assert_eq!(
            "500ms".parse::<Span>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert_eq!("7".parse::<Span>().unwrap().0, Duration::from_secs(7));
        assert_eq!(
            "1.5s".parse::<Span>().unwrap().0,
            Duration::from_millis(1500)
        );
        for bad in ["", "s", "10h", "-1s", "abc", "1e9"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
    }

    #[test]
    fn compare_defaults() {
        let Command::Compare(c) = parse(&["compare"]).unwrap().command else {
            panic!()
        };
        assert_eq!(c.replica_counts(), vec![1, 2, 4]);
        assert_eq!(
            c.servers,
            vec![ServerKind::Session, ServerKind::Token, ServerKind::Public]
        );
        assert_eq!(c.measure.duration.0, Duration::from_secs(20));
        assert_eq!(c.measure.warmup.0, Duration::from_secs(5));
        assert_eq!(c.measure.users, 64);
        assert_eq!(c.measure.scenarios.len(), 4);
        assert!(c.cpus_per_replica.is_none());
    }

    #[test]
    fn compare_options() {
        let Command::Compare(c) = parse(&[
            "compare",
            "--replicas",
            "1,8",
            "--servers",
            "token",
            "--scenarios",
            "read",
            "--users",
            "10",
            "--cpus-per-replica",
            "0.25",
            "--quick",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(c.replica_counts(), vec![1, 8]);
        assert_eq!(c.servers, vec![ServerKind::Token]);
        assert_eq!(c.cpus_per_replica, Some(0.25));
        let m = c.measure.effective();
        assert_eq!(
            (m.duration.0, m.warmup.0, m.users),
            (Duration::from_secs(3), Duration::from_secs(1), 8)
        );
    }

    #[test]
    fn bad_options_are_refused() {
        for args in [
            &["compare", "--replicas", "0"][..],
            &["compare", "--replicas", "a"],
            &["compare", "--servers", "cookie"],
            &["compare", "--scenarios", "write"],
            &["compare", "--users", "0"],
            &["compare", "--duration", "soon"],
            &["run", "--server", "token"],
            &["run"],
            &["run", "--target", "http://127.0.0.1:8080"],
            &["run", "--target", "cookie=http://127.0.0.1:8080"],
            &["run", "--target", "token="],
            &["compare", "--via", "kubernetes"],
            &["frobnicate"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn run_takes_several_groups() {
        let Command::Run(r) = parse(&[
            "run",
            "--target",
            "session=http://127.0.0.1:8081",
            "--target",
            "Token=http://127.0.0.1:8082",
            "--replicas-of",
            "token=token-server:8080",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let kinds: Vec<_> = r.targets.iter().map(|t| t.server).collect();
        assert_eq!(kinds, vec![ServerKind::Session, ServerKind::Token]);
        assert_eq!(r.targets[1].value, "http://127.0.0.1:8082");
        assert_eq!(r.replicas_of[0].value, "token-server:8080");
    }

    #[test]
    fn compare_via_compose() {
        let Command::Compare(c) = parse(&["compare", "--via", "compose", "--replicas", "1,2"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!(c.via, Via::Compose);
        assert_eq!(c.compose_file, PathBuf::from("docker-compose.yml"));
        let Command::Compare(c) = parse(&["compare"]).unwrap().command else {
            panic!()
        };
        assert_eq!(c.via, Via::Local);
    }
}
