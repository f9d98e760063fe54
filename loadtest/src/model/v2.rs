//! Reading schema version 2, by rewriting its JSON into version 3 before it is deserialised.
//!
//! Version 2 stored CPU it could not see as 0: the replicas', Redis's and nginx's CPU in a
//! deployment measured from outside (`run`: from another machine, or from inside the
//! loadtest container). Version 3 stores such a figure as `null`, so nothing is concluded
//! from it; the mode the run was made in says which figures were not seen (`compare --via
//! compose` reads the containers' processes from the host, and saw them).

use serde_json::{json, Value};

pub fn upgrade(value: &mut Value) -> anyhow::Result<()> {
    let mode = value
        .pointer("/environment/mode")
        .and_then(Value::as_str)
        .unwrap_or("local")
        .to_owned();
    if mode == "existing" {
        if let Some(runs) = value.get_mut("runs").and_then(Value::as_array_mut) {
            for run in runs {
                for figure in ["cpu_us_per_request", "cpu_cores_used"] {
                    if let Some(c) = run.get_mut(figure).and_then(Value::as_object_mut) {
                        for component in ["replicas", "redis", "lb"] {
                            c.insert(component.into(), Value::Null);
                        }
                    }
                }
            }
        }
    }
    value["schema_version"] = json!(super::SCHEMA_VERSION);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn cpu_not_seen_in_version_2_becomes_not_visible() {
        let raw = br#"{"schema_version": 2, "environment": {"mode": "existing"}, "runs": [
            {"server": "token", "scenario": "read", "replicas": 1, "users": 1, "duration_s": 1,
             "rps": 1, "requests": 1, "errors": 0, "errors_by_status": {},
             "latency_ms": {"p50": 1, "p90": 1, "p99": 1, "max": 1}, "latency_ms_by_route": {},
             "redis_commands_per_request": null, "requests_per_replica": [],
             "cpu_us_per_request": {"replicas": 0, "redis": 0, "lb": 0, "loadgen": 12.5},
             "cpu_cores_used": {"replicas": 0, "redis": 0, "lb": 0, "loadgen": 0.5},
             "peak_memory_bytes": {"replica_max": 0, "redis": 0, "lb": 0, "loadgen": 1},
             "redis_bytes_per_user": null, "credential_bytes": 10, "cpus_per_replica": null,
             "oversubscribed": false, "bottleneck": null}]}"#;
        let r = Results::from_json(raw).unwrap();
        let c = &r.runs[0].cpu_us_per_request;
        assert_eq!((c.replicas, c.redis, c.lb), (None, None, None));
        assert_eq!(c.loadgen, Some(12.5));
        assert_eq!(r.runs[0].round, 1);
        assert_eq!(r.schema_version, SCHEMA_VERSION);
    }
}
