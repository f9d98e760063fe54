//! `loadtest compare`: the whole topology on this machine. One private Redis for the whole
//! sweep; for each job, its replicas and an nginx in front of them, started here and
//! stopped here by PID. A job whose store is elsewhere gets its own: a Redis Cluster
//! (`store-cluster`) or the shared Redis behind a delaying proxy (`store-latency`).

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use super::plan::{self, Job};
use super::probing::{self, ProbeHost, ProbeServer};
use super::{calibrate, compare_config, conclude, secret, Deployment, Journal, Stage};
use crate::cli::{BudgetChoice, CompareArgs};
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::delay_proxy::DelayProxy;
use crate::infra::topology::{
    find_tool, Balance, Group, GroupSpec, Redis, RedisCluster, StoreAddr,
};
use crate::infra::{env_info, procfs};
use crate::measure::probes::MemorySource;
use crate::measure::snapshot::Pids;
use crate::measure::{browser, FailoverTarget, Target};
use crate::model::{self, Mode, ServerKind};

/// Where the server binaries are. Under `cargo run`, build them first with the same profile.
fn bin_dir(args: &CompareArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "session-server", "-p", "token-server"]);
        if release {
            cmd.arg("--release");
        }
        eprintln!(
            "building the servers ({}) ...",
            if release { "release" } else { "debug" }
        );
        anyhow::ensure!(cmd.status()?.success(), "building the servers failed");
    }
    Ok(dir)
}

/// Redis, and groups of replicas behind nginx, as processes of this machine.
struct Local {
    shared: Shared,
    cpus_per_replica: Option<f64>,
    budget: CpuBudget,
    /// Redis's budget in experiment `store-bound`, made when first needed.
    store_budget: Option<CpuBudget>,
    /// The store of the job staged now, when it has its own.
    private: Option<PrivateStore>,
}

/// A job's own store, stopped when the next job is staged (its replicas are stopped by
/// then). Fields drop in order: the processes before their budget's cgroups.
enum PrivateStore {
    Cluster {
        cluster: RedisCluster,
        /// Each primary's budget, when the job sets one.
        budget: Option<CpuBudget>,
    },
    Delayed {
        /// Forwards until dropped.
        _proxy: DelayProxy,
        rtt_ms: f64,
    },
}

/// What every group of a run shares.
struct Shared {
    bins: PathBuf,
    logs: PathBuf,
    redis: Redis,
    /// Generated for this run only: every replica of a run shares them, nothing else does.
    session_key: String,
    jwt_secret: String,
    ed25519_pem: PathBuf,
    /// The admin every replica bootstraps (experiment `authority`), with a password made
    /// for this run.
    admin: (String, String),
    lb_workers: u32,
    workers_per_replica: u32,
}

impl Shared {
    fn spec(
        &self,
        kind: ServerKind,
        replicas: u32,
        extra_env: Vec<(String, String)>,
        balance: Balance,
    ) -> GroupSpec<'_> {
        GroupSpec {
            kind,
            replicas,
            bin_dir: &self.bins,
            store: StoreAddr::Url(self.redis.url.clone()),
            session_key: &self.session_key,
            jwt_secret: &self.jwt_secret,
            lb_workers: self.lb_workers,
            workers_per_replica: self.workers_per_replica,
            extra_env,
            balance,
        }
    }

    /// Where to send the load for `group`, and which processes to watch.
    fn target(&self, group: &Group, server: ServerKind) -> Target {
        Target {
            url: group.url(),
            server,
            pids: Pids {
                replicas: group.replicas.iter().map(|r| r.proc_.pid()).collect(),
                redis: vec![self.redis.proc_.pid()],
                lb: group.lb_pids(),
                loadgen: std::process::id(),
                containers: None,
            },
            redis_urls: vec![self.redis.url.clone()],
            store_rtt_ms: None,
            failover: None,
            replica_urls: group
                .replicas
                .iter()
                .map(|r| format!("http://127.0.0.1:{}", r.port))
                .collect(),
            lb_workers: self.lb_workers,
            replica_workers: self.workers_per_replica,
            cpu_visible: true,
        }
    }

    /// One replica behind nginx, for the probes and the calibration (no CPU budget).
    async fn probe_group(
        &self,
        kind: ServerKind,
        extra_env: Vec<(String, String)>,
    ) -> anyhow::Result<Group> {
        let spec = self.spec(kind, 1, extra_env, Balance::RoundRobin);
        let mut unlimited = CpuBudget::new(None)?;
        Group::start(&spec, &mut unlimited, &self.logs).await
    }

    /// Experiment `browser`: skipped, with a note saying what to install, without Chromium.
    async fn run_browser(
        &self,
        ttl_s: u64,
        chromium: Option<&Path>,
    ) -> Option<anyhow::Result<model::BrowserStudy>> {
        let dir = self.logs.join("browser");
        let token_life = (ttl_s, plan::LEEWAY_S);
        Some(browser::study(self, chromium, dir, token_life, self.admin.clone()).await)
    }
}

impl ProbeServer for Group {
    fn url(&self) -> String {
        Group::url(self)
    }

    fn memory(&self) -> MemorySource {
        MemorySource::Process(self.replicas[0].proc_.pid())
    }
}

impl ProbeHost for Shared {
    type Server = Group;

    async fn start(&self, kind: ServerKind, env: Vec<(String, String)>) -> anyhow::Result<Group> {
        self.probe_group(kind, env).await
    }

    fn redis_url(&self) -> String {
        self.redis.url.clone()
    }

    fn jwt_secret(&self) -> Option<String> {
        Some(self.jwt_secret.clone())
    }

    fn admin(&self) -> (String, String) {
        self.admin.clone()
    }

    async fn browser(
        &self,
        ttl_s: u64,
        chromium: Option<&Path>,
    ) -> Option<anyhow::Result<model::BrowserStudy>> {
        self.run_browser(ttl_s, chromium).await
    }
}

impl browser::Servers for Shared {
    async fn start(&self, kind: ServerKind, env: Vec<(String, String)>) -> anyhow::Result<Group> {
        self.probe_group(kind, env).await
    }
}

impl Deployment for Local {
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        let (mut extra_env, balance) = plan::setup(job.setup.variant, &self.shared.ed25519_pem);
        extra_env.extend(job.extra_env());
        let mut spec = self
            .shared
            .spec(job.server, job.replicas, extra_env, balance);
        // The previous job's own store goes first: its replicas are gone.
        self.private = None;
        if let Some(shape) = plan::ClusterShape::of(&job.setup) {
            let cluster = RedisCluster::start(
                &self.shared.logs,
                shape.primaries as usize,
                shape.replicas_each as usize,
            )
            .await?;
            let budget = match job.setup.redis_cpus {
                Some(c) => {
                    let mut b = CpuBudget::for_cluster(c)?;
                    for (i, p) in cluster.primaries().enumerate() {
                        b.assign(i, p.proc_.pid())
                            .map_err(|e| anyhow::anyhow!("CPU budget for a Redis primary: {e}"))?;
                    }
                    Some(b)
                }
                None => None,
            };
            spec.store = StoreAddr::ClusterNodes(cluster.nodes_env());
            self.private = Some(PrivateStore::Cluster { cluster, budget });
        } else if let Some(d) = job.setup.store_delay_ms {
            let upstream = self
                .shared
                .redis
                .url
                .trim_start_matches("redis://")
                .parse()?;
            let proxy = DelayProxy::start(upstream, Duration::from_secs_f64(d / 1000.0))?;
            let via = format!("redis://127.0.0.1:{}", proxy.port());
            let rtt_ms = ping_rtt_ms(&via).await?;
            spec.store = StoreAddr::Url(via);
            self.private = Some(PrivateStore::Delayed {
                _proxy: proxy,
                rtt_ms,
            });
        }
        let mut unlimited = CpuBudget::new(None)?;
        let replica_budget = if job.setup.unbudgeted {
            &mut unlimited
        } else {
            &mut self.budget
        };
        let group = Group::start(&spec, replica_budget, &self.shared.logs).await?;
        let cpus = procfs::available_cpus();
        let n = job.replicas;
        let oversubscribed = match self.cpus_per_replica {
            Some(c) => c * n as f64 > cpus as f64,
            None => n as usize * self.shared.workers_per_replica as usize > cpus,
        };
        if let (Some(c), None) = (job.setup.redis_cpus, job.setup.redis_primaries) {
            if self.store_budget.as_ref().and_then(|b| b.cpus_per_replica) != Some(c) {
                let mut b = CpuBudget::for_store(c)?;
                b.assign(0, self.shared.redis.proc_.pid())
                    .map_err(|e| anyhow::anyhow!("CPU budget for Redis: {e}"))?;
                self.store_budget = Some(b);
            }
        }
        let mut budgets = Vec::new();
        if !job.setup.unbudgeted {
            budgets.push(&self.budget);
        }
        let mut target = self.shared.target(&group, job.server);
        match &self.private {
            Some(PrivateStore::Cluster { cluster, budget }) => {
                budgets.extend(budget.as_ref());
                let primaries: Vec<_> = cluster.primaries().collect();
                target.pids.redis = cluster.nodes.iter().map(|n| n.proc_.pid()).collect();
                target.redis_urls = primaries.iter().map(|n| n.url()).collect();
                if job.fault == Some(model::FaultKind::KillPrimary) {
                    let victim = primaries
                        .first()
                        .ok_or_else(|| anyhow::anyhow!("the cluster has no primary"))?;
                    let replica_port = cluster.replica_of(victim.port).ok_or_else(|| {
                        anyhow::anyhow!("the cluster's first primary has no replica to take over")
                    })?;
                    target.failover = Some(FailoverTarget {
                        victim_pid: victim.proc_.pid(),
                        victim_port: victim.port,
                        replica_port,
                    });
                }
            }
            Some(PrivateStore::Delayed { rtt_ms, .. }) => target.store_rtt_ms = Some(*rtt_ms),
            None => {
                if job.setup.redis_cpus.is_some() {
                    budgets.extend(self.store_budget.as_ref());
                }
            }
        }
        Ok(Stage {
            target,
            budgets,
            cpus_per_replica: self.cpus_per_replica.filter(|_| !job.setup.unbudgeted),
            oversubscribed,
            group: Some(group),
        })
    }
}

/// The median of 50 `PING` round trips to `url` (through the delaying proxy), in ms: what
/// the replicas really pay per store call, proxy included.
async fn ping_rtt_ms(url: &str) -> anyhow::Result<f64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut rtts = Vec::new();
    for _ in 0..50 {
        let t = std::time::Instant::now();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        rtts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    rtts.sort_by(f64::total_cmp);
    Ok(rtts[rtts.len() / 2])
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective(crate::cli::Repeats::Rounds);
    let replicas = args.replica_counts();
    // Fail before starting anything when a tool is missing.
    find_tool("redis-server", "redis-server")?;
    find_tool("nginx", "nginx")?;
    let bins = bin_dir(&args)?;
    for s in &args.servers {
        let b = bins.join(s.binary());
        anyhow::ensure!(
            b.is_file(),
            "{} not found: build it with `cargo build --release -p {}`, or pass --bin-dir",
            b.display(),
            s.binary()
        );
    }
    let stamp = env_info::utc_stamp();
    let out = model::out_dir(m.out.as_deref(), &stamp);
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", logs.display()))?;
    let logs = logs.canonicalize()?;

    let cpus = procfs::available_cpus();
    let lb_workers = args.lb_workers.unwrap_or((cpus / 4).max(1) as u32);
    let mut env = env_info::collect(Mode::Local, &stamp);
    env.config = compare_config(&args, &m);
    for (k, v) in [
        (
            "lb",
            format!("nginx, round robin, keep-alive to replicas, {lb_workers} worker(s)"),
        ),
        (
            "sticky_routing",
            format!(
                "nginx `{}`",
                Balance::Sticky.directive().unwrap_or_default()
            ),
        ),
        ("loadgen", crate::measure::loadgen_description()),
    ] {
        env.config.insert(k.to_string(), v);
    }

    let mut journal = Journal::new(env, out, m.out.is_none())?;
    let ed25519_pem = logs.join("ed25519-local-only.pem");
    std::fs::write(&ed25519_pem, token_server::keys::generate_ed25519_pem()?)?;
    let shared = Shared {
        redis: Redis::start(&logs).await?,
        bins,
        logs,
        session_key: secret(64),
        jwt_secret: secret(48),
        ed25519_pem,
        admin: ("ltadmin".into(), secret(24)),
        lb_workers,
        workers_per_replica: 1,
    };
    let outcome = async {
        let max_replicas = replicas.iter().copied().max().unwrap_or(1);
        let mut local = Local {
            shared,
            cpus_per_replica: None,
            budget: CpuBudget::new(None)?,
            store_budget: None,
            private: None,
        };
        // The budget: calibrated here, given, or none.
        let cpus_per_replica = match args.cpus_per_replica {
            BudgetChoice::Cpus(c) => Some(c),
            BudgetChoice::Unlimited => None,
            BudgetChoice::Auto => {
                let room = calibrate::Room {
                    max_replicas,
                    machine_cpus: cpus,
                    lb_workers,
                };
                Some(calibrate::calibrate(&mut local, &args.servers, &m, room, &mut journal).await?)
            }
        };
        let workers_per_replica = cpus_per_replica.map_or(1, |c| c.ceil().max(1.0) as u32);
        let budget = CpuBudget::new(cpus_per_replica)?;
        journal.update(|r| {
            let e = &mut r.environment;
            e.cpu_budget_method = budget.describe();
            e.config.insert(
                "cpus_per_replica".into(),
                match (args.cpus_per_replica, cpus_per_replica) {
                    (BudgetChoice::Auto, Some(c)) => format!("{c} (chosen by the calibration)"),
                    (_, Some(c)) => format!("{c} (given)"),
                    (_, None) => "none".into(),
                },
            );
            e.config.insert(
                "workers_per_replica".into(),
                workers_per_replica.to_string(),
            );
        })?;
        local.cpus_per_replica = cpus_per_replica;
        local.budget = budget;
        local.shared.workers_per_replica = workers_per_replica;
        let sweep = plan::sweep(
            &args.servers,
            &replicas,
            &m.scenarios,
            args.rounds(),
            &m.setup(),
        );
        // The experiments are planned once the sweep has measured what a session read
        // costs Redis (their Redis budget follows from it); progress counts them from the
        // start, and how many there are does not depend on that budget.
        let plan_experiments = |store_cpus| {
            if args.no_experiments {
                plan::Plan::default()
            } else {
                plan::experiments(&args.experiments, &replicas, m.quick, m.users, store_cpus)
            }
        };
        let counted = plan_experiments(f64::NAN);
        super::announce(&sweep, &m, &mut journal);
        super::announce(&counted.jobs, &m, &mut journal);
        let curve_runs = plan::latency_curve_runs(&counted);
        journal.expect(curve_runs, (m.warmup.0 + m.duration.0) * curve_runs as u32);
        super::execute_announced(&mut local, &sweep, &m, &mut journal).await?;
        let store_cpus = calibrate::store_budget(
            calibrate::session_redis_ratio(journal.results()),
            cpus_per_replica,
            max_replicas,
        );
        let experiments = plan_experiments(store_cpus);
        super::execute_announced(&mut local, &experiments.jobs, &m, &mut journal).await?;
        // The latency curve's fixed rates follow from the capacities just measured.
        let curve = plan::latency_curve(journal.results());
        super::execute_announced(&mut local, &curve, &m, &mut journal).await?;
        // The last job's own store (a cluster, the delaying proxy) goes before the probes.
        local.private = None;
        probing::run(
            &local.shared,
            &experiments.probes,
            args.chromium.as_deref(),
            &mut journal,
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    conclude(journal, outcome)
}
