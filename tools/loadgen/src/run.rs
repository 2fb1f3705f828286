//! The coordinator: opens the connections, starts the workers, populates the key space, runs
//! each load point (warm-up, then the measured interval), prints progress once a second, and
//! merges the workers' measurements.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{Config, Load, Transport};
use crate::connect::connect_tcp_all;
use crate::dist::KeyPicker;
use crate::keys::KeySpace;
use crate::schedule::Clock;
use crate::stats::{InstrumentCost, LiveCounters, PointResult, Stats};
use crate::worker::{Command, ConnectionSpec, LoopMode, Report, Socket, Worker, Workload};

/// The receive buffer asked for on each UDP socket, bytes.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Why a run could not be done (as opposed to a run that measured errors).
#[derive(Debug)]
pub enum RunError {
    /// A bad combination of options.
    Config(String),
    /// A server could not be reached.
    Connect(String),
    /// Populating the key space failed.
    Populate(String),
    /// The machine refused something (file descriptors, threads, poll).
    System(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(message) => write!(formatter, "invalid configuration: {message}"),
            RunError::Connect(message) => write!(formatter, "{message}"),
            RunError::Populate(message) => {
                write!(formatter, "populating the keys failed: {message}")
            }
            RunError::System(message) => write!(formatter, "{message}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The configuration, as JSON.
    pub config: Value,
    /// Facts about the workload (key sizes, populate time).
    pub workload: Value,
    /// One result per load point.
    pub points: Vec<PointResult>,
}

impl RunOutput {
    /// The whole report as JSON: `result` is the last point, `points` all of them.
    pub fn to_json(&self) -> Value {
        json!({
            "tool": "edgeos-loadgen",
            "version": env!("CARGO_PKG_VERSION"),
            "config": self.config,
            "workload": self.workload,
            "result": self.points.last().map(PointResult::to_json),
            "points": self.points.iter().map(PointResult::to_json).collect::<Vec<_>>(),
        })
    }
}

/// The worker threads and the channels to them.
struct Workers {
    commands: Vec<Sender<Command>>,
    reports: Receiver<Report>,
    live: Vec<Arc<LiveCounters>>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    fn broadcast(&self, command: &Command) {
        for sender in &self.commands {
            let _ = sender.send(command.clone());
        }
    }

    fn shutdown(self) {
        self.broadcast(&Command::Quit);
        for handle in self.handles {
            let _ = handle.join();
        }
    }

    /// Sums a live counter over the workers.
    fn live_sum(&self, pick: impl Fn(&LiveCounters) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.live
            .iter()
            .map(|live| pick(live).load(Ordering::Relaxed))
            .sum()
    }

    /// Waits for every worker's report of the current phase, printing a progress line each
    /// second via `progress` (given the seconds since `since` and the live totals).
    fn collect(
        &self,
        quiet: bool,
        mut progress: impl FnMut(&Workers) -> Option<String>,
    ) -> Result<Stats, RunError> {
        let mut merged = Stats::default();
        let mut remaining = self.commands.len();
        let mut failure = None;
        let mut next_line = Instant::now() + Duration::from_secs(1);
        while remaining > 0 {
            let wait = next_line.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(wait) {
                Ok((_, Ok(stats))) => {
                    merged.merge(&stats);
                    remaining -= 1;
                }
                Ok((index, Err(message))) => {
                    failure = Some(format!("worker {index}: {message}"));
                    remaining -= 1;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !quiet {
                        if let Some(line) = progress(self) {
                            let _ = writeln!(io::stderr(), "{line}");
                        }
                    }
                    next_line += Duration::from_secs(1);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(RunError::System(
                        "a worker thread ended unexpectedly".to_string(),
                    ));
                }
            }
        }
        match failure {
            Some(message) => Err(RunError::System(message)),
            None => Ok(merged),
        }
    }
}

/// Runs the whole configured experiment.
pub fn run(config: &Config) -> Result<RunOutput, RunError> {
    config.validate().map_err(RunError::Config)?;
    let clock = Clock::start();
    let addrs = resolve(config)?;
    raise_file_limit(config.connections() + 64, config.quiet);

    let keys =
        KeySpace::new(config.keys, &config.key_size, config.seed).map_err(RunError::Config)?;
    let workload_facts = json!({
        "keys": keys.len(),
        "mean_key_size": (keys.mean_size() * 10.0).round() / 10.0,
        "keys_lengthened_to_stay_unique": keys.lengthened,
        "keys_cut_to_250_bytes": keys.shortened,
        "mean_value_size": config.value_size.mean(),
    });
    let max_value = config.max_value;
    let workload = Arc::new(Workload {
        picker: KeyPicker::new(&config.popularity, keys.len()),
        keys,
        value_sizes: config.value_size,
        max_value,
        get_ratio: config.get_ratio,
        arrivals: match config.load {
            Load::Open { arrivals, .. } => arrivals,
            Load::Closed { .. } => crate::dist::Arrivals::Poisson,
        },
        timeout_ns: config.timeout.as_nanos() as u64,
        spin_ns: config.spin.as_nanos() as u64,
        seed: config.seed,
        filler: vec![b'v'; max_value],
    });

    // Every connection is up (and, over TCP, has answered a request) before populate, warm-up
    // and measurement start.
    let (specs, connect_facts) = connect_all(config, &addrs)?;
    let mut workload_facts = workload_facts;
    workload_facts["connect"] = connect_facts;
    let workers = start_workers(config, specs, &workload, clock)?;
    let result = drive(config, &workers, clock, workload_facts);
    workers.shutdown();
    result
}

/// Populates, then runs each load point.
fn drive(
    config: &Config,
    workers: &Workers,
    clock: Clock,
    mut workload_facts: Value,
) -> Result<RunOutput, RunError> {
    if config.populate {
        let started = Instant::now();
        let total = config.keys * config.ports.len() as u64;
        if !config.quiet {
            eprintln!(
                "loadgen: populating {} keys on each of {} ports",
                config.keys,
                config.ports.len()
            );
        }
        let depth = (config.populate_per_port / config.connections_per_port).max(1);
        workers.broadcast(&Command::Populate { depth });
        let stats = workers.collect(config.quiet, |workers| {
            let done = workers.live_sum(|live| &live.sent);
            Some(format!("loadgen: populating: {done} of {total} sets sent"))
        })?;
        let seconds = started.elapsed().as_secs_f64();
        if stats.errors > 0 || stats.timeouts > 0 {
            let mut message = format!(
                "{} errors and {} unanswered sets out of {total}",
                stats.errors, stats.timeouts
            );
            if stats.timeouts > 0 && config.transport == Transport::Udp {
                message.push_str(" (each set lost over UDP was resent 3 times)");
            }
            for sample in &stats.error_samples {
                message.push_str(&format!("\n  {sample}"));
            }
            return Err(RunError::Populate(message));
        }
        workload_facts["populate"] =
            json!({ "sets": stats.completed, "seconds": (seconds * 1000.0).round() / 1000.0 });
        for live in &workers.live {
            live.sent.store(0, Ordering::Relaxed);
        }
    }

    let connections = config.connections();
    let points: Vec<(Option<f64>, LoopMode)> = match &config.load {
        Load::Open { rates, .. } => rates
            .iter()
            .map(|rate| {
                let aggregate = rate.aggregate(connections);
                (
                    Some(aggregate),
                    LoopMode::Open {
                        rate_per_connection: aggregate / connections as f64,
                    },
                )
            })
            .collect(),
        Load::Closed { depth, think } => {
            vec![(
                None,
                LoopMode::Closed {
                    depth: *depth,
                    think_ns: think.as_nanos() as u64,
                },
            )]
        }
    };
    let mut results = Vec::new();
    for (number, (offered, mode)) in points.into_iter().enumerate() {
        // Give every worker time to receive the command before the first send is due.
        let start = clock.now() + 20_000_000;
        let measure_from = start + config.warmup.as_nanos() as u64;
        let end = measure_from + config.duration.as_nanos() as u64;
        if !config.quiet {
            let what = offered.map_or("closed loop".to_string(), |rate| {
                format!("{rate:.0} requests/s offered")
            });
            eprintln!(
                "loadgen: point {}: {what}, {} warm-up, {} measured",
                number + 1,
                show_duration(config.warmup),
                show_duration(config.duration)
            );
        }
        let cpu_before = process_cpu_seconds();
        let wall_before = Instant::now();
        let sent_before = workers.live_sum(|l| &l.sent);
        workers.broadcast(&Command::Load {
            mode,
            start,
            measure_from,
            end,
        });
        let mut last = (
            clock.now(),
            workers.live_sum(|l| &l.completed),
            workers.live_sum(|l| &l.latency_sum_ns),
        );
        let stats = workers.collect(config.quiet, |workers| {
            let now = clock.now();
            let completed = workers.live_sum(|l| &l.completed);
            let latency_sum = workers.live_sum(|l| &l.latency_sum_ns);
            let errors = workers.live_sum(|l| &l.errors);
            let timeouts = workers.live_sum(|l| &l.timeouts);
            let seconds = (now - last.0) as f64 / 1e9;
            let done = completed - last.1;
            let rate = done as f64 / seconds;
            let mean_us = if done > 0 { (latency_sum - last.2) as f64 / done as f64 / 1000.0 } else { 0.0 };
            last = (now, completed, latency_sum);
            let stage = if now < measure_from {
                "warm-up"
            } else if now < end {
                "measuring"
            } else {
                "draining"
            };
            let elapsed = now.saturating_sub(start) as f64 / 1e9;
            Some(format!(
                "loadgen: {elapsed:6.1}s {stage:<9} {rate:9.0} replies/s  mean {mean_us:9.1} us  errors {errors}  timeouts {timeouts}"
            ))
        })?;
        let instrument = InstrumentCost {
            cpu_s: process_cpu_seconds() - cpu_before,
            wall_s: wall_before.elapsed().as_secs_f64(),
            requests: workers.live_sum(|l| &l.sent) - sent_before,
        };
        let point = PointResult {
            offered_rps: offered,
            duration_s: config.duration.as_secs_f64(),
            stats,
            instrument,
        };
        if !config.quiet {
            let latency = crate::stats::Percentiles::of(&point.stats.all);
            eprintln!(
                "loadgen: point {}: {:.0} replies/s, p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, {} errors, {} timeouts",
                number + 1,
                point.throughput_rps(),
                latency.p50,
                latency.p99,
                latency.p99_9,
                point.stats.errors,
                point.stats.timeouts
            );
        }
        results.push(point);
    }
    Ok(RunOutput {
        config: config.to_json(),
        workload: workload_facts,
        points: results,
    })
}

/// CPU time used by the whole process so far, seconds.
fn process_cpu_seconds() -> f64 {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

fn show_duration(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64()).replace(".000s", "s")
}

/// One address per port.
fn resolve(config: &Config) -> Result<Vec<SocketAddr>, RunError> {
    let base = (config.host.as_str(), 0)
        .to_socket_addrs()
        .map_err(|error| {
            RunError::Connect(format!("cannot resolve host `{}`: {error}", config.host))
        })?
        .next()
        .ok_or_else(|| RunError::Connect(format!("host `{}` has no address", config.host)))?;
    if config.ports.is_empty() {
        return Err(RunError::Config("no ports to connect to".to_string()));
    }
    Ok(config
        .ports
        .iter()
        .map(|&port| SocketAddr::new(base.ip(), port))
        .collect())
}

/// Opens every connection, in port order as far as the connect policy allows (TCP: a few at a
/// time, each checked with a `version` round trip, failures retried; see `connect.rs`); the
/// first target that fails all its attempts ends the run with its address and the error.
fn connect_all(
    config: &Config,
    addrs: &[SocketAddr],
) -> Result<(Vec<ConnectionSpec>, Value), RunError> {
    let per_port = u64::from(config.connections_per_port);
    let targets: Vec<(SocketAddr, u64)> = addrs
        .iter()
        .flat_map(|&addr| (0..per_port).map(move |rank| (addr, rank)))
        .collect();
    let started = Instant::now();
    let (sockets, facts): (Vec<Socket>, Value) = match config.transport {
        Transport::Tcp => {
            let target_addrs: Vec<SocketAddr> = targets.iter().map(|&(addr, _)| addr).collect();
            let (streams, report) = connect_tcp_all(&target_addrs, &config.connect, config.quiet)
                .map_err(RunError::Connect)?;
            (
                streams.into_iter().map(Socket::Tcp).collect(),
                report.to_json(),
            )
        }
        Transport::Udp => {
            let sockets = targets
                .iter()
                .map(|&(addr, _)| connect_udp(addr).map(Socket::Udp))
                .collect::<Result<Vec<_>, _>>()?;
            let seconds = started.elapsed().as_secs_f64();
            (
                sockets,
                json!({ "connections": targets.len(), "retries": 0,
                        "seconds": (seconds * 1000.0).round() / 1000.0 }),
            )
        }
    };
    let specs = targets
        .iter()
        .zip(sockets)
        .enumerate()
        .map(|(index, (&(addr, rank), socket))| ConnectionSpec {
            addr,
            socket,
            global_index: index as u64,
            rank_on_port: rank,
            per_port,
        })
        .collect();
    Ok((specs, facts))
}

fn connect_udp(addr: SocketAddr) -> Result<mio::net::UdpSocket, RunError> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("constant address");
    let setup = |error: io::Error| {
        RunError::Connect(format!("cannot open a UDP socket to {addr}: {error}"))
    };
    let socket = UdpSocket::bind(local).map_err(setup)?;
    // A long reply arrives as a burst of datagrams; the default buffer (about 200 KiB) holds
    // about a hundred. Ask for more; the kernel caps it at net.core.rmem_max, which is fine.
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, UDP_RECEIVE_BUFFER);
    socket.connect(addr).map_err(setup)?;
    socket.set_nonblocking(true).map_err(setup)?;
    Ok(mio::net::UdpSocket::from_std(socket))
}

/// Deals the connections out round-robin (so each worker gets a mix of ports) and starts one
/// thread per worker.
fn start_workers(
    config: &Config,
    specs: Vec<ConnectionSpec>,
    workload: &Arc<Workload>,
    clock: Clock,
) -> Result<Workers, RunError> {
    let count = config.threads.min(specs.len()).max(1);
    let mut shares: Vec<Vec<ConnectionSpec>> = (0..count).map(|_| Vec::new()).collect();
    for (i, spec) in specs.into_iter().enumerate() {
        shares[i % count].push(spec);
    }
    let (report_sender, reports) = mpsc::channel();
    let mut workers = Workers {
        commands: Vec::new(),
        reports,
        live: Vec::new(),
        handles: Vec::new(),
    };
    for (index, share) in shares.into_iter().enumerate() {
        let live = Arc::new(LiveCounters::default());
        let worker = Worker::new(index, share, Arc::clone(workload), clock, Arc::clone(&live))
            .map_err(|error| RunError::System(format!("cannot set up worker {index}: {error}")))?;
        let (command_sender, commands) = mpsc::channel();
        let reports = report_sender.clone();
        let handle = thread::Builder::new()
            .name(format!("loadgen-worker-{index}"))
            .spawn(move || worker.serve(commands, reports))
            .map_err(|error| {
                RunError::System(format!("cannot start worker thread {index}: {error}"))
            })?;
        workers.commands.push(command_sender);
        workers.live.push(live);
        workers.handles.push(handle);
    }
    Ok(workers)
}

/// Raises the soft open-file limit toward `needed` (1000 connections need more than the usual
/// 1024 once the process's other descriptors are counted).
fn raise_file_limit(needed: usize, quiet: bool) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed as u64 {
        return;
    }
    let wanted = limit.maximum.map_or(needed as u64, |maximum| {
        maximum.min(needed.max(65_536) as u64)
    });
    let raised = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    );
    if (raised.is_err() || wanted < needed as u64) && !quiet {
        eprintln!(
            "loadgen: warning: {needed} file descriptors needed, the limit is {current}; raise it with `ulimit -n {needed}`"
        );
    }
}
