//! The experiment plan, as data built in one place: which groups to start (server,
//! replicas, how they are set up), what to run against each, and which fault to inject.
//! Every way of running (local, compose, an existing deployment) executes jobs from here.

use std::path::Path;
use std::time::Duration;

use crate::cli::Measure;
use crate::infra::topology::Balance;
use crate::measure::fault::FaultPlan;
use crate::measure::RunPlan;
use crate::model::{Experiment, FaultKind, Scenario, ServerKind, Variant};

/// The token server's leeway on `exp` (token-server/src/tokens.rs `LEEWAY_S`).
pub const LEEWAY_S: u64 = 30;

/// Fault experiments need time on both sides of the fault.
pub const FAULT_WINDOW_MIN: Duration = Duration::from_secs(9);

/// One group of replicas to start, and what to run against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub server: ServerKind,
    pub replicas: u32,
    pub scenarios: Vec<Scenario>,
    /// `None`: a run of the replica sweep.
    pub experiment: Option<Experiment>,
    pub variant: Variant,
    /// What to break during the window (a third of the way in).
    pub fault: Option<FaultKind>,
}

/// Experiments that need no load, only a few careful requests against fresh servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A real access token taken apart, and altered copies refused.
    TokenAnatomy,
    /// How long credentials outlive logout, with access tokens of `ttl_s` seconds.
    Revocation { ttl_s: u64 },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub probes: Vec<Probe>,
}

impl Job {
    fn sweep(server: ServerKind, replicas: u32, scenarios: Vec<Scenario>) -> Self {
        Self {
            server,
            replicas,
            scenarios,
            experiment: None,
            variant: Variant::Standard,
            fault: None,
        }
    }

    fn arm(e: Experiment, server: ServerKind, replicas: u32, variant: Variant) -> Self {
        Self {
            server,
            replicas,
            scenarios: vec![Scenario::Read],
            experiment: Some(e),
            variant,
            fault: None,
        }
    }

    /// `server scenario xN [variant]`.
    pub fn describe(&self, scenario: Scenario) -> String {
        let mut s = format!(
            "{} {} x{}",
            self.server.name(),
            scenario.name(),
            self.replicas
        );
        if let Some(e) = self.experiment {
            s.push_str(&format!(
                " [{}: {}]",
                e.name(),
                self.variant.describe(self.server)
            ));
        }
        s
    }

    /// The measured window: fault experiments get at least `FAULT_WINDOW_MIN`.
    pub fn window(&self, m: &Measure) -> Duration {
        if self.fault.is_some() {
            m.duration.0.max(FAULT_WINDOW_MIN)
        } else {
            m.duration.0
        }
    }

    /// How long one of its runs is planned to take (warm-up and window).
    pub fn planned_run_time(&self, m: &Measure) -> Duration {
        m.warmup.0 + self.window(m)
    }

    /// One run of this job.
    pub fn run_plan(
        &self,
        scenario: Scenario,
        m: &Measure,
        label: String,
        cpus_per_replica: Option<f64>,
        oversubscribed: bool,
    ) -> RunPlan {
        let duration = self.window(m);
        RunPlan {
            label,
            scenario,
            experiment: self.experiment,
            variant: self.variant,
            users: m.users,
            warmup: m.warmup.0,
            duration,
            refresh_every: m.refresh_every,
            replicas: self.replicas,
            cpus_per_replica,
            oversubscribed,
            fault: self.fault.map(|kind| FaultPlan {
                kind,
                at: duration / 3,
                lasts: duration / 3,
            }),
        }
    }
}

/// The scenarios `server` runs, of those wanted.
pub fn scenarios_for(server: ServerKind, wanted: &[Scenario]) -> Vec<Scenario> {
    wanted
        .iter()
        .copied()
        .filter(|s| s.applies_to(server))
        .collect()
}

/// Every group at every replica count, with every scenario that applies to it.
pub fn sweep(servers: &[ServerKind], replicas: &[u32], scenarios: &[Scenario]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for &n in replicas {
        for &server in servers {
            let scenarios = scenarios_for(server, scenarios);
            if !scenarios.is_empty() {
                jobs.push(Job::sweep(server, n, scenarios));
            }
        }
    }
    jobs
}

/// The experiments' jobs and probes, at replica counts taken from the sweep's.
pub fn experiments(wanted: &[Experiment], replicas: &[u32], quick: bool) -> Plan {
    // Experiments run at the smallest swept count; those about replicas disagreeing need
    // two at least (with one, every request lands where its session is).
    let smallest = replicas.iter().copied().min().unwrap_or(1);
    let smallest_shared = replicas
        .iter()
        .copied()
        .filter(|n| *n > 1)
        .min()
        .unwrap_or(2);
    let mut plan = Plan::default();
    let (session, token) = (ServerKind::Session, ServerKind::Token);
    for &e in wanted {
        match e {
            Experiment::SharedStore => {
                for v in [
                    Variant::MemoryStore,
                    Variant::MemoryStoreSticky,
                    Variant::Standard,
                ] {
                    plan.jobs.push(Job::arm(e, session, smallest_shared, v));
                }
            }
            Experiment::RedisOutage => {
                for server in [session, token] {
                    plan.jobs.push(Job {
                        scenarios: vec![Scenario::Refresh],
                        fault: Some(FaultKind::FreezeRedis),
                        ..Job::arm(e, server, smallest, Variant::Standard)
                    });
                }
            }
            Experiment::ReplicaLoss => {
                for (server, v) in [
                    (session, Variant::MemoryStoreSticky),
                    (session, Variant::Standard),
                    (token, Variant::Standard),
                ] {
                    plan.jobs.push(Job {
                        fault: Some(FaultKind::KillReplica),
                        ..Job::arm(e, server, smallest_shared, v)
                    });
                }
            }
            Experiment::Revocation => {
                // What the denylist costs: the token read scenario with it switched on.
                plan.jobs
                    .push(Job::arm(e, token, smallest, Variant::Denylist));
                plan.probes.push(Probe::Revocation {
                    ttl_s: if quick { 2 } else { 10 },
                });
            }
            Experiment::TokenAnatomy => plan.probes.push(Probe::TokenAnatomy),
            Experiment::Signing => {
                plan.jobs.push(Job::arm(e, token, smallest, Variant::Eddsa));
            }
        }
    }
    // Token anatomy first: its answer does not depend on anything else.
    plan.probes
        .sort_by_key(|p| !matches!(p, Probe::TokenAnatomy));
    plan
}

/// How a variant's servers are set up: extra environment for every replica, and how nginx
/// balances. `ed25519_pem` is the key file every EdDSA replica shares.
pub fn setup(variant: Variant, ed25519_pem: &Path) -> (Vec<(String, String)>, Balance) {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    match variant {
        Variant::Standard => (Vec::new(), Balance::RoundRobin),
        Variant::MemoryStore => (env(&[("SESSION_STORE", "memory")]), Balance::RoundRobin),
        Variant::MemoryStoreSticky => (env(&[("SESSION_STORE", "memory")]), Balance::Sticky),
        Variant::Eddsa => (
            env(&[
                ("JWT_ALG", "EdDSA"),
                ("JWT_PRIVATE_KEY_FILE", &ed25519_pem.display().to_string()),
            ]),
            Balance::RoundRobin,
        ),
        Variant::Denylist => (env(&[("ACCESS_DENYLIST", "true")]), Balance::RoundRobin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_is_its_own_group() {
        assert_eq!(
            scenarios_for(ServerKind::Public, &Scenario::ALL),
            vec![Scenario::Public]
        );
        assert_eq!(
            scenarios_for(ServerKind::Token, &Scenario::ALL),
            vec![Scenario::Read, Scenario::Login, Scenario::Refresh]
        );
        assert!(scenarios_for(ServerKind::Public, &[Scenario::Read]).is_empty());
    }

    #[test]
    fn the_sweep_runs_every_group_at_every_count() {
        let jobs = sweep(&ServerKind::ALL, &[1, 2], &Scenario::ALL);
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs.iter().map(|j| j.scenarios.len()).sum::<usize>(), 14);
        assert!(jobs
            .iter()
            .all(|j| j.experiment.is_none() && j.fault.is_none()));
    }

    #[test]
    fn experiments_pick_their_replica_counts_and_faults() {
        let all = [
            Experiment::SharedStore,
            Experiment::RedisOutage,
            Experiment::ReplicaLoss,
            Experiment::Revocation,
            Experiment::TokenAnatomy,
            Experiment::Signing,
        ];
        let plan = experiments(&all, &[1, 4, 2], false);
        let of = |e| plan.jobs.iter().filter(move |j| j.experiment == Some(e));
        assert!(of(Experiment::SharedStore).all(|j| j.replicas == 2));
        assert!(of(Experiment::ReplicaLoss)
            .all(|j| j.replicas == 2 && j.fault == Some(FaultKind::KillReplica)));
        assert!(of(Experiment::RedisOutage).all(|j| j.replicas == 1
            && j.fault == Some(FaultKind::FreezeRedis)
            && j.scenarios == [Scenario::Refresh]));
        assert_eq!(of(Experiment::SharedStore).count(), 3);
        assert_eq!(
            plan.probes,
            vec![Probe::TokenAnatomy, Probe::Revocation { ttl_s: 10 }]
        );
        // With only one replica swept, the experiments about replicas still get two.
        let one = experiments(&[Experiment::SharedStore], &[1], true);
        assert!(one.jobs.iter().all(|j| j.replicas == 2));
    }

    #[test]
    fn a_fault_comes_a_third_of_the_way_into_a_long_enough_window() {
        let m = Measure {
            duration: crate::cli::Span(Duration::from_secs(3)),
            ..crate::cli::Measure::defaults()
        };
        let job = Job {
            fault: Some(FaultKind::FreezeRedis),
            ..Job::arm(
                Experiment::RedisOutage,
                ServerKind::Token,
                1,
                Variant::Standard,
            )
        };
        let plan = job.run_plan(Scenario::Refresh, &m, String::new(), None, false);
        assert_eq!(plan.duration, FAULT_WINDOW_MIN);
        let f = plan.fault.unwrap();
        assert_eq!(
            (f.at, f.lasts),
            (Duration::from_secs(3), Duration::from_secs(3))
        );
    }

    #[test]
    fn each_variant_is_set_up_by_its_environment() {
        let pem = Path::new("/tmp/k.pem");
        let (env, balance) = setup(Variant::MemoryStoreSticky, pem);
        assert_eq!(env, vec![("SESSION_STORE".into(), "memory".into())]);
        assert_eq!(balance, Balance::Sticky);
        let (env, _) = setup(Variant::Eddsa, pem);
        assert!(env.contains(&("JWT_PRIVATE_KEY_FILE".into(), "/tmp/k.pem".into())));
        assert!(setup(Variant::Standard, pem).0.is_empty());
    }
}
