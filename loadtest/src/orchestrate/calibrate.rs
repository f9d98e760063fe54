//! Choosing the CPU budget of each replica from what a request costs here, so that a
//! sweep's every run is bound by the replicas alone: the question "does the model scale
//! with replicas?" is answered only when nothing else (the load generator, nginx, Redis,
//! the machine) runs out first.
//!
//! A short unthrottled run per group gives each component's CPU per request. At the top
//! of the sweep, N replicas held to c CPUs each serve at most R = N c / (replica CPU per
//! request); everything else must then still have room at R. The budget is the largest c
//! for which it does, for every group.

use std::time::Duration;

use super::plan::Job;
use super::{Deployment, Journal};
use crate::cli::{Effective as Measure, Span};
use crate::measure::measure;
use crate::model::{self, Calibration, CalibrationRun, ServerKind};

/// Extra warm-up for the first run of a process: it signs every simulated user up (an
/// argon2 hash each, then another to log in), and without room for that the window could
/// not open before goose's fixed run time ends (64 users took over 3 s here).
const SIGN_UP_ROOM: Duration = Duration::from_secs(3);

/// What the budget must leave room beside at the top of the sweep.
pub struct Room {
    pub max_replicas: u32,
    pub machine_cpus: usize,
    /// nginx's worker processes.
    pub lb_workers: u32,
}

/// The calibration, on any deployment (processes here, or containers through compose):
/// measures what a request of each group's main scenario costs with no budget on one
/// replica, chooses the budget per replica that leaves `room` its margin, records it in
/// `journal`, and returns it.
pub(super) async fn calibrate(
    deployment: &mut impl Deployment,
    servers: &[ServerKind],
    m: &Measure,
    room: Room,
    journal: &mut Journal,
) -> anyhow::Result<f64> {
    let runs = costs(deployment, servers, m).await?;
    let chosen = choose(
        runs,
        room.max_replicas,
        room.machine_cpus,
        room.lb_workers,
        crate::measure::loadgen_threads(),
    )
    .ok_or_else(|| anyhow::anyhow!("the calibration measured nothing"))?;
    let c = chosen.cpus_per_replica;
    eprintln!(
        "calibration: {c} CPU per replica ({} sets it: up to {:.0} req/s at {} replicas \
         leave the load generator, nginx, Redis and the machine their margin)",
        chosen.set_by.name(),
        chosen.max_rps,
        room.max_replicas
    );
    journal.update(|r| r.calibration = Some(chosen))?;
    Ok(c)
}

/// Each group's costs per request, unbudgeted, one replica: a short window each, since the
/// costs per request settle within two seconds.
async fn costs(
    deployment: &mut impl Deployment,
    servers: &[ServerKind],
    m: &Measure,
) -> anyhow::Result<Vec<CalibrationRun>> {
    let mut runs = Vec::new();
    for &server in servers {
        eprintln!(
            "calibration: what a {} request costs here ...",
            server.name()
        );
        let job = Job::calibration(server, m.users);
        let room = if runs.is_empty() {
            SIGN_UP_ROOM
        } else {
            Duration::ZERO
        };
        let short = Measure {
            duration: Span(m.duration.0.min(Duration::from_secs(2))),
            warmup: Span(m.warmup.0 + room),
            ..m.clone()
        };
        let plan = job.run_plan(
            server.main_scenario(),
            &short,
            format!("calibration {}", server.name()),
            None,
            false,
        );
        let stage = deployment.stage(&job).await?;
        let (run, _) = measure(&stage.target, &stage.budgets, &plan).await?;
        runs.push(CalibrationRun {
            server,
            rps: run.rps,
            cpu_us_per_request: run.cpu_us_per_request,
        });
    }
    Ok(runs)
}

/// What the whole system may use of the machine at the top of the sweep: the bottleneck
/// rule flags a machine 85% busy, so this leaves a margin for the costs' noise.
pub const MACHINE_SHARE: f64 = 0.7;
/// What the load generator may use of its threads (flagged at 85%).
pub const LOADGEN_SHARE: f64 = 0.6;
/// What nginx may use of its workers, and Redis of its one core.
pub const OTHER_SHARE: f64 = 0.6;
/// Budgets are whole hundredths of a CPU, and never below this.
pub const MIN_CPUS: f64 = 0.02;

/// The budget per replica for a sweep up to `max_replicas`, from the calibration runs.
/// `None` when no run measured anything.
pub fn choose(
    runs: Vec<CalibrationRun>,
    max_replicas: u32,
    machine_cpus: usize,
    lb_workers: u32,
    loadgen_threads: usize,
) -> Option<Calibration> {
    let n = f64::from(max_replicas.max(1));
    let mut best: Option<(f64, f64, usize)> = None;
    for (i, r) in runs.iter().enumerate() {
        let c = &r.cpu_us_per_request;
        let us = |v: Option<f64>| v.unwrap_or(0.0).max(0.0) / 1e6;
        let (rep, redis, lb, lg) = (us(c.replicas), us(c.redis), us(c.lb), us(c.loadgen));
        if rep <= 0.0 {
            continue;
        }
        let limit = |share: f64, per: f64| {
            if per > 0.0 {
                share / per
            } else {
                f64::INFINITY
            }
        };
        let max_rps = [
            limit(MACHINE_SHARE * machine_cpus as f64, rep + redis + lb + lg),
            limit(LOADGEN_SHARE * loadgen_threads as f64, lg),
            limit(OTHER_SHARE * f64::from(lb_workers), lb),
            limit(OTHER_SHARE, redis),
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        let cpus = max_rps * rep / n;
        if best.is_none_or(|(b, _, _)| cpus < b) {
            best = Some((cpus, max_rps, i));
        }
    }
    let (cpus, max_rps, i) = best?;
    // (The epsilon keeps 0.9 from flooring to 0.89 through rounding error.)
    let cpus = ((cpus * 100.0 + 1e-6).floor() / 100.0).max(MIN_CPUS);
    Some(Calibration {
        set_by: runs[i].server,
        runs,
        max_replicas,
        machine_cpus,
        machine_share: MACHINE_SHARE,
        loadgen_share: LOADGEN_SHARE,
        max_rps,
        cpus_per_replica: cpus,
    })
}

/// Redis's budget in experiment `store-bound`: what half the largest replica count's worth of
/// session reads needs of it (two replicas' worth in a sweep to 4), so the session model's
/// plateau falls inside the sweep. `ratio` is Redis's CPU per session read over the
/// replica's, as measured; `cpus_per_replica` the replicas' budget (one CPU when they have
/// none).
pub fn store_budget(ratio: Option<f64>, cpus_per_replica: Option<f64>, max_replicas: u32) -> f64 {
    // Without a measurement: a session read costs Redis about a quarter of what it costs
    // the replica (a GET against cookie parsing, HMAC and JSON).
    let ratio = ratio.unwrap_or(0.25);
    let replicas_worth = (f64::from(max_replicas) / 2.0).max(0.5);
    let cpus = replicas_worth * cpus_per_replica.unwrap_or(1.0) * ratio;
    ((cpus * 100.0).round() / 100.0).clamp(MIN_CPUS, 0.5)
}

/// Redis's CPU per request against the replica's, for session reads: from the calibration,
/// else from the sweep's smallest session read.
pub fn session_redis_ratio(results: &model::Results) -> Option<f64> {
    let from = |c: &model::CpuPerRequest| {
        Some(c.redis? / c.replicas?).filter(|x| x.is_finite() && *x > 0.0)
    };
    results
        .calibration
        .as_ref()
        .and_then(|c| c.runs.iter().find(|r| r.server == ServerKind::Session))
        .and_then(|r| from(&r.cpu_us_per_request))
        .or_else(|| {
            results
                .sweep(ServerKind::Session, model::Scenario::Read)
                .first()
                .and_then(|r| from(&r.cpu_us_per_request))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CpuPerRequest, ServerKind};

    fn run(server: ServerKind, rep: f64, redis: f64, lb: f64, lg: f64) -> CalibrationRun {
        CalibrationRun {
            server,
            rps: 1000.0,
            cpu_us_per_request: CpuPerRequest {
                replicas: Some(rep),
                redis: Some(redis),
                lb: Some(lb),
                loadgen: Some(lg),
            },
        }
    }

    #[test]
    fn the_cheapest_group_sets_the_budget() {
        // 2 CPUs, 4 replicas. Public: 40 us in the replica, 120 us in all: the machine
        // drives 1.4 / 120e-6 = 11,667 req/s, i.e. 4 c = 11,667 x 40e-6, c = 0.116.
        let runs = vec![
            run(ServerKind::Session, 120.0, 30.0, 40.0, 40.0),
            run(ServerKind::Token, 60.0, 0.0, 40.0, 40.0),
            run(ServerKind::Public, 40.0, 0.0, 40.0, 40.0),
        ];
        let c = choose(runs, 4, 2, 1, 1).unwrap();
        assert_eq!(c.set_by, ServerKind::Public);
        assert_eq!(c.cpus_per_replica, 0.11);
        // At that budget, no component of any group passes its share at the top of the sweep.
        for r in &c.runs {
            let u = &r.cpu_us_per_request;
            let rps = 4.0 * c.cpus_per_replica / (u.replicas.unwrap() / 1e6);
            let total = rps
                * (u.replicas.unwrap() + u.redis.unwrap() + u.lb.unwrap() + u.loadgen.unwrap())
                / 1e6;
            assert!(
                total <= MACHINE_SHARE * 2.0 + 1e-9,
                "{:?}: {total}",
                r.server
            );
            assert!(rps * u.loadgen.unwrap() / 1e6 <= LOADGEN_SHARE + 1e-9);
        }
    }

    #[test]
    fn a_busy_load_generator_lowers_the_budget() {
        let cheap_machine = choose(
            vec![run(ServerKind::Token, 60.0, 0.0, 10.0, 10.0)],
            4,
            64,
            16,
            1,
        )
        .unwrap();
        // Only the load generator's one thread binds: 0.6 / 10e-6 = 60,000 req/s.
        assert!((cheap_machine.max_rps - 60_000.0).abs() < 1.0);
        assert_eq!(cheap_machine.cpus_per_replica, 0.9);
        assert!(choose(Vec::new(), 4, 2, 1, 1).is_none());
    }

    #[test]
    fn redis_gets_two_replicas_worth_of_session_reads() {
        assert_eq!(store_budget(Some(0.2), Some(0.2), 4), 0.08);
        assert_eq!(store_budget(None, Some(0.4), 4), 0.2);
        assert_eq!(
            store_budget(Some(0.2), Some(0.2), 2),
            0.04,
            "one replica's worth"
        );
        assert_eq!(store_budget(None, Some(0.01), 4), MIN_CPUS);
    }
}
