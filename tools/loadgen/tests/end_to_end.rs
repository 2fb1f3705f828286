//! The whole generator (coordinator, workers, event loops) against the stub server in this
//! process, over loopback: every request answered, rates met, a known delay measured as such,
//! long replies reassembled from many reads and datagrams.

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::Duration;

use loadgen::config::{Config, Load, Rate, Transport};
use loadgen::connect::ConnectPolicy;
use loadgen::dist::{Arrivals, Popularity, SizeDist};
use loadgen::run::{run, RunError};
use loadgen::stats::Percentiles;
use loadgen::stub::{Stub, StubConfig};

/// Starts a stub on `count` free ports for `seconds`; returns its ports.
fn stub(count: usize, delay: Duration, value_size: usize, seconds: u64) -> Vec<u16> {
    let config = StubConfig {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ports: vec![0; count],
        delay,
        value_size,
        run_for: Some(Duration::from_secs(seconds)),
    };
    let stub = Stub::bind(&config).expect("bind the stub");
    let ports = stub.ports.clone();
    thread::spawn(move || stub.serve());
    ports
}

fn config(ports: Vec<u16>, transport: Transport, load: Load) -> Config {
    Config {
        host: "127.0.0.1".to_string(),
        ports,
        connections_per_port: 2,
        threads: 2,
        transport,
        load,
        sweep: false,
        get_ratio: 0.9,
        key_size: SizeDist::Fixed(30),
        value_size: SizeDist::Fixed(200),
        max_value: 1_000_000,
        keys: 200,
        popularity: Popularity::Uniform,
        populate: true,
        populate_per_port: 64,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(800),
        timeout: Duration::from_secs(1),
        spin: Duration::ZERO,
        seed: 3,
        quiet: true,
        connect: ConnectPolicy::default(),
    }
}

fn open(rate: f64) -> Load {
    Load::Open {
        rates: vec![Rate::Aggregate(rate)],
        arrivals: Arrivals::Poisson,
    }
}

#[test]
fn open_loop_tcp_and_udp_meet_the_rate_without_errors() {
    let ports = stub(3, Duration::ZERO, 200, 30);
    for transport in [Transport::Tcp, Transport::Udp] {
        let output = run(&config(ports.clone(), transport, open(4000.0))).expect("run");
        let point = &output.points[0];
        let stats = &point.stats;
        assert_eq!(
            (stats.errors, stats.timeouts, stats.misses),
            (0, 0, 0),
            "{transport:?}: {:?}",
            stats.error_samples
        );
        assert_eq!(stats.completed, stats.sent);
        // 3200 requests expected; Poisson noise is about 57.
        let off = (point.throughput_rps() - 4000.0).abs() / 4000.0;
        assert!(
            off < 0.08,
            "{transport:?}: {} replies/s",
            point.throughput_rps()
        );
        assert!(stats.sets > 0 && stats.hits > stats.sets);
        assert_eq!(stats.gets + stats.sets, stats.completed);
    }
}

#[test]
fn closed_loop_keeps_every_connection_busy() {
    let ports = stub(2, Duration::ZERO, 200, 30);
    for transport in [Transport::Tcp, Transport::Udp] {
        let load = Load::Closed {
            depth: 2,
            think: Duration::ZERO,
        };
        let output = run(&config(ports.clone(), transport, load)).expect("run");
        let stats = &output.points[0].stats;
        assert_eq!(
            (stats.errors, stats.timeouts),
            (0, 0),
            "{:?}",
            stats.error_samples
        );
        assert!(
            stats.completed > 500,
            "{transport:?}: only {} replies",
            stats.completed
        );
    }
}

#[test]
fn a_known_server_delay_is_reported_as_such() {
    let delay = Duration::from_millis(20);
    let ports = stub(2, delay, 200, 30);
    for transport in [Transport::Tcp, Transport::Udp] {
        let output = run(&config(ports.clone(), transport, open(500.0))).expect("run");
        let stats = &output.points[0].stats;
        assert_eq!((stats.errors, stats.timeouts), (0, 0));
        let latency = Percentiles::of(&stats.all);
        // Never below the delay; the median within a few milliseconds of it even on a busy
        // machine (run.sh checks a tighter bound).
        assert!(
            latency.min >= 20_000.0,
            "{transport:?}: min {} us",
            latency.min
        );
        assert!(
            latency.p50 < 25_000.0,
            "{transport:?}: p50 {} us",
            latency.p50
        );
    }
}

#[test]
fn long_values_arrive_in_pieces_and_are_parsed_whole() {
    // A 100 kB TCP reply spans several reads; a 20 kB UDP reply is 15 datagrams.
    for (transport, size) in [(Transport::Tcp, 100_000), (Transport::Udp, 20_000)] {
        let ports = stub(1, Duration::ZERO, size, 30);
        let mut config = config(ports, transport, open(300.0));
        config.get_ratio = 1.0;
        config.populate = false;
        let output = run(&config).expect("run");
        let stats = &output.points[0].stats;
        assert_eq!(
            (stats.errors, stats.timeouts),
            (0, 0),
            "{transport:?}: {:?}",
            stats.error_samples
        );
        assert!(stats.hits > 150, "{transport:?}: {} hits", stats.hits);
    }
}

#[test]
fn a_refused_connection_names_its_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match run(&config(vec![port], Transport::Tcp, open(100.0))) {
        Err(RunError::Connect(message)) => {
            assert!(
                message.contains(&format!("127.0.0.1:{port}"))
                    && message.contains("connection refused"),
                "{message}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
}
