//! Prometheus metrics: requests by route and status, a latency histogram, Redis commands.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// One registry per application instance, so several servers in one test process do not
/// share counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub redis_commands: IntCounter,
}

impl Metrics {
    pub fn new(server: &str) -> Self {
        let registry = Registry::new_custom(None, Some([("server".into(), server.into())].into()))
            .expect("static registry labels are valid");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["route", "status"],
        )
        .expect("static metric definition is valid");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request head to response head, by route",
            )
            .buckets(vec![
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5,
            ]),
            &["route"],
        )
        .expect("static metric definition is valid");
        let redis_commands = IntCounter::new(
            "redis_commands_total",
            "Redis commands this process issued (a pipeline counts each command)",
        )
        .expect("static metric definition is valid");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(redis_commands.clone()),
        ] {
            registry
                .register(c)
                .expect("each metric is registered once");
        }
        Self {
            registry,
            requests,
            latency,
            redis_commands,
        }
    }

    /// A per-worker recorder of answered requests (see `Recorder`).
    pub fn recorder(&self) -> Recorder {
        Recorder {
            metrics: self.clone(),
            handles: RefCell::new(HashMap::new()),
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding into a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

pub async fn handler(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Records answered requests for one worker (the contract layer holds one per worker). It
/// keeps the handles of the series it has written to, so a request costs one map lookup:
/// `with_label_values` hashed the labels and took the registry's lock twice per request.
/// Bounded: route templates (never raw paths, so unknown URLs cannot blow up label
/// cardinality) times statuses.
pub struct Recorder {
    metrics: Metrics,
    handles: RefCell<HashMap<Series, (IntCounter, Histogram)>>,
}

/// A route template and a status.
type Series = (Cow<'static, str>, u16);

impl Recorder {
    pub fn observe(&self, route: Cow<'static, str>, status: StatusCode, elapsed: Duration) {
        let mut handles = self.handles.borrow_mut();
        let (count, latency) =
            handles
                .entry((route, status.as_u16()))
                .or_insert_with_key(|(route, _)| {
                    (
                        self.metrics
                            .requests
                            .with_label_values(&[route, status.as_str()]),
                        self.metrics.latency.with_label_values(&[route]),
                    )
                });
        count.inc();
        latency.observe(elapsed.as_secs_f64());
    }
}
