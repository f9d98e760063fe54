//! `loadtest run`: measure a deployment that already runs (docker compose, another
//! machine), one or several groups into one report.

use std::path::PathBuf;

use crate::cli::{KindValue, RunArgs, ServerKind};
use crate::env_info;
use crate::measure::Target;
use crate::probe::Pids;
use crate::results;
use crate::sweep::Sweep;

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
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let last = match http.get(format!("{url}/healthz")).send().await {
            Ok(r) if r.status() == 200 => return Ok(()),
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => format!("does not answer: {e}"),
        };
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{url}/healthz {last}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
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

pub async fn run(args: RunArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let mut targets = Vec::new();
    for t in &args.targets {
        let url = base_url(&t.value, "--target")?;
        wait_healthy(&http, &url).await?;
        let replica_urls = replica_urls(&args, t.server).await?;
        targets.push((t.server, url, replica_urls));
    }
    let stamp = env_info::utc_stamp();
    let out = results::out_dir(m.out.as_deref(), &stamp);
    let mut env = env_info::collect("run", &stamp);
    env.cpu_budget_method = "unknown (existing deployment)".into();
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
    env.config.insert("users".into(), m.users.to_string());
    env.config.insert(
        "loadgen".into(),
        "goose 0.19, in the loadtest process".into(),
    );
    let mut sweep = Sweep::new(env, out.clone(), &m)?;
    for (server, url, replica_urls) in targets {
        let target = Target {
            url,
            budget: None,
            server,
            pids: Pids {
                loadgen: std::process::id(),
                ..Pids::default()
            },
            redis_url: args.redis_url.clone(),
            replica_urls,
            lb_workers: 1,
        };
        let replicas = target.replica_urls.len().max(1) as u32;
        // Only this process is visible: no replica, Redis or balancer CPU.
        sweep
            .measure_group(&target, replicas, None, false, |run| run.bottleneck = None)
            .await?;
    }
    sweep.results.environment.notes.push(
        "CPU of the replicas, Redis and the balancer is not visible from here: those figures are 0"
            .into(),
    );
    sweep.finish(m.out.is_none())
}
