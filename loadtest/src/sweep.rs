//! Where measured runs are recorded: printed as they finish, kept in results.json after
//! each one (so an interrupted sweep loses nothing), then turned into the report.

use std::path::PathBuf;

use crate::cli::Measure;
use crate::compare::scenarios_for;
use crate::measure::{measure, Plan, Target};
use crate::results::{self, Environment, Results, Run, SCHEMA_VERSION};
use crate::summary;

pub struct Sweep {
    pub results: Results,
    out: PathBuf,
    m: Measure,
    /// Runs started so far, for the `[n/total]` in each label.
    done: usize,
    /// How many runs there will be, when known.
    pub total: Option<usize>,
}

impl Sweep {
    /// Fails at once when the output folder cannot be written, before anything is measured;
    /// then prints the summary table's header.
    pub fn new(environment: Environment, out: PathBuf, m: &Measure) -> anyhow::Result<Self> {
        let results = Results {
            schema_version: SCHEMA_VERSION,
            environment,
            runs: Vec::new(),
            token_anatomy: None,
            revocation: None,
        };
        results.write(&out)?;
        println!("{}", summary::header());
        Ok(Self {
            results,
            out,
            m: m.clone(),
            done: 0,
            total: None,
        })
    }

    pub fn next_label(&mut self, what: &str) -> String {
        self.done += 1;
        match self.total {
            Some(total) => format!("[{}/{total}] {what}", self.done),
            None => format!("[{}] {what}", self.done),
        }
    }

    /// Keeps one run's outcome: the run, or a note saying why there is none.
    pub fn record(
        &mut self,
        label: &str,
        outcome: anyhow::Result<(Run, Option<String>)>,
        variant: Option<&(String, String)>,
    ) -> anyhow::Result<()> {
        match outcome {
            Ok((mut run, note)) => {
                let suffix = variant.map(|(_, v)| format!(" [{v}]")).unwrap_or_default();
                if let Some((experiment, variant)) = variant {
                    run.experiment = Some(experiment.clone());
                    run.variant = Some(variant.clone());
                }
                println!("{}{suffix}", summary::line(&run));
                if let Some(note) = note {
                    self.results
                        .environment
                        .notes
                        .push(format!("{label}: {note}"));
                }
                self.results.runs.push(run);
            }
            Err(e) => {
                eprintln!("{label}: failed: {e:#}");
                self.results
                    .environment
                    .notes
                    .push(format!("{label}: failed: {e:#}"));
            }
        }
        self.results.write(&self.out)?;
        Ok(())
    }

    /// Every chosen scenario that applies to `target.server`, at `replicas` replicas.
    /// `adjust` corrects what this vantage point cannot see (e.g. no replica CPU).
    pub async fn measure_group(
        &mut self,
        target: &Target<'_>,
        replicas: u32,
        cpus_per_replica: Option<f64>,
        oversubscribed: bool,
        adjust: impl Fn(&mut Run),
    ) -> anyhow::Result<()> {
        for scenario in scenarios_for(target.server, &self.m.scenarios) {
            let label = self.next_label(&format!(
                "{} {} x{replicas}",
                target.server.name(),
                scenario.name()
            ));
            let plan = Plan {
                label: label.clone(),
                scenario,
                users: self.m.users,
                warmup: self.m.warmup.0,
                duration: self.m.duration.0,
                refresh_every: self.m.refresh_every,
                replicas,
                cpus_per_replica,
                oversubscribed,
                fault: None,
            };
            let outcome = measure(target, &plan).await.map(|(mut run, note)| {
                adjust(&mut run);
                (run, note)
            });
            self.record(&label, outcome, None)?;
        }
        Ok(())
    }

    pub fn save(&self) -> anyhow::Result<PathBuf> {
        self.results.write(&self.out)
    }

    /// Writes results.json and the report; `reports/latest` points here when the folder
    /// was chosen for the user. Returns the report's path.
    pub fn finish(self, point_latest: bool) -> anyhow::Result<PathBuf> {
        let path = self.save()?;
        if point_latest {
            results::point_latest(&self.out);
        }
        anyhow::ensure!(
            !self.results.runs.is_empty(),
            "no run succeeded; see the notes in {}",
            path.display()
        );
        println!("\nresults: {}", path.display());
        crate::report::write(&self.results, &self.out)?;
        for note in &self.results.environment.notes {
            println!("note: {note}");
        }
        Ok(self.out.join("report.html"))
    }
}
