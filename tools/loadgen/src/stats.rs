//! What a run measured: HDR histograms of latency and counters, per worker, merged at the end;
//! live counters for the once-a-second progress line.
//!
//! Latencies are recorded in nanoseconds in HDR histograms with 3 significant digits (so any
//! percentile is within 0.1 % of the true sample value) up to an hour.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::protocol::Op;

/// The longest latency a histogram holds, in nanoseconds (longer ones are clamped to it).
const MAX_RECORDED_NS: u64 = 3_600_000_000_000;

/// How many distinct error messages a report keeps as examples.
const ERROR_SAMPLES: usize = 5;

/// A fresh latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy `new_with_bounds`'s rules (low >= 1, high >= 2 low,
    // sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(1, MAX_RECORDED_NS, 3).expect("constant histogram bounds are valid")
}

/// Measurements of one phase on one worker, or merged over all of them.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency of every measured reply, from intended send time to reply, ns.
    pub all: Histogram<u64>,
    /// Latency of `get` replies.
    pub get: Histogram<u64>,
    /// Latency of `set` replies.
    pub set: Histogram<u64>,
    /// How late each measured request left after its intended time, ns (the instrument's own lag).
    pub send_lag: Histogram<u64>,
    /// Measured requests sent.
    pub sent: u64,
    /// Measured replies received, errors included.
    pub completed: u64,
    /// `get` replies.
    pub gets: u64,
    /// `set` replies.
    pub sets: u64,
    /// `get` replies with a value.
    pub hits: u64,
    /// `get` replies without one.
    pub misses: u64,
    /// Error replies, protocol violations, requests lost with a failed connection, requests that
    /// could not be sent.
    pub errors: u64,
    /// Requests never answered: UDP requests older than `--timeout`, and any request still
    /// unanswered `--timeout` after the end of the run.
    pub timeouts: u64,
    /// Replies to UDP requests that had already timed out (not counted elsewhere).
    pub late_replies: u64,
    /// The first few distinct error messages, for the report.
    pub error_samples: Vec<String>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            all: new_histogram(),
            get: new_histogram(),
            set: new_histogram(),
            send_lag: new_histogram(),
            sent: 0,
            completed: 0,
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            timeouts: 0,
            late_replies: 0,
            error_samples: Vec::new(),
        }
    }
}

impl Stats {
    /// Records a reply's latency.
    pub fn record_latency(&mut self, op: Op, latency_ns: u64) {
        let value = latency_ns.clamp(1, MAX_RECORDED_NS);
        self.all.saturating_record(value);
        match op {
            Op::Get => self.get.saturating_record(value),
            Op::Set => self.set.saturating_record(value),
        }
    }

    /// Counts `count` errors and keeps `message` as an example if it is new.
    pub fn error(&mut self, count: u64, message: impl FnOnce() -> String) {
        self.errors += count;
        if self.error_samples.len() < ERROR_SAMPLES {
            let message = message();
            if !self.error_samples.contains(&message) {
                self.error_samples.push(message);
            }
        }
    }

    /// Keeps `message` as an example without counting an error (the requests it concerns are
    /// counted when they time out).
    pub fn note(&mut self, message: String) {
        if self.error_samples.len() < ERROR_SAMPLES && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    /// Adds another worker's measurements to these.
    pub fn merge(&mut self, other: &Stats) {
        // Histograms with identical bounds always add.
        let _ = self.all.add(&other.all);
        let _ = self.get.add(&other.get);
        let _ = self.set.add(&other.set);
        let _ = self.send_lag.add(&other.send_lag);
        self.sent += other.sent;
        self.completed += other.completed;
        self.gets += other.gets;
        self.sets += other.sets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.late_replies += other.late_replies;
        for message in &other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES && !self.error_samples.contains(message) {
                self.error_samples.push(message.clone());
            }
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Percentiles {
    /// Summarizes a histogram of nanoseconds (all zero if it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let micros = |ns: u64| ns as f64 / 1000.0;
        if histogram.is_empty() {
            return Percentiles {
                count: 0,
                min: 0.0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: histogram.len(),
            min: micros(histogram.min()),
            mean: histogram.mean() / 1000.0,
            p50: micros(histogram.value_at_quantile(0.5)),
            p90: micros(histogram.value_at_quantile(0.9)),
            p99: micros(histogram.value_at_quantile(0.99)),
            p99_9: micros(histogram.value_at_quantile(0.999)),
            max: micros(histogram.max()),
        }
    }

    /// As JSON, rounded to 0.1 µs.
    pub fn to_json(self) -> Value {
        let round = |value: f64| (value * 10.0).round() / 10.0;
        json!({
            "count": self.count,
            "min": round(self.min),
            "mean": round(self.mean),
            "p50": round(self.p50),
            "p90": round(self.p90),
            "p99": round(self.p99),
            "p99_9": round(self.p99_9),
            "max": round(self.max),
        })
    }
}

/// What the load generator itself cost over a whole point (warm-up and drain included).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InstrumentCost {
    /// CPU time of the whole process, seconds.
    pub cpu_s: f64,
    /// Wall-clock time, seconds.
    pub wall_s: f64,
    /// Requests sent.
    pub requests: u64,
}

impl InstrumentCost {
    /// As JSON, with the derived per-request cost and cores used.
    pub fn to_json(self) -> Value {
        let per_request_us = if self.requests > 0 {
            self.cpu_s * 1e6 / self.requests as f64
        } else {
            0.0
        };
        let cores = if self.wall_s > 0.0 {
            self.cpu_s / self.wall_s
        } else {
            0.0
        };
        json!({
            "cpu_s": (self.cpu_s * 1000.0).round() / 1000.0,
            "wall_s": (self.wall_s * 1000.0).round() / 1000.0,
            "requests": self.requests,
            "cpu_us_per_request": (per_request_us * 100.0).round() / 100.0,
            "cores_used": (cores * 1000.0).round() / 1000.0,
        })
    }
}

/// The result of one measured load point.
#[derive(Debug, Clone)]
pub struct PointResult {
    /// The target aggregate rate (open loop), requests/s.
    pub offered_rps: Option<f64>,
    /// The measured interval, seconds.
    pub duration_s: f64,
    /// The merged measurements.
    pub stats: Stats,
    /// The generator's own CPU cost.
    pub instrument: InstrumentCost,
}

impl PointResult {
    /// Replies per second over the measured interval.
    pub fn throughput_rps(&self) -> f64 {
        self.stats.completed as f64 / self.duration_s
    }

    /// The point as JSON: counters, rates and latency percentiles in microseconds.
    pub fn to_json(&self) -> Value {
        let stats = &self.stats;
        json!({
            "offered_rps": self.offered_rps,
            "duration_s": self.duration_s,
            "sent": stats.sent,
            "completed": stats.completed,
            "throughput_rps": (self.throughput_rps() * 10.0).round() / 10.0,
            "gets": stats.gets,
            "sets": stats.sets,
            "hits": stats.hits,
            "misses": stats.misses,
            "errors": stats.errors,
            "timeouts": stats.timeouts,
            "late_replies": stats.late_replies,
            "error_samples": stats.error_samples,
            "latency_us": Percentiles::of(&stats.all).to_json(),
            "get_latency_us": Percentiles::of(&stats.get).to_json(),
            "set_latency_us": Percentiles::of(&stats.set).to_json(),
            "send_lag_us": Percentiles::of(&stats.send_lag).to_json(),
            "instrument": self.instrument.to_json(),
        })
    }

    /// The point as a few lines of text.
    pub fn to_text(&self) -> String {
        let stats = &self.stats;
        let latency = Percentiles::of(&stats.all);
        let lag = Percentiles::of(&stats.send_lag);
        let offered = self
            .offered_rps
            .map_or(String::new(), |rate| format!(" (offered {rate:.0}/s)"));
        let mut text = format!(
            "throughput {:.1} requests/s{offered} over {:.1} s: {} replies, {} gets ({} hits, {} misses), {} sets, \
             {} errors, {} timeouts\n\
             latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  (min {:.1}, mean {:.1}, max {:.1})\n\
             send lag us: p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}\n",
            self.throughput_rps(),
            self.duration_s,
            stats.completed,
            stats.gets,
            stats.hits,
            stats.misses,
            stats.sets,
            stats.errors,
            stats.timeouts,
            latency.p50,
            latency.p90,
            latency.p99,
            latency.p99_9,
            latency.min,
            latency.mean,
            latency.max,
            lag.p50,
            lag.p99,
            lag.p99_9,
            lag.max,
        );
        let cost = self.instrument;
        if cost.requests > 0 {
            text.push_str(&format!(
                "loadgen cost: {:.2} us CPU per request, {:.2} cores\n",
                cost.cpu_s * 1e6 / cost.requests as f64,
                cost.cpu_s / cost.wall_s.max(1e-9)
            ));
        }
        for message in &stats.error_samples {
            text.push_str(&format!("error: {message}\n"));
        }
        text
    }
}

/// Counters a worker updates as it goes, read once a second by the progress line.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub sent: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub latency_sum_ns: AtomicU64,
}

impl LiveCounters {
    /// Adds `value` to `counter` (a relaxed add: only totals matter).
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_tenth_of_a_percent() {
        let mut stats = Stats::default();
        for micros in 1..=10_000u64 {
            stats.record_latency(Op::Get, micros * 1000);
        }
        let p = Percentiles::of(&stats.all);
        assert_eq!(p.count, 10_000);
        for (got, want) in [
            (p.p50, 5000.0),
            (p.p90, 9000.0),
            (p.p99, 9900.0),
            (p.p99_9, 9990.0),
        ] {
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        }
        assert_eq!(Percentiles::of(&stats.set).count, 0);
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Stats::default();
        a.record_latency(Op::Get, 1000);
        a.hits = 1;
        a.error(1, || "x".into());
        let mut b = Stats::default();
        b.record_latency(Op::Set, 3000);
        b.error(2, || "x".into());
        b.error(1, || "y".into());
        a.merge(&b);
        assert_eq!(
            (a.all.len(), a.get.len(), a.set.len(), a.hits, a.errors),
            (2, 1, 1, 1, 4)
        );
        assert_eq!(a.error_samples, ["x", "y"]);
        let instrument = InstrumentCost {
            cpu_s: 0.5,
            wall_s: 2.0,
            requests: 10_000,
        };
        let json = PointResult {
            offered_rps: Some(10.0),
            duration_s: 1.0,
            stats: a,
            instrument,
        }
        .to_json();
        assert_eq!(json["instrument"]["cpu_us_per_request"], 50.0);
        assert_eq!(json["instrument"]["cores_used"], 0.25);
        assert_eq!(json["latency_us"]["max"], 3.0);
        assert_eq!(json["errors"], 4);
    }
}
