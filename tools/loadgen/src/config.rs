//! A run's configuration, and the parsers for the command line's values (port lists, durations,
//! rate lists), each with an error message that says what to fix.

use std::time::Duration;

use serde_json::{json, Value};

use crate::connect::ConnectPolicy;
use crate::dist::{Arrivals, Popularity, SizeDist};

/// memcached's default item size limit is 1 MiB including the item header and key; values up
/// to this size fit under it.
pub const DEFAULT_MAX_VALUE: usize = 1_000_000;

/// `set`s in flight per port while populating (split between the port's connections, at least
/// one each), by default: enough to hide the round trip, few enough that a server's UDP socket
/// buffer (about 200 KiB by default) never overflows. Many ports behind one slow network path
/// (an emulated guest) want fewer: `--populate-depth`.
pub const DEFAULT_POPULATE_PER_PORT: u32 = 64;

/// Over which protocol requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// The offered load of an open-loop run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Requests per second over all connections.
    Aggregate(f64),
    /// Requests per second on each connection (the paper's "fixed per-client rate").
    PerConnection(f64),
}

impl Rate {
    /// The aggregate rate over `connections` connections.
    pub fn aggregate(self, connections: usize) -> f64 {
        match self {
            Rate::Aggregate(rate) => rate,
            Rate::PerConnection(rate) => rate * connections as f64,
        }
    }
}

/// How load is generated.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// Requests sent on a schedule, whatever the replies do; one run per rate (several for a sweep).
    Open {
        rates: Vec<Rate>,
        arrivals: Arrivals,
    },
    /// Each connection keeps `depth` requests outstanding, `think` between a reply and the next request.
    Closed { depth: u32, think: Duration },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub ports: Vec<u16>,
    pub connections_per_port: u32,
    pub threads: usize,
    pub transport: Transport,
    pub load: Load,
    /// Whether this is a sweep (plot and all points wanted).
    pub sweep: bool,
    pub get_ratio: f64,
    pub key_size: SizeDist,
    pub value_size: SizeDist,
    pub max_value: usize,
    pub keys: u64,
    pub popularity: Popularity,
    pub populate: bool,
    /// `set`s in flight per port while populating.
    pub populate_per_port: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// Busy-poll this long before each due time instead of sleeping through it.
    pub spin: Duration,
    pub seed: u64,
    pub quiet: bool,
    /// How connections are opened (pace, retries, the end-to-end check).
    pub connect: ConnectPolicy,
}

impl Config {
    /// How many connections the run opens.
    pub fn connections(&self) -> usize {
        self.ports.len() * self.connections_per_port as usize
    }

    /// Checks the combinations a single value's parser cannot see.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.get_ratio) {
            return Err(format!(
                "--get-ratio {} is not between 0 and 1",
                self.get_ratio
            ));
        }
        if self.connections_per_port == 0 {
            return Err("--connections-per-port must be at least 1".to_string());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".to_string());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".to_string());
        }
        if self.populate_per_port == 0 {
            return Err("--populate-depth must be at least 1".to_string());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be more than 0".to_string());
        }
        if let Some(bound) = self.value_size.upper_bound() {
            if bound as usize > self.max_value {
                return Err(format!(
                    "value size {bound} is over --max-value-size {}",
                    self.max_value
                ));
            }
        }
        if let Load::Closed { depth: 0, .. } = self.load {
            return Err("--depth must be at least 1".to_string());
        }
        self.connect.validate()
    }

    /// The configuration as JSON, for the report.
    pub fn to_json(&self) -> Value {
        let (mode, load) = match &self.load {
            Load::Open { rates, arrivals } => (
                "open",
                json!({
                    "offered_rps": rates.iter().map(|rate| rate.aggregate(self.connections())).collect::<Vec<_>>(),
                    "arrivals": arrivals.name(),
                }),
            ),
            Load::Closed { depth, think } => (
                "closed",
                json!({ "depth": depth, "think_us": think.as_secs_f64() * 1e6 }),
            ),
        };
        json!({
            "mode": mode,
            "load": load,
            "transport": self.transport.name(),
            "host": self.host,
            "ports": compact_ports(&self.ports),
            "port_count": self.ports.len(),
            "connections_per_port": self.connections_per_port,
            "connections": self.connections(),
            "threads": self.threads,
            "get_ratio": self.get_ratio,
            "key_size": self.key_size.to_string(),
            "value_size": self.value_size.to_string(),
            "max_value_size": self.max_value,
            "keys": self.keys,
            "popularity": self.popularity.to_string(),
            "populate": self.populate,
            "populate_depth": self.populate_per_port,
            "warmup_s": self.warmup.as_secs_f64(),
            "duration_s": self.duration.as_secs_f64(),
            "timeout_s": self.timeout.as_secs_f64(),
            "spin_us": self.spin.as_secs_f64() * 1e6,
            "seed": self.seed,
            "connect": self.connect.to_json(),
        })
    }
}

/// Parses a port list: `11211`, `11211-11510`, `11211,11300-11310`. Ports may repeat (each
/// occurrence gets its own connections).
pub fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("`{text}`: empty entry in the port list"));
        }
        let port = |value: &str| -> Result<u16, String> {
            match value.trim().parse::<u32>() {
                Ok(number) if (1..=65535).contains(&number) => Ok(number as u16),
                Ok(number) => Err(format!("port {number} is outside 1-65535")),
                Err(_) => Err(format!("`{value}` is not a port number")),
            }
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (port(first)?, port(last)?);
                if first > last {
                    return Err(format!(
                        "port range {first}-{last} runs backwards (write {last}-{first})"
                    ));
                }
                ports.extend(first..=last);
            }
            None => ports.push(port(part)?),
        }
    }
    Ok(ports)
}

/// Writes a port list back compactly (`11211-11214,11300`).
pub fn compact_ports(ports: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ports.len() {
        let mut j = i;
        while j + 1 < ports.len() && u32::from(ports[j + 1]) == u32::from(ports[j]) + 1 {
            j += 1;
        }
        parts.push(if j == i {
            ports[i].to_string()
        } else {
            format!("{}-{}", ports[i], ports[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Parses a duration: `2s`, `500ms`, `100us`, `1.5s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 2s, 500ms, 100us)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ns, us, ms, s or m)"
            ))
        }
    };
    if !seconds.is_finite() || seconds > 1e7 {
        return Err(format!("`{text}` is too long a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a positive rate (requests per second); `k` and `M` suffixes allowed (`50k`).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, multiplier) = match text.strip_suffix(['k', 'K']) {
        Some(number) => (number, 1e3),
        None => match text.strip_suffix('M') {
            Some(number) => (number, 1e6),
            None => (text, 1.0),
        },
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a rate in requests per second"))?;
    let rate = value * multiplier;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("rate `{text}` must be more than 0"));
    }
    Ok(rate)
}

/// Parses a comma-separated list of rates for a sweep.
pub fn parse_rates(text: &str) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = text.split(',').map(parse_rate).collect::<Result<_, _>>()?;
    if rates.is_empty() {
        return Err("the sweep needs at least one rate".to_string());
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lists_and_ranges() {
        assert_eq!(parse_ports("11211").unwrap(), [11211]);
        assert_eq!(
            parse_ports("11211-11214").unwrap(),
            [11211, 11212, 11213, 11214]
        );
        assert_eq!(
            parse_ports("11211, 11300-11301,9").unwrap(),
            [11211, 11300, 11301, 9]
        );
        assert_eq!(parse_ports("11211-11510").unwrap().len(), 300);
        assert!(parse_ports("11300-11211")
            .unwrap_err()
            .contains("runs backwards"));
        assert!(parse_ports("0").unwrap_err().contains("outside 1-65535"));
        assert!(parse_ports("70000").unwrap_err().contains("outside"));
        assert!(parse_ports("abc").unwrap_err().contains("not a port"));
        assert!(parse_ports("1,,2").unwrap_err().contains("empty entry"));
        assert_eq!(
            compact_ports(&[11211, 11212, 11213, 11300, 5, 6]),
            "11211-11213,11300,5-6"
        );
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert_eq!(parse_rate("50k").unwrap(), 50_000.0);
        assert_eq!(
            parse_rates("1000,2000, 4k").unwrap(),
            [1000.0, 2000.0, 4000.0]
        );
        assert!(parse_rate("0").is_err());
        assert!(parse_rates("1000,x").is_err());
        assert_eq!(Rate::PerConnection(7000.0).aggregate(300), 2_100_000.0);
    }
}
