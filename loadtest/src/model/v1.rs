//! Reading schema version 1 (the results committed before version 2), by rewriting its JSON
//! into version 2 before it is deserialised.
//!
//! Version 1 stored labels as free text and the fault as prose rounded to whole seconds
//! ("Redis frozen from 7 s to 13 s"). The fault times it did not record are taken from its
//! plan (the fault began a third of the way into the window; a freeze lasted another
//! third), and a note in the environment says so, since version 2 records them as they
//! happen.

use serde_json::{json, Value};

pub const PLANNED_FAULT_NOTE: &str = "This results.json is schema version 1, which did not record \
     when faults happened: fault windows are taken from its plan (from a third to two thirds of \
     the window), accurate to about 50 ms.";

/// The version 1 (experiment, variant) labels and their version 2 variant.
fn variant(label: &str) -> anyhow::Result<&'static str> {
    Ok(match label {
        "memory store, round robin" => "memory-store",
        "memory store, sticky" | "session, memory store, sticky" => "memory-store-sticky",
        "Redis store, round robin" | "session, Redis store" | "session" | "token" => "standard",
        "EdDSA" => "eddsa",
        "token with denylist" => "denylist",
        other => anyhow::bail!("schema 1: unknown variant `{other}`"),
    })
}

pub fn upgrade(value: &mut Value) -> anyhow::Result<()> {
    let env = value
        .get_mut("environment")
        .ok_or_else(|| anyhow::anyhow!("no environment"))?;
    let via_compose = env.pointer("/config/via").is_some();
    let mode = match env.get("mode").and_then(Value::as_str) {
        Some("run") => "existing",
        _ if via_compose => "compose",
        _ => "local",
    };
    env["mode"] = json!(mode);
    let mut planned_faults = false;
    if let Some(runs) = value.get_mut("runs").and_then(Value::as_array_mut) {
        for run in runs {
            let label = run
                .get("variant")
                .and_then(Value::as_str)
                .map(str::to_owned);
            run["variant"] = json!(match label {
                Some(l) => variant(&l)?,
                None => "standard",
            });
            if let Some(fault) = run.get("fault").and_then(Value::as_str).map(str::to_owned) {
                let window = run.get("duration_s").and_then(Value::as_f64).unwrap_or(0.0);
                let third = window / 3.0;
                run["fault"] = if fault.starts_with("Redis frozen") {
                    json!({"kind": "freeze-redis", "at_s": third, "lasts_s": third})
                } else if fault.starts_with("replica") {
                    json!({"kind": "kill-replica", "at_s": third, "lasts_s": null})
                } else {
                    anyhow::bail!("schema 1: unknown fault `{fault}`")
                };
                planned_faults = true;
            }
        }
    }
    if planned_faults {
        if let Some(notes) = value
            .pointer_mut("/environment/notes")
            .and_then(Value::as_array_mut)
        {
            notes.push(json!(PLANNED_FAULT_NOTE));
        }
    }
    value["schema_version"] = json!(super::SCHEMA_VERSION);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::PLANNED_FAULT_NOTE;

    const FIXTURE: &str = include_str!("../../tests/fixtures/results-v1.json");

    #[test]
    fn version_1_is_read_with_typed_labels() {
        let r = Results::from_json(FIXTURE.as_bytes()).unwrap();
        assert_eq!(r.schema_version, SCHEMA_VERSION);
        assert_eq!(r.environment.mode, Mode::Local);
        let outage = r.experiment(Experiment::RedisOutage);
        assert_eq!(outage.len(), 2);
        for run in outage {
            let f = run.fault.expect("the freeze");
            assert_eq!(f.kind, FaultKind::FreezeRedis);
            assert!((f.at_s - run.duration_s / 3.0).abs() < 1e-9);
            assert_eq!(run.variant(), Variant::Standard);
        }
        assert!(r
            .arm(
                Experiment::SharedStore,
                ServerKind::Session,
                Variant::MemoryStoreSticky
            )
            .is_some());
        assert!(r
            .arm(Experiment::Signing, ServerKind::Token, Variant::Eddsa)
            .is_some());
        assert!(r.environment.notes.iter().any(|n| n == PLANNED_FAULT_NOTE));
        let sweep = r.sweep(ServerKind::Token, Scenario::Read);
        assert!(!sweep.is_empty());
        assert!(sweep.iter().all(|x| x.variant() == Variant::Standard));
    }

    #[test]
    fn an_unknown_label_is_an_error_not_a_guess() {
        let raw = r#"{"schema_version": 1, "environment": {"mode": "compare"},
            "runs": [{"variant": "something else"}]}"#;
        let err = Results::from_json(raw.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("something else"), "{err}");
    }
}
