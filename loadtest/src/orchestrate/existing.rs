//! `loadtest run`: measure a deployment that already runs (docker compose, another
//! machine), one or several groups into one report.

use std::path::PathBuf;
use std::time::Duration;

use plumbing::{wait_until, Check};

use super::plan::{self, Job};
use super::{conclude, execute, measurement_config, Deployment, Journal, Stage};
use crate::cli::{KindValue, RunArgs};
use crate::infra::env_info;
use crate::measure::snapshot::Pids;
use crate::measure::Target;
use crate::model::{self, Mode, ServerKind};

fn base_url(raw: &str, what: &str) -> anyhow::Result<String> {
    let url = raw.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{what} must be an http(s) URL, not `{raw}`"
    );
    Ok(url)
}

/// Waits until `url/healthz` answers 200, for at most 60 s (a deployment that is still
/// starting is not an error; one that never answers is).
pub async fn wait_healthy(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let health = format!("{url}/healthz");
    wait_until(
        &health,
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            match http.get(&health).send().await {
                Ok(r) if r.status() == 200 => Check::Done(()),
                Ok(r) => Check::Waiting(format!("answered {}", r.status())),
                Err(e) => Check::Waiting(format!("does not answer: {e}")),
            }
        },
    )
    .await?;
    Ok(())
}

/// Every address `host:port` resolves to, as a base URL each.
async fn resolve_all(host_port: &str) -> anyhow::Result<Vec<String>> {
    let mut addrs: Vec<_> = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| anyhow::anyhow!("--replicas-of {host_port}: cannot resolve it: {e}"))?
        .filter(|a| a.is_ipv4())
        .map(|a| format!("http://{a}"))
        .collect();
    addrs.sort();
    addrs.dedup();
    anyhow::ensure!(!addrs.is_empty(), "--replicas-of {host_port}: no address");
    Ok(addrs)
}

/// The replicas behind `server`: its own URLs, else those of the binary that serves it
/// (`public` is answered by the token-server replicas).
async fn replica_urls(args: &RunArgs, server: ServerKind) -> anyhow::Result<Vec<String>> {
    let kinds: &[ServerKind] = if server == ServerKind::Public {
        &[ServerKind::Public, ServerKind::Token]
    } else {
        &[server]
    };
    for &kind in kinds {
        let mine = |v: &&KindValue| v.server == kind;
        let mut urls = Vec::new();
        for v in args.replica_urls.iter().filter(mine) {
            urls.push(base_url(&v.value, "--replica-url")?);
        }
        for v in args.replicas_of.iter().filter(mine) {
            urls.extend(resolve_all(&v.value).await?);
        }
        if !urls.is_empty() {
            return Ok(urls);
        }
    }
    Ok(Vec::new())
}

/// A deployment that already runs: each group's URL and replicas, as given.
struct Existing {
    targets: Vec<(ServerKind, String, Vec<String>)>,
    redis_url: Option<String>,
}

impl Deployment for Existing {
    fn keeps_histograms(&self) -> bool {
        true
    }

    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>> {
        let (_, url, replica_urls) = self
            .targets
            .iter()
            .find(|(s, ..)| *s == job.server)
            .ok_or_else(|| anyhow::anyhow!("no --target for {}", job.server.name()))?;
        Ok(Stage {
            target: Target {
                url: url.clone(),
                server: job.server,
                pids: Pids {
                    loadgen: std::process::id(),
                    ..Pids::default()
                },
                redis_urls: self.redis_url.iter().cloned().collect(),
                store_rtt_ms: None,
                failover: None,
                replica_urls: replica_urls.clone(),
                lb_workers: 1,
                replica_workers: 1,
                // Only this process is visible: no replica, Redis or balancer CPU.
                cpu_visible: false,
            },
            budgets: Vec::new(),
            cpus_per_replica: None,
            oversubscribed: false,
            group: None,
        })
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective(crate::cli::Repeats::Once);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let mut targets = Vec::new();
    for t in &args.targets {
        let url = base_url(&t.value, "--target")?;
        wait_healthy(&http, &url).await?;
        let replica_urls = replica_urls(&args, t.server).await?;
        targets.push((t.server, url, replica_urls));
    }
    let stamp = env_info::utc_stamp();
    // Generators started together must not share a folder: each gets its own below --out
    // (or below reports/<timestamp>), so all of them can be given the same --out.
    let out = match args.instance {
        Some(i) => model::out_dir(m.out.as_deref(), &stamp)
            .join(format!("generator-{}-of-{}", i.index, i.of)),
        None => model::out_dir(m.out.as_deref(), &stamp),
    };
    let mut env = env_info::collect(Mode::Existing, &stamp);
    env.instance = args.instance;
    env.cpu_budget_method = "unknown (existing deployment)".into();
    env.config = measurement_config(&m);
    for (server, url, replicas) in &targets {
        env.config
            .insert(format!("target_{}", server.name()), url.clone());
        env.config.insert(
            format!("replicas_{}", server.name()),
            if replicas.is_empty() {
                "unknown".into()
            } else {
                replicas.len().to_string()
            },
        );
    }
    env.config
        .insert("loadgen".into(), crate::measure::loadgen_description());
    let mut journal = Journal::new(env, out, m.out.is_none() && args.instance.is_none())?;
    journal.note(
        "CPU of the replicas, Redis and the balancer is not visible from here: those figures are \
         recorded as not visible, and no bottleneck can be named"
            .into(),
    );
    let jobs: Vec<Job> = targets
        .iter()
        .flat_map(|(server, _, replicas)| {
            plan::sweep(
                &[*server],
                &[replicas.len().max(1) as u32],
                &m.scenarios,
                1,
                &m.setup(),
            )
        })
        .collect();
    let mut existing = Existing {
        targets,
        redis_url: args.redis_url.clone(),
    };
    let outcome = execute(&mut existing, &jobs, &m, &mut journal).await;
    conclude(journal, outcome)
}
