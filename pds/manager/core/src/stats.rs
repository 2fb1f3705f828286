//! The manager's statistics, and the binary record the PD writes into its stats region for a
//! host tool (`manager-stats`) to read from a memory dump or a running QEMU.
//!
//! Layout (version 1, little-endian, offsets in bytes):
//!
//! | offset | size | header field |
//! |---|---|---|
//! | 0 | 4 | magic `0x53474d45` (the bytes `EMGS`) |
//! | 4 | 2 | version (1) |
//! | 6 | 2 | header size (64) |
//! | 8 | 2 | service record size (512) |
//! | 10 | 2 | service count |
//! | 12 | 4 | sequence: odd while the PD rewrites the record (a reader retries) |
//! | 16 | 8 | counter frequency (ticks per second) |
//! | 24 | 8 | counter value when written |
//! | 32 | 8 | requests naming no service |
//! | 40 | 4 | instances on the dead list |
//! | 44 | 20 | zero |
//!
//! Then one record per service, at `header size + i * record size`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | name, NUL-padded |
//! | 32 | 1+1+1+1 | fork id, policy (0 port, 1 client, 2 shared), protocols (bit 0 TCP, bit 1 UDP), 0 |
//! | 36 | 2+2 | ports low, high |
//! | 40 | 4+4 | idle seconds, pool target |
//! | 48 | 4 each | gauges: live, pooled, assigned, retiring |
//! | 64 | 8 each | counters: forked, destroyed, faulted, assignments, refused, pool hits, pool misses, idle reclaims, releases, fork failures, recycled |
//! | 152 | 8 each | fork latency: count, min, max, sum (counter ticks) |
//! | 184 | 4 x 80 | fork latency histogram ([`Histogram`] buckets) |
//! | 504 | 8 | zero |
//!
//! A reader accepts larger header and record sizes (fields appended by a later version 1).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::{protocols_text, Policy, Service, MAX_NAME, MAX_SERVICES};

pub const MAGIC: u32 = 0x5347_4d45;
pub const VERSION: u16 = 1;
pub const HEADER_SIZE: usize = 64;
pub const SERVICE_RECORD_SIZE: usize = 512;
/// Where the sequence word is (a writer makes it odd, rewrites the rest, then makes it even).
pub const SEQUENCE_OFFSET: usize = 12;
/// Histogram buckets: values below 4 exactly, then 4 buckets per power of two up to 2^21 ticks
/// (the last bucket also holds everything larger).
pub const BUCKETS: usize = 80;

/// Bytes a record with `services` services takes.
pub const fn record_size(services: usize) -> usize {
    HEADER_SIZE + services * SERVICE_RECORD_SIZE
}

/// A small fixed-size log-linear histogram of counter ticks (precision 12.5%), with the exact
/// minimum and maximum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub sum: u64,
    pub buckets: [u32; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { count: 0, min: 0, max: 0, sum: 0, buckets: [0; BUCKETS] }
    }
}

impl Histogram {
    /// The bucket of value `v`.
    pub fn bucket(v: u64) -> usize {
        if v < 4 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros() as usize;
        let sub = ((v >> (msb - 2)) & 3) as usize;
        (4 * (msb - 1) + sub).min(BUCKETS - 1)
    }

    /// The largest value bucket `b` holds (the last bucket: unbounded, reported as its start's
    /// bound).
    pub fn bucket_high(b: usize) -> u64 {
        if b < 4 {
            return b as u64;
        }
        let msb = b / 4 + 1;
        let sub = (b % 4) as u64;
        ((4 + sub + 1) << (msb - 2)) - 1
    }

    pub fn record(&mut self, v: u64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        let b = &mut self.buckets[Self::bucket(v)];
        *b = b.saturating_add(1);
    }

    /// The value at `per_mille` (500: median, 990: p99): the high end of the bucket holding
    /// that rank, clamped to [min, max]. 0 when empty.
    pub fn quantile(&self, per_mille: u64) -> u64 {
        let total: u64 = self.buckets.iter().map(|&b| b as u64).sum();
        if total == 0 {
            return 0;
        }
        let rank = (total * per_mille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (i, &b) in self.buckets.iter().enumerate() {
            seen += b as u64;
            if seen >= rank {
                return Self::bucket_high(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

/// One service's statistics: its configuration, gauges, counters and fork latency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub name: String,
    pub fork: u8,
    /// [`Policy`] as a number.
    pub policy: u8,
    pub protocols: u8,
    pub port_lo: u16,
    pub port_hi: u16,
    pub idle_secs: u32,
    pub pool_target: u32,
    /// Instances that exist in the kernel (pooled + assigned + retiring + being reclaimed).
    pub live: u32,
    pub pooled: u32,
    pub assigned: u32,
    /// On the dead list.
    pub retiring: u32,
    pub forked: u64,
    pub destroyed: u64,
    pub faulted: u64,
    /// Requests answered with an instance.
    pub assignments: u64,
    /// Requests refused (protocol or port not served, fork refused).
    pub refused: u64,
    pub pool_hits: u64,
    pub pool_misses: u64,
    pub idle_reclaims: u64,
    /// Instances the virtualiser released.
    pub releases: u64,
    pub fork_failures: u64,
    pub recycled: u64,
    /// Counter ticks per fork (request forks and pool forks).
    pub fork_latency: Histogram,
}

impl ServiceStats {
    pub fn new(s: &Service) -> Self {
        ServiceStats {
            name: s.name.clone(),
            fork: s.fork,
            policy: s.policy as u8,
            protocols: s.protocols,
            port_lo: s.port_lo,
            port_hi: s.port_hi,
            idle_secs: s.idle_secs,
            pool_target: s.pool,
            ..Default::default()
        }
    }
}

/// Everything the stats region holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsRecord {
    pub sequence: u32,
    pub counter_frequency: u64,
    pub now: u64,
    pub bad_requests: u64,
    pub dead_pending: u32,
    pub services: Vec<ServiceStats>,
}

/// Why bytes are not a statistics record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooShort { needed: usize, got: usize },
    BadMagic(u32),
    UnsupportedVersion(u16),
    BadLayout,
    /// The PD was rewriting it (odd sequence): read again.
    Torn,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DecodeError::TooShort { needed, got } => write!(f, "record too short: {got} bytes, needs {needed}"),
            DecodeError::BadMagic(m) => write!(f, "bad magic {m:#010x} (expected {MAGIC:#010x}: not a manager stats record)"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported version {v} (this reader knows {VERSION})"),
            DecodeError::BadLayout => write!(f, "bad header or record size, or too many services"),
            DecodeError::Torn => write!(f, "the record was being rewritten (odd sequence); read it again"),
        }
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.buf[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

/// Writes a record from its parts into `out` (zeroing the rest; no allocation); `None` if it
/// does not fit.
pub fn encode_parts<'a>(
    sequence: u32,
    counter_frequency: u64,
    now: u64,
    bad_requests: u64,
    dead_pending: u32,
    services: impl ExactSizeIterator<Item = &'a ServiceStats>,
    out: &mut [u8],
) -> Option<usize> {
    let count = services.len();
    let n = record_size(count);
    if out.len() < n || count > MAX_SERVICES {
        return None;
    }
    out.fill(0);
    encode_header(sequence, counter_frequency, now, bad_requests, dead_pending, count, out);
    for (i, s) in services.enumerate() {
        encode_service(i, s, true, out);
    }
    Some(n)
}

/// Writes the header (`out` holds at least [`HEADER_SIZE`] bytes).
pub(crate) fn encode_header(sequence: u32, counter_frequency: u64, now: u64, bad_requests: u64, dead_pending: u32, count: usize, out: &mut [u8]) {
    let mut w = Writer { buf: out, at: 0 };
    w.u32(MAGIC);
    w.u16(VERSION);
    w.u16(HEADER_SIZE as u16);
    w.u16(SERVICE_RECORD_SIZE as u16);
    w.u16(count as u16);
    w.u32(sequence);
    w.u64(counter_frequency);
    w.u64(now);
    w.u64(bad_requests);
    w.u32(dead_pending);
}

/// Writes service `i`'s record (its histogram buckets too if `histogram`); `out` holds the
/// whole record.
pub(crate) fn encode_service(i: usize, s: &ServiceStats, histogram: bool, out: &mut [u8]) {
    let mut w = Writer { buf: out, at: HEADER_SIZE + i * SERVICE_RECORD_SIZE };
    let mut name = [0u8; MAX_NAME];
    let len = s.name.len().min(MAX_NAME);
    name[..len].copy_from_slice(&s.name.as_bytes()[..len]);
    w.bytes(&name);
    w.u8(s.fork);
    w.u8(s.policy);
    w.u8(s.protocols);
    w.u8(0);
    w.u16(s.port_lo);
    w.u16(s.port_hi);
    w.u32(s.idle_secs);
    w.u32(s.pool_target);
    for g in [s.live, s.pooled, s.assigned, s.retiring] {
        w.u32(g);
    }
    for c in [
        s.forked,
        s.destroyed,
        s.faulted,
        s.assignments,
        s.refused,
        s.pool_hits,
        s.pool_misses,
        s.idle_reclaims,
        s.releases,
        s.fork_failures,
        s.recycled,
    ] {
        w.u64(c);
    }
    let h = &s.fork_latency;
    for v in [h.count, h.min, h.max, h.sum] {
        w.u64(v);
    }
    if histogram {
        for &b in &h.buckets {
            w.u32(b);
        }
    }
}

impl StatsRecord {
    /// Bytes [`Self::encode`] writes.
    pub fn size(&self) -> usize {
        record_size(self.services.len())
    }

    /// Writes the record into `out` (zeroing the rest); `None` if it does not fit.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        encode_parts(self.sequence, self.counter_frequency, self.now, self.bad_requests, self.dead_pending, self.services.iter(), out)
    }

    /// Reads a record written by [`Self::encode`] (any later version-1 layout too).
    pub fn decode(bytes: &[u8]) -> Result<StatsRecord, DecodeError> {
        if bytes.len() < HEADER_SIZE {
            return Err(DecodeError::TooShort { needed: HEADER_SIZE, got: bytes.len() });
        }
        let mut r = Reader { buf: bytes, at: 0 };
        let magic = r.u32();
        if magic != MAGIC {
            return Err(DecodeError::BadMagic(magic));
        }
        let version = r.u16();
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let header = r.u16() as usize;
        let record = r.u16() as usize;
        let count = r.u16() as usize;
        if header < HEADER_SIZE || record < SERVICE_RECORD_SIZE || count > MAX_SERVICES {
            return Err(DecodeError::BadLayout);
        }
        let needed = header + count * record;
        if bytes.len() < needed {
            return Err(DecodeError::TooShort { needed, got: bytes.len() });
        }
        let sequence = r.u32();
        if sequence % 2 == 1 {
            return Err(DecodeError::Torn);
        }
        let mut out = StatsRecord {
            sequence,
            counter_frequency: r.u64(),
            now: r.u64(),
            bad_requests: r.u64(),
            dead_pending: r.u32(),
            services: Vec::new(),
        };
        for i in 0..count {
            r.at = header + i * record;
            let name: [u8; MAX_NAME] = r.take();
            let len = name.iter().position(|&b| b == 0).unwrap_or(MAX_NAME);
            let name = name[..len].iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }).collect();
            let mut s = ServiceStats {
                name,
                fork: r.u8(),
                policy: r.u8(),
                protocols: r.u8(),
                ..Default::default()
            };
            r.u8();
            s.port_lo = r.u16();
            s.port_hi = r.u16();
            s.idle_secs = r.u32();
            s.pool_target = r.u32();
            s.live = r.u32();
            s.pooled = r.u32();
            s.assigned = r.u32();
            s.retiring = r.u32();
            for c in [
                &mut s.forked,
                &mut s.destroyed,
                &mut s.faulted,
                &mut s.assignments,
                &mut s.refused,
                &mut s.pool_hits,
                &mut s.pool_misses,
                &mut s.idle_reclaims,
                &mut s.releases,
                &mut s.fork_failures,
                &mut s.recycled,
            ] {
                *c = r.u64();
            }
            let h = &mut s.fork_latency;
            h.count = r.u64();
            h.min = r.u64();
            h.max = r.u64();
            h.sum = r.u64();
            for b in h.buckets.iter_mut() {
                *b = r.u32();
            }
            out.services.push(s);
        }
        Ok(out)
    }
}

impl fmt::Display for StatsRecord {
    /// A human-readable report (what `manager-stats` prints). Latencies are in counter ticks
    /// and, with a known frequency, nanoseconds.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ns = |t: u64| {
            if self.counter_frequency == 0 {
                0
            } else {
                (t as u128 * 1_000_000_000 / self.counter_frequency as u128) as u64
            }
        };
        writeln!(
            f,
            "manager stats (sequence {}, counter {} Hz, at tick {}): {} service(s), {} instance(s) on the dead list, {} request(s) for no service",
            self.sequence,
            self.counter_frequency,
            self.now,
            self.services.len(),
            self.dead_pending,
            self.bad_requests
        )?;
        for s in &self.services {
            let policy = Policy::from_u8(s.policy).map_or("?", Policy::name);
            writeln!(
                f,
                "service {} (fork {}, ports {}-{} {}, policy {policy}, idle {} s, pool {})",
                s.name,
                s.fork,
                s.port_lo,
                s.port_hi,
                protocols_text(s.protocols),
                s.idle_secs,
                s.pool_target
            )?;
            writeln!(f, "  instances: live {} pooled {} assigned {} retiring {}", s.live, s.pooled, s.assigned, s.retiring)?;
            writeln!(
                f,
                "  forked {} destroyed {} faulted {} recycled {} | assignments {} refused {} | pool hits {} misses {} | idle reclaims {} releases {} | fork failures {}",
                s.forked,
                s.destroyed,
                s.faulted,
                s.recycled,
                s.assignments,
                s.refused,
                s.pool_hits,
                s.pool_misses,
                s.idle_reclaims,
                s.releases,
                s.fork_failures
            )?;
            let h = &s.fork_latency;
            if h.count == 0 {
                writeln!(f, "  fork latency: no forks yet")?;
            } else {
                let (p50, p99) = (h.quantile(500), h.quantile(990));
                writeln!(
                    f,
                    "  fork latency over {}: min {} median {} p99 {} max {} ticks (min {} median {} p99 {} max {} ns)",
                    h.count,
                    h.min,
                    p50,
                    p99,
                    h.max,
                    ns(h.min),
                    ns(p50),
                    ns(p99),
                    ns(h.max)
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::config::parse;
    use crate::config::tests::Rng;
    use std::string::ToString;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(3), 3);
        assert_eq!(Histogram::bucket(4), 4);
        assert_eq!(Histogram::bucket(7), 7);
        assert_eq!(Histogram::bucket(8), 8);
        assert_eq!(Histogram::bucket(9), 8);
        assert_eq!(Histogram::bucket(10), 9);
        for b in 0..BUCKETS - 1 {
            let hi = Histogram::bucket_high(b);
            assert_eq!(Histogram::bucket(hi), b, "high end of {b}");
            assert_eq!(Histogram::bucket(hi + 1), b + 1, "start of {}", b + 1);
        }
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(500), 0);
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        assert_eq!((h.min, h.max, h.count), (10, 10_000, 1000));
        let (p50, p99) = (h.quantile(500), h.quantile(990));
        assert!((5000..=5000 * 9 / 8).contains(&p50), "median {p50}");
        assert!((9900..=10_000).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1000), 10_000);
        let mut one = Histogram::default();
        one.record(12345);
        assert_eq!((one.quantile(500), one.quantile(990)), (12345, 12345));
        let mut big = Histogram::default();
        big.record(u64::MAX);
        assert_eq!(big.quantile(500), u64::MAX);
    }

    fn sample() -> StatsRecord {
        let services = parse(b"service memcached fork 0 ports 11211-11510 protocols tcp,udp policy port idle 60 pool 4\nservice e fork 5 ports 7 protocols udp policy shared").unwrap();
        let mut m = crate::policy::Manager::new(&services, 62_500_000);
        m.pooled(0, Ok(0), 5000, 0);
        m.pooled(0, Ok(1), 7000, 0);
        let mut r = m.record(42, 99);
        r.services[1].refused = 3;
        r.bad_requests = 2;
        r
    }

    #[test]
    fn encode_decode_round_trip() {
        let r = sample();
        let mut buf = std::vec![0xaau8; 4096];
        assert_eq!(r.encode(&mut buf), Some(64 + 2 * 512));
        assert_eq!(&buf[..4], b"EMGS");
        assert_eq!(u16::from_le_bytes([buf[8], buf[9]]), 512);
        assert!(buf[64 + 2 * 512..].iter().all(|&b| b == 0));
        let d = StatsRecord::decode(&buf).unwrap();
        assert_eq!(d, r);
        assert_eq!(d.services[0].fork_latency.count, 2);
        // The manager's allocation-free encoder writes the same bytes.
        let services = parse(b"service memcached fork 0 ports 11211-11510 protocols tcp,udp policy port idle 60 pool 4").unwrap();
        let mut m = crate::policy::Manager::new(&services, 1000);
        m.pooled(0, Ok(3), 77, 0);
        let (mut a, mut b) = (std::vec![0u8; 1024], std::vec![0u8; 1024]);
        assert_eq!(m.encode_stats(6, 9, &mut a), m.record(6, 9).encode(&mut b));
        assert_eq!(a, b);
        // Too small a buffer is refused, not overrun.
        assert_eq!(r.encode(&mut buf[..100]), None);
        let text = d.to_string();
        assert!(text.contains("service memcached (fork 0, ports 11211-11510 tcp,udp, policy port, idle 60 s, pool 4)"), "{text}");
        assert!(text.contains("instances: live 2 pooled 2 assigned 0 retiring 0"), "{text}");
        assert!(text.contains("fork latency over 2: min 5000 median 5119 p99 7000 max 7000 ticks (min 80000 median 81904 p99 112000 max 112000 ns)"), "{text}");
        assert!(text.contains("service e (fork 5, ports 7-7 udp, policy shared, idle 0 s, pool 0)"), "{text}");
    }

    #[test]
    fn decode_refuses_garbage() {
        let r = sample();
        let mut buf = std::vec![0u8; 2048];
        r.encode(&mut buf).unwrap();
        assert_eq!(StatsRecord::decode(&buf[..10]), Err(DecodeError::TooShort { needed: 64, got: 10 }));
        assert_eq!(StatsRecord::decode(&buf[..600]), Err(DecodeError::TooShort { needed: 64 + 1024, got: 600 }));
        let mut bad = buf.clone();
        bad[0] = 0;
        assert!(matches!(StatsRecord::decode(&bad), Err(DecodeError::BadMagic(_))));
        let mut bad = buf.clone();
        bad[4] = 2;
        assert_eq!(StatsRecord::decode(&bad), Err(DecodeError::UnsupportedVersion(2)));
        let mut bad = buf.clone();
        bad[12] = 43;
        assert_eq!(StatsRecord::decode(&bad), Err(DecodeError::Torn));
        let mut bad = buf.clone();
        bad[10] = 200;
        assert_eq!(StatsRecord::decode(&bad), Err(DecodeError::BadLayout));
        // Random bytes behind a valid header never panic.
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            let mut b = buf.clone();
            for _ in 0..8 {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            if let Ok(d) = StatsRecord::decode(&b) {
                let _ = d.to_string();
            }
        }
    }

    #[test]
    fn later_layouts_with_appended_fields_decode() {
        let r = sample();
        let mut v1 = std::vec![0u8; 2048];
        r.encode(&mut v1).unwrap();
        // A hypothetical later record: 16 more header bytes and 64 more per service.
        let (h, s) = (HEADER_SIZE + 16, SERVICE_RECORD_SIZE + 64);
        let mut v2 = std::vec![0xeeu8; h + 2 * s];
        v2[..HEADER_SIZE].copy_from_slice(&v1[..HEADER_SIZE]);
        v2[6..8].copy_from_slice(&(h as u16).to_le_bytes());
        v2[8..10].copy_from_slice(&(s as u16).to_le_bytes());
        for i in 0..2 {
            let src = HEADER_SIZE + i * SERVICE_RECORD_SIZE;
            v2[h + i * s..h + i * s + SERVICE_RECORD_SIZE].copy_from_slice(&v1[src..src + SERVICE_RECORD_SIZE]);
        }
        assert_eq!(StatsRecord::decode(&v2).unwrap(), r);
    }
}
