//! Command-line options.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::model::{Arrivals, Experiment, OpenLoad, Scenario, ServerKind, Setup};

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    version,
    about = "Measure session-server and token-server across replica counts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Threads the load generator runs on [default: a quarter of the CPUs, at least 1].
    /// One costs the least CPU per request (no hand-offs between threads), and is the
    /// default up to 7 CPUs; a larger machine needs more to drive its replicas. Raise it
    /// when runs are marked as bound by `loadgen`.
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub loadgen_threads: Option<u16>,
}

impl Cli {
    /// `--loadgen-threads`, or the default for a machine of `cpus` CPUs.
    pub fn loadgen_threads(&self, cpus: usize) -> u16 {
        self.loadgen_threads
            .unwrap_or_else(|| (cpus / 4).clamp(1, 256) as u16)
    }
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
    /// Combine the results of several load generators that measured one deployment at
    /// once (`run --instance I/N`): counts summed, latency from the merged histograms.
    Merge(MergeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// The generators' folders (each holding results.json), one per instance 1..N.
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged results.json and report go (default: reports/<timestamp>-merged).
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    /// Measured time per run [default: `compare` 4s (20s with --thorough), `run` 20s; 3s
    /// with --quick].
    #[arg(long)]
    pub duration: Option<Span>,
    /// Time per run before measuring: users sign up and log in, connections warm up
    /// [default: `compare` 2s (5s with --thorough), `run` 5s; 1s with --quick].
    #[arg(long)]
    pub warmup: Option<Span>,
    /// Concurrent simulated users; with --rate, the connections the requests are spread
    /// over [default: 64, or 32 per CPU on a machine of more than 2; with --rate, enough for
    /// 10 ms of arrivals if that is more].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: Option<u32>,
    /// The open model: start this many requests per second on a schedule that does not wait
    /// for answers, and count each request's latency from when it should have started (as
    /// wrk2 does; also recorded from the actual send). Without it, a closed loop: each user
    /// sends its next request once the last was answered, so latency is mostly the queue.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// How requests arrive at --rate: `constant` (one every 1/rate seconds) or `poisson`
    /// (independent arrivals at that mean rate).
    #[arg(long, value_enum, default_value = "constant", requires = "rate")]
    pub arrivals: Arrivals,
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
    /// A seconds-long smoke run: 3 s, 1 s warm-up, at most 8 users, 1 replica and 1 round
    /// unless --replicas / --rounds say otherwise.
    #[arg(long, conflicts_with = "thorough")]
    pub quick: bool,
    /// Longer runs (20 s, 5 s warm-up), 5 rounds, replicas 1,2,3,4: a steadier answer that
    /// takes about four times as long.
    #[arg(long)]
    pub thorough: bool,
}

/// The most requests per second `--rate` accepts.
pub const MAX_RATE: f64 = 10_000_000.0;

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: a number of requests per second above 0 and at most {MAX_RATE}"
        )),
    }
}

/// Connections a fixed rate gets by default: enough for this long of arrivals, so a
/// request waits for one only when answers take longer than that.
const OPEN_CONNECTIONS_FOR: f64 = 0.010;
const DEFAULT_USERS: u32 = 64;
/// Closed-loop users per CPU of the machine: enough that the users are not what limits a
/// big machine's sweep (on 16 cores, 64 users capped 8 replicas at 74k reads/s where 512
/// served 122k).
const USERS_PER_CPU: u32 = 32;

/// `--users` by default on a machine of `cpus` CPUs.
pub fn default_users(cpus: usize) -> u32 {
    DEFAULT_USERS.max(USERS_PER_CPU.saturating_mul(cpus as u32))
}
/// The default sweep on a machine of `cpus` CPUs: 1, 2, 4, and further doublings while the
/// machine has two CPUs per replica (one for the replica, one shared by the load generator,
/// nginx and Redis), so a 16-CPU machine is measured up to 8 replicas and not like a 2-CPU one.
pub fn default_replica_counts(cpus: usize) -> Vec<u32> {
    let mut counts = vec![1, 2, 4];
    let mut next = 8u32;
    while next <= 64 && (next as usize) * 2 <= cpus {
        counts.push(next);
        next *= 2;
    }
    counts
}
/// `--quick` runs at most this many users (or connections).
const QUICK_USERS: u32 = 8;

/// Whether a command measures each point in several rounds (`compare`: short windows, since
/// the rounds add up and show the spread) or once (`run`: the longer windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    Rounds,
    Once,
}

/// The measurement's settings once the defaults and --quick / --thorough are applied.
#[derive(Debug, Clone)]
pub struct Effective {
    pub duration: Span,
    pub warmup: Span,
    pub users: u32,
    /// `--rate`: the open model, or `None` for a closed loop.
    pub open: Option<OpenLoad>,
    /// Made for this process: names its simulated users, who are signed up once and
    /// logged in by every run.
    pub user_prefix: String,
    pub scenarios: Vec<Scenario>,
    pub refresh_every: u32,
    pub out: Option<PathBuf>,
    pub quick: bool,
    pub thorough: bool,
}

/// The CPU budget of each replica: chosen by a calibration (`auto`), none, or a number of
/// CPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetChoice {
    Auto,
    Unlimited,
    Cpus(f64),
}

impl FromStr for BudgetChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::Unlimited),
            n => match n.parse::<f64>() {
                Ok(c) if c > 0.0 && c.is_finite() && c <= 1024.0 => Ok(Self::Cpus(c)),
                _ => Err(format!(
                    "`{s}` is not a CPU budget: `auto`, `none` or a positive number such as 0.25"
                )),
            },
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Replica counts to sweep [default: 1,2,4, doubled while a replica still has two of the
    /// machine's CPUs (1,2,4,8 on 16 CPUs); with --quick: 1; with --thorough: 1,2,3,4].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=64))]
    pub replicas: Option<Vec<u32>>,
    /// How often each sweep point is measured, in interleaved rounds [default: 3; with
    /// --quick: 1; with --thorough: 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: Option<u32>,
    /// Server groups to measure.
    #[arg(long, value_delimiter = ',', default_value = "session,token,public")]
    pub servers: Vec<ServerKind>,
    /// CPU budget of each replica: `auto` measures what the load generator, nginx and a
    /// replica cost per request here and picks the largest budget at which no sweep run is
    /// bound by anything but the replicas; `none`; or a number of CPUs (e.g. 0.25). Enforced
    /// with cgroup cpu quotas when writable, else with taskset (whole CPUs only); results
    /// say which. With `--via compose`, `auto` leaves the compose file's REPLICA_CPUS.
    #[arg(long, default_value = "auto")]
    pub cpus_per_replica: BudgetChoice,
    /// nginx worker processes (default: a quarter of the CPUs, at least 1).
    #[arg(long)]
    pub lb_workers: Option<u32>,
    /// Experiments to run after the sweep: `shared-store` (session-server with sessions in
    /// each replica's memory behind round robin, then sticky routing, then Redis),
    /// `token-anatomy` (a real token taken apart), `revocation` (how long credentials
    /// outlive logout, and what the access-token denylist costs), `signing` (HS256 against
    /// EdDSA access tokens), `redis-outage` (Redis frozen mid-run), `replica-loss` (a replica
    /// killed mid-run), `store-bound` (Redis on a small CPU budget while replicas are
    /// swept), `server-memory` (memory per logged-in user), `authority` (a demoted admin,
    /// logout-all, read-only credentials), `access-token-lifetime` (refreshes against the
    /// revocation window at several token lifetimes), `browser` (a real Chromium over TLS:
    /// cross-origin use, CSRF and XSS against both models; needs `chromium`),
    /// `store-cluster` (the store-bound sweep on a 3-primary Redis Cluster, then a primary
    /// killed: seconds of failure and logins lost; needs `redis-cli`), `store-latency` (the
    /// store behind a delaying proxy, 0, 0.5 and 2 ms each way). The last two are not in the
    /// default set (about 2 more minutes; the default run keeps to 10 minutes on 2 CPUs):
    /// name them, e.g. `--experiments store-bound,store-cluster,store-latency`.
    /// `latency-curve` (in the default set): each group's capacity on one replica with a
    /// whole core, then fixed-rate runs at 10, 50, 75 and 90% of it, latency counted from
    /// each request's slot.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "shared-store,redis-outage,replica-loss,revocation,token-anatomy,signing,store-bound,server-memory,authority,access-token-lifetime,browser,latency-curve"
    )]
    pub experiments: Vec<Experiment>,
    /// Run the sweep only.
    #[arg(long)]
    pub no_experiments: bool,
    /// The browser of experiment `browser` [default: `chromium` from PATH]. Without one,
    /// that experiment is skipped with a note and the rest of the run goes on.
    #[arg(long)]
    pub chromium: Option<PathBuf>,
    /// Where the replicas run: `local` starts Redis, the servers and nginx as processes;
    /// `compose` drives the services of docker-compose.yml through the Docker Engine API
    /// (copies of each server's container per replica count and experiment, Redis paused, a
    /// replica killed, CPU limits and counters per container), from the host or from inside
    /// the stack (`docker compose run --rm compare`). `compose` needs Linux; the browser
    /// experiment, `store-cluster` and `store-latency` run with `local` only. With `compose`,
    /// `--cpus-per-replica none` leaves each replica the compose file's limit.
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
    /// This generator's number of several run at once against one deployment, as I/N
    /// (e.g. 2/3). Each writes its own folder, `generator-I-of-N` below --out (or below
    /// reports/<timestamp>); `loadtest merge` combines them. goose has no distributed mode
    /// since 0.17: this is how to use more than one machine's load.
    /// Docker Swarm sets it per task (`deploy/swarm/stack.py --generators N`).
    #[arg(long, env = "LOADTEST_INSTANCE")]
    pub instance: Option<crate::model::Instance>,
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
    /// The services of docker-compose.yml, through the Docker Engine API.
    Compose,
}

impl CompareArgs {
    pub fn replica_counts(&self) -> Vec<u32> {
        match &self.replicas {
            Some(r) => r.clone(),
            None if self.measure.quick => vec![1],
            None if self.measure.thorough => vec![1, 2, 3, 4],
            None => default_replica_counts(crate::infra::procfs::available_cpus()),
        }
    }

    pub fn rounds(&self) -> u32 {
        match self.rounds {
            Some(r) => r,
            None if self.measure.quick => 1,
            None if self.measure.thorough => 5,
            None => 3,
        }
    }
}

impl Measure {
    /// Every option at its default, as a plain `loadtest run` would have them (for tests).
    #[cfg(test)]
    pub fn defaults() -> Effective {
        let cli = Cli::try_parse_from(["loadtest", "run", "--target", "token=http://127.0.0.1:1"])
            .expect("the defaults parse");
        match cli.command {
            Command::Run(r) => r.measure.effective(Repeats::Once),
            _ => unreachable!("parsed as run"),
        }
    }

    /// Applies the defaults, `--quick` and `--thorough` (explicit options win).
    pub fn effective(&self, repeats: Repeats) -> Effective {
        let secs = |s| Span(Duration::from_secs(s));
        let (duration, warmup) = if self.quick {
            (secs(3), secs(1))
        } else if self.thorough || repeats == Repeats::Once {
            (secs(20), secs(5))
        } else {
            // Users are ready within the warm-up's second (the warm-up waits for them when
            // they are not), and a replica needs no longer to reach its steady pace.
            (secs(4), secs(1))
        };
        Effective {
            duration: self.duration.unwrap_or(duration),
            warmup: self.warmup.unwrap_or(warmup),
            users: {
                let base = default_users(crate::infra::procfs::available_cpus());
                let users = self.users.unwrap_or_else(|| {
                    self.rate
                        .map_or(base, |r| base.max((r * OPEN_CONNECTIONS_FOR).ceil() as u32))
                });
                if self.quick {
                    users.min(QUICK_USERS)
                } else {
                    users
                }
            },
            open: self.rate.map(|offered_rps| OpenLoad {
                offered_rps,
                arrivals: self.arrivals,
            }),
            user_prefix: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            scenarios: self.scenarios.clone(),
            refresh_every: self.refresh_every,
            out: self.out.clone(),
            quick: self.quick,
            thorough: self.thorough,
        }
    }
}

impl Effective {
    /// The set-up of the sweep's runs: standard servers, the users, and the rate if any.
    pub fn setup(&self) -> Setup {
        Setup::standard(self.users, self.open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_generator_is_sized_to_the_machine() {
        let cli = parse(&["compare"]).unwrap();
        assert_eq!(
            (
                cli.loadgen_threads(2),
                cli.loadgen_threads(16),
                cli.loadgen_threads(64)
            ),
            (1, 4, 16)
        );
        let cli = parse(&["compare", "--loadgen-threads", "3"]).unwrap();
        assert_eq!(cli.loadgen_threads(16), 3);
        assert!(parse(&["compare", "--loadgen-threads", "0"]).is_err());
    }

    #[test]
    fn a_rate_makes_the_load_open_with_enough_connections() {
        let Command::Run(r) = parse(&[
            "run",
            "--target",
            "token=http://127.0.0.1:1",
            "--rate",
            "20000",
            "--arrivals",
            "poisson",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        let m = r.measure.effective(Repeats::Once);
        assert_eq!(
            m.open,
            Some(OpenLoad {
                offered_rps: 20000.0,
                arrivals: Arrivals::Poisson
            })
        );
        assert_eq!(m.users, 200, "10 ms of arrivals");
        assert_eq!(m.setup().open, m.open);
        let Command::Compare(c) = parse(&["compare", "--rate", "500", "--users", "3"])
            .unwrap()
            .command
        else {
            panic!()
        };
        let m = c.measure.effective(Repeats::Rounds);
        assert_eq!((m.users, m.open.unwrap().arrivals), (3, Arrivals::Constant));
        for bad in [
            &["compare", "--rate", "0"][..],
            &["compare", "--rate", "-5"],
            &["compare", "--rate", "fast"],
            &["compare", "--rate", "inf"],
            &["compare", "--rate", "1e12"],
            &["compare", "--arrivals", "poisson"],
            &["compare", "--rate", "10", "--arrivals", "bursty"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

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
        assert_eq!(
            c.replica_counts(),
            default_replica_counts(crate::infra::procfs::available_cpus())
        );
        assert_eq!(default_replica_counts(2), vec![1, 2, 4]);
        assert_eq!(default_replica_counts(15), vec![1, 2, 4]);
        assert_eq!(default_replica_counts(16), vec![1, 2, 4, 8]);
        assert_eq!(default_replica_counts(64), vec![1, 2, 4, 8, 16, 32]);
        assert_eq!(
            c.servers,
            vec![ServerKind::Session, ServerKind::Token, ServerKind::Public]
        );
        let m = c.measure.effective(Repeats::Rounds);
        assert_eq!(m.duration.0, Duration::from_secs(4));
        assert_eq!(m.warmup.0, Duration::from_secs(1));
        assert_eq!(
            m.users,
            default_users(crate::infra::procfs::available_cpus())
        );
        assert_eq!((default_users(2), default_users(16)), (64, 512));
        assert_eq!(m.scenarios.len(), 4);
        assert_eq!(c.cpus_per_replica, BudgetChoice::Auto);
        assert_eq!(c.rounds(), 3);
        assert_eq!(c.experiments.len(), 12);
        let Command::Compare(t) = parse(&["compare", "--thorough"]).unwrap().command else {
            panic!()
        };
        assert_eq!(t.replica_counts(), vec![1, 2, 3, 4]);
        assert_eq!(
            (
                t.rounds(),
                t.measure.effective(Repeats::Rounds).duration.0.as_secs()
            ),
            (5, 20)
        );
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
        assert_eq!(c.cpus_per_replica, BudgetChoice::Cpus(0.25));
        assert_eq!(c.rounds(), 1);
        let m = c.measure.effective(Repeats::Rounds);
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
            &["compare", "--cpus-per-replica", "0"],
            &["compare", "--cpus-per-replica", "lots"],
            &["compare", "--rounds", "0"],
            &["compare", "--quick", "--thorough"],
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
        // A single measurement keeps the longer windows; compare's rounds use short ones.
        let m = r.measure.effective(Repeats::Once);
        assert_eq!((m.duration.0.as_secs(), m.warmup.0.as_secs()), (20, 5));
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
