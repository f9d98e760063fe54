//! Experiment `browser` in the report: what a real Chromium sent, blocked and leaked, case
//! by case, and the findings on claims S5 and T4 (shared with the verdict table).

use super::svg::fmt_num;
use super::{row, Section, Table};
use crate::model::{Attempt, BrowserCase, BrowserStudy, Carrier, Outcome, SentRequest};

const SESSIONS: [Carrier; 3] = [
    Carrier::SessionLax,
    Carrier::SessionStrict,
    Carrier::SessionNone,
];

/// `SameSite=Lax`, from the carrier's description.
fn same_site(c: Carrier) -> &'static str {
    match c {
        Carrier::SessionLax => "Lax",
        Carrier::SessionStrict => "Strict",
        Carrier::SessionNone => "None",
        _ => "-",
    }
}

/// The SameSite values whose case `attempt` came out as `wanted` (`Lax, Strict`).
fn values_where(
    b: &BrowserStudy,
    attempt: Attempt,
    wanted: impl Fn(Outcome) -> bool,
) -> Vec<&'static str> {
    SESSIONS
        .iter()
        .filter(|c| b.case(**c, attempt).is_some_and(|x| wanted(x.outcome)))
        .map(|c| same_site(*c))
        .collect()
}

pub(super) fn list(v: &[&str]) -> String {
    match v {
        [] => "none".into(),
        [a] => (*a).into(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Chromium's reasons for the cookies it refused in `cases`, deduplicated.
fn reasons<'a>(cases: impl Iterator<Item = &'a BrowserCase>) -> Vec<String> {
    let mut v: Vec<String> = cases.flat_map(|c| c.browser_said.iter().cloned()).collect();
    v.sort();
    v.dedup();
    v
}

/// Claim S5: the verdict's words and whether the cookie ever crossed sites.
pub struct CrossSite {
    pub same_site_worked: Vec<&'static str>,
    pub cross_site_worked: Vec<&'static str>,
    pub token_cross_site: Option<Outcome>,
    pub why: Vec<String>,
}

pub fn cross_site(b: &BrowserStudy) -> Option<CrossSite> {
    let worked = |o: Outcome| o == Outcome::Worked;
    let cross: Vec<&BrowserCase> = SESSIONS
        .iter()
        .filter_map(|c| b.case(*c, Attempt::ApiCrossSite))
        .filter(|c| c.outcome != Outcome::Worked)
        .collect();
    let s = CrossSite {
        same_site_worked: values_where(b, Attempt::ApiSameSite, worked),
        cross_site_worked: values_where(b, Attempt::ApiCrossSite, worked),
        token_cross_site: b
            .case(Carrier::TokenLocalStorage, Attempt::ApiCrossSite)
            .map(|c| c.outcome),
        why: reasons(cross.into_iter()),
    };
    (b.case(Carrier::SessionLax, Attempt::ApiSameSite).is_some()).then_some(s)
}

impl CrossSite {
    pub fn sentence(&self, b: &BrowserStudy) -> String {
        let why = if self.why.is_empty() {
            String::new()
        } else {
            format!(" (Chromium: \"{}\")", self.why.join("\"; \""))
        };
        let same = if self.same_site_worked.is_empty() {
            "under no SameSite value".to_string()
        } else {
            format!("under SameSite={}", list(&self.same_site_worked))
        };
        let cross = if self.cross_site_worked.is_empty() {
            format!("it worked under no SameSite value{why}")
        } else {
            format!(
                "it worked under SameSite={}{why}",
                list(&self.cross_site_worked)
            )
        };
        format!(
            "in {}, the session cookie worked from a sibling subdomain (same site) {same}; from another site {cross}. \
             The token from another site: {} (with a CORS preflight before each call)",
            b.browser,
            self.token_cross_site
                .map_or("not tried", Outcome::describe)
        )
    }
}

/// Claim T4: CSRF and XSS, model by model.
pub struct Attacks {
    /// Forged requests against sessions that got what the attacker wanted: the attempt,
    /// what came of it, under which SameSite values, and whether any of them carried the
    /// cookie (a logout answered without it still clears it).
    pub session_csrf_won: Vec<(Attempt, Outcome, Vec<&'static str>, bool)>,
    /// Forged requests against the token in localStorage that got anything.
    pub token_csrf_won: usize,
    pub token_csrf_tried: usize,
    /// The token in localStorage: stolen, and for how long it worked from outside.
    pub stolen: Option<(Outcome, Option<f64>, Option<u16>)>,
    /// An HttpOnly session cookie: what the injected script read.
    pub session_read: Option<Outcome>,
    /// Session riding: the injected script acted as the user (sessions, tokens).
    pub session_act: Option<Outcome>,
    pub token_act: Option<Outcome>,
    /// The token in memory behind a token handler: read, and minted.
    pub memory_read: Option<Outcome>,
    pub memory_minted_s: Option<f64>,
    pub csp: Option<Outcome>,
}

pub fn attacks(b: &BrowserStudy) -> Option<Attacks> {
    let out = |c, a| b.case(c, a).map(|x| x.outcome);
    let forged = [
        Attempt::CsrfFetchRoles,
        Attempt::CsrfFormRefresh,
        Attempt::CsrfFormLogout,
    ];
    let session_csrf_won = forged
        .iter()
        .filter_map(|a| {
            let won = values_where(b, *a, Outcome::attack_succeeded);
            let won_cases: Vec<&BrowserCase> = SESSIONS
                .iter()
                .filter_map(|c| b.case(*c, *a))
                .filter(|c| c.outcome.attack_succeeded())
                .collect();
            let how = won_cases.first()?.outcome;
            let carried = won_cases.iter().any(|c| c.sent.iter().any(|r| r.cookie));
            Some((*a, how, won, carried))
        })
        .collect();
    let token: Vec<&BrowserCase> = forged
        .iter()
        .filter_map(|a| b.case(Carrier::TokenLocalStorage, *a))
        .collect();
    let stolen = b
        .case(Carrier::TokenLocalStorage, Attempt::XssRead)
        .map(|c| (c.outcome, c.stolen_usable_s, c.stolen_refresh_status));
    let a = Attacks {
        session_csrf_won,
        token_csrf_won: token
            .iter()
            .filter(|c| c.outcome.attack_succeeded())
            .count(),
        token_csrf_tried: token.len(),
        stolen,
        session_read: out(Carrier::SessionLax, Attempt::XssRead),
        session_act: out(Carrier::SessionLax, Attempt::XssAct),
        token_act: out(Carrier::TokenLocalStorage, Attempt::XssAct),
        memory_read: out(Carrier::TokenMemory, Attempt::XssRead),
        memory_minted_s: b
            .case(Carrier::TokenMemory, Attempt::XssAct)
            .and_then(|c| c.stolen_usable_s),
        csp: out(Carrier::TokenLocalStorageCsp, Attempt::XssRead),
    };
    a.stolen.is_some().then_some(a)
}

fn outcome(o: Option<Outcome>) -> &'static str {
    o.map_or("not tried", Outcome::describe)
}

fn seconds(v: Option<f64>) -> String {
    v.map_or("(not measured)".into(), |s| format!("{} s", fmt_num(s)))
}

impl Attacks {
    pub fn csrf_sentence(&self) -> String {
        let session = if self.session_csrf_won.is_empty() {
            "no forged request got anything from the session model".to_string()
        } else {
            let won: Vec<String> = self
                .session_csrf_won
                .iter()
                .map(|(a, how, v, carried)| {
                    format!(
                        "when {}: {} (SameSite={}{})",
                        a.describe(),
                        how.describe(),
                        list(v),
                        if *carried {
                            ""
                        } else {
                            "; the forged request carried no cookie, SameSite kept it off, yet the answer cleared \
                             the cookie: a logout that does not check the origin"
                        }
                    )
                })
                .collect();
            format!("against the session cookie, {}", won.join("; "))
        };
        format!(
            "CSRF: {session}; against the token, {} of {} forged requests got anything (the browser attaches no \
             token by itself)",
            self.token_csrf_won, self.token_csrf_tried
        )
    }

    pub fn xss_sentence(&self) -> String {
        let (stolen, usable, refresh) = self.stolen.unwrap_or((Outcome::NotSent, None, None));
        format!(
            "XSS: the token in localStorage: {} (it worked from outside for {}; the stolen refresh token's refresh \
             answered {}); the HttpOnly session cookie: {}, yet the script acted as the user through the page \
             (sessions: {}; tokens: {}); a token in memory: {}, but the token handler minted the script one that \
             worked {}; under a Content-Security-Policy: {}",
            stolen.describe(),
            seconds(usable),
            refresh.map_or("-".into(), |s| s.to_string()),
            outcome(self.session_read),
            outcome(self.session_act),
            outcome(self.token_act),
            outcome(self.memory_read),
            seconds(self.memory_minted_s),
            outcome(self.csp)
        )
    }
}

/// Which defence decided how many cases, counted from the outcomes.
fn defences(b: &BrowserStudy) -> String {
    let count = |f: &dyn Fn(&BrowserCase) -> bool| b.cases.iter().filter(|c| f(c)).count();
    let both = count(&|c| c.outcome == Outcome::WithheldAndOriginRefused);
    let withheld = count(&|c| c.outcome == Outcome::CookieWithheld) + both;
    let origin = count(&|c| c.outcome == Outcome::OriginRefused) + both;
    let preflight = count(&|c| c.outcome == Outcome::PreflightRefused);
    let http_only = count(&|c| c.carrier.is_session() && c.outcome == Outcome::NothingReadable);
    let csp = count(&|c| c.outcome == Outcome::ScriptBlocked);
    let longest = b
        .cases
        .iter()
        .filter_map(|c| c.stolen_usable_s)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    format!(
        "Which defence decided how many cases (each explained in the appendix): the browser withholding a cookie \
         ({withheld}: SameSite or third-party cookie blocking), the origin check ({origin}{}), the CORS preflight \
         ({preflight}), HttpOnly ({http_only}), the Content-Security-Policy ({csp}), and the access token's \
         lifetime, which bounded every stolen access token ({}).",
        if both == 0 {
            String::new()
        } else {
            format!(", {both} of them already stripped of the cookie")
        },
        longest.map_or("none was stolen".into(), |s| format!(
            "the longest worked {} s",
            fmt_num(s)
        ))
    )
}

/// One request as the table shows it: what it carried, where from, and the answer.
fn sent_text(r: &SentRequest) -> String {
    let carried = match (r.cookie, r.authorization) {
        (true, true) => "cookie + Authorization",
        (true, false) => "cookie",
        (false, true) => "Authorization",
        (false, false) => "no credential",
    };
    let site = r
        .sec_fetch_site
        .as_deref()
        .map_or(String::new(), |s| format!(", {s}"));
    // What CORS said, for a request from another origin.
    let cors = match (&r.allow_origin, r.allow_credentials) {
        (Some(o), true) => format!(" (CORS: allows {o}, with credentials)"),
        (Some(o), false) => format!(" (CORS: allows {o})"),
        (None, _)
            if r.sec_fetch_site
                .as_deref()
                .is_some_and(|s| s != "same-origin" && s != "none") =>
        {
            " (no CORS header)".to_string()
        }
        (None, _) => String::new(),
    };
    format!(
        "{} {}{} [{carried}{site}] → {}{cors}",
        r.method, r.host, r.path, r.status
    )
}

/// Why a case came out as it did: which request carried which credential, which defence
/// acted, and why the outcome followed.
fn explain(c: &BrowserCase) -> String {
    let carried_cookie = c.sent.iter().any(|r| r.cookie);
    let third_party = c.browser_said.iter().any(|r| r.contains("UserPreferences"));
    let same_site = same_site(c.carrier);
    match c.outcome {
        Outcome::Worked if c.carrier.is_session() => format!(
            "The browser attached the cookie (SameSite={same_site} lets it go on same-site requests) and the server \
             accepted it; CORS allowed the app's origin with credentials, so the page could read the answer."
        ),
        Outcome::Worked => "The app's script put the token in Authorization itself; CORS allowed the app's origin \
                            (a preflight first), so the call worked from any site."
            .into(),
        Outcome::CookieWithheld if third_party => "Third-party cookie blocking: the browser refused to store the \
            cookie set by another site's API (DevTools: UserPreferences), so it had none to send, whatever SameSite \
            said; CORS was not what stopped it."
            .into(),
        Outcome::CookieWithheld if c.carrier == Carrier::TokenMemory => "The token handler's cookie is \
            SameSite=Strict: the browser kept it off the attacker's form, so the refresh was refused (401)."
            .into(),
        Outcome::CookieWithheld => format!(
            "SameSite={same_site}: the browser kept the cookie off a request started by another site."
        ),
        Outcome::PreflightRefused => "A PUT with JSON needs a CORS preflight; the server's CORS does not allow the \
            attacker's origin, so the browser never sent the request itself (the OPTIONS got 405)."
            .into(),
        Outcome::OriginRefused => format!(
            "SameSite={same_site} let the cookie go with the forged request; the session server's origin check saw a \
             foreign Origin and refused it (403)."
        ),
        Outcome::WithheldAndOriginRefused => format!(
            "Two defences: SameSite={same_site} kept the cookie off the forged request, and the origin check refused \
             the cookieless request as well (403), so its answer could not clear the victim's cookie."
        ),
        Outcome::NothingAttached => "The browser attaches no token by itself: the forged form carried no credential \
            and was refused."
            .into(),
        Outcome::ActedAsUser => "The injected script runs inside the app's page, so the page's own requests carried \
            its credential (the cookie the browser attaches, or the token the app adds): HttpOnly and keeping a token \
            out of reach hide a credential from scripts, they do not stop the page from being used."
            .into(),
        Outcome::CredentialStolen => "localStorage is readable by any script on the page: the injected script read \
            the tokens and sent them to the collector, where they worked until the access token expired."
            .into(),
        Outcome::NothingReadable if c.carrier.is_session() => {
            "HttpOnly: JavaScript cannot read the cookie, so there was nothing to send away.".into()
        }
        Outcome::NothingReadable => "The access token lived in a variable the injected script could not reach, and \
            the refresh token in an HttpOnly cookie."
            .into(),
        Outcome::ScriptBlocked => "The page's Content-Security-Policy allows only the app's own scripts, so the \
            injected one never ran."
            .into(),
        Outcome::Refused => "The credential was sent and refused by the server.".into(),
        Outcome::NotSent => "Nothing of the attempt reached the server.".into(),
        Outcome::VictimLoggedOut if !carried_cookie => "The forged logout carried no cookie (SameSite kept it off), \
            yet the server's answer cleared the cookie anyway, and the browser applied it: a logout that answers a \
            request it cannot attribute, not a cookie sent by the attacker. SameSite did its part; an origin check on \
            logout is what stops this."
            .into(),
        Outcome::VictimLoggedOut => format!(
            "SameSite={same_site} let the cookie go with the forged logout, and nothing refused it: the victim's \
             session ended."
        ),
    }
}

/// The browser section for the results, and every case explained (for the appendix).
pub fn sections(results: &crate::model::Results) -> Option<(Section, Section)> {
    let mut body = section(results)?;
    let mut table = body.table.take()?;
    table.headers.push("why".into());
    if let Some(b) = results.browser.as_ref() {
        for (row, c) in table.rows.iter_mut().zip(&b.cases) {
            row.push(explain(c));
        }
    }
    let cases = Section {
        table: Some(table),
        method: std::mem::take(&mut body.method),
        ..Section::new("browser-cases", "Every browser case, explained")
    };
    body.method =
        "See \"Every browser case, explained\" in the appendix for how the browser was driven."
            .into();
    Some((body, cases))
}

fn section(results: &crate::model::Results) -> Option<Section> {
    let b = results.browser.as_ref()?;
    let mut reading = Vec::new();
    if let Some(s) = cross_site(b) {
        reading.push(format!(
            "Cookies across sites (S5): {}. CORS decides whether a page may read an answer, not whether the browser \
             sends a cookie; it allowed the app's origin with credentials in every case.",
            s.sentence(b)
        ));
    }
    if let Some(a) = attacks(b) {
        reading.push(format!("{}.", a.csrf_sentence()));
        reading.push(format!(
            "{}. Tokens remove what rides on cookies the browser sends by itself (CSRF), not what a script in the page \
             can do.",
            a.xss_sentence()
        ));
    }
    reading.push(defences(b));
    let rows = b
        .cases
        .iter()
        .map(|c| {
            row(&[
                c.carrier.describe().into(),
                c.attempt.describe().into(),
                // Runs before the fix recorded `https:/` for pages on the app's host.
                if c.from.split_once("://").is_some_and(|(_, h)| !h.is_empty()) {
                    c.from.clone()
                } else {
                    "the app's page (its origin was not recorded)".into()
                },
                if c.sent.is_empty() {
                    "nothing reached the server".into()
                } else {
                    c.sent.iter().map(sent_text).collect::<Vec<_>>().join("; ")
                },
                if c.browser_said.is_empty() {
                    "-".into()
                } else {
                    c.browser_said.join("; ")
                },
                c.page_saw.clone(),
                if c.collected.is_empty() {
                    "-".into()
                } else {
                    c.collected.join("; ")
                },
                c.outcome.describe().into(),
                c.victim_logged_in_after
                    .map_or("-".into(), |v| if v { "yes" } else { "no" }.into()),
                c.stolen_usable_s
                    .map_or("-".into(), |s| format!("{} s", fmt_num(s))),
            ])
        })
        .collect();
    // One nginx per kind of credential, each on its own port: the hosts are what the
    // sites share, the ports are in the rows.
    let sites: Vec<String> = b
        .sites
        .iter()
        .map(|s| {
            let host = s
                .origin
                .split_once("://")
                .map_or(s.origin.as_str(), |(_, h)| h)
                .split(':')
                .next()
                .unwrap_or_default();
            format!("{} {host}", s.role)
        })
        .collect();
    Some(Section {
        reading,
        method: format!(
            "{} ({}), headless, driven over the DevTools protocol. Each kind of credential got its own server \
             (one replica; COOKIE_SECURE=true, COOKIE_SAMESITE as shown, CORS_ALLOWED_ORIGINS = the app's origin, \
             ACCESS_TOKEN_TTL={} s), its own nginx terminating TLS with a certificate made for this run (the browser \
             trusted that key only, for this run only) and a fresh browser profile. Sites: {} (each kind of \
             credential on a port of its own, as the rows show); the browser resolved \
             these names, and nothing else, to 127.0.0.1, so same-site and cross-site are its own decisions. The \
             pages are the project's own small app (with one deliberate injection point, served only here), an \
             attacker's page, and a collector. What was sent comes from nginx's log (whether a cookie or \
             Authorization was carried, never their values), what the browser refused from its own DevTools \
             reports, what was stolen from the collector; a stolen credential was then used from outside the \
             browser (GET /api/me every 250 ms) until it was refused. The victim is an admin logged in on the API's \
             own origin (the token handler's app: on the app's origin).{}",
            b.browser, b.user_agent, b.access_token_ttl_s,
            sites.join(", "),
            match results.environment.mode {
                crate::model::Mode::Compose =>
                    " Through docker compose, the browser, its nginx and each server ran as processes in the \
                     compare container (its image holds Chromium and nginx), on the stack's Redis: the cases \
                     are about what the browser sends and blocks, which does not depend on where the servers run.",
                _ => "",
            }
        ),
        table: Some(Table::new(
            &[
                "credential",
                "what was tried",
                "from",
                "what reached the server",
                "what the browser reported refusing (DevTools)",
                "what the page saw",
                "what the attacker received",
                "outcome",
                "victim still logged in",
                "stolen credential worked for",
            ],
            rows,
        )),
        ..Section::new("browser", "In a real browser: cookies across sites, CSRF and XSS")
    })
}
