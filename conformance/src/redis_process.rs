//! A private `redis-server` per test on a free loopback port, stopped by PID on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use plumbing::{wait_until, Check, Signal};

pub struct RedisProcess {
    child: Mutex<Option<Child>>,
    port: u16,
    dir: PathBuf,
}

impl RedisProcess {
    /// Starts one, and waits until it answers `PING`.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("svt-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let me = Self {
            child: Mutex::new(None),
            port: plumbing::free_port().expect("the OS hands out a free loopback port"),
            dir,
        };
        me.launch().await;
        me
    }

    async fn launch(&self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
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
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `redis-server` ({e}). The tests need a real Redis: install it \
                     (Debian/Ubuntu: `apt-get install -y redis-server`) or put it on PATH."
                )
            });
        *self.child.lock().unwrap() = Some(child);
        wait_until(
            "redis-server answers PING",
            Duration::from_secs(10),
            Duration::from_millis(20),
            || async {
                if self.ping().await {
                    Check::Done(())
                } else {
                    Check::Waiting("no PONG".into())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
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

    /// A connection for the test's own look-ups.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("test redis answers")
    }

    /// Stops Redis after saving its data, and waits until the process is gone.
    pub async fn stop(&self) {
        let mut conn = self.conn().await;
        // The server closes the connection instead of answering.
        let _ = redis::cmd("SHUTDOWN")
            .arg("SAVE")
            .query_async::<()>(&mut conn)
            .await;
        let child = self.child.lock().unwrap().take();
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

    /// Starts it again on the same port, with the data it saved.
    pub async fn restart(&self) {
        assert!(self.pid().is_none(), "restart() after stop()");
        self.launch().await;
    }

    /// SIGSTOP / SIGCONT: Redis accepts connections but never answers, the nastier outage.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.pid().expect("redis is running");
        let sig = if frozen { Signal::Stop } else { Signal::Cont };
        plumbing::signal(pid, sig).unwrap_or_else(|e| panic!("{sig:?} to redis-server: {e}"));
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // A frozen Redis would not die of SIGKILL until thawed on some kernels.
            let _ = plumbing::signal(child.id(), Signal::Cont);
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
