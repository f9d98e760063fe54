//! The store under test: a private `redis-server` per test on a free loopback port, or a
//! private 3-primary Redis Cluster of them; stopped by PID on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use auth_core::config::RedisTarget;
use plumbing::{redis_cluster, wait_until, Check, Signal};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How many primaries the contract suite's cluster has (the smallest cluster Redis makes).
pub const CLUSTER_PRIMARIES: usize = 3;

struct Node {
    child: Mutex<Option<Child>>,
    port: u16,
    dir: PathBuf,
}

pub struct RedisProcess {
    nodes: Vec<Node>,
    cluster: bool,
}

/// A connection for the tests' own look-ups: `KEYS` on a cluster asks every primary.
pub enum TestConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for TestConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            TestConn::Single(c) => c.req_packed_command(cmd),
            TestConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            TestConn::Single(c) => c.req_packed_commands(pipe, offset, count),
            TestConn::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            TestConn::Single(c) => c.get_db(),
            TestConn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisProcess {
    /// One Redis, once it answers `PING`.
    pub async fn start() -> Self {
        Self::launch_all(1, false).await
    }

    /// A cluster of `CLUSTER_PRIMARIES` primaries (no replicas), once every node serves.
    pub async fn start_cluster() -> Self {
        Self::start_cluster_with_replicas(0).await
    }

    /// A cluster of `CLUSTER_PRIMARIES` primaries with `replicas` replicas behind each, once
    /// every node serves. The primaries are the first nodes (`ports()` order).
    pub async fn start_cluster_with_replicas(replicas: usize) -> Self {
        let me = Self::launch_all(CLUSTER_PRIMARIES * (1 + replicas), true).await;
        let ports: Vec<u16> = me.nodes.iter().map(|n| n.port).collect();
        tokio::task::spawn_blocking(move || redis_cluster::create(&ports, replicas))
            .await
            .expect("the cluster set-up does not panic")
            .unwrap_or_else(|e| panic!("{e}"));
        me
    }

    async fn launch_all(n: usize, cluster: bool) -> Self {
        let nodes = (0..n)
            .map(|_| {
                let dir = std::env::temp_dir().join(format!("svt-redis-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("temp dir is writable");
                Node {
                    child: Mutex::new(None),
                    port: if cluster {
                        plumbing::redis_cluster::free_node_port()
                    } else {
                        plumbing::free_port()
                    }
                    .expect("the OS hands out a free loopback port"),
                    dir,
                }
            })
            .collect();
        let me = Self { nodes, cluster };
        for node in &me.nodes {
            me.launch(node).await;
        }
        me
    }

    async fn launch(&self, node: &Node) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &node.port.to_string()])
            // No background saves; `stop` saves once so a restart keeps the data.
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
            ])
            .arg("--dir")
            .arg(&node.dir);
        if self.cluster {
            cmd.args(redis_cluster::node_args());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server` ({e}). The tests need a real Redis: install it \
                     (Debian/Ubuntu: `apt-get install -y redis-server`) or put it on PATH."
                )
            });
        *node.child.lock().unwrap() = Some(child);
        wait_until(
            "redis-server answers PING",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async {
                if ping(node.port).await {
                    Check::Done(())
                } else {
                    Check::Waiting("no PONG".into())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// What a server is configured with to reach this store.
    pub fn target(&self) -> RedisTarget {
        if self.cluster {
            RedisTarget::cluster(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        } else {
            RedisTarget::from(self.url())
        }
    }

    /// The URL of the (first) node: the whole store when it is a single Redis.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    /// Every node's port.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// A connection for the test's own look-ups.
    pub async fn conn(&self) -> TestConn {
        if self.cluster {
            let nodes: Vec<String> = self
                .nodes
                .iter()
                .map(|n| format!("redis://127.0.0.1:{}", n.port))
                .collect();
            let conn = redis::cluster::ClusterClient::new(nodes)
                .unwrap()
                .get_async_connection()
                .await
                .expect("the test cluster answers");
            TestConn::Cluster(conn)
        } else {
            TestConn::Single(node_conn(self.nodes[0].port).await)
        }
    }

    /// Stops every node after saving its data, and waits until the processes are gone.
    pub async fn stop(&self) {
        for node in &self.nodes {
            let mut conn = node_conn(node.port).await;
            // The server closes the connection instead of answering.
            let _ = redis::cmd("SHUTDOWN")
                .arg("SAVE")
                .query_async::<()>(&mut conn)
                .await;
            let child = node.child.lock().unwrap().take();
            if let Some(mut child) = child {
                wait_until(
                    "redis-server stops",
                    Duration::from_secs(10),
                    Duration::from_millis(20),
                    || {
                        let exited = child.try_wait().ok().flatten().is_some();
                        async move {
                            if exited {
                                Check::Done(())
                            } else {
                                Check::Waiting("still running".into())
                            }
                        }
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    /// Starts every node again on its port, with the data (and cluster identity) it saved;
    /// a cluster once it serves every slot again.
    pub async fn restart(&self) {
        for node in &self.nodes {
            assert!(
                node.child.lock().unwrap().is_none(),
                "restart() after stop()"
            );
            self.launch(node).await;
        }
        if self.cluster {
            let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
            tokio::task::spawn_blocking(move || {
                redis_cluster::wait_ok(&ports, Duration::from_secs(20))
            })
            .await
            .expect("the wait does not panic")
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// SIGKILL to the node on `port`: a crash, nothing saved. Its replica, if it has one,
    /// takes over once the cluster's node timeout has passed.
    pub fn kill(&self, port: u16) {
        let node = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this store");
        if let Some(mut child) = node.child.lock().unwrap().take() {
            plumbing::signal(child.id(), Signal::Kill)
                .unwrap_or_else(|e| panic!("SIGKILL to redis-server: {e}"));
            let _ = child.wait();
        }
    }

    /// SIGSTOP / SIGCONT to every node: Redis accepts connections but never answers, the
    /// nastier outage.
    pub fn freeze(&self, frozen: bool) {
        let sig = if frozen { Signal::Stop } else { Signal::Cont };
        for node in &self.nodes {
            let pid = node
                .child
                .lock()
                .unwrap()
                .as_ref()
                .map(Child::id)
                .expect("redis is running");
            plumbing::signal(pid, sig).unwrap_or_else(|e| panic!("{sig:?} to redis-server: {e}"));
        }
    }
}

async fn node_conn(port: u16) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("test redis answers")
}

async fn ping(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(Ok(mut conn)) = tokio::time::timeout(
        Duration::from_millis(500),
        client.get_multiplexed_async_connection(),
    )
    .await
    else {
        return false;
    };
    matches!(
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .as_deref(),
        Ok("PONG")
    )
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(mut child) = node.child.lock().unwrap().take() {
                // A frozen Redis would not die of SIGKILL until thawed on some kernels.
                let _ = plumbing::signal(child.id(), Signal::Cont);
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}
