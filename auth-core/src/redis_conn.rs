//! The one Redis connection each replica shares, with the time limits and the command
//! counter both servers need.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, IntoConnectionInfo, Pipeline, RedisFuture};

use crate::config::{RedisTarget, RedisUrl};

/// Every Redis call fails within this time, so a request never waits on a dead Redis
/// for longer than the contract's 2 s (the reconnect back-off alone could exceed it).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1200);

/// A script runs only if Redis starts it within this time of the call being sent: later, the
/// call has timed out (or is about to) and its request was answered 503, so the script must
/// change nothing (API.md, "After the server has answered"). The 200 ms below `CALL_TIMEOUT`
/// are for the answer to travel back, and for the error of the clock offset estimate.
pub const SCRIPT_DEADLINE: Duration = Duration::from_millis(1000);

/// What every [`Script`] runs first: `ARGV[#ARGV]` is the deadline, in Redis's own clock
/// (ms since the epoch); past it, the script fails without touching anything. A stalled Redis
/// (stopped, swapping, stuck on a slow command) that comes back runs the scripts queued while
/// it was away: each of them now finds its deadline passed.
const DEADLINE_GUARD: &str = r#"
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[#ARGV]) then
  return redis.error_reply('LATE the request this script belonged to was already answered')
end
"#;

/// A Lua script that changes nothing once its request has been answered: the only kind of
/// script [`Redis::script`] runs. Its body must not read `ARGV[#ARGV]` (the deadline,
/// appended to every invocation).
pub struct Script(redis::Script);

impl Script {
    pub fn new(body: &str) -> Self {
        Self(redis::Script::new(&format!("{DEADLINE_GUARD}{body}")))
    }

    pub fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation(self.0.prepare_invoke())
    }
}

/// One call of a [`Script`]: its keys and arguments (the deadline is added when it is sent).
pub struct Invocation<'a>(redis::ScriptInvocation<'a>);

impl Invocation<'_> {
    pub fn key(&mut self, key: impl redis::ToRedisArgs) -> &mut Self {
        self.0.key(key);
        self
    }

    pub fn arg(&mut self, arg: impl redis::ToRedisArgs) -> &mut Self {
        self.0.arg(arg);
        self
    }
}

/// How far Redis's clock is ahead of this process's, in ms: scripts compare their deadline
/// with Redis's clock, so the deadline is written in it. Measured with `TIME` at start and
/// every [`CLOCK_RESYNC`]; a sample whose round trip took longer than [`CLOCK_SAMPLE_MAX_RTT`]
/// is dropped (a Redis that was stalled answers late, which would skew the estimate).
#[derive(Default)]
struct RedisClock {
    offset_ms: AtomicI64,
}

const CLOCK_RESYNC: Duration = Duration::from_secs(60);
const CLOCK_SAMPLE_MAX_RTT: Duration = Duration::from_millis(50);

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis command failed")]
    Command(#[from] redis::RedisError),
    #[error("redis did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
}

/// How long every call to a cluster may fail before the connection is replaced. redis-rs's
/// cluster client (1.8) can stall for good while it recovers from a primary's death under
/// load: a slot refresh waits for a lock that a request it no longer polls was granted, and
/// every later call times out until the process restarts. A new connection, made from the
/// nodes in REDIS_CLUSTER_NODES, learns the slot map afresh. While a primary fails over,
/// calls to the other primaries still succeed, so only a stall (or a store down as a whole,
/// which then costs one reconnection attempt per period) sets this off.
const CLUSTER_STALL: Duration = Duration::from_secs(2);

/// The connection: to one Redis, or to a cluster (which routes each command, and each
/// script, to the primary holding its keys' slot, and follows the slot map as it changes).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipe, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The cluster connection in use, and what replaces it when it stalls ([`CLUSTER_STALL`]).
struct ClusterHandle {
    client: ClusterClient,
    conn: RwLock<ClusterConnection>,
    /// What `failing_since_ms` counts from.
    epoch: Instant,
    /// Since when every call has failed, in milliseconds after `epoch` (at least 1); 0 while
    /// calls succeed. An atomic, so a call that succeeds (nearly all) takes no lock.
    failing_since_ms: AtomicU64,
    replacing: AtomicBool,
}

impl ClusterHandle {
    fn conn(&self) -> ClusterConnection {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Notes how a call ended; after `CLUSTER_STALL` of nothing but failures, a new
    /// connection is made in the background (one at a time) and takes over if it connects.
    fn outcome(self: &Arc<Self>, ok: bool) {
        if ok {
            if self.failing_since_ms.load(Ordering::Relaxed) != 0 {
                self.failing_since_ms.store(0, Ordering::Relaxed);
            }
            return;
        }
        let now = self.now_ms();
        let began = match self.failing_since_ms.compare_exchange(
            0,
            now,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => now,
            Err(earlier) => earlier,
        };
        let failing = Duration::from_millis(now.saturating_sub(began));
        if failing < CLUSTER_STALL || self.replacing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(5), me.client.get_async_connection())
                .await
            {
                Ok(Ok(fresh)) => {
                    *me.conn.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                    tracing::warn!(
                        "every Redis Cluster call failed for {failing:?}: replaced the connection"
                    );
                }
                // Still down: the next failure after another period tries again.
                _ => tracing::warn!(
                    "the Redis Cluster is still unreachable; a new connection failed"
                ),
            }
            me.failing_since_ms.store(me.now_ms(), Ordering::Relaxed);
            me.replacing.store(false, Ordering::SeqCst);
        });
    }
}

/// A cheap-to-clone handle: the connection is multiplexed, the counter shared.
#[derive(Clone)]
pub struct Redis {
    store: Store,
    commands: IntCounter,
    clock: Arc<RedisClock>,
}

#[derive(Clone)]
enum Store {
    Single(ConnectionManager),
    Cluster(Arc<ClusterHandle>),
}

impl Store {
    /// The connection for one call.
    fn conn(&self) -> Conn {
        match self {
            Store::Single(c) => Conn::Single(c.clone()),
            Store::Cluster(h) => Conn::Cluster(h.conn()),
        }
    }

    /// One call with the time limit; a cluster learns how it ended.
    async fn call<T, F>(&self, run: impl FnOnce(Conn) -> F) -> Result<T, RedisError>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let r = match tokio::time::timeout(CALL_TIMEOUT, run(self.conn())).await {
            Ok(r) => r.map_err(RedisError::from),
            Err(_) => Err(RedisError::Timeout),
        };
        if let Store::Cluster(h) = self {
            h.outcome(r.is_ok());
        }
        r
    }
}

impl Redis {
    /// Connects once (failing fast with a clear error if Redis is not there at start-up);
    /// afterwards the connection reconnects by itself when Redis comes back.
    /// Every message names the URL with its password hidden (`RedisUrl`'s `Display`).
    pub async fn connect(target: &RedisTarget, commands: IntCounter) -> anyhow::Result<Self> {
        let store = match target {
            RedisTarget::Single(url) => Store::Single(Self::single(url).await?),
            RedisTarget::Cluster(nodes) => {
                let client = Self::cluster_client(nodes)?;
                let conn =
                    tokio::time::timeout(Duration::from_secs(5), client.get_async_connection())
                        .await
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "the Redis Cluster at {target} did not answer within 5 s"
                            )
                        })?
                        .map_err(|e| {
                            anyhow::anyhow!("cannot connect to the Redis Cluster at {target}: {e}")
                        })?;
                Store::Cluster(Arc::new(ClusterHandle {
                    client,
                    conn: RwLock::new(conn),
                    epoch: Instant::now(),
                    failing_since_ms: AtomicU64::new(0),
                    replacing: AtomicBool::new(false),
                }))
            }
        };
        let redis = Self {
            store,
            commands,
            clock: Arc::default(),
        };
        Self::sample_clock(&redis.store, &redis.clock)
            .await
            .map_err(|e| anyhow::anyhow!("Redis at {target} did not tell its time: {e}"))?;
        redis.keep_clock_in_sync();
        Ok(redis)
    }

    /// One `TIME` sample, into `clock` (not counted in `redis_commands_total`: it serves no
    /// request); a sample that took too long keeps the old offset.
    async fn sample_clock(store: &Store, clock: &RedisClock) -> Result<(), RedisError> {
        let sent = Instant::now();
        let before = unix_ms();
        let (s, us): (i64, i64) = store
            .call(|mut conn| async move { redis::cmd("TIME").query_async(&mut conn).await })
            .await?;
        let rtt = sent.elapsed();
        if rtt <= CLOCK_SAMPLE_MAX_RTT {
            let midpoint = before + rtt.as_millis() as i64 / 2;
            clock
                .offset_ms
                .store(s * 1000 + us / 1000 - midpoint, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Re-measures the offset now and then, for as long as any handle of this connection lives.
    fn keep_clock_in_sync(&self) {
        let clock = Arc::downgrade(&self.clock);
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CLOCK_RESYNC).await;
                let Some(clock) = clock.upgrade() else { return };
                // A failed sample keeps the old offset; the next period tries again.
                let _ = Self::sample_clock(&store, &clock).await;
            }
        });
    }

    /// The deadline of a script sent now, in Redis's clock.
    fn script_deadline_ms(&self) -> i64 {
        unix_ms()
            + self.clock.offset_ms.load(Ordering::Relaxed)
            + SCRIPT_DEADLINE.as_millis() as i64
    }

    async fn single(url: &RedisUrl) -> anyhow::Result<ConnectionManager> {
        // The parse error is not shown: it could quote the URL, password included.
        let client = redis::Client::open(url.expose())
            .map_err(|_| anyhow::anyhow!("REDIS_URL `{url}` is not a valid Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {url} did not answer within 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {url}: {e}"))
    }

    fn cluster_client(nodes: &[RedisUrl]) -> anyhow::Result<ClusterClient> {
        let mut infos = Vec::with_capacity(nodes.len());
        for n in nodes {
            infos.push(n.expose().into_connection_info().map_err(|_| {
                anyhow::anyhow!("REDIS_CLUSTER_NODES: `{n}` is not a valid Redis address")
            })?);
        }
        // Within CALL_TIMEOUT a command may be retried on the new primary after a
        // failover (a MOVED answer, or a connection that broke): few retries, short waits.
        ClusterClientBuilder::new(infos)
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(200)
            .build()
            .map_err(|e| anyhow::anyhow!("REDIS_CLUSTER_NODES: {e}"))
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        self.commands.inc();
        self.store
            .call(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs a pipeline in one round trip; each command in it counts.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisError> {
        self.commands.inc_by(pipe.len() as u64);
        self.store
            .call(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs a Lua script (EVALSHA, falling back to EVAL once): counted as one command. It
    /// does nothing if Redis starts it after [`SCRIPT_DEADLINE`] (then it fails, and so does
    /// the request, with 503).
    pub async fn script<T: FromRedisValue>(
        &self,
        mut invocation: Invocation<'_>,
    ) -> Result<T, RedisError> {
        self.commands.inc();
        invocation.arg(self.script_deadline_ms());
        let invocation = &invocation.0;
        self.store
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// `PING`, for `/readyz` (on a cluster, every primary must answer).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
