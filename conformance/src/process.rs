//! A server binary as a real process (for what only the real binary shows: start-up
//! errors, signals), stopped by PID on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plumbing::{wait_until, Check, Signal};

use crate::app::{client, Reply, TestApp};

pub struct ServerProcess {
    child: Child,
    pub address: String,
}

impl ServerProcess {
    /// Starts `bin` on a free loopback port with `vars`, and waits for `/healthz`.
    pub async fn start(bin: &str, vars: &[(&str, &str)]) -> Self {
        let port = plumbing::free_port().expect("the OS hands out a free loopback port");
        let child = Command::new(bin)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKERS", "2")
            .env("RUST_LOG", "warn")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let me = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        let http = client();
        let health = format!("{}/healthz", me.address);
        wait_until(
            &format!("{bin} healthy"),
            Duration::from_secs(20),
            Duration::from_millis(25),
            || async {
                match http.get(&health).send().await {
                    Ok(r) if r.status() == 200 => Check::Done(()),
                    Ok(r) => Check::Waiting(format!("/healthz answered {}", r.status())),
                    Err(e) => Check::Waiting(e.to_string()),
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        me
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: Signal) {
        plumbing::signal(self.pid(), sig)
            .unwrap_or_else(|e| panic!("{sig:?} to {}: {e}", self.pid()));
    }

    /// Waits for the process to exit on its own; `None` if it is still running after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = &mut self.child;
        wait_until("exit", limit, Duration::from_millis(20), || {
            let status = child.try_wait();
            async move {
                match status {
                    Ok(Some(status)) => Check::Done(status),
                    _ => Check::Waiting("running".into()),
                }
            }
        })
        .await
        .ok()
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Reply {
        TestApp::read(client().post(format!("{}{path}", self.address)).json(&body)).await
    }

    /// Signs a new user up and logs them in; the login's reply.
    pub async fn new_login(&self) -> Reply {
        let creds =
            serde_json::json!({"username": crate::random_username(), "password": crate::PASSWORD});
        let signup = self.post_json("/auth/signup", creds.clone()).await;
        assert_eq!(signup.status, 201, "{}", signup.text);
        let login = self.post_json("/auth/login", creds).await;
        assert_eq!(login.status, 200, "{}", login.text);
        login
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM while logins are in flight: they all finish, then the process exits 0.
pub async fn sigterm_lets_in_flight_requests_finish(bin: &str, extra: &[(&str, &str)]) {
    let redis = crate::RedisProcess::start().await;
    let url = redis.url();
    let mut vars = vec![("REDIS_URL", url.as_str())];
    vars.extend_from_slice(extra);
    let mut server = ServerProcess::start(bin, &vars).await;
    let name = crate::random_username();
    let creds = serde_json::json!({"username": name, "password": crate::PASSWORD});
    assert_eq!(
        server.post_json("/auth/signup", creds.clone()).await.status,
        201
    );
    // Each login hashes a password (tens of milliseconds): several are in flight at once.
    // SIGTERM goes once every one of them is being handled: each looks its user up (one
    // GET) before the hash. A fixed delay instead let a busy machine signal before a request
    // was read, and a connection with no request read yet is rightly closed.
    let gets_before = get_calls(&url).await;
    let logins = futures_util::future::join_all(
        (0..4).map(|_| server.post_json("/auth/login", creds.clone())),
    );
    let term = async {
        wait_until(
            "every login handled",
            Duration::from_secs(10),
            Duration::from_millis(1),
            || {
                let url = url.clone();
                async move {
                    let n = get_calls(&url).await - gets_before;
                    if n >= 4 {
                        Check::Done(())
                    } else {
                        Check::Waiting(format!("{n} of 4 logins looked their user up"))
                    }
                }
            },
        )
        .await
        .expect("the logins reach the server");
        server.signal(Signal::Term);
    };
    let (replies, ()) = tokio::join!(logins, term);
    for r in &replies {
        assert_eq!(
            r.status, 200,
            "an in-flight request was cut off: {}",
            r.text
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("exits after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// GET commands Redis has executed so far (`INFO commandstats`).
async fn get_calls(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the test's Redis answers");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `bin` to its exit with a dead Redis and `vars`, and asserts that it failed with a
/// message containing `expected` and no panic.
pub fn assert_refuses_to_start(bin: &str, vars: &[(&str, &str)], expected: &str) {
    let out = Command::new(bin)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .envs(vars.iter().copied())
        .output()
        .expect("the binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{vars:?}: started anyway");
    assert!(
        text.contains(expected),
        "{vars:?}: expected `{expected}` in:\n{text}"
    );
    assert!(!text.contains("panicked"), "{vars:?}: panicked:\n{text}");
}

/// Start-up checks both binaries share: a missing Redis, malformed common variables.
pub fn assert_common_settings_are_checked(bin: &str) {
    assert_refuses_to_start(bin, &[], "cannot connect to Redis at redis://127.0.0.1:1");
    for (var, value) in [
        ("WORKERS", "0"),
        ("LISTEN_ADDR", "nowhere"),
        ("BOOTSTRAP_ADMIN", "nopassword"),
        ("LOGIN_MAX_FAILURES", "many"),
        ("LOGIN_FAILURE_WINDOW", "0"),
        ("SIGNUP_MAX", "0"),
        ("SIGNUP_MAX", "lots"),
        ("SIGNUP_WINDOW", "0"),
        ("DEVICE_TTL", "0"),
        ("DEVICE_TTL", "30d"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("CORS_ALLOWED_ORIGINS", "https://*.example"),
        ("REFRESH_REUSE_INTERVAL", "-1"),
        ("SHUTDOWN_TIMEOUT", "soon"),
    ] {
        assert_refuses_to_start(bin, &[(var, value)], var);
    }
    assert_refuses_to_start(
        bin,
        &[("REDIS_CLUSTER_NODES", "127.0.0.1:2")],
        "REDIS_URL and REDIS_CLUSTER_NODES are both set",
    );
    // A cluster nobody answers for: a clear message naming it, password hidden.
    let out = Command::new(bin)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "REDIS_CLUSTER_NODES",
            "127.0.0.1:1, redis://:hunter2-secret@127.0.0.1:2",
        )
        .output()
        .expect("the binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("Redis Cluster at cluster [redis://127.0.0.1:1, redis://:***@127.0.0.1:2]"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("panicked"),
        "{text}"
    );
    // No secret reaches a log line: the password in REDIS_URL is shown as ***.
    let out = Command::new(bin)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("REDIS_URL", "redis://app:hunter2-secret@127.0.0.1:1/0")
        .output()
        .expect("the binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("redis://app:***@127.0.0.1:1/0"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked:\n{text}");
}

/// SIGTERM while a client stalls in the middle of a request body: the process does not wait
/// for it longer than `SHUTDOWN_TIMEOUT`, so Docker's 10 s stop grace is never reached.
pub async fn sigterm_does_not_wait_for_a_stalled_body(bin: &str, extra: &[(&str, &str)]) {
    use tokio::io::AsyncWriteExt;
    let redis = crate::RedisProcess::start().await;
    let url = redis.url();
    let mut vars = vec![("REDIS_URL", url.as_str()), ("SHUTDOWN_TIMEOUT", "2")];
    vars.extend_from_slice(extra);
    let mut server = ServerProcess::start(bin, &vars).await;
    let addr = server.address.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    stalled
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .await
        .expect("writes");
    // The handler is now waiting for the rest of the body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = std::time::Instant::now();
    server.signal(Signal::Term);
    let status = server
        .wait_exit(Duration::from_secs(8))
        .await
        .expect("exits within SHUTDOWN_TIMEOUT after SIGTERM, stalled client or not");
    assert!(
        t.elapsed() < Duration::from_millis(4500),
        "took {:?} with SHUTDOWN_TIMEOUT=2 ({status})",
        t.elapsed()
    );
    drop(stalled);
}

/// The real binary with `REDIS_CLUSTER_NODES` naming one node of a 3-primary cluster (the
/// client learns the others): a signup, a login (which writes the user's login keys and the
/// throttling counters, each script within one hash slot) and `/readyz` all succeed.
pub async fn the_binary_runs_on_a_redis_cluster(bin: &str, extra: &[(&str, &str)]) {
    let redis = crate::RedisProcess::start_cluster().await;
    let first = redis.url().trim_start_matches("redis://").to_owned();
    let mut vars = vec![("REDIS_CLUSTER_NODES", first.as_str())];
    vars.extend_from_slice(extra);
    let server = ServerProcess::start(bin, &vars).await;
    for _ in 0..12 {
        server.new_login().await;
    }
    let ready = TestApp::read(client().get(format!("{}/readyz", server.address))).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    // The users landed on more than one primary: the keys really are spread (all twelve
    // on one of three would happen once in 180,000 runs).
    let mut conn = redis.conn().await;
    let keys: Vec<String> = redis::AsyncCommands::keys(&mut conn, "user:*")
        .await
        .expect("KEYS answers");
    assert_eq!(keys.len(), 12, "{keys:?}");
    let holding = redis
        .ports()
        .into_iter()
        .filter(|p| {
            plumbing::redis_cluster::cli(*p, &["dbsize"])
                .is_some_and(|n| n.trim().parse::<u64>().unwrap_or(0) > 0)
        })
        .count();
    assert!(holding >= 2, "only {holding} primary holds keys");
}

/// A primary of a Redis Cluster dies under load (SIGKILL) and its replica takes over: the
/// server serves every user again within seconds, without a restart. The load keeps the
/// connection to the store busy while it recovers: redis-rs's cluster client can stall for
/// good in exactly this case (`auth_core::redis_conn`, `CLUSTER_STALL`). The server is told
/// of every node, as README asks. `extra` must make `GET /api/me` read the store (the
/// token server: its denylist).
pub async fn the_binary_outlives_a_primary_failover(bin: &str, extra: &[(&str, &str)]) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let redis = crate::RedisProcess::start_cluster_with_replicas(1).await;
    let victim = redis.ports()[0];
    // The victim's replica, from its ROLE (`master`, offset, then ip, port, offset each)
    // once the replica has connected to it.
    let successor: u16 = wait_until(
        "the first primary lists its replica",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async move {
            let role = tokio::task::spawn_blocking(move || {
                plumbing::redis_cluster::cli(victim, &["role"])
            })
            .await
            .ok()
            .flatten();
            match role.and_then(|r| r.lines().nth(3).and_then(|p| p.trim().parse().ok())) {
                Some(port) => Check::Done(port),
                None => Check::Waiting("no replica yet".into()),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let named = redis
        .ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut vars = vec![("REDIS_CLUSTER_NODES", named.as_str())];
    vars.extend_from_slice(extra);
    let server = ServerProcess::start(bin, &vars).await;

    // 16 users: about a third of them live on the primary that dies.
    let mut credentials = Vec::new();
    for _ in 0..16 {
        let login = server.new_login().await;
        credentials.push(match login.headers.get("set-cookie") {
            Some(c) => (
                "cookie",
                c.to_str().unwrap().split(';').next().unwrap().to_owned(),
            ),
            None => (
                "authorization",
                format!("Bearer {}", login.json()["access_token"].as_str().unwrap()),
            ),
        });
    }
    let credentials = Arc::new(credentials);
    let me = format!("{}/api/me", server.address);

    // 64 request loops, until told to stop or 40 s have passed.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let loops: Vec<_> = (0..64)
        .map(|i| {
            let (stop, answered, credentials, me, http) = (
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&credentials),
                me.clone(),
                client(),
            );
            tokio::spawn(async move {
                let credential = &credentials[i % credentials.len()];
                while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                    if me_status(&http, &me, credential).await == 200 {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    wait_until(
        "the load is being served",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let n = answered.load(Ordering::Relaxed);
            async move {
                if n >= 500 {
                    Check::Done(())
                } else {
                    Check::Waiting(format!("{n} answered"))
                }
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    redis.kill(victim);
    let took_over = wait_until(
        "the dead primary's replica takes over",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || async move {
            let role =
                tokio::task::spawn_blocking(move || plumbing::redis_cluster::role(successor))
                    .await
                    .ok()
                    .flatten();
            match role.as_deref() {
                Some("master") => Check::Done(()),
                other => Check::Waiting(format!("ROLE says {other:?}")),
            }
        },
    )
    .await;
    // Every user again, while the load goes on: a client that recovered serves them all.
    let recovered = match took_over {
        Ok(()) => {
            wait_until(
                "every user is served again after the failover",
                Duration::from_secs(15),
                Duration::from_millis(100),
                || {
                    let (credentials, me) = (Arc::clone(&credentials), me.clone());
                    async move {
                        let http = client();
                        let mut statuses = Vec::new();
                        for credential in credentials.iter() {
                            statuses.push(me_status(&http, &me, credential).await);
                        }
                        if statuses.iter().all(|s| *s == 200) {
                            Check::Done(())
                        } else {
                            Check::Waiting(format!("answers {statuses:?}"))
                        }
                    }
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let _ = l.await;
    }
    recovered.unwrap_or_else(|e| panic!("{e}"));
}

/// The status of `GET /api/me` with one credential (a header); 0 for no answer.
async fn me_status(http: &reqwest::Client, me: &str, (name, value): &(&str, String)) -> u16 {
    http.get(me)
        .header(*name, value)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}
