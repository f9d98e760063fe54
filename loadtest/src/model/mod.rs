//! The results model: what a measurement produced, as types. results.json is this model
//! serialised; the report reads nothing else. Orchestration fills it in, the report matches
//! on its enums, and no number the run recorded is derived again later.
//!
//! This module imports nothing from the rest of the crate, so every stage can depend on it.

mod browser;
mod v1;
mod v2;

pub use browser::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version 4: runs at a fixed arrival rate (the open model: `offered_rps`, `arrivals`,
/// `open_model`), the rules a run broke (`invalid`), the `concurrency` bottleneck and CPU
/// read in nanoseconds. Version 3 files read unchanged (every new field has a default).
/// Version 3: CPU that was not visible is `null` (never 0), timelines in steps of
/// `timeline_step_s` by the time each request was sent, repeated sweep rounds, users logged
/// out, and the experiments of the study note's remaining claims. Versions 1 and 2 are still
/// read (see `v1.rs`, `v2.rs`).
pub const SCHEMA_VERSION: u32 = 4;

/// The auth model under test; `public` is the no-auth baseline (`GET /api/public` on the
/// token-server binary, through the same balancer).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Session,
    Token,
    Public,
}

impl ServerKind {
    pub const ALL: [ServerKind; 3] = [ServerKind::Session, ServerKind::Token, ServerKind::Public];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Session => "session",
            ServerKind::Token => "token",
            ServerKind::Public => "public",
        }
    }

    /// The binary that serves this group.
    pub fn binary(self) -> &'static str {
        match self {
            ServerKind::Session => "session-server",
            ServerKind::Token | ServerKind::Public => "token-server",
        }
    }

    /// The scenario that shows this group's everyday cost: an authenticated read, or the
    /// public route for the no-auth baseline.
    pub fn main_scenario(self) -> Scenario {
        match self {
            ServerKind::Public => Scenario::Public,
            ServerKind::Session | ServerKind::Token => Scenario::Read,
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Sign up and log in (not counted), then loop over `GET /api/me` and `GET /api/items`.
    Read,
    /// Repeated logins: what password hashing costs.
    Login,
    /// Reads with `POST /auth/refresh` every K requests.
    Refresh,
    /// `GET /api/public`: no credentials at all.
    Public,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Read,
        Scenario::Login,
        Scenario::Refresh,
        Scenario::Public,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Read => "read",
            Scenario::Login => "login",
            Scenario::Refresh => "refresh",
            Scenario::Public => "public",
        }
    }

    /// `public` is what the `public` group is for; the auth groups run the others.
    pub fn applies_to(self, server: ServerKind) -> bool {
        (server == ServerKind::Public) == (self == Scenario::Public)
    }
}

/// The experiments that show what throughput alone hides.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    /// Sessions in each replica's memory vs in Redis, round robin vs sticky.
    SharedStore,
    /// Redis frozen for a third of the window: what fails, what keeps working, recovery.
    RedisOutage,
    /// One replica killed mid-run: who loses their users.
    ReplicaLoss,
    /// How long a session id and an access token work after logout; the denylist's cost.
    Revocation,
    /// A real access token decoded, and tampered copies refused.
    TokenAnatomy,
    /// HS256 against EdDSA access tokens: CPU per verified request.
    Signing,
    /// Redis held to a small CPU budget while the replicas are swept: who stops growing.
    StoreBound,
    /// Memory per logged-in user, in a replica and in Redis, at two user counts.
    ServerMemory,
    /// An admin demoted, everyone logged out, a read-only credential: how long each model
    /// keeps granting what it should not (probes, see [`Authority`]).
    Authority,
    /// The token refresh scenario at several access-token lifetimes: refreshes against the
    /// revocation window.
    AccessTokenLifetime,
    /// A real Chromium over TLS: cross-origin use, CSRF and XSS against both models.
    Browser,
    /// The store-bound sweep again with a 3-primary Redis Cluster (each primary on the same
    /// budget), then a primary killed with a replica behind it.
    StoreCluster,
    /// The store behind a delaying proxy (a stand-in for a network): what a round trip to
    /// the store costs each model.
    StoreLatency,
    /// Latency against load: each group's capacity on one replica with a whole core, then
    /// fixed-rate runs at fractions of it (latency from each request's slot).
    LatencyCurve,
}

impl Experiment {
    pub fn name(self) -> &'static str {
        match self {
            Experiment::SharedStore => "shared-store",
            Experiment::RedisOutage => "redis-outage",
            Experiment::ReplicaLoss => "replica-loss",
            Experiment::Revocation => "revocation",
            Experiment::TokenAnatomy => "token-anatomy",
            Experiment::Signing => "signing",
            Experiment::StoreBound => "store-bound",
            Experiment::ServerMemory => "server-memory",
            Experiment::Authority => "authority",
            Experiment::AccessTokenLifetime => "access-token-lifetime",
            Experiment::Browser => "browser",
            Experiment::StoreCluster => "store-cluster",
            Experiment::StoreLatency => "store-latency",
            Experiment::LatencyCurve => "latency-curve",
        }
    }
}

/// How a run's servers were set up, where it differs from the sweep's.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// As in the sweep: sessions in Redis, HS256 access tokens, round-robin balancing.
    #[default]
    Standard,
    /// `SESSION_STORE=memory` behind round robin: each replica knows only its own sessions.
    MemoryStore,
    /// `SESSION_STORE=memory` behind sticky routing (a client always reaches one replica).
    MemoryStoreSticky,
    /// `JWT_ALG=EdDSA`: access tokens signed with an Ed25519 key pair.
    Eddsa,
    /// `ACCESS_DENYLIST=true`: every access token checked against a revocation list in Redis.
    Denylist,
    /// `REFRESH_REUSE_INTERVAL=0`: no retry grace; a refresh token presented twice is reuse
    /// (as before contract v2).
    NoRetryGrace,
    /// Redis held to `Run::redis_cpus` during the window.
    StoreBound,
    /// Access tokens of `Run::access_token_ttl_s` seconds, refreshed just before they expire.
    AccessTtl,
    /// The store is a Redis Cluster of `Run::redis_primaries` primaries
    /// (`REDIS_CLUSTER_NODES`), each held to `Run::redis_cpus` where that is set.
    Cluster,
    /// The replicas reach Redis through a proxy that holds every byte `Run::store_delay_ms`
    /// in each direction.
    StoreDelay,
}

impl Variant {
    /// How the variant was set up, in a few words.
    pub fn describe(self, server: ServerKind) -> &'static str {
        match (self, server) {
            (Variant::Standard, ServerKind::Session) => "Redis store, round robin",
            (Variant::Standard, ServerKind::Token) => "HS256, round robin",
            (Variant::Standard, ServerKind::Public) => "no credentials",
            (Variant::MemoryStore, _) => "memory store, round robin",
            (Variant::MemoryStoreSticky, _) => "memory store, sticky",
            (Variant::Eddsa, _) => "EdDSA",
            (Variant::Denylist, _) => "with denylist",
            (Variant::NoRetryGrace, ServerKind::Session) => "Redis store, no retry grace",
            (Variant::NoRetryGrace, _) => "no retry grace",
            (Variant::StoreBound, _) => "Redis on a CPU budget",
            (Variant::AccessTtl, _) => "short access tokens",
            (Variant::Cluster, _) => "Redis Cluster",
            (Variant::StoreDelay, _) => "store behind a delay",
        }
    }
}

/// What held throughput back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bottleneck {
    /// The replicas used (nearly) all the CPU they could: the run shows the servers' capacity.
    Replicas,
    /// The load generator took more of a saturated machine than anyone else.
    Loadgen,
    /// nginx's workers were busy.
    Lb,
    /// Redis used (nearly) its one core.
    Redis,
    /// The machine was busy with no single component the biggest user besides the replicas.
    Machine,
    /// Nothing was saturated: every simulated user (closed loop) or connection (open model)
    /// was waiting for an answer, so the run measured how many there were, not the system.
    Concurrency,
}

impl Bottleneck {
    /// What the bottleneck means, in the report's words.
    pub fn explain(self) -> &'static str {
        match self {
            Bottleneck::Replicas => "the replicas used at least 85% of the CPU they were given",
            Bottleneck::Loadgen => {
                "the load generator used at least 85% of its threads, or the machine was at least \
                 85% busy and the load generator was its largest user besides the replicas"
            }
            Bottleneck::Lb => "nginx's workers were at least 85% busy",
            Bottleneck::Redis => {
                "Redis used at least 85% of the CPU it could use, or, on a budget, was held back in \
                 at least half of its quota periods"
            }
            Bottleneck::Machine => "the machine was at least 85% busy with no single largest user",
            Bottleneck::Concurrency => {
                "no component was saturated: the simulated users (or, at a fixed rate, the \
                 connections) were all waiting for answers, so their number set the throughput"
            }
        }
    }
}

impl Bottleneck {
    pub fn name(self) -> &'static str {
        match self {
            Bottleneck::Replicas => "replicas",
            Bottleneck::Loadgen => "loadgen",
            Bottleneck::Lb => "lb",
            Bottleneck::Redis => "redis",
            Bottleneck::Machine => "machine",
            Bottleneck::Concurrency => "concurrency",
        }
    }
}

/// Where the measured deployment ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `compare`: processes started by the load tester on this machine.
    #[default]
    Local,
    /// `compare --via compose`: the services of docker-compose.yml, scaled per replica count.
    Compose,
    /// `run`: a deployment that already ran; only the load generator is visible.
    Existing,
}

/// What was broken during a run's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Redis frozen (SIGSTOP, or the Engine's pause of its container), then thawed (SIGCONT,
    /// unpause): it stops answering without closing connections.
    FreezeRedis,
    /// The first replica killed (SIGKILL, or the Engine's kill of its container); it stays
    /// dead.
    KillReplica,
    /// The first Redis Cluster primary killed (SIGKILL); its replica takes over. `lasts_s`
    /// is until the replica said it was the primary.
    KillPrimary,
}

/// A fault as it happened: the times the signals were sent, in seconds from the opening of
/// the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// When the fault was injected.
    pub at_s: f64,
    /// How long it lasted, when it was lifted inside the window (a killed replica stays
    /// dead: `null`).
    pub lasts_s: Option<f64>,
}

/// Where a request lies relative to its run's fault, by the time it was sent. This is the
/// one definition the report uses for "before", "during" and "after".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sent before the fault began.
    Before,
    /// Sent while the fault was in force (a timeline step that overlaps it; for a kill, from
    /// the kill on, for good).
    During,
    /// Sent after the fault was lifted.
    After,
}

impl Fault {
    /// The phase of the timeline step `[t_s, t_s + step_s)`.
    pub fn phase(&self, t_s: f64, step_s: f64) -> Phase {
        // Steps are multiples of 0.1 s; allow for their rounding.
        const EPS: f64 = 1e-6;
        if t_s + step_s <= self.at_s + EPS {
            return Phase::Before;
        }
        match self.lasts_s {
            Some(l) if t_s + EPS >= self.at_s + l => Phase::After,
            _ => Phase::During,
        }
    }

    /// When the fault was lifted, if it was.
    pub fn ended_s(&self) -> Option<f64> {
        self.lasts_s.map(|l| self.at_s + l)
    }

    pub fn describe(&self) -> String {
        match (self.kind, self.lasts_s) {
            (FaultKind::FreezeRedis, Some(l)) => format!(
                "Redis frozen from {:.2} s to {:.2} s",
                self.at_s,
                self.at_s + l
            ),
            (FaultKind::FreezeRedis, None) => {
                format!("Redis frozen from {:.2} s to the end", self.at_s)
            }
            (FaultKind::KillReplica, _) => format!("replica 1 killed at {:.2} s", self.at_s),
            (FaultKind::KillPrimary, Some(l)) => format!(
                "a Redis primary killed at {:.2} s; its replica took over {:.2} s later",
                self.at_s, l
            ),
            (FaultKind::KillPrimary, None) => format!(
                "a Redis primary killed at {:.2} s; its replica had not taken over by the end",
                self.at_s
            ),
        }
    }
}

/// How `compare` chose the CPU budget of each replica: what one request cost each component
/// in a short unthrottled run per group, and the budget that keeps every sweep run bound by
/// the replicas alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// One short run per group, one replica, no budget.
    pub runs: Vec<CalibrationRun>,
    /// The largest replica count of the sweep the budget was chosen for.
    pub max_replicas: u32,
    /// CPUs of the machine.
    pub machine_cpus: usize,
    /// Share of the machine the whole system may use at the top of the sweep.
    pub machine_share: f64,
    /// Share of its threads the load generator may use at the top of the sweep.
    pub loadgen_share: f64,
    /// Requests per second the machine can drive at the top of the sweep without anything
    /// but the replicas saturating.
    pub max_rps: f64,
    /// The group whose limits set the budget.
    pub set_by: ServerKind,
    /// The budget chosen, in CPUs per replica.
    pub cpus_per_replica: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationRun {
    pub server: ServerKind,
    pub rps: f64,
    /// CPU microseconds per request, by component.
    pub cpu_us_per_request: CpuPerRequest,
}

/// Memory held per logged-in user, measured at two user counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerMemory {
    pub points: Vec<MemoryPoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemoryPoint {
    pub server: ServerKind,
    /// `memory-store` (sessions in the replica) or `standard` (in Redis).
    pub variant: Variant,
    /// Users logged in (each once) when measured.
    pub logged_in: u32,
    /// The replica's resident memory (VmRSS).
    pub replica_rss_bytes: u64,
    /// Redis `used_memory`.
    pub redis_used_bytes: u64,
}

/// How long a credential keeps powers it should have lost, in milliseconds from the change's
/// answer to the first refusal; `None`: still granted when the probe gave up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Authority {
    pub access_token_ttl_s: u64,
    pub leeway_s: u64,
    /// How long the probe kept asking.
    pub limit_s: u64,
    /// An admin demoted through `PUT /api/admin/users/{name}/roles`: `GET /api/admin/stats`
    /// with the credential from before.
    pub demoted_session_ms: Option<f64>,
    pub demoted_token_ms: Option<f64>,
    /// After a refresh, the token server's answer to the new access token on the admin route.
    pub demoted_token_after_refresh_status: u16,
    /// `POST /auth/logout-all` from another login: `GET /api/me` with the first login's
    /// credential.
    pub logout_all_session_ms: Option<f64>,
    pub logout_all_token_ms: Option<f64>,
    /// The same with `ACCESS_DENYLIST=true`.
    pub logout_all_denylist_ms: Option<f64>,
    /// An admin logged in with `"scope": "read"`: status of `GET /api/me` and of
    /// `GET /api/admin/stats`, per model.
    pub read_scope_session: ScopeOutcome,
    pub read_scope_token: ScopeOutcome,
    /// The `scope` claim of the read-scoped access token, as anyone can decode it.
    pub read_scope_token_claim: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScopeOutcome {
    pub read_status: u16,
    pub admin_status: u16,
    /// The same admin's full-scope credential on the admin route.
    pub full_scope_admin_status: u16,
}

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
    /// How `compare` chose the CPU budget per replica, when it did.
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// Experiment `server-memory`, when it ran.
    #[serde(default)]
    pub server_memory: Option<ServerMemory>,
    /// Experiment `authority`, when it ran.
    #[serde(default)]
    pub authority: Option<Authority>,
    /// Experiment `browser`, when it ran.
    #[serde(default)]
    pub browser: Option<BrowserStudy>,
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
    /// The session login's whole `Set-Cookie` header (its attributes: HttpOnly, SameSite ...).
    #[serde(default)]
    pub set_cookie: String,
    /// The refresh token's payload, decoded (it is a JWT too).
    #[serde(default)]
    pub refresh_payload: Option<serde_json::Value>,
    /// HMAC-SHA256 over `base64url(header) "." base64url(payload)` with the run's key,
    /// recomputed by the load tester, equals the token's signature (HS256 only).
    #[serde(default)]
    pub signature_recomputed: Option<bool>,
    /// The user's password appears in no part of the token, raw or decoded.
    #[serde(default)]
    pub password_in_token: Option<bool>,
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
#[serde(default)]
pub struct Environment {
    pub mode: Mode,
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
    /// Notes a reader needs (e.g. replica counts above what the machine can give, a run
    /// that failed, an interrupted sweep).
    pub notes: Vec<String>,
    /// Which of several load generators measured this (`loadtest run --instance I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    /// The generators' results this file was merged from (`loadtest merge`), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// One of several load generators run at once against one deployment: number `index` of
/// `of`, written `I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Instance {
    pub index: u32,
    pub of: u32,
}

impl std::str::FromStr for Instance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not I/N (this generator's number and how many there are, e.g. 1/2)")
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, of): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if of == 0 || index == 0 || index > of || of > 1000 {
            return Err(format!("`{s}`: I must be 1 to N, and N 1 to 1000"));
        }
        Ok(Self { index, of })
    }
}

impl std::fmt::Display for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// Every measured request's latency as HDR histograms (microseconds; V2 serialization,
/// deflated, base64), so that the runs of several generators can be merged exactly
/// (`loadtest merge`): percentiles are never averaged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Histograms {
    pub all: String,
    pub by_route: BTreeMap<String, String>,
    /// At a fixed rate: latency from each request's slot, and how late each started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_slot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// The start of the step, in seconds since the window opened; a request belongs to the
    /// step in which it was sent.
    pub t_s: f64,
    pub route: String,
    pub ok: u64,
    pub failed: u64,
    /// Of `failed`: answered 401 (the credential itself was refused).
    #[serde(default)]
    pub refused: u64,
}

/// What a failover lost: logins written (a refresh of each, all at once) just before a
/// Redis primary was killed, checked again once its replica had taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    /// Logins refreshed just before the kill (each answered 200).
    pub written: u32,
    /// Of those, how many lived on the killed primary.
    pub on_killed_primary: u32,
    /// Of those written, how many no longer worked after the failover (the credential the
    /// refresh had just handed out was refused, 401).
    pub lost: u32,
    /// Of those written, how many still got no answer but "unavailable" 10 s after the
    /// replica took over (neither kept nor lost, as far as could be seen).
    #[serde(default)]
    pub unanswered: u32,
    /// Milliseconds from the last of those writes' answers to the kill.
    pub last_write_before_kill_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One figure for each component of the measured system; `None` where the component's CPU
/// could not be seen from the load generator (inside containers, another machine).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuPerRequest {
    pub replicas: Option<f64>,
    pub redis: Option<f64>,
    pub lb: Option<f64>,
    pub loadgen: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PeakMemory {
    /// The largest replica's peak resident memory.
    pub replica_max: u64,
    pub redis: u64,
    pub lb: u64,
    pub loadgen: u64,
}

/// How requests arrive in an open-model run.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// One request every 1/rate seconds, as wrk2 sends.
    #[default]
    Constant,
    /// Independent arrivals (exponential gaps of mean 1/rate), as many independent
    /// clients make.
    Poisson,
}

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// The open model: requests start on a schedule of their own, whether or not earlier ones
/// were answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpenLoad {
    /// Requests per second the schedule starts.
    pub offered_rps: f64,
    pub arrivals: Arrivals,
}

/// How a run's deployment and load were set up. The plan makes it once; the run carries it
/// unchanged into results.json, where its fields sit flat in the run (the names readers
/// know).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// How the servers were set up (`standard` in the sweep).
    #[serde(default)]
    pub variant: Variant,
    /// Simulated users; at a fixed rate, the connections the requests are spread over.
    pub users: u32,
    /// A fixed arrival rate; absent: a closed loop (each user sends its next request when
    /// the last one was answered).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenLoad>,
    /// CPU budget of Redis during the window (experiment `store-bound`).
    #[serde(default)]
    pub redis_cpus: Option<f64>,
    /// The access tokens' lifetime, where the run set one (experiment
    /// `access-token-lifetime`).
    #[serde(default)]
    pub access_token_ttl_s: Option<u64>,
    /// Primaries of the Redis Cluster the run's store was (variant `cluster`).
    #[serde(default)]
    pub redis_primaries: Option<u32>,
    /// Replicas of each of those primaries (the failover arm gives each one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_replicas_each: Option<u32>,
    /// The delay the proxy between the replicas and Redis added in each direction (variant
    /// `store-delay`), as planned.
    #[serde(default)]
    pub store_delay_ms: Option<f64>,
    /// The replicas ran without the CPU budget (`store-latency`: under a quota, a request
    /// that waits for the next quota period hides part of the round trip it also waits for).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unbudgeted: bool,
}

impl Setup {
    /// The sweep's set-up: standard servers, `users` users, closed loop unless `open`.
    pub fn standard(users: u32, open: Option<OpenLoad>) -> Self {
        Self {
            variant: Variant::Standard,
            users,
            open,
            redis_cpus: None,
            access_token_ttl_s: None,
            redis_primaries: None,
            redis_replicas_each: None,
            store_delay_ms: None,
            unbudgeted: false,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// What an open-model run saw besides its throughput.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OpenModel {
    /// Requests answered in the window per second (`rps`), beside the offered rate.
    pub achieved_rps: f64,
    /// Requests of the window that started more than `late_after_us` after they should
    /// have: no connection was free, or the load generator was behind.
    pub late_starts: u64,
    pub late_after_us: u64,
    /// How late every request of the window started (0 for one on time).
    pub late_by_us: Percentiles,
    /// From when each request should have started to its answer: what a user arriving on
    /// schedule waits (coordinated omission accounted for, as wrk2 counts).
    pub latency_us_intended: Percentiles,
    /// From when each request was actually sent to its answer (what a closed loop reports).
    pub latency_us_actual: Percentiles,
}

/// A rule of a valid run that a run broke: it stays in results.json, out of medians and
/// verdicts, and the report lists it with this reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Invalid {
    /// An open-model run answered less than `MIN_ACHIEVED` of the rate it was offered: the
    /// offered rate was above what the system (or the load generator) could do.
    BelowOfferedRate { offered_rps: f64, achieved_rps: f64 },
    /// Over `MAX_ERRORS` of the requests failed outside a fault experiment.
    Errors { share: f64 },
    /// A replica served under half of its fair share: the balancer starved it.
    ReplicaStarved {
        /// 1-based.
        replica: u32,
        served: u64,
        fair_share: f64,
    },
}

/// An open-model run must achieve this share of its offered rate.
pub const MIN_ACHIEVED: f64 = 0.95;
/// A run outside a fault experiment may fail at most this share of its requests.
pub const MAX_ERRORS: f64 = 0.01;
/// Every replica must serve at least this share of its fair share (requests / replicas).
pub const MIN_FAIR_SHARE: f64 = 0.5;

impl Invalid {
    pub fn explain(&self) -> String {
        match self {
            Invalid::BelowOfferedRate {
                offered_rps,
                achieved_rps,
            } => format!(
                "achieved {achieved_rps:.0} of the {offered_rps:.0} req/s offered ({:.0}%, under {:.0}%)",
                100.0 * achieved_rps / offered_rps.max(f64::MIN_POSITIVE),
                100.0 * MIN_ACHIEVED
            ),
            Invalid::Errors { share } => format!(
                "{:.1}% of its requests failed (over {:.0}%) with no fault injected",
                100.0 * share,
                100.0 * MAX_ERRORS
            ),
            Invalid::ReplicaStarved {
                replica,
                served,
                fair_share,
            } => format!(
                "replica {replica} served {served} requests, under half of its fair share \
                 ({fair_share:.0})"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// Set for the runs of an experiment, null for the sweep.
    #[serde(default)]
    pub experiment: Option<Experiment>,
    /// Which repetition of its sweep point this run is (1, 2, 3 ...); sweep rounds are
    /// interleaved, so a slow minute of the machine does not land on one replica count.
    #[serde(default = "first_round")]
    pub round: u32,
    pub server: ServerKind,
    pub scenario: Scenario,
    pub replicas: u32,
    #[serde(flatten)]
    pub setup: Setup,
    /// The measured window, in seconds (warm-up excluded).
    pub duration_s: f64,
    /// Requests answered in the window, per second (errors included).
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    /// Every answer that was not 2xx, by status; 0 means no HTTP answer at all.
    pub errors_by_status: BTreeMap<u16, u64>,
    /// Over all measured requests.
    pub latency_ms: Latency,
    /// Per route template.
    pub latency_ms_by_route: BTreeMap<String, Latency>,
    /// Requests sent in the window, per route template.
    #[serde(default)]
    pub requests_by_route: BTreeMap<String, u64>,
    /// Users whose credential was refused (401) at least once in the window: logged out,
    /// from the user's side. `None` where not counted (version 2 files).
    #[serde(default)]
    pub users_logged_out: Option<u32>,
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
    /// Share of Redis's quota periods in the window in which it ran out of that budget and
    /// was held back (cgroup `cpu.stat`).
    #[serde(default)]
    pub redis_throttled: Option<f64>,
    /// Whether this replica count asked for more CPUs than the machine has.
    pub oversubscribed: bool,
    /// A `PING` round trip from this machine to Redis through that proxy, as measured
    /// before the run (median of 50).
    #[serde(default)]
    pub store_rtt_ms: Option<f64>,
    /// Sessions or refresh-token families written just before a Redis primary was killed,
    /// and how many of them were gone after its replica took over (fault `kill-primary`).
    #[serde(default)]
    pub failover: Option<Failover>,
    /// The latency histograms behind `latency_ms` (kept by `loadtest run`, for `merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<Histograms>,
    /// The fault injected during the window, as it happened.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Per step of the window and per route: answered and failed requests. Recorded for
    /// experiments with a fault, empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelinePoint>,
    /// The timeline's step, in seconds.
    #[serde(default = "one_second")]
    pub timeline_step_s: f64,
    /// What limited throughput; null when nothing was found saturated (version 3 files;
    /// version 4 names `concurrency` then).
    pub bottleneck: Option<Bottleneck>,
    /// An open-model run's late starts and latency from the intended start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_model: Option<OpenModel>,
    /// The rules of a valid run this run broke; empty for a valid run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid: Vec<Invalid>,
}

fn first_round() -> u32 {
    1
}

fn one_second() -> f64 {
    1.0
}

impl Run {
    /// An empty run of `server` / `scenario`, for tests and fixtures.
    pub fn new(server: ServerKind, scenario: Scenario) -> Self {
        Self {
            experiment: None,
            round: 1,
            server,
            scenario,
            replicas: 1,
            setup: Setup::standard(0, None),
            duration_s: 0.0,
            rps: 0.0,
            requests: 0,
            errors: 0,
            errors_by_status: BTreeMap::new(),
            latency_ms: Latency::default(),
            latency_ms_by_route: BTreeMap::new(),
            requests_by_route: BTreeMap::new(),
            users_logged_out: None,
            redis_commands_per_request: None,
            requests_per_replica: Vec::new(),
            cpu_us_per_request: CpuPerRequest::default(),
            cpu_cores_used: CpuPerRequest::default(),
            peak_memory_bytes: PeakMemory::default(),
            redis_bytes_per_user: None,
            credential_bytes: 0,
            cpus_per_replica: None,
            redis_throttled: None,
            oversubscribed: false,
            store_rtt_ms: None,
            failover: None,
            histograms: None,
            fault: None,
            timeline: Vec::new(),
            timeline_step_s: 1.0,
            bottleneck: None,
            open_model: None,
            invalid: Vec::new(),
        }
    }

    pub fn variant(&self) -> Variant {
        self.setup.variant
    }

    pub fn users(&self) -> u32 {
        self.setup.users
    }

    /// Whether the run may enter medians and verdicts: it broke none of the rules.
    pub fn valid(&self) -> bool {
        self.invalid.is_empty()
    }

    /// The rules of a valid run this one breaks (see [`Invalid`]). A fault experiment fails
    /// requests on purpose, and so does the memory store behind round robin (its refused
    /// credentials are what it measures); a replica killed, or a sticky hash, serves
    /// unevenly by design.
    pub fn broken_rules(&self) -> Vec<Invalid> {
        let mut broken = Vec::new();
        if let Some(open) = self.setup.open {
            if self.rps < MIN_ACHIEVED * open.offered_rps {
                broken.push(Invalid::BelowOfferedRate {
                    offered_rps: open.offered_rps,
                    achieved_rps: self.rps,
                });
            }
        }
        let failing_on_purpose = self.fault.is_some() || self.variant() == Variant::MemoryStore;
        if !failing_on_purpose && self.error_rate() > MAX_ERRORS {
            broken.push(Invalid::Errors {
                share: self.error_rate(),
            });
        }
        let uneven_on_purpose =
            self.fault.is_some() || self.variant() == Variant::MemoryStoreSticky;
        let served: u64 = self.requests_per_replica.iter().sum();
        if !uneven_on_purpose && self.requests_per_replica.len() > 1 && served > 0 {
            let fair_share = served as f64 / self.requests_per_replica.len() as f64;
            if let Some((i, n)) = self
                .requests_per_replica
                .iter()
                .enumerate()
                .find(|(_, n)| (**n as f64) < MIN_FAIR_SHARE * fair_share)
            {
                broken.push(Invalid::ReplicaStarved {
                    replica: i as u32 + 1,
                    served: *n,
                    fair_share,
                });
            }
        }
        broken
    }

    /// Whether this run belongs to the replica sweep (not to an experiment).
    pub fn in_sweep(&self) -> bool {
        self.experiment.is_none()
    }

    /// Failed requests in the seconds of the timeline where `pick` holds, for one route or
    /// all of them.
    pub fn failed_where(&self, route: Option<&str>, pick: impl Fn(f64) -> bool) -> u64 {
        self.timeline
            .iter()
            .filter(|p| route.is_none_or(|r| p.route == r) && pick(p.t_s))
            .map(|p| p.failed)
            .sum()
    }

    /// The timeline points of one phase of the fault (all of them when there was no fault
    /// and `phase` is `During`).
    pub fn points_in(&self, phase: Phase) -> impl Iterator<Item = &TimelinePoint> {
        self.timeline.iter().filter(move |p| match &self.fault {
            Some(f) => f.phase(p.t_s, self.timeline_step_s) == phase,
            None => phase == Phase::During,
        })
    }

    /// Failed requests in one phase of the fault, for one route or all of them.
    pub fn failed_in(&self, route: Option<&str>, phase: Phase) -> u64 {
        self.points_in(phase)
            .filter(|p| route.is_none_or(|r| p.route == r))
            .map(|p| p.failed)
            .sum()
    }

    /// Of those, the ones answered 401: credentials refused, not a server unavailable.
    pub fn refused_in(&self, route: Option<&str>, phase: Phase) -> u64 {
        self.points_in(phase)
            .filter(|p| route.is_none_or(|r| p.route == r))
            .map(|p| p.refused)
            .sum()
    }

    /// Seconds of failure a fault caused: from the fault to the end of the last timeline
    /// step sent after it in which a request failed (0 when none did). `None` without a
    /// fault.
    pub fn failing_s(&self) -> Option<f64> {
        let f = self.fault?;
        let last_failing_end = self
            .timeline
            .iter()
            .filter(|p| p.failed > 0 && p.t_s + self.timeline_step_s > f.at_s)
            .map(|p| p.t_s + self.timeline_step_s)
            .fold(None, |acc: Option<f64>, t| {
                Some(acc.map_or(t, |a| a.max(t)))
            });
        Some(last_failing_end.map_or(0.0, |end| (end - f.at_s).max(0.0)))
    }

    /// Whether requests were still failing when the window closed: after a fault, the last
    /// timeline step with a failure is followed by no step in which a request succeeded.
    /// (Requests still waiting when the window closed are in no step: a store that never
    /// came back shows as failures that stop, not as a recovery.)
    pub fn failing_at_end(&self) -> bool {
        let Some(f) = self.fault else {
            return false;
        };
        let after = |p: &&TimelinePoint| p.t_s + self.timeline_step_s > f.at_s;
        let Some(last_failed) = self
            .timeline
            .iter()
            .filter(after)
            .filter(|p| p.failed > 0)
            .map(|p| p.t_s)
            .reduce(f64::max)
        else {
            return false;
        };
        !self
            .timeline
            .iter()
            .any(|p| p.t_s > last_failed && p.ok > 0)
    }

    /// Whether the run was bound by something other than the replicas it measures.
    pub fn bound_elsewhere(&self) -> Option<Bottleneck> {
        self.bottleneck.filter(|b| *b != Bottleneck::Replicas)
    }

    /// Requests per second on one route.
    pub fn route_rps(&self, route: &str) -> Option<f64> {
        let n = self.requests_by_route.get(route)?;
        (self.duration_s > 0.0).then(|| *n as f64 / self.duration_s)
    }

    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

impl Results {
    pub fn new(environment: Environment) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            environment,
            runs: Vec::new(),
            token_anatomy: None,
            revocation: None,
            calibration: None,
            server_memory: None,
            authority: None,
            browser: None,
        }
    }

    /// Valid sweep runs of one server and scenario, by replica count then round.
    pub fn sweep(&self, server: ServerKind, scenario: Scenario) -> Vec<&Run> {
        let mut v: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| r.valid() && r.in_sweep() && r.server == server && r.scenario == scenario)
            .collect();
        v.sort_by_key(|r| (r.replicas, r.round));
        v
    }

    /// The sweep of one server and scenario, one point per replica count: every round's
    /// throughput, their median and spread.
    pub fn sweep_points(&self, server: ServerKind, scenario: Scenario) -> Vec<SweepPoint<'_>> {
        let mut out: Vec<SweepPoint> = Vec::new();
        for r in self.sweep(server, scenario) {
            match out.last_mut() {
                Some(p) if p.replicas == r.replicas => p.runs.push(r),
                _ => out.push(SweepPoint {
                    replicas: r.replicas,
                    runs: vec![r],
                }),
            }
        }
        out
    }

    /// The sweep's first run of one server and scenario: round 1 at the smallest count,
    /// where every scenario runs.
    pub fn first_run(&self, server: ServerKind, scenario: Scenario) -> Option<&Run> {
        self.sweep(server, scenario).into_iter().next()
    }

    /// The valid runs of one experiment, in the order they ran.
    pub fn experiment(&self, e: Experiment) -> Vec<&Run> {
        self.runs
            .iter()
            .filter(|r| r.valid() && r.experiment == Some(e))
            .collect()
    }

    /// One arm of an experiment, when it was valid.
    pub fn arm(&self, e: Experiment, server: ServerKind, v: Variant) -> Option<&Run> {
        self.runs.iter().find(|r| {
            r.valid() && r.experiment == Some(e) && r.server == server && r.variant() == v
        })
    }

    /// The runs left out of every median and verdict, with the rules they broke.
    pub fn invalid_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| !r.valid())
    }

    /// The server groups that have runs, in the report's order.
    pub fn servers(&self) -> Vec<ServerKind> {
        ServerKind::ALL
            .into_iter()
            .filter(|s| self.runs.iter().any(|r| r.server == *s))
            .collect()
    }

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
        // Written whole, then renamed: a reader (or an interrupt) never sees half a file.
        let tmp = dir.join("results.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Reads schema version 2, or version 1 converted (see `v1.rs`).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Self::from_json(&raw).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
    }

    pub fn from_json(raw: &[u8]) -> anyhow::Result<Self> {
        let mut value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| anyhow::anyhow!("not JSON: {e}"))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        match version {
            Some(1) => {
                v1::upgrade(&mut value)?;
                v2::upgrade(&mut value)?;
            }
            Some(2) => v2::upgrade(&mut value)?,
            // Version 4 only added fields, each with a default.
            Some(3) => value["schema_version"] = serde_json::json!(SCHEMA_VERSION),
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            other => anyhow::bail!(
                "schema_version {}: this loadtest reads 1 to {SCHEMA_VERSION}",
                other.map_or("(none)".into(), |v| v.to_string())
            ),
        }
        serde_json::from_value(value).map_err(|e| anyhow::anyhow!("not a results.json: {e}"))
    }
}

/// The runs of one sweep point (one replica count), one per round.
pub struct SweepPoint<'a> {
    pub replicas: u32,
    pub runs: Vec<&'a Run>,
}

impl<'a> SweepPoint<'a> {
    fn sorted_rps(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.runs.iter().map(|r| r.rps).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median round's requests per second.
    pub fn median_rps(&self) -> f64 {
        let v = self.sorted_rps();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn min_rps(&self) -> f64 {
        self.sorted_rps().first().copied().unwrap_or(0.0)
    }

    pub fn max_rps(&self) -> f64 {
        self.sorted_rps().last().copied().unwrap_or(0.0)
    }

    /// The round whose throughput is the median (the lower one of an even count), for the
    /// point's other figures.
    pub fn median_run(&self) -> Option<&'a Run> {
        let mut v = self.runs.clone();
        v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        v.get((v.len().max(1) - 1) / 2).copied()
    }

    /// What bound any of its rounds other than the replicas.
    pub fn bound_elsewhere(&self) -> Option<Bottleneck> {
        self.runs.iter().find_map(|r| r.bound_elsewhere())
    }

    pub fn oversubscribed(&self) -> bool {
        self.runs.iter().any(|r| r.oversubscribed)
    }

    /// Every round was bound by the replicas' own budget.
    pub fn replica_bound(&self) -> bool {
        !self.runs.is_empty()
            && self
                .runs
                .iter()
                .all(|r| r.bottleneck == Some(Bottleneck::Replicas))
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

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!("lt-results-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn results_round_trip_and_keep_the_contracted_names() {
        let mut r = Results::new(Environment::default());
        let mut run = Run::new(ServerKind::Token, Scenario::Read);
        run.errors_by_status.insert(503, 2);
        run.experiment = Some(Experiment::RedisOutage);
        run.bottleneck = Some(Bottleneck::Loadgen);
        run.fault = Some(Fault {
            kind: FaultKind::FreezeRedis,
            at_s: 3.01,
            lasts_s: Some(2.99),
        });
        r.runs.push(run);
        let json = serde_json::to_value(&r).unwrap();
        let run = &json["runs"][0];
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
            "variant",
        ] {
            assert!(run.get(key).is_some(), "{key}");
        }
        // The labels other tools read stay plain strings.
        assert_eq!(run["server"], "token");
        assert_eq!(run["scenario"], "read");
        assert_eq!(run["experiment"], "redis-outage");
        assert_eq!(run["variant"], "standard");
        assert_eq!(run["bottleneck"], "loadgen");
        assert_eq!(run["errors_by_status"]["503"], 2);
        assert_eq!(run["fault"]["kind"], "freeze-redis");
        assert_eq!(run["fault"]["at_s"], 3.01);
        assert_eq!(json["environment"]["mode"], "local");
        let dir = temp();
        let path = r.write(&dir).unwrap();
        let back = Results::read(&path).unwrap();
        assert_eq!(back.runs[0].errors_by_status[&503], 2);
        assert_eq!(back.runs[0].fault, r.runs[0].fault);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_schema_version_is_refused() {
        let err = Results::from_json(br#"{"schema_version": 99, "environment": {}, "runs": []}"#)
            .unwrap_err();
        assert!(err.to_string().contains("schema_version 99"), "{err}");
        let err = Results::from_json(b"{}").unwrap_err();
        assert!(err.to_string().contains("(none)"), "{err}");
        assert!(Results::from_json(b"not json").is_err());
    }

    #[test]
    fn phases_follow_the_recorded_fault_times() {
        // Frozen from 6.67 s to 13.33 s: second 6 overlaps it, second 13 too, 14 is after.
        let f = Fault {
            kind: FaultKind::FreezeRedis,
            at_s: 6.67,
            lasts_s: Some(6.66),
        };
        let phases: Vec<Phase> = (5..=14).map(|t| f.phase(t as f64, 1.0)).collect();
        use Phase::*;
        assert_eq!(
            phases,
            [Before, During, During, During, During, During, During, During, During, After]
        );
        let kill = Fault {
            kind: FaultKind::KillReplica,
            at_s: 3.0,
            lasts_s: None,
        };
        assert_eq!(kill.phase(2.0, 1.0), Before);
        assert_eq!(kill.phase(3.0, 1.0), During);
        assert_eq!(kill.phase(300.0, 1.0), During);
        // In steps of 0.1 s the edges are where the fault was: [6.5, 6.6) is before, [6.6, 6.7)
        // holds the freeze, [13.4, 13.5) is after.
        assert_eq!(f.phase(6.6, 0.1), During);
        assert_eq!(f.phase(6.5, 0.1), Before);
        assert_eq!(f.phase(13.3, 0.1), During);
        assert_eq!(f.phase(13.4, 0.1), After);
        assert_eq!(f.describe(), "Redis frozen from 6.67 s to 13.33 s");
    }
}
