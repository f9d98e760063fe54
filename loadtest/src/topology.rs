//! The processes a measurement runs against: one Redis, N replicas of a server, and nginx
//! in front of them. Every process is started here and stopped here, by PID.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::ServerKind;
use crate::cpu_budget::CpuBudget;

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

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process stopped on drop: SIGTERM, then SIGKILL after 5 s.
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
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status() == 200 {
                return Ok(());
            }
        }
        if let Some(status) = proc_.exited() {
            anyhow::bail!(
                "{} exited ({status}) before it was ready:\n{}",
                proc_.name,
                proc_.log_tail()
            );
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{} was not ready at {url} within {limit:?}:\n{}",
                proc_.name,
                proc_.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if crate::probe::redis_info(&url, "server").await.is_ok() {
                return Ok(Self { proc_, url });
            }
            if let Some(status) = proc_.exited() {
                anyhow::bail!("redis-server exited ({status}):\n{}", proc_.log_tail());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the replicas of one group share.
pub struct GroupSpec<'a> {
    pub kind: ServerKind,
    pub replicas: u32,
    pub bin_dir: &'a Path,
    pub redis_url: &'a str,
    pub session_key: &'a str,
    pub jwt_secret: &'a str,
    pub lb_workers: u32,
    pub workers_per_replica: u32,
    /// Extra environment for every replica (e.g. SESSION_STORE=memory).
    pub extra_env: Vec<(String, String)>,
    /// nginx upstream balancing: `None` for round robin, or a directive such as
    /// `hash $cookie_sid consistent`.
    pub balance: Option<String>,
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
        let mut replicas = Vec::new();
        for i in 0..spec.replicas as usize {
            let port = free_port()?;
            let mut cmd = Command::new(&bin);
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
                .env("REDIS_URL", spec.redis_url)
                .env("WORKERS", spec.workers_per_replica.to_string())
                .env("COOKIE_SECURE", "false")
                .env("SESSION_KEY", spec.session_key)
                .env("JWT_SECRET", spec.jwt_secret)
                .env("RUST_LOG", "warn");
            for (k, v) in &spec.extra_env {
                cmd.env(k, v);
            }
            let name = format!("{}-{}", spec.kind.binary(), i + 1);
            let mut proc_ = Proc::spawn(&name, cmd, work.join(format!("{name}.log")))?;
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
        let conf = nginx_conf(
            work,
            lb_port,
            &replicas,
            spec.lb_workers,
            spec.balance.as_deref(),
        );
        let conf_path = work.join(format!("nginx-{}.conf", spec.kind.name()));
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
        pids.extend(crate::procfs::children(self.nginx.pid()));
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

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Round robin (or `balance`) over the replicas, with keep-alive to them, no access log.
pub fn nginx_conf(
    work: &Path,
    lb_port: u16,
    replicas: &[Replica],
    workers: u32,
    balance: Option<&str>,
) -> String {
    let w = work.display();
    let servers: String = replicas
        .iter()
        .map(|r| format!("        server 127.0.0.1:{};\n", r.port))
        .collect();
    let balance = balance
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
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"#
    )
}
