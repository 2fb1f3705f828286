//! `loadgen`: drive memcached servers with an open- or closed-loop workload and report latency
//! percentiles, throughput, errors and misses.
//!
//! ```text
//! loadgen --ports 11211-11214 --rate 20000 --duration 10s            # open loop, TCP
//! loadgen --ports 11211-11510 --protocol udp --rate-per-connection 7000 --key-size 16 --value-size 135
//! loadgen --ports 11211 --connections-per-port 8 --depth 4            # closed loop
//! loadgen --ports 11211-11214 --sweep 10k,20k,40k,80k --plot sweep.svg
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use loadgen::config::{
    parse_duration, parse_ports, parse_rate, parse_rates, Config, Load, Rate, Transport,
    DEFAULT_MAX_VALUE, DEFAULT_POPULATE_PER_PORT,
};
use loadgen::connect::ConnectPolicy;
use loadgen::dist::{Arrivals, Popularity, SizeDist};
use loadgen::plot::render_svg;
use loadgen::run::{run, RunError};

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    // A later option overrides an earlier one, so scripts can add to a shared set of options.
    args_override_self = true,
    about = "A mutilate-style memcached load generator: open loop (Poisson, latency from the intended send time) \
             or closed loop, TCP or UDP, over many ports; HDR percentiles, JSON, latency-vs-load sweeps",
    after_help = "Distributions: N | fixed:N | uniform:LOW,HIGH | fb-key | fb-value | gev:LOC,SCALE,SHAPE | gpareto:LOC,SCALE,SHAPE\n\
                  fb-key = GEV(30.7984, 8.20449, 0.078688), fb-value = GPareto(0, 214.476, 0.348238) (Facebook ETC, as in mutilate).\n\
                  Exit status: 0 run done (check errors/timeouts in the report), 1 the run could not be done, 2 bad arguments."
)]
struct Cli {
    /// Server host name or address.
    #[arg(value_name = "HOST", long, default_value = "127.0.0.1")]
    host: String,
    /// Ports, one server each: `11211`, `11211-11510`, or a list `11211,11300-11310`.
    #[arg(value_name = "PORTS", long, short = 'p', default_value = "11211", value_parser = |text: &str| parse_ports(text).map(List))]
    ports: List<u16>,
    /// Connections to each port.
    #[arg(value_name = "N", long, short = 'c', default_value_t = 1)]
    connections_per_port: u32,
    /// Worker threads (each runs an event loop over its share of the connections); default: the
    /// number of CPUs, at most 4.
    #[arg(value_name = "N", long, short = 't')]
    threads: Option<usize>,
    /// tcp or udp (memcached's UDP frame header, request ids, multi-datagram replies).
    #[arg(long, visible_alias = "transport", value_enum, default_value_t = Protocol::Tcp)]
    protocol: Protocol,
    /// open (requests on a schedule) or closed (next request when the reply arrives); default:
    /// open if a rate or sweep is given, closed otherwise.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Open loop: the aggregate offered rate over all connections, requests/s (`50k` allowed).
    #[arg(value_name = "RATE", long, short = 'r', value_parser = parse_rate, conflicts_with_all = ["rate_per_connection", "sweep"])]
    rate: Option<f64>,
    /// Open loop: the offered rate of each connection, requests/s (the paper's per-client rate).
    #[arg(value_name = "RATE", long, value_parser = parse_rate, conflicts_with = "sweep")]
    rate_per_connection: Option<f64>,
    /// Open loop: run once per aggregate rate (`1000,2000,4000`), plot latency against load.
    #[arg(value_name = "RATES", long, value_parser = |text: &str| parse_rates(text).map(List))]
    sweep: Option<List<f64>>,
    /// Open loop: gaps between a connection's requests: poisson, fixed, or fb-ia (Facebook ETC
    /// generalized Pareto, shape 0.154971, scaled to the rate).
    #[arg(value_name = "PROCESS", long, default_value = "poisson", value_parser = Arrivals::parse)]
    arrivals: Arrivals,
    /// Closed loop: requests outstanding per connection.
    #[arg(value_name = "N", long, default_value_t = 1)]
    depth: u32,
    /// Closed loop: pause between a reply and the next request (`100us`).
    #[arg(value_name = "DURATION", long, default_value = "0", value_parser = parse_duration)]
    think: Duration,
    /// Fraction of requests that are `get` (the rest are `set`).
    #[arg(value_name = "FRACTION", long, default_value_t = 0.95)]
    get_ratio: f64,
    /// Key size distribution, bytes (the seed experiment: 30; the paper: 16).
    #[arg(value_name = "DIST", long, default_value = "30", value_parser = SizeDist::parse)]
    key_size: SizeDist,
    /// Value size distribution, bytes (the seed experiment: 200; the paper: 135).
    #[arg(value_name = "DIST", long, default_value = "200", value_parser = SizeDist::parse)]
    value_size: SizeDist,
    /// Values are capped at this size (memcached's default item limit is 1 MiB with overhead).
    #[arg(value_name = "BYTES", long, default_value_t = DEFAULT_MAX_VALUE)]
    max_value_size: usize,
    /// Number of distinct keys (each server gets all of them).
    #[arg(value_name = "N", long, default_value_t = 10_000)]
    keys: u64,
    /// Key popularity: uniform, zipf (s = 0.99) or zipf:S.
    #[arg(value_name = "POPULARITY", long, default_value = "uniform", value_parser = Popularity::parse)]
    popularity: Popularity,
    /// Do not store every key before the run (gets of unstored keys then miss).
    #[arg(long)]
    no_populate: bool,
    /// Populate: `set`s in flight per port (split between its connections, at least one each).
    /// Lower it when many ports share one slow path (1000 instances in an emulated guest).
    #[arg(value_name = "N", long, default_value_t = DEFAULT_POPULATE_PER_PORT)]
    populate_depth: u32,
    /// Load applied before measuring starts, per point (its replies are not counted).
    #[arg(value_name = "DURATION", long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// The measured interval, per point.
    #[arg(value_name = "DURATION", long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A UDP request unanswered this long is a timeout; also how long the end of a run waits
    /// for outstanding replies.
    #[arg(value_name = "DURATION", long, default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,
    /// Busy-poll this long before each due send instead of sleeping through it (`50us`): sends
    /// leave closer to their intended times at the cost of CPU; 0 sleeps until due.
    #[arg(value_name = "DURATION", long, default_value = "0", value_parser = parse_duration)]
    spin: Duration,
    /// Seed of every random choice (same seed, same requests).
    #[arg(value_name = "N", long, default_value_t = 1)]
    seed: u64,
    /// Print the report as JSON on standard output instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file (a sweep's default: the plot's name with .json).
    #[arg(value_name = "FILE", long, short = 'o')]
    output: Option<PathBuf>,
    /// Where a sweep writes its latency-versus-load plot (SVG).
    #[arg(value_name = "FILE", long, default_value = "loadgen-sweep.svg")]
    plot: PathBuf,
    /// No progress lines on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// TCP setup: connection attempts in progress at once (connect plus the `version` check);
    /// connections are opened gradually so a server (or QEMU user networking in front of one)
    /// is not flooded with connects.
    #[arg(value_name = "N", long, default_value_t = ConnectPolicy::default().in_flight)]
    connect_concurrency: usize,
    /// TCP setup: at most this many new connection attempts per second (`200`, `1k`); default:
    /// limited only by --connect-concurrency.
    #[arg(value_name = "RATE", long, value_parser = parse_rate)]
    connect_rate: Option<f64>,
    /// TCP setup: attempts per connection before the run gives up (waits between them start
    /// at 250 ms and double, up to 4 s).
    #[arg(value_name = "N", long, default_value_t = ConnectPolicy::default().attempts)]
    connect_attempts: u32,
    /// TCP setup: how long one attempt (connect and check) may take.
    #[arg(value_name = "DURATION", long, default_value = "5s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// TCP setup: count a connection as up once connect() succeeds, without checking that
    /// the server answers `version` on it.
    #[arg(long)]
    no_connect_check: bool,
}

/// A comma-separated option value that is one list (clap would read a bare `Vec` as a repeated
/// option).
#[derive(Clone, Debug)]
struct List<T>(Vec<T>);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Open,
    Closed,
}

/// Turns the command line into a run configuration.
fn configure(cli: &Cli) -> Result<Config, String> {
    let rates: Option<Vec<Rate>> = if let Some(List(sweep)) = &cli.sweep {
        Some(sweep.iter().map(|&rate| Rate::Aggregate(rate)).collect())
    } else if let Some(rate) = cli.rate {
        Some(vec![Rate::Aggregate(rate)])
    } else {
        cli.rate_per_connection
            .map(|rate| vec![Rate::PerConnection(rate)])
    };
    let load = match (cli.mode, rates) {
        (Some(Mode::Closed), Some(_)) => {
            return Err("--mode closed takes no --rate, --rate-per-connection or --sweep (it sends as fast as replies come)".into())
        }
        (Some(Mode::Open), None) => return Err("--mode open needs --rate, --rate-per-connection or --sweep".into()),
        (_, Some(rates)) => Load::Open { rates, arrivals: cli.arrivals },
        (_, None) => Load::Closed { depth: cli.depth, think: cli.think },
    };
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    });
    let config = Config {
        host: cli.host.clone(),
        ports: cli.ports.0.clone(),
        connections_per_port: cli.connections_per_port,
        threads,
        transport: match cli.protocol {
            Protocol::Tcp => Transport::Tcp,
            Protocol::Udp => Transport::Udp,
        },
        load,
        sweep: cli.sweep.is_some(),
        get_ratio: cli.get_ratio,
        key_size: cli.key_size,
        value_size: cli.value_size,
        max_value: cli.max_value_size,
        keys: cli.keys,
        popularity: cli.popularity.clone(),
        populate: !cli.no_populate,
        populate_per_port: cli.populate_depth,
        warmup: cli.warmup,
        duration: cli.duration,
        timeout: cli.timeout,
        spin: cli.spin,
        seed: cli.seed,
        quiet: cli.quiet,
        connect: ConnectPolicy {
            in_flight: cli.connect_concurrency,
            rate: cli.connect_rate,
            attempts: cli.connect_attempts,
            timeout: cli.connect_timeout,
            check: !cli.no_connect_check,
            ..ConnectPolicy::default()
        },
    };
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match configure(&cli) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("loadgen: error: {message}");
            return ExitCode::from(2);
        }
    };
    let output = match run(&config) {
        Ok(output) => output,
        Err(error) => {
            eprintln!("loadgen: error: {error}");
            return ExitCode::from(match error {
                RunError::Config(_) => 2,
                _ => 1,
            });
        }
    };
    let json = output.to_json();
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    let mut json_path = cli.output.clone();
    if config.sweep {
        let title = format!(
            "{} {} over {} ports x {} connections, {} gets, keys {} B, values {}",
            config.transport.name().to_uppercase(),
            "open loop",
            config.ports.len(),
            config.connections_per_port,
            config.get_ratio,
            config.key_size,
            config.value_size
        );
        if let Err(error) = std::fs::write(&cli.plot, render_svg(&output.points, &title)) {
            eprintln!(
                "loadgen: error: cannot write the plot to {}: {error}",
                cli.plot.display()
            );
            return ExitCode::from(1);
        }
        json_path.get_or_insert_with(|| cli.plot.with_extension("json"));
        if !cli.quiet {
            eprintln!("loadgen: plot written to {}", cli.plot.display());
        }
    }
    if let Some(path) = &json_path {
        if let Err(error) = std::fs::write(path, format!("{text}\n")) {
            eprintln!(
                "loadgen: error: cannot write the JSON report to {}: {error}",
                path.display()
            );
            return ExitCode::from(1);
        }
        if !cli.quiet {
            eprintln!("loadgen: JSON report written to {}", path.display());
        }
    }
    if cli.json {
        println!("{text}");
    } else {
        for (number, point) in output.points.iter().enumerate() {
            if output.points.len() > 1 {
                println!("point {}:", number + 1);
            }
            print!("{}", point.to_text());
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn configure_from(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        configure(&cli)
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_seed_experiment() {
        let config = configure_from(&[]).unwrap();
        assert_eq!(config.key_size, SizeDist::Fixed(30));
        assert_eq!(config.value_size, SizeDist::Fixed(200));
        assert_eq!(config.ports, [11211]);
        assert!(matches!(config.load, Load::Closed { depth: 1, .. }));
        assert!(config.populate);
        assert_eq!(config.populate_per_port, 64);
    }

    #[test]
    fn rates_choose_open_loop() {
        let config =
            configure_from(&["--ports", "11211-11510", "--rate-per-connection", "7000"]).unwrap();
        assert_eq!(config.ports.len(), 300);
        assert!(
            matches!(&config.load, Load::Open { rates, .. } if rates == &[Rate::PerConnection(7000.0)])
        );
        let sweep = configure_from(&["--sweep", "1k,2k,4000", "--arrivals", "fb-ia"]).unwrap();
        assert!(sweep.sweep);
        assert!(
            matches!(&sweep.load, Load::Open { rates, arrivals: Arrivals::FacebookEtc } if rates.len() == 3)
        );
    }

    #[test]
    fn a_later_option_overrides_an_earlier_one() {
        let config = configure_from(&[
            "--keys",
            "10",
            "--threads",
            "1",
            "--keys",
            "20",
            "--threads",
            "2",
        ])
        .unwrap();
        assert_eq!((config.keys, config.threads), (20, 2));
    }

    #[test]
    fn contradictions_are_refused() {
        assert!(configure_from(&["--mode", "closed", "--rate", "100"])
            .unwrap_err()
            .contains("takes no --rate"));
        assert!(configure_from(&["--mode", "open"])
            .unwrap_err()
            .contains("needs --rate"));
        assert!(configure_from(&["--rate", "1", "--sweep", "1,2"]).is_err());
        assert!(configure_from(&["--get-ratio", "1.5"])
            .unwrap_err()
            .contains("between 0 and 1"));
        assert!(configure_from(&["--ports", "11300-11211"])
            .unwrap_err()
            .contains("runs backwards"));
        assert!(configure_from(&["--value-size", "uniform:10,2000000"])
            .unwrap_err()
            .contains("--max-value-size"));
        assert!(configure_from(&["--connect-concurrency", "0"])
            .unwrap_err()
            .contains("--connect-concurrency"));
        assert!(configure_from(&["--connect-attempts", "0"])
            .unwrap_err()
            .contains("--connect-attempts"));
    }

    #[test]
    fn connect_options() {
        let config = configure_from(&[]).unwrap();
        assert_eq!(config.connect, ConnectPolicy::default());
        let config = configure_from(&[
            "--connect-concurrency",
            "8",
            "--connect-rate",
            "200",
            "--connect-attempts",
            "9",
            "--connect-timeout",
            "10s",
            "--no-connect-check",
        ])
        .unwrap();
        assert_eq!(config.connect.in_flight, 8);
        assert_eq!(config.connect.rate, Some(200.0));
        assert_eq!(config.connect.attempts, 9);
        assert_eq!(config.connect.timeout, Duration::from_secs(10));
        assert!(!config.connect.check);
        assert_eq!(config.to_json()["connect"]["in_flight"], 8);
    }
}
