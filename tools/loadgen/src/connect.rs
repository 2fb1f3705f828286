//! Opening many TCP connections gradually, checking each one end to end, with retries.
//!
//! Opening a thousand connections at once through QEMU user networking (slirp) fails: slirp
//! accepts every host connection at once and only then connects to the guest, so `connect`
//! succeeds on the host even when the guest side never comes up, and the connection is closed
//! later ("the server closed the connection"), in the middle of populate. So a connection here
//! counts as *up* only when the server has answered a request on it (memcached's `version`,
//! which every memcached, EdgeOS's and the stub answer), and connections are opened a few at a
//! time:
//!
//! - at most [`ConnectPolicy::in_flight`] attempts (connect plus the `version` round trip) at
//!   once, and, if [`ConnectPolicy::rate`] is set, at most that many new attempts per second;
//! - an attempt that fails (refused, reset, closed, no answer within
//!   [`ConnectPolicy::timeout`]) is retried after [`ConnectPolicy::retry_delay`], doubling
//!   each time up to [`MAX_RETRY_DELAY`], up to [`ConnectPolicy::attempts`] attempts in all;
//!   then the run ends with the target's address, the number of attempts and the last error
//!   (with the OS error number when there is one).
//!
//! [`Plan`] decides what to start when (pure, unit-tested); [`connect_tcp_all`] does the I/O
//! with a `mio` event loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

/// The longest wait between two attempts on the same target.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(4);

/// The request that proves a connection works end to end, and the start of its answer.
const PROBE: &[u8] = b"version\r\n";
const PROBE_ANSWER: &[u8] = b"VERSION";
/// The longest probe answer read (memcached's is about 16 bytes).
const PROBE_LIMIT: usize = 512;

/// How connections are opened.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectPolicy {
    /// Attempts in progress at once (connect plus the check round trip), at least 1.
    pub in_flight: usize,
    /// New attempts per second (first tries and retries together); `None`: no limit but
    /// `in_flight`.
    pub rate: Option<f64>,
    /// Attempts per connection before the run gives up, at least 1.
    pub attempts: u32,
    /// How long one attempt may take (connect and check together).
    pub timeout: Duration,
    /// The wait before the first retry; it doubles with each further retry.
    pub retry_delay: Duration,
    /// TCP: the connection counts as up only once the server answered `version` on it.
    pub check: bool,
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy {
            in_flight: 32,
            rate: None,
            attempts: 5,
            timeout: Duration::from_secs(5),
            retry_delay: Duration::from_millis(250),
            check: true,
        }
    }
}

impl ConnectPolicy {
    /// Checks the values a parser cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.in_flight == 0 {
            return Err("--connect-concurrency must be at least 1".to_string());
        }
        if self.attempts == 0 {
            return Err("--connect-attempts must be at least 1".to_string());
        }
        if self.timeout.is_zero() {
            return Err("--connect-timeout must be more than 0".to_string());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("--connect-rate {rate} must be more than 0"));
            }
        }
        Ok(())
    }

    /// The wait before attempt number `attempt` (2 for the first retry).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        self.retry_delay
            .saturating_mul(1 << doublings)
            .min(MAX_RETRY_DELAY.max(self.retry_delay))
    }

    /// The policy as JSON, for the report's configuration.
    pub fn to_json(&self) -> Value {
        json!({
            "in_flight": self.in_flight,
            "rate": self.rate,
            "attempts": self.attempts,
            "timeout_s": self.timeout.as_secs_f64(),
            "retry_delay_s": self.retry_delay.as_secs_f64(),
            "check": self.check,
        })
    }
}

/// The decisions of a gradual connect: which target to try next and when, retries, and when
/// to give up. Times are nanoseconds on any monotonic clock.
#[derive(Debug)]
pub struct Plan {
    policy: ConnectPolicy,
    total: usize,
    /// Targets not yet tried are `next_fresh..total`.
    next_fresh: usize,
    /// Failed targets waiting to be tried again: (not before, target, attempt number).
    retries: BinaryHeap<Reverse<(u64, usize, u32)>>,
    in_flight: usize,
    /// No new attempt before this (the rate limit).
    next_start: u64,
    gap_ns: u64,
    up: usize,
    retried: u64,
}

/// A target that failed every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub target: usize,
    pub attempts: u32,
}

impl Plan {
    /// A plan for `total` targets (numbered 0..total, tried first in that order).
    pub fn new(total: usize, policy: ConnectPolicy) -> Plan {
        let gap_ns = policy.rate.map_or(0, |rate| (1e9 / rate) as u64);
        Plan {
            policy,
            total,
            next_fresh: 0,
            retries: BinaryHeap::new(),
            in_flight: 0,
            next_start: 0,
            gap_ns,
            up: 0,
            retried: 0,
        }
    }

    /// The next attempt to start at `now`, if one may: (target, attempt number from 1).
    /// Retries whose wait is over go before targets not yet tried.
    pub fn start(&mut self, now: u64) -> Option<(usize, u32)> {
        if self.in_flight >= self.policy.in_flight || now < self.next_start {
            return None;
        }
        let next = match self.retries.peek() {
            Some(&Reverse((due, target, attempt))) if due <= now => {
                self.retries.pop();
                (target, attempt)
            }
            _ if self.next_fresh < self.total => {
                self.next_fresh += 1;
                (self.next_fresh - 1, 1)
            }
            _ => return None,
        };
        self.in_flight += 1;
        self.next_start = now.max(self.next_start) + self.gap_ns;
        Some(next)
    }

    /// An attempt succeeded: the target is up.
    pub fn succeeded(&mut self) {
        self.in_flight -= 1;
        self.up += 1;
    }

    /// Attempt number `attempt` on `target` failed at `now`: it is tried again later, or, if
    /// that was its last attempt, the plan gives up on it.
    pub fn failed(&mut self, target: usize, attempt: u32, now: u64) -> Result<(), GaveUp> {
        self.in_flight -= 1;
        if attempt >= self.policy.attempts {
            return Err(GaveUp {
                target,
                attempts: attempt,
            });
        }
        self.retried += 1;
        let due = now + self.policy.delay_before(attempt + 1).as_nanos() as u64;
        self.retries.push(Reverse((due, target, attempt + 1)));
        Ok(())
    }

    /// When an attempt could next start, if none can now and one is waiting; `None` when
    /// only a finishing attempt can change anything.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        if self.in_flight >= self.policy.in_flight {
            return None;
        }
        let candidate = if self.next_fresh < self.total {
            Some(now)
        } else {
            self.retries.peek().map(|Reverse((due, _, _))| *due)
        };
        candidate.map(|due| due.max(self.next_start))
    }

    /// Whether every target is up.
    pub fn is_done(&self) -> bool {
        self.up == self.total
    }

    /// Targets up so far.
    pub fn up(&self) -> usize {
        self.up
    }

    /// Attempts in progress.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Retries so far.
    pub fn retried(&self) -> u64 {
        self.retried
    }
}

/// Describes an I/O error for a person: what happened, and the OS error number if any.
pub fn describe_error(error: &io::Error) -> String {
    let what = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        io::ErrorKind::AddrNotAvailable => {
            "no local address available (out of ephemeral ports?)".to_string()
        }
        _ => {
            // std's text ends with " (os error N)"; the number is added below.
            let text = error.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut chars = text.chars();
            chars.next().map_or(text.clone(), |first| {
                first.to_lowercase().collect::<String>() + chars.as_str()
            })
        }
    };
    let mut text = match error.raw_os_error() {
        Some(number) => format!("{what} (os error {number})"),
        None => what,
    };
    if error.kind() == io::ErrorKind::ConnectionRefused {
        text.push_str(" (is a server listening there?)");
    }
    text
}

/// Scans a probe answer: `Ok(true)` once a whole line starting with `VERSION` is in, `Ok(false)`
/// while the line is incomplete, `Err` with the answer if it is something else.
pub fn probe_answer(buf: &[u8]) -> Result<bool, String> {
    match buf.windows(2).position(|pair| pair == b"\r\n") {
        Some(end) if buf[..end].starts_with(PROBE_ANSWER) && end + 2 == buf.len() => Ok(true),
        Some(end) if buf[..end].starts_with(PROBE_ANSWER) => Err(format!(
            "unexpected bytes after the answer to `version`: {}",
            crate::protocol::show(&buf[end + 2..])
        )),
        Some(end) => Err(format!(
            "the server answered `version` with `{}`",
            crate::protocol::show(&buf[..end])
        )),
        None if buf.len() > PROBE_LIMIT => Err(format!(
            "the answer to `version` is over {PROBE_LIMIT} bytes with no line end"
        )),
        None if !PROBE_ANSWER.starts_with(&buf[..buf.len().min(PROBE_ANSWER.len())]) => {
            Err(format!(
                "the server answered `version` with `{}`",
                crate::protocol::show(buf)
            ))
        }
        None => Ok(false),
    }
}

/// What one connect took.
#[derive(Debug, Clone, Default)]
pub struct ConnectReport {
    pub connections: usize,
    pub retries: u64,
    pub seconds: f64,
    /// The first few distinct errors that were retried (with their targets).
    pub retried_errors: Vec<String>,
}

impl ConnectReport {
    pub fn to_json(&self) -> Value {
        json!({
            "connections": self.connections,
            "retries": self.retries,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "retried_errors": self.retried_errors,
        })
    }
}

/// One attempt in progress.
struct Attempt {
    target: usize,
    attempt: u32,
    stream: TcpStream,
    deadline: Instant,
    connected: bool,
    /// How much of the probe has been written.
    written: usize,
    answer: Vec<u8>,
}

/// Why an attempt ended.
enum Step {
    Pending,
    Up,
    Failed(String),
}

/// Opens one TCP connection to each of `addrs` (in that order as far as the policy allows),
/// each checked end to end if the policy says so; returns them in `addrs`' order, nonblocking
/// with `TCP_NODELAY`, and what it took. Prints progress on standard error once a second after
/// the first second unless `quiet`.
pub fn connect_tcp_all(
    addrs: &[SocketAddr],
    policy: &ConnectPolicy,
    quiet: bool,
) -> Result<(Vec<TcpStream>, ConnectReport), String> {
    let started = Instant::now();
    let nanos = |at: Instant| at.duration_since(started).as_nanos() as u64;
    let mut plan = Plan::new(addrs.len(), policy.clone());
    let mut done: Vec<Option<TcpStream>> = (0..addrs.len()).map(|_| None).collect();
    let mut slots: Vec<Option<Attempt>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut poll = Poll::new().map_err(|error| format!("cannot create a poll: {error}"))?;
    let mut events = Events::with_capacity(256);
    let mut report = ConnectReport {
        connections: addrs.len(),
        ..ConnectReport::default()
    };
    let mut next_line = started + Duration::from_secs(1);
    let mut ended: Vec<(usize, Step)> = Vec::new();

    while !plan.is_done() {
        let now = Instant::now();
        // Start what the plan allows.
        while let Some((target, attempt)) = plan.start(nanos(now)) {
            let addr = addrs[target];
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    let slot = free.pop().unwrap_or_else(|| {
                        slots.push(None);
                        slots.len() - 1
                    });
                    poll.registry()
                        .register(
                            &mut stream,
                            Token(slot),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(|error| format!("cannot poll a connection to {addr}: {error}"))?;
                    slots[slot] = Some(Attempt {
                        target,
                        attempt,
                        stream,
                        deadline: now + policy.timeout,
                        connected: false,
                        written: 0,
                        answer: Vec::new(),
                    });
                }
                Err(error) => {
                    retry_or_give_up(
                        &mut plan,
                        &mut report,
                        addrs,
                        target,
                        attempt,
                        now,
                        &nanos,
                        describe_error(&error),
                    )?;
                }
            }
        }
        if plan.is_done() {
            break;
        }
        // Attempts past their deadline fail.
        for (slot, attempt) in slots.iter().enumerate() {
            if let Some(attempt) = attempt {
                if now >= attempt.deadline {
                    let what = if attempt.connected && policy.check {
                        "connected, but no answer to `version`"
                    } else {
                        "no connection"
                    };
                    ended.push((
                        slot,
                        Step::Failed(format!("{what} within {}", show(policy.timeout))),
                    ));
                }
            }
        }
        finish(
            &mut ended,
            &mut slots,
            &mut free,
            &mut done,
            &mut plan,
            &mut report,
            &poll,
            addrs,
            now,
            &nanos,
        )?;
        if plan.is_done() {
            break;
        }

        if !quiet && now >= next_line {
            eprintln!(
                "loadgen: connected {}/{} ({} in progress, {} retries)",
                plan.up(),
                addrs.len(),
                plan.in_flight(),
                plan.retried()
            );
            next_line += Duration::from_secs(1);
        }

        // Sleep until something can happen.
        let mut wake = next_line;
        if let Some(at) = plan.next_wake(nanos(now)) {
            wake = wake.min(started + Duration::from_nanos(at));
        }
        for attempt in slots.iter().flatten() {
            wake = wake.min(attempt.deadline);
        }
        // Round up so a wake-up never comes a little early and spins.
        let timeout = wake.saturating_duration_since(now) + Duration::from_micros(500);
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("poll failed while connecting: {error}")),
        }
        for event in events.iter() {
            let slot = event.token().0;
            let Some(attempt) = slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let step = advance(attempt, policy.check);
            if !matches!(step, Step::Pending) {
                ended.push((slot, step));
            }
        }
        let now = Instant::now();
        finish(
            &mut ended,
            &mut slots,
            &mut free,
            &mut done,
            &mut plan,
            &mut report,
            &poll,
            addrs,
            now,
            &nanos,
        )?;
    }
    report.retries = plan.retried();
    report.seconds = started.elapsed().as_secs_f64();
    if !quiet && report.seconds > 1.0 {
        eprintln!(
            "loadgen: connected {}/{} in {:.1} s ({} retries)",
            addrs.len(),
            addrs.len(),
            report.seconds,
            report.retries
        );
    }
    Ok((
        done.into_iter()
            .map(|stream| stream.expect("every target is up"))
            .collect(),
        report,
    ))
}

/// Ends the attempts in `ended`: successes are kept, failures retried or fatal.
#[allow(clippy::too_many_arguments)]
fn finish(
    ended: &mut Vec<(usize, Step)>,
    slots: &mut [Option<Attempt>],
    free: &mut Vec<usize>,
    done: &mut [Option<TcpStream>],
    plan: &mut Plan,
    report: &mut ConnectReport,
    poll: &Poll,
    addrs: &[SocketAddr],
    now: Instant,
    nanos: &impl Fn(Instant) -> u64,
) -> Result<(), String> {
    for (slot, step) in ended.drain(..) {
        let Some(mut attempt) = slots[slot].take() else {
            continue;
        };
        free.push(slot);
        let _ = poll.registry().deregister(&mut attempt.stream);
        match step {
            Step::Up => {
                plan.succeeded();
                done[attempt.target] = Some(attempt.stream);
            }
            Step::Failed(reason) => {
                drop(attempt.stream);
                retry_or_give_up(
                    plan,
                    report,
                    addrs,
                    attempt.target,
                    attempt.attempt,
                    now,
                    nanos,
                    reason,
                )?;
            }
            Step::Pending => unreachable!("only ended attempts are finished"),
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn retry_or_give_up(
    plan: &mut Plan,
    report: &mut ConnectReport,
    addrs: &[SocketAddr],
    target: usize,
    attempt: u32,
    now: Instant,
    nanos: &impl Fn(Instant) -> u64,
    reason: String,
) -> Result<(), String> {
    let addr = addrs[target];
    match plan.failed(target, attempt, nanos(now)) {
        Ok(()) => {
            let sample = format!("{addr}: {reason}");
            if report.retried_errors.len() < 5
                && !report
                    .retried_errors
                    .iter()
                    .any(|known| known.split_once(": ").map(|(_, r)| r) == Some(reason.as_str()))
            {
                report.retried_errors.push(sample);
            }
            Ok(())
        }
        Err(gave_up) => Err(format!(
            "cannot connect to {addr} (TCP) after {} attempt{}: {reason}",
            gave_up.attempts,
            if gave_up.attempts == 1 { "" } else { "s" }
        )),
    }
}

/// Moves an attempt on after a readiness event.
fn advance(attempt: &mut Attempt, check: bool) -> Step {
    if !attempt.connected {
        match attempt.stream.take_error() {
            Ok(Some(error)) | Err(error) => return Step::Failed(describe_error(&error)),
            Ok(None) => {}
        }
        match attempt.stream.peer_addr() {
            Ok(_) => {}
            Err(error)
                if error.kind() == io::ErrorKind::NotConnected
                    || error.raw_os_error()
                        == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) =>
            {
                return Step::Pending
            }
            Err(error) => return Step::Failed(describe_error(&error)),
        }
        attempt.connected = true;
        if let Err(error) = attempt.stream.set_nodelay(true) {
            return Step::Failed(format!(
                "cannot set TCP_NODELAY: {}",
                describe_error(&error)
            ));
        }
        if !check {
            return Step::Up;
        }
    }
    while attempt.written < PROBE.len() {
        match attempt.stream.write(&PROBE[attempt.written..]) {
            Ok(0) => return Step::Failed("the server closed the connection".to_string()),
            Ok(written) => attempt.written += written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Step::Pending,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Step::Failed(describe_error(&error)),
        }
    }
    let mut buf = [0u8; 256];
    loop {
        match attempt.stream.read(&mut buf) {
            Ok(0) => {
                return Step::Failed(
                    "the server closed the connection before answering `version`".to_string(),
                )
            }
            Ok(read) => {
                attempt.answer.extend_from_slice(&buf[..read]);
                match probe_answer(&attempt.answer) {
                    Ok(true) => return Step::Up,
                    Ok(false) => {}
                    Err(message) => return Step::Failed(message),
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Step::Pending,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Step::Failed(describe_error(&error)),
        }
    }
}

fn show(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64()).replace(".000s", "s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const MS: u64 = 1_000_000;

    fn policy(in_flight: usize, rate: Option<f64>, attempts: u32) -> ConnectPolicy {
        ConnectPolicy {
            in_flight,
            rate,
            attempts,
            timeout: Duration::from_secs(1),
            retry_delay: Duration::from_millis(100),
            check: true,
        }
    }

    #[test]
    fn at_most_in_flight_attempts_at_once() {
        let mut plan = Plan::new(10, policy(3, None, 1));
        let started: Vec<_> = std::iter::from_fn(|| plan.start(0)).collect();
        assert_eq!(started, [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(
            plan.next_wake(0),
            None,
            "full: only a finishing attempt frees a place"
        );
        plan.succeeded();
        assert_eq!(plan.next_wake(0), Some(0));
        assert_eq!(plan.start(0), Some((3, 1)));
        assert_eq!(plan.start(0), None);
        assert_eq!(plan.up(), 1);
        assert_eq!(plan.in_flight(), 3);
    }

    #[test]
    fn the_rate_spaces_out_new_attempts() {
        // 100 per second: one every 10 ms, however many places are free.
        let mut plan = Plan::new(5, policy(100, Some(100.0), 1));
        assert_eq!(plan.start(0), Some((0, 1)));
        assert_eq!(plan.start(0), None);
        assert_eq!(plan.start(9 * MS), None);
        assert_eq!(plan.next_wake(9 * MS), Some(10 * MS));
        assert_eq!(plan.start(10 * MS), Some((1, 1)));
        // A late start does not let a burst through afterwards.
        assert_eq!(plan.start(50 * MS), Some((2, 1)));
        assert_eq!(plan.start(50 * MS), None);
        assert_eq!(plan.start(60 * MS), Some((3, 1)));
    }

    #[test]
    fn failures_are_retried_with_growing_waits_then_given_up() {
        let mut plan = Plan::new(2, policy(10, None, 3));
        assert_eq!(plan.start(0), Some((0, 1)));
        assert_eq!(plan.start(0), Some((1, 1)));
        plan.succeeded();
        // Target 0 fails: tried again 100 ms later, then 200 ms after the second failure.
        assert_eq!(plan.failed(0, 1, 5 * MS), Ok(()));
        assert_eq!(plan.start(50 * MS), None);
        assert_eq!(plan.next_wake(50 * MS), Some(105 * MS));
        assert_eq!(plan.start(105 * MS), Some((0, 2)));
        assert_eq!(plan.failed(0, 2, 110 * MS), Ok(()));
        assert_eq!(plan.start(309 * MS), None);
        assert_eq!(plan.start(310 * MS), Some((0, 3)));
        assert_eq!(
            plan.failed(0, 3, 320 * MS),
            Err(GaveUp {
                target: 0,
                attempts: 3
            })
        );
        assert_eq!(plan.retried(), 2);
        assert!(!plan.is_done());
    }

    #[test]
    fn due_retries_go_before_targets_not_yet_tried() {
        let mut plan = Plan::new(4, policy(1, None, 5));
        assert_eq!(plan.start(0), Some((0, 1)));
        plan.failed(0, 1, 0).unwrap();
        assert_eq!(plan.start(10 * MS), Some((1, 1)), "target 0 still waits");
        plan.succeeded();
        assert_eq!(plan.start(100 * MS), Some((0, 2)));
        plan.succeeded();
        assert_eq!(plan.start(100 * MS), Some((2, 1)));
        plan.succeeded();
        assert_eq!(plan.start(100 * MS), Some((3, 1)));
        plan.succeeded();
        assert!(plan.is_done());
        assert_eq!(plan.start(100 * MS), None);
        assert_eq!(plan.next_wake(100 * MS), None);
    }

    #[test]
    fn retry_waits_double_up_to_a_cap() {
        let policy = policy(1, None, 20);
        assert_eq!(policy.delay_before(2), Duration::from_millis(100));
        assert_eq!(policy.delay_before(3), Duration::from_millis(200));
        assert_eq!(policy.delay_before(4), Duration::from_millis(400));
        assert_eq!(policy.delay_before(20), MAX_RETRY_DELAY);
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(policy(0, None, 1)
            .validate()
            .unwrap_err()
            .contains("--connect-concurrency"));
        assert!(policy(1, None, 0)
            .validate()
            .unwrap_err()
            .contains("--connect-attempts"));
        assert!(policy(1, Some(0.0), 1)
            .validate()
            .unwrap_err()
            .contains("--connect-rate"));
        assert!(ConnectPolicy::default().validate().is_ok());
    }

    #[test]
    fn probe_answers() {
        assert_eq!(probe_answer(b""), Ok(false));
        assert_eq!(probe_answer(b"VERS"), Ok(false));
        assert_eq!(probe_answer(b"VERSION 1.6.18"), Ok(false));
        assert_eq!(probe_answer(b"VERSION 1.6.18\r\n"), Ok(true));
        assert!(probe_answer(b"ERROR\r\n").unwrap_err().contains("`ERROR`"));
        assert!(probe_answer(b"SERVER_").unwrap_err().contains("answered"));
        assert!(probe_answer(b"VERSION 1\r\nEND\r\n")
            .unwrap_err()
            .contains("after"));
        assert!(probe_answer(&[b'V'; 600]).is_err());
    }

    #[test]
    fn errors_name_the_os_error() {
        let refused = io::Error::from_raw_os_error(rustix::io::Errno::CONNREFUSED.raw_os_error());
        let text = describe_error(&refused);
        assert!(
            text.starts_with("connection refused (os error 111)"),
            "{text}"
        );
        assert!(text.contains("is a server listening there?"));
        let reset = io::Error::from_raw_os_error(rustix::io::Errno::CONNRESET.raw_os_error());
        assert_eq!(
            describe_error(&reset),
            "connection reset by the server (os error 104)"
        );
        let other = io::Error::from_raw_os_error(rustix::io::Errno::NETUNREACH.raw_os_error());
        assert_eq!(
            describe_error(&other),
            "network is unreachable (os error 101)"
        );
    }

    /// A server on a local port answering `version` like memcached, and one that accepts and
    /// closes at once (what QEMU user networking does when the guest side cannot connect).
    fn server(answer: bool, connections: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.unwrap();
                if answer {
                    let mut buf = [0u8; 9];
                    stream.read_exact(&mut buf).unwrap();
                    assert_eq!(&buf, PROBE);
                    stream.write_all(b"VERSION test\r\n").unwrap();
                    held.push(stream);
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        });
        addr
    }

    #[test]
    fn connects_and_checks_every_target() {
        let a = server(true, 5);
        let b = server(true, 5);
        let addrs: Vec<_> = [a, b, a, b, a, b].into();
        let (streams, report) = connect_tcp_all(&addrs, &policy(2, Some(1000.0), 1), true).unwrap();
        assert_eq!(streams.len(), 6);
        for (stream, addr) in streams.iter().zip(&addrs) {
            assert_eq!(stream.peer_addr().unwrap(), *addr);
        }
        assert_eq!((report.connections, report.retries), (6, 0));
    }

    #[test]
    fn connections_closed_at_first_are_retried_until_they_work() {
        // The first two connections are closed at once (slirp when the guest side fails), the
        // third is answered: one target, up after two retries.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (number, stream) in listener.incoming().take(3).enumerate() {
                let mut stream = stream.unwrap();
                if number < 2 {
                    continue;
                }
                let mut buf = [0u8; 9];
                stream.read_exact(&mut buf).unwrap();
                stream.write_all(b"VERSION test\r\n").unwrap();
                held.push(stream);
            }
            std::thread::sleep(Duration::from_secs(2));
        });
        let (streams, report) = connect_tcp_all(&[addr], &policy(1, None, 3), true).unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(report.retries, 2);
        // Closed or reset (a close with the request unread sends a reset): one or two samples.
        assert!(
            (1..=2).contains(&report.retried_errors.len()),
            "{:?}",
            report.retried_errors
        );
        assert!(report.retried_errors[0].starts_with(&format!("{addr}: ")));
    }

    #[test]
    fn a_server_that_closes_at_once_fails_after_the_retries_naming_it() {
        let addr = server(false, 3);
        let error = connect_tcp_all(&[addr], &policy(4, None, 3), true).unwrap_err();
        assert!(
            error.contains(&format!("cannot connect to {addr} (TCP) after 3 attempts")),
            "{error}"
        );
        assert!(
            error.contains("closed the connection") || error.contains("reset"),
            "{error}"
        );
    }

    #[test]
    fn a_refused_port_names_the_address_and_the_os_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = connect_tcp_all(&[addr], &policy(1, None, 2), true).unwrap_err();
        assert!(
            error.starts_with(&format!("cannot connect to {addr} (TCP) after 2 attempts: connection refused (os error 111)")),
            "{error}"
        );
    }
}
