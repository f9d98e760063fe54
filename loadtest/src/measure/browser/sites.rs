//! The sites the browser sees: five host names under `.test` that only this browser maps
//! to 127.0.0.1, one TLS-terminating nginx that serves them all on one port with a
//! certificate made for this run, and its log of what each request carried.
//!
//! Which requests count as same-site or cross-site is the browser's own decision from these
//! names: `app.example.test` and `api.example.test` are one site (`example.test`), the
//! others are sites of their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use plumbing::{wait_until, Check};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::infra::topology::{find_tool, running_as_root, Proc};
use crate::model::{SentRequest, SiteRole};

/// The app's site (its pages, and the token handler under `/bff/`).
pub const APP: &str = "app.example.test";
/// The API on a sibling subdomain of the app: another origin, the same site.
pub const API: &str = "api.example.test";
/// The same API under a name on another site.
pub const API_ELSEWHERE: &str = "api.elsewhere.test";
/// The attacker's pages.
pub const ATTACKER: &str = "evil.attacker.test";
/// Where the attacker's scripts send what they took.
pub const COLLECTOR: &str = "collect.attacker.test";

/// Every name, in the order the report lists them.
const ROLES: [(&str, &str); 5] = [
    ("app", APP),
    ("api (same site as the app)", API),
    ("api (another site)", API_ELSEWHERE),
    ("attacker", ATTACKER),
    ("collector", COLLECTOR),
];

/// The browser's rule: these names, and nothing else, resolve (to loopback).
pub fn host_resolver_rules() -> String {
    // Every other name fails: nothing this browser does leaves the machine.
    "MAP *.test 127.0.0.1, MAP * ~NOTFOUND".into()
}

/// The names of one run's sites, all on one port.
#[derive(Debug, Clone, Copy)]
pub struct Sites {
    pub port: u16,
}

impl Sites {
    pub fn origin(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port)
    }

    pub fn roles(&self) -> Vec<SiteRole> {
        ROLES
            .iter()
            .map(|(role, host)| SiteRole {
                role: (*role).into(),
                origin: self.origin(host),
            })
            .collect()
    }
}

/// A certificate for every name, made for one run. The browser trusts exactly its key
/// (`--ignore-certificate-errors-spki-list`), for that run's profile only: nothing is added
/// to any trust store.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// base64(SHA-256(SubjectPublicKeyInfo)), as Chromium's flag wants it.
    pub spki_sha256: String,
}

impl Certificate {
    pub fn make(dir: &Path) -> anyhow::Result<Self> {
        let names: Vec<String> = ROLES.iter().map(|(_, h)| (*h).to_string()).collect();
        let made = rcgen::generate_simple_self_signed(names)?;
        let cert = dir.join("sites-local-only.pem");
        let key = dir.join("sites-local-only-key.pem");
        std::fs::write(&cert, made.cert.pem())?;
        std::fs::write(&key, made.key_pair.serialize_pem())?;
        let spki_sha256 = STANDARD.encode(Sha256::digest(made.key_pair.public_key_der()));
        Ok(Self {
            cert,
            key,
            spki_sha256,
        })
    }
}

/// Where nginx sends each site.
pub struct Upstreams {
    /// The server under test (one replica), plain HTTP on loopback.
    pub api: u16,
    /// The collector and the token handler (`helper.rs`).
    pub helper: u16,
}

/// nginx for one group of cases: TLS on `sites.port`, the pages from `pages`, the API
/// behind both API names, and an access log that records, per request, whether it carried
/// a cookie or `Authorization` (never their values).
pub fn nginx_conf(
    dir: &Path,
    pages: &Path,
    sites: Sites,
    cert: &Certificate,
    up: &Upstreams,
) -> String {
    let w = dir.display();
    let p = pages.display();
    let port = sites.port;
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let (cert_path, key_path) = (cert.cert.display(), cert.key.display());
    let (api, helper) = (up.api, up.helper);
    format!(
        r#"{user}daemon off;
worker_processes 1;
pid {w}/nginx-tls-{port}.pid;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {w}/nginx-body;
    proxy_temp_path {w}/nginx-proxy;
    fastcgi_temp_path {w}/nginx-fastcgi;
    uwsgi_temp_path {w}/nginx-uwsgi;
    scgi_temp_path {w}/nginx-scgi;
    types {{ text/html html; application/javascript js; }}
    map $http_cookie $carried_cookie {{ "~(__Host-sid|__Host-rt)=" true; default false; }}
    map $http_authorization $carried_authorization {{ "" false; default true; }}
    log_format cases escape=json '{{"method":"$request_method","host":"$host",'
        '"uri":"$request_uri","status":$status,"cookie":$carried_cookie,'
        '"authorization":$carried_authorization,"origin":"$http_origin",'
        '"sec_fetch_site":"$http_sec_fetch_site",'
        '"allow_origin":"$sent_http_access_control_allow_origin",'
        '"allow_credentials":"$sent_http_access_control_allow_credentials"}}';
    access_log {w}/sites-{port}.log cases;
    ssl_certificate {cert_path};
    ssl_certificate_key {key_path};
    # The same pages with a Content-Security-Policy that allows scripts from the page's own
    # origin only (no inline script, no other site).
    map $uri $csp {{ "~^/app-csp/" "script-src 'self'"; default ""; }}
    add_header Content-Security-Policy $csp always;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {API} {API_ELSEWHERE};
        location /app/ {{ alias {p}/app/; }}
        location /app-csp/ {{ alias {p}/app/; }}
        location / {{
            proxy_pass http://127.0.0.1:{api};
            proxy_set_header Host $http_host;
            # The session server decides what its own origin is from these, and trusts
            # them from 127.0.0.1 only (TRUSTED_PROXIES).
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {APP};
        location /app/ {{ alias {p}/app/; }}
        location /bff/ {{ proxy_pass http://127.0.0.1:{helper}; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {ATTACKER};
        location / {{ root {p}/attacker; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {COLLECTOR};
        location / {{ proxy_pass http://127.0.0.1:{helper}; }}
    }}
}}
"#
    )
}

/// The running nginx of one group, and where its log is.
pub struct Balancer {
    pub proc_: Proc,
    pub log: PathBuf,
}

impl Balancer {
    pub async fn start(
        dir: &Path,
        pages: &Path,
        sites: Sites,
        cert: &Certificate,
        up: &Upstreams,
    ) -> anyhow::Result<Self> {
        let conf = dir.join(format!("nginx-tls-{}.conf", sites.port));
        std::fs::write(&conf, nginx_conf(dir, pages, sites, cert, up))?;
        let mut cmd = Command::new(find_tool("nginx", "nginx")?);
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx-tls-error.log"))
            .arg("-c")
            .arg(&conf);
        let proc_ = Proc::spawn("nginx (TLS)", cmd, dir.join("nginx-tls.log"))?;
        let addr = format!("127.0.0.1:{}", sites.port);
        wait_until(
            "nginx (TLS) listens",
            Duration::from_secs(10),
            Duration::from_millis(25),
            || async {
                match tokio::net::TcpStream::connect(&addr).await {
                    Ok(_) => Check::Done(()),
                    Err(e) => Check::Waiting(e.to_string()),
                }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", proc_.log_tail()))?;
        Ok(Self {
            proc_,
            log: dir.join(format!("sites-{}.log", sites.port)),
        })
    }

    /// Every logged request whose query names `case`, in order.
    pub fn sent(&self, case: &str) -> Vec<SentRequest> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        parse_log(&text, case)
    }
}

#[derive(Deserialize)]
struct LogLine {
    method: String,
    host: String,
    uri: String,
    status: u16,
    cookie: bool,
    authorization: bool,
    origin: String,
    sec_fetch_site: String,
    #[serde(default)]
    allow_origin: String,
    #[serde(default)]
    allow_credentials: String,
}

fn parse_log(text: &str, case: &str) -> Vec<SentRequest> {
    let tag = format!("case={case}");
    text.lines()
        .filter_map(|l| serde_json::from_str::<LogLine>(l).ok())
        .filter(|l| {
            l.uri
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|kv| kv == tag))
        })
        .map(|l| SentRequest {
            method: l.method,
            host: l.host,
            path: l.uri.split('?').next().unwrap_or_default().to_string(),
            status: l.status,
            cookie: l.cookie,
            authorization: l.authorization,
            origin: Some(l.origin).filter(|o| !o.is_empty()),
            sec_fetch_site: Some(l.sec_fetch_site).filter(|o| !o.is_empty()),
            allow_origin: Some(l.allow_origin).filter(|o| !o.is_empty()),
            allow_credentials: l.allow_credentials == "true",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_read_per_case_and_keeps_no_credential() {
        let log = concat!(
            r#"{"method":"OPTIONS","host":"api.example.test","uri":"/api/me?case=a1","status":204,"cookie":false,"authorization":false,"origin":"https://app.example.test:9","sec_fetch_site":"same-site"}"#,
            "\n",
            r#"{"method":"GET","host":"api.example.test","uri":"/api/me?case=a1","status":200,"cookie":false,"authorization":true,"origin":"https://app.example.test:9","sec_fetch_site":"same-site","allow_origin":"https://app.example.test:9","allow_credentials":"true"}"#,
            "\n",
            r#"{"method":"GET","host":"api.example.test","uri":"/api/me?case=a10","status":401,"cookie":true,"authorization":false,"origin":"","sec_fetch_site":""}"#,
            "\n"
        );
        let sent = parse_log(log, "a1");
        assert_eq!(sent.len(), 2, "a10 is another case");
        assert_eq!(sent[0].method, "OPTIONS");
        assert_eq!(sent[1].path, "/api/me");
        assert!(sent[1].authorization && !sent[1].cookie);
        assert_eq!(
            sent[1].allow_origin.as_deref(),
            Some("https://app.example.test:9")
        );
        assert!(sent[1].allow_credentials && !sent[0].allow_credentials);
        let other = parse_log(log, "a10");
        assert_eq!(
            (
                other[0].origin.as_deref(),
                other[0].sec_fetch_site.as_deref()
            ),
            (None, None)
        );
    }

    #[test]
    fn the_certificate_names_every_site_and_its_key_hash_is_spki() {
        let dir = std::env::temp_dir().join(format!("lt-cert-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Certificate::make(&dir).unwrap();
        assert!(std::fs::read_to_string(&c.cert)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        // 32 bytes of SHA-256, base64: 44 characters.
        assert_eq!(c.spki_sha256.len(), 44);
        let conf = nginx_conf(
            &dir,
            &dir,
            Sites { port: 9443 },
            &c,
            &Upstreams { api: 1, helper: 2 },
        );
        for host in [APP, API, API_ELSEWHERE, ATTACKER, COLLECTOR] {
            assert!(conf.contains(host), "{host} is served");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
