//! `loadtest compare`: the whole topology on this machine, swept over replica counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::cli::{CompareArgs, Experiment, Scenario, ServerKind, Via};
use crate::cpu_budget::CpuBudget;
use crate::measure::{measure, Fault, FaultKind, Plan, Target};
use crate::probe::Pids;
use crate::results;
use crate::sweep::Sweep;
use crate::topology::{find_tool, Group, GroupSpec, Redis};
use crate::{env_info, probes, procfs};

/// The token server's leeway on `exp` (token-server/src/tokens.rs `LEEWAY_S`).
const LEEWAY_S: u64 = 30;

/// The scenarios a group runs: `public` is what the `public` group is for; the auth groups
/// run the rest.
pub fn scenarios_for(server: ServerKind, wanted: &[Scenario]) -> Vec<Scenario> {
    wanted
        .iter()
        .copied()
        .filter(|s| (server == ServerKind::Public) == (*s == Scenario::Public))
        .collect()
}

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

/// One group of replicas to start, and what to run against it.
struct Job {
    server: ServerKind,
    replicas: u32,
    scenarios: Vec<Scenario>,
    extra_env: Vec<(String, String)>,
    balance: Option<String>,
    /// (experiment, variant) for experiment runs.
    variant: Option<(String, String)>,
    /// What to break a third of the way into the window.
    fault: Option<JobFault>,
}

#[derive(Debug, Clone, Copy)]
enum JobFault {
    /// Freeze Redis for a third of the window.
    FreezeRedis,
    /// Kill the first replica.
    KillReplica,
}

/// Fault experiments need time on both sides of the fault.
const FAULT_WINDOW_MIN: Duration = Duration::from_secs(9);

/// The sweep, then the experiments. `ed25519_pem` is the key file every EdDSA replica shares.
fn jobs(
    args: &CompareArgs,
    replicas: &[u32],
    scenarios: &[Scenario],
    ed25519_pem: &Path,
) -> Vec<Job> {
    // Experiments run at the smallest swept count; those about replicas disagreeing need
    // two at least (with one, every request lands where its session is).
    let smallest = replicas.iter().copied().min().unwrap_or(1);
    let smallest_shared = replicas
        .iter()
        .copied()
        .filter(|n| *n > 1)
        .min()
        .unwrap_or(2);
    let mut jobs = Vec::new();
    for &n in replicas {
        for &server in &args.servers {
            let scenarios = scenarios_for(server, scenarios);
            if !scenarios.is_empty() {
                jobs.push(Job {
                    server,
                    replicas: n,
                    scenarios,
                    extra_env: Vec::new(),
                    balance: None,
                    variant: None,
                    fault: None,
                });
            }
        }
    }
    if args.no_experiments {
        return jobs;
    }
    for experiment in &args.experiments {
        match experiment {
            Experiment::TokenAnatomy => {}
            Experiment::RedisOutage => {
                let n = smallest;
                for server in [ServerKind::Session, ServerKind::Token] {
                    jobs.push(Job {
                        server,
                        replicas: n,
                        scenarios: vec![Scenario::Refresh],
                        extra_env: Vec::new(),
                        balance: None,
                        variant: Some(("redis-outage".into(), server.name().into())),
                        fault: Some(JobFault::FreezeRedis),
                    });
                }
            }
            Experiment::ReplicaLoss => {
                let n = smallest_shared;
                let memory = vec![("SESSION_STORE".to_string(), "memory".to_string())];
                for (server, variant, env, balance) in [
                    (
                        ServerKind::Session,
                        "session, memory store, sticky",
                        memory,
                        Some(STICKY.to_string()),
                    ),
                    (
                        ServerKind::Session,
                        "session, Redis store",
                        Vec::new(),
                        None,
                    ),
                    (ServerKind::Token, "token", Vec::new(), None),
                ] {
                    jobs.push(Job {
                        server,
                        replicas: n,
                        scenarios: vec![Scenario::Read],
                        extra_env: env,
                        balance,
                        variant: Some(("replica-loss".into(), variant.into())),
                        fault: Some(JobFault::KillReplica),
                    });
                }
            }
            Experiment::Signing => {
                let n = smallest;
                jobs.push(Job {
                    server: ServerKind::Token,
                    replicas: n,
                    scenarios: vec![Scenario::Read],
                    extra_env: vec![
                        ("JWT_ALG".into(), "EdDSA".into()),
                        (
                            "JWT_PRIVATE_KEY_FILE".into(),
                            ed25519_pem.display().to_string(),
                        ),
                    ],
                    balance: None,
                    variant: Some(("signing".into(), "EdDSA".into())),
                    fault: None,
                });
            }
            Experiment::Revocation => {
                // What the denylist costs: the token read scenario with it switched on.
                let n = smallest;
                jobs.push(Job {
                    server: ServerKind::Token,
                    replicas: n,
                    scenarios: vec![Scenario::Read],
                    extra_env: vec![("ACCESS_DENYLIST".into(), "true".into())],
                    balance: None,
                    variant: Some(("revocation".into(), "token with denylist".into())),
                    fault: None,
                });
            }
            Experiment::SharedStore => {
                let n = smallest_shared;
                let memory = vec![("SESSION_STORE".to_string(), "memory".to_string())];
                for (variant, env, balance) in [
                    ("memory store, round robin", memory.clone(), None),
                    ("memory store, sticky", memory, Some(STICKY.to_string())),
                    ("Redis store, round robin", Vec::new(), None),
                ] {
                    jobs.push(Job {
                        server: ServerKind::Session,
                        replicas: n,
                        scenarios: vec![Scenario::Read],
                        extra_env: env,
                        balance,
                        variant: Some(("shared-store".into(), variant.into())),
                        fault: None,
                    });
                }
            }
        }
    }
    jobs
}

/// Sticky routing: each client always reaches the same replica. The load test's users
/// send a stable `X-Client-Id`; hashing the session cookie instead would send the login
/// (which has no cookie yet) and the reads after it to different replicas.
pub const STICKY: &str = "hash $http_x_client_id consistent";

fn secret(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    if args.via == Via::Compose {
        return crate::compose::compare(args).await;
    }
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
    let out = results::out_dir(m.out.as_deref(), &stamp);
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", logs.display()))?;
    let logs = logs.canonicalize()?;

    let cpus = procfs::available_cpus();
    let lb_workers = args.lb_workers.unwrap_or((cpus / 4).max(1) as u32);
    let workers_per_replica = args
        .cpus_per_replica
        .map_or(1, |c| c.ceil().max(1.0) as u32);
    let mut budget = CpuBudget::new(args.cpus_per_replica)?;
    let mut env = env_info::collect("compare", &stamp);
    env.cpu_budget_method = budget.describe();
    let config: BTreeMap<String, String> = [
        ("JWT_ALG", "HS256".to_string()),
        ("ACCESS_TOKEN_TTL", "900".into()),
        ("SESSION_STORE", "redis".into()),
        (
            "password_hash",
            auth_core::password::PasswordHasher::describe(),
        ),
        ("users", m.users.to_string()),
        ("duration_s", m.duration.0.as_secs_f64().to_string()),
        ("warmup_s", m.warmup.0.as_secs_f64().to_string()),
        ("refresh_every", m.refresh_every.to_string()),
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
        ("loadgen", "goose 0.19, in the loadtest process".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.config = config;

    let redis = Redis::start(&logs).await?;
    let (session_key, jwt_secret) = (secret(64), secret(48));
    let mut sweep = Sweep::new(env, out.clone(), &m)?;
    // Generated for this run only, like the HS256 secret.
    let ed25519_pem = logs.join("ed25519-local-only.pem");
    std::fs::write(&ed25519_pem, token_server::keys::generate_ed25519_pem()?)?;
    let jobs = jobs(&args, &replicas, &m.scenarios, &ed25519_pem);
    sweep.total = Some(jobs.iter().map(|j| j.scenarios.len()).sum());
    let outcome: anyhow::Result<()> = async {
        for job in &jobs {
            let n = job.replicas;
            let oversubscribed = match args.cpus_per_replica {
                Some(c) => c * n as f64 > cpus as f64,
                None => n as usize * workers_per_replica as usize > cpus,
            };
            if oversubscribed {
                let note = format!("{n} replicas ask for more CPUs than the machine's {cpus}: those runs are marked oversubscribed");
                if !sweep.results.environment.notes.contains(&note) {
                    sweep.results.environment.notes.push(note);
                }
            }
            let spec = GroupSpec {
                kind: job.server,
                replicas: n,
                bin_dir: &bins,
                redis_url: &redis.url,
                session_key: &session_key,
                jwt_secret: &jwt_secret,
                lb_workers,
                workers_per_replica,
                extra_env: job.extra_env.clone(),
                balance: job.balance.clone(),
            };
            let mut group = Group::start(&spec, &mut budget, &logs).await?;
            let target = Target {
                url: group.url(),
                budget: Some(&budget),
                server: job.server,
                pids: Pids {
                    replicas: group.replicas.iter().map(|r| r.proc_.pid()).collect(),
                    redis: Some(redis.proc_.pid()),
                    lb: group.lb_pids(),
                    loadgen: std::process::id(),
                },
                redis_url: Some(redis.url.clone()),
                replica_urls: group.replicas.iter().map(|r| format!("http://127.0.0.1:{}", r.port)).collect(),
                lb_workers,
            };
            for &scenario in &job.scenarios {
                let variant = job.variant.as_ref().map(|(_, v)| format!(" [{v}]")).unwrap_or_default();
                let duration = if job.fault.is_some() { m.duration.0.max(FAULT_WINDOW_MIN) } else { m.duration.0 };
                let fault = job.fault.map(|f| Fault {
                    kind: match f {
                        JobFault::FreezeRedis => FaultKind::FreezeRedis(redis.proc_.pid()),
                        JobFault::KillReplica => FaultKind::KillReplica(group.replicas[0].proc_.pid()),
                    },
                    at: duration / 3,
                    lasts: duration / 3,
                });
                let label = sweep.next_label(&format!("{} {} x{n}{variant}", job.server.name(), scenario.name()));
                let plan = Plan {
                    label,
                    scenario,
                    users: m.users,
                    warmup: m.warmup.0,
                    duration,
                    refresh_every: m.refresh_every,
                    replicas: n,
                    cpus_per_replica: args.cpus_per_replica,
                    oversubscribed,
                    fault,
                };
                let outcome = measure(&target, &plan).await;
                sweep.record(&plan.label, outcome, job.variant.as_ref())?;
            }
            group.stop();
        }
        let probe_group = |kind: ServerKind, extra_env: Vec<(String, String)>| GroupSpec {
            kind,
            replicas: 1,
            bin_dir: &bins,
            redis_url: &redis.url,
            session_key: &session_key,
            jwt_secret: &jwt_secret,
            lb_workers,
            workers_per_replica,
            extra_env,
            balance: None,
        };
        let wants = |e: Experiment| !args.no_experiments && args.experiments.contains(&e);
        if wants(Experiment::TokenAnatomy) {
            eprintln!("token-anatomy: taking a real access token apart ...");
            let token = Group::start(&probe_group(ServerKind::Token, Vec::new()), &mut budget, &logs).await?;
            let session = Group::start(&probe_group(ServerKind::Session, Vec::new()), &mut budget, &logs).await?;
            match probes::token_anatomy(&token.url(), &session.url()).await {
                Ok(a) => sweep.results.token_anatomy = Some(a),
                Err(e) => sweep.results.environment.notes.push(format!("token-anatomy: failed: {e:#}")),
            }
            sweep.save()?;
        }
        if wants(Experiment::Revocation) {
            let ttl = if m.quick { 2 } else { 10 };
            eprintln!("revocation: how long credentials outlive logout (access tokens: {ttl} s + leeway) ...");
            let ttl_env = vec![("ACCESS_TOKEN_TTL".to_string(), ttl.to_string())];
            let mut deny_env = ttl_env.clone();
            deny_env.push(("ACCESS_DENYLIST".into(), "true".into()));
            let session = Group::start(&probe_group(ServerKind::Session, Vec::new()), &mut budget, &logs).await?;
            let token = Group::start(&probe_group(ServerKind::Token, ttl_env), &mut budget, &logs).await?;
            let deny = Group::start(&probe_group(ServerKind::Token, deny_env), &mut budget, &logs).await?;
            match probes::revocation(&session.url(), &token.url(), &deny.url(), ttl, LEEWAY_S).await {
                Ok(r) => sweep.results.revocation = Some(r),
                Err(e) => sweep.results.environment.notes.push(format!("revocation: failed: {e:#}")),
            }
            sweep.save()?;
        }
        Ok(())
    }
    .await;
    drop(redis);
    budget.release();
    if let Err(e) = outcome {
        sweep.save()?;
        if m.out.is_none() {
            results::point_latest(&out);
        }
        return Err(e);
    }
    sweep.finish(m.out.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_is_its_own_group() {
        let all = [
            Scenario::Read,
            Scenario::Login,
            Scenario::Refresh,
            Scenario::Public,
        ];
        assert_eq!(
            scenarios_for(ServerKind::Public, &all),
            vec![Scenario::Public]
        );
        assert_eq!(
            scenarios_for(ServerKind::Token, &all),
            vec![Scenario::Read, Scenario::Login, Scenario::Refresh]
        );
        assert!(scenarios_for(ServerKind::Public, &[Scenario::Read]).is_empty());
    }
}
