//! Where measured runs are recorded: printed as they finish, kept in results.json after
//! each one (so an interrupted sweep loses nothing), with progress over the whole sweep,
//! then turned into the report. The one place notes are added to the results.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::{self, Environment, Results, Run};
use crate::report::summary;

pub struct Journal {
    results: Results,
    out: PathBuf,
    /// Whether `reports/latest` should point at `out` (the folder was chosen for the user).
    point_latest: bool,
    /// Runs expected in all, and how long they are planned to take.
    total: usize,
    planned_total: Duration,
    /// Runs started so far, and the planned time of those finished.
    started: usize,
    planned_done: Duration,
    began: Instant,
    finished: bool,
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

impl Journal {
    /// Fails at once when the output folder cannot be written, before anything is measured;
    /// then prints the summary table's header.
    pub fn new(environment: Environment, out: PathBuf, point_latest: bool) -> anyhow::Result<Self> {
        let results = Results::new(environment);
        results.write(&out)?;
        println!("{}", summary::header());
        Ok(Self {
            results,
            out,
            point_latest,
            total: 0,
            planned_total: Duration::ZERO,
            started: 0,
            planned_done: Duration::ZERO,
            began: Instant::now(),
            finished: false,
        })
    }

    pub fn results(&self) -> &Results {
        &self.results
    }

    /// Announces `runs` more runs, planned to take `planned` in all.
    pub fn expect(&mut self, runs: usize, planned: Duration) {
        self.total += runs;
        self.planned_total += planned;
    }

    /// What is left, scaled by how the runs so far compared with their plan (set-up and
    /// start-up take time too); the plan itself before anything finished.
    fn eta(&self) -> Duration {
        let left = self.planned_total.saturating_sub(self.planned_done);
        if self.planned_done.is_zero() {
            return left;
        }
        left.mul_f64(self.began.elapsed().as_secs_f64() / self.planned_done.as_secs_f64())
    }

    /// Starts the next run: prints which it is of how many, the time so far and an
    /// estimate of the time left, and returns its label.
    pub fn begin(&mut self, what: &str) -> String {
        self.started += 1;
        let label = format!("[{}/{}] {what}", self.started, self.total.max(self.started));
        eprintln!(
            "{label}  ({} elapsed, about {} left)",
            clock(self.began.elapsed()),
            clock(self.eta())
        );
        label
    }

    /// Keeps one run's outcome: the run, or a note saying why there is none; then saves.
    pub fn record(
        &mut self,
        label: &str,
        planned: Duration,
        outcome: anyhow::Result<(Run, Option<String>)>,
    ) -> anyhow::Result<()> {
        self.planned_done += planned;
        match outcome {
            Ok((run, note)) => {
                println!("{}", summary::line(&run));
                if let Some(note) = note {
                    self.note(format!("{label}: {note}"));
                }
                self.results.runs.push(run);
            }
            Err(e) => {
                eprintln!("{label}: failed: {e:#}");
                self.note(format!("{label}: failed: {e:#}"));
            }
        }
        self.save()?;
        Ok(())
    }

    /// A note the reader needs, once.
    pub fn note(&mut self, text: String) {
        if !self.results.environment.notes.contains(&text) {
            self.results.environment.notes.push(text);
        }
    }

    /// Changes the results (an experiment's outcome, a setting learned late), then saves.
    pub fn update(&mut self, change: impl FnOnce(&mut Results)) -> anyhow::Result<()> {
        change(&mut self.results);
        self.save().map(|_| ())
    }

    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = self.results.write(&self.out)?;
        if self.point_latest {
            model::point_latest(&self.out);
        }
        Ok(path)
    }

    /// Records why the sweep stopped early and keeps what it measured.
    pub fn abort(mut self, error: &anyhow::Error) {
        self.finished = true;
        let done = self.results.runs.len();
        self.note(format!(
            "stopped early after {done} of {} runs: {error:#}",
            self.total
        ));
        let _ = self.save();
    }

    /// Writes results.json and the report. Returns the report's path.
    pub fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.finished = true;
        let path = self.save()?;
        anyhow::ensure!(
            !self.results.runs.is_empty(),
            "no run succeeded; see the notes in {}",
            path.display()
        );
        println!(
            "\nresults: {} ({} runs in {})",
            path.display(),
            self.results.runs.len(),
            clock(self.began.elapsed())
        );
        crate::report::write(&self.results, &self.out)?;
        for note in &self.results.environment.notes {
            println!("note: {note}");
        }
        Ok(self.out.join("report.html"))
    }
}

impl Drop for Journal {
    /// Interrupted (Ctrl-C drops the work in progress): say so in results.json, which
    /// keeps every run that finished.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let done = self.results.runs.len();
        self.note(format!(
            "interrupted after {done} of {} runs: results.json holds the runs that finished \
             (`loadtest report {}` builds their report)",
            self.total,
            self.out.display()
        ));
        if self.save().is_ok() {
            eprintln!(
                "\ninterrupted: {done} finished runs kept in {}",
                self.out.join("results.json").display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_as_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_secs(75)), "1m15s");
        assert_eq!(clock(Duration::from_secs(3725)), "1h02m05s");
    }

    #[test]
    fn an_interrupted_journal_keeps_its_runs_and_says_so() {
        let dir = std::env::temp_dir().join(format!("lt-journal-{}", uuid::Uuid::new_v4()));
        let mut j = Journal::new(Environment::default(), dir.clone(), false).unwrap();
        j.expect(3, Duration::from_secs(30));
        let label = j.begin("token read x1");
        assert_eq!(label, "[1/3] token read x1");
        let run = Run::new(
            crate::model::ServerKind::Token,
            crate::model::Scenario::Read,
        );
        j.record(&label, Duration::from_secs(10), Ok((run, None)))
            .unwrap();
        assert!(j.eta() > Duration::ZERO);
        drop(j);
        let back = Results::read(&dir.join("results.json")).unwrap();
        assert_eq!(back.runs.len(), 1);
        assert!(back.environment.notes[0].starts_with("interrupted after 1 of 3 runs"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
