//! Readings taken at the edges of the measured window: CPU of every process, Redis
//! commands, requests each replica answered.

use std::time::Instant;

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
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
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

pub async fn snapshot(
    http: &reqwest::Client,
    pids: &Pids,
    redis_urls: &[String],
    replica_urls: &[String],
) -> Snapshot {
    let (redis_calls, redis_used_memory) = (
        workload_calls(redis_urls).await,
        used_memory(redis_urls).await,
    );
    let mut replica_requests = Vec::new();
    for url in replica_urls {
        match scrape(http, url).await {
            Ok(text) => replica_requests.push(prometheus_text::requests_total(&text)),
            Err(_) => replica_requests.push(0),
        }
    }
    Snapshot {
        at: Instant::now(),
        cpu_replicas: cpu_sum(&pids.replicas),
        cpu_redis: cpu_sum(&pids.redis),
        cpu_lb: cpu_sum(&pids.lb),
        cpu_loadgen: cpu_sum(&[pids.loadgen]),
        redis_calls,
        redis_used_memory,
        replica_requests,
    }
}
