//! The probes (`plan::Probe`): a few careful requests against servers started for them,
//! the same wherever those servers run. A [`ProbeHost`] starts one server of a kind with
//! extra environment (a process here, or a container through the Docker Engine); what the
//! probes ask and how their answers reach results.json is written once, here.

use std::path::Path;

use super::plan::{self, Probe};
use super::Journal;
use crate::measure::probes::{self, MemorySource};
use crate::model::{self, ServerKind, Variant};

/// One replica started for a probe.
pub(crate) trait ProbeServer {
    /// Where to send its requests.
    fn url(&self) -> String;
    /// Where its memory is read.
    fn memory(&self) -> MemorySource;
}

/// Where the probes start their servers, and what they share with them.
pub(crate) trait ProbeHost {
    type Server: ProbeServer;

    /// One replica of `kind` with `env` on top of the run's settings, ready.
    async fn start(
        &self,
        kind: ServerKind,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Self::Server>;

    /// The Redis the servers use.
    fn redis_url(&self) -> String;

    /// The token servers' HS256 secret, to show a token's signature is checked.
    fn jwt_secret(&self) -> Option<String>;

    /// The admin every server bootstraps (experiment `authority`).
    fn admin(&self) -> (String, String);

    /// Experiment `browser`: `None` when not asked for, an error saying why it was skipped.
    async fn browser(
        &self,
        ttl_s: u64,
        chromium: Option<&Path>,
    ) -> Option<anyhow::Result<model::BrowserStudy>>;
}

fn admin_env(host: &impl ProbeHost) -> (String, String) {
    let (name, password) = host.admin();
    ("BOOTSTRAP_ADMIN".into(), format!("{name}:{password}"))
}

async fn revocation(host: &impl ProbeHost, ttl_s: u64) -> anyhow::Result<model::Revocation> {
    let ttl_env = vec![("ACCESS_TOKEN_TTL".to_string(), ttl_s.to_string())];
    let mut deny_env = ttl_env.clone();
    deny_env.push(("ACCESS_DENYLIST".into(), "true".into()));
    let session = host.start(ServerKind::Session, Vec::new()).await?;
    let token = host.start(ServerKind::Token, ttl_env).await?;
    let deny = host.start(ServerKind::Token, deny_env).await?;
    probes::revocation(
        &session.url(),
        &token.url(),
        &deny.url(),
        ttl_s,
        plan::LEEWAY_S,
    )
    .await
}

async fn authority(host: &impl ProbeHost, ttl_s: u64) -> anyhow::Result<model::Authority> {
    let ttl = ("ACCESS_TOKEN_TTL".to_string(), ttl_s.to_string());
    let session = host
        .start(ServerKind::Session, vec![admin_env(host)])
        .await?;
    let token = host
        .start(ServerKind::Token, vec![admin_env(host), ttl.clone()])
        .await?;
    let deny = host
        .start(
            ServerKind::Token,
            vec![
                admin_env(host),
                ttl,
                ("ACCESS_DENYLIST".into(), "true".into()),
            ],
        )
        .await?;
    let (session, token, denylist) = (session.url(), token.url(), deny.url());
    let admin = host.admin();
    probes::authority(&probes::AuthorityTargets {
        session: &session,
        token: &token,
        denylist: &denylist,
        admin: (&admin.0, &admin.1),
        ttl_s,
        leeway_s: plan::LEEWAY_S,
    })
    .await
}

async fn server_memory(
    host: &impl ProbeHost,
    users: (u32, u32),
) -> anyhow::Result<model::ServerMemory> {
    let memory_env = vec![("SESSION_STORE".to_string(), "memory".to_string())];
    let in_memory = host.start(ServerKind::Session, memory_env).await?;
    let in_redis = host.start(ServerKind::Session, Vec::new()).await?;
    let token = host.start(ServerKind::Token, Vec::new()).await?;
    let names = probes::sign_up_many(&token.url(), users.1).await?;
    let urls = [in_memory.url(), in_redis.url(), token.url()];
    let arm = |i: usize, server, variant, s: &dyn ProbeServer| probes::MemoryArm {
        server,
        variant,
        base: &urls[i],
        replica: s.memory(),
    };
    let arms = [
        arm(0, ServerKind::Session, Variant::MemoryStore, &in_memory),
        arm(1, ServerKind::Session, Variant::Standard, &in_redis),
        arm(2, ServerKind::Token, Variant::Standard, &token),
    ];
    let points = probes::server_memory(&arms, &host.redis_url(), &names, users).await?;
    Ok(model::ServerMemory { points })
}

/// The probes: the token taken apart first (its answer depends on nothing else), then
/// memory per user alone (Redis's memory must not move for anything else), then the timed
/// probes at once: they mostly wait for tokens to expire.
pub(crate) async fn run(
    host: &impl ProbeHost,
    wanted: &[Probe],
    chromium: Option<&Path>,
    journal: &mut Journal,
) -> anyhow::Result<()> {
    if wanted.contains(&Probe::TokenAnatomy) {
        eprintln!("token-anatomy: taking a real access token apart ...");
        let anatomy = async {
            let token = host.start(ServerKind::Token, Vec::new()).await?;
            let session = host.start(ServerKind::Session, Vec::new()).await?;
            let secret = host.jwt_secret();
            probes::token_anatomy(&token.url(), &session.url(), secret.as_deref()).await
        };
        match anatomy.await {
            Ok(a) => journal.update(|r| r.token_anatomy = Some(a))?,
            Err(e) => journal.note(format!("token-anatomy: failed: {e:#}")),
        }
    }
    let find = |pick: fn(&Probe) -> Option<u64>| wanted.iter().find_map(pick);
    let revocation_ttl = find(|p| match p {
        Probe::Revocation { ttl_s } => Some(*ttl_s),
        _ => None,
    });
    let authority_ttl = find(|p| match p {
        Probe::Authority { ttl_s } => Some(*ttl_s),
        _ => None,
    });
    let browser_ttl = find(|p| match p {
        Probe::Browser { ttl_s } => Some(*ttl_s),
        _ => None,
    });
    let memory = wanted.iter().find_map(|p| match p {
        Probe::ServerMemory { users } => Some(*users),
        _ => None,
    });
    if let Some(u) = memory {
        eprintln!(
            "server-memory: memory per logged-in user, at {} and {} users ...",
            u.0, u.1
        );
        match server_memory(host, u).await {
            Ok(m) => journal.update(|x| x.server_memory = Some(m))?,
            Err(e) => journal.note(format!("server-memory: failed: {e:#}")),
        }
    }
    if revocation_ttl.is_none() && authority_ttl.is_none() && browser_ttl.is_none() {
        return Ok(());
    }
    eprintln!(
        "probes: how long credentials outlive logout, demotion, logout-all and theft (about {} s) ...",
        revocation_ttl
            .or(authority_ttl)
            .or(browser_ttl)
            .map_or(30, |t| t + plan::LEEWAY_S)
    );
    // All three mostly wait for tokens to expire: they run at once.
    let (rev, auth, browser) = tokio::join!(
        async {
            match revocation_ttl {
                Some(t) => Some(revocation(host, t).await),
                None => None,
            }
        },
        async {
            match authority_ttl {
                Some(t) => Some(authority(host, t).await),
                None => None,
            }
        },
        async {
            match browser_ttl {
                Some(t) => host.browser(t, chromium).await,
                None => None,
            }
        },
    );
    match rev {
        Some(Ok(r)) => journal.update(|x| x.revocation = Some(r))?,
        Some(Err(e)) => journal.note(format!("revocation: failed: {e:#}")),
        None => {}
    }
    match auth {
        Some(Ok(a)) => journal.update(|x| x.authority = Some(a))?,
        Some(Err(e)) => journal.note(format!("authority: failed: {e:#}")),
        None => {}
    }
    match browser {
        Some(Ok(b)) => journal.update(|x| x.browser = Some(b))?,
        Some(Err(e)) => {
            eprintln!("browser: {e:#}");
            journal.note(format!("browser: {e:#}"));
        }
        None => {}
    }
    journal.save()?;
    Ok(())
}
