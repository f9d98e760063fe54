//! Process plumbing shared by the load tester and the contract suite, so that both start,
//! wait for and stop processes the same way:
//!
//! - [`free_port`]: a loopback port nobody listens on;
//! - [`wait_until`] / [`wait_until_blocking`]: poll a check until it passes, fails for
//!   good, or a time limit runs out (readiness checks, never bare sleeps);
//! - [`signal`]: send a signal to a process by PID (no `kill` child process, no shell);
//! - [`redis_cluster`]: join `redis-server` nodes into a Redis Cluster and wait until it serves.

pub mod redis_cluster;

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago (the OS picks it), and never handed out
/// before by this process: between this call and the caller's bind, the OS could pick the
/// same port again for another caller (two balancers with `reuseport` would then share
/// it), and a port that comes back later can meet state left by its earlier user.
pub fn free_port() -> std::io::Result<u16> {
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if hand_out(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no loopback port left that this process has not used already",
    ))
}

/// Records `port` as handed out; false when it was already. A port someone will listen on
/// without asking [`free_port`] for it (a cluster node's bus port) is recorded here too, so
/// that no later caller is given it.
fn hand_out(port: u16) -> bool {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    if given.contains(&port) {
        return false;
    }
    given.push(port);
    true
}

/// The signals this project sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask to stop (servers finish what is in flight).
    Term,
    /// Stop at once, nothing runs afterwards: a crash.
    Kill,
    /// What Ctrl-C sends.
    Int,
    /// Freeze: the process keeps its sockets open but runs nothing.
    Stop,
    /// Thaw a frozen process.
    Cont,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Int => libc::SIGINT,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `sig` to the process `pid`.
pub fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a PID"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, sig.raw()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether a process `pid` exists (a zombie not yet reaped counts as existing).
pub fn exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// One look at what is being waited for.
#[derive(Debug)]
pub enum Check<T> {
    /// It happened; here is what it produced.
    Done(T),
    /// Not yet; the text says what was seen, for the error if time runs out.
    Waiting(String),
    /// It never will (the process died, the answer was wrong): stop waiting.
    Failed(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("{what}: not done within {limit:?} (last seen: {last})")]
    TimedOut {
        what: String,
        limit: Duration,
        last: String,
    },
    #[error("{what}: {reason}")]
    Failed { what: String, reason: String },
}

/// A wait in progress: turns each look into "go on" (`None`) or the outcome.
struct Wait<'a> {
    what: &'a str,
    limit: Duration,
    deadline: Instant,
}

impl<'a> Wait<'a> {
    fn new(what: &'a str, limit: Duration) -> Self {
        Self {
            what,
            limit,
            deadline: Instant::now() + limit,
        }
    }

    /// Whether the time is up; asked before the look, so the last look still counts.
    fn timed_out(&self) -> bool {
        Instant::now() >= self.deadline
    }

    fn judge<T>(&self, look: Check<T>, timed_out: bool) -> Option<Result<T, WaitError>> {
        match look {
            Check::Done(v) => Some(Ok(v)),
            Check::Failed(reason) => Some(Err(WaitError::Failed {
                what: self.what.into(),
                reason,
            })),
            Check::Waiting(last) if timed_out => Some(Err(WaitError::TimedOut {
                what: self.what.into(),
                limit: self.limit,
                last,
            })),
            Check::Waiting(_) => None,
        }
    }

    /// How long to sleep before the next look.
    fn pause(&self, every: Duration) -> Duration {
        every.min(self.deadline.saturating_duration_since(Instant::now()))
    }
}

/// Calls `check` every `every` until it is done or failed, or `limit` has passed since
/// the first call. The check always runs at least once, and once more at the limit.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let wait = Wait::new(what, limit);
    loop {
        let timed_out = wait.timed_out();
        if let Some(outcome) = wait.judge(check().await, timed_out) {
            return outcome;
        }
        tokio::time::sleep(wait.pause(every)).await;
    }
}

/// [`wait_until`] for code that cannot await (a `Drop`, a plain thread).
pub fn wait_until_blocking<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Check<T>,
) -> Result<T, WaitError> {
    let wait = Wait::new(what, limit);
    loop {
        let timed_out = wait.timed_out();
        if let Some(outcome) = wait.judge(check(), timed_out) {
            return outcome;
        }
        std::thread::sleep(wait.pause(every));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn free_ports_can_be_bound() {
        let port = free_port().unwrap();
        assert!(port > 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[test]
    fn a_free_port_is_handed_out_once() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }

    #[tokio::test]
    async fn a_wait_ends_when_done_failed_or_out_of_time() {
        let mut n = 0;
        let got = wait_until(
            "count",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let now = n;
                async move {
                    if now == 3 {
                        Check::Done(now)
                    } else {
                        Check::Waiting(format!("{now}"))
                    }
                }
            },
        )
        .await;
        assert_eq!(got, Ok(3));
        let failed = wait_until(
            "x",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async { Check::<()>::Failed("gone".into()) },
        )
        .await;
        assert_eq!(failed.unwrap_err().to_string(), "x: gone");
        let t = Instant::now();
        let late = wait_until(
            "y",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Check::<()>::Waiting("still 503".into()) },
        )
        .await
        .unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(late.to_string().contains("still 503"), "{late}");
    }

    #[test]
    fn signals_reach_the_process() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(exists(pid));
        signal(pid, Signal::Stop).unwrap();
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        wait_until_blocking(
            "stopped",
            Duration::from_secs(5),
            Duration::from_millis(5),
            || {
                // Field 3 of /proc/PID/stat: T when stopped.
                match stat().rsplit_once(") ").map(|(_, r)| r.starts_with('T')) {
                    Some(true) => Check::Done(()),
                    _ => Check::Waiting(stat()),
                }
            },
        )
        .unwrap();
        signal(pid, Signal::Cont).unwrap();
        signal(pid, Signal::Kill).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(!exists(pid));
        assert!(
            signal(0, Signal::Term).is_err(),
            "PID 0 would mean the whole group"
        );
    }
}
