//! One measured run: goose drives the users, the window opens once every user is set up
//! and the warm-up has passed, and everything is read from both edges of the window.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::cli::{Scenario, ServerKind};
use crate::probe::{snapshot, Pids, Snapshot};
use crate::recorder::RECORDER;
use crate::results::{CpuPerRequest, PeakMemory, Run};
use crate::scenarios;

/// Where and what to measure.
pub struct Target<'a> {
    pub url: String,
    /// Switched on for the measured window only.
    pub budget: Option<&'a crate::cpu_budget::CpuBudget>,
    pub server: ServerKind,
    pub pids: Pids,
    pub redis_url: Option<String>,
    pub replica_urls: Vec<String>,
    pub lb_workers: u32,
}

pub struct Plan {
    pub label: String,
    pub scenario: Scenario,
    pub users: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub refresh_every: u32,
    pub replicas: u32,
    pub cpus_per_replica: Option<f64>,
    pub oversubscribed: bool,
    /// Something to break during the window.
    pub fault: Option<Fault>,
}

/// A fault injected into the measured window, by signal to a process this tool started.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// When, after the window opens.
    pub at: Duration,
    /// How long a freeze lasts (a killed process stays dead).
    pub lasts: Duration,
}

#[derive(Debug, Clone, Copy)]
pub enum FaultKind {
    /// SIGSTOP, then SIGCONT: Redis stops answering without closing connections.
    FreezeRedis(u32),
    /// SIGKILL: a replica crashes.
    KillReplica(u32),
}

impl Fault {
    pub fn describe(&self) -> String {
        let from = self.at.as_secs_f64();
        match self.kind {
            FaultKind::FreezeRedis(_) => format!(
                "Redis frozen from {from:.0} s to {:.0} s",
                from + self.lasts.as_secs_f64()
            ),
            FaultKind::KillReplica(_) => format!("replica 1 killed at {from:.0} s"),
        }
    }

    fn signal(sig: &str, pid: u32) {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
    }

    fn begin(&self) {
        match self.kind {
            FaultKind::FreezeRedis(pid) => Self::signal("STOP", pid),
            FaultKind::KillReplica(pid) => Self::signal("KILL", pid),
        }
    }

    fn end(&self) {
        if let FaultKind::FreezeRedis(pid) = self.kind {
            Self::signal("CONT", pid);
        }
    }
}

fn goose_attack(target: &Target<'_>, plan: &Plan, run_time_s: u64) -> anyhow::Result<GooseAttack> {
    let users = plan.users.to_string();
    let run_time = format!("{run_time_s}s");
    let args = [
        "--host",
        &target.url,
        "--users",
        &users,
        "--increase-rate",
        &users,
        "--run-time",
        &run_time,
        "--timeout",
        "10",
        "--no-print-metrics",
        "--no-error-summary",
        "--no-telnet",
        "--quiet",
    ];
    let config = GooseConfiguration::parse_args_default(&args)
        .map_err(|e| anyhow::anyhow!("goose configuration: {e}"))?;
    Ok(GooseAttack::initialize_with_config(config)?
        .register_scenario(scenarios::build(plan.scenario)))
}

struct Window {
    start: Snapshot,
    end: Snapshot,
    note: Option<String>,
}

/// Waits for set-up and warm-up, then measures until `duration` passed or goose is about
/// to stop, printing progress.
async fn window(
    target: &Target<'_>,
    plan: &Plan,
    http: &reqwest::Client,
    goose_ends: Instant,
) -> anyhow::Result<Window> {
    let began = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let total = plan.warmup + plan.duration;
    let mut last_print = Instant::now();
    let mut last_sent = 0u64;
    let progress = |phase: &str, sent: &mut u64, at: &mut Instant| {
        let now_sent = RECORDER.sent.load(Ordering::Relaxed);
        let rate = (now_sent - *sent) as f64 / at.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "{}  {phase} {:>5.1}s/{:.0}s  {:>8.0} req/s",
            plan.label,
            began.elapsed().as_secs_f64(),
            total.as_secs_f64(),
            rate
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        *sent = now_sent;
        *at = Instant::now();
    };
    // Warm-up: wait for the time and for every user's set-up.
    loop {
        let ready = RECORDER.ready_users.load(Ordering::SeqCst) >= plan.users as usize;
        if ready && began.elapsed() >= plan.warmup {
            break;
        }
        if goose_ends.saturating_duration_since(Instant::now()) < Duration::from_secs(2) {
            anyhow::bail!(
                "only {} of {} users finished signing up and logging in before the run ended",
                RECORDER.ready_users.load(Ordering::SeqCst),
                plan.users
            );
        }
        if last_print.elapsed() >= every {
            progress("warm-up  ", &mut last_sent, &mut last_print);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let late = began.elapsed().saturating_sub(plan.warmup);
    if let Some(b) = target.budget {
        b.limit(true)?;
        // Let the throttled replicas settle before the first reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let start = snapshot(
        http,
        &target.pids,
        target.redis_url.as_deref(),
        &target.replica_urls,
    )
    .await;
    RECORDER.open(true);
    let until = (start.at + plan.duration).min(goose_ends - Duration::from_millis(500));
    let (mut begun, mut ended) = (false, false);
    while Instant::now() < until {
        if let Some(f) = &plan.fault {
            let t = start.at.elapsed();
            if !begun && t >= f.at {
                f.begin();
                begun = true;
            }
            if begun && !ended && t >= f.at + f.lasts {
                f.end();
                ended = true;
            }
        }
        tokio::time::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        )
        .await;
        if last_print.elapsed() >= every {
            progress("measuring", &mut last_sent, &mut last_print);
        }
    }
    if let (Some(f), true, false) = (&plan.fault, begun, ended) {
        f.end();
    }
    RECORDER.open(false);
    let end = snapshot(
        http,
        &target.pids,
        target.redis_url.as_deref(),
        &target.replica_urls,
    )
    .await;
    // The next run's set-up (sign-ups and logins) is not measured: it gets the whole machine.
    if let Some(b) = target.budget {
        b.limit(false)?;
    }
    if tty {
        eprint!("\r\x1b[2K");
    }
    let note = (late > Duration::from_millis(500)).then(|| {
        format!(
            "set-up outlasted the warm-up by {late:.1?}; the window was shortened to fit the run"
        )
    });
    Ok(Window { start, end, note })
}

pub async fn measure(target: &Target<'_>, plan: &Plan) -> anyhow::Result<(Run, Option<String>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let credential_bytes =
        crate::probes::credential_bytes(&http, &target.url, target.server).await?;
    RECORDER.reset();
    scenarios::configure(scenarios::RunConfig {
        server: target.server,
        refresh_every: plan.refresh_every,
    });
    // Goose stops on whole seconds; leave a second of load after the window closes.
    let run_time_s = (plan.warmup + plan.duration).as_secs_f64().ceil() as u64 + 2;
    let attack = goose_attack(target, plan, run_time_s)?;
    let goose_ends = Instant::now() + Duration::from_secs(run_time_s);
    let start_memory = match &target.redis_url {
        Some(url) => crate::probe::redis_info(url, "memory")
            .await
            .ok()
            .and_then(|m| crate::redis_info::field(&m, "used_memory")),
        None => None,
    };
    let (goose_result, window) =
        tokio::join!(attack.execute(), window(target, plan, &http, goose_ends));
    goose_result.map_err(|e| anyhow::anyhow!("goose: {e}"))?;
    let window = window?;
    let seen = RECORDER.take();
    let requests = seen.requests();
    anyhow::ensure!(
        requests > 0,
        "{}: no request was answered in the measured window",
        plan.label
    );

    let w = &window;
    let secs = w.end.at.duration_since(w.start.at).as_secs_f64();
    let per_request = |a: f64, b: f64| (b - a) * 1e6 / requests as f64;
    let cores = |a: f64, b: f64| (b - a) / secs;
    let cpu_us = CpuPerRequest {
        replicas: per_request(w.start.cpu_replicas, w.end.cpu_replicas),
        redis: per_request(w.start.cpu_redis, w.end.cpu_redis),
        lb: per_request(w.start.cpu_lb, w.end.cpu_lb),
        loadgen: per_request(w.start.cpu_loadgen, w.end.cpu_loadgen),
    };
    let cpu_cores = CpuPerRequest {
        replicas: cores(w.start.cpu_replicas, w.end.cpu_replicas),
        redis: cores(w.start.cpu_redis, w.end.cpu_redis),
        lb: cores(w.start.cpu_lb, w.end.cpu_lb),
        loadgen: cores(w.start.cpu_loadgen, w.end.cpu_loadgen),
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
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / plan.users as f64),
        _ => None,
    };
    let peak = |pids: &[u32]| {
        pids.iter()
            .filter_map(|p| crate::procfs::peak_rss(*p).ok())
            .max()
            .unwrap_or(0)
    };
    let lb_mem: u64 = target
        .pids
        .lb
        .iter()
        .filter_map(|p| crate::procfs::peak_rss(*p).ok())
        .sum();
    let errors_by_status = seen.errors_by_status();
    let timeline = if plan.fault.is_some() {
        seen.timeline
            .iter()
            .map(
                |((t_s, route), (ok, failed))| crate::results::TimelinePoint {
                    t_s: *t_s,
                    route: route.clone(),
                    ok: *ok,
                    failed: *failed,
                },
            )
            .collect()
    } else {
        Vec::new()
    };
    let run = Run {
        fault: plan.fault.as_ref().map(Fault::describe),
        timeline,
        experiment: None,
        variant: None,
        server: target.server.name().into(),
        scenario: plan.scenario.name().into(),
        replicas: plan.replicas,
        users: plan.users,
        duration_s: secs,
        rps: requests as f64 / secs,
        requests,
        errors: errors_by_status.values().sum(),
        errors_by_status,
        latency_ms: seen.latency(),
        latency_ms_by_route: seen.latency_by_route(),
        redis_commands_per_request,
        requests_per_replica,
        bottleneck: bottleneck(&cpu_cores, plan, target.lb_workers),
        cpu_us_per_request: cpu_us,
        cpu_cores_used: cpu_cores,
        peak_memory_bytes: PeakMemory {
            replica_max: peak(&target.pids.replicas),
            redis: target.pids.redis.map(|p| peak(&[p])).unwrap_or(0),
            lb: lb_mem,
            loadgen: peak(&[target.pids.loadgen]),
        },
        redis_bytes_per_user,
        credential_bytes,
        cpus_per_replica: plan.cpus_per_replica,
        oversubscribed: plan.oversubscribed,
    };
    Ok((run, window.note))
}

/// What held throughput back, when it was not the replicas. Saturated means at least 85%
/// of what the component can use: its budget for replicas, one core for Redis (it is
/// single-threaded), its workers for nginx, and the machine for everyone together.
pub fn bottleneck(cores: &CpuPerRequest, plan: &Plan, lb_workers: u32) -> Option<String> {
    let cpus = crate::procfs::available_cpus() as f64;
    let budget = plan.cpus_per_replica.map(|c| c * plan.replicas as f64);
    if let Some(b) = budget {
        if cores.replicas >= 0.85 * b.min(cpus) {
            return None;
        }
    }
    if cores.redis >= 0.85 {
        return Some("redis".into());
    }
    if cores.lb >= 0.85 * lb_workers as f64 {
        return Some("lb".into());
    }
    let total = cores.replicas + cores.redis + cores.lb + cores.loadgen;
    if total >= 0.85 * cpus {
        let others = [
            ("loadgen", cores.loadgen),
            ("lb", cores.lb),
            ("redis", cores.redis),
        ];
        let (name, biggest) = others
            .iter()
            .fold(("", 0.0), |m, (n, c)| if *c > m.1 { (*n, *c) } else { m });
        // Without a budget the replicas share the machine with everyone else: if they got
        // the most of it, the run shows their capacity on this machine.
        if budget.is_none() && cores.replicas >= biggest {
            return None;
        }
        return Some(if biggest > cores.replicas {
            name.into()
        } else {
            "machine".into()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cpus_per_replica: Option<f64>, replicas: u32) -> Plan {
        Plan {
            label: String::new(),
            scenario: Scenario::Read,
            users: 1,
            warmup: Duration::ZERO,
            duration: Duration::ZERO,
            refresh_every: 10,
            replicas,
            cpus_per_replica,
            oversubscribed: false,
            fault: None,
        }
    }

    fn cores(replicas: f64, redis: f64, lb: f64, loadgen: f64) -> CpuPerRequest {
        CpuPerRequest {
            replicas,
            redis,
            lb,
            loadgen,
        }
    }

    #[test]
    fn replicas_at_their_budget_are_the_limit() {
        assert_eq!(
            bottleneck(&cores(0.39, 0.1, 0.3, 0.9), &plan(Some(0.1), 4), 1),
            None
        );
    }

    #[test]
    fn a_busy_redis_or_balancer_is_named() {
        assert_eq!(
            bottleneck(&cores(0.2, 0.95, 0.1, 0.1), &plan(Some(0.1), 4), 1).as_deref(),
            Some("redis")
        );
        assert_eq!(
            bottleneck(&cores(0.2, 0.1, 0.9, 0.1), &plan(Some(0.1), 4), 1).as_deref(),
            Some("lb")
        );
    }

    #[test]
    fn a_saturated_machine_names_its_biggest_consumer() {
        let cpus = crate::procfs::available_cpus() as f64;
        let c = cores(0.1 * cpus, 0.05 * cpus, 0.2 * cpus, 0.6 * cpus);
        let got = bottleneck(&c, &plan(Some(0.5), 4), 100);
        assert_eq!(got.as_deref(), Some("loadgen"));
    }

    #[test]
    fn nothing_saturated_is_no_bottleneck() {
        assert_eq!(
            bottleneck(&cores(0.1, 0.1, 0.1, 0.1), &plan(Some(0.5), 4), 1),
            None
        );
    }
}
