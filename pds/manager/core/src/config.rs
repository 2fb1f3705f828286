//! The services file: which featherweight template serves which local ports, and how instances
//! are handed out. The system description prefills it into a read-only region, so the input is
//! untrusted bytes (everything from the first NUL on is ignored: the rest of the region's page).
//!
//! ```text
//! # name      template    local ports        protocols     policy       optional
//! service memcached fork 0 ports 11211-11510 protocols tcp,udp policy port idle 60 pool 4
//! service echo      fork 1 ports 7           protocols udp     policy shared
//! ```
//!
//! One service per line; blank lines and `#` comments are ignored. After `service NAME` the
//! fields come in any order, each once:
//!
//! | field | meaning |
//! |---|---|
//! | `fork N` | the manager's fork grant id (0..=61) for the service's template (required) |
//! | `ports LO[-HI]` | the local ports served, 1..=65535 (required) |
//! | `protocols P` | `tcp`, `udp` or `tcp,udp` (required) |
//! | `policy P` | `port`: one instance per local port; `client`: one per client IPv4 address; `shared`: one for the whole service (required) |
//! | `idle S` | reclaim an instance idle for S seconds (0, the default: never) |
//! | `pool N` | instances kept forked ahead of demand (default 0, at most [`MAX_POOL`]) |
//!
//! Two services may not serve the same port with the same protocol, nor share a fork grant
//! (instances are named by fork grant and instance id). Errors name the line and column and say
//! how to fix the line.
//!
//! `fuzz/` (cargo-fuzz target `config`, run briefly by `make fuzz-smoke`) checks that no input
//! panics, that errors point inside the text, and that what parses is valid and survives being
//! rendered back to text and parsed again.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Services one file may define.
pub const MAX_SERVICES: usize = 16;
/// Largest `pool`.
pub const MAX_POOL: u32 = 256;
/// Longest service name.
pub const MAX_NAME: usize = 32;
/// Fork grant ids are 0..FORK_IDS (the runtime's `Fork::new` limit).
pub const FORK_IDS: u32 = 62;
/// Largest `idle` (a day).
pub const MAX_IDLE: u32 = 86_400;

/// A service's index in its file (order of definition).
pub type ServiceId = u8;

/// A transport protocol, with its IP protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub const fn ip_number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    pub const fn from_ip(n: u64) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Protocol::Tcp => 1,
            Protocol::Udp => 2,
        }
    }
}

/// How a service's requests map to instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    /// One instance per local port of the range.
    Port = 0,
    /// One instance per client (remote IPv4 address).
    Client = 1,
    /// One instance for the whole service.
    Shared = 2,
}

impl Policy {
    pub fn from_u8(v: u8) -> Option<Policy> {
        match v {
            0 => Some(Policy::Port),
            1 => Some(Policy::Client),
            2 => Some(Policy::Shared),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::Port => "port",
            Policy::Client => "client",
            Policy::Shared => "shared",
        }
    }
}

/// One service line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// The fork grant id of its template.
    pub fork: u8,
    pub port_lo: u16,
    pub port_hi: u16,
    /// Bit 0: TCP, bit 1: UDP.
    pub protocols: u8,
    pub policy: Policy,
    /// Seconds of inactivity before an instance is reclaimed (0: never).
    pub idle_secs: u32,
    /// Instances kept forked ahead of demand.
    pub pool: u32,
    /// The line it was defined on (1-based).
    pub line: u32,
}

impl Service {
    pub fn serves(&self, protocol: Protocol, local_port: u16) -> bool {
        self.protocols & protocol.bit() != 0 && (self.port_lo..=self.port_hi).contains(&local_port)
    }

    pub fn has_protocol(&self, protocol: Protocol) -> bool {
        self.protocols & protocol.bit() != 0
    }

    /// `tcp`, `udp` or `tcp,udp`.
    pub fn protocols_text(&self) -> &'static str {
        protocols_text(self.protocols)
    }
}

pub(crate) fn protocols_text(bits: u8) -> &'static str {
    match bits & 3 {
        1 => "tcp",
        2 => "udp",
        3 => "tcp,udp",
        _ => "-",
    }
}

/// A parsed services file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Services {
    services: Vec<Service>,
}

impl Services {
    /// The service serving `local_port` over `protocol`, if any.
    pub fn lookup(&self, protocol: Protocol, local_port: u16) -> Option<ServiceId> {
        self.services.iter().position(|s| s.serves(protocol, local_port)).map(|i| i as ServiceId)
    }

    pub fn get(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id as usize)
    }

    /// The service whose template is fork grant `fork`.
    pub fn by_fork(&self, fork: u8) -> Option<ServiceId> {
        self.services.iter().position(|s| s.fork == fork).map(|i| i as ServiceId)
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.services.iter().enumerate().map(|(i, s)| (i as ServiceId, s))
    }
}

/// Why a services file was refused: where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (bytes).
    pub col: u32,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "services config {}:{}: {}", self.line, self.col, self.message)
    }
}

/// A word of a line and its 1-based column.
#[derive(Clone, Copy)]
struct Word<'a> {
    text: &'a [u8],
    col: u32,
}

impl Word<'_> {
    /// The word for messages (non-printable bytes escaped, long words cut).
    fn show(&self) -> String {
        let mut s = String::new();
        for &b in self.text.iter().take(40) {
            if (0x20..0x7f).contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
        if self.text.len() > 40 {
            s.push_str("...");
        }
        s
    }
}

fn words(line: &[u8]) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' || line[i] == b'\t' || line[i] == b'\r' {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && !matches!(line[i], b' ' | b'\t' | b'\r') {
            i += 1;
        }
        out.push(Word { text: &line[start..i], col: start as u32 + 1 });
    }
    out
}

fn number(w: &[u8]) -> Option<u32> {
    if w.is_empty() || w.len() > 10 || !w.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = w.iter().fold(0u64, |v, d| v * 10 + (d - b'0') as u64);
    u32::try_from(v).ok()
}

fn port(w: &[u8]) -> Option<u16> {
    number(w).filter(|p| (1..=65535).contains(p)).map(|p| p as u16)
}

const USAGE: &str = "expected `service NAME fork N ports LO-HI protocols tcp,udp policy port|client|shared [idle SECONDS] [pool N]`";

/// Parses a services file.
pub fn parse(text: &[u8]) -> Result<Services, ConfigError> {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let mut services: Vec<Service> = Vec::new();
    for (i, raw) in text[..end].split(|&b| b == b'\n').enumerate() {
        let line_no = (i + 1) as u32;
        let content = match raw.iter().position(|&b| b == b'#') {
            Some(p) => &raw[..p],
            None => raw,
        };
        let ws = words(content);
        let Some(first) = ws.first() else { continue };
        let err = |col: u32, message: String| ConfigError { line: line_no, col, message };
        if first.text != b"service" {
            return Err(err(first.col, format!("unknown keyword '{}' ({USAGE})", first.show())));
        }
        if services.len() == MAX_SERVICES {
            return Err(err(first.col, format!("too many services (at most {MAX_SERVICES}; merge or drop some)")));
        }
        let eol = content.len() as u32 + 1;
        let Some(name) = ws.get(1) else {
            return Err(err(eol, format!("missing service name ({USAGE})")));
        };
        let name_ok = !name.text.is_empty()
            && name.text.len() <= MAX_NAME
            && name.text.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
        if !name_ok {
            return Err(err(name.col, format!("bad service name '{}' (use 1 to {MAX_NAME} letters, digits, '-' or '_')", name.show())));
        }
        let name_str: String = name.text.iter().map(|&b| b as char).collect();
        if let Some(other) = services.iter().find(|s| s.name == name_str) {
            return Err(err(name.col, format!("duplicate service name '{name_str}' (first defined on line {}; pick another name)", other.line)));
        }
        let mut fork: Option<(u8, u32)> = None;
        let mut ports: Option<(u16, u16, u32)> = None;
        let mut protocols: Option<u8> = None;
        let mut policy: Option<Policy> = None;
        let mut idle: Option<u32> = None;
        let mut pool: Option<u32> = None;
        let mut k = 2;
        while k < ws.len() {
            let key = ws[k];
            let value = ws.get(k + 1).copied();
            let (seen, hint): (bool, &str) = match key.text {
                b"fork" => (fork.is_some(), "a fork grant id 0..61"),
                b"ports" => (ports.is_some(), "PORT or LO-HI"),
                b"protocols" => (protocols.is_some(), "tcp, udp or tcp,udp"),
                b"policy" => (policy.is_some(), "port, client or shared"),
                b"idle" => (idle.is_some(), "seconds, 0 = never reclaim"),
                b"pool" => (pool.is_some(), "a number of instances 0..256"),
                _ => {
                    return Err(err(
                        key.col,
                        format!("unknown field '{}' (expected fork, ports, protocols, policy, idle or pool)", key.show()),
                    ))
                }
            };
            if seen {
                return Err(err(key.col, format!("'{}' given twice (keep one)", key.show())));
            }
            let Some(v) = value else {
                return Err(err(eol, format!("missing value after '{}' (expected {hint})", key.show())));
            };
            match key.text {
                b"fork" => match number(v.text).filter(|n| *n < FORK_IDS) {
                    Some(n) => {
                        if let Some(other) = services.iter().find(|s| s.fork as u32 == n) {
                            return Err(err(
                                v.col,
                                format!(
                                    "fork {n} is already the template of service '{}' (line {}; each service needs its own fork grant)",
                                    other.name, other.line
                                ),
                            ));
                        }
                        fork = Some((n as u8, v.col));
                    }
                    None => return Err(err(v.col, format!("bad fork id '{}' (expected {hint})", v.show()))),
                },
                b"ports" => {
                    let (lo, hi) = match v.text.iter().position(|&b| b == b'-') {
                        Some(d) => (port(&v.text[..d]), port(&v.text[d + 1..])),
                        None => (port(v.text), port(v.text)),
                    };
                    match (lo, hi) {
                        (Some(lo), Some(hi)) if lo <= hi => ports = Some((lo, hi, v.col)),
                        _ => {
                            return Err(err(
                                v.col,
                                format!("bad port range '{}' (expected PORT or LO-HI with 1 <= LO <= HI <= 65535)", v.show()),
                            ))
                        }
                    }
                }
                b"protocols" => {
                    let mut bits = 0u8;
                    for p in v.text.split(|&b| b == b',') {
                        let bit = match p {
                            b"tcp" => Protocol::Tcp.bit(),
                            b"udp" => Protocol::Udp.bit(),
                            _ => 0,
                        };
                        if bit == 0 || bits & bit != 0 {
                            return Err(err(v.col, format!("unknown protocols '{}' (expected {hint})", v.show())));
                        }
                        bits |= bit;
                    }
                    protocols = Some(bits);
                }
                b"policy" => {
                    policy = Some(match v.text {
                        b"port" => Policy::Port,
                        b"client" => Policy::Client,
                        b"shared" => Policy::Shared,
                        _ => return Err(err(v.col, format!("unknown policy '{}' (expected {hint})", v.show()))),
                    })
                }
                b"idle" => match number(v.text).filter(|n| *n <= MAX_IDLE) {
                    Some(n) => idle = Some(n),
                    None => return Err(err(v.col, format!("bad idle time '{}' (expected seconds 0..{MAX_IDLE}, 0 = never reclaim)", v.show()))),
                },
                _ => match number(v.text).filter(|n| *n <= MAX_POOL) {
                    Some(n) => pool = Some(n),
                    None => return Err(err(v.col, format!("bad pool size '{}' (expected {hint})", v.show()))),
                },
            }
            k += 2;
        }
        let missing = |what: &str, add: &str| err(eol, format!("service '{name_str}' has no {what} (add `{add}`)"));
        let (fork, _) = fork.ok_or_else(|| missing("fork grant", "fork N"))?;
        let (port_lo, port_hi, ports_col) = ports.ok_or_else(|| missing("ports", "ports LO-HI"))?;
        let protocols = protocols.ok_or_else(|| missing("protocols", "protocols tcp,udp"))?;
        let policy = policy.ok_or_else(|| missing("policy", "policy port|client|shared"))?;
        for other in &services {
            if other.protocols & protocols != 0 && port_lo <= other.port_hi && other.port_lo <= port_hi {
                return Err(err(
                    ports_col,
                    format!(
                        "ports {port_lo}-{port_hi} overlap service '{}' (line {}, ports {}-{} {}; give each service its own ports)",
                        other.name,
                        other.line,
                        other.port_lo,
                        other.port_hi,
                        protocols_text(other.protocols & protocols)
                    ),
                ));
            }
        }
        services.push(Service {
            name: name_str,
            fork,
            port_lo,
            port_hi,
            protocols,
            policy,
            idle_secs: idle.unwrap_or(0),
            pool: pool.unwrap_or(0),
            line: line_no,
        });
    }
    Ok(Services { services })
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    const EXAMPLE: &str = "# the default node\n\
        service memcached fork 0 ports 11211-11510 protocols tcp,udp policy port idle 60 pool 4\n\
        \n\
        service echo fork 1 ports 7 protocols udp policy shared   # one echo for all\r\n\
        service web pool 2 policy client protocols tcp ports 80 fork 2\n";

    fn error(text: &str) -> std::string::String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_example() {
        let s = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(s.len(), 3);
        let m = s.get(0).unwrap();
        assert_eq!(
            *m,
            Service {
                name: "memcached".into(),
                fork: 0,
                port_lo: 11211,
                port_hi: 11510,
                protocols: 3,
                policy: Policy::Port,
                idle_secs: 60,
                pool: 4,
                line: 2
            }
        );
        let e = s.get(1).unwrap();
        assert_eq!((e.port_lo, e.port_hi, e.protocols_text(), e.policy, e.idle_secs, e.pool), (7, 7, "udp", Policy::Shared, 0, 0));
        let w = s.get(2).unwrap();
        assert_eq!((w.fork, w.policy, w.pool, w.protocols_text(), w.line), (2, Policy::Client, 2, "tcp", 5));
        assert_eq!(s.lookup(Protocol::Tcp, 11211), Some(0));
        assert_eq!(s.lookup(Protocol::Udp, 11510), Some(0));
        assert_eq!(s.lookup(Protocol::Udp, 11511), None);
        assert_eq!(s.lookup(Protocol::Udp, 7), Some(1));
        assert_eq!(s.lookup(Protocol::Tcp, 7), None);
        assert_eq!(s.lookup(Protocol::Tcp, 80), Some(2));
        assert_eq!(s.by_fork(2), Some(2));
        assert_eq!(s.by_fork(3), None);
    }

    #[test]
    fn nul_padding_and_empty_files() {
        let mut region = std::vec![0u8; 4096];
        region[..EXAMPLE.len()].copy_from_slice(EXAMPLE.as_bytes());
        region[EXAMPLE.len() + 5] = b'x'; // after the first NUL: ignored
        assert_eq!(parse(&region).unwrap().len(), 3);
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(&[0; 64]).unwrap().is_empty());
        assert!(parse(b"# only a comment\n\n   \n").unwrap().is_empty());
        // Non-UTF-8 inside a comment is fine.
        assert!(parse(b"# \xff\xfe\nservice a fork 0 ports 1 protocols tcp policy shared").is_ok());
    }

    #[test]
    fn exact_error_messages() {
        let cases: &[(&str, &str)] = &[
            ("servic a", "services config 1:1: unknown keyword 'servic' (expected `service NAME fork N ports LO-HI protocols tcp,udp policy port|client|shared [idle SECONDS] [pool N]`)"),
            ("service", "services config 1:8: missing service name (expected `service NAME fork N ports LO-HI protocols tcp,udp policy port|client|shared [idle SECONDS] [pool N]`)"),
            ("service a.b fork 0", "services config 1:9: bad service name 'a.b' (use 1 to 32 letters, digits, '-' or '_')"),
            ("service a fork 0 ports 1 protocols tcp policy foo", "services config 1:47: unknown policy 'foo' (expected port, client or shared)"),
            ("service a fork 62", "services config 1:16: bad fork id '62' (expected a fork grant id 0..61)"),
            ("service a fork", "services config 1:15: missing value after 'fork' (expected a fork grant id 0..61)"),
            ("service a fork 0 fork 1", "services config 1:18: 'fork' given twice (keep one)"),
            ("service a colour red", "services config 1:11: unknown field 'colour' (expected fork, ports, protocols, policy, idle or pool)"),
            ("service a ports 9-8", "services config 1:17: bad port range '9-8' (expected PORT or LO-HI with 1 <= LO <= HI <= 65535)"),
            ("service a ports 0", "services config 1:17: bad port range '0' (expected PORT or LO-HI with 1 <= LO <= HI <= 65535)"),
            ("service a ports 70000", "services config 1:17: bad port range '70000' (expected PORT or LO-HI with 1 <= LO <= HI <= 65535)"),
            ("service a ports 1-", "services config 1:17: bad port range '1-' (expected PORT or LO-HI with 1 <= LO <= HI <= 65535)"),
            ("service a protocols tcp,tcp", "services config 1:21: unknown protocols 'tcp,tcp' (expected tcp, udp or tcp,udp)"),
            ("service a protocols icmp", "services config 1:21: unknown protocols 'icmp' (expected tcp, udp or tcp,udp)"),
            ("service a idle -1", "services config 1:16: bad idle time '-1' (expected seconds 0..86400, 0 = never reclaim)"),
            ("service a pool 257", "services config 1:16: bad pool size '257' (expected a number of instances 0..256)"),
            ("service a fork 0 ports 1 protocols tcp", "services config 1:39: service 'a' has no policy (add `policy port|client|shared`)"),
            ("service a ports 1 protocols tcp policy port", "services config 1:44: service 'a' has no fork grant (add `fork N`)"),
            ("service a fork 0 protocols tcp policy port", "services config 1:43: service 'a' has no ports (add `ports LO-HI`)"),
            ("service a fork 0 ports 5 policy port", "services config 1:37: service 'a' has no protocols (add `protocols tcp,udp`)"),
            (
                "service a fork 0 ports 10-20 protocols tcp,udp policy port\n# x\nservice b fork 1 ports 20-30 protocols udp policy shared",
                "services config 3:24: ports 20-30 overlap service 'a' (line 1, ports 10-20 udp; give each service its own ports)",
            ),
            (
                "service a fork 0 ports 10 protocols tcp policy port\nservice a fork 1 ports 11 protocols tcp policy port",
                "services config 2:9: duplicate service name 'a' (first defined on line 1; pick another name)",
            ),
            (
                "service a fork 3 ports 10 protocols tcp policy port\nservice b fork 3 ports 11 protocols tcp policy port",
                "services config 2:16: fork 3 is already the template of service 'a' (line 1; each service needs its own fork grant)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(error(text), *want, "for {text:?}");
        }
        assert_eq!(
            parse(b"service a\xff fork 0").unwrap_err().to_string(),
            "services config 1:9: bad service name 'a\\xff' (use 1 to 32 letters, digits, '-' or '_')"
        );
        // The same port with different protocols is fine.
        assert!(parse(b"service a fork 0 ports 10 protocols tcp policy port\nservice b fork 1 ports 10 protocols udp policy port").is_ok());
    }

    #[test]
    fn at_most_sixteen_services() {
        let mut text = std::string::String::new();
        for i in 0..MAX_SERVICES {
            text += &std::format!("service s{i} fork {i} ports {} protocols udp policy shared\n", 1000 + i);
        }
        assert_eq!(parse(text.as_bytes()).unwrap().len(), MAX_SERVICES);
        text += "service extra fork 40 ports 2000 protocols udp policy shared\n";
        assert_eq!(error(&text), "services config 17:1: too many services (at most 16; merge or drop some)");
    }

    /// A small deterministic generator for the fuzz-ish tests.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
        }
        pub(crate) fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(1);
        let alphabet: &[&[u8]] = &[
            b"service", b" ", b"fork", b"ports", b"protocols", b"policy", b"idle", b"pool", b"tcp", b"udp", b",", b"-",
            b"port", b"client", b"shared", b"\n", b"#", b"0", b"1", b"65535", b"99999999999", b"\0", b"\xff", b"\t", b"a",
        ];
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut input = std::vec::Vec::new();
            let n = rng.below(40);
            for _ in 0..n {
                if round % 2 == 0 {
                    input.push(rng.next() as u8);
                } else {
                    input.extend_from_slice(alphabet[rng.below(alphabet.len() as u64) as usize]);
                }
            }
            match parse(&input) {
                Ok(s) => {
                    accepted += 1;
                    // Whatever was accepted is consistent: no port served twice.
                    for p in [Protocol::Tcp, Protocol::Udp] {
                        for (id, svc) in s.iter() {
                            assert_eq!(s.lookup(p, svc.port_lo).filter(|_| svc.has_protocol(p)), svc.has_protocol(p).then_some(id));
                        }
                    }
                }
                Err(e) => {
                    assert!(e.line >= 1 && e.col >= 1);
                    let _ = e.to_string();
                }
            }
        }
        assert!(accepted > 0);
        // Mutations of a valid file.
        for _ in 0..20_000 {
            let mut input = EXAMPLE.as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(input.len() as u64) as usize;
                match rng.below(3) {
                    0 => input[i] = rng.next() as u8,
                    1 => {
                        input.remove(i);
                    }
                    _ => input.insert(i, alphabet[rng.below(alphabet.len() as u64) as usize][0]),
                }
            }
            let _ = parse(&input);
        }
    }
}
