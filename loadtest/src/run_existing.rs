//! `loadtest run`: one measurement against a deployment that already runs.

use std::path::PathBuf;

use crate::cli::RunArgs;
use crate::compare::scenarios_for;
use crate::measure::{measure, Plan, Target};
use crate::probe::Pids;
use crate::results::{self, Results, SCHEMA_VERSION};
use crate::{env_info, summary};

pub async fn run(args: RunArgs) -> anyhow::Result<PathBuf> {
    let m = args.measure.effective();
    let url = args.target.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--target must be an http(s) URL, not `{url}`"
    );
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let health = http
        .get(format!("{url}/healthz"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} does not answer: {e}"))?;
    anyhow::ensure!(
        health.status() == 200,
        "{url}/healthz answered {}",
        health.status()
    );
    let stamp = env_info::utc_stamp();
    let out = results::out_dir(m.out.as_deref(), &stamp);
    let mut env = env_info::collect("run", &stamp);
    env.cpu_budget_method = "unknown (existing deployment)".into();
    env.config.insert("target".into(), url.clone());
    env.config.insert("users".into(), m.users.to_string());
    let mut results = Results {
        schema_version: SCHEMA_VERSION,
        environment: env,
        runs: Vec::new(),
        token_anatomy: None,
        revocation: None,
    };
    let target = Target {
        url: url.clone(),
        budget: None,
        server: args.server,
        pids: Pids {
            loadgen: std::process::id(),
            ..Pids::default()
        },
        redis_url: args.redis_url.clone(),
        replica_urls: args
            .replica_urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect(),
        lb_workers: 1,
    };
    let replicas = args.replica_urls.len().max(1) as u32;
    let wanted = scenarios_for(args.server, &m.scenarios);
    anyhow::ensure!(
        !wanted.is_empty(),
        "none of the chosen scenarios applies to --server {}",
        args.server.name()
    );
    println!("{}", summary::header());
    for (i, scenario) in wanted.iter().enumerate() {
        let plan = Plan {
            label: format!(
                "[{}/{}] {} {}",
                i + 1,
                wanted.len(),
                args.server.name(),
                scenario.name()
            ),
            scenario: *scenario,
            users: m.users,
            warmup: m.warmup.0,
            duration: m.duration.0,
            refresh_every: m.refresh_every,
            replicas,
            cpus_per_replica: None,
            oversubscribed: false,
            fault: None,
        };
        match measure(&target, &plan).await {
            Ok((mut run, note)) => {
                // Only this process is visible: no replica, Redis or balancer CPU.
                run.bottleneck = None;
                println!("{}", summary::line(&run));
                if let Some(n) = note {
                    results.environment.notes.push(n);
                }
                results.runs.push(run);
            }
            Err(e) => results
                .environment
                .notes
                .push(format!("{}: failed: {e:#}", plan.label)),
        }
        results.write(&out)?;
    }
    results.environment.notes.push(
        "CPU of the replicas, Redis and the balancer is not visible from here: those figures are 0"
            .into(),
    );
    let path = results.write(&out)?;
    if m.out.is_none() {
        results::point_latest(&out);
    }
    anyhow::ensure!(
        !results.runs.is_empty(),
        "no run succeeded: {:?}",
        results.environment.notes
    );
    println!("\nresults: {}", path.display());
    crate::report::write(&results, &out)?;
    Ok(out.join("report.html"))
}
