//! `loadtest compare --via compose`: the same `compare` as the local one (calibrated
//! replica sweep, experiments, probes, report) on the services of docker-compose.yml,
//! driven through the Docker Engine API. It runs on the host (the stack started with
//! `docker compose up -d` when it is not running) or inside the stack's own `compare`
//! service, which is given the Engine's socket. Each job's replicas are copies of the
//! service's first container as found (more of them, fewer, or all replaced by copies set
//! up for an experiment), then `nginx -s reload` in the balancer so it resolves the service
//! names again. The load generator talks to the containers' own addresses (no port
//! forwarding in the way); replica, Redis and balancer CPU come from the Engine's counters
//! of each container, faults are the Engine's pause (Redis) and kill (a replica), and a
//! probe's server is a container of its own. Linux hosts only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use plumbing::{wait_until, Check};

use super::plan::{self, Job};
use super::probing::{self, ProbeHost, ProbeServer};
use super::{calibrate, compare_config, conclude, secret, Deployment, Journal, Stage};
use crate::cli::{BudgetChoice, CompareArgs, Effective as Measure};
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::engine::{CloneOf, Container, Engine, Variation};
use crate::infra::topology::{Balance, Group, GroupSpec, StoreAddr};
use crate::infra::{env_info, procfs};
use crate::measure::probes::MemorySource;
use crate::measure::snapshot::{Containers, Pids};
use crate::measure::{browser, Target};
use crate::model::{self, Experiment, Mode, ServerKind, Variant};

/// How long the services may take to get every container healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(180);

/// How much of an unhealthy container's log an error quotes.
const LOG_LINES: usize = 20;

/// The services the sweep needs, as docker-compose.yml names them.
const STACK: [&str; 4] = ["redis", "session-server", "token-server", "balancer"];
const SERVERS: [&str; 2] = ["session-server", "token-server"];

/// The balancer's ports (deploy/nginx/nginx.conf): each group round robin, and the session
/// replicas again with sticky routing (a hash of each user's id, experiment `shared-store`).
const SESSION_PORT: u16 = 8081;
const TOKEN_PORT: u16 = 8082;
const SESSION_STICKY_PORT: u16 = 8083;

/// Where an EdDSA replica finds the Ed25519 key every replica of the run shares (written
/// into each container before it starts).
const ED25519_PEM: &str = "/tmp/ed25519-local-only.pem";

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
    /// Each server service's first container as found: what every copy is made from.
    templates: HashMap<&'static str, ContainerInspectResponse>,
    /// The probe containers made so far (removed by [`Stack::remove_probes`]).
    probes: Mutex<Vec<String>>,
    probe_number: AtomicU32,
}

impl Stack {
    fn new(engine: Engine, project: String) -> Self {
        Self {
            engine,
            project,
            templates: HashMap::new(),
            probes: Mutex::new(Vec::new()),
            probe_number: AtomicU32::new(0),
        }
    }

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
        let healthy = wait_until(
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
        .await;
        match healthy {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("{e}{}", self.logs_of_unhealthy(want).await)),
        }
    }

    /// The last lines of every container of `want` that is not healthy, read through the
    /// Engine: why a replica never answered its health check.
    async fn logs_of_unhealthy(&self, want: &[(&str, Option<u32>)]) -> String {
        let mut said = String::new();
        for (service, _) in want {
            let Ok(cs) = self.engine.service(&self.project, service).await else {
                continue;
            };
            for c in cs.iter().filter(|c| c.health != "healthy") {
                let tail = self.engine.log_tail(&c.id, LOG_LINES).await;
                said.push_str(&format!(
                    "\n{} ({}), its last lines:\n{tail}",
                    c.name, c.health
                ));
            }
        }
        said
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

    /// Remembers each server service's first container, to copy from.
    async fn keep_templates(&mut self) -> anyhow::Result<()> {
        for service in SERVERS {
            let first = self.one(service).await?;
            let template = self.engine.inspect(&first.id).await?;
            self.templates.insert(service, template);
        }
        Ok(())
    }

    fn template(&self, service: &str) -> anyhow::Result<&ContainerInspectResponse> {
        self.templates
            .get(service)
            .ok_or_else(|| anyhow::anyhow!("{service}: no container to copy from"))
    }

    /// `service` at `n` running replicas set up as `variation` (`now` says how it is set up
    /// now): dead containers (a killed replica) removed, every container replaced when the
    /// set-up differs, else copies added or the highest-numbered removed; then healthy, and
    /// a balancer that resolved them. Nothing is done when nothing differs.
    async fn deploy(
        &self,
        service: &'static str,
        n: u32,
        variation: &Variation,
        now: &mut Variation,
    ) -> anyhow::Result<()> {
        let dead = self.engine.stopped(&self.project, service).await?;
        for id in &dead {
            self.engine.remove(id).await?;
        }
        let mut running = self.service(service).await?;
        if *now == *variation && running.len() == n as usize && dead.is_empty() {
            return Ok(());
        }
        eprintln!(
            "compose: {n} replica(s) of {service}{} ...",
            if variation.env.is_empty() {
                String::new()
            } else {
                let keys: Vec<&str> = variation.env.iter().map(|(k, _)| k.as_str()).collect();
                format!(" with {}", keys.join(", "))
            }
        );
        if *now != *variation {
            for c in running.drain(..) {
                self.engine.remove(&c.id).await?;
            }
            *now = variation.clone();
        }
        for c in running.iter().skip(n as usize) {
            self.engine.remove(&c.id).await?;
        }
        let template = self.template(service)?;
        let highest = running.iter().map(|c| c.number).max().unwrap_or(0);
        let missing = (n as usize).saturating_sub(running.len()) as u32;
        for number in highest + 1..=highest + missing {
            let clone = CloneOf {
                service,
                number,
                probe: false,
                variation,
            };
            self.engine
                .clone_container(template, &self.project, clone)
                .await?;
        }
        self.wait_healthy(&[(service, Some(n))]).await?;
        self.reload_balancer().await
    }

    /// One replica of `service` set up as `variation`, in a service of its own (no balancer
    /// sends it traffic), healthy.
    async fn probe(
        &self,
        service: &'static str,
        variation: &Variation,
    ) -> anyhow::Result<Container> {
        let number = self.probe_number.fetch_add(1, Ordering::SeqCst) + 1;
        let clone = CloneOf {
            service,
            number,
            probe: true,
            variation,
        };
        let made = self
            .engine
            .clone_container(self.template(service)?, &self.project, clone)
            .await?;
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(made.id.clone());
        let id = &made.id;
        let healthy = wait_until(
            "a probe's server healthy",
            HEALTHY_WITHIN,
            Duration::from_millis(250),
            || async move {
                match self
                    .engine
                    .inspect(id)
                    .await
                    .map(crate::infra::engine::describe)
                {
                    Ok(c) if c.health == "healthy" => Check::Done(c),
                    Ok(c) if c.running => Check::Waiting(c.health),
                    Ok(c) => Check::Failed(format!("{}: {}", c.name, c.health)),
                    Err(e) => Check::Failed(format!("{e:#}")),
                }
            },
        )
        .await;
        match healthy {
            Ok(c) => Ok(c),
            Err(e) => {
                let tail = self.engine.log_tail(id, LOG_LINES).await;
                Err(anyhow::anyhow!("{e}; its last lines:\n{tail}"))
            }
        }
    }

    async fn remove_probes(&self) -> anyhow::Result<()> {
        let ids: Vec<String> =
            std::mem::take(&mut *self.probes.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            self.engine.remove(&id).await?;
        }
        Ok(())
    }
}

/// The services of docker-compose.yml, set up for each job.
struct Services {
    stack: Stack,
    /// The compose CLI, when this command started the stack (and so stops it).
    started_here: Option<Compose>,
    /// Replicas of each server as found, restored at the end when the stack was running.
    found: u32,
    /// The replicas' budget, given or calibrated (else each container's compose limit holds).
    cpus_per_replica: Option<f64>,
    /// How each server service is set up now (its copies' extra environment and files).
    deployed: HashMap<&'static str, Variation>,
    /// The budget of the replicas measured now, and Redis's in experiment `store-bound`.
    budget: Option<CpuBudget>,
    store_budget: Option<CpuBudget>,
    /// The Ed25519 key every EdDSA replica of this run shares (PKCS#8 PEM, made for it).
    ed25519_pem: Vec<u8>,
}

impl Services {
    /// Leaves the stack as found: `down -v` when this command started it, else every server
    /// with the replica count and set-up it had.
    async fn finish(&mut self) -> anyhow::Result<()> {
        self.budget = None;
        self.store_budget = None;
        self.stack.remove_probes().await?;
        if let Some(compose) = self.started_here.take() {
            eprintln!("compose: stopping what this command started ...");
            return compose.run(&["down", "-v", "--remove-orphans"]).map(|_| ());
        }
        for service in SERVERS {
            let mut now = self.deployed.remove(service).unwrap_or_default();
            self.stack
                .deploy(service, self.found, &Variation::default(), &mut now)
                .await?;
        }
        Ok(())
    }

    /// How `job`'s replicas differ from the service's own: the variant's environment, the
    /// job's own (a token lifetime), and the key file of an EdDSA replica.
    fn variation(&self, job: &Job) -> (Variation, Balance) {
        let (mut env, balance) = plan::setup(job.setup.variant, Path::new(ED25519_PEM));
        env.extend(job.extra_env());
        let files = if job.setup.variant == Variant::Eddsa {
            vec![(ED25519_PEM.to_owned(), self.ed25519_pem.clone())]
        } else {
            Vec::new()
        };
        (Variation { env, files }, balance)
    }
}

impl Drop for Services {
    /// Interrupted: what this command started does not outlive it.
    fn drop(&mut self) {
        if let Some(compose) = self.started_here.take() {
            let _ = compose.run(&["down", "-v", "--remove-orphans"]);
        }
    }
}

/// Whether the compose stack can set up `job`: a Redis Cluster and the delaying proxy are
/// made by the local `compare` only.
fn runs_in_compose(job: &Job) -> bool {
    job.setup.redis_primaries.is_none() && job.setup.store_delay_ms.is_none()
}

impl Deployment for Services {
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        anyhow::ensure!(
            runs_in_compose(job),
            "{}: a Redis Cluster or a delayed store is set up by the local `compare` only",
            job.describe(job.server.main_scenario())
        );
        let n = job.replicas;
        let service = job.server.binary();
        let (variation, balance) = self.variation(job);
        // The budgets' containers may be about to go.
        self.budget = None;
        self.store_budget = None;
        let now = self.deployed.entry(service).or_default();
        self.stack.deploy(service, n, &variation, now).await?;
        let stack = &self.stack;
        let lb = stack.one("balancer").await?;
        let redis = stack.one("redis").await?;
        let replicas = stack.service(service).await?;
        anyhow::ensure!(
            replicas.len() == n as usize,
            "{service}: {} containers where {n} were asked for",
            replicas.len()
        );
        let ids: Vec<String> = replicas.iter().map(|c| c.id.clone()).collect();
        let machine = procfs::available_cpus() as f64;
        // Unbudgeted: a limit of every CPU of the machine, which never holds a replica back.
        let limit = if job.setup.unbudgeted {
            Some(machine)
        } else {
            self.cpus_per_replica
        };
        self.budget = Some(CpuBudget::containers(limit, &stack.engine, &ids).await?);
        if let Some(c) = job.setup.redis_cpus {
            let store =
                CpuBudget::containers(Some(c), &stack.engine, std::slice::from_ref(&redis.id))
                    .await?;
            self.store_budget = Some(store.as_store());
        }
        let cpus_per_replica = if job.setup.unbudgeted {
            None
        } else {
            self.cpus_per_replica.or(replicas[0].cpus)
        };
        let oversubscribed = cpus_per_replica.unwrap_or(1.0) * n as f64 > machine;
        let port = match (job.server, balance) {
            (ServerKind::Session, Balance::Sticky) => SESSION_STICKY_PORT,
            (ServerKind::Session, Balance::RoundRobin) => SESSION_PORT,
            (_, Balance::Sticky) => anyhow::bail!("sticky routing is set up for sessions only"),
            (_, Balance::RoundRobin) => TOKEN_PORT,
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
            budgets: self.budget.iter().chain(self.store_budget.iter()).collect(),
            cpus_per_replica,
            oversubscribed,
            group: None,
        })
    }
}

fn address(c: &Container) -> anyhow::Result<String> {
    c.ip.clone()
        .ok_or_else(|| anyhow::anyhow!("{} has no network address", c.name))
}

/// A probe's server: one container of its own, reached at its address.
struct ProbeContainer {
    engine: Engine,
    container: Container,
}

impl ProbeServer for ProbeContainer {
    fn url(&self) -> String {
        format!(
            "http://{}:8080",
            self.container.ip.as_deref().unwrap_or("127.0.0.1")
        )
    }

    fn memory(&self) -> MemorySource {
        MemorySource::Container {
            engine: self.engine.clone(),
            id: self.container.id.clone(),
        }
    }
}

/// The probes' servers as containers of the stack.
struct ComposeProbes<'a> {
    stack: &'a Stack,
    redis_url: String,
    admin: (String, String),
}

impl ProbeHost for ComposeProbes<'_> {
    type Server = ProbeContainer;

    async fn start(
        &self,
        kind: ServerKind,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<ProbeContainer> {
        let variation = Variation {
            env,
            files: Vec::new(),
        };
        let container = self.stack.probe(kind.binary(), &variation).await?;
        anyhow::ensure!(
            container.ip.is_some(),
            "{} has no network address",
            container.name
        );
        Ok(ProbeContainer {
            engine: self.stack.engine.clone(),
            container,
        })
    }

    fn redis_url(&self) -> String {
        self.redis_url.clone()
    }

    fn jwt_secret(&self) -> Option<String> {
        let env = self
            .stack
            .template("token-server")
            .ok()?
            .config
            .as_ref()?
            .env
            .as_ref()?;
        env.iter()
            .find_map(|kv| kv.strip_prefix("JWT_SECRET=").map(str::to_owned))
    }

    fn admin(&self) -> (String, String) {
        self.admin.clone()
    }

    async fn browser(
        &self,
        ttl_s: u64,
        chromium: Option<&Path>,
    ) -> Option<anyhow::Result<model::BrowserStudy>> {
        let dir = std::env::temp_dir().join(format!("svt-browser-{}", std::process::id()));
        let study = async {
            let servers =
                BesideTheBrowser::new(self.redis_url.clone(), dir.join("servers"), chromium)?;
            let token_life = (ttl_s, plan::LEEWAY_S);
            browser::study(
                &servers,
                chromium,
                dir.join("study"),
                token_life,
                self.admin.clone(),
            )
            .await
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        Some(study)
    }
}

/// Experiment `browser` through compose: Chromium, its TLS balancer (nginx) and one replica
/// of the server under test run as processes where the load tester runs (the compare
/// service's image, the Dockerfile's `lesson` stage, holds them all), on the stack's Redis.
/// The experiment measures what a browser sends, blocks and leaks, not how fast: where the
/// servers run does not change it, and the browser must reach them by the names it is told.
struct BesideTheBrowser {
    bins: PathBuf,
    redis_url: String,
    session_key: String,
    jwt_secret: String,
    logs: PathBuf,
}

impl BesideTheBrowser {
    /// `skipped`, naming the image that has them, when Chromium, nginx or a server binary
    /// is not here.
    fn new(redis_url: String, logs: PathBuf, chromium: Option<&Path>) -> anyhow::Result<Self> {
        let skipped = |what: String| {
            anyhow::anyhow!(
                "skipped: {what} here (`docker compose run --rm compare` runs the image of \
                 the Dockerfile's `lesson` stage, which has Chromium, nginx and both servers)"
            )
        };
        browser::find_chromium(chromium).map_err(|_| skipped("no Chromium".into()))?;
        crate::infra::topology::find_tool("nginx", "nginx")
            .map_err(|_| skipped("no nginx for the browser's TLS balancer".into()))?;
        let exe = std::env::current_exe()?;
        let bins = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        for kind in [ServerKind::Session, ServerKind::Token] {
            let bin = bins.join(kind.binary());
            anyhow::ensure!(bin.is_file(), skipped(format!("no {}", bin.display())));
        }
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            bins,
            redis_url,
            session_key: secret(64),
            jwt_secret: secret(48),
            logs,
        })
    }
}

impl browser::Servers for BesideTheBrowser {
    async fn start(&self, kind: ServerKind, env: Vec<(String, String)>) -> anyhow::Result<Group> {
        let spec = GroupSpec {
            kind,
            replicas: 1,
            bin_dir: &self.bins,
            store: StoreAddr::Url(self.redis_url.clone()),
            session_key: &self.session_key,
            jwt_secret: &self.jwt_secret,
            lb_workers: 1,
            workers_per_replica: 1,
            extra_env: env,
            balance: Balance::RoundRobin,
        };
        let mut unlimited = CpuBudget::new(None)?;
        Group::start(&spec, &mut unlimited, &self.logs).await
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
        return Ok((Stack::new(engine, project), None));
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
    Ok((Stack::new(engine, project), started_here))
}

/// The environment of the report: how the stack was reached, the Engine, and what each
/// figure was read from.
fn environment(
    args: &CompareArgs,
    m: &Measure,
    stack: &Stack,
    inside: bool,
    stamp: &str,
) -> model::Environment {
    let mut env = env_info::collect(Mode::Compose, stamp);
    env.cpu_budget_method = match args.cpus_per_replica {
        BudgetChoice::Unlimited => {
            "the compose file's CPU limit per container (REPLICA_CPUS)".into()
        }
        _ => "each container's CPU limit, set through the Docker Engine during measured windows"
            .into(),
    };
    env.config = compare_config(args, m);
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
            "lb",
            "nginx (deploy/nginx/nginx.conf), round robin, keep-alive to replicas".into(),
        ),
        (
            "sticky_routing",
            format!(
                "nginx `{}` (deploy/nginx/nginx.conf, port {SESSION_STICKY_PORT})",
                Balance::Sticky.directive().unwrap_or_default()
            ),
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
        (
            "faults",
            "Redis outage: the Engine pauses the Redis container (its cgroup frozen); replica \
             loss: the Engine kills a replica's container (SIGKILL, restart policy off)"
                .into(),
        ),
    ] {
        env.config.insert(k.to_string(), v);
    }
    env
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective(crate::cli::Repeats::Rounds);
    let replicas = args.replica_counts();
    let (mut stack, started_here) = find_stack(&args).await?;
    let inside = started_here.is_none() && stack.engine.own_project().await.is_some();
    stack.wait_healthy(&STACK.map(|s| (s, None))).await?;
    stack.keep_templates().await?;
    let found = stack.service("session-server").await?.len() as u32;
    let stamp = env_info::utc_stamp();
    let out = model::out_dir(m.out.as_deref(), &stamp);
    let env = environment(&args, &m, &stack, inside, &stamp);
    let mut journal = Journal::new(env, out.clone(), m.out.is_none())?;
    let mut services = Services {
        stack,
        started_here,
        found,
        cpus_per_replica: None,
        deployed: HashMap::new(),
        budget: None,
        store_budget: None,
        ed25519_pem: token_server::keys::generate_ed25519_pem()?.into_bytes(),
    };
    let outcome = run(&args, &m, &replicas, &mut services, &mut journal).await;
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

/// The budget, the sweep, the experiments that run in containers, the latency curve and
/// the probes, as the local `compare` runs them.
async fn run(
    args: &CompareArgs,
    m: &Measure,
    replicas: &[u32],
    services: &mut Services,
    journal: &mut Journal,
) -> anyhow::Result<()> {
    let max_replicas = replicas.iter().copied().max().unwrap_or(1);
    let cpus = procfs::available_cpus();
    services.cpus_per_replica = match args.cpus_per_replica {
        BudgetChoice::Cpus(c) => Some(c),
        BudgetChoice::Unlimited => None,
        BudgetChoice::Auto => {
            let lb = services.stack.one("balancer").await?;
            let lb_workers = services.stack.balancer_workers(&lb).await?.len().max(1) as u32;
            let room = calibrate::Room {
                max_replicas,
                machine_cpus: cpus,
                lb_workers,
            };
            Some(calibrate::calibrate(services, &args.servers, m, room, journal).await?)
        }
    };
    let chosen = services.cpus_per_replica;
    journal.update(|r| {
        r.environment.config.insert(
            "cpus_per_replica".into(),
            match (args.cpus_per_replica, chosen) {
                (BudgetChoice::Auto, Some(c)) => format!("{c} (chosen by the calibration)"),
                (_, Some(c)) => format!("{c} (given)"),
                (_, None) => "the compose file's limit".into(),
            },
        );
    })?;
    let sweep = plan::sweep(
        &args.servers,
        replicas,
        &m.scenarios,
        args.rounds(),
        &m.setup(),
    );
    let plan_experiments = |store_cpus| {
        if args.no_experiments {
            plan::Plan::default()
        } else {
            let mut plan =
                plan::experiments(&args.experiments, replicas, m.quick, m.users, store_cpus);
            plan.jobs.retain(runs_in_compose);
            plan
        }
    };
    for e in &args.experiments {
        if !args.no_experiments && matches!(e, Experiment::StoreCluster | Experiment::StoreLatency)
        {
            journal.note(format!(
                "{}: not run through docker compose (its Redis Cluster or delaying proxy is set \
                 up by the local `loadtest compare`)",
                e.name()
            ));
        }
    }
    let counted = plan_experiments(f64::NAN);
    super::announce(&sweep, m, journal);
    super::announce(&counted.jobs, m, journal);
    let curve_runs = plan::latency_curve_runs(&counted);
    journal.expect(curve_runs, (m.warmup.0 + m.duration.0) * curve_runs as u32);
    super::execute_announced(services, &sweep, m, journal).await?;
    let store_cpus = calibrate::store_budget(
        calibrate::session_redis_ratio(journal.results()),
        chosen,
        max_replicas,
    );
    let experiments = plan_experiments(store_cpus);
    super::execute_announced(services, &experiments.jobs, m, journal).await?;
    let curve = plan::latency_curve(journal.results());
    super::execute_announced(services, &curve, m, journal).await?;
    if experiments.probes.is_empty() {
        return Ok(());
    }
    // The probes' servers go beside the stack's own: the replicas' budget is off.
    services.budget = None;
    services.store_budget = None;
    let redis = services.stack.one("redis").await?;
    let host = ComposeProbes {
        stack: &services.stack,
        redis_url: format!("redis://{}:6379", address(&redis)?),
        admin: ("ltadmin".into(), secret(24)),
    };
    let probed = probing::run(
        &host,
        &experiments.probes,
        args.chromium.as_deref(),
        journal,
    )
    .await;
    services.stack.remove_probes().await?;
    probed
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
