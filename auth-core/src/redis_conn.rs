//! The one Redis connection each replica shares, with the time limits and the command
//! counter both servers need.

use std::time::Duration;

use prometheus::IntCounter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Pipeline};

use crate::config::RedisUrl;

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

/// A cheap-to-clone handle: the connection is multiplexed, the counter shared.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    commands: IntCounter,
}

impl Redis {
    /// Connects once (failing fast with a clear error if Redis is not there at start-up);
    /// afterwards the manager reconnects by itself when Redis comes back.
    /// Every message names the URL with its password hidden (`RedisUrl`'s `Display`).
    pub async fn connect(url: &RedisUrl, commands: IntCounter) -> anyhow::Result<Self> {
        // The parse error is not shown: it could quote the URL, password included.
        let client = redis::Client::open(url.expose())
            .map_err(|_| anyhow::anyhow!("REDIS_URL `{url}` is not a valid Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_secs(1))
            .set_number_of_retries(1)
            .set_max_delay(200);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {url} did not answer within 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {url}: {e}"))?;
        Ok(Self { conn, commands })
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

    /// `PING`, for `/readyz`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
