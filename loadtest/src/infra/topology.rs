//! The processes a measurement runs against: one Redis (or a Redis Cluster), N replicas of a
//! server, and nginx in front of them. Every process is started here and stopped here, by
//! PID.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plumbing::{free_port, wait_until, wait_until_blocking, Check, Signal};

use super::cpu_budget::CpuBudget;
use crate::model::ServerKind;

/// A program this tool needs, found on PATH or in the sbin directories Debian uses.
pub fn find_tool(name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!("`{name}` was not found. Install it (Debian/Ubuntu: `apt-get install -y {package}`) and run again.")
}

/// A child process stopped on drop: SIGTERM, then SIGKILL after 5 s.
/// `LOGIN_MAX_FAILURES` and `SIGNUP_MAX` for the replicas a load test starts (see its use).
pub const LOADTEST_LOGIN_LIMIT: &str = "1000000";

pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Self {
            name: name.into(),
            child,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        // A frozen process (the Redis-outage experiment) cannot act on SIGTERM until thawed.
        let _ = plumbing::signal(self.pid(), Signal::Cont);
        let _ = plumbing::signal(self.pid(), Signal::Term);
        let name = self.name.clone();
        let gone = wait_until_blocking(
            &name,
            Duration::from_secs(5),
            Duration::from_millis(20),
            || match self.exited() {
                Some(_) => Check::Done(()),
                None => Check::Waiting("still running after SIGTERM".into()),
            },
        );
        if gone.is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `url` until it answers 200, the process dies, or `limit` passes.
async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    proc_: &mut Proc,
    limit: Duration,
) -> anyhow::Result<()> {
    let name = proc_.name.clone();
    let ready = wait_until(&name, limit, Duration::from_millis(50), || {
        let exited = proc_.exited();
        async move {
            if let Some(status) = exited {
                return Check::Failed(format!("exited ({status}) before it was ready"));
            }
            match http.get(url).send().await {
                Ok(r) if r.status() == 200 => Check::Done(()),
                Ok(r) => Check::Waiting(format!("{url} answered {}", r.status())),
                Err(e) => Check::Waiting(format!("{url}: {e}")),
            }
        }
    })
    .await;
    ready.map_err(|e| anyhow::anyhow!("{e}\n{}", proc_.log_tail()))
}

pub struct Redis {
    pub proc_: Proc,
    pub url: String,
}

impl Redis {
    pub async fn start(work: &Path) -> anyhow::Result<Self> {
        let bin = find_tool("redis-server", "redis-server")?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(work);
        let mut proc_ = Proc::spawn("redis-server", cmd, work.join("redis.log"))?;
        let url = format!("redis://127.0.0.1:{port}");
        let answered = wait_until(
            "redis-server answers INFO",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                let exited = proc_.exited();
                let url = &url;
                async move {
                    if let Some(status) = exited {
                        return Check::Failed(format!("exited ({status})"));
                    }
                    match super::redis_info::query(url, "server").await {
                        Ok(_) => Check::Done(()),
                        Err(e) => Check::Waiting(e.to_string()),
                    }
                }
            },
        )
        .await;
        answered.map_err(|e| anyhow::anyhow!("{e}\n{}", proc_.log_tail()))?;
        Ok(Self { proc_, url })
    }
}

/// One node of a Redis Cluster, and what it was when the cluster was made.
pub struct ClusterNode {
    pub proc_: Proc,
    pub port: u16,
    /// The primary this node replicates, by port; `None` for a primary.
    pub replica_of: Option<u16>,
}

impl ClusterNode {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A Redis Cluster of real `redis-server` processes on loopback, made as an operator makes
/// one (`redis-cli --cluster create`, see `plumbing::redis_cluster`).
pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
}

impl RedisCluster {
    /// `primaries` primaries, each with `replicas_each` replicas; returns once every node
    /// says the cluster is ok.
    pub async fn start(
        work: &Path,
        primaries: usize,
        replicas_each: usize,
    ) -> anyhow::Result<Self> {
        use plumbing::redis_cluster;
        let bin = find_tool("redis-server", "redis-server")?;
        find_tool("redis-cli", "redis-tools")?;
        // Each cluster its own folders: a port can come back in a later cluster, and a node
        // that finds an old nodes.conf rejoins the old cluster.
        static CLUSTERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut started = Vec::new();
        for _ in 0..primaries * (1 + replicas_each) {
            let port = redis_cluster::free_node_port()?;
            let dir = work.join(format!("cluster{n}-{port}"));
            std::fs::create_dir_all(&dir)?;
            let mut cmd = Command::new(&bin);
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .args(redis_cluster::node_args())
                .arg("--dir")
                .arg(&dir);
            let proc_ = Proc::spawn(
                &format!("redis-server:{port}"),
                cmd,
                work.join(format!("redis-cluster{n}-{port}.log")),
            )?;
            started.push((proc_, port));
        }
        let ports: Vec<u16> = started.iter().map(|(_, p)| *p).collect();
        // Every node must be listening before they are joined.
        for (proc_, port) in &mut started {
            let url = format!("redis://127.0.0.1:{port}");
            let answered = wait_until(
                "a cluster node answers INFO",
                Duration::from_secs(10),
                Duration::from_millis(50),
                || {
                    let exited = proc_.exited();
                    let url = &url;
                    async move {
                        if let Some(status) = exited {
                            return Check::Failed(format!("exited ({status})"));
                        }
                        match super::redis_info::query(url, "server").await {
                            Ok(_) => Check::Done(()),
                            Err(e) => Check::Waiting(e.to_string()),
                        }
                    }
                },
            )
            .await;
            answered.map_err(|e| anyhow::anyhow!("{e}\n{}", proc_.log_tail()))?;
        }
        let join = ports.clone();
        tokio::task::spawn_blocking(move || redis_cluster::create(&join, replicas_each)).await??;
        let nodes = started
            .into_iter()
            .map(|(proc_, port)| {
                // `ROLE` of a replica: `slave`, then its primary's host and port.
                let role = redis_cluster::cli(port, &["role"]).unwrap_or_default();
                let mut lines = role.lines();
                let replica_of = match lines.next() {
                    Some("slave") => lines.nth(1).and_then(|p| p.trim().parse().ok()),
                    _ => None,
                };
                ClusterNode {
                    proc_,
                    port,
                    replica_of,
                }
            })
            .collect();
        Ok(Self { nodes })
    }

    pub fn primaries(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.replica_of.is_none())
    }

    /// `REDIS_CLUSTER_NODES` for the replicas: every node.
    pub fn nodes_env(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The replica of the primary on `port`, by port.
    pub fn replica_of(&self, port: u16) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| n.replica_of == Some(port))
            .map(|n| n.port)
    }
}

/// Where the replicas find their store: the variable and its value.
#[derive(Debug, Clone)]
pub enum StoreAddr {
    /// `REDIS_URL`.
    Url(String),
    /// `REDIS_CLUSTER_NODES`.
    ClusterNodes(String),
}

/// What the replicas of one group share.
pub struct GroupSpec<'a> {
    pub kind: ServerKind,
    pub replicas: u32,
    pub bin_dir: &'a Path,
    pub store: StoreAddr,
    pub session_key: &'a str,
    pub jwt_secret: &'a str,
    pub lb_workers: u32,
    pub workers_per_replica: u32,
    /// Extra environment for every replica (e.g. SESSION_STORE=memory).
    pub extra_env: Vec<(String, String)>,
    /// How nginx spreads requests over the replicas.
    pub balance: Balance,
}

pub struct Replica {
    pub proc_: Proc,
    pub port: u16,
}

pub struct Group {
    pub replicas: Vec<Replica>,
    pub nginx: Proc,
    pub lb_port: u16,
}

impl Group {
    pub async fn start(
        spec: &GroupSpec<'_>,
        budget: &mut CpuBudget,
        work: &Path,
    ) -> anyhow::Result<Self> {
        let bin = spec.bin_dir.join(spec.kind.binary());
        anyhow::ensure!(
            bin.is_file(),
            "{} not found; build it with `cargo build --release -p {}` or pass --bin-dir",
            bin.display(),
            spec.kind.binary()
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        static GROUPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let group = GROUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut replicas = Vec::new();
        for i in 0..spec.replicas as usize {
            let port = free_port()?;
            let mut cmd = Command::new(&bin);
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
                .env(
                    match &spec.store {
                        StoreAddr::Url(_) => "REDIS_URL",
                        StoreAddr::ClusterNodes(_) => "REDIS_CLUSTER_NODES",
                    },
                    match &spec.store {
                        StoreAddr::Url(u) | StoreAddr::ClusterNodes(u) => u,
                    },
                )
                .env("WORKERS", spec.workers_per_replica.to_string())
                .env("COOKIE_SECURE", "false")
                .env("SESSION_KEY", spec.session_key)
                .env("JWT_SECRET", spec.jwt_secret)
                // Every simulated user logs in from 127.0.0.1, hundreds at once: the
                // servers' failed-login throttling (which counts attempts before checking
                // them) would turn the benchmark's own logins into 429s.
                .env("LOGIN_MAX_FAILURES", LOADTEST_LOGIN_LIMIT)
                // Likewise the signup throttling: every simulated user signs up from there.
                .env("SIGNUP_MAX", LOADTEST_LOGIN_LIMIT)
                // `LOADTEST_REPLICA_LOG` (a RUST_LOG filter) to see more of the replicas when
                // looking into a problem; their logs are in the run's logs/ folder.
                .env(
                    "RUST_LOG",
                    std::env::var("LOADTEST_REPLICA_LOG").unwrap_or_else(|_| "warn".into()),
                );
            for (k, v) in &spec.extra_env {
                cmd.env(k, v);
            }
            let name = format!("{}-{}", spec.kind.binary(), i + 1);
            // One log per group and replica: a later group must not overwrite an earlier one's.
            let log = work.join(format!("{name}-group{group}.log"));
            let mut proc_ = Proc::spawn(&name, cmd, log)?;
            budget
                .assign(i, proc_.pid())
                .map_err(|e| anyhow::anyhow!("CPU budget for {name}: {e}"))?;
            wait_ready(
                &http,
                &format!("http://127.0.0.1:{port}/readyz"),
                &mut proc_,
                Duration::from_secs(30),
            )
            .await?;
            replicas.push(Replica { proc_, port });
        }
        let lb_port = free_port()?;
        let conf = nginx_conf(work, lb_port, &replicas, spec.lb_workers, spec.balance);
        // Written whole and renamed into place: groups start at once (the probes), and an
        // nginx that read a file another group had just truncated proxied with nginx's
        // defaults (HTTP/1.0, so a bodyless POST had no length: the replica answered 400).
        let tmp = work.join(format!("proxy.conf.{lb_port}.tmp"));
        std::fs::write(&tmp, PROXY_CONF)?;
        std::fs::rename(&tmp, work.join("proxy.conf"))?;
        // One file per balancer: groups started at once (the probes) must not share one.
        let conf_path = work.join(format!("nginx-{}-{lb_port}.conf", spec.kind.name()));
        std::fs::write(&conf_path, conf)?;
        let nginx_bin = find_tool("nginx", "nginx")?;
        let mut cmd = Command::new(nginx_bin);
        cmd.arg("-p")
            .arg(work)
            .arg("-e")
            .arg(work.join("nginx-error.log"))
            .arg("-c")
            .arg(&conf_path);
        let mut nginx = Proc::spawn("nginx", cmd, work.join("nginx.log"))?;
        wait_ready(
            &http,
            &format!("http://127.0.0.1:{lb_port}/healthz"),
            &mut nginx,
            Duration::from_secs(10),
        )
        .await?;
        Ok(Self {
            replicas,
            nginx,
            lb_port,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb_port)
    }

    /// nginx's master and workers.
    pub fn lb_pids(&self) -> Vec<u32> {
        let mut pids = vec![self.nginx.pid()];
        pids.extend(super::procfs::children(self.nginx.pid()));
        pids
    }

    pub fn stop(&mut self) {
        self.nginx.stop();
        for r in &mut self.replicas {
            r.proc_.stop();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The proxying every balancer of this project shares (docker compose's nginx includes the
/// same file), written next to the local nginx's configuration.
pub const PROXY_CONF: &str = include_str!("../../../deploy/nginx/proxy.conf");

/// What every upstream `server` line carries, here and in deploy/nginx/nginx.conf: nginx
/// never takes a replica out of rotation. With `max_fails=1 fail_timeout=5s` one slow
/// connect to a busy replica (a full accept queue: the SYN is retried after 1 s, past
/// `proxy_connect_timeout`) left that replica idle for 5 s, longer than a window: on 16
/// cores one of 4 replicas served 0 requests in a run no rule flagged. A replica that is
/// down still costs nothing: its refused connect sends the request on to the next one
/// (`proxy_next_upstream error timeout` in proxy.conf).
pub const UPSTREAM_SERVER_PARAMS: &str = "max_fails=0";

/// How nginx picks a replica for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    /// Each client always reaches the same replica. The load test's users send a stable
    /// `X-Client-Id`; hashing the session cookie instead would send the login (which has
    /// no cookie yet) and the reads after it to different replicas.
    Sticky,
}

impl Balance {
    /// The upstream directive, if any (round robin is nginx's default).
    pub fn directive(self) -> Option<&'static str> {
        match self {
            Balance::RoundRobin => None,
            Balance::Sticky => Some("hash $http_x_client_id consistent"),
        }
    }
}

/// Round robin (or `balance`) over the replicas, with keep-alive to them, no access log;
/// the proxying itself is `PROXY_CONF`, expected in `work/proxy.conf`.
pub fn nginx_conf(
    work: &Path,
    lb_port: u16,
    replicas: &[Replica],
    workers: u32,
    balance: Balance,
) -> String {
    let w = work.display();
    let servers: String = replicas
        .iter()
        .map(|r| {
            format!(
                "        server 127.0.0.1:{} {UPSTREAM_SERVER_PARAMS};\n",
                r.port
            )
        })
        .collect();
    let balance = balance
        .directive()
        .map(|b| format!("        {b};\n"))
        .unwrap_or_default();
    // As root, nginx would switch its workers to `nobody`, who cannot write the temp dirs.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        r#"{user}daemon off;
worker_processes {workers};
pid {w}/nginx-{lb_port}.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {w}/nginx-body;
    proxy_temp_path {w}/nginx-proxy;
    fastcgi_temp_path {w}/nginx-fastcgi;
    uwsgi_temp_path {w}/nginx-uwsgi;
    scgi_temp_path {w}/nginx-scgi;
    upstream replicas {{
{balance}{servers}        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{lb_port} reuseport backlog=4096;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://replicas;
            include {w}/proxy.conf;
        }}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    const COMPOSE_CONF: &str = include_str!("../../../deploy/nginx/nginx.conf");

    /// The two balancers cannot drift: both include the one proxy block, and their upstream
    /// servers carry the same parameters.
    #[test]
    fn the_compose_and_local_balancers_share_their_proxying() {
        // Session, token, and the sticky session port.
        let locations = COMPOSE_CONF.matches("location / {").count();
        assert_eq!(locations, 3);
        assert_eq!(
            COMPOSE_CONF.matches("include proxy.conf;").count(),
            locations
        );
        let upstream_servers = COMPOSE_CONF
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("server ") && l.ends_with(';'));
        for line in upstream_servers {
            assert!(line.contains(UPSTREAM_SERVER_PARAMS), "{line}");
        }
        for directive in ["proxy_pass", "proxy_set_header", "proxy_next_upstream"] {
            let outside = COMPOSE_CONF
                .lines()
                .filter(|l| l.contains(directive) && !l.contains("proxy_pass http://"))
                .count();
            assert_eq!(outside, 0, "{directive} belongs in proxy.conf");
        }
        assert!(PROXY_CONF.contains("proxy_next_upstream error timeout;"));
        let work = std::env::temp_dir();
        let replicas: Vec<Replica> = Vec::new();
        let local = nginx_conf(&work, 8080, &replicas, 1, Balance::Sticky);
        assert!(local.contains(&format!("include {}/proxy.conf;", work.display())));
        assert!(local.contains("hash $http_x_client_id consistent;"));
    }

    /// The local configuration is one real nginx accepts.
    #[test]
    fn nginx_accepts_the_local_configuration() {
        let nginx = find_tool("nginx", "nginx").expect("nginx is installed (.ci/run does it)");
        let work = std::env::temp_dir().join(format!("lt-nginx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("proxy.conf"), PROXY_CONF).unwrap();
        let spawn = |port| {
            Proc::spawn(
                "sleep",
                Command::new("true"),
                work.join(format!("{port}.log")),
            )
        };
        let replicas: Vec<Replica> = [9001u16, 9002]
            .into_iter()
            .map(|port| Replica {
                proc_: spawn(port).unwrap(),
                port,
            })
            .collect();
        for balance in [Balance::RoundRobin, Balance::Sticky] {
            let conf = work.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(&work, 8080, &replicas, 1, balance)).unwrap();
            let out = Command::new(&nginx)
                .arg("-t")
                .arg("-p")
                .arg(&work)
                .arg("-e")
                .arg(work.join("error.log"))
                .arg("-c")
                .arg(&conf)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{balance:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        drop(replicas);
        std::fs::remove_dir_all(work).ok();
    }
    /// A tiny HTTP/1.1 back end that answers every request `200 ok` and counts them.
    fn counting_backend(listener: std::net::TcpListener) -> std::sync::Arc<AtomicU64> {
        use std::io::{BufRead, BufReader, Write};
        let served = std::sync::Arc::new(AtomicU64::new(0));
        let count = std::sync::Arc::clone(&served);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let count = std::sync::Arc::clone(&count);
                std::thread::spawn(move || {
                    let mut out = conn.try_clone().expect("a socket clones");
                    let mut reader = BufReader::new(conn);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => {
                                count.fetch_add(1, Ordering::SeqCst);
                                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                                if out.write_all(reply.as_bytes()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        served
    }

    fn get(port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let request = "GET /api/public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut reply = String::new();
        s.write_all(request.as_bytes()).is_ok()
            && s.read_to_string(&mut reply).is_ok()
            && reply.starts_with("HTTP/1.1 200")
    }

    /// A replica that failed a connect once (it was not listening yet; a busy one times out
    /// the same way) is back in rotation at once: under load, both replicas serve. With the
    /// parameters before (`max_fails=1 fail_timeout=5s`) the second served nothing here.
    #[test]
    fn the_balancer_never_takes_a_replica_out_of_rotation() {
        let nginx = find_tool("nginx", "nginx").expect("nginx is installed (.ci/run does it)");
        let work = std::env::temp_dir().join(format!("lt-nginx-rr-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("proxy.conf"), PROXY_CONF).unwrap();
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let first_served = counting_backend(first.try_clone().unwrap());
        // The second replica's port, free for now: connects to it are refused.
        let second_port = free_port().unwrap();
        let ports = [first.local_addr().unwrap().port(), second_port];
        let replicas: Vec<Replica> = ports
            .into_iter()
            .map(|port| Replica {
                proc_: Proc::spawn(
                    "true",
                    Command::new("true"),
                    work.join(format!("{port}.log")),
                )
                .unwrap(),
                port,
            })
            .collect();
        let lb_port = free_port().unwrap();
        let conf = work.join("nginx.conf");
        std::fs::write(
            &conf,
            nginx_conf(&work, lb_port, &replicas, 1, Balance::RoundRobin),
        )
        .unwrap();
        let mut cmd = Command::new(&nginx);
        cmd.arg("-p")
            .arg(&work)
            .arg("-e")
            .arg(work.join("error.log"))
            .arg("-c")
            .arg(&conf);
        let lb = Proc::spawn("nginx", cmd, work.join("nginx.log")).unwrap();
        wait_until_blocking(
            "nginx listening",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || match std::net::TcpStream::connect(("127.0.0.1", lb_port)) {
                Ok(_) => Check::Done(()),
                Err(e) => Check::Waiting(e.to_string()),
            },
        )
        .expect("nginx listens");
        // Round robin sends one of these two to the second replica, whose connect fails;
        // nginx resends it to the first.
        assert!(get(lb_port) && get(lb_port), "served by the first replica");
        assert!(first_served.load(Ordering::SeqCst) >= 2);
        let second = std::net::TcpListener::bind(("127.0.0.1", second_port)).unwrap();
        let second_served = counting_backend(second);
        let began = std::time::Instant::now();
        let mut ok = 0;
        while began.elapsed() < Duration::from_secs(2) {
            ok += u32::from(get(lb_port));
        }
        let (a, b) = (
            first_served.load(Ordering::SeqCst),
            second_served.load(Ordering::SeqCst),
        );
        drop(lb);
        drop(replicas);
        std::fs::remove_dir_all(work).ok();
        assert!(ok > 20, "{ok} requests answered");
        assert!(
            b as f64 >= 0.3 * (a + b) as f64,
            "the second replica served {b} of {} requests",
            a + b
        );
    }
}
