//! `loadtest compare --quick` for real: Redis, two replicas of each server behind nginx,
//! every scenario and experiment. It runs once; each test below checks one claim against
//! the typed results it wrote, so one failure does not hide the rest.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use loadtest::model::{Experiment, FaultKind, Phase, Results, Run, Scenario, ServerKind, Variant};

/// `compare`'s default `--experiments`.
const DEFAULT_EXPERIMENTS: &str = "shared-store,redis-outage,replica-loss,revocation,token-anatomy,signing,store-bound,server-memory,authority,access-token-lifetime,browser,latency-curve";

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The folder the one `compare --quick` wrote, and what it wrote (or why it failed).
fn run() -> &'static (PathBuf, Result<Results, String>) {
    static RUN: OnceLock<(PathBuf, Result<Results, String>)> = OnceLock::new();
    RUN.get_or_init(|| {
        let bins = bin_dir();
        let out = std::env::temp_dir().join(format!("loadtest-smoke-{}", std::process::id()));
        for server in ["session-server", "token-server"] {
            if !bins.join(server).is_file() {
                return (
                    out,
                    Err(format!(
                        "{server} is not built next to loadtest; run `cargo test --workspace` \
                         (or build it first)"
                    )),
                );
            }
        }
        let status = Command::new(env!("CARGO_BIN_EXE_loadtest"))
            .args(["compare", "--quick", "--replicas", "2", "--users", "8"])
            // Every experiment: the default set and the two beyond it.
            .args([
                "--experiments",
                &format!("{},store-cluster,store-latency", DEFAULT_EXPERIMENTS),
            ])
            .arg("--bin-dir")
            .arg(&bins)
            .arg("--out")
            .arg(&out)
            .env_remove("CARGO")
            .status();
        let results = match status {
            Ok(s) if s.success() => {
                Results::read(&out.join("results.json")).map_err(|e| format!("{e:#}"))
            }
            other => Err(format!("loadtest compare --quick failed: {other:?}")),
        };
        (out, results)
    })
}

fn results() -> &'static Results {
    match &run().1 {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn arm(e: Experiment, server: ServerKind, v: Variant) -> &'static Run {
    results()
        .arm(e, server, v)
        .unwrap_or_else(|| panic!("{e:?} {server:?} {v:?} ran"))
}

fn name(r: &Run) -> String {
    format!(
        "{} {} {:?} {:?}",
        r.server.name(),
        r.scenario.name(),
        r.experiment,
        r.variant()
    )
}

/// `--cpus-per-replica auto` (the default) calibrated a budget, and the sweep ran with it.
#[test]
fn the_budget_was_calibrated_and_held() {
    let r = results();
    let c = r.calibration.as_ref().expect("the calibration ran");
    assert_eq!(c.runs.len(), 3, "one calibration run per group");
    assert!(
        c.cpus_per_replica >= 0.02 && c.cpus_per_replica <= 2.0,
        "{c:?}"
    );
    for run in r.runs.iter().filter(|x| x.in_sweep()) {
        assert_eq!(
            run.cpus_per_replica,
            Some(c.cpus_per_replica),
            "{}",
            name(run)
        );
        assert_eq!(run.round, 1);
    }
}

#[test]
fn the_environment_is_described() {
    let env = &results().environment;
    assert!(env.cpus >= 1 && !env.kernel.is_empty() && !env.cpu_model.is_empty());
    assert!(env.config["password_hash"].starts_with("argon2id"));
    assert!(env.versions.contains_key("redis-server"));
    assert!(!env.cpu_budget_method.is_empty());
}

#[test]
fn every_sweep_run_is_clean_and_spread_over_both_replicas() {
    let sweep: Vec<&Run> = results().runs.iter().filter(|r| r.in_sweep()).collect();
    // session and token: read, login, refresh; public: public.
    assert_eq!(sweep.len(), 7, "{:#?}", results().environment.notes);
    for run in sweep {
        let name = name(run);
        assert!(run.rps > 0.0, "{name}: no throughput");
        assert_eq!(run.errors, 0, "{name}: errors {:?}", run.errors_by_status);
        assert!(run.duration_s > 1.0, "{name}: window too short");
        let l = &run.latency_ms;
        assert!(
            l.p50 > 0.0 && l.p90 > 0.0 && l.p99 > 0.0 && l.max > 0.0,
            "{name}: {l:?}"
        );
        assert_eq!(run.requests_per_replica.len(), 2, "{name}");
        assert!(
            run.requests_per_replica.iter().all(|n| *n > 0),
            "{name}: a replica got no requests: {:?}",
            run.requests_per_replica
        );
        assert!(run.cpu_us_per_request.replicas.unwrap() > 0.0, "{name}");
        assert!(run.cpu_us_per_request.loadgen.unwrap() > 0.0, "{name}");
    }
}

#[test]
fn a_session_read_asks_redis_and_a_token_read_does_not() {
    let r = results();
    let session = r.sweep(ServerKind::Session, Scenario::Read)[0];
    let token = r.sweep(ServerKind::Token, Scenario::Read)[0];
    let public = r.sweep(ServerKind::Public, Scenario::Public)[0];
    assert!(session.redis_commands_per_request.unwrap() >= 1.0);
    assert_eq!(token.redis_commands_per_request, Some(0.0));
    assert_eq!(public.redis_commands_per_request, Some(0.0));
}

#[test]
fn credentials_have_the_expected_size() {
    for run in results().runs.iter().filter(|r| r.in_sweep()) {
        match run.server {
            ServerKind::Session => assert!(run.credential_bytes > 40, "{}", name(run)),
            ServerKind::Token => assert!(run.credential_bytes > 200, "{}", name(run)),
            ServerKind::Public => assert_eq!(run.credential_bytes, 0),
        }
    }
}

/// Memory sessions behind round robin fail for the requests that land on the other
/// replica; sticky routing and Redis do not.
#[test]
fn replicas_need_a_shared_session_store() {
    let e = Experiment::SharedStore;
    assert_eq!(results().experiment(e).len(), 3, "three shared-store arms");
    let rr = arm(e, ServerKind::Session, Variant::MemoryStore);
    assert!(
        rr.error_rate() > 0.2,
        "round-robin memory sessions failed only {:.0}%",
        rr.error_rate() * 100.0
    );
    assert!(rr.errors_by_status[&401] > 0, "the failures are 401s");
    let sticky = arm(e, ServerKind::Session, Variant::MemoryStoreSticky);
    assert_eq!(sticky.errors, 0, "sticky: {:?}", sticky.errors_by_status);
    assert_eq!(
        sticky.redis_commands_per_request,
        Some(0.0),
        "memory sessions never ask Redis"
    );
    let redis = arm(e, ServerKind::Session, Variant::Standard);
    assert_eq!(
        redis.errors, 0,
        "Redis sessions: {:?}",
        redis.errors_by_status
    );
    assert!(redis.redis_commands_per_request.unwrap() >= 1.0);
}

/// After logout a session id is refused at once; an access token works until it expires
/// (plus the leeway), unless the denylist is on; the denylist costs a Redis read.
#[test]
fn logout_revokes_sessions_at_once_and_tokens_at_expiry() {
    let r = results()
        .revocation
        .as_ref()
        .expect("the revocation probe ran");
    assert!(r.session_refused_after_ms.unwrap() < 1000.0, "{r:?}");
    assert!(r.denylist_refused_after_ms.unwrap() < 1000.0, "{r:?}");
    let token_ms = r
        .token_refused_after_ms
        .expect("the access token expired in the end");
    let ttl_ms = r.access_token_ttl_s as f64 * 1000.0;
    let leeway_ms = r.leeway_s as f64 * 1000.0;
    assert!(token_ms >= ttl_ms, "refused before it expired: {r:?}");
    assert!(
        token_ms <= ttl_ms + leeway_ms + 2000.0,
        "accepted past expiry and leeway: {r:?}"
    );
    let deny = arm(Experiment::Revocation, ServerKind::Token, Variant::Denylist);
    assert_eq!(deny.errors, 0);
    assert!(deny.redis_commands_per_request.unwrap() >= 1.0, "{deny:?}");
}

/// Redis on a small budget stops the session model, not the token model.
#[test]
fn a_starved_store_bounds_sessions_not_tokens() {
    let e = Experiment::StoreBound;
    let session = arm(e, ServerKind::Session, Variant::StoreBound);
    let token = arm(e, ServerKind::Token, Variant::StoreBound);
    assert!(
        session.setup.redis_cpus.is_some() && session.setup.redis_cpus == token.setup.redis_cpus
    );
    assert_eq!(
        session.bottleneck,
        Some(loadtest::model::Bottleneck::Redis),
        "{session:?}"
    );
    assert_ne!(token.bottleneck, Some(loadtest::model::Bottleneck::Redis));
    assert!(session.redis_throttled.unwrap() > token.redis_throttled.unwrap_or(0.0));
    assert!(token.rps > session.rps, "{} vs {}", token.rps, session.rps);
}

/// Experiment `store-cluster`: the store-bound sweep on a 3-primary Redis Cluster with each
/// primary on the single Redis's budget, then a primary killed with a replica behind it.
#[test]
fn a_cluster_spreads_the_store_and_its_failover_is_counted() {
    let runs = results().experiment(Experiment::StoreCluster);
    let sweep: Vec<_> = runs.iter().filter(|r| r.fault.is_none()).collect();
    assert_eq!(sweep.len(), 2, "one run per model at 2 replicas");
    let single = arm(
        Experiment::StoreBound,
        ServerKind::Session,
        Variant::StoreBound,
    );
    for r in &sweep {
        assert_eq!(r.variant(), Variant::Cluster);
        assert_eq!(r.setup.redis_primaries, Some(3), "{}", name(r));
        assert_eq!(
            r.setup.redis_cpus, single.setup.redis_cpus,
            "each primary on the same budget"
        );
        assert_eq!(r.errors, 0, "{}: {:?}", name(r), r.errors_by_status);
        // Redis CPU is the sum over the primaries: seen, and spent by sessions.
        assert!(r.cpu_cores_used.redis.is_some(), "{}", name(r));
        if r.server == ServerKind::Session {
            assert!(r.redis_commands_per_request.unwrap() >= 1.0, "{r:?}");
            // One Redis on its budget was the session reads' bottleneck (asserted above);
            // three primaries on that budget each are not: the plateau moved off the store.
            assert_ne!(
                r.bottleneck,
                Some(loadtest::model::Bottleneck::Redis),
                "{r:?}"
            );
        }
    }
    let failovers: Vec<_> = runs.iter().filter(|r| r.fault.is_some()).collect();
    assert_eq!(failovers.len(), 2, "one failover per model");
    for r in failovers {
        let f = r.fault.unwrap();
        assert_eq!(f.kind, loadtest::model::FaultKind::KillPrimary);
        let took_over = f.lasts_s.expect("the replica took over inside the window");
        assert!((0.5..10.0).contains(&took_over), "{f:?}");
        let fo = r
            .failover
            .expect("the logins written before the kill were checked");
        // 60 refreshes at once on top of the load: most answer (one that did not wrote
        // nothing, and is not watched).
        assert!((30..=60).contains(&fo.written), "{fo:?}");
        // At least 30 users over 3 primaries: some on the killed one (none: 1 in 10^5).
        assert!(
            fo.on_killed_primary >= 1 && fo.on_killed_primary < fo.written,
            "{fo:?}"
        );
        // Only a write the killed primary had not passed on can be lost.
        assert!(
            fo.lost <= fo.on_killed_primary && fo.lost + fo.unanswered <= fo.written,
            "{fo:?}"
        );
        assert!(fo.last_write_before_kill_ms < 1000, "{fo:?}");
        // The servers' store client came back: every watched login answered, and requests
        // succeeded again before the window closed.
        assert_eq!(fo.unanswered, 0, "{fo:?}");
        assert!(!r.failing_at_end(), "{}: still failing at the end", name(r));
        assert!(r.failing_s().unwrap() < r.duration_s, "{}", name(r));
        assert!(r.users_logged_out.is_some());
        if r.server == ServerKind::Token {
            // A token read never asks the store: only refreshes can fail.
            let reads = r.failed_where(Some("/api/me"), |_| true)
                + r.failed_where(Some("/api/items"), |_| true);
            assert_eq!(reads, 0, "{}", name(r));
        }
    }
}

/// Experiment `store-latency`: the store behind the delaying proxy. Every session read
/// pays the round trip; a token read never asks the store.
#[test]
fn a_store_across_a_network_slows_session_reads_not_token_reads() {
    let runs = results().experiment(Experiment::StoreLatency);
    assert_eq!(runs.len(), 6, "3 delays x 2 models");
    let at = |server: ServerKind, ms: f64| {
        runs.iter()
            .find(|r| r.server == server && r.setup.store_delay_ms == Some(ms))
            .unwrap_or_else(|| panic!("{server:?} at {ms} ms"))
    };
    for server in [ServerKind::Session, ServerKind::Token] {
        let (near, far) = (at(server, 0.0), at(server, 2.0));
        let (rtt_near, rtt_far) = (near.store_rtt_ms.unwrap(), far.store_rtt_ms.unwrap());
        assert!(rtt_near < 1.5, "the proxy alone: {rtt_near} ms");
        assert!(
            (4.0..10.0).contains(&rtt_far),
            "2 ms each way: {rtt_far} ms"
        );
        assert_eq!(far.errors, 0, "{}", name(far));
    }
    let added = |server| at(server, 2.0).latency_ms.p50 - at(server, 0.0).latency_ms.p50;
    let rtt_added =
        |server| at(server, 2.0).store_rtt_ms.unwrap() - at(server, 0.0).store_rtt_ms.unwrap();
    // A session read waits for one store round trip: most of the added round trip shows.
    assert!(
        added(ServerKind::Session) >= 0.6 * rtt_added(ServerKind::Session),
        "session reads: +{} ms for a round trip {} ms longer",
        added(ServerKind::Session),
        rtt_added(ServerKind::Session)
    );
    assert!(
        at(ServerKind::Session, 2.0).cpus_per_replica.is_none(),
        "no budget"
    );
    // Token reads wait on no round trip: whatever moved is noise, well under the sessions'.
    assert!(
        added(ServerKind::Token) < added(ServerKind::Session) / 2.0,
        "token reads: +{} ms, session reads +{} ms",
        added(ServerKind::Token),
        added(ServerKind::Session)
    );
    assert_eq!(
        at(ServerKind::Token, 2.0).redis_commands_per_request,
        Some(0.0)
    );
}

/// Memory per logged-in user: sessions in the replica's memory or in Redis, token
/// families in Redis; measured at two user counts.
#[test]
fn memory_grows_per_logged_in_user_where_the_model_keeps_it() {
    let m = results()
        .server_memory
        .as_ref()
        .expect("the memory probe ran");
    let redis_growth = |server, v| {
        let pts: Vec<_> = m
            .points
            .iter()
            .filter(|p| p.server == server && p.variant == v)
            .collect();
        assert_eq!(pts.len(), 3, "none, then two counts: {pts:?}");
        pts[2].redis_used_bytes as f64 - pts[1].redis_used_bytes as f64
    };
    let in_redis = redis_growth(ServerKind::Session, Variant::Standard);
    let in_memory = redis_growth(ServerKind::Session, Variant::MemoryStore);
    let families = redis_growth(ServerKind::Token, Variant::Standard);
    assert!(in_redis > 0.0 && families > 0.0, "{in_redis} {families}");
    assert!(
        in_memory < in_redis,
        "memory-store sessions grow Redis less: {in_memory} vs {in_redis}"
    );
}

/// Demotion, logout-all and read-only credentials, timed per model.
#[test]
fn sessions_lose_authority_at_once_and_tokens_at_expiry() {
    let a = results()
        .authority
        .as_ref()
        .expect("the authority probe ran");
    let ttl_ms = a.access_token_ttl_s as f64 * 1000.0;
    assert!(a.demoted_session_ms.unwrap() < 1000.0, "{a:?}");
    assert!(a.demoted_token_ms.is_none_or(|ms| ms >= ttl_ms), "{a:?}");
    assert_eq!(
        a.demoted_token_after_refresh_status, 403,
        "a refresh re-reads the roles"
    );
    assert!(a.logout_all_session_ms.unwrap() < 1000.0, "{a:?}");
    assert!(a.logout_all_token_ms.is_none_or(|ms| ms >= ttl_ms), "{a:?}");
    assert!(a.logout_all_denylist_ms.unwrap() < 1000.0, "{a:?}");
    for s in [&a.read_scope_session, &a.read_scope_token] {
        assert_eq!(
            (s.read_status, s.admin_status, s.full_scope_admin_status),
            (200, 403, 200)
        );
    }
    assert_eq!(a.read_scope_token_claim, "read");
}

/// Shorter access tokens, more refreshes; nobody logged out.
#[test]
fn shorter_access_tokens_cost_more_refreshes() {
    let mut runs = results().experiment(Experiment::AccessTokenLifetime);
    runs.sort_by_key(|r| r.setup.access_token_ttl_s);
    assert!(runs.len() >= 2);
    let rate = |r: &Run| r.route_rps("/auth/refresh").unwrap_or(0.0) / r.users() as f64;
    for w in runs.windows(2) {
        assert!(rate(w[0]) > rate(w[1]), "{} vs {}", rate(w[0]), rate(w[1]));
    }
    for r in runs {
        assert!(
            rate(r) > 0.0,
            "users refreshed at {:?} s",
            r.setup.access_token_ttl_s
        );
        assert_eq!(r.users_logged_out, Some(0), "{}", name(r));
    }
}

/// Anyone can read a token; nobody can change it. A session cookie says nothing.
#[test]
fn a_token_is_readable_but_not_forgeable_and_a_cookie_is_opaque() {
    let a = results()
        .token_anatomy
        .as_ref()
        .expect("the token-anatomy probe ran");
    assert_eq!(a.header["typ"], "at+jwt");
    assert!(a.payload["sub"].is_string() && a.payload["roles"].is_array());
    assert_eq!(a.original_status, 200);
    assert_eq!(a.tampered_payload_status, 401);
    assert_eq!(a.tampered_signature_status, 401);
    assert_eq!(a.session_cookie_status, 200);
    assert_eq!(a.altered_cookie_status, 401);
    assert_eq!(
        a.signature_recomputed,
        Some(true),
        "HMAC over header.payload"
    );
    assert_eq!(a.password_in_token, Some(false));
    assert!(a.refresh_payload.as_ref().unwrap()["fam"].is_string());
    assert!(a.set_cookie.contains("HttpOnly"), "{}", a.set_cookie);
    let name = a.payload["preferred_username"].as_str().unwrap();
    assert!(
        !a.session_cookie.contains("probe") && !a.session_cookie.contains(name),
        "the cookie is opaque: {}",
        a.session_cookie
    );
}

#[test]
fn eddsa_tokens_verify_on_every_replica_without_redis() {
    let eddsa = arm(Experiment::Signing, ServerKind::Token, Variant::Eddsa);
    assert_eq!(
        eddsa.errors, 0,
        "EdDSA tokens verify on every replica: {:?}",
        eddsa.errors_by_status
    );
    assert_eq!(eddsa.redis_commands_per_request, Some(0.0));
}

/// Redis frozen: session reads fail, token reads do not, refreshes fail, nothing hangs;
/// the freeze is recorded as it happened.
#[test]
fn a_frozen_redis_stops_sessions_and_refreshes_but_not_token_reads() {
    let e = Experiment::RedisOutage;
    assert_eq!(
        results().experiment(e).len(),
        4,
        "both models, grace on and off"
    );
    let session = arm(e, ServerKind::Session, Variant::Standard);
    let token = arm(e, ServerKind::Token, Variant::Standard);
    let all = |_| true;
    assert!(
        session.failed_where(Some("/api/me"), all) > 0,
        "session reads failed while Redis was frozen"
    );
    assert_eq!(
        token.failed_where(Some("/api/me"), all),
        0,
        "token reads never need Redis"
    );
    assert!(
        token.failed_where(Some("/auth/refresh"), all) > 0,
        "token refreshes need Redis"
    );
    for r in results().experiment(e) {
        assert!(r.errors_by_status[&503] > 0, "{:?}", r.errors_by_status);
        assert!(
            r.latency_ms.max < 3000.0,
            "nothing hangs: {:?}",
            r.latency_ms
        );
        let f = r.fault.expect("the freeze was recorded");
        assert_eq!(f.kind, FaultKind::FreezeRedis);
        // Planned a third of the way into the window, for a third of it.
        let third = r.duration_s / 3.0;
        assert!(
            f.at_s >= third - 0.5 && f.at_s <= third + 0.5,
            "frozen at {} s of {}",
            f.at_s,
            r.duration_s
        );
        let lasts = f.lasts_s.expect("thawed inside the window");
        assert!((lasts - third).abs() < 0.5, "frozen for {lasts} s");
        // Only requests in flight when Redis froze (sent in its last second) may fail.
        assert_eq!(
            r.failed_where(None, |t| t + 1.0 < f.at_s),
            0,
            "nothing failed before the freeze"
        );
        let sum = r.failed_in(None, Phase::Before)
            + r.failed_in(None, Phase::During)
            + r.failed_in(None, Phase::After);
        assert_eq!(sum, r.errors, "the timeline holds every failure");
    }
}

/// The retry grace of contract v2 keeps every user logged in through the freeze. Before
/// contract v3, without it, a token refresh cut off by the freeze ran when Redis thawed and
/// its retry was reuse: those users were logged out. Now a script that reaches Redis after its
/// request was answered does nothing, so without the grace only a rotation Redis had already
/// run when it froze (its answer stuck in the frozen process) can still end a login.
#[test]
fn the_retry_grace_keeps_users_logged_in_through_an_outage() {
    let e = Experiment::RedisOutage;
    for server in [ServerKind::Session, ServerKind::Token] {
        let r = arm(e, server, Variant::Standard);
        assert_eq!(
            r.users_logged_out,
            Some(0),
            "{}: {:?}",
            name(r),
            r.errors_by_status
        );
    }
    let no_grace = arm(e, ServerKind::Token, Variant::NoRetryGrace);
    let lost = no_grace.users_logged_out.expect("counted");
    assert!(
        lost <= 2,
        "without the grace, {lost} of {} users were logged out: refreshes answered 503 were applied late? {:?}",
        no_grace.users(),
        no_grace.errors_by_status
    );
}

/// A replica killed: sticky memory sessions lose users, Redis sessions and tokens do not.
#[test]
fn a_dead_replica_loses_only_the_sessions_it_kept_in_memory() {
    let e = Experiment::ReplicaLoss;
    assert_eq!(results().experiment(e).len(), 5);
    let sticky = arm(e, ServerKind::Session, Variant::MemoryStoreSticky);
    let tail = |t| t >= 5.0;
    assert!(
        sticky.failed_where(None, tail) > 0 && sticky.users_logged_out.unwrap() > 0,
        "users of the dead replica lost their sessions"
    );
    let kill = sticky.fault.expect("the kill was recorded");
    assert_eq!(kill.kind, FaultKind::KillReplica);
    assert_eq!(
        sticky.failed_where(None, |t| t + 1.0 < kill.at_s),
        0,
        "nothing failed before the kill, but requests in flight"
    );
    for (server, v) in [
        (ServerKind::Session, Variant::Standard),
        (ServerKind::Token, Variant::Standard),
    ] {
        let r = arm(e, server, v);
        assert!(
            r.errors * 100 <= r.requests,
            "{}: {} of {} failed",
            name(r),
            r.errors,
            r.requests
        );
        assert_eq!(
            r.failed_where(None, tail),
            0,
            "{}: failures after the kill",
            name(r)
        );
        assert_eq!(r.users_logged_out, Some(0), "{}", name(r));
    }
}

/// Experiment `latency-curve`: every group's capacity on one unbudgeted replica, then four
/// fixed-rate runs at fractions of it, each with latency from its slot and from its send.
#[test]
fn the_latency_curve_measures_every_group_at_fixed_fractions_of_its_capacity() {
    let runs: Vec<&Run> = results()
        .runs
        .iter()
        .filter(|r| r.experiment == Some(Experiment::LatencyCurve))
        .collect();
    let groups = [
        (ServerKind::Session, Variant::Standard),
        (ServerKind::Token, Variant::Standard),
        (ServerKind::Public, Variant::Standard),
        (ServerKind::Token, Variant::Denylist),
        (ServerKind::Token, Variant::Eddsa),
    ];
    for (server, v) in groups {
        let of: Vec<&&Run> = runs
            .iter()
            .filter(|r| r.server == server && r.variant() == v)
            .collect();
        let capacity = of
            .iter()
            .find(|r| r.setup.open.is_none())
            .unwrap_or_else(|| panic!("{server:?} {v:?}: a capacity run"));
        assert!(capacity.setup.unbudgeted && capacity.cpus_per_replica.is_none());
        assert_eq!(capacity.replicas, 1);
        assert!(capacity.rps > 0.0 && capacity.valid(), "{}", name(capacity));
        let mut offered: Vec<f64> = of
            .iter()
            .filter_map(|r| r.setup.open.map(|o| o.offered_rps))
            .collect();
        offered.sort_by(f64::total_cmp);
        let fractions: Vec<f64> = offered
            .iter()
            .map(|o| (o / capacity.rps * 100.0).round())
            .collect();
        let planned: Vec<f64> = loadtest::orchestrate::plan::CURVE_FRACTIONS
            .iter()
            .map(|f| (f * 100.0).round())
            .collect();
        assert_eq!(fractions, planned, "{server:?} {v:?}");
        for r in of.iter().filter(|r| r.setup.open.is_some()) {
            let o = r
                .open_model
                .as_ref()
                .expect("a fixed-rate run records its slots");
            assert!(
                o.latency_us_intended.p50 >= o.latency_us_actual.p50,
                "{}",
                name(r)
            );
            assert!(o.latency_us_actual.p50 > 0, "{}", name(r));
        }
        // The lightest load is far below capacity: achieved as offered.
        let lightest = of
            .iter()
            .filter(|r| r.setup.open.is_some())
            .min_by(|a, b| a.rps.total_cmp(&b.rps))
            .unwrap();
        assert!(
            lightest.valid(),
            "{}: {:?}",
            name(lightest),
            lightest.invalid
        );
    }
    let md = std::fs::read_to_string(run().0.join("report.md")).unwrap();
    assert!(md.contains("What a request costs a user: latency against load"));
    assert!(md.contains("What a credential check costs a user"));
}

#[test]
fn the_report_is_written() {
    let (out, results) = run();
    assert!(results.is_ok(), "{results:?}");
    for file in [
        "report.html",
        "report.md",
        "charts/throughput.svg",
        "charts/shared-store.svg",
        "charts/store-bound.svg",
        "charts/store-cluster.svg",
        "charts/store-failover-1.svg",
        "charts/store-latency.svg",
        "charts/access-token-lifetime.svg",
        "charts/latency-curve.svg",
        "charts/flow-session.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} was written");
    }
}

/// Experiment `browser`: a real Chromium decided every case. Each outcome is what this
/// project's servers and the browser's own rules make of it.
#[test]
fn a_real_browser_decides_cookies_csrf_and_xss() {
    use loadtest::model::{Attempt::*, Carrier::*, Outcome::*};
    let b = results()
        .browser
        .as_ref()
        .expect("experiment browser ran (`chromium` is installed by .ci/run)");
    assert!(
        b.browser.contains('/'),
        "browser and version: {}",
        b.browser
    );
    let case = |c, a| {
        b.case(c, a)
            .unwrap_or_else(|| panic!("{c:?} {a:?} ran: {:?}", b.cases))
    };
    let o = |c, a| case(c, a).outcome;
    // S5: a sibling subdomain is the same site; another site is not.
    for c in [SessionLax, SessionStrict, SessionNone, TokenLocalStorage] {
        assert_eq!(o(c, ApiSameSite), Worked, "{c:?}");
    }
    assert_eq!(o(TokenLocalStorage, ApiCrossSite), Worked);
    // What CORS said: the app's origin, with credentials for the cookie only.
    let me = |c, a| {
        let x = case(c, a);
        let r = x.sent.iter().rfind(|r| r.path == "/api/me").cloned();
        (x.from.clone(), r.unwrap_or_else(|| panic!("{x:?}")))
    };
    let (from, r) = me(SessionLax, ApiSameSite);
    assert!(
        r.cookie && r.allow_origin.as_ref() == Some(&from) && r.allow_credentials,
        "{r:?}"
    );
    let (from, r) = me(TokenLocalStorage, ApiCrossSite);
    assert!(r.authorization && r.allow_origin.as_ref() == Some(&from) && !r.allow_credentials);
    for c in [SessionLax, SessionStrict] {
        assert_eq!(o(c, ApiCrossSite), CookieWithheld, "{c:?}");
    }
    // SameSite=None may cross sites only where the browser accepts third-party cookies;
    // when it refuses, it says why.
    let none = case(SessionNone, ApiCrossSite);
    assert!(
        none.outcome == Worked || (none.outcome == CookieWithheld && !none.browser_said.is_empty()),
        "{none:?}"
    );
    // CSRF: a JSON PUT needs a preflight, which an unlisted origin does not pass.
    for c in [SessionLax, SessionStrict, SessionNone, TokenLocalStorage] {
        let x = case(c, CsrfFetchRoles);
        assert_eq!(x.outcome, PreflightRefused, "{c:?}");
        assert!(
            x.sent
                .iter()
                .all(|r| r.method == "OPTIONS" && r.allow_origin.is_none()),
            "{x:?}"
        );
        assert_eq!(x.victim_logged_in_after, Some(true));
    }
    for c in [SessionLax, SessionStrict] {
        // SameSite kept the cookie off the forged request, and the server's origin check
        // refused it anyway (contract v3): the forged logout's answer clears nothing, so the
        // victim stays logged in under every SameSite value.
        for a in [CsrfFormRefresh, CsrfFormLogout] {
            let x = case(c, a);
            assert_eq!(x.outcome, WithheldAndOriginRefused, "{c:?} {a:?}");
            assert!(
                !x.sent[0].cookie
                    && x.sent[0].status == 403
                    && x.sent[0].sec_fetch_site.as_deref() == Some("cross-site"),
                "{x:?}"
            );
            assert_eq!(x.victim_logged_in_after, Some(true), "{c:?} {a:?}");
        }
    }
    for a in [CsrfFormRefresh, CsrfFormLogout] {
        let x = case(SessionNone, a);
        assert_eq!(x.outcome, OriginRefused, "{a:?}");
        assert!(x.sent[0].cookie && x.sent[0].status == 403, "{x:?}");
        assert!(x.sent[0]
            .origin
            .as_deref()
            .unwrap_or_default()
            .contains("evil.attacker.test"));
        assert_eq!(x.victim_logged_in_after, Some(true));
        let t = case(TokenLocalStorage, a);
        assert_eq!(t.outcome, NothingAttached, "{a:?}");
        assert_eq!(t.victim_logged_in_after, Some(true));
    }
    assert_eq!(o(TokenMemory, CsrfFormRefresh), CookieWithheld);
    // XSS: what a script in the page can read, and what it can do anyway.
    assert_eq!(o(SessionLax, XssRead), NothingReadable);
    assert_eq!(o(SessionLax, XssAct), ActedAsUser);
    let stolen = case(TokenLocalStorage, XssRead);
    assert_eq!(stolen.outcome, CredentialStolen);
    let usable = stolen
        .stolen_usable_s
        .expect("the stolen token was watched");
    let window = (b.access_token_ttl_s + b.leeway_s) as f64;
    assert!(
        usable > 0.0 && usable <= window + 2.0,
        "{usable} s for a {window} s window"
    );
    assert_eq!(stolen.stolen_refresh_status, Some(200));
    assert_eq!(o(TokenLocalStorage, XssAct), ActedAsUser);
    assert_eq!(o(TokenMemory, XssRead), NothingReadable);
    let minted = case(TokenMemory, XssAct);
    assert_eq!(minted.outcome, ActedAsUser);
    assert!(
        minted.stolen_usable_s.is_some_and(|s| s > 0.0),
        "{minted:?}"
    );
    let csp = case(TokenLocalStorageCsp, XssRead);
    assert_eq!(csp.outcome, ScriptBlocked);
    assert!(
        csp.sent.is_empty(),
        "the blocked script fetched nothing: {csp:?}"
    );
}

/// The browser experiment's pages, certificate and profiles went with the run, and no
/// process of the run (browser, nginx, servers, Redis) outlived it.
#[test]
fn the_run_leaves_nothing_behind() {
    let (out, results) = run();
    assert!(results.is_ok(), "{results:?}");
    assert!(
        !out.join("logs/browser").exists(),
        "the browser's folder was removed"
    );
    let mark = out.display().to_string();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&mark) {
            left.push(cmdline);
        }
    }
    assert!(left.is_empty(), "still running: {left:?}");
}
