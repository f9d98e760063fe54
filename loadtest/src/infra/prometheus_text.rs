//! The bits of a server's `/metrics` the load test reads.

/// Sum of `http_requests_total` over every route and status, except the scrapes of
/// `/metrics` themselves.
pub fn requests_total(text: &str) -> u64 {
    samples(text, "http_requests_total")
        .filter(|(labels, _)| !labels.contains(r#"route="/metrics""#))
        .map(|(_, v)| v as u64)
        .sum()
}

/// `(labels, value)` of each sample of `metric` (not its `_bucket`/`_sum` relatives).
fn samples<'a>(text: &'a str, metric: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let end = r.rfind('}')?;
                    (&r[..end], r[end + 1..].trim())
                }
                None if rest.starts_with(' ') => ("", rest.trim()),
                None => return None,
            };
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some((labels, value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP http_requests_total HTTP requests answered
# TYPE http_requests_total counter
http_requests_total{route="/api/me",status="200",server="token-server"} 1500
http_requests_total{route="/api/me",status="401",server="token-server"} 3
http_requests_total{route="/api/items",status="200",server="token-server"} 1497
http_requests_total{route="/metrics",status="200",server="token-server"} 12
http_requests_total_extra{route="/api/me"} 99
http_request_duration_seconds_sum{route="/api/me"} 0.5
redis_commands_total{server="token-server"} 42
"#;

    #[test]
    fn request_counters_are_summed() {
        assert_eq!(
            requests_total(SAMPLE),
            3000,
            "the /metrics scrapes do not count"
        );
    }

    #[test]
    fn unlabelled_and_malformed_samples() {
        assert_eq!(
            requests_total("http_requests_total 7\nhttp_requests_total{x=\"1\"} nan?\n"),
            7
        );
    }
}
