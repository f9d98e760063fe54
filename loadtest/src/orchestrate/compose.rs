//! `loadtest compare --via compose`: the replica sweep on the services of
//! docker-compose.yml, driven through the Docker Engine API. It runs on the host (the
//! stack started with `docker compose up -d` when it is not running) or inside the
//! stack's own `compare` service, which is given the Engine's socket. Each replica count
//! is a service scaled through the Engine (its first container cloned, or the last ones
//! removed), then `nginx -s reload` in the balancer so it resolves the service names again
//! and sees the new replicas. The load generator talks to the containers' own addresses
//! (no port forwarding in the way); replica, Redis and balancer CPU come from the Engine's
//! counters of each container, so results.json carries the same figures as a local
//! `compare` wherever this runs. Linux hosts only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use plumbing::{wait_until, Check};

use super::plan::{self, Job};
use super::{conclude, execute, measurement_config, Deployment, Journal, Stage};
use crate::cli::{BudgetChoice, CompareArgs};
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::engine::{Container, Engine};
use crate::infra::{env_info, procfs};
use crate::measure::snapshot::{Containers, Pids};
use crate::measure::Target;
use crate::model::{self, Mode, ServerKind};

/// How long the services may take to get every container healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(180);

/// The services the sweep needs, as docker-compose.yml names them.
const STACK: [&str; 4] = ["redis", "session-server", "token-server", "balancer"];
const SERVERS: [&str; 2] = ["session-server", "token-server"];

/// The compose CLI on the host: only to start the stack when it is not running, and to stop
/// what it started.
struct Compose {
    /// `docker compose` (v2) or `docker-compose` (v1).
    program: Vec<&'static str>,
    file: PathBuf,
}

fn output(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("{what}: cannot run it: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Compose {
    fn find(file: PathBuf) -> anyhow::Result<Self> {
        anyhow::ensure!(
            file.is_file(),
            "{} not found: run this from the repository's top folder or pass --compose-file",
            file.display()
        );
        for program in [vec!["docker", "compose"], vec!["docker-compose"]] {
            let ok = Command::new(program[0])
                .args(&program[1..])
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(Self { program, file });
            }
        }
        anyhow::bail!(
            "--via compose on the host needs Docker Compose (`docker compose` or \
             `docker-compose`) to start the stack"
        )
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let what = format!("{} {}", self.program.join(" "), args.join(" "));
        let mut cmd = Command::new(self.program[0]);
        cmd.args(&self.program[1..])
            .arg("-f")
            .arg(&self.file)
            .args(args);
        output(&mut cmd, &what)
    }
}

/// The compose stack through the Engine.
struct Stack {
    engine: Engine,
    project: String,
}

impl Stack {
    async fn service(&self, service: &str) -> anyhow::Result<Vec<Container>> {
        self.engine.service(&self.project, service).await
    }

    async fn one(&self, service: &str) -> anyhow::Result<Container> {
        self.service(service)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{service}: no running container"))
    }

    /// The services whose containers are not all healthy, with what they say.
    async fn unhealthy(&self, want: &[(&str, Option<u32>)]) -> anyhow::Result<Vec<String>> {
        let mut waiting = Vec::new();
        for &(service, count) in want {
            let cs = self.service(service).await?;
            if cs.is_empty() {
                waiting.push(format!("{service}: no container"));
            }
            if let Some(n) = count.filter(|n| *n as usize != cs.len()) {
                waiting.push(format!("{service}: {} of {n} containers", cs.len()));
            }
            waiting.extend(
                cs.iter()
                    .filter(|c| c.health != "healthy")
                    .map(|c| format!("{}: {}", c.name, c.health)),
            );
        }
        Ok(waiting)
    }

    async fn wait_healthy(&self, want: &[(&str, Option<u32>)]) -> anyhow::Result<()> {
        wait_until(
            "compose services healthy",
            HEALTHY_WITHIN,
            Duration::from_millis(500),
            || async move {
                match self.unhealthy(want).await {
                    Ok(w) if w.is_empty() => Check::Done(()),
                    Ok(w) => Check::Waiting(w.join(", ")),
                    Err(e) => Check::Failed(format!("{e:#}")),
                }
            },
        )
        .await?;
        Ok(())
    }

    /// nginx's worker processes (host PIDs), its master left out.
    async fn balancer_workers(&self, lb: &Container) -> anyhow::Result<Vec<u32>> {
        let mut all = self.engine.processes(&lb.id).await?;
        all.retain(|p| *p != lb.pid);
        Ok(all)
    }

    /// After a reload nginx starts new workers (which resolved the names again) and lets the
    /// old ones finish; waits until only new ones are left.
    async fn reload_balancer(&self) -> anyhow::Result<()> {
        let lb = self.one("balancer").await?;
        let before = self.balancer_workers(&lb).await?;
        self.engine.exec(&lb.id, &["nginx", "-s", "reload"]).await?;
        let (lb, before) = (&lb, &before);
        wait_until(
            "nginx's old workers gone after a reload",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async move {
                match self.balancer_workers(lb).await {
                    Ok(now) if !now.is_empty() && now.iter().all(|p| !before.contains(p)) => {
                        Check::Done(())
                    }
                    Ok(now) => Check::Waiting(format!("workers {now:?}")),
                    Err(e) => Check::Failed(format!("{e:#}")),
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Both servers at `n` replicas, healthy, and a balancer that resolved them.
    async fn scale(&self, n: u32) -> anyhow::Result<()> {
        eprintln!("compose: {n} replica(s) of each server ...");
        for service in SERVERS {
            self.engine.scale(&self.project, service, n).await?;
        }
        self.wait_healthy(&SERVERS.map(|s| (s, Some(n)))).await?;
        self.reload_balancer().await
    }
}

/// The services of docker-compose.yml, scaled to each job's replica count.
struct Services {
    stack: Stack,
    /// The compose CLI, when this command started the stack (and so stops it).
    started_here: Option<Compose>,
    /// Replicas of each server as found, restored at the end when the stack was running.
    found: u32,
    /// The budget given on the command line (else each container's compose limit holds).
    cpus_per_replica: Option<f64>,
    /// The replica count the services are scaled to now.
    scaled_to: Option<u32>,
    /// The budget of the replicas measured now.
    budget: Option<CpuBudget>,
}

impl Services {
    /// Leaves the stack as found: `down -v` when this command started it, else the replica
    /// counts it had.
    async fn finish(&mut self) -> anyhow::Result<()> {
        self.budget = None;
        if let Some(compose) = self.started_here.take() {
            eprintln!("compose: stopping what this command started ...");
            return compose.run(&["down", "-v"]).map(|_| ());
        }
        if self.scaled_to.is_some_and(|n| n != self.found) {
            self.stack.scale(self.found).await?;
        }
        Ok(())
    }
}

impl Drop for Services {
    /// Interrupted: what this command started does not outlive it.
    fn drop(&mut self) {
        if let Some(compose) = self.started_here.take() {
            let _ = compose.run(&["down", "-v"]);
        }
    }
}

impl Deployment for Services {
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        let n = job.replicas;
        if self.scaled_to != Some(n) {
            // The budget's containers may be about to go.
            self.budget = None;
            self.stack.scale(n).await?;
            self.scaled_to = Some(n);
        }
        let stack = &self.stack;
        let lb = stack.one("balancer").await?;
        let redis = stack.one("redis").await?;
        let service = job.server.binary();
        let replicas = stack.service(service).await?;
        anyhow::ensure!(
            replicas.len() == n as usize,
            "{service}: {} containers where {n} were asked for",
            replicas.len()
        );
        let ids: Vec<String> = replicas.iter().map(|c| c.id.clone()).collect();
        self.budget =
            Some(CpuBudget::containers(self.cpus_per_replica, &stack.engine, &ids).await?);
        let cpus_per_replica = self.cpus_per_replica.or(replicas[0].cpus);
        let oversubscribed =
            cpus_per_replica.unwrap_or(1.0) * n as f64 > procfs::available_cpus() as f64;
        let port = if job.server == ServerKind::Session {
            8081
        } else {
            8082
        };
        let address = |c: &Container| {
            c.ip.clone()
                .ok_or_else(|| anyhow::anyhow!("{} has no network address", c.name))
        };
        let workers = stack.balancer_workers(&lb).await?;
        let replica_workers = stack
            .engine
            .env(&replicas[0].id, "WORKERS")
            .await
            .and_then(|w| w.parse().ok())
            .unwrap_or(1);
        let target = Target {
            url: format!("http://{}:{port}", address(&lb)?),
            server: job.server,
            pids: Pids {
                // Host PIDs: on the host, their peak memory is read in /proc.
                replicas: replicas.iter().map(|c| c.pid).collect(),
                redis: vec![redis.pid],
                lb: std::iter::once(lb.pid)
                    .chain(workers.iter().copied())
                    .collect(),
                loadgen: std::process::id(),
                containers: Some(Containers {
                    engine: stack.engine.clone(),
                    replicas: ids,
                    redis: vec![redis.id.clone()],
                    lb: vec![lb.id.clone()],
                }),
            },
            redis_urls: vec![format!("redis://{}:6379", address(&redis)?)],
            store_rtt_ms: None,
            failover: None,
            replica_urls: replicas
                .iter()
                .map(|c| Ok(format!("http://{}:8080", address(c)?)))
                .collect::<anyhow::Result<_>>()?,
            lb_workers: workers.len().max(1) as u32,
            replica_workers,
            cpu_visible: true,
        };
        Ok(Stage {
            target,
            budgets: self.budget.iter().collect(),
            cpus_per_replica,
            oversubscribed,
            group: None,
        })
    }
}

/// The stack to measure: the one this process runs in, else the compose file's (started
/// here when it is not running).
async fn find_stack(args: &CompareArgs) -> anyhow::Result<(Stack, Option<Compose>)> {
    anyhow::ensure!(
        cfg!(target_os = "linux"),
        "--via compose reaches the containers' addresses directly: it needs a Linux host \
         (elsewhere, run `docker compose run --rm compare`)"
    );
    let engine = Engine::connect().await?;
    if let Some(project) = engine.own_project().await {
        eprintln!("compose: measuring project {project} from inside it ...");
        return Ok((Stack { engine, project }, None));
    }
    let compose = Compose::find(args.compose_file.clone())?;
    let running = |compose: &Compose| -> anyhow::Result<Option<String>> {
        Ok(compose
            .run(&["ps", "-q", "balancer"])?
            .lines()
            .next()
            .map(str::to_owned))
    };
    let mut started_here = None;
    let mut balancer = running(&compose)?;
    let is_up = match &balancer {
        Some(id) => engine
            .inspect(id)
            .await?
            .state
            .and_then(|s| s.running)
            .unwrap_or(false),
        None => false,
    };
    if !is_up {
        eprintln!("compose: starting the stack ...");
        let mut up = vec!["up", "-d"];
        up.extend(STACK);
        compose.run(&up)?;
        balancer = running(&compose)?;
        started_here = Some(compose);
    }
    let id = balancer.ok_or_else(|| anyhow::anyhow!("compose: no balancer container"))?;
    let project = engine
        .inspect(&id)
        .await?
        .config
        .and_then(|c| c.labels)
        .and_then(|l| l.get("com.docker.compose.project").cloned())
        .ok_or_else(|| anyhow::anyhow!("compose: the balancer has no compose project label"))?;
    Ok((Stack { engine, project }, started_here))
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective(crate::cli::Repeats::Rounds);
    let replicas = args.replica_counts();
    // Containers keep the compose file's limit unless a number is given.
    let cpus_per_replica = match args.cpus_per_replica {
        BudgetChoice::Cpus(c) => Some(c),
        BudgetChoice::Auto | BudgetChoice::Unlimited => None,
    };
    let (stack, started_here) = find_stack(&args).await?;
    let inside = started_here.is_none() && stack.engine.own_project().await.is_some();
    stack.wait_healthy(&STACK.map(|s| (s, None))).await?;
    let found = stack.service("session-server").await?.len() as u32;
    let stamp = env_info::utc_stamp();
    let out = model::out_dir(m.out.as_deref(), &stamp);
    let mut env = env_info::collect(Mode::Compose, &stamp);
    env.cpu_budget_method = match cpus_per_replica {
        Some(_) => "each container's CPU limit, set through the Docker Engine during measured \
                    windows"
            .into(),
        None => "the compose file's CPU limit per container (REPLICA_CPUS)".into(),
    };
    env.config = measurement_config(&m);
    for (k, v) in [
        (
            "via",
            if inside {
                format!("docker compose, from inside project {}", stack.project)
            } else {
                format!("docker compose ({})", args.compose_file.display())
            },
        ),
        ("engine", stack.engine.version.clone()),
        (
            "cpus_per_replica",
            cpus_per_replica.map_or("the compose file's limit".into(), |c| c.to_string()),
        ),
        (
            "lb",
            "nginx (deploy/nginx/nginx.conf), round robin, keep-alive to replicas".into(),
        ),
        (
            "loadgen",
            crate::measure::loadgen_description()
                + if inside {
                    " in the compare container"
                } else {
                    " on the host"
                },
        ),
        (
            "cpu_seen",
            "replicas, Redis and the balancer: each container's CPU counter from the Docker \
             Engine's stats (ns)"
                .into(),
        ),
    ] {
        env.config.insert(k.to_string(), v);
    }
    let mut journal = Journal::new(env, out.clone(), m.out.is_none())?;
    if !args.no_experiments && !args.experiments.is_empty() {
        journal.note(
            "--via compose runs the sweep only: the experiments stop, freeze and reconfigure \
             processes, which `loadtest compare` (local) does"
                .into(),
        );
    }
    let mut services = Services {
        stack,
        started_here,
        found,
        cpus_per_replica,
        scaled_to: None,
        budget: None,
    };
    let jobs = plan::sweep(
        &args.servers,
        &replicas,
        &m.scenarios,
        args.rounds(),
        &m.setup(),
    );
    let outcome = execute(&mut services, &jobs, &m, &mut journal).await;
    if let Err(e) = services.finish().await {
        journal.note(format!("compose: leaving the stack as found failed: {e:#}"));
    }
    if !inside {
        eprintln!("compose: the stack is left as found; `docker compose down -v` stops it");
    }
    let report = conclude(journal, outcome);
    if inside {
        give_to_owner(&out);
    }
    report
}

/// Inside the container this runs as root (the Engine's socket is root's); what it wrote
/// under the mounted reports folder is given to that folder's owner, so it is the user's
/// to read and delete.
fn give_to_owner(out: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Some(parent) = out.parent() else { return };
    let Ok(meta) = std::fs::metadata(parent) else {
        return;
    };
    let (uid, gid) = (Some(meta.uid()), Some(meta.gid()));
    fn walk(p: &Path, uid: Option<u32>, gid: Option<u32>) {
        let _ = std::os::unix::fs::lchown(p, uid, gid);
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                walk(&e.path(), uid, gid);
            }
        }
    }
    walk(out, uid, gid);
    let _ = std::os::unix::fs::lchown(parent.join("latest"), uid, gid);
}
