//! Readings taken at the edges of the measured window: CPU of every process, Redis
//! commands, requests each replica answered.

use std::time::Instant;

use crate::infra::engine::Engine;
use crate::infra::{procfs, prometheus_text, redis_info};

pub async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The processes of one measurement, by component.
#[derive(Debug, Clone, Default)]
pub struct Pids {
    pub replicas: Vec<u32>,
    /// Redis, or every node of a Redis Cluster.
    pub redis: Vec<u32>,
    pub lb: Vec<u32>,
    pub loadgen: u32,
    /// The same components as containers, when their CPU is read from the Docker Engine
    /// (from inside a container their processes are not in this machine's /proc).
    pub containers: Option<Containers>,
}

/// Containers by component, with the Engine that reports their CPU.
#[derive(Debug, Clone)]
pub struct Containers {
    pub engine: Engine,
    pub replicas: Vec<String>,
    pub redis: Vec<String>,
    pub lb: Vec<String>,
}

impl Containers {
    /// CPU seconds the containers used so far (each one's cgroup counter, in ns); a
    /// container gone (a killed replica) counts nothing, as a process gone does.
    async fn cpu_sum(&self, ids: &[String]) -> f64 {
        let reads = ids.iter().map(|id| self.engine.cpu_ns(id));
        futures_util::future::join_all(reads)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .map(|ns| ns as f64 / 1e9)
            .sum()
    }

    /// Peak memory of the largest replica, of Redis, and of the balancer, in bytes.
    pub async fn peak_memory(&self) -> (u64, u64, u64) {
        (
            self.largest(&self.replicas).await,
            self.largest(&self.redis).await,
            self.largest(&self.lb).await,
        )
    }

    async fn largest(&self, ids: &[String]) -> u64 {
        let reads = ids.iter().map(|id| self.engine.memory_peak(id));
        futures_util::future::join_all(reads)
            .await
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    /// When the replicas', Redis's and the balancer's CPU counters were read. The Docker
    /// Engine answers a container's stats at its collector's next tick (up to a second
    /// after it was asked): their rates are taken over the span between these readings,
    /// not over the window in which requests were counted.
    pub cpu_at: Instant,
    pub cpu_replicas: f64,
    pub cpu_redis: f64,
    pub cpu_lb: f64,
    pub cpu_loadgen: f64,
    pub redis_calls: Option<u64>,
    pub redis_used_memory: Option<u64>,
    /// Requests answered so far, per replica (empty when the replicas are not reachable).
    pub replica_requests: Vec<u64>,
}

fn cpu_sum(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| procfs::cpu_time(*p).ok())
        .map(|d| d.as_secs_f64())
        .sum()
}

/// Redis's `used_memory`, summed over `urls` (every primary of a cluster); `None` when
/// there are none or one does not answer.
pub async fn used_memory(urls: &[String]) -> Option<u64> {
    let mut sum = None;
    for url in urls {
        let m = redis_info::query(url, "memory").await.ok()?;
        *sum.get_or_insert(0) += redis_info::field(&m, "used_memory")?;
    }
    sum
}

/// Workload commands Redis executed so far, summed over `urls`; `None` as above.
async fn workload_calls(urls: &[String]) -> Option<u64> {
    let mut sum = None;
    for url in urls {
        let s = redis_info::query(url, "commandstats").await.ok()?;
        *sum.get_or_insert(0) += redis_info::workload_calls(&redis_info::parse_commandstats(&s));
    }
    sum
}

/// Which edge of the window a snapshot is taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Open,
    Close,
}

/// Every reading at one edge of the window. Redis's command count is compared with the
/// requests the load generator counted while the window was open, so it is read nearest
/// the window: last when it opens, first when it closes (the Docker Engine's CPU readings,
/// a few ms each, go on the far side, all at once).
pub async fn snapshot(
    http: &reqwest::Client,
    pids: &Pids,
    redis_urls: &[String],
    replica_urls: &[String],
    edge: Edge,
) -> Snapshot {
    let mut redis = None;
    if edge == Edge::Close {
        redis = Some((
            workload_calls(redis_urls).await,
            used_memory(redis_urls).await,
        ));
    }
    let (cpu_replicas, cpu_redis, cpu_lb) = match &pids.containers {
        Some(c) => tokio::join!(
            c.cpu_sum(&c.replicas),
            c.cpu_sum(&c.redis),
            c.cpu_sum(&c.lb)
        ),
        None => (
            cpu_sum(&pids.replicas),
            cpu_sum(&pids.redis),
            cpu_sum(&pids.lb),
        ),
    };
    let cpu_at = Instant::now();
    let scrapes = replica_urls.iter().map(|url| async move {
        scrape(http, url)
            .await
            .map_or(0, |text| prometheus_text::requests_total(&text))
    });
    let replica_requests = futures_util::future::join_all(scrapes).await;
    let (redis_calls, redis_used_memory) = match redis {
        Some(r) => r,
        None => (
            workload_calls(redis_urls).await,
            used_memory(redis_urls).await,
        ),
    };
    Snapshot {
        at: Instant::now(),
        cpu_at,
        cpu_replicas,
        cpu_redis,
        cpu_lb,
        cpu_loadgen: cpu_sum(&[pids.loadgen]),
        redis_calls,
        redis_used_memory,
        replica_requests,
    }
}
