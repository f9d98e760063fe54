//! What a Redis Cluster failover loses. Redis replicates asynchronously: a write the primary
//! acknowledged may not have reached its replica when the primary dies, and the replica that
//! takes over never had it. Counted here, not assumed: some logins are refreshed (a write of
//! their session or refresh-token family) all at once just before the primary is killed, and
//! checked again once the replica has taken over.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use super::probes::{client, log_in, probe_name, sign_up, PROBE_PASSWORD};
use crate::model::{Failover, ServerKind};

/// Logins watched through one failover.
pub const MARKS: usize = 60;

/// One watched login: its user and the credential it holds now.
struct Mark {
    /// The login's keys live on the primary that will be killed.
    on_victim: bool,
    /// A session cookie (`sid=...`) or a refresh token.
    credential: String,
}

pub struct Marks {
    server: ServerKind,
    base: String,
    http: reqwest::Client,
    marks: Vec<Mark>,
    /// When the last refresh before the kill was answered.
    last_write: Option<Instant>,
    written: u32,
}

impl Marks {
    /// Signs `MARKS` users up and logs them in (before the window: password hashing is
    /// slow), noting which of them the primary on `victim_port` holds.
    pub async fn log_in(server: ServerKind, base: &str, victim_port: u16) -> anyhow::Result<Self> {
        let http = client()?;
        let one = |name: String| {
            let http = &http;
            async move {
                sign_up(http, base, &name).await?;
                let r = log_in(http, base, &name, PROBE_PASSWORD, None).await?;
                let credential = credential_of(server, r).await?;
                // Every key of a user shares the user's slot: the record tells where the
                // login lives. On another node the answer is a MOVED error, not `1`.
                let key = auth_core::hash_slot::user_key(&name);
                let on_victim = tokio::task::spawn_blocking(move || {
                    plumbing::redis_cluster::cli(victim_port, &["exists", &key])
                        .is_some_and(|out| out.trim() == "1")
                })
                .await?;
                anyhow::Ok(Mark {
                    on_victim,
                    credential,
                })
            }
        };
        // All at once: the servers queue the password hashing on their cores.
        let marks = join_all((0..MARKS).map(|_| one(probe_name())))
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            server,
            base: base.to_owned(),
            http,
            marks,
            last_write: None,
            written: 0,
        })
    }

    /// Refreshes every login at once (each a write to the store); keeps the credentials
    /// handed out. Call just before the kill.
    pub async fn write(&mut self) {
        let answers = join_all(
            self.marks
                .iter()
                .map(|m| refresh(&self.http, &self.base, self.server, &m.credential)),
        )
        .await;
        self.last_write = Some(Instant::now());
        let mut written = 0;
        let mut kept = Vec::new();
        for (mark, answer) in self.marks.drain(..).zip(answers) {
            // A refresh that failed wrote nothing: it is not watched.
            if let Ok(credential) = answer {
                written += 1;
                kept.push(Mark { credential, ..mark });
            }
        }
        self.marks = kept;
        self.written = written;
    }

    /// Milliseconds since the writes were answered (the kill follows at once).
    pub fn since_write_ms(&self) -> u64 {
        self.last_write
            .map_or(0, |t| t.elapsed().as_millis() as u64)
    }

    /// After the failover: every credential written is used once more. Refused (401) is
    /// lost; a store still settling after the takeover (503, no answer) is asked again until
    /// `SETTLE` has passed, then counted as unanswered.
    pub async fn check(&self, last_write_before_kill_ms: u64) -> Failover {
        let answers = join_all(
            self.marks
                .iter()
                .map(|m| settled(&self.http, &self.base, self.server, &m.credential)),
        )
        .await;
        let count = |want: Kept| answers.iter().filter(|a| **a == want).count() as u32;
        Failover {
            written: self.written,
            on_killed_primary: self.marks.iter().filter(|m| m.on_victim).count() as u32,
            lost: count(Kept::Refused),
            unanswered: count(Kept::Unanswered),
            last_write_before_kill_ms,
        }
    }
}

/// How long a watched login may keep getting "unavailable" after the takeover.
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Yes,
    Refused,
    Unanswered,
}

async fn settled(http: &reqwest::Client, base: &str, server: ServerKind, credential: &str) -> Kept {
    let until = Instant::now() + SETTLE;
    loop {
        match still_works(http, base, server, credential).await {
            Some(200) => return Kept::Yes,
            Some(401) => return Kept::Refused,
            _ if Instant::now() >= until => return Kept::Unanswered,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn credential_of(server: ServerKind, r: reqwest::Response) -> anyhow::Result<String> {
    if server == ServerKind::Session {
        return r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the session login set no cookie"));
    }
    let body: Value = r.json().await?;
    body["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the token login handed out no refresh token"))
}

/// `POST /auth/refresh` with the credential; the new credential, or an error.
async fn refresh(
    http: &reqwest::Client,
    base: &str,
    server: ServerKind,
    credential: &str,
) -> anyhow::Result<String> {
    let req = if server == ServerKind::Session {
        http.post(format!("{base}/auth/refresh"))
            .header("Cookie", credential)
    } else {
        token_refresh(http, base, credential)
    };
    let r = req.send().await?;
    anyhow::ensure!(r.status() == 200, "refresh answered {}", r.status());
    credential_of(server, r).await
}

/// Whether the store still knows the login, as the status of one request (`None`: no
/// answer): a session is read (`/api/me`); a refresh token is refreshed, which only the
/// family's current token can do.
async fn still_works(
    http: &reqwest::Client,
    base: &str,
    server: ServerKind,
    credential: &str,
) -> Option<u16> {
    let req = if server == ServerKind::Session {
        http.get(format!("{base}/api/me"))
            .header("Cookie", credential)
    } else {
        token_refresh(http, base, credential)
    };
    req.send().await.ok().map(|r| r.status().as_u16())
}

/// The token model's refresh: the refresh token in the body (API.md, `POST /auth/refresh`).
fn token_refresh(
    http: &reqwest::Client,
    base: &str,
    refresh_token: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/auth/refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
}
