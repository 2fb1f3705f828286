//! Fuzz target: arbitrary bytes into the services file parser (`config::parse`), which reads an
//! untrusted region.
//!
//! Checks, beyond "nothing panics":
//! - an error points inside the text (line and column) and its message is bounded;
//! - what parses is valid: names, fork ids, ports, limits, no port served twice per protocol, no
//!   fork grant shared, and `lookup`/`by_fork` find each service;
//! - rendering the parsed services back into a file and parsing that gives the same services
//!   (the parser has no renderer; the target writes the canonical form);
//! - the manager accepts the services and its statistics record round-trips.
//!
//! The same bytes also go into `StatsRecord::decode` (the host tool's parser of stats dumps):
//! nothing may panic, and what decodes re-encodes to something that decodes the same.

#![no_main]

use std::fmt::Write as _;

use edgeos_manager_core::config::{FORK_IDS, MAX_IDLE, MAX_NAME, MAX_POOL, MAX_SERVICES};
use edgeos_manager_core::stats::StatsRecord;
use edgeos_manager_core::{parse, Manager, Policy, Protocol, Services};
use libfuzzer_sys::fuzz_target;

/// The canonical text of `services`: one line per service, every field spelled out.
fn render(services: &Services) -> String {
    let mut text = String::new();
    for (_, s) in services.iter() {
        writeln!(
            text,
            "service {} fork {} ports {}-{} protocols {} policy {} idle {} pool {}",
            s.name,
            s.fork,
            s.port_lo,
            s.port_hi,
            s.protocols_text(),
            s.policy.name(),
            s.idle_secs,
            s.pool
        )
        .unwrap();
    }
    text
}

fn check_valid(services: &Services, lines: usize) {
    assert!(services.len() <= MAX_SERVICES);
    let mut last_line = 0;
    for (id, s) in services.iter() {
        assert!(!s.name.is_empty() && s.name.len() <= MAX_NAME);
        assert!(s
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(u32::from(s.fork) < FORK_IDS);
        assert!(1 <= s.port_lo && s.port_lo <= s.port_hi);
        assert!((1..=3).contains(&s.protocols));
        assert!(s.idle_secs <= MAX_IDLE && s.pool <= MAX_POOL);
        assert!(s.line as usize > last_line && s.line as usize <= lines);
        last_line = s.line as usize;
        assert_eq!(services.by_fork(s.fork), Some(id));
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            if s.has_protocol(protocol) {
                assert_eq!(services.lookup(protocol, s.port_lo), Some(id));
                assert_eq!(services.lookup(protocol, s.port_hi), Some(id));
            }
        }
        for (other_id, other) in services.iter().filter(|(other_id, _)| *other_id != id) {
            assert_ne!(
                s.name, other.name,
                "services {id} and {other_id} share a name"
            );
            let overlap = s.port_lo <= other.port_hi && other.port_lo <= s.port_hi;
            assert!(
                !(overlap && s.protocols & other.protocols != 0),
                "services {id} and {other_id} overlap"
            );
        }
        assert!(matches!(
            s.policy,
            Policy::Port | Policy::Client | Policy::Shared
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];
    let lines = text.split(|&b| b == b'\n').count();
    match parse(data) {
        Err(error) => {
            assert!(error.line >= 1 && error.line as usize <= lines, "{error}");
            let line = text
                .split(|&b| b == b'\n')
                .nth(error.line as usize - 1)
                .unwrap();
            assert!(
                error.col >= 1 && error.col as usize <= line.len() + 1,
                "{error}"
            );
            assert!(
                !error.message.is_empty() && error.message.len() <= 512,
                "{error}"
            );
            assert_eq!(
                parse(text),
                Err(error),
                "bytes after the first NUL changed the result"
            );
        }
        Ok(services) => {
            check_valid(&services, lines);
            let rendered = render(&services);
            let reparsed = parse(rendered.as_bytes()).unwrap_or_else(|error| {
                panic!("rendered services do not parse: {error}\n{rendered}")
            });
            assert_eq!(reparsed.len(), services.len());
            for ((_, a), (_, b)) in services.iter().zip(reparsed.iter()) {
                let b = edgeos_manager_core::Service {
                    line: a.line,
                    ..b.clone()
                };
                assert_eq!(*a, b, "rendering changed a service:\n{rendered}");
            }
            assert_eq!(render(&reparsed), rendered);

            let ticks = 1 + u64::from(data.last().copied().unwrap_or(0)) * 1_000_000;
            let manager = Manager::new(&services, ticks);
            manager.check_invariants().unwrap();
            let record = manager.record(8, 1234);
            let mut buffer = vec![0u8; record.size()];
            assert_eq!(record.encode(&mut buffer), Some(record.size()));
            assert_eq!(StatsRecord::decode(&buffer).as_ref(), Ok(&record));
            let mut direct = vec![0u8; record.size()];
            assert_eq!(
                manager.encode_stats(8, 1234, &mut direct),
                Some(record.size())
            );
            assert!(direct == buffer);
        }
    }

    if let Ok(record) = StatsRecord::decode(data) {
        let mut buffer = vec![0u8; record.size()];
        if record.encode(&mut buffer).is_some() {
            assert_eq!(StatsRecord::decode(&buffer), Ok(record));
        }
    }
});
