//! `loadtest merge`: the results of several load generators that measured one deployment at
//! the same time (`run --instance I/N`), as one. goose has had no distributed mode since
//! 0.17, so a deployment bigger than one machine's load is measured this way.
//!
//! What each generator counted is summed (requests, errors, users, requests per second:
//! the windows ran at once); latency comes from the generators' HDR histograms added
//! together, never from averaged percentiles. What each generator saw of the deployment
//! itself (the replicas' request counters, Redis's commands, CPU where visible) was the
//! same system seen at the same time: averaged, then divided by all generators' requests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::recorder::{add_into, decode, encode, latency_of, percentiles};
use crate::model::{
    CpuPerRequest, Histograms, Latency, OpenLoad, OpenModel, Results, Run, Scenario, ServerKind,
    Variant,
};

/// What makes two generators' runs the same run.
type Key = (ServerKind, Scenario, Variant, u32, u32);

fn key(r: &Run) -> Key {
    (r.server, r.scenario, r.variant(), r.replicas, r.round)
}

/// Checks that `inputs` are the N generators of one measurement and merges them.
pub fn merge(inputs: &[(PathBuf, Results)]) -> anyhow::Result<Results> {
    anyhow::ensure!(
        inputs.len() >= 2,
        "merge needs the folders of at least two generators"
    );
    let mut seen = BTreeMap::new();
    for (dir, r) in inputs {
        let i = r.environment.instance.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: not one of several generators (it was not run with --instance I/N)",
                dir.display()
            )
        })?;
        if let Some(other) = seen.insert(i.index, dir) {
            anyhow::bail!(
                "{} and {} are both generator {i}",
                other.display(),
                dir.display()
            );
        }
    }
    let of: Vec<u32> = inputs
        .iter()
        .filter_map(|(_, r)| r.environment.instance.map(|i| i.of))
        .collect();
    anyhow::ensure!(
        of.iter().all(|n| *n == of[0]),
        "the generators disagree on how many there were ({of:?})"
    );
    let missing: Vec<String> = (1..=of[0])
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", of[0]))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "generator {} is missing: merge all {} folders",
        missing.join(", "),
        of[0]
    );

    let first = &inputs[0].1;
    let mut merged = Results::new(first.environment.clone());
    merged.environment.instance = None;
    merged.environment.merged_from = inputs
        .iter()
        .map(|(dir, r)| {
            format!(
                "generator {} ({}, {} CPUs, started {}): {}",
                r.environment.instance.map_or("?".into(), |i| i.to_string()),
                r.environment.cpu_model,
                r.environment.cpus,
                r.environment.started_at,
                dir.display()
            )
        })
        .collect();
    merged.environment.notes.push(format!(
        "merged from {} load generators that ran at once: counts are summed, latency comes from their \
         histograms added together",
        inputs.len()
    ));
    for r in &first.runs {
        let k = key(r);
        let parts: Vec<&Run> = inputs
            .iter()
            .filter_map(|(_, res)| res.runs.iter().find(|x| key(x) == k))
            .collect();
        if parts.len() < inputs.len() {
            merged.environment.notes.push(format!(
                "{} {} x{}: measured by {} of the {} generators; left out",
                r.server.name(),
                r.scenario.name(),
                r.replicas,
                parts.len(),
                inputs.len()
            ));
            continue;
        }
        merged.runs.push(merge_runs(&parts)?);
    }
    anyhow::ensure!(
        !merged.runs.is_empty(),
        "the generators have no run in common"
    );
    Ok(merged)
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

/// One figure of the deployment that every generator read: their mean where all saw it.
fn seen_by_all(parts: &[&Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let v: Option<Vec<f64>> = parts.iter().map(|r| f(r)).collect();
    v.and_then(|v| mean(v.into_iter()))
}

fn merge_runs(parts: &[&Run]) -> anyhow::Result<Run> {
    let mut out = parts[0].clone();
    let sum = |f: &dyn Fn(&Run) -> u64| parts.iter().map(|r| f(r)).sum::<u64>();
    out.requests = sum(&|r| r.requests);
    out.errors = sum(&|r| r.errors);
    out.setup.users = parts.iter().map(|r| r.users()).sum();
    out.users_logged_out = parts
        .iter()
        .map(|r| r.users_logged_out)
        .sum::<Option<u32>>();
    out.rps = parts.iter().map(|r| r.rps).sum();
    out.duration_s = mean(parts.iter().map(|r| r.duration_s)).unwrap_or(0.0);
    out.errors_by_status = BTreeMap::new();
    out.requests_by_route = BTreeMap::new();
    for r in parts {
        for (s, n) in &r.errors_by_status {
            *out.errors_by_status.entry(*s).or_default() += n;
        }
        for (route, n) in &r.requests_by_route {
            *out.requests_by_route.entry(route.clone()).or_default() += n;
        }
    }
    // Latency: the histograms added, then read.
    let histograms: Vec<&Histograms> = parts
        .iter()
        .map(|r| {
            r.histograms.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "{} {}: a generator kept no latency histograms (results of `loadtest run` \
                     before merging existed cannot be merged)",
                    r.server.name(),
                    r.scenario.name()
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut all = decode(&histograms[0].all)?;
    let mut by_route = BTreeMap::new();
    for (i, h) in histograms.iter().enumerate() {
        if i > 0 {
            add_into(&mut all, &decode(&h.all)?)?;
        }
        for (route, text) in &h.by_route {
            let one = decode(text)?;
            match by_route.get_mut(route) {
                None => {
                    by_route.insert(route.clone(), one);
                }
                Some(acc) => add_into(acc, &one)?,
            }
        }
    }
    out.latency_ms = latency_of(&all);
    out.latency_ms_by_route = by_route
        .iter()
        .map(|(route, h)| (route.clone(), latency_of(h)))
        .collect::<BTreeMap<String, Latency>>();
    let (open, from_slot, late_by) = merge_open(parts, &histograms)?;
    out.setup.open = open;
    out.open_model = open_model_of(parts, &from_slot, &late_by, &all, out.rps);
    out.histograms = Some(Histograms {
        all: encode(&all)?,
        by_route: by_route
            .iter()
            .map(|(route, h)| Ok((route.clone(), encode(h)?)))
            .collect::<anyhow::Result<_>>()?,
        from_slot: from_slot.as_ref().map(encode).transpose()?,
        late_by: late_by.as_ref().map(encode).transpose()?,
    });
    // The deployment, seen by every generator at once: averaged over generators, then
    // spread over all of their requests.
    let total = out.requests.max(1) as f64;
    out.redis_commands_per_request = seen_by_all(parts, |r| {
        r.redis_commands_per_request.map(|c| c * r.requests as f64)
    })
    .map(|commands| commands / total);
    let n = parts[0].requests_per_replica.len();
    out.requests_per_replica = if parts.iter().all(|r| r.requests_per_replica.len() == n) {
        (0..n)
            .map(|i| {
                mean(parts.iter().map(|r| r.requests_per_replica[i] as f64)).unwrap_or(0.0) as u64
            })
            .collect()
    } else {
        Vec::new()
    };
    let shared =
        |f: fn(&CpuPerRequest) -> Option<f64>| seen_by_all(parts, |r| f(&r.cpu_cores_used));
    out.cpu_cores_used = CpuPerRequest {
        replicas: shared(|c| c.replicas),
        redis: shared(|c| c.redis),
        lb: shared(|c| c.lb),
        // Each generator is its own process: their CPUs add up.
        loadgen: parts
            .iter()
            .map(|r| r.cpu_cores_used.loadgen)
            .sum::<Option<f64>>(),
    };
    let per_request = |cores: Option<f64>| cores.map(|c| c * out.duration_s * 1e6 / total);
    out.cpu_us_per_request = CpuPerRequest {
        replicas: per_request(out.cpu_cores_used.replicas),
        redis: per_request(out.cpu_cores_used.redis),
        lb: per_request(out.cpu_cores_used.lb),
        loadgen: per_request(out.cpu_cores_used.loadgen),
    };
    // A bottleneck only where every generator named the same one.
    if parts.iter().any(|r| r.bottleneck != out.bottleneck) {
        out.bottleneck = None;
    }
    out.peak_memory_bytes.loadgen = parts.iter().map(|r| r.peak_memory_bytes.loadgen).sum();
    // Each timeline's seconds count from its own window: not added.
    out.timeline = Vec::new();
    out.invalid = out.broken_rules();
    Ok(out)
}

type Merged = (
    Option<OpenLoad>,
    Option<hdrhistogram::Histogram<u64>>,
    Option<hdrhistogram::Histogram<u64>>,
);

/// Generators at a fixed rate each offered their own: the deployment was offered the sum,
/// and their slot and lateness histograms add up. Runs that were not all at a rate merge
/// as a closed loop.
fn merge_open(parts: &[&Run], histograms: &[&Histograms]) -> anyhow::Result<Merged> {
    let Some(opens) = parts
        .iter()
        .map(|r| r.setup.open)
        .collect::<Option<Vec<_>>>()
    else {
        return Ok((None, None, None));
    };
    let add = |pick: fn(&Histograms) -> Option<&String>| -> anyhow::Result<Option<hdrhistogram::Histogram<u64>>> {
        let mut acc: Option<hdrhistogram::Histogram<u64>> = None;
        for h in histograms {
            let Some(text) = pick(h) else { return Ok(None) };
            let one = decode(text)?;
            match acc.as_mut() {
                None => acc = Some(one),
                Some(a) => add_into(a, &one)?,
            }
        }
        Ok(acc)
    };
    let open = OpenLoad {
        offered_rps: opens.iter().map(|o| o.offered_rps).sum(),
        arrivals: opens[0].arrivals,
    };
    Ok((
        Some(open),
        add(|h| h.from_slot.as_ref())?,
        add(|h| h.late_by.as_ref())?,
    ))
}

fn open_model_of(
    parts: &[&Run],
    from_slot: &Option<hdrhistogram::Histogram<u64>>,
    late_by: &Option<hdrhistogram::Histogram<u64>>,
    all: &hdrhistogram::Histogram<u64>,
    achieved_rps: f64,
) -> Option<OpenModel> {
    let (from_slot, late_by) = (from_slot.as_ref()?, late_by.as_ref()?);
    let first = parts.first()?.open_model.as_ref()?;
    Some(OpenModel {
        achieved_rps,
        late_starts: parts
            .iter()
            .map(|r| r.open_model.as_ref().map_or(0, |o| o.late_starts))
            .sum(),
        late_after_us: first.late_after_us,
        late_by_us: percentiles(late_by),
        latency_us_intended: percentiles(from_slot),
        latency_us_actual: percentiles(all),
    })
}
