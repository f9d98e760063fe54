//! Experiments that need no load, only a few careful requests: what is inside a token, how
//! long a credential keeps working after logout, after a demotion and after logout-all, what
//! a read-only credential may do, and how much memory each logged-in user costs.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::model::{
    Authority, MemoryPoint, Revocation, ScopeOutcome, ServerKind, TokenAnatomy, Variant,
};

/// The password of every probe user: the token-anatomy probe checks it appears nowhere in
/// a token.
pub const PROBE_PASSWORD: &str = "probe-password";

pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

pub(crate) fn probe_name() -> String {
    format!("probe{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub(crate) async fn sign_up(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<()> {
    let r = http
        .post(format!("{base}/auth/signup"))
        .json(&json!({"username": name, "password": PROBE_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "signup answered {}", r.status());
    Ok(())
}

/// Logs `name` in (with `scope`, if given); returns the response, which must be a 200.
pub(crate) async fn log_in(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    password: &str,
    scope: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut body = json!({"username": name, "password": password});
    if let Some(s) = scope {
        body["scope"] = json!(s);
    }
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "login answered {}", r.status());
    Ok(r)
}

/// Signs a throwaway user up and logs in; returns the login response.
async fn fresh_login(http: &reqwest::Client, base: &str) -> anyhow::Result<reqwest::Response> {
    let name = probe_name();
    sign_up(http, base, &name).await?;
    log_in(http, base, &name, PROBE_PASSWORD, None).await
}

fn cookie_of(r: &reqwest::Response) -> anyhow::Result<String> {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the session login set no cookie"))
}

async fn status_with(
    http: &reqwest::Client,
    base: &str,
    header: (&str, &str),
) -> anyhow::Result<u16> {
    status_of(http, base, "/api/me", header).await
}

async fn status_of(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    header: (&str, &str),
) -> anyhow::Result<u16> {
    Ok(http
        .get(format!("{base}{path}"))
        .header(header.0, header.1)
        .send()
        .await?
        .status()
        .as_u16())
}

fn decode_part(part: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
}

/// The bytes a request carries to prove identity (`Cookie: sid=...` or
/// `Authorization: Bearer ...`), from one real login.
pub async fn credential_bytes(
    http: &reqwest::Client,
    base: &str,
    server: ServerKind,
) -> anyhow::Result<u64> {
    if server == ServerKind::Public {
        return Ok(0);
    }
    let login = fresh_login(http, base).await?;
    if server == ServerKind::Session {
        return Ok(("Cookie: ".len() + cookie_of(&login)?.len()) as u64);
    }
    let body: Value = login.json().await?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access_token"))?;
    Ok(("Authorization: Bearer ".len() + token.len()) as u64)
}

/// HMAC-SHA256 over `header.payload` with `secret`, base64url: an HS256 signature.
fn hs256(secret: &[u8], signing_input: &str) -> anyhow::Result<String> {
    use hmac::{Mac, SimpleHmac};
    let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(secret)?;
    mac.update(signing_input.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// A real access token taken apart, and what the server says to altered copies.
/// `jwt_secret` is the run's own HS256 key, to recompute the signature.
pub async fn token_anatomy(
    token_base: &str,
    session_base: &str,
    jwt_secret: Option<&str>,
) -> anyhow::Result<TokenAnatomy> {
    let http = client()?;
    let login: Value = fresh_login(&http, token_base).await?.json().await?;
    let token = login["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access_token"))?
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    anyhow::ensure!(parts.len() == 3, "an access token has three parts");
    let header = decode_part(parts[0])?;
    let payload = decode_part(parts[1])?;
    let signature_recomputed = match (jwt_secret, header["alg"].as_str()) {
        (Some(secret), Some("HS256")) => {
            Some(hs256(secret.as_bytes(), &format!("{}.{}", parts[0], parts[1]))? == parts[2])
        }
        _ => None,
    };
    let refresh = login["refresh_token"].as_str().unwrap_or_default();
    let refresh_payload = refresh.split('.').nth(1).map(decode_part).transpose()?;
    let password_in_token = Some([token.as_str(), refresh].iter().any(|t| {
        t.contains(PROBE_PASSWORD)
            || t.split('.').any(|p| {
                URL_SAFE_NO_PAD
                    .decode(p)
                    .is_ok_and(|b| String::from_utf8_lossy(&b).contains(PROBE_PASSWORD))
            })
    }));
    let mut promoted = payload.clone();
    promoted["roles"] = json!(["user", "admin"]);
    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&promoted)?),
        parts[2]
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2])?;
    sig[0] ^= 1;
    let tampered_signature = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    let bearer = |t: &str| format!("Bearer {t}");
    let session_login = fresh_login(&http, session_base).await?;
    let cookie = cookie_of(&session_login)?;
    let set_cookie = session_login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut altered_cookie = cookie.clone();
    let last = altered_cookie.pop().unwrap_or('A');
    altered_cookie.push(if last == 'A' { 'B' } else { 'A' });
    Ok(TokenAnatomy {
        original_status: status_with(&http, token_base, ("Authorization", &bearer(&token))).await?,
        tampered_payload_status: status_with(
            &http,
            token_base,
            ("Authorization", &bearer(&tampered_payload)),
        )
        .await?,
        tampered_signature_status: status_with(
            &http,
            token_base,
            ("Authorization", &bearer(&tampered_signature)),
        )
        .await?,
        signature_bytes: sig.len(),
        access_token: token,
        header,
        payload,
        session_cookie_status: status_with(&http, session_base, ("Cookie", &cookie)).await?,
        altered_cookie_status: status_with(&http, session_base, ("Cookie", &altered_cookie))
            .await?,
        session_cookie: cookie,
        set_cookie,
        refresh_payload,
        signature_recomputed,
        password_in_token,
    })
}

/// Logs in, logs out, then asks `/api/me` with the old credential every 100 ms until it is
/// refused or `limit` passes. Returns milliseconds from the logout's answer to the first
/// refusal, or `None` if it still worked at `limit`.
async fn refused_after(base: &str, session: bool, limit: Duration) -> anyhow::Result<Option<f64>> {
    let http = &client()?;
    let (credential, body) = credential(fresh_login(http, base).await?, session).await?;
    let h = header_name(session);
    let mut logout = http
        .post(format!("{base}/auth/logout"))
        .header(h, &credential);
    if !session {
        logout = logout.json(&json!({"refresh_token": body["refresh_token"]}));
    }
    anyhow::ensure!(
        status_with(http, base, (h, &credential)).await? == 200,
        "the fresh credential works"
    );
    expect(logout.send().await?, 204, "logout", session).await?;
    until_logged_out(http, base, h, &credential, limit).await
}

pub async fn revocation(
    session_base: &str,
    token_base: &str,
    denylist_base: &str,
    ttl_s: u64,
    leeway_s: u64,
) -> anyhow::Result<Revocation> {
    let limit = Duration::from_secs(ttl_s + leeway_s + 5);
    Ok(Revocation {
        access_token_ttl_s: ttl_s,
        leeway_s,
        session_refused_after_ms: refused_after(session_base, true, limit).await?,
        token_refused_after_ms: refused_after(token_base, false, limit).await?,
        denylist_refused_after_ms: refused_after(denylist_base, false, limit).await?,
    })
}

/// Polls `check` every 100 ms until it says the power is gone, or `limit` passes; returns
/// the milliseconds from `t0`, or `None`.
async fn gone_after<F, Fut>(
    t0: Instant,
    limit: Duration,
    mut check: F,
) -> anyhow::Result<Option<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    while t0.elapsed() < limit {
        if check().await? {
            return Ok(Some(t0.elapsed().as_secs_f64() * 1000.0));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// Milliseconds from now until `GET /api/me` with `credential` (in header `h`) is answered
/// 401, asked every 100 ms; `None` if it still worked after `limit`.
async fn until_logged_out(
    http: &reqwest::Client,
    base: &str,
    h: &'static str,
    credential: &str,
    limit: Duration,
) -> anyhow::Result<Option<f64>> {
    gone_after(Instant::now(), limit, || async move {
        let s = status_with(http, base, (h, credential)).await?;
        anyhow::ensure!(s == 200 || s == 401, "/api/me answered {s}");
        Ok(s == 401)
    })
    .await
}

/// The credential a login handed out, as a request header.
async fn credential(r: reqwest::Response, session: bool) -> anyhow::Result<(String, Value)> {
    if session {
        return Ok((cookie_of(&r)?, Value::Null));
    }
    let body: Value = r.json().await?;
    let access = body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access_token"))?;
    Ok((format!("Bearer {access}"), body))
}

fn header_name(session: bool) -> &'static str {
    if session {
        "Cookie"
    } else {
        "Authorization"
    }
}

/// `r` answered `want`, or an error naming the request, the model and the answer with the
/// start of its body (the contract's error says what was wrong).
async fn expect(r: reqwest::Response, want: u16, what: &str, session: bool) -> anyhow::Result<()> {
    if r.status() == want {
        return Ok(());
    }
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    anyhow::bail!(
        "{} {what} answered {status}: {}",
        if session { "session" } else { "token" },
        body.chars().take(300).collect::<String>()
    )
}

/// An admin's handle on one server: who the admin is and a full-scope credential.
struct Admin<'a> {
    base: &'a str,
    session: bool,
    header: String,
}

impl Admin<'_> {
    async fn set_roles(
        &self,
        http: &reqwest::Client,
        user: &str,
        roles: &[&str],
    ) -> anyhow::Result<Instant> {
        let r = http
            .put(format!("{}/api/admin/users/{user}/roles", self.base))
            .header(header_name(self.session), &self.header)
            .json(&json!({ "roles": roles }))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "PUT roles answered {}", r.status());
        Ok(Instant::now())
    }
}

/// A user promoted to admin, logged in, then demoted: how long its credential still opens
/// the admin route. For tokens, also what a refresh hands out afterwards.
async fn demotion(
    http: &reqwest::Client,
    admin: &Admin<'_>,
    limit: Duration,
) -> anyhow::Result<(Option<f64>, Option<u16>)> {
    let (base, session) = (admin.base, admin.session);
    let name = probe_name();
    sign_up(http, base, &name).await?;
    admin.set_roles(http, &name, &["user", "admin"]).await?;
    let (header, body) = credential(
        log_in(http, base, &name, PROBE_PASSWORD, None).await?,
        session,
    )
    .await?;
    let h = header_name(session);
    let before = status_of(http, base, "/api/admin/stats", (h, &header)).await?;
    anyhow::ensure!(
        before == 200,
        "the promoted user's admin route answered {before}"
    );
    let t0 = admin.set_roles(http, &name, &["user"]).await?;
    let ms = gone_after(t0, limit, || {
        let header = header.clone();
        async move {
            // 403: the role is gone; 401: the credential itself expired.
            let s = status_of(http, base, "/api/admin/stats", (h, &header)).await?;
            anyhow::ensure!(matches!(s, 200 | 401 | 403), "the admin route answered {s}");
            Ok(s != 200)
        }
    })
    .await?;
    let after_refresh = if session {
        None
    } else {
        let r = http
            .post(format!("{base}/auth/refresh"))
            .json(&json!({"refresh_token": body["refresh_token"]}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "refresh answered {}", r.status());
        let (fresh, _) = credential(r, false).await?;
        Some(status_of(http, base, "/api/admin/stats", (h, &fresh)).await?)
    };
    Ok((ms, after_refresh))
}

/// Two logins of one user; the second says `POST /auth/logout-all`: how long the first
/// still reads.
async fn logout_all(
    http: &reqwest::Client,
    base: &str,
    session: bool,
    limit: Duration,
) -> anyhow::Result<Option<f64>> {
    let name = probe_name();
    sign_up(http, base, &name).await?;
    let (first, _) = credential(
        log_in(http, base, &name, PROBE_PASSWORD, None).await?,
        session,
    )
    .await?;
    let (second, _) = credential(
        log_in(http, base, &name, PROBE_PASSWORD, None).await?,
        session,
    )
    .await?;
    let h = header_name(session);
    let r = http
        .post(format!("{base}/auth/logout-all"))
        .header(h, &second)
        .send()
        .await?;
    expect(r, 204, "logout-all", session).await?;
    until_logged_out(http, base, h, &first, limit).await
}

/// An admin's read-only credential and its full one, on a read route and the admin route.
async fn read_scope(
    http: &reqwest::Client,
    base: &str,
    session: bool,
    admin: (&str, &str),
) -> anyhow::Result<(ScopeOutcome, Value)> {
    let h = header_name(session);
    let (read, body) = credential(
        log_in(http, base, admin.0, admin.1, Some("read")).await?,
        session,
    )
    .await?;
    let (full, _) = credential(log_in(http, base, admin.0, admin.1, None).await?, session).await?;
    Ok((
        ScopeOutcome {
            read_status: status_of(http, base, "/api/me", (h, &read)).await?,
            admin_status: status_of(http, base, "/api/admin/stats", (h, &read)).await?,
            full_scope_admin_status: status_of(http, base, "/api/admin/stats", (h, &full)).await?,
        },
        body,
    ))
}

/// Where the authority probe sends its requests: one replica of each model, all with the
/// same bootstrapped admin, the token servers with access tokens of `ttl_s`.
pub struct AuthorityTargets<'a> {
    pub session: &'a str,
    pub token: &'a str,
    pub denylist: &'a str,
    /// `BOOTSTRAP_ADMIN`'s user name and password.
    pub admin: (&'a str, &'a str),
    pub ttl_s: u64,
    pub leeway_s: u64,
}

pub async fn authority(t: &AuthorityTargets<'_>) -> anyhow::Result<Authority> {
    let http = &client()?;
    let limit = Duration::from_secs(t.ttl_s + t.leeway_s + 5);
    let admin = |base, session| async move {
        let (header, _) = credential(
            log_in(http, base, t.admin.0, t.admin.1, None).await?,
            session,
        )
        .await?;
        anyhow::Ok(Admin {
            base,
            session,
            header,
        })
    };
    let session_admin = admin(t.session, true).await?;
    let token_admin = admin(t.token, false).await?;
    let (demoted_s, demoted_t, out_s, out_t, out_d, scope_s, scope_t) = tokio::join!(
        demotion(http, &session_admin, limit),
        demotion(http, &token_admin, limit),
        logout_all(http, t.session, true, limit),
        logout_all(http, t.token, false, limit),
        logout_all(http, t.denylist, false, limit),
        read_scope(http, t.session, true, t.admin),
        read_scope(http, t.token, false, t.admin),
    );
    let (demoted_session_ms, _) = demoted_s?;
    let (demoted_token_ms, after_refresh) = demoted_t?;
    let (read_scope_token, token_body) = scope_t?;
    let claim = token_body["access_token"]
        .as_str()
        .and_then(|a| a.split('.').nth(1))
        .map(decode_part)
        .transpose()?
        .and_then(|p| p["scope"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(Authority {
        access_token_ttl_s: t.ttl_s,
        leeway_s: t.leeway_s,
        limit_s: limit.as_secs(),
        demoted_session_ms,
        demoted_token_ms,
        demoted_token_after_refresh_status: after_refresh.unwrap_or(0),
        logout_all_session_ms: out_s?,
        logout_all_token_ms: out_t?,
        logout_all_denylist_ms: out_d?,
        read_scope_session: scope_s?.0,
        read_scope_token,
        read_scope_token_claim: claim,
    })
}

/// One arm of the memory probe: a server, and the processes whose memory it reads.
pub struct MemoryArm<'a> {
    pub server: ServerKind,
    pub variant: Variant,
    pub base: &'a str,
    pub replica: MemorySource,
}

/// Where a replica's memory is read.
pub enum MemorySource {
    /// A process of this machine: its resident set (`/proc/PID/status`).
    Process(u32),
    /// A container: its resident anonymous memory, from the Docker Engine's stats.
    Container {
        engine: crate::infra::engine::Engine,
        id: String,
    },
}

impl MemorySource {
    async fn resident(&self) -> anyhow::Result<u64> {
        match self {
            Self::Process(pid) => crate::infra::procfs::rss(*pid),
            Self::Container { engine, id } => engine.resident(id).await,
        }
    }
}

/// Memory of one replica and of Redis with no user logged in, then with `users.0`, then
/// `users.1` logged in (each once), arm after arm; `names` are signed up already.
pub async fn server_memory(
    arms: &[MemoryArm<'_>],
    redis_url: &str,
    names: &[String],
    users: (u32, u32),
) -> anyhow::Result<Vec<MemoryPoint>> {
    let http = client()?;
    let mut points = Vec::new();
    for arm in arms {
        let read = |logged_in: u32| async move {
            let info = crate::infra::redis_info::query(redis_url, "memory").await?;
            anyhow::Ok(MemoryPoint {
                server: arm.server,
                variant: arm.variant,
                logged_in,
                replica_rss_bytes: arm.replica.resident().await?,
                redis_used_bytes: crate::infra::redis_info::field(&info, "used_memory")
                    .ok_or_else(|| anyhow::anyhow!("Redis reported no used_memory"))?,
            })
        };
        points.push(read(0).await?);
        let mut done = 0usize;
        for target in [users.0, users.1] {
            let batch = &names[done..target as usize];
            // Eight logins at a time: the servers hash each password, which is the slow part.
            for chunk in batch.chunks(8) {
                let logins = chunk
                    .iter()
                    .map(|n| log_in(&http, arm.base, n, PROBE_PASSWORD, None));
                for r in futures_util::future::join_all(logins).await {
                    // The credential itself is not needed: the server keeps the login.
                    r?;
                }
            }
            done = target as usize;
            points.push(read(target).await?);
        }
    }
    Ok(points)
}

/// Signs up `n` probe users (on any server: users live in the shared Redis).
pub async fn sign_up_many(base: &str, n: u32) -> anyhow::Result<Vec<String>> {
    let http = client()?;
    let names: Vec<String> = (0..n).map(|_| probe_name()).collect();
    for chunk in names.chunks(8) {
        for r in futures_util::future::join_all(chunk.iter().map(|n| sign_up(&http, base, n))).await
        {
            r?;
        }
    }
    Ok(names)
}
