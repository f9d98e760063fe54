//! results.json: what each run measured, versioned so other tools can read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub environment: Environment,
    pub runs: Vec<Run>,
    /// Experiment `token-anatomy`, when it ran.
    #[serde(default)]
    pub token_anatomy: Option<TokenAnatomy>,
    /// Experiment `revocation`, when it ran.
    #[serde(default)]
    pub revocation: Option<Revocation>,
}

/// A real access token taken apart, and the server's answers to altered copies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenAnatomy {
    pub access_token: String,
    pub header: serde_json::Value,
    pub payload: serde_json::Value,
    pub signature_bytes: usize,
    pub original_status: u16,
    /// Roles changed to include `admin`, original signature kept.
    pub tampered_payload_status: u16,
    /// One bit of the signature flipped.
    pub tampered_signature_status: u16,
    /// `sid=<value>` as the browser sends it.
    pub session_cookie: String,
    pub session_cookie_status: u16,
    /// The same cookie with its last character changed.
    pub altered_cookie_status: u16,
}

/// How long a credential kept working after logout, in milliseconds from the logout's
/// answer to the first refusal (`null`: still working when the probe gave up).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revocation {
    pub access_token_ttl_s: u64,
    /// Clock-skew allowance on `exp` the token server grants.
    pub leeway_s: u64,
    pub session_refused_after_ms: Option<f64>,
    pub token_refused_after_ms: Option<f64>,
    pub denylist_refused_after_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    /// `compare` (topology started here) or `run` (an existing deployment).
    pub mode: String,
    pub started_at: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub memory_bytes: u64,
    /// Program versions: loadtest, redis-server, nginx, rustc if known.
    pub versions: BTreeMap<String, String>,
    /// Settings of the servers and the measurement (JWT_ALG, hash parameters, users, ...).
    pub config: BTreeMap<String, String>,
    /// How each replica's CPU budget was enforced: cgroup2 cpu.max, cgroup1
    /// cpu.cfs_quota_us, taskset, or none.
    pub cpu_budget_method: String,
    /// Notes a reader needs (e.g. replica counts above what the machine can give).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Whole seconds since the window opened.
    pub t_s: u64,
    pub route: String,
    pub ok: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuPerRequest {
    pub replicas: f64,
    pub redis: f64,
    pub lb: f64,
    pub loadgen: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeakMemory {
    /// The largest replica's peak resident memory.
    pub replica_max: u64,
    pub redis: u64,
    pub lb: u64,
    pub loadgen: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    /// Set for the runs of an experiment (e.g. `shared-store`), null for the sweep.
    #[serde(default)]
    pub experiment: Option<String>,
    /// Which arm of the experiment (e.g. `memory store, round robin`).
    #[serde(default)]
    pub variant: Option<String>,
    pub server: String,
    pub scenario: String,
    pub replicas: u32,
    pub users: u32,
    /// The measured window, in seconds (warm-up excluded).
    pub duration_s: f64,
    /// Requests answered in the window, per second (errors included).
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_status: BTreeMap<String, u64>,
    /// Over all measured requests.
    pub latency_ms: Latency,
    /// Per route template.
    pub latency_ms_by_route: BTreeMap<String, Latency>,
    /// Redis commands executed per measured request (`INFO commandstats` delta); null when
    /// the Redis was not reachable (`run` without `--redis-url`).
    pub redis_commands_per_request: Option<f64>,
    /// Requests each replica answered in the window, from its `/metrics`.
    pub requests_per_replica: Vec<u64>,
    /// CPU microseconds per measured request, by component.
    pub cpu_us_per_request: CpuPerRequest,
    /// CPUs each component kept busy on average during the window.
    pub cpu_cores_used: CpuPerRequest,
    pub peak_memory_bytes: PeakMemory,
    /// Redis `used_memory` growth over the run, per simulated user (sessions, refresh tokens).
    pub redis_bytes_per_user: Option<f64>,
    /// Bytes a request carries to prove identity (`Cookie: ...` or `Authorization: ...`).
    pub credential_bytes: u64,
    /// CPU budget of each replica, in CPUs, if one was set.
    pub cpus_per_replica: Option<f64>,
    /// Whether this replica count asked for more CPUs than the machine has.
    pub oversubscribed: bool,
    /// The fault injected during the window, if any (e.g. `redis frozen 5-8 s`).
    #[serde(default)]
    pub fault: Option<String>,
    /// Per second of the window and per route: answered and failed requests. Recorded for
    /// experiments with a fault, empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    /// What limited throughput when it was not the replicas: `loadgen`, `lb`, `redis` or
    /// `machine`; null when the replicas were the limit (or nothing was saturated).
    pub bottleneck: Option<String>,
}

impl Results {
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (under docker compose: set LOADTEST_UID and LOADTEST_GID in .env to the \
                 owner of ./reports, from `id -u` and `id -g`)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot create {}: {e}{hint}", dir.display())
        })?;
        let path = dir.join("results.json");
        let tmp = dir.join("results.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(SCHEMA_VERSION)) {
            anyhow::bail!(
                "{} has schema_version {}, this loadtest reads {SCHEMA_VERSION}",
                path.display(),
                version.map_or("(none)".into(), |v| v.to_string())
            );
        }
        serde_json::from_value(value)
            .map_err(|e| anyhow::anyhow!("{} is not a results.json: {e}", path.display()))
    }
}

/// `--out` when given, else `reports/<UTC timestamp>` (`point_latest` then links
/// `reports/latest` to it).
pub fn out_dir(explicit: Option<&Path>, stamp: &str) -> PathBuf {
    explicit.map_or_else(|| PathBuf::from("reports").join(stamp), Path::to_path_buf)
}

pub fn point_latest(dir: &Path) {
    let Some(parent) = dir.parent() else { return };
    let Some(name) = dir.file_name() else { return };
    let latest = parent.join("latest");
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink(name, &latest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_and_keep_the_contracted_names() {
        let mut r = Results {
            schema_version: SCHEMA_VERSION,
            environment: Environment::default(),
            runs: vec![Run::default()],
            token_anatomy: None,
            revocation: None,
        };
        r.runs[0].server = "token".into();
        r.runs[0].errors_by_status.insert("503".into(), 2);
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "server",
            "scenario",
            "replicas",
            "users",
            "duration_s",
            "rps",
            "errors",
            "errors_by_status",
            "latency_ms",
            "redis_commands_per_request",
            "requests_per_replica",
            "cpu_us_per_request",
            "credential_bytes",
            "bottleneck",
        ] {
            assert!(json["runs"][0].get(key).is_some(), "{key}");
        }
        for key in ["p50", "p90", "p99", "max"] {
            assert!(json["runs"][0]["latency_ms"].get(key).is_some(), "{key}");
        }
        for key in ["replicas", "redis", "lb", "loadgen"] {
            assert!(
                json["runs"][0]["cpu_us_per_request"].get(key).is_some(),
                "{key}"
            );
        }
        let dir = std::env::temp_dir().join(format!("lt-results-{}", uuid::Uuid::new_v4()));
        let path = r.write(&dir).unwrap();
        let back = Results::read(&path).unwrap();
        assert_eq!(back.runs[0].errors_by_status["503"], 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = std::env::temp_dir().join(format!("lt-results-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.json");
        std::fs::write(
            &path,
            r#"{"schema_version": 99, "environment": {}, "runs": []}"#,
        )
        .unwrap();
        assert!(Results::read(&path)
            .unwrap_err()
            .to_string()
            .contains("schema_version 99"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
