//! Experiment `browser`: what a real browser sends, blocks and leaks, case by case.
//!
//! Each case is one thing a page tried (the app using its API from another origin, an
//! attacker's page forging a request, an injected script stealing a credential), what the
//! browser really sent (from the balancer's log), what the page saw, and the outcome that
//! follows from those observations.

use serde::{Deserialize, Serialize};

/// The whole experiment: the browser, the sites it was given, and every case.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BrowserStudy {
    /// The browser's product name and version as it reports them (`Chrome/156.0...`).
    pub browser: String,
    pub user_agent: String,
    /// The origins the cases used, by role (app, API on the same site, API on another site,
    /// attacker, collector), as the first group served them: each group has a port of its
    /// own (a case's `from` has its group's). They resolve to 127.0.0.1 for this browser only.
    pub sites: Vec<SiteRole>,
    /// The token server's access-token lifetime in this experiment, seconds.
    pub access_token_ttl_s: u64,
    /// The token server's leeway on `exp`, seconds.
    pub leeway_s: u64,
    pub cases: Vec<BrowserCase>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteRole {
    pub role: String,
    pub origin: String,
}

/// Which claim of the study note a case tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BrowserClaim {
    S5,
    T4,
}

/// Where the app keeps its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carrier {
    /// The session server's `HttpOnly; Secure` cookie, `SameSite=Lax`.
    SessionLax,
    SessionStrict,
    SessionNone,
    /// Access and refresh token in `localStorage`, sent in `Authorization`.
    TokenLocalStorage,
    /// The access token only in a JavaScript variable; the refresh token in an `HttpOnly;
    /// SameSite=Strict` cookie kept by the app's own small back end (a "token handler").
    TokenMemory,
    /// `TokenLocalStorage` on a page served with `Content-Security-Policy: script-src 'self'`.
    TokenLocalStorageCsp,
}

impl Carrier {
    pub fn describe(self) -> &'static str {
        match self {
            Carrier::SessionLax => "session cookie, SameSite=Lax",
            Carrier::SessionStrict => "session cookie, SameSite=Strict",
            Carrier::SessionNone => "session cookie, SameSite=None",
            Carrier::TokenLocalStorage => "token in localStorage",
            Carrier::TokenMemory => "token in memory, refresh token in an HttpOnly cookie",
            Carrier::TokenLocalStorageCsp => "token in localStorage, page with CSP",
        }
    }

    pub fn is_session(self) -> bool {
        matches!(
            self,
            Carrier::SessionLax | Carrier::SessionStrict | Carrier::SessionNone
        )
    }
}

/// What kind of attempt a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attempt {
    /// The app calls its API on a sibling subdomain (same site, another origin).
    ApiSameSite,
    /// The app calls its API on another site.
    ApiCrossSite,
    /// The attacker's page submits a form (a top-level POST) to `/auth/logout`.
    CsrfFormLogout,
    /// The attacker's page submits a form to `/auth/refresh`.
    CsrfFormRefresh,
    /// The attacker's page `fetch`es `PUT /api/admin/users/{name}/roles` with credentials.
    CsrfFetchRoles,
    /// An injected script reads every credential the page can read and sends it out.
    XssRead,
    /// An injected script uses the page's own access to act as the user (promote the
    /// attacker's account), and mints what it can.
    XssAct,
}

impl Attempt {
    pub fn claim(self) -> BrowserClaim {
        match self {
            Attempt::ApiSameSite | Attempt::ApiCrossSite => BrowserClaim::S5,
            _ => BrowserClaim::T4,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Attempt::ApiSameSite => "the app calls its API on a sibling subdomain (same site)",
            Attempt::ApiCrossSite => "the app calls its API on another site",
            Attempt::CsrfFormLogout => "the attacker's page submits a form to /auth/logout",
            Attempt::CsrfFormRefresh => "the attacker's page submits a form to /auth/refresh",
            Attempt::CsrfFetchRoles => {
                "the attacker's page fetches PUT /api/admin/users/{name}/roles with credentials"
            }
            Attempt::XssRead => "an injected script reads the credential and sends it out",
            Attempt::XssAct => "an injected script acts as the user from inside the page",
        }
    }
}

/// One request as it reached the balancer (its TLS-terminating nginx), the case's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRequest {
    pub method: String,
    pub host: String,
    pub path: String,
    pub status: u16,
    /// Whether the request carried the session cookie (or the token handler's cookie).
    pub cookie: bool,
    /// Whether it carried `Authorization`.
    pub authorization: bool,
    /// `Origin` as sent, when sent.
    pub origin: Option<String>,
    /// `Sec-Fetch-Site` as sent.
    pub sec_fetch_site: Option<String>,
    /// What CORS said in the answer: `Access-Control-Allow-Origin`, when there was one.
    #[serde(default)]
    pub allow_origin: Option<String>,
    /// `Access-Control-Allow-Credentials: true` in the answer.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// What came of a case, read from what was sent, answered and received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The app's request carried its credential and was answered 200: it works.
    Worked,
    /// The browser did not attach the cookie: the app is not logged in there, or the
    /// forged request reached the server without the victim's credential.
    CookieWithheld,
    /// The preflight (`OPTIONS`) was refused by CORS: the request itself never left.
    PreflightRefused,
    /// The request carried the cookie and the server's origin check refused it (403).
    OriginRefused,
    /// The browser did not attach the cookie (SameSite), and the server's origin check
    /// refused the cookieless request too (403, contract v3), so its answer carried no
    /// `Set-Cookie` that could have cleared the victim's cookie.
    WithheldAndOriginRefused,
    /// Nothing the server would accept as the user's credential was attached.
    NothingAttached,
    /// The forged or injected request acted as the victim.
    ActedAsUser,
    /// The collector received a credential that worked from outside the browser.
    CredentialStolen,
    /// The injected script ran but found no credential it could read.
    NothingReadable,
    /// The injected script never ran (Content-Security-Policy): nothing reached the
    /// collector.
    ScriptBlocked,
    /// The credential was sent and refused (401, or 403 for lack of a role).
    Refused,
    /// Nothing of the attempt reached the server.
    NotSent,
    /// The victim was logged out by the forged request.
    VictimLoggedOut,
}

impl Outcome {
    pub fn describe(self) -> &'static str {
        match self {
            Outcome::Worked => "works",
            Outcome::CookieWithheld => "cookie not sent",
            Outcome::PreflightRefused => "preflight refused, request never sent",
            Outcome::OriginRefused => "cookie sent, refused by the origin check (403)",
            Outcome::WithheldAndOriginRefused => {
                "cookie not sent (SameSite), and the origin check refused the request (403): no cookie cleared"
            }
            Outcome::NothingAttached => "no credential attached",
            Outcome::ActedAsUser => "acted as the user",
            Outcome::CredentialStolen => "credential stolen",
            Outcome::NothingReadable => "nothing readable",
            Outcome::ScriptBlocked => "injected script blocked",
            Outcome::Refused => "credential sent, refused",
            Outcome::NotSent => "nothing sent",
            Outcome::VictimLoggedOut => "the victim was logged out",
        }
    }

    /// For an attack: whether the attacker got what they wanted.
    pub fn attack_succeeded(self) -> bool {
        matches!(
            self,
            Outcome::ActedAsUser | Outcome::CredentialStolen | Outcome::VictimLoggedOut
        )
    }
}

/// One row of the experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrowserCase {
    pub carrier: Carrier,
    pub attempt: Attempt,
    /// The origin of the page that made the attempt.
    pub from: String,
    /// What the page tried, in its own words.
    pub tried: String,
    /// What reached the balancer for this case, in order.
    pub sent: Vec<SentRequest>,
    /// What the browser itself reported (DevTools): cookies it did not send with the case's
    /// requests, or did not store from their answers, with its reason.
    #[serde(default)]
    pub browser_said: Vec<String>,
    /// What the page's script saw (a status, or the browser's error).
    pub page_saw: String,
    /// What the collector received (the XSS cases), verbatim but cut short.
    #[serde(default)]
    pub collected: Vec<String>,
    pub outcome: Outcome,
    /// After an attack: whether the victim was still logged in (their app's next
    /// `/api/me` answered 200).
    #[serde(default)]
    pub victim_logged_in_after: Option<bool>,
    /// A stolen credential: how long it kept working from outside the browser, seconds.
    #[serde(default)]
    pub stolen_usable_s: Option<f64>,
    /// A stolen refresh token: what the token server answered the attacker's refresh.
    #[serde(default)]
    pub stolen_refresh_status: Option<u16>,
}

impl BrowserStudy {
    pub fn case(&self, carrier: Carrier, attempt: Attempt) -> Option<&BrowserCase> {
        self.cases
            .iter()
            .find(|c| c.carrier == carrier && c.attempt == attempt)
    }

    pub fn origin(&self, role: &str) -> Option<&str> {
        self.sites
            .iter()
            .find(|s| s.role == role)
            .map(|s| s.origin.as_str())
    }
}
