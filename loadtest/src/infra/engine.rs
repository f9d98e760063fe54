//! The Docker Engine API, for the compose deployment: the services' containers (addresses,
//! health, CPU limits), their CPU in nanoseconds and their memory from the Engine's stats,
//! a CPU budget set on them, copies of a service's container (more replicas, replicas set
//! up for an experiment, probes), the faults (pause, kill), and a command run inside one
//! (`nginx -s reload`). It works the same from the host and from inside the loadtest
//! container (which is given the Engine's socket), so nothing here reads this machine's
//! /proc or shells out to a CLI an image would have to carry.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerUpdateBody, EndpointSettings,
    HealthStatusEnum, NetworkingConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::{body_full, Docker};
use futures_util::StreamExt;

/// The labels by which Compose (v1 and v2) knows its containers.
const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const NUMBER: &str = "com.docker.compose.container-number";
const ONEOFF: &str = "com.docker.compose.oneoff";

/// A connection to the Engine, with the version it answered.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    /// The Engine's own version (e.g. 20.10.24) and its API's.
    pub version: String,
}

/// A container of a compose service, as the Engine describes it now.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Its address on the project's network.
    pub ip: Option<String>,
    /// Its main process, in the host's PID namespace (0 when not running).
    pub pid: u32,
    pub running: bool,
    /// `healthy`, `starting`, `unhealthy`, or its state where it has no health check.
    pub health: String,
    /// Its CPU limit in CPUs, either way Docker stores it.
    pub cpus: Option<f64>,
    /// Compose's number for it within its service (1, 2, ...).
    pub number: u32,
}

/// How a container's CPU limit is stored: Docker refuses to change one way once the other
/// was set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CpuLimit {
    Nano(i64),
    Quota { quota: i64, period: i64 },
}

impl CpuLimit {
    pub fn of(host: &bollard::models::HostConfig) -> Self {
        match (host.nano_cpus, host.cpu_quota, host.cpu_period) {
            (Some(n), _, _) if n > 0 => Self::Nano(n),
            (_, Some(q), p) if q > 0 => Self::Quota {
                quota: q,
                period: p.filter(|p| *p > 0).unwrap_or(100_000),
            },
            _ => Self::Quota {
                quota: -1,
                period: 100_000,
            },
        }
    }

    pub fn cpus(self) -> Option<f64> {
        match self {
            Self::Nano(n) => Some(n as f64 / 1e9),
            Self::Quota { quota, period } if quota > 0 => Some(quota as f64 / period as f64),
            Self::Quota { .. } => None,
        }
    }

    /// `cpus` stored the same way as `self` (a quota keeps its period).
    pub fn with_cpus(self, cpus: f64) -> Self {
        match self {
            Self::Nano(_) => Self::Nano((cpus * 1e9).round() as i64),
            Self::Quota { period, .. } => Self::Quota {
                quota: ((cpus * period as f64).round() as i64).max(1000),
                period,
            },
        }
    }

    fn update(self) -> ContainerUpdateBody {
        match self {
            Self::Nano(n) => ContainerUpdateBody {
                nano_cpus: Some(n),
                ..Default::default()
            },
            Self::Quota { quota, period } => ContainerUpdateBody {
                cpu_quota: Some(quota),
                cpu_period: Some(period),
                ..Default::default()
            },
        }
    }
}

fn failed(what: impl std::fmt::Display) -> impl FnOnce(bollard::errors::Error) -> anyhow::Error {
    move |e| anyhow::anyhow!("Docker Engine: {what}: {e}")
}

impl Engine {
    /// The Engine at `DOCKER_HOST`, else its local socket, at the newest API both speak.
    pub async fn connect() -> anyhow::Result<Self> {
        let docker = Docker::connect_with_local_defaults()
            .map(|d| d.with_timeout(Duration::from_secs(60)))
            .map_err(failed("cannot connect"))?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            anyhow::anyhow!(
                "no Docker Engine answers at {} ({e}): from inside a container, the Engine's \
                 socket must be mounted (docker-compose.yml's `compare` service does that)",
                std::env::var("DOCKER_HOST").unwrap_or_else(|_| "/var/run/docker.sock".into())
            )
        })?;
        let v = docker.version().await.map_err(failed("version"))?;
        let version = format!(
            "Docker Engine {} (API {})",
            v.version.as_deref().unwrap_or("?"),
            v.api_version.as_deref().unwrap_or("?")
        );
        Ok(Self { docker, version })
    }

    pub async fn inspect(&self, id: &str) -> anyhow::Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(failed(format!("inspect {id}")))
    }

    /// The compose project of the container this process runs in, when it runs in one
    /// that Compose made (its hostname is the container's short id).
    pub async fn own_project(&self) -> Option<String> {
        let host = std::fs::read_to_string("/etc/hostname").ok()?;
        let c = self.inspect(host.trim()).await.ok()?;
        c.config?.labels?.get(PROJECT).cloned()
    }

    /// The containers Compose made for `service` in `project` (not its one-off `run`s);
    /// stopped ones too when `all`.
    async fn list(
        &self,
        project: &str,
        service: &str,
        all: bool,
    ) -> anyhow::Result<Vec<bollard::models::ContainerSummary>> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{PROJECT}={project}"),
                format!("{SERVICE}={service}"),
                format!("{ONEOFF}=False"),
            ],
        )]);
        self.docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(all)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(failed(format!("list {service}")))
    }

    /// The running containers of `service` in `project`, by their compose number.
    pub async fn service(&self, project: &str, service: &str) -> anyhow::Result<Vec<Container>> {
        let list = self.list(project, service, false).await?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            out.push(describe(self.inspect(&id).await?));
        }
        out.sort_by_key(|c| c.number);
        Ok(out)
    }

    /// One reading of the container's stats, now (`one-shot`: without it the Engine waits
    /// for a second sample, about 2 s).
    async fn stats(&self, id: &str) -> anyhow::Result<bollard::models::ContainerStatsResponse> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        self.docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("Docker Engine: no stats for {id}"))?
            .map_err(failed(format!("stats of {id}")))
    }

    /// CPU time the container's processes used so far, in ns (its cgroup's own counter).
    pub async fn cpu_ns(&self, id: &str) -> anyhow::Result<u64> {
        let stats = self.stats(id).await?;
        stats
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .ok_or_else(|| anyhow::anyhow!("Docker Engine: {id}'s stats carry no CPU usage"))
    }

    /// The value of `key` in the container's environment.
    pub async fn env(&self, id: &str, key: &str) -> Option<String> {
        let env = self.inspect(id).await.ok()?.config?.env?;
        let prefix = format!("{key}=");
        env.iter()
            .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_owned))
    }

    /// The last `lines` lines a container wrote (stdout and stderr), for an error that says
    /// why it did not become healthy; empty when the Engine cannot tell.
    pub async fn log_tail(&self, id: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
        out
    }

    /// The container's peak memory (cgroup v1's `max_usage`; cgroup v2 keeps none, and then
    /// its memory now), in bytes.
    pub async fn memory_peak(&self, id: &str) -> Option<u64> {
        let stats = self.stats(id).await.ok()?;
        let m = stats.memory_stats?;
        m.max_usage.filter(|u| *u > 0).or(m.usage)
    }

    pub async fn set_cpu(&self, id: &str, limit: CpuLimit) -> anyhow::Result<()> {
        self.docker
            .update_container(id, limit.update())
            .await
            .map_err(failed(format!("set the CPU limit of {id}")))
    }

    pub async fn pause(&self, id: &str) -> anyhow::Result<()> {
        self.docker
            .pause_container(id)
            .await
            .map_err(failed(format!("pause {id}")))
    }

    pub async fn unpause(&self, id: &str) -> anyhow::Result<()> {
        self.docker
            .unpause_container(id)
            .await
            .map_err(failed(format!("unpause {id}")))
    }

    /// SIGKILL to the container, after switching its restart policy off: a killed replica
    /// stays dead, as a killed process does, instead of coming back mid-window.
    pub async fn kill(&self, id: &str) -> anyhow::Result<()> {
        let never = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        };
        self.docker
            .update_container(id, never)
            .await
            .map_err(failed(format!("switch {id}'s restart policy off")))?;
        self.docker
            .kill_container(id, None)
            .await
            .map_err(failed(format!("kill {id}")))
    }

    /// The host PIDs of the container's processes.
    pub async fn processes(&self, id: &str) -> anyhow::Result<Vec<u32>> {
        let top = self
            .docker
            .top_processes(id, None)
            .await
            .map_err(failed(format!("top {id}")))?;
        let col = top
            .titles
            .unwrap_or_default()
            .iter()
            .position(|t| t == "PID")
            .ok_or_else(|| anyhow::anyhow!("Docker Engine: top of {id} has no PID column"))?;
        Ok(top
            .processes
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.get(col)?.parse().ok())
            .collect())
    }

    /// Runs `cmd` in the container and waits for it; fails with its output unless it exits 0.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> anyhow::Result<()> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let what = format!("`{}` in {id}", cmd.join(" "));
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(failed(&what))?;
        let mut said = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(failed(&what))?
        {
            while let Some(Ok(chunk)) = output.next().await {
                said.push_str(&chunk.to_string());
            }
        }
        let done = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(failed(&what))?;
        anyhow::ensure!(
            done.exit_code == Some(0),
            "{what} exited {:?}: {}",
            done.exit_code,
            said.trim()
        );
        Ok(())
    }

    /// The ids of `service`'s containers that are not running (a killed replica stays until
    /// it is removed).
    pub async fn stopped(&self, project: &str, service: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .list(project, service, true)
            .await?
            .into_iter()
            .filter(|c| c.state != Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
            .filter_map(|c| c.id)
            .collect())
    }

    /// Creates and starts a copy of `template` (a container of `service`): container
    /// `number` of the service (or, for a probe, of a service of its own that no balancer
    /// resolves), with `variation`'s environment and files.
    pub async fn clone_container(
        &self,
        template: &ContainerInspectResponse,
        project: &str,
        clone: CloneOf<'_>,
    ) -> anyhow::Result<Container> {
        let (name, body) = clone_of(template, project, &clone)?;
        let made = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(failed(format!("create {name}")))?;
        for (path, contents) in &clone.variation.files {
            let (dir, file) = path
                .rsplit_once('/')
                .ok_or_else(|| anyhow::anyhow!("{path}: not an absolute path"))?;
            let options = UploadToContainerOptionsBuilder::default()
                .path(if dir.is_empty() { "/" } else { dir })
                .build();
            self.docker
                .upload_to_container(
                    &made.id,
                    Some(options),
                    body_full(tar_of(file, contents).into()),
                )
                .await
                .map_err(failed(format!("write {path} into {name}")))?;
        }
        self.docker
            .start_container(&made.id, None)
            .await
            .map_err(failed(format!("start {name}")))?;
        Ok(describe(self.inspect(&made.id).await?))
    }

    /// Quota periods so far and of those the ones in which the container was held back
    /// (its cgroup's `cpu.stat`, as the Engine reports it).
    pub async fn throttling(&self, id: &str) -> Option<(u64, u64)> {
        let stats = self.stats(id).await.ok()?;
        let t = stats.cpu_stats?.throttling_data?;
        Some((t.periods?, t.throttled_periods?))
    }

    /// The container's resident anonymous memory, in bytes: `rss` (cgroup v1) or `anon`
    /// (v2) of its memory.stat, which is its processes' heap and stacks (what a server
    /// keeps per user), without the page cache that `usage` also counts.
    pub async fn resident(&self, id: &str) -> anyhow::Result<u64> {
        let stats = self.stats(id).await?;
        let m = stats.memory_stats.and_then(|m| m.stats).unwrap_or_default();
        m.get("rss")
            .or_else(|| m.get("anon"))
            .copied()
            .ok_or_else(|| anyhow::anyhow!("Docker Engine: {id}'s memory stats carry no rss/anon"))
    }

    /// Stops (SIGTERM, then SIGKILL after 5 s) and removes a container.
    pub async fn remove(&self, id: &str) -> anyhow::Result<()> {
        let _ = self
            .docker
            .stop_container(
                id,
                Some(StopContainerOptionsBuilder::default().t(5).build()),
            )
            .await;
        self.docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .map_err(failed(format!("remove {id}")))
    }
}

/// A container as the Engine inspected it.
pub fn describe(c: ContainerInspectResponse) -> Container {
    let state = c.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => "healthy".to_owned(),
        Some(HealthStatusEnum::STARTING) => "starting".to_owned(),
        Some(HealthStatusEnum::UNHEALTHY) => "unhealthy".to_owned(),
        _ => state
            .status
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
    };
    let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
    Container {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        ip: c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.into_values().find_map(|e| e.ip_address))
            .filter(|ip| !ip.is_empty()),
        pid: state.pid.filter(|_| running).unwrap_or(0).max(0) as u32,
        running,
        health,
        cpus: c.host_config.as_ref().and_then(|h| CpuLimit::of(h).cpus()),
        number: labels.get(NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0),
    }
}

/// What a copy of a service's container is.
pub struct CloneOf<'a> {
    pub service: &'a str,
    pub number: u32,
    /// A probe: a service of its own (`<service>-probe`), not resolved under the service's
    /// name, so no balancer sends it traffic; reached at its own address.
    pub probe: bool,
    pub variation: &'a Variation,
}

/// How a copy of a service's container differs from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variation {
    /// Environment set on top of (or instead of) the container's own.
    pub env: Vec<(String, String)>,
    /// Files written into the container before it starts: absolute path, contents.
    pub files: Vec<(String, Vec<u8>)>,
}

/// `env` (`KEY=value` entries) with `over` set: a key given again is replaced.
fn with_env(env: Vec<String>, over: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = env
        .into_iter()
        .filter(|kv| {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            !over.iter().any(|(k, _)| k == key)
        })
        .collect();
    out.extend(over.iter().map(|(k, v)| format!("{k}={v}")));
    out
}

/// A tar archive holding one file (ustar, mode 0644), for the Engine's archive upload.
fn tar_of(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let field = |h: &mut [u8; 512], at: usize, v: &[u8]| h[at..at + v.len()].copy_from_slice(v);
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(
        &mut header,
        124,
        format!("{:011o}\0", contents.len()).as_bytes(),
    );
    field(&mut header, 136, b"00000000000\0");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\x0000");
    // The checksum is taken with its own field as spaces.
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(contents);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// The name and body of a copy of `template` (same image, command, environment, limits,
/// health check and compose labels, so Compose's own `down` removes it; a probe with
/// `--remove-orphans`).
fn clone_of(
    template: &ContainerInspectResponse,
    project: &str,
    clone: &CloneOf<'_>,
) -> anyhow::Result<(String, ContainerCreateBody)> {
    let service = clone.service;
    let config = template
        .config
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{service}: its container has no config"))?;
    let own = if clone.probe {
        format!("{service}-probe")
    } else {
        service.to_owned()
    };
    let mut labels = config.labels.clone().unwrap_or_default();
    labels.insert(NUMBER.into(), clone.number.to_string());
    labels.insert(SERVICE.into(), own.clone());
    // Compose v1 names containers project_service_N, v2 project-service-N: follow the
    // template's own name.
    let old = template
        .name
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches('/');
    let sep = if old.starts_with(&format!("{project}_")) {
        '_'
    } else {
        '-'
    };
    let name = format!("{project}{sep}{own}{sep}{}", clone.number);
    let endpoints: HashMap<String, EndpointSettings> = template
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_keys()
        .map(|net| {
            let settings = EndpointSettings {
                aliases: Some(vec![own.clone()]),
                ..Default::default()
            };
            (net, settings)
        })
        .collect();
    let mut host = template.host_config.clone().unwrap_or_default();
    if clone.probe {
        host.restart_policy = None;
    }
    let body = ContainerCreateBody {
        user: config.user,
        env: Some(with_env(
            config.env.unwrap_or_default(),
            &clone.variation.env,
        )),
        cmd: config.cmd,
        entrypoint: config.entrypoint,
        healthcheck: config.healthcheck,
        image: config.image,
        working_dir: config.working_dir,
        exposed_ports: config.exposed_ports,
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        labels: Some(labels),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    Ok((name, body))
}

#[cfg(test)]
mod tests {
    use super::CpuLimit;
    use bollard::models::HostConfig;

    fn host(nano: i64, quota: i64, period: i64) -> HostConfig {
        HostConfig {
            nano_cpus: Some(nano),
            cpu_quota: Some(quota),
            cpu_period: Some(period),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_limits_either_way_docker_stores_them() {
        assert_eq!(CpuLimit::of(&host(500_000_000, 0, 0)).cpus(), Some(0.5));
        assert_eq!(CpuLimit::of(&host(0, 25_000, 100_000)).cpus(), Some(0.25));
        assert_eq!(CpuLimit::of(&host(0, 0, 0)).cpus(), None);
        assert_eq!(CpuLimit::of(&host(0, -1, 100_000)).cpus(), None);
        assert_eq!(CpuLimit::of(&HostConfig::default()).cpus(), None);
    }

    #[test]
    fn a_new_limit_is_stored_the_way_the_old_one_was() {
        assert_eq!(
            CpuLimit::Nano(1_000_000_000).with_cpus(0.09),
            CpuLimit::Nano(90_000_000)
        );
        assert_eq!(
            CpuLimit::Quota {
                quota: -1,
                period: 100_000
            }
            .with_cpus(0.25),
            CpuLimit::Quota {
                quota: 25_000,
                period: 100_000
            }
        );
        // A quota under 1 ms is refused by the kernel.
        assert_eq!(
            CpuLimit::Quota {
                quota: -1,
                period: 10_000
            }
            .with_cpus(0.01),
            CpuLimit::Quota {
                quota: 1000,
                period: 10_000
            }
        );
    }
}
