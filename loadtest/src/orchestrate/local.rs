//! `loadtest compare`: the whole topology on this machine. One private Redis for the whole
//! sweep; for each job, its replicas and an nginx in front of them, started here and
//! stopped here by PID.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::distributions::Alphanumeric;
use rand::Rng;

use super::plan::{self, Job, Probe};
use super::{conclude, execute, measurement_config, Deployment, Journal, Stage};
use crate::cli::CompareArgs;
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::topology::{find_tool, Balance, Group, GroupSpec, Redis};
use crate::infra::{env_info, procfs};
use crate::measure::snapshot::Pids;
use crate::measure::{probes, Target};
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

fn secret(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Redis, and groups of replicas behind nginx, as processes of this machine.
struct Local {
    shared: Shared,
    cpus_per_replica: Option<f64>,
    budget: CpuBudget,
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
            redis_url: &self.redis.url,
            session_key: &self.session_key,
            jwt_secret: &self.jwt_secret,
            lb_workers: self.lb_workers,
            workers_per_replica: self.workers_per_replica,
            extra_env,
            balance,
        }
    }

    /// One replica behind nginx, for the probes (no load, no CPU budget).
    async fn probe_group(
        &self,
        kind: ServerKind,
        extra_env: Vec<(String, String)>,
    ) -> anyhow::Result<Group> {
        let spec = self.spec(kind, 1, extra_env, Balance::RoundRobin);
        let mut unlimited = CpuBudget::new(None)?;
        Group::start(&spec, &mut unlimited, &self.logs).await
    }

    async fn probe(&self, probe: Probe, journal: &mut Journal) -> anyhow::Result<()> {
        match probe {
            Probe::TokenAnatomy => {
                eprintln!("token-anatomy: taking a real access token apart ...");
                let token = self.probe_group(ServerKind::Token, Vec::new()).await?;
                let session = self.probe_group(ServerKind::Session, Vec::new()).await?;
                match probes::token_anatomy(&token.url(), &session.url()).await {
                    Ok(a) => journal.update(|r| r.token_anatomy = Some(a))?,
                    Err(e) => journal.note(format!("token-anatomy: failed: {e:#}")),
                }
            }
            Probe::Revocation { ttl_s } => {
                eprintln!(
                    "revocation: how long credentials outlive logout (access tokens: {ttl_s} s + leeway) ..."
                );
                let ttl_env = vec![("ACCESS_TOKEN_TTL".to_string(), ttl_s.to_string())];
                let mut deny_env = ttl_env.clone();
                deny_env.push(("ACCESS_DENYLIST".into(), "true".into()));
                let session = self.probe_group(ServerKind::Session, Vec::new()).await?;
                let token = self.probe_group(ServerKind::Token, ttl_env).await?;
                let deny = self.probe_group(ServerKind::Token, deny_env).await?;
                match probes::revocation(
                    &session.url(),
                    &token.url(),
                    &deny.url(),
                    ttl_s,
                    plan::LEEWAY_S,
                )
                .await
                {
                    Ok(r) => journal.update(|x| x.revocation = Some(r))?,
                    Err(e) => journal.note(format!("revocation: failed: {e:#}")),
                }
            }
        }
        journal.save()?;
        Ok(())
    }
}

impl Deployment for Local {
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        let (extra_env, balance) = plan::setup(job.variant, &self.shared.ed25519_pem);
        let spec = self
            .shared
            .spec(job.server, job.replicas, extra_env, balance);
        let group = Group::start(&spec, &mut self.budget, &self.shared.logs).await?;
        let shared = &self.shared;
        let cpus = procfs::available_cpus();
        let n = job.replicas;
        let oversubscribed = match self.cpus_per_replica {
            Some(c) => c * n as f64 > cpus as f64,
            None => n as usize * shared.workers_per_replica as usize > cpus,
        };
        let target = Target {
            url: group.url(),
            server: job.server,
            pids: Pids {
                replicas: group.replicas.iter().map(|r| r.proc_.pid()).collect(),
                redis: Some(shared.redis.proc_.pid()),
                lb: group.lb_pids(),
                loadgen: std::process::id(),
            },
            redis_url: Some(shared.redis.url.clone()),
            replica_urls: group
                .replicas
                .iter()
                .map(|r| format!("http://127.0.0.1:{}", r.port))
                .collect(),
            lb_workers: shared.lb_workers,
            cpu_visible: true,
        };
        Ok(Stage {
            target,
            budget: Some(&self.budget),
            cpus_per_replica: self.cpus_per_replica,
            oversubscribed,
            group: Some(group),
        })
    }
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective();
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
    let workers_per_replica = args
        .cpus_per_replica
        .map_or(1, |c| c.ceil().max(1.0) as u32);
    let budget = CpuBudget::new(args.cpus_per_replica)?;
    let mut env = env_info::collect(Mode::Local, &stamp);
    env.cpu_budget_method = budget.describe();
    env.config = measurement_config(&m);
    for (k, v) in [
        ("JWT_ALG", "HS256".to_string()),
        ("ACCESS_TOKEN_TTL", "900".into()),
        ("SESSION_STORE", "redis".into()),
        (
            "password_hash",
            auth_core::password::PasswordHasher::describe(),
        ),
        (
            "cpus_per_replica",
            args.cpus_per_replica
                .map_or("none".into(), |c| c.to_string()),
        ),
        ("workers_per_replica", workers_per_replica.to_string()),
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
    let mut local = Local {
        shared: Shared {
            redis: Redis::start(&logs).await?,
            bins,
            logs,
            session_key: secret(64),
            jwt_secret: secret(48),
            ed25519_pem,
            lb_workers,
            workers_per_replica,
        },
        cpus_per_replica: args.cpus_per_replica,
        budget,
    };
    let mut jobs = plan::sweep(&args.servers, &replicas, &m.scenarios);
    let mut probes = Vec::new();
    if !args.no_experiments {
        let experiments = plan::experiments(&args.experiments, &replicas, m.quick);
        jobs.extend(experiments.jobs);
        probes = experiments.probes;
    }
    let outcome = async {
        execute(&mut local, &jobs, &m, &mut journal).await?;
        for probe in probes {
            local.shared.probe(probe, &mut journal).await?;
        }
        Ok(())
    }
    .await;
    drop(local);
    conclude(journal, outcome)
}
