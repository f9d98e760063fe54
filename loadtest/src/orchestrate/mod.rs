//! Turning a plan into measured runs. The plan (`plan.rs`) says which groups to start and
//! what to run against them; a [`Deployment`] brings each group up (processes on this
//! machine, compose services, or a deployment that already runs); [`execute`], the one run
//! path all three share, measures every scenario of every job and keeps the outcome in
//! the [`Journal`].

pub mod calibrate;
pub mod compose;
pub mod existing;
pub mod journal;
pub mod local;
pub mod plan;
pub mod probing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::{CompareArgs, Effective as Measure, Via};
use crate::infra::cpu_budget::CpuBudget;
use crate::infra::procfs;
use crate::infra::topology::Group;
use crate::measure::{measure, Target};
pub use journal::Journal;
use plan::Job;

/// A group ready to be measured.
pub struct Stage<'a> {
    pub target: Target,
    /// Held to during measured windows only: the replicas', and Redis's where it has one.
    pub budgets: Vec<&'a CpuBudget>,
    pub cpus_per_replica: Option<f64>,
    /// The replicas ask for more CPUs than the machine has.
    pub oversubscribed: bool,
    /// The processes started for this stage, stopped when it is dropped.
    pub group: Option<Group>,
}

/// Somewhere the planned groups run.
pub(crate) trait Deployment {
    /// Gets `job`'s group ready and says where to send the load.
    async fn stage(&mut self, job: &Job) -> anyhow::Result<Stage<'_>>;

    /// Whether its runs keep their latency histograms: `loadtest run`'s do, since several
    /// generators' results are merged from them.
    fn keeps_histograms(&self) -> bool {
        false
    }
}

/// Every scenario of every job, measured and kept in `journal`.
pub(crate) async fn execute(
    deployment: &mut impl Deployment,
    jobs: &[Job],
    m: &Measure,
    journal: &mut Journal,
) -> anyhow::Result<()> {
    announce(jobs, m, journal);
    execute_announced(deployment, jobs, m, journal).await
}

/// Tells the journal how many runs `jobs` hold and how long they should take.
pub(crate) fn announce(jobs: &[Job], m: &Measure, journal: &mut Journal) {
    journal.expect(
        jobs.iter().map(|j| j.scenarios.len()).sum(),
        jobs.iter()
            .map(|j| j.planned_run_time(m) * j.scenarios.len() as u32)
            .sum(),
    );
}

/// [`execute`] for jobs already announced.
pub(crate) async fn execute_announced(
    deployment: &mut impl Deployment,
    jobs: &[Job],
    m: &Measure,
    journal: &mut Journal,
) -> anyhow::Result<()> {
    let cpus = procfs::available_cpus();
    let keeps_histograms = deployment.keeps_histograms();
    for job in jobs {
        let stage = deployment.stage(job).await?;
        if stage.oversubscribed {
            journal.note(format!(
                "{} replicas ask for more CPUs than the machine's {cpus}: those runs are marked \
                 oversubscribed",
                job.replicas
            ));
        }
        for &scenario in &job.scenarios {
            let label = journal.begin(&job.describe(scenario));
            let mut plan = job.run_plan(
                scenario,
                m,
                label,
                stage.cpus_per_replica,
                stage.oversubscribed,
            );
            plan.keep_histograms = keeps_histograms;
            let outcome = measure(&stage.target, &stage.budgets, &plan).await;
            journal.record(&plan.label, job.planned_run_time(m), outcome)?;
        }
    }
    Ok(())
}

/// The settings of the measurement itself, the same for every way of running.
pub fn measurement_config(m: &Measure) -> BTreeMap<String, String> {
    [
        ("users", m.users.to_string()),
        ("duration_s", m.duration.0.as_secs_f64().to_string()),
        ("warmup_s", m.warmup.0.as_secs_f64().to_string()),
        ("refresh_every", m.refresh_every.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What a comparison's environment records wherever it ran: the measurement's settings, its
/// rounds, and the servers' settings the report states (a token's revocation window is its
/// lifetime plus the leeway; the login runs' cost is the password hash).
fn compare_config(args: &CompareArgs, m: &Measure) -> BTreeMap<String, String> {
    let mut config = measurement_config(m);
    for (k, v) in [
        ("rounds", args.rounds().to_string()),
        ("JWT_ALG", "HS256".into()),
        ("JWT_LEEWAY_S", plan::LEEWAY_S.to_string()),
        ("ACCESS_TOKEN_TTL", "900".into()),
        ("SESSION_STORE", "redis".into()),
        (
            "password_hash",
            auth_core::password::PasswordHasher::describe(),
        ),
    ] {
        config.insert(k.to_string(), v);
    }
    config
}

/// `loadtest compare`: local processes, or the compose services.
pub async fn compare(args: CompareArgs) -> anyhow::Result<PathBuf> {
    match args.via {
        Via::Local => local::compare(args).await,
        Via::Compose => compose::compare(args).await,
    }
}

/// The end of every way of running: the report when the work succeeded, else a note of
/// why it stopped (results.json keeps what was measured).
pub(crate) fn conclude(journal: Journal, outcome: anyhow::Result<()>) -> anyhow::Result<PathBuf> {
    match outcome {
        Ok(()) => journal.finish(),
        Err(e) => {
            journal.abort(&e);
            Err(e)
        }
    }
}

/// A local-only secret (a session key, a JWT secret, a password) made for one run.
pub(crate) fn secret(len: usize) -> String {
    use rand::distributions::{Alphanumeric, Distribution};
    Alphanumeric
        .sample_iter(rand::thread_rng())
        .take(len)
        .map(char::from)
        .collect()
}
