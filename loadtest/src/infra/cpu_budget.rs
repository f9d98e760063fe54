//! A fixed CPU budget per replica, so capacity grows with replicas instead of every replica
//! fighting the load generator for the same cores: cgroup v2 `cpu.max` where writable,
//! cgroup v1 `cpu.cfs_quota_us` where that is, `taskset` (whole CPUs only) otherwise;
//! for containers (`compare --via compose`), each container's own limit set through the
//! Docker Engine.
//!
//! The budget holds during measured windows only: set-up before a window (every user signs
//! up and logs in, two password hashes each) runs unthrottled, or a small budget would
//! stretch it to minutes.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::engine::{CpuLimit, Engine};

/// Throttling in 10 ms periods keeps a quota's pauses short next to request latencies;
/// below 0.1 CPU the period grows, since a quota cannot be under 1 ms.
fn period_and_quota_us(cpus: f64) -> (u64, u64) {
    let period = if cpus >= 0.1 {
        10_000
    } else {
        (1000.0 / cpus).ceil() as u64
    };
    (period, ((cpus * period as f64).round() as u64).max(1000))
}

#[derive(Debug, Clone)]
pub enum Method {
    None,
    Cgroup2(PathBuf),
    Cgroup1(PathBuf),
    Taskset,
    /// Containers' own limits, set through the Docker Engine, with the limit each had
    /// before (restored when off).
    Engine(Engine, Vec<(String, CpuLimit)>),
}

pub struct CpuBudget {
    pub cpus_per_replica: Option<f64>,
    pub method: Method,
    /// Names this budget's cgroups apart from another's (`r` for replicas).
    label: &'static str,
    created: Vec<PathBuf>,
    /// (replica index, pid, its cgroup) of the replicas running now.
    assigned: Vec<(usize, u32, Option<PathBuf>)>,
}

impl CpuBudget {
    pub fn new(cpus_per_replica: Option<f64>) -> anyhow::Result<Self> {
        let method = match cpus_per_replica {
            None => Method::None,
            Some(c) if !(c > 0.0 && c.is_finite()) => {
                anyhow::bail!("--cpus-per-replica must be a positive number of CPUs, not {c}")
            }
            Some(_) => detect(),
        };
        Ok(Self {
            cpus_per_replica,
            method,
            label: "r",
            created: Vec::new(),
            assigned: Vec::new(),
        })
    }

    /// A budget for the store (Redis), in cgroups of its own.
    pub fn for_store(cpus: f64) -> anyhow::Result<Self> {
        let mut budget = Self::new(Some(cpus))?;
        budget.label = "redis";
        Ok(budget)
    }

    /// A budget for each primary of a Redis Cluster, in cgroups of their own (apart from
    /// the single Redis's).
    pub fn for_cluster(cpus: f64) -> anyhow::Result<Self> {
        let mut budget = Self::new(Some(cpus))?;
        budget.label = "cluster";
        Ok(budget)
    }

    pub fn describe(&self) -> String {
        match &self.method {
            Method::None => "none".into(),
            Method::Cgroup2(_) => "cgroup2 cpu.max".into(),
            Method::Cgroup1(_) => "cgroup1 cpu.cfs_quota_us".into(),
            Method::Taskset => "taskset (whole CPUs only)".into(),
            Method::Engine(..) => {
                "each container's CPU limit, set through the Docker Engine".into()
            }
        }
    }

    /// A budget for running containers, set through the Docker Engine (each container's
    /// own limit, stored the way it was: Docker refuses to switch between NanoCpus and a
    /// quota). Off, each container has the limit it was found with.
    pub async fn containers(
        cpus_per_replica: Option<f64>,
        engine: &Engine,
        ids: &[String],
    ) -> anyhow::Result<Self> {
        let mut budget = Self::new(cpus_per_replica)?;
        if budget.cpus_per_replica.is_none() {
            return Ok(budget);
        }
        let mut found = Vec::new();
        for id in ids {
            let host = engine.inspect(id).await?.host_config.unwrap_or_default();
            found.push((id.clone(), CpuLimit::of(&host)));
        }
        budget.method = Method::Engine(engine.clone(), found);
        // Fails here, before anything is measured, where the Engine refuses the change.
        budget.limit(false).await?;
        Ok(budget)
    }

    /// This budget as the store's (Redis's): named first when Redis is held back.
    pub fn as_store(mut self) -> Self {
        self.label = "redis";
        self
    }

    /// Gives replica `index` (its process `pid`, every thread) a cgroup of its own, not yet
    /// limited.
    pub fn assign(&mut self, index: usize, pid: u32) -> anyhow::Result<()> {
        if self.cpus_per_replica.is_none() {
            return Ok(());
        }
        self.assigned.retain(|(i, _, _)| *i != index);
        let name = format!("svt-loadtest-{}-{}{index}", std::process::id(), self.label);
        let dir = match &self.method {
            Method::Cgroup2(root) | Method::Cgroup1(root) => {
                let dir = root.join(name);
                if !dir.exists() {
                    std::fs::create_dir_all(&dir)?;
                    self.created.push(dir.clone());
                }
                std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
                Some(dir)
            }
            Method::Taskset | Method::None | Method::Engine(..) => None,
        };
        self.assigned.push((index, pid, dir));
        self.limit_processes(false)
    }

    /// Switches the budget on (`true`) or off: every assigned replica's, or every
    /// container's.
    pub async fn limit(&self, on: bool) -> anyhow::Result<()> {
        let (Some(cpus), Method::Engine(engine, found)) = (self.cpus_per_replica, &self.method)
        else {
            return self.limit_processes(on);
        };
        for (id, was) in found {
            let limit = if on { was.with_cpus(cpus) } else { *was };
            engine.set_cpu(id, limit).await?;
        }
        Ok(())
    }

    /// [`Self::limit`] for processes of this machine (cgroups or taskset).
    fn limit_processes(&self, on: bool) -> anyhow::Result<()> {
        let Some(cpus) = self.cpus_per_replica else {
            return Ok(());
        };
        let (period, quota) = period_and_quota_us(cpus);
        let all = super::procfs::available_cpus();
        for (index, pid, dir) in &self.assigned {
            match (&self.method, dir) {
                (Method::Cgroup2(_), Some(dir)) => {
                    let v = if on {
                        format!("{quota} {period}")
                    } else {
                        format!("max {period}")
                    };
                    std::fs::write(dir.join("cpu.max"), v)?;
                }
                (Method::Cgroup1(_), Some(dir)) => {
                    std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string())?;
                    let v = if on { quota.to_string() } else { "-1".into() };
                    std::fs::write(dir.join("cpu.cfs_quota_us"), v)?;
                }
                (Method::Taskset, _) => {
                    let per = (cpus.ceil() as usize).max(1);
                    let list: Vec<String> = if on {
                        (0..per)
                            .map(|k| ((index * per + k) % all).to_string())
                            .collect()
                    } else {
                        (0..all).map(|k| k.to_string()).collect()
                    };
                    let ok = Command::new("taskset")
                        .args(["-a", "-p", "-c", &list.join(","), &pid.to_string()])
                        .output()?
                        .status
                        .success();
                    anyhow::ensure!(ok, "taskset failed for pid {pid}");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether this is the store's (Redis's) budget.
    pub fn is_store(&self) -> bool {
        matches!(self.label, "redis" | "cluster")
    }

    /// Quota periods so far, and of those the ones in which the processes ran out of their
    /// quota and were held back (`cpu.stat`, cgroup v1 or v2), summed over this budget's
    /// cgroups or containers; `None` without either.
    pub async fn throttling(&self) -> Option<(u64, u64)> {
        if let Method::Engine(engine, found) = &self.method {
            let mut total = (0, 0);
            for (id, _) in found {
                let (p, t) = engine.throttling(id).await?;
                total.0 += p;
                total.1 += t;
            }
            return Some(total);
        }
        let dirs: Vec<&PathBuf> = self
            .assigned
            .iter()
            .filter_map(|(_, _, d)| d.as_ref())
            .collect();
        if dirs.is_empty() {
            return None;
        }
        let mut total = (0, 0);
        for d in dirs {
            let stat = std::fs::read_to_string(d.join("cpu.stat")).ok()?;
            let (p, t) = parse_cpu_stat(&stat)?;
            total.0 += p;
            total.1 += t;
        }
        Some(total)
    }

    /// Removes the cgroups made (their processes must have exited).
    pub fn release(&mut self) {
        self.assigned.clear();
        for dir in self.created.drain(..) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

impl Drop for CpuBudget {
    fn drop(&mut self) {
        self.release();
    }
}

/// `nr_periods` and `nr_throttled` of a `cpu.stat` file.
fn parse_cpu_stat(stat: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some((field("nr_periods ")?, field("nr_throttled ")?))
}

/// Mount points from `/proc/self/mountinfo`: (mount point, fs type, super options).
fn mounts() -> Vec<(PathBuf, String, String)> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let mut r = right.split_whitespace();
            let fstype = r.next()?;
            let _source = r.next();
            let opts = r.next().unwrap_or_default();
            Some((
                PathBuf::from(mount_point),
                fstype.to_owned(),
                opts.to_owned(),
            ))
        })
        .collect()
}

fn writable_dir(p: &Path) -> bool {
    let probe = p.join(format!("svt-probe-{}", std::process::id()));
    let ok = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    ok
}

fn detect() -> Method {
    let mounts = mounts();
    for (mp, fstype, _) in &mounts {
        if fstype == "cgroup2" {
            let controllers =
                std::fs::read_to_string(mp.join("cgroup.controllers")).unwrap_or_default();
            let enabled =
                std::fs::read_to_string(mp.join("cgroup.subtree_control")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") && writable_dir(mp) {
                if !enabled.split_whitespace().any(|c| c == "cpu") {
                    let _ = std::fs::write(mp.join("cgroup.subtree_control"), "+cpu");
                }
                let now =
                    std::fs::read_to_string(mp.join("cgroup.subtree_control")).unwrap_or_default();
                if now.split_whitespace().any(|c| c == "cpu") {
                    return Method::Cgroup2(mp.clone());
                }
            }
        }
    }
    for (mp, fstype, opts) in &mounts {
        if fstype == "cgroup" && opts.split(',').any(|o| o == "cpu") && writable_dir(mp) {
            return Method::Cgroup1(mp.clone());
        }
    }
    if Command::new("taskset").arg("-V").output().is_ok() {
        return Method::Taskset;
    }
    Method::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonsense_budget_is_refused() {
        assert!(CpuBudget::new(Some(0.0)).is_err());
        assert!(CpuBudget::new(Some(-1.0)).is_err());
        assert!(CpuBudget::new(Some(f64::NAN)).is_err());
        assert_eq!(CpuBudget::new(None).unwrap().describe(), "none");
    }

    #[test]
    fn small_budgets_stretch_the_period_not_the_share() {
        assert_eq!(period_and_quota_us(0.5), (10_000, 5_000));
        assert_eq!(period_and_quota_us(0.1), (10_000, 1_000));
        assert_eq!(period_and_quota_us(0.05), (20_000, 1_000));
        assert_eq!(period_and_quota_us(2.0), (10_000, 20_000));
    }

    #[test]
    fn throttling_is_read_from_cpu_stat() {
        let v2 = "usage_usec 100\nuser_usec 50\nsystem_usec 50\nnr_periods 200\nnr_throttled 150\nthrottled_usec 9\n";
        assert_eq!(parse_cpu_stat(v2), Some((200, 150)));
        let v1 = "nr_periods 10\nnr_throttled 0\nthrottled_time 0\n";
        assert_eq!(parse_cpu_stat(v1), Some((10, 0)));
        assert_eq!(parse_cpu_stat("usage_usec 1\n"), None);
    }

    #[test]
    fn mountinfo_is_readable_here() {
        assert!(!mounts().is_empty());
    }
}
