//! A Redis Cluster of real `redis-server` processes on loopback, made the way an operator
//! makes one (`redis-cli --cluster create`), for the contract suite and the load tester.
//! Whoever starts the nodes starts them with [`node_args`]; this module joins them and
//! waits until every node serves every slot.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{wait_until_blocking, Check};

/// How long a primary may be unreachable before its replica is promoted. Short, so that a
/// failover in a test or experiment happens within seconds (Redis's default is 15 s).
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// The arguments that make a `redis-server` a cluster node; its `nodes.conf` lives in the
/// node's working directory (`--dir`), so a restarted node rejoins with its identity.
pub fn node_args() -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &NODE_TIMEOUT_MS.to_string(),
        // A replica promotes itself however long it was cut off: these clusters live for
        // seconds, and losing every write since the last sync is what the experiment counts.
        "--cluster-replica-validity-factor",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The highest port a cluster node can listen on: each node also listens on its port plus
/// 10000 for the cluster bus, and `redis-server` refuses to start when that is past 65535.
const HIGHEST_NODE_PORT: u16 = u16::MAX - BUS_PORT_OFFSET;
const BUS_PORT_OFFSET: u16 = 10000;

/// A free loopback port for a cluster node whose bus port (the port plus 10000) is free as
/// well. The OS hands out ports up to 60999 here, and a node given one above 55535 would not
/// start, so [`crate::free_port`] alone is not enough. The bus port is recorded as handed
/// out: a node, replica or balancer given it later would find the bus listening there (CI
/// once saw a node's INFO reset by another node's bus).
pub fn free_node_port() -> std::io::Result<u16> {
    for _ in 0..1000 {
        let port = crate::free_port()?;
        let bus = match port.checked_add(BUS_PORT_OFFSET) {
            Some(bus) if port <= HIGHEST_NODE_PORT => bus,
            _ => continue,
        };
        if std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok() && crate::hand_out(bus) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no loopback port left for a Redis Cluster node (it needs the port and the port + 10000)",
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot run `redis-cli` ({0}); install it (Debian: `apt-get install -y redis-tools`)")]
    NoCli(std::io::Error),
    #[error("`redis-cli --cluster create` failed: {0}")]
    Create(String),
    #[error(transparent)]
    NotReady(#[from] crate::WaitError),
}

/// Joins the nodes listening on `ports` (all on 127.0.0.1) into one cluster: the first
/// `ports.len() / (replicas + 1)` become primaries with the 16384 slots split between them,
/// each with `replicas` replicas. Returns once every node says `cluster_state:ok` and sees
/// every node.
pub fn create(ports: &[u16], replicas: usize) -> Result<(), ClusterError> {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("--cluster").arg("create");
    for p in ports {
        cmd.arg(format!("127.0.0.1:{p}"));
    }
    let out = cmd
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .map_err(ClusterError::NoCli)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("[OK] All 16384 slots covered") {
        let err = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = text.lines().chain(err.lines()).rev().take(4).collect();
        return Err(ClusterError::Create(
            last.into_iter().rev().collect::<Vec<_>>().join(" | "),
        ));
    }
    wait_ok(ports, Duration::from_secs(20))
}

/// Waits until every node in `ports` says the cluster is ok and knows `ports.len()` nodes.
pub fn wait_ok(ports: &[u16], limit: Duration) -> Result<(), ClusterError> {
    wait_until_blocking(
        "every Redis Cluster node says cluster_state:ok",
        limit,
        Duration::from_millis(50),
        || {
            for p in ports {
                let info = cli(*p, &["cluster", "info"]).unwrap_or_default();
                let field = |name: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .unwrap_or("?")
                        .to_owned()
                };
                if field("cluster_state:") != "ok"
                    || field("cluster_known_nodes:") != ports.len().to_string()
                {
                    return Check::Waiting(format!(
                        "node {p}: state {}, {} nodes known",
                        field("cluster_state:"),
                        field("cluster_known_nodes:")
                    ));
                }
            }
            Check::Done(())
        },
    )?;
    Ok(())
}

/// One `redis-cli` command against the node on `port`, its output as text.
pub fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The role a node says it has now (`master` or `slave`), from `ROLE`.
pub fn role(port: u16) -> Option<String> {
    cli(port, &["role"]).and_then(|r| r.lines().next().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_port_handed_out_later_is_a_nodes_bus_port() {
        let nodes: Vec<u16> = (0..300).map(|_| free_node_port().unwrap()).collect();
        let buses: std::collections::HashSet<u16> =
            nodes.iter().map(|p| p + BUS_PORT_OFFSET).collect();
        for p in &nodes {
            assert!(
                !buses.contains(p),
                "node port {p} is another node's bus port"
            );
        }
        for _ in 0..2000 {
            let p = crate::free_port().unwrap();
            assert!(
                !buses.contains(&p),
                "{p} was handed out but is a node's bus port"
            );
        }
    }

    #[test]
    fn a_node_port_leaves_room_for_its_bus_port() {
        for _ in 0..200 {
            let port = free_node_port().unwrap();
            assert!(port <= 55535, "{port} + 10000 is past the last port");
        }
    }
}
