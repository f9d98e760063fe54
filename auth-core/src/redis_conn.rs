//! The one Redis connection each replica shares, with the time limits and the command
//! counter both servers need.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}

#[derive(Clone)]
enum Store {
    Single(ConnectionManager),
    Cluster(Arc<ClusterHandle>),
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
        Ok(Self { store, commands })
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

    /// The connection for one call.
    fn conn(&self) -> Conn {
        match &self.store {
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
        if let Store::Cluster(h) = &self.store {
            h.outcome(r.is_ok());
        }
        r
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        self.commands.inc();
        self.call(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs a pipeline in one round trip; each command in it counts.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisError> {
        self.commands.inc_by(pipe.len() as u64);
        self.call(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs a Lua script (EVALSHA, falling back to EVAL once): counted as one command.
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        self.commands.inc();
        self.call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// `PING`, for `/readyz` (on a cluster, every primary must answer).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
