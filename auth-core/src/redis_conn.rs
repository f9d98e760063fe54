//! The one Redis connection each replica shares, with the time limits and the command
//! counter both servers need.

use std::time::Duration;

use prometheus::IntCounter;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
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

/// A cheap-to-clone handle: the connection is multiplexed, the counter shared.
#[derive(Clone)]
pub struct Redis {
    conn: Conn,
    commands: IntCounter,
}

impl Redis {
    /// Connects once (failing fast with a clear error if Redis is not there at start-up);
    /// afterwards the connection reconnects by itself when Redis comes back.
    /// Every message names the URL with its password hidden (`RedisUrl`'s `Display`).
    pub async fn connect(target: &RedisTarget, commands: IntCounter) -> anyhow::Result<Self> {
        let conn = match target {
            RedisTarget::Single(url) => Conn::Single(Self::single(url).await?),
            RedisTarget::Cluster(nodes) => Conn::Cluster(Self::cluster(target, nodes).await?),
        };
        Ok(Self { conn, commands })
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

    async fn cluster(
        target: &RedisTarget,
        nodes: &[RedisUrl],
    ) -> anyhow::Result<ClusterConnection> {
        let mut infos = Vec::with_capacity(nodes.len());
        for n in nodes {
            infos.push(n.expose().into_connection_info().map_err(|_| {
                anyhow::anyhow!("REDIS_CLUSTER_NODES: `{n}` is not a valid Redis address")
            })?);
        }
        // Within CALL_TIMEOUT a command may be retried on the new primary after a
        // failover (a MOVED answer, or a connection that broke): few retries, short waits.
        let client = ClusterClientBuilder::new(infos)
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(200)
            .build()
            .map_err(|e| anyhow::anyhow!("REDIS_CLUSTER_NODES: {e}"))?;
        tokio::time::timeout(Duration::from_secs(5), client.get_async_connection())
            .await
            .map_err(|_| {
                anyhow::anyhow!("the Redis Cluster at {target} did not answer within 5 s")
            })?
            .map_err(|e| anyhow::anyhow!("cannot connect to the Redis Cluster at {target}: {e}"))
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        self.commands.inc();
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Timeout),
        }
    }

    /// Runs a pipeline in one round trip; each command in it counts.
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisError> {
        self.commands.inc_by(pipe.len() as u64);
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, pipe.query_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Timeout),
        }
    }

    /// Runs a Lua script (EVALSHA, falling back to EVAL once): counted as one command.
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        self.commands.inc();
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Timeout),
        }
    }

    /// `PING`, for `/readyz` (on a cluster, every primary must answer).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
