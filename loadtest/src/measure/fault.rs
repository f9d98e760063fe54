//! Where faults are injected: a signal to a process this tool started, or the Docker
//! Engine's pause and kill of a container, sent during the measured window, and the times
//! it was really sent recorded for the results (never re-derived from the plan).

use std::time::{Duration, Instant};

use plumbing::Signal;

use crate::infra::engine::Engine;
use crate::model::{Fault, FaultKind};

/// What a fault hits.
#[derive(Debug, Clone)]
pub enum Victim {
    /// A process of this machine: SIGSTOP / SIGCONT, SIGKILL.
    Process(u32),
    /// A container: paused and unpaused (its cgroup frozen, as SIGSTOP freezes a process),
    /// or killed.
    Container { engine: Engine, id: String },
}

impl Victim {
    async fn hit(&self, kind: FaultKind) -> anyhow::Result<()> {
        match (self, kind) {
            (Self::Process(pid), _) => {
                let sig = match kind {
                    FaultKind::FreezeRedis => Signal::Stop,
                    FaultKind::KillReplica | FaultKind::KillPrimary => Signal::Kill,
                };
                plumbing::signal(*pid, sig)
                    .map_err(|e| anyhow::anyhow!("{sig:?} to process {pid}: {e}"))
            }
            (Self::Container { engine, id }, FaultKind::FreezeRedis) => engine.pause(id).await,
            (Self::Container { engine, id }, _) => engine.kill(id).await,
        }
    }

    async fn thaw(&self) -> anyhow::Result<()> {
        match self {
            Self::Process(pid) => plumbing::signal(*pid, Signal::Cont)
                .map_err(|e| anyhow::anyhow!("SIGCONT to process {pid}: {e}")),
            Self::Container { engine, id } => engine.unpause(id).await,
        }
    }
}

/// A fault to inject: what, when after the window opens, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    pub kind: FaultKind,
    pub at: Duration,
    /// How long a freeze lasts (a killed replica stays dead).
    pub lasts: Duration,
}

/// A planned fault against one process, stepped forward as the window runs.
pub struct Injector {
    plan: FaultPlan,
    victim: Victim,
    /// For a killed Redis primary: the port of its replica, watched until it says it is
    /// the primary now.
    successor: Option<u16>,
    began: Option<f64>,
    ended: Option<f64>,
}

impl Injector {
    /// `victim` is what the fault hits: Redis for a freeze, replica 1 for a kill, the
    /// first primary for a failover (whose replica listens on `successor`).
    pub fn new(plan: FaultPlan, victim: Victim, successor: Option<u16>) -> Self {
        Self {
            plan,
            victim,
            successor,
            began: None,
            ended: None,
        }
    }

    /// Whether the fault has been injected.
    pub fn began(&self) -> bool {
        self.began.is_some()
    }

    /// Whether the fault is due at `t` after the window opened and not injected yet.
    pub fn due(&self, t: std::time::Duration) -> bool {
        self.began.is_none() && t >= self.plan.at
    }

    /// For a failover: whether the replica has taken over (then the fault has ended).
    pub fn failed_over(&self) -> bool {
        self.plan.kind == FaultKind::KillPrimary && self.ended.is_some()
    }

    /// Injects or lifts the fault when its time has come; `opened` is when the window
    /// opened.
    pub async fn step(&mut self, opened: Instant) -> anyhow::Result<()> {
        let t = opened.elapsed();
        if self.began.is_none() && t >= self.plan.at {
            self.victim.hit(self.plan.kind).await?;
            self.began = Some(opened.elapsed().as_secs_f64());
        }
        // The time the replica said it had taken over, as seen (every step, 50 ms apart).
        if let (FaultKind::KillPrimary, Some(_), None, Some(port)) =
            (self.plan.kind, self.began, self.ended, self.successor)
        {
            if plumbing::redis_cluster::role(port).as_deref() == Some("master") {
                self.ended = Some(opened.elapsed().as_secs_f64());
            }
            return Ok(());
        }
        if t >= self.plan.at + self.plan.lasts {
            self.lift(opened).await?;
        }
        Ok(())
    }

    /// A freeze was injected and not lifted yet.
    fn freeze_in_force(&self) -> bool {
        self.plan.kind == FaultKind::FreezeRedis && self.began.is_some() && self.ended.is_none()
    }

    /// Lifts a freeze still in force (at the end of the window, or on the way out).
    pub async fn lift(&mut self, opened: Instant) -> anyhow::Result<()> {
        if self.freeze_in_force() {
            self.victim.thaw().await?;
            self.ended = Some(opened.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// The fault as it happened, if it happened.
    pub fn recorded(&self) -> Option<Fault> {
        let at_s = self.began?;
        Some(Fault {
            kind: self.plan.kind,
            at_s,
            lasts_s: self.ended.map(|e| e - at_s),
        })
    }
}

impl Drop for Injector {
    /// Never leave Redis frozen behind, whatever stopped the run.
    fn drop(&mut self) {
        if !self.freeze_in_force() {
            return;
        }
        match &self.victim {
            Victim::Process(pid) => {
                let _ = plumbing::signal(*pid, Signal::Cont);
            }
            // Drop cannot wait: the unpause goes on the runtime this ran on.
            Victim::Container { .. } => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let victim = self.victim.clone();
                    rt.spawn(async move { victim.thaw().await });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[tokio::test]
    async fn a_freeze_is_recorded_as_it_happened() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let plan = FaultPlan {
            kind: FaultKind::FreezeRedis,
            at: Duration::from_millis(30),
            lasts: Duration::from_millis(30),
        };
        let mut inj = Injector::new(plan, Victim::Process(child.id()), None);
        let opened = Instant::now();
        inj.step(opened).await.unwrap();
        assert!(inj.recorded().is_none(), "not yet");
        while inj.recorded().and_then(|f| f.lasts_s).is_none() {
            assert!(opened.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
            inj.step(opened).await.unwrap();
        }
        let f = inj.recorded().unwrap();
        assert!(f.at_s >= 0.03 && f.at_s < 1.0, "{f:?}");
        assert!(
            f.at_s + f.lasts_s.unwrap() >= 0.06,
            "lifted after at + lasts: {f:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
