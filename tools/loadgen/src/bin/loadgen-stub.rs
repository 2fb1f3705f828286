//! `loadgen-stub`: a stub memcached that answers every `get` with a fixed value and every `set`
//! with `STORED`, on many ports, TCP and UDP, after an exact delay. It calibrates `loadgen`: with
//! no delay it shows the instrument's own latency floor; with a delay D the latency `loadgen`
//! reports must be D plus that floor.
//!
//! It prints `ports P1,P2,...` on standard output once it listens (with `--count N` the ports
//! are free ones the system picks), then serves until `--for` has passed or it is killed.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loadgen::config::{compact_ports, parse_duration, parse_ports};
use loadgen::stub::{Stub, StubConfig};

#[derive(Parser)]
#[command(
    name = "loadgen-stub",
    version,
    about = "A stub memcached with an exact reply delay, to calibrate loadgen"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Ports to listen on (TCP and UDP): `11211-11214` or a list.
    #[arg(long, value_parser = |text: &str| parse_ports(text).map(PortList), conflicts_with = "count")]
    ports: Option<PortList>,
    /// Listen on this many free ports picked by the system.
    #[arg(long)]
    count: Option<usize>,
    /// How long after a request arrives its reply leaves (`5ms`).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    delay: Duration,
    /// Size of the value every get returns, bytes.
    #[arg(long, default_value_t = 200)]
    value_size: usize,
    /// Stop after this long (default: serve until killed).
    #[arg(long = "for", value_parser = parse_duration)]
    run_for: Option<Duration>,
}

/// The `--ports` value, one list (clap would read a bare `Vec` as a repeated option).
#[derive(Clone, Debug)]
struct PortList(Vec<u16>);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ports = match (cli.ports, cli.count) {
        (Some(PortList(ports)), _) => ports,
        (None, Some(count)) if count > 0 => vec![0; count],
        _ => vec![0],
    };
    let config = StubConfig {
        host: cli.host,
        ports,
        delay: cli.delay,
        value_size: cli.value_size,
        run_for: cli.run_for,
    };
    let stub = match Stub::bind(&config) {
        Ok(stub) => stub,
        Err(error) => {
            eprintln!("loadgen-stub: error: cannot listen: {error}");
            return ExitCode::from(1);
        }
    };
    let list: Vec<String> = stub.ports.iter().map(u16::to_string).collect();
    println!("ports {}", list.join(","));
    let _ = std::io::stdout().flush();
    eprintln!(
        "loadgen-stub: {} ports ({}) on {}, delay {:?}, {}-byte values",
        stub.ports.len(),
        compact_ports(&stub.ports),
        cli.host,
        cli.delay,
        cli.value_size
    );
    match stub.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen-stub: error: {error}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["loadgen-stub", "--ports", "11211-11213", "--delay", "5ms"])
            .unwrap();
        assert!(matches!(cli.ports, Some(PortList(ref ports)) if ports == &[11211, 11212, 11213]));
        assert_eq!(cli.delay, Duration::from_millis(5));
    }
}
