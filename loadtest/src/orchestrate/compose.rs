//! `loadtest compare --via compose`: the replica sweep on the services of
//! docker-compose.yml. Each replica count is `docker compose up -d --scale ...`, then
//! `nginx -s reload` so the balancer resolves the service names again and sees the new
//! replicas. The load generator runs here and talks to the containers' own addresses (no
//! port forwarding in the way); their processes are read in /proc like local ones, so
//! results.json carries the same figures as a local `compare`. Linux hosts only.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use plumbing::{wait_until, Check};

use super::plan::{self, Job};
use super::{conclude, execute, measurement_config, Deployment, Journal, Stage};
use crate::cli::{BudgetChoice, CompareArgs};
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::{env_info, procfs};
use crate::measure::snapshot::Pids;
use crate::measure::Target;
use crate::model::{self, Mode, ServerKind};

/// How long `up` may take to get every container healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(180);

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
            cfg!(target_os = "linux"),
            "--via compose reads the containers' processes in /proc and reaches their \
             addresses directly: it needs a Linux host (elsewhere, run `docker compose up`)"
        );
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
            "--via compose needs Docker Engine with Compose (`docker compose` or `docker-compose`)"
        )
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.program[0]);
        cmd.args(&self.program[1..])
            .arg("-f")
            .arg(&self.file)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let what = format!("{} {}", self.program.join(" "), args.join(" "));
        output(&mut self.cmd(args), &what)
    }

    /// The containers of `service`, running or not.
    fn ids(&self, service: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .run(&["ps", "-q", service])?
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// `docker inspect -f FORMAT` of each container, in order.
fn inspect(ids: &[String], format: &str) -> anyhow::Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = output(
        Command::new("docker")
            .args(["inspect", "-f", format])
            .args(ids),
        "docker inspect",
    )?;
    Ok(out.lines().map(|l| l.trim().to_owned()).collect())
}

/// One address of each container on the compose network.
fn addresses(ids: &[String]) -> anyhow::Result<Vec<String>> {
    inspect(
        ids,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
    )?
    .into_iter()
    .map(|l| {
        l.split_whitespace()
            .next()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("a container has no network address"))
    })
    .collect()
}

fn pids(ids: &[String]) -> anyhow::Result<Vec<u32>> {
    inspect(ids, "{{.State.Pid}}")?
        .iter()
        .map(|p| {
            p.parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| anyhow::anyhow!("a container is not running"))
        })
        .collect()
}

/// A container's CPU limit in CPUs, from either way Docker stores it.
fn cpu_limit(id: &str) -> anyhow::Result<Option<f64>> {
    let line = inspect(
        &[id.to_owned()],
        "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}",
    )?;
    Ok(line.first().and_then(|l| parse_cpu_limit(l)))
}

/// `NanoCpus CpuQuota CpuPeriod` (Compose v1 and v2 set one or the other) in CPUs.
fn parse_cpu_limit(line: &str) -> Option<f64> {
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match nums[..] {
        [nano, _, _] if nano > 0.0 => Some(nano / 1e9),
        [_, quota, period] if quota > 0.0 && period > 0.0 => Some(quota / period),
        _ => None,
    }
}

/// The services that are not all healthy yet, with what they say.
fn unhealthy(compose: &Compose, services: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut waiting = Vec::new();
    for service in services {
        let ids = compose.ids(service)?;
        let states = inspect(
            &ids,
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
        )?;
        if ids.is_empty() {
            waiting.push(format!("{service}: no container"));
        }
        for state in states {
            if state != "healthy" {
                waiting.push(format!("{service}: {state}"));
            }
        }
    }
    Ok(waiting)
}

/// Waits until every container of these services reports healthy.
async fn wait_healthy(compose: &Compose, services: &[&str]) -> anyhow::Result<()> {
    wait_until(
        "compose services healthy",
        HEALTHY_WITHIN,
        Duration::from_millis(500),
        || {
            let seen = unhealthy(compose, services);
            async move {
                match seen {
                    Ok(w) if w.is_empty() => Check::Done(()),
                    Ok(w) => Check::Waiting(w.join(", ")),
                    Err(e) => Check::Failed(format!("{e:#}")),
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// After a reload nginx starts new workers (which resolved the names again) and lets the
/// old ones finish; wait until only new ones are left.
async fn reload_balancer(compose: &Compose, master: u32) -> anyhow::Result<()> {
    let before = procfs::children(master);
    compose.run(&["exec", "-T", "balancer", "nginx", "-s", "reload"])?;
    wait_until(
        "nginx's old workers gone after a reload",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            let now = procfs::children(master);
            let fresh = !now.is_empty() && now.iter().all(|p| !before.contains(p));
            async move {
                if fresh {
                    Check::Done(())
                } else {
                    Check::Waiting(format!("workers {now:?}"))
                }
            }
        },
    )
    .await?;
    Ok(())
}

/// The services of docker-compose.yml, scaled to each job's replica count.
struct Services {
    compose: Compose,
    /// Whether this command started the stack (and so stops it).
    started_here: bool,
    /// The budget given on the command line (else each container's compose limit holds).
    cpus_per_replica: Option<f64>,
    /// The replica count the services are scaled to now.
    scaled_to: Option<u32>,
    /// The budget of the replicas measured now (their own cgroups).
    budget: Option<CpuBudget>,
}

impl Services {
    /// `up -d --scale ...`, health, and a balancer that resolved the new replicas.
    async fn scale(&mut self, n: u32) -> anyhow::Result<()> {
        eprintln!("compose: {n} replica(s) of each server ...");
        let scale_s = format!("session-server={n}");
        let scale_t = format!("token-server={n}");
        let mut up = self.compose.cmd(&[
            "up",
            "-d",
            "--scale",
            &scale_s,
            "--scale",
            &scale_t,
            "redis",
            "session-server",
            "token-server",
            "balancer",
        ]);
        // With a budget, replicas start with the whole machine and are held to the budget
        // during measured windows only, as `compare` does locally: set-up (two password
        // hashes per user) at 0.1 CPU would outlast any warm-up.
        if let Some(budget) = self.cpus_per_replica {
            up.env("REPLICA_CPUS", procfs::available_cpus().to_string())
                .env("WORKERS", budget.ceil().max(1.0).to_string());
        }
        output(&mut up, "docker compose up")?;
        wait_healthy(
            &self.compose,
            &["redis", "session-server", "token-server", "balancer"],
        )
        .await?;
        let lb_master = self.balancer_pid()?;
        reload_balancer(&self.compose, lb_master).await?;
        self.scaled_to = Some(n);
        Ok(())
    }

    fn balancer_pid(&self) -> anyhow::Result<u32> {
        pids(&self.compose.ids("balancer")?)?
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no balancer"))
    }

    /// `down -v`, when this command started the stack.
    fn stop(&mut self) -> anyhow::Result<()> {
        if !std::mem::take(&mut self.started_here) {
            return Ok(());
        }
        eprintln!("compose: stopping what this command started ...");
        self.compose.run(&["down", "-v"]).map(|_| ())
    }
}

impl Drop for Services {
    /// Interrupted: what this command started does not outlive it.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Deployment for Services {
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        let n = job.replicas;
        if self.scaled_to != Some(n) {
            self.scale(n).await?;
        }
        let balancer = self.compose.ids("balancer")?;
        let lb_master = self.balancer_pid()?;
        let lb_ip = addresses(&balancer)?.remove(0);
        let mut lb = vec![lb_master];
        lb.extend(procfs::children(lb_master));
        let redis_ids = self.compose.ids("redis")?;
        let redis_pid = pids(&redis_ids)?.first().copied();
        let redis_url = addresses(&redis_ids)?
            .first()
            .map(|ip| format!("redis://{ip}:6379"));
        let service = job.server.binary();
        let ids = self.compose.ids(service)?;
        anyhow::ensure!(
            ids.len() == n as usize,
            "{service}: {} containers where {n} were asked for",
            ids.len()
        );
        let replica_pids = pids(&ids)?;
        self.budget = Some(CpuBudget::containers(self.cpus_per_replica, &replica_pids)?);
        let cpus_per_replica = match self.cpus_per_replica {
            Some(c) => Some(c),
            None => cpu_limit(&ids[0])?,
        };
        let cpus = procfs::available_cpus();
        let oversubscribed = cpus_per_replica.unwrap_or(1.0) * n as f64 > cpus as f64;
        let port = if job.server == ServerKind::Session {
            8081
        } else {
            8082
        };
        let target = Target {
            url: format!("http://{lb_ip}:{port}"),
            server: job.server,
            pids: Pids {
                replicas: replica_pids,
                redis: redis_pid.into_iter().collect(),
                lb: lb.clone(),
                loadgen: std::process::id(),
            },
            redis_urls: redis_url.into_iter().collect(),
            store_rtt_ms: None,
            failover: None,
            replica_urls: addresses(&ids)?
                .into_iter()
                .map(|ip| format!("http://{ip}:8080"))
                .collect(),
            lb_workers: (lb.len() - 1).max(1) as u32,
            // As `up` set it: one worker per whole CPU of the budget (the compose file's
            // default is 1).
            replica_workers: self
                .cpus_per_replica
                .map_or(1, |c| c.ceil().max(1.0) as u32),
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

pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective(crate::cli::Repeats::Rounds);
    let compose = Compose::find(args.compose_file.clone())?;
    let replicas = args.replica_counts();
    // `ps -q` also lists stopped containers (e.g. after `up --exit-code-from`).
    let started_here = !inspect(&compose.ids("balancer")?, "{{.State.Running}}")?
        .iter()
        .any(|r| r == "true");
    // Containers keep the compose file's limit unless a number is given: a calibration
    // would need the containers' CPU, which is not visible from here.
    let cpus_per_replica = match args.cpus_per_replica {
        BudgetChoice::Cpus(c) => Some(c),
        BudgetChoice::Auto | BudgetChoice::Unlimited => None,
    };
    let stamp = env_info::utc_stamp();
    let out = model::out_dir(m.out.as_deref(), &stamp);
    let mut env = env_info::collect(Mode::Compose, &stamp);
    env.cpu_budget_method = match cpus_per_replica {
        Some(_) => "the containers' cgroup cpu quota, during measured windows".into(),
        None => "the compose file's CPU limit per container (REPLICA_CPUS)".into(),
    };
    env.config = measurement_config(&m);
    for (k, v) in [
        (
            "via",
            format!("docker compose ({})", args.compose_file.display()),
        ),
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
            crate::measure::loadgen_description() + " on the host",
        ),
    ] {
        env.config.insert(k.to_string(), v);
    }
    let mut journal = Journal::new(env, out, m.out.is_none())?;
    if !args.no_experiments && !args.experiments.is_empty() {
        journal.note(
            "--via compose runs the sweep only: the experiments stop, freeze and reconfigure \
             processes, which `loadtest compare` (local) does"
                .into(),
        );
    }
    let mut services = Services {
        compose,
        started_here,
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
    services.budget = None;
    if services.started_here {
        if let Err(e) = services.stop() {
            journal.note(format!("compose down failed: {e:#}"));
        }
    } else {
        eprintln!("compose: left running as found, at the last replica count; `docker compose down -v` stops it");
    }
    conclude(journal, outcome)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_limit;

    #[test]
    fn cpu_limits_either_way_docker_stores_them() {
        assert_eq!(parse_cpu_limit("500000000 0 0"), Some(0.5));
        assert_eq!(parse_cpu_limit("0 25000 100000"), Some(0.25));
        assert_eq!(parse_cpu_limit("0 0 0"), None);
        assert_eq!(parse_cpu_limit("0 -1 100000"), None);
        assert_eq!(parse_cpu_limit(""), None);
    }
}
