//! The experiment plan, as data built in one place: which groups to start (server,
//! replicas, how they are set up), what to run against each, and which fault to inject.
//! Every way of running (local, compose, an existing deployment) executes jobs from here.

use std::path::Path;
use std::time::Duration;

use crate::cli::Effective as Measure;
use crate::infra::topology::Balance;
use crate::measure::fault::FaultPlan;
use crate::measure::{RefreshPolicy, RunPlan};
use crate::model::{Experiment, FaultKind, Scenario, ServerKind, Setup, Variant};

/// The token server's leeway on `exp` (token-server/src/tokens.rs `LEEWAY_S`).
pub const LEEWAY_S: u64 = 30;

/// Fault experiments need time on both sides of the fault.
pub const FAULT_WINDOW_MIN: Duration = Duration::from_secs(7);

/// A primary's death needs more: the replica takes over 2-3 s after the kill, and the
/// servers' store client takes a moment more; the window must show whether they recover.
pub const FAILOVER_WINDOW_MIN: Duration = Duration::from_secs(15);

/// Access-token lifetimes (seconds) of experiment `access-token-lifetime`; each run's
/// window lasts at least two of the longest, so every user refreshes in it.
pub const ACCESS_TTLS_S: [u64; 3] = [1, 2, 3];
pub const ACCESS_TTLS_QUICK_S: [u64; 2] = [1, 2];

/// Access-token lifetime of the probes about revocation and authority: short, so the probes
/// end, yet long enough to tell "at once" from "at expiry".
pub const PROBE_TTL_S: u64 = 3;
pub const PROBE_TTL_QUICK_S: u64 = 2;

/// Users logged in at each step of experiment `server-memory` (the per-user figure is the
/// slope between the two).
pub const MEMORY_USERS: (u32, u32) = (80, 240);
pub const MEMORY_USERS_QUICK: (u32, u32) = (20, 60);

/// One group of replicas to start, and what to run against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub server: ServerKind,
    pub replicas: u32,
    pub scenarios: Vec<Scenario>,
    /// `None`: a run of the replica sweep.
    pub experiment: Option<Experiment>,
    /// What to break during the window (a third of the way in).
    pub fault: Option<FaultKind>,
    /// Which repetition of its sweep point.
    pub round: u32,
    /// The servers, the store and the load, as its runs will record them.
    pub setup: Setup,
}

/// The Redis Cluster a job's store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    pub primaries: u32,
    pub replicas_each: u32,
}

impl ClusterShape {
    /// `setup`'s cluster, when its store is one.
    pub fn of(setup: &Setup) -> Option<Self> {
        Some(Self {
            primaries: setup.redis_primaries?,
            replicas_each: setup.redis_replicas_each.unwrap_or(0),
        })
    }
}

/// Extra warm-up for a job whose store is new (its users sign up again): 64 users, two
/// password hashes each, took about 6.5 s on 2 CPUs.
pub const FRESH_STORE_ROOM: Duration = Duration::from_secs(6);

/// Experiment `store-cluster`: three primaries (the smallest cluster Redis makes); the
/// failover run gives each a replica.
pub const CLUSTER_PRIMARIES: u32 = 3;

/// Experiment `store-latency`: the delay the proxy adds each way, in ms. 0 is the proxy
/// alone (its own cost is in every arm); 0.5 ms is a round trip within a data centre's
/// zone, 2 ms one between zones.
pub const STORE_DELAYS_MS: [f64; 3] = [0.0, 0.5, 2.0];

/// Experiment `replica-loss`'s sticky memory arm with `--quick`: enough users that some are on
/// the replica that dies (see its use).
pub const STICKY_LOSS_USERS_QUICK: u32 = 16;

/// Experiment `store-latency`'s users: few, so the replica is not saturated and a request's
/// time is its work plus its round trips (with a queue, the wait would hide them).
pub const STORE_LATENCY_USERS: u32 = 4;

/// Experiment `latency-curve`: the groups whose latency is drawn against load. Public is
/// everything but the credential check, so each other group's difference from it at light
/// load is what the check costs a user.
pub const CURVE_GROUPS: [(ServerKind, Variant); 5] = [
    (ServerKind::Session, Variant::Standard),
    (ServerKind::Token, Variant::Standard),
    (ServerKind::Public, Variant::Standard),
    (ServerKind::Token, Variant::Denylist),
    (ServerKind::Token, Variant::Eddsa),
];

/// Users of a `latency-curve` capacity run (a closed loop), even with `--quick`: enough
/// to keep one replica's worker busy, so the run finds the replica's capacity, not theirs.
pub const CURVE_CAPACITY_USERS: u32 = 32;

/// The fixed rates of experiment `latency-curve`, as fractions of each group's capacity:
/// light load, half, and near the knee (90% is beyond what a 2-CPU machine can offer in an
/// open loop while it also runs the replica, nginx and the load generator, and a fourth
/// point would push the default `compare` past 10 minutes there).
pub const CURVE_FRACTIONS: [f64; 3] = [0.10, 0.50, 0.80];

/// Connections of a fixed-rate curve run: enough for this long of arrivals (at least
/// `CURVE_MIN_CONNECTIONS`); each logs in before the run, on the one replica.
const CURVE_CONNECTIONS_FOR: f64 = 0.005;
const CURVE_MIN_CONNECTIONS: u32 = 8;

/// Experiments that need no load, only a few careful requests against fresh servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A real access token taken apart, and altered copies refused.
    TokenAnatomy,
    /// How long credentials outlive logout, with access tokens of `ttl_s` seconds.
    Revocation { ttl_s: u64 },
    /// Demotion, logout-all and read-only credentials, with access tokens of `ttl_s` s.
    Authority { ttl_s: u64 },
    /// Memory per logged-in user, at two user counts.
    ServerMemory { users: (u32, u32) },
    /// A real Chromium against both models, with access tokens of `ttl_s` seconds.
    Browser { ttl_s: u64 },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub probes: Vec<Probe>,
}

impl Job {
    fn sweep(
        server: ServerKind,
        replicas: u32,
        scenarios: Vec<Scenario>,
        round: u32,
        setup: Setup,
    ) -> Self {
        Self {
            server,
            replicas,
            scenarios,
            experiment: None,
            fault: None,
            round,
            setup,
        }
    }

    /// An arm of experiment `e`: `variant`'s servers, `users` users in a closed loop.
    fn arm(e: Experiment, server: ServerKind, replicas: u32, variant: Variant, users: u32) -> Self {
        Self {
            server,
            replicas,
            scenarios: vec![Scenario::Read],
            experiment: Some(e),
            fault: None,
            round: 1,
            setup: Setup {
                variant,
                ..Setup::standard(users, None)
            },
        }
    }

    /// This job with its set-up changed by `f` (while the plan is being made).
    fn with(mut self, f: impl FnOnce(&mut Setup)) -> Self {
        f(&mut self.setup);
        self
    }

    /// One replica of `server` running its main scenario with `users` users, for the
    /// calibration: what a request costs each component with no budget.
    pub fn calibration(server: ServerKind, users: u32) -> Self {
        // What a request costs with nothing holding the replica back.
        Self::sweep(
            server,
            1,
            vec![server.main_scenario()],
            1,
            Setup::standard(users, None),
        )
        .with(|s| s.unbudgeted = true)
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
                " [{}: {}",
                e.name(),
                self.setup.variant.describe(self.server)
            ));
            if let Some(t) = self.setup.access_token_ttl_s {
                s.push_str(&format!(", {t} s"));
            }
            if let Some(c) = self.setup.redis_cpus {
                s.push_str(&format!(", Redis {c:.2} CPU"));
            }
            if let Some(d) = self.setup.store_delay_ms {
                s.push_str(&format!(", +{d} ms each way"));
            }
            s.push(']');
        } else if self.round > 1 {
            s.push_str(&format!(" (round {})", self.round));
        }
        if let Some(o) = self.setup.open {
            s.push_str(&format!(" @{:.0}/s", o.offered_rps));
        }
        s
    }

    /// The environment this job's replicas get beyond the variant's.
    pub fn extra_env(&self) -> Vec<(String, String)> {
        self.setup
            .access_token_ttl_s
            .map(|t| ("ACCESS_TOKEN_TTL".to_string(), t.to_string()))
            .into_iter()
            .collect()
    }

    /// The measured window: fault experiments get at least `FAULT_WINDOW_MIN` (a failover
    /// `FAILOVER_WINDOW_MIN`), lifetime
    /// runs two of their token lifetimes' worth of refreshes.
    pub fn window(&self, m: &Measure) -> Duration {
        if self.fault == Some(FaultKind::KillPrimary) {
            m.duration.0.max(FAILOVER_WINDOW_MIN)
        } else if self.fault.is_some() {
            m.duration.0.max(FAULT_WINDOW_MIN)
        } else if let Some(t) = self.setup.access_token_ttl_s {
            m.duration.0.max(Duration::from_secs(2 * t + 2))
        } else {
            m.duration.0
        }
    }

    /// The warm-up: `--warmup`, and more on a store of the job's own (a Redis Cluster), where
    /// every simulated user signs up again (two password hashes each) before the window.
    pub fn warmup(&self, m: &Measure) -> Duration {
        if self.setup.redis_primaries.is_some() {
            m.warmup.0 + FRESH_STORE_ROOM
        } else {
            m.warmup.0
        }
    }

    /// How long one of its runs is planned to take (warm-up and window).
    pub fn planned_run_time(&self, m: &Measure) -> Duration {
        self.warmup(m) + self.window(m)
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
            setup: self.setup.clone(),
            user_prefix: m.user_prefix.clone(),
            warmup: self.warmup(m),
            duration,
            refresh: match self.setup.access_token_ttl_s {
                Some(_) => RefreshPolicy::BeforeExpiry,
                None => RefreshPolicy::Every(m.refresh_every),
            },
            replicas: self.replicas,
            round: self.round,
            cpus_per_replica,
            oversubscribed,
            keep_histograms: false,
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

/// Every group at every replica count, `rounds` times, interleaved (round 1 at every count,
/// then round 2 ...), so a slow minute of the machine spreads over the counts instead of
/// landing on one. Each group's main scenario runs in every round; its other scenarios
/// (login, refresh: what a request costs, not how it scales) once, at the smallest count.
/// Every run gets `setup` (the users, and the rate when the load is open).
pub fn sweep(
    servers: &[ServerKind],
    replicas: &[u32],
    scenarios: &[Scenario],
    rounds: u32,
    setup: &Setup,
) -> Vec<Job> {
    let smallest = replicas.iter().copied().min().unwrap_or(1);
    let mut jobs = Vec::new();
    for round in 1..=rounds.max(1) {
        for &n in replicas {
            for &server in servers {
                let scenarios: Vec<Scenario> = scenarios_for(server, scenarios)
                    .into_iter()
                    .filter(|s| *s == server.main_scenario() || (round == 1 && n == smallest))
                    .collect();
                if !scenarios.is_empty() {
                    jobs.push(Job::sweep(server, n, scenarios, round, setup.clone()));
                }
            }
        }
    }
    jobs
}

/// The experiments' jobs and probes, at replica counts taken from the sweep's, with `users`
/// users in a closed loop (a fault's effect is counted in what users lived); `redis_cpus` is
/// Redis's budget in experiments `store-bound` and `store-cluster`.
pub fn experiments(
    wanted: &[Experiment],
    replicas: &[u32],
    quick: bool,
    users: u32,
    redis_cpus: f64,
) -> Plan {
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
                    plan.jobs
                        .push(Job::arm(e, session, smallest_shared, v, users));
                }
            }
            // Both fault experiments run the refresh scenario, with and without the retry
            // grace: a refresh cut off by the fault is retried with the same credential,
            // and whether that logs the user out is what the grace decides.
            Experiment::RedisOutage => {
                for server in [session, token] {
                    for v in [Variant::Standard, Variant::NoRetryGrace] {
                        plan.jobs.push(Job {
                            scenarios: vec![Scenario::Refresh],
                            fault: Some(FaultKind::FreezeRedis),
                            ..Job::arm(e, server, smallest, v, users)
                        });
                    }
                }
            }
            Experiment::ReplicaLoss => {
                for (server, v) in [
                    (session, Variant::MemoryStoreSticky),
                    (session, Variant::Standard),
                    (session, Variant::NoRetryGrace),
                    (token, Variant::Standard),
                    (token, Variant::NoRetryGrace),
                ] {
                    plan.jobs.push(Job {
                        scenarios: vec![Scenario::Refresh],
                        fault: Some(FaultKind::KillReplica),
                        // Sticky routing hashes each user's random id: with --quick's 8 users
                        // every user landed on the survivor about once in 128 runs, and the
                        // kill then showed nothing. 16 make that once in 32,768.
                        ..Job::arm(
                            e,
                            server,
                            smallest_shared,
                            v,
                            if quick && v == Variant::MemoryStoreSticky {
                                users.max(STICKY_LOSS_USERS_QUICK)
                            } else {
                                users
                            },
                        )
                    });
                }
            }
            Experiment::Revocation => {
                // What the denylist costs: the token read scenario with it switched on.
                plan.jobs
                    .push(Job::arm(e, token, smallest, Variant::Denylist, users));
                plan.probes.push(Probe::Revocation {
                    ttl_s: if quick {
                        PROBE_TTL_QUICK_S
                    } else {
                        PROBE_TTL_S
                    },
                });
            }
            Experiment::StoreBound => {
                for &n in replicas {
                    for server in [session, token] {
                        plan.jobs.push(
                            Job::arm(e, server, n, Variant::StoreBound, users)
                                .with(|s| s.redis_cpus = Some(redis_cpus)),
                        );
                    }
                }
            }
            // The store-bound sweep again, the single Redis replaced by a cluster whose
            // primaries each get the single Redis's budget; then a primary killed.
            Experiment::StoreCluster => {
                let cluster = |replicas_each| {
                    move |s: &mut Setup| {
                        s.redis_primaries = Some(CLUSTER_PRIMARIES);
                        s.redis_replicas_each = Some(replicas_each);
                    }
                };
                for &n in replicas {
                    for server in [session, token] {
                        plan.jobs
                            .push(Job::arm(e, server, n, Variant::Cluster, users).with(|s| {
                                cluster(0)(s);
                                s.redis_cpus = Some(redis_cpus);
                            }));
                    }
                }
                for server in [session, token] {
                    plan.jobs.push(Job {
                        scenarios: vec![Scenario::Refresh],
                        fault: Some(FaultKind::KillPrimary),
                        ..Job::arm(e, server, smallest, Variant::Cluster, users).with(cluster(1))
                    });
                }
            }
            Experiment::StoreLatency => {
                for d in STORE_DELAYS_MS {
                    for server in [session, token] {
                        plan.jobs.push(
                            Job::arm(
                                e,
                                server,
                                smallest,
                                Variant::StoreDelay,
                                STORE_LATENCY_USERS,
                            )
                            .with(|s| {
                                s.store_delay_ms = Some(d);
                                s.unbudgeted = true;
                            }),
                        );
                    }
                }
            }
            // First each group's capacity: a closed loop on one replica with a whole core
            // (no quota: a quota replica's latency is its period). The fixed-rate runs follow
            // from what it measured (`latency_curve`).
            Experiment::LatencyCurve => {
                for (server, v) in CURVE_GROUPS {
                    let users = users.max(CURVE_CAPACITY_USERS);
                    plan.jobs.push(Job {
                        scenarios: vec![server.main_scenario()],
                        ..Job::arm(e, server, 1, v, users).with(|s| s.unbudgeted = true)
                    });
                }
            }
            Experiment::ServerMemory => plan.probes.push(Probe::ServerMemory {
                users: if quick {
                    MEMORY_USERS_QUICK
                } else {
                    MEMORY_USERS
                },
            }),
            Experiment::Authority => plan.probes.push(Probe::Authority {
                ttl_s: if quick {
                    PROBE_TTL_QUICK_S
                } else {
                    PROBE_TTL_S
                },
            }),
            Experiment::AccessTokenLifetime => {
                let ttls: &[u64] = if quick {
                    &ACCESS_TTLS_QUICK_S
                } else {
                    &ACCESS_TTLS_S
                };
                for &t in ttls {
                    plan.jobs.push(Job {
                        scenarios: vec![Scenario::Refresh],
                        ..Job::arm(e, token, smallest, Variant::AccessTtl, users)
                            .with(|s| s.access_token_ttl_s = Some(t))
                    });
                }
            }
            Experiment::TokenAnatomy => plan.probes.push(Probe::TokenAnatomy),
            Experiment::Browser => plan.probes.push(Probe::Browser {
                ttl_s: if quick {
                    PROBE_TTL_QUICK_S
                } else {
                    PROBE_TTL_S
                },
            }),
            Experiment::Signing => {
                plan.jobs
                    .push(Job::arm(e, token, smallest, Variant::Eddsa, users));
            }
        }
    }
    // Token anatomy first: its answer does not depend on anything else.
    plan.probes
        .sort_by_key(|p| !matches!(p, Probe::TokenAnatomy));
    plan
}

/// Experiment `latency-curve`'s fixed-rate runs: for each group whose capacity run was
/// valid, `CURVE_FRACTIONS` of the throughput it measured, on the same set-up.
pub fn latency_curve(results: &crate::model::Results) -> Vec<Job> {
    let mut jobs = Vec::new();
    for capacity in results
        .experiment(Experiment::LatencyCurve)
        .into_iter()
        .filter(|r| r.setup.open.is_none() && r.rps > 0.0)
    {
        for f in CURVE_FRACTIONS {
            let rate = f * capacity.rps;
            jobs.push(Job {
                server: capacity.server,
                replicas: capacity.replicas,
                scenarios: vec![capacity.scenario],
                experiment: Some(Experiment::LatencyCurve),
                fault: None,
                round: 1,
                setup: Setup {
                    users: CURVE_MIN_CONNECTIONS.max((rate * CURVE_CONNECTIONS_FOR).ceil() as u32),
                    open: Some(crate::model::OpenLoad {
                        offered_rps: rate,
                        arrivals: crate::model::Arrivals::Constant,
                    }),
                    ..capacity.setup.clone()
                },
            });
        }
    }
    jobs
}

/// How many fixed-rate runs `latency_curve` will plan when `plan` has run: progress counts
/// them from the start.
pub fn latency_curve_runs(plan: &Plan) -> usize {
    plan.jobs
        .iter()
        .filter(|j| j.experiment == Some(Experiment::LatencyCurve))
        .count()
        * CURVE_FRACTIONS.len()
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
        Variant::NoRetryGrace => (env(&[("REFRESH_REUSE_INTERVAL", "0")]), Balance::RoundRobin),
        // Where the store is, the deployment decides (`Local::stage`).
        Variant::StoreBound | Variant::AccessTtl | Variant::Cluster | Variant::StoreDelay => {
            (Vec::new(), Balance::RoundRobin)
        }
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
        let jobs = sweep(
            &ServerKind::ALL,
            &[1, 2],
            &Scenario::ALL,
            3,
            &Setup::standard(64, None),
        );
        assert_eq!(jobs.len(), 18, "3 groups x 2 counts x 3 rounds");
        // Main scenarios 3 x 2 x 3 = 18, plus login and refresh of two groups once.
        assert_eq!(jobs.iter().map(|j| j.scenarios.len()).sum::<usize>(), 22);
        assert!(jobs
            .iter()
            .all(|j| j.experiment.is_none() && j.fault.is_none()));
        // Interleaved: round 1 at every count before round 2 begins.
        let rounds: Vec<(u32, u32)> = jobs.iter().map(|j| (j.round, j.replicas)).collect();
        assert_eq!(
            &rounds[..6],
            &[(1, 1), (1, 1), (1, 1), (1, 2), (1, 2), (1, 2)]
        );
        assert_eq!(rounds[6], (2, 1));
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
            Experiment::StoreBound,
            Experiment::ServerMemory,
            Experiment::Authority,
            Experiment::AccessTokenLifetime,
            Experiment::Browser,
        ];
        let plan = experiments(&all, &[1, 4, 2], false, 64, 0.1);
        let of = |e| plan.jobs.iter().filter(move |j| j.experiment == Some(e));
        assert!(of(Experiment::SharedStore).all(|j| j.replicas == 2));
        assert!(of(Experiment::ReplicaLoss)
            .all(|j| j.replicas == 2 && j.fault == Some(FaultKind::KillReplica)));
        assert!(of(Experiment::RedisOutage).all(|j| j.replicas == 1
            && j.fault == Some(FaultKind::FreezeRedis)
            && j.scenarios == [Scenario::Refresh]));
        assert_eq!(of(Experiment::SharedStore).count(), 3);
        assert_eq!(plan.probes[0], Probe::TokenAnatomy);
        assert_eq!(plan.probes.len(), 5);
        assert!(of(Experiment::StoreBound).all(|j| j.setup.redis_cpus == Some(0.1)));
        assert!(plan.jobs.iter().all(|j| j.setup.open.is_none()));
        assert_eq!(
            of(Experiment::StoreBound).count(),
            6,
            "both models at 1, 4, 2"
        );
        let ttls: Vec<_> = of(Experiment::AccessTokenLifetime)
            .map(|j| j.setup.access_token_ttl_s.unwrap())
            .collect();
        assert_eq!(ttls, ACCESS_TTLS_S);
        assert_eq!(of(Experiment::RedisOutage).count(), 4, "grace on and off");
        // With only one replica swept, the experiments about replicas still get two.
        let one = experiments(&[Experiment::SharedStore], &[1], true, 8, 0.1);
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
                8,
            )
        };
        let plan = job.run_plan(Scenario::Refresh, &m, String::new(), None, false);
        assert_eq!(plan.duration, FAULT_WINDOW_MIN);
        let f = plan.fault.unwrap();
        assert_eq!(
            (f.at, f.lasts),
            (FAULT_WINDOW_MIN / 3, FAULT_WINDOW_MIN / 3)
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
