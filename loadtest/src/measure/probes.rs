//! Experiments that need no load, only a few careful requests: what is inside a token,
//! and how long a credential keeps working after logout.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::model::{Revocation, ServerKind, TokenAnatomy};

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

/// Signs a throwaway user up and logs in; returns the login response.
async fn fresh_login(http: &reqwest::Client, base: &str) -> anyhow::Result<reqwest::Response> {
    let name = format!("probe{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let creds = json!({"username": name, "password": "probe-password"});
    let r = http
        .post(format!("{base}/auth/signup"))
        .json(&creds)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "signup answered {}", r.status());
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&creds)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "login answered {}", r.status());
    Ok(r)
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
    Ok(http
        .get(format!("{base}/api/me"))
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

/// A real access token taken apart, and what the server says to altered copies.
pub async fn token_anatomy(token_base: &str, session_base: &str) -> anyhow::Result<TokenAnatomy> {
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
    })
}

/// Logs in, logs out, then asks `/api/me` with the old credential every 100 ms until it is
/// refused or `limit` passes. Returns milliseconds from the logout's answer to the first
/// refusal, or `None` if it still worked at `limit`.
async fn refused_after(base: &str, session: bool, limit: Duration) -> anyhow::Result<Option<f64>> {
    let http = client()?;
    let login = fresh_login(&http, base).await?;
    let (header, logout) = if session {
        let c = cookie_of(&login)?;
        (
            ("Cookie", c.clone()),
            http.post(format!("{base}/auth/logout")).header("Cookie", c),
        )
    } else {
        let body: Value = login.json().await?;
        let access = format!(
            "Bearer {}",
            body["access_token"].as_str().unwrap_or_default()
        );
        let refresh = body["refresh_token"].clone();
        (
            ("Authorization", access.clone()),
            http.post(format!("{base}/auth/logout"))
                .header("Authorization", access)
                .json(&json!({"refresh_token": refresh})),
        )
    };
    anyhow::ensure!(
        status_with(&http, base, (header.0, &header.1)).await? == 200,
        "the fresh credential works"
    );
    let r = logout.send().await?;
    anyhow::ensure!(r.status() == 204, "logout answered {}", r.status());
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let s = status_with(&http, base, (header.0, &header.1)).await?;
        if s == 401 {
            return Ok(Some(t0.elapsed().as_secs_f64() * 1000.0));
        }
        anyhow::ensure!(s == 200, "/api/me answered {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
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
