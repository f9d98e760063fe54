//! One measured run: goose drives the users, the window opens once every user is set up
//! and the warm-up has passed, and everything is read from both edges of the window. What
//! comes out is a [`Run`] of the results model.

pub mod browser;
pub mod failover;
pub mod fault;
pub mod merge;
pub mod pacing;
pub mod probes;
pub mod recorder;
pub mod scenarios;
pub mod snapshot;

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::infra::cpu_budget::CpuBudget;
use crate::infra::procfs;
use crate::model::{
    Bottleneck, CpuPerRequest, Experiment, FaultKind, PeakMemory, Run, Scenario, ServerKind, Setup,
};
use fault::{FaultPlan, Injector, Victim};
use recorder::Recorder;
pub use scenarios::RefreshPolicy;
use snapshot::{snapshot, Containers, Edge, Pids, Snapshot};

/// Where to send the load, and what can be seen of the system that answers it.
pub struct Target {
    pub url: String,
    pub server: ServerKind,
    pub pids: Pids,
    /// Redis (every primary of a cluster), for `INFO`; empty when it cannot be reached.
    pub redis_urls: Vec<String>,
    pub replica_urls: Vec<String>,
    /// A store behind the delaying proxy: a `PING` round trip through it, measured.
    pub store_rtt_ms: Option<f64>,
    /// A Redis Cluster whose first primary a `kill-primary` fault kills.
    pub failover: Option<FailoverTarget>,
    pub lb_workers: u32,
    /// Worker threads of each replica: without a budget, the cores a replica can use.
    pub replica_workers: u32,
    /// Whether the replicas', Redis's and the balancer's CPU can be read here (not from
    /// outside a deployment); without it no bottleneck can be named.
    pub cpu_visible: bool,
}

/// The primary a failover kills, and its replica.
#[derive(Debug, Clone, Copy)]
pub struct FailoverTarget {
    pub victim_pid: u32,
    pub victim_port: u16,
    pub replica_port: u16,
}

/// One run: a scenario against a target, for a time, maybe with a fault.
pub struct RunPlan {
    /// `[n/total] server scenario xN [variant]`, for progress lines and notes.
    pub label: String,
    pub scenario: Scenario,
    pub experiment: Option<Experiment>,
    /// As the plan made it; the run records it unchanged.
    pub setup: Setup,
    /// Names this process's simulated users (see `scenarios::RunContext`).
    pub user_prefix: String,
    pub warmup: Duration,
    pub duration: Duration,
    pub refresh: RefreshPolicy,
    pub replicas: u32,
    /// Which repetition of its sweep point this run is.
    pub round: u32,
    pub cpus_per_replica: Option<f64>,
    pub oversubscribed: bool,
    /// Something to break during the window.
    pub fault: Option<FaultPlan>,
    /// Keep the latency histograms in the run (`loadtest run`, whose results `merge`
    /// combines).
    pub keep_histograms: bool,
}

/// How long after the window a killed primary's replica may take to take over before the
/// logins written before the kill are left unchecked.
const FAILOVER_WAIT: Duration = Duration::from_secs(15);

/// The share of its quota periods in which a budgeted Redis must have been held back for it
/// to count as the bottleneck.
pub const STORE_THROTTLED: f64 = 0.5;

/// At a fixed rate, users are launched at this many times their number per second: all
/// within 1/20 s.
const OPEN_LAUNCHES_PER_USER: u64 = 20;

/// Redis commands per request from which a run's requests count as asking the store.
const ASKS_STORE: f64 = 0.01;

/// Goose's run time beyond the planned warm-up and window, in seconds (see `run`). It costs
/// nothing when the set-up is quick (the window's close stops goose), and through docker
/// compose it is needed: 64 logins on a fresh replica container took over 4 s there, and the
/// Engine's CPU reading at the window's opening up to another second (with 6 s, windows
/// were shortened and two first runs gave up before every user had logged in).
const RUN_TIME_SLACK_S: u64 = 10;

/// Why goose stops: every run's users are stopped this way once its window closes.
const WINDOW_CLOSED: &str = "the measured window closed";

/// At a fixed rate, the schedule runs at least this long before the window opens: the
/// connections are opened and warm.
const OPEN_WARMUP_MIN: Duration = Duration::from_millis(500);

/// At a fixed rate, a run that fell short of its rate with late starts over this share of
/// its requests waited for connections: bound by its concurrency when nothing else was
/// saturated.
const LATE_SHARE: f64 = 0.01;

/// Each request may take this long before it counts as failed (status 0).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Threads the load generator runs on: those of this program's runtime.
pub fn loadgen_threads() -> usize {
    tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers())
}

/// The load generator, as results.json's configuration names it.
pub fn loadgen_description() -> String {
    let n = loadgen_threads();
    format!(
        "goose 0.19 with a hyper HTTP/1.1 client, in the loadtest process, {n} thread{}",
        if n == 1 { "" } else { "s" }
    )
}

fn goose_attack(
    target: &Target,
    plan: &RunPlan,
    run_time_s: u64,
    ctx: &Arc<scenarios::RunContext>,
) -> anyhow::Result<GooseAttack> {
    let users = plan.setup.users.to_string();
    // A closed loop's users start over a second; at a fixed rate they are only connections
    // waiting for the schedule (which starts once all are ready), so they start at once.
    let increase_rate = match plan.setup.open {
        Some(_) => (u64::from(plan.setup.users) * OPEN_LAUNCHES_PER_USER).to_string(),
        None => users.clone(),
    };
    let run_time = format!("{run_time_s}s");
    let args = [
        "--host",
        &target.url,
        "--users",
        &users,
        "--increase-rate",
        &increase_rate,
        "--run-time",
        &run_time,
        // The recorder measures; goose's own metrics would only cost CPU per request.
        "--no-metrics",
        "--no-print-metrics",
        "--no-error-summary",
        "--no-telnet",
        "--no-gzip",
        "--quiet",
    ];
    let config = GooseConfiguration::parse_args_default(&args)
        .map_err(|e| anyhow::anyhow!("goose configuration: {e}"))?;
    Ok(GooseAttack::initialize_with_config(config)?
        .register_scenario(scenarios::build(plan.scenario, ctx)))
}

struct Window {
    start: Snapshot,
    end: Snapshot,
    /// How long the recorder counted requests (from just after `start` to just before `end`).
    counted: Duration,
    /// Share of its quota periods in which Redis ran out of its budget, when it had one.
    store_throttled: Option<f64>,
    fault: Option<crate::model::Fault>,
    failover: Option<crate::model::Failover>,
    note: Option<String>,
}

/// The progress line of a run, rewritten in place on a terminal, every 5 s in a log.
struct Progress<'a> {
    label: &'a str,
    began: Instant,
    total: Duration,
    tty: bool,
    every: Duration,
    last: Instant,
    last_sent: u64,
}

impl<'a> Progress<'a> {
    fn new(label: &'a str, total: Duration) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self {
            label,
            began: Instant::now(),
            total,
            tty,
            every: Duration::from_secs(if tty { 1 } else { 5 }),
            last: Instant::now(),
            last_sent: 0,
        }
    }

    fn tick(&mut self, phase: &str, recorder: &Recorder) {
        if self.last.elapsed() < self.every {
            return;
        }
        let sent = recorder.sent.load(Ordering::Relaxed);
        let rate = (sent - self.last_sent) as f64 / self.last.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "{}  {phase} {:>5.1}s/{:.0}s  {:>8.0} req/s",
            self.label,
            self.began.elapsed().as_secs_f64(),
            self.total.as_secs_f64(),
            rate
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.last_sent = sent;
        self.last = Instant::now();
    }

    fn done(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// What a fault of `kind` hits in `target`: Redis for a freeze, the first replica for a
/// kill (containers where the deployment has them), the first primary for a failover (and
/// the port of its replica, watched until it takes over).
fn victim_of(target: &Target, kind: FaultKind) -> (Option<Victim>, Option<u16>) {
    let container = |pick: fn(&Containers) -> &Vec<String>| {
        let c = target.pids.containers.as_ref()?;
        Some(Victim::Container {
            engine: c.engine.clone(),
            id: pick(c).first()?.clone(),
        })
    };
    match kind {
        FaultKind::FreezeRedis => (
            container(|c| &c.redis)
                .or_else(|| target.pids.redis.first().map(|p| Victim::Process(*p))),
            None,
        ),
        FaultKind::KillReplica => (
            container(|c| &c.replicas)
                .or_else(|| target.pids.replicas.first().map(|p| Victim::Process(*p))),
            None,
        ),
        FaultKind::KillPrimary => match target.failover {
            Some(t) => (Some(Victim::Process(t.victim_pid)), Some(t.replica_port)),
            None => (None, None),
        },
    }
}

/// Waits for set-up and warm-up, then measures until `duration` passed or goose is about
/// to stop, injecting the fault if there is one.
async fn window(
    target: &Target,
    budgets: &[&CpuBudget],
    plan: &RunPlan,
    mut marks: Option<failover::Marks>,
    ctx: &scenarios::RunContext,
    http: &reqwest::Client,
    goose_ends: Instant,
) -> anyhow::Result<Window> {
    let (recorder, schedule) = (ctx.recorder(), ctx.schedule());
    let mut progress = Progress::new(&plan.label, plan.warmup + plan.duration);
    // Warm-up: wait for the time and for every user's set-up; at a fixed rate, the
    // schedule starts once every user is ready and runs a while before the window opens.
    loop {
        let ready = recorder.ready_users.load(Ordering::SeqCst) >= plan.setup.users as usize;
        if ready {
            if let Some(s) = schedule {
                s.start();
            }
        }
        let paced_long_enough = schedule
            .and_then(|s| s.started())
            .is_none_or(|t| t.elapsed() >= OPEN_WARMUP_MIN);
        if ready && paced_long_enough && progress.began.elapsed() >= plan.warmup {
            break;
        }
        if goose_ends.saturating_duration_since(Instant::now()) < Duration::from_secs(2) {
            // Every user is ready, only the warm-up's time ran short (a load generator slow
            // to get round to this check, at a rate far beyond what it can send): measure
            // what is left; the note below says the window was shortened.
            if ready {
                break;
            }
            progress.done();
            let throttled = recorder.setup_throttled.load(Ordering::SeqCst);
            let ready = recorder.ready_users.load(Ordering::SeqCst);
            anyhow::bail!(
                "only {} of {} users finished signing up and logging in before the run ended{}",
                ready,
                plan.setup.users,
                if throttled == 0 {
                    String::new()
                } else {
                    format!(
                        "; {throttled} signups or logins were answered 429: the servers' \
                         SIGNUP_MAX and LOGIN_MAX_FAILURES count per client address, and every \
                         simulated user comes from this one: raise both on the servers (the \
                         compose file sets 1000000)"
                    )
                }
            );
        }
        progress.tick("warm-up  ", recorder);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let late = progress.began.elapsed().saturating_sub(plan.warmup);
    for b in budgets {
        b.limit(true).await?;
    }
    if !budgets.is_empty() {
        // Let the throttled processes settle before the first reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let store = budgets.iter().find(|b| b.is_store());
    let throttled_at_open = match store {
        Some(b) => b.throttling().await,
        None => None,
    };
    let mut injector = match plan.fault {
        Some(f) => {
            let (victim, successor) = victim_of(target, f.kind);
            let victim = victim.ok_or_else(|| {
                anyhow::anyhow!("{:?}: no process of this run to inject it into", f.kind)
            })?;
            Some(Injector::new(f, victim, successor))
        }
        None => None,
    };
    let start = snapshot(
        http,
        &target.pids,
        &target.redis_urls,
        &target.replica_urls,
        Edge::Open,
    )
    .await;
    recorder.open(true, plan.fault.is_some());
    let opened = Instant::now();
    let until = (start.at + plan.duration).min(goose_ends - Duration::from_millis(500));
    let shortened = until < start.at + plan.duration;
    let mut fault_error = None;
    let mut write_before_kill_ms = 0;
    while Instant::now() < until {
        if let Some(inj) = injector.as_mut() {
            // The watched logins are written just before the primary dies.
            if let Some(m) = marks.as_mut().filter(|_| inj.due(start.at.elapsed())) {
                m.write().await;
                write_before_kill_ms = m.since_write_ms();
            }
            if let Err(e) = inj.step(start.at).await {
                fault_error = Some(e);
                break;
            }
        }
        tokio::time::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        )
        .await;
        progress.tick("measuring", recorder);
    }
    // A freeze still in force is lifted before anything else, and a failure to do so is
    // reported only after the window is closed and the budget switched off.
    if let Some(inj) = injector.as_mut() {
        if let Err(e) = inj.lift(start.at).await {
            fault_error.get_or_insert(e);
        }
    }
    recorder.open(false, false);
    let counted = opened.elapsed();
    let mut notes = Vec::new();
    let throttled_at_close = match store {
        Some(b) => b.throttling().await,
        None => None,
    };
    let store_throttled = match (throttled_at_open, throttled_at_close) {
        (Some((p0, t0)), Some((p1, t1))) if p1 > p0 => {
            Some(t1.saturating_sub(t0) as f64 / (p1 - p0) as f64)
        }
        _ => None,
    };
    // A killed primary's counters are gone: the end reading counts the nodes alive.
    let end = snapshot(
        http,
        &target.pids,
        &target.redis_urls,
        &target.replica_urls,
        Edge::Close,
    )
    .await;
    // The next run's set-up (sign-ups and logins) is not measured: it gets the whole machine.
    for b in budgets {
        b.limit(false).await?;
    }
    // The logins written before a primary's kill are checked once its replica has taken
    // over (asked before, every one on the dead primary would count as lost); the takeover
    // time is still recorded as it happens, after the window if need be.
    let failover = match (marks.as_ref(), injector.as_mut()) {
        (Some(m), Some(inj)) if inj.began() => {
            let give_up = Instant::now() + FAILOVER_WAIT;
            while !inj.failed_over() && Instant::now() < give_up && fault_error.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Err(e) = inj.step(start.at).await {
                    fault_error = Some(e);
                }
            }
            if inj.failed_over() {
                Some(m.check(write_before_kill_ms).await)
            } else {
                notes.push(format!(
                    "the killed primary's replica had not taken over {} s after the window closed: the \
                     logins written before the kill were not checked",
                    FAILOVER_WAIT.as_secs()
                ));
                None
            }
        }
        _ => None,
    };
    progress.done();
    if let Some(e) = fault_error {
        return Err(e);
    }
    if shortened {
        notes.push(format!(
            "the warm-up ended {late:.1?} late (set-up took longer, or the load generator was behind); the window was shortened to fit the run"
        ));
    }
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    Ok(Window {
        start,
        end,
        counted,
        store_throttled,
        fault: injector.and_then(|i| i.recorded()),
        failover,
        note,
    })
}

/// Runs `plan` against `target` (with the replicas, and Redis where it has one, held to
/// `budgets` during the window) and returns the run, with a note when something about it
/// needs saying.
pub async fn measure(
    target: &Target,
    budgets: &[&CpuBudget],
    plan: &RunPlan,
) -> anyhow::Result<(Run, Option<String>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let credential_bytes = probes::credential_bytes(&http, &target.url, target.server).await?;
    let recorder = Arc::new(Recorder::default());
    let schedule = plan
        .setup
        .open
        .map(pacing::Schedule::new)
        .transpose()?
        .map(Arc::new);
    let ctx = scenarios::RunContext::new(
        &target.url,
        target.server,
        &plan.user_prefix,
        plan.refresh,
        REQUEST_TIMEOUT,
        Arc::clone(&recorder),
        schedule.clone(),
    )?;
    // Goose's run time (whole seconds) is only the bound: the window stops the users as
    // soon as it closes (below), so the bound leaves room for a slow set-up (hundreds of
    // connections logging in before a fixed-rate run) without shortening the window.
    let run_time_s = (plan.warmup + plan.duration).as_secs_f64().ceil() as u64 + RUN_TIME_SLACK_S;
    // A failover's watched logins are made before the load starts (password hashing is
    // slow, and goose's run time is fixed).
    let marks = match (plan.fault, target.failover) {
        (Some(f), Some(t)) if f.kind == FaultKind::KillPrimary => {
            Some(failover::Marks::log_in(target.server, &target.url, t.victim_port).await?)
        }
        _ => None,
    };
    let attack = goose_attack(target, plan, run_time_s, &ctx)?;
    let goose_ends = Instant::now() + Duration::from_secs(run_time_s);
    let start_memory = snapshot::used_memory(&target.redis_urls).await;
    let measured = async {
        let w = window(target, budgets, plan, marks, &ctx, &http, goose_ends).await;
        // Load after the window is measured by nobody: stop the users now rather than at
        // goose's whole-second run time (a second or two per run, a tenth of `compare`).
        goose::trigger_killswitch(WINDOW_CLOSED);
        w
    };
    let (goose_result, window) = tokio::join!(attack.execute(), measured);
    goose_result.map_err(|e| anyhow::anyhow!("goose: {e}"))?;
    let window = window?;
    let taken = recorder.take();
    let requests = taken.requests();
    anyhow::ensure!(
        requests > 0,
        "{}: no request was answered in the measured window",
        plan.label
    );

    let w = &window;
    // Requests per second over the span in which they were counted; each CPU figure as a
    // rate over the span between its own two readings, and per request as that rate over
    // the request rate. On one machine the spans are the same to a millisecond; through
    // the Docker Engine a reading can come a second late, and CPU over that extra second
    // divided by the window's requests would be load that was never counted.
    let secs = w.counted.as_secs_f64();
    let rps = requests as f64 / secs;
    let span = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64();
    let (engine_s, own_s) = (
        span(w.start.cpu_at, w.end.cpu_at),
        span(w.start.at, w.end.at),
    );
    // The load generator is this process: always seen. The rest only where their
    // processes are this machine's or the Engine's.
    let seen = |v: f64| target.cpu_visible.then_some(v);
    let cores = |a: f64, b: f64, over: f64| (b - a) / over;
    let cpu_cores = CpuPerRequest {
        replicas: seen(cores(w.start.cpu_replicas, w.end.cpu_replicas, engine_s)),
        redis: seen(cores(w.start.cpu_redis, w.end.cpu_redis, engine_s)),
        lb: seen(cores(w.start.cpu_lb, w.end.cpu_lb, engine_s)),
        loadgen: Some(cores(w.start.cpu_loadgen, w.end.cpu_loadgen, own_s)),
    };
    let per_request = |c: Option<f64>| c.map(|c| c * 1e6 / rps);
    let cpu_us = CpuPerRequest {
        replicas: per_request(cpu_cores.replicas),
        redis: per_request(cpu_cores.redis),
        lb: per_request(cpu_cores.lb),
        loadgen: per_request(cpu_cores.loadgen),
    };
    let redis_commands_per_request = match (w.start.redis_calls, w.end.redis_calls) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / requests as f64),
        _ => None,
    };
    let requests_per_replica = w
        .end
        .replica_requests
        .iter()
        .zip(&w.start.replica_requests)
        .map(|(b, a)| b.saturating_sub(*a))
        .collect();
    let redis_bytes_per_user = match (start_memory, w.end.redis_used_memory) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / plan.setup.users as f64),
        _ => None,
    };
    let peak_memory = peak_memory(&target.pids).await;
    let errors_by_status = taken.errors_by_status();
    let bottleneck = if target.cpu_visible {
        bottleneck(
            &cpu_cores,
            plan,
            Limits {
                lb_workers: target.lb_workers,
                replica_workers: target.replica_workers,
                loadgen_threads: loadgen_threads(),
            },
            // Redis held back matters only to requests that ask it: through compose, its
            // container's health check (redis-cli, every second) alone used a 0.02-CPU budget
            // in most quota periods while token reads, which never ask Redis, ran on.
            window
                .store_throttled
                .filter(|_| redis_commands_per_request.is_none_or(|c| c >= ASKS_STORE)),
        )
    } else {
        None
    };
    let open_model = taken.open_model(rps);
    let bottleneck = bottleneck.or_else(|| {
        // Nothing saturated: in a closed loop the users' number set the pace; at a fixed
        // rate the schedule did, unless requests had to wait for a free connection.
        let waited = open_model.as_ref().is_none_or(|o| {
            o.late_starts as f64 > LATE_SHARE * requests as f64
                && plan
                    .setup
                    .open
                    .is_some_and(|l| rps < crate::model::MIN_ACHIEVED * l.offered_rps)
        });
        (target.cpu_visible && waited).then_some(Bottleneck::Concurrency)
    });
    let mut run = Run {
        experiment: plan.experiment,
        round: plan.round,
        fault: w.fault,
        timeline: taken.timeline(),
        timeline_step_s: recorder::TIMELINE_STEP_S,
        requests_by_route: taken.requests_by_route(),
        users_logged_out: Some(taken.users_logged_out()),
        server: target.server,
        scenario: plan.scenario,
        replicas: plan.replicas,
        setup: plan.setup.clone(),
        duration_s: secs,
        rps,
        requests,
        errors: errors_by_status.values().sum(),
        errors_by_status,
        latency_ms: taken.latency(),
        latency_ms_by_route: taken.latency_by_route(),
        redis_commands_per_request,
        requests_per_replica,
        bottleneck,
        cpu_us_per_request: cpu_us,
        cpu_cores_used: cpu_cores,
        peak_memory_bytes: peak_memory,
        redis_bytes_per_user,
        credential_bytes,
        cpus_per_replica: plan.cpus_per_replica,
        redis_throttled: window.store_throttled,
        oversubscribed: plan.oversubscribed,
        store_rtt_ms: target.store_rtt_ms,
        failover: window.failover,
        histograms: if plan.keep_histograms {
            Some(taken.histograms()?)
        } else {
            None
        },
        open_model,
        invalid: Vec::new(),
    };
    run.invalid = run.broken_rules();
    Ok((run, window.note))
}

/// What held throughput back. Saturated means at least 85% of what the component can use:
/// its budget for replicas, one core for Redis (it is single-threaded), its workers for
/// nginx, its threads for the load generator, and the machine for everyone together.
/// `None`: nothing was found saturated.
/// `store_throttled` is the share of its quota periods in which a budgeted Redis was held
/// back.
pub fn bottleneck(
    cores: &CpuPerRequest,
    plan: &RunPlan,
    limits: Limits,
    store_throttled: Option<f64>,
) -> Option<Bottleneck> {
    let Limits {
        lb_workers,
        replica_workers,
        loadgen_threads,
    } = limits;
    let cores = Cores {
        replicas: cores.replicas.unwrap_or(0.0),
        redis: cores.redis.unwrap_or(0.0),
        lb: cores.lb.unwrap_or(0.0),
        loadgen: cores.loadgen.unwrap_or(0.0),
    };
    let cpus = procfs::available_cpus() as f64;
    // A Redis on a budget is what its experiment is about: named first when saturated,
    // which is also when it was held back in most of its quota periods (small quotas have
    // long periods, and keep its measured CPU under 85% of the budget even then).
    // Each Redis (each primary of a cluster) runs its commands on one thread.
    let redis_nodes = plan.setup.redis_primaries.unwrap_or(1) as f64;
    if let Some(r) = plan.setup.redis_cpus {
        let held_back = store_throttled.is_some_and(|share| share >= STORE_THROTTLED);
        if held_back || cores.redis >= 0.85 * r.min(1.0) * redis_nodes {
            return Some(Bottleneck::Redis);
        }
    }
    let budget = plan.cpus_per_replica.map(|c| c * plan.replicas as f64);
    // Without a budget a replica can still use no more cores than it has workers.
    let most = budget.unwrap_or(f64::from(replica_workers) * plan.replicas as f64);
    if cores.replicas >= 0.85 * most.min(cpus) {
        return Some(Bottleneck::Replicas);
    }
    // Redis is single-threaded: one core is all it can use.
    if cores.redis >= 0.85 * redis_nodes {
        return Some(Bottleneck::Redis);
    }
    if cores.lb >= 0.85 * lb_workers as f64 {
        return Some(Bottleneck::Lb);
    }
    if cores.loadgen >= 0.85 * loadgen_threads as f64 {
        return Some(Bottleneck::Loadgen);
    }
    let total = cores.replicas + cores.redis + cores.lb + cores.loadgen;
    if total >= 0.85 * cpus {
        let others = [
            (Bottleneck::Loadgen, cores.loadgen),
            (Bottleneck::Lb, cores.lb),
            (Bottleneck::Redis, cores.redis),
        ];
        let (name, biggest) = others.iter().fold((Bottleneck::Machine, 0.0), |m, (n, c)| {
            if *c > m.1 {
                (*n, *c)
            } else {
                m
            }
        });
        // Without a budget the replicas share the machine with everyone else: if they got
        // the most of it, the run shows their capacity on this machine.
        if budget.is_none() && cores.replicas >= biggest {
            return Some(Bottleneck::Replicas);
        }
        return Some(if biggest > cores.replicas {
            name
        } else {
            Bottleneck::Machine
        });
    }
    None
}

/// Each component's peak memory: from /proc for processes, from the Engine for containers
/// (whose processes this machine may not see).
async fn peak_memory(pids: &Pids) -> PeakMemory {
    let rss = |p: &u32| procfs::peak_rss(*p).ok();
    let loadgen = rss(&pids.loadgen).unwrap_or(0);
    if let Some(c) = &pids.containers {
        let (replica_max, redis, lb) = c.peak_memory().await;
        return PeakMemory {
            replica_max,
            redis,
            lb,
            loadgen,
        };
    }
    PeakMemory {
        replica_max: pids.replicas.iter().filter_map(rss).max().unwrap_or(0),
        redis: pids.redis.iter().filter_map(rss).max().unwrap_or(0),
        lb: pids.lb.iter().filter_map(rss).sum(),
        loadgen,
    }
}

/// What each component can use at most, besides the replicas' budget.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub lb_workers: u32,
    pub replica_workers: u32,
    pub loadgen_threads: usize,
}

/// CPUs each component kept busy, all of them seen.
struct Cores {
    replicas: f64,
    redis: f64,
    lb: f64,
    loadgen: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cpus_per_replica: Option<f64>, replicas: u32) -> RunPlan {
        RunPlan {
            label: String::new(),
            scenario: Scenario::Read,
            experiment: None,
            setup: Setup::standard(1, None),
            user_prefix: String::new(),
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            refresh: RefreshPolicy::Every(10),
            replicas,
            round: 1,
            cpus_per_replica,
            oversubscribed: false,
            fault: None,
            keep_histograms: false,
        }
    }

    fn lim(lb_workers: u32, loadgen_threads: usize) -> Limits {
        Limits {
            lb_workers,
            replica_workers: 1,
            loadgen_threads,
        }
    }

    fn cores(replicas: f64, redis: f64, lb: f64, loadgen: f64) -> CpuPerRequest {
        CpuPerRequest {
            replicas: Some(replicas),
            redis: Some(redis),
            lb: Some(lb),
            loadgen: Some(loadgen),
        }
    }

    #[test]
    fn redis_held_back_by_its_budget_is_the_bottleneck() {
        let mut p = plan(Some(0.5), 4);
        p.setup.redis_cpus = Some(0.02);
        let c = cores(0.3, 0.015, 0.1, 0.1);
        assert_eq!(
            bottleneck(&c, &p, lim(1, 100), Some(0.9)),
            Some(Bottleneck::Redis)
        );
        assert_eq!(bottleneck(&c, &p, lim(1, 100), Some(0.1)), None);
    }

    #[test]
    fn redis_on_a_budget_is_saturated_at_its_budget() {
        let mut p = plan(Some(0.5), 4);
        p.setup.redis_cpus = Some(0.1);
        assert_eq!(
            bottleneck(&cores(0.3, 0.09, 0.1, 0.1), &p, lim(1, 100), None),
            Some(Bottleneck::Redis)
        );
    }

    #[test]
    fn replicas_at_their_budget_are_the_limit() {
        assert_eq!(
            bottleneck(
                &cores(0.39, 0.1, 0.3, 0.9),
                &plan(Some(0.1), 4),
                lim(1, 100),
                None
            ),
            Some(Bottleneck::Replicas)
        );
    }

    #[test]
    fn a_busy_redis_or_balancer_is_named() {
        assert_eq!(
            bottleneck(
                &cores(0.2, 0.95, 0.1, 0.1),
                &plan(Some(0.1), 4),
                lim(1, 100),
                None
            ),
            Some(Bottleneck::Redis)
        );
        assert_eq!(
            bottleneck(
                &cores(0.2, 0.1, 0.9, 0.1),
                &plan(Some(0.1), 4),
                lim(1, 100),
                None
            ),
            Some(Bottleneck::Lb)
        );
    }

    #[test]
    fn a_saturated_machine_names_its_biggest_consumer() {
        let cpus = procfs::available_cpus() as f64;
        let c = cores(0.1 * cpus, 0.05 * cpus, 0.2 * cpus, 0.6 * cpus);
        assert_eq!(
            bottleneck(&c, &plan(Some(0.5), 4), lim(100, 100), None),
            Some(Bottleneck::Loadgen)
        );
        // Without a budget, replicas that took the most of a busy machine are the limit.
        let c = cores(0.6 * cpus, 0.05 * cpus, 0.1 * cpus, 0.2 * cpus);
        assert_eq!(
            bottleneck(&c, &plan(None, 1), lim(100, 100), None),
            Some(Bottleneck::Replicas)
        );
    }

    #[test]
    fn a_load_generator_busy_on_its_threads_is_named() {
        assert_eq!(
            bottleneck(
                &cores(0.2, 0.1, 0.1, 0.9),
                &plan(Some(0.5), 4),
                lim(1, 1),
                None
            ),
            Some(Bottleneck::Loadgen)
        );
        assert_eq!(
            bottleneck(
                &cores(0.2, 0.1, 0.1, 0.9),
                &plan(Some(0.5), 4),
                lim(1, 4),
                None
            ),
            None
        );
    }

    #[test]
    fn nothing_saturated_is_no_bottleneck() {
        assert_eq!(
            bottleneck(
                &cores(0.1, 0.1, 0.1, 0.1),
                &plan(Some(0.5), 4),
                lim(1, 100),
                None
            ),
            None
        );
    }
}
