//! The virtualiser's static route configuration: a small text file the system description
//! prefills into a memory region (`prefill_path`), one route per line:
//!
//! ```text
//! # tenant  protocol  port
//! route 0 udp 7001
//! route 0 tcp 7001
//! route 1 udp 7002
//! ```
//!
//! Blank lines and `#` comments are ignored, and so is everything after the first NUL byte
//! (the rest of the region's page). Without a configuration, tenant `i` gets UDP and TCP port
//! `default_base + i`.

use core::fmt;

use crate::flow::{Protocol, TenantId};

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub tenant: TenantId,
    pub protocol: Protocol,
    pub port: u16,
}

/// A line that is not a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number.
    pub line: usize,
    pub what: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "route configuration line {}: {} (expected `route TENANT udp|tcp PORT`)", self.line, self.what)
    }
}

/// Parses `text`, calling `route` for each route in order.
pub fn parse_routes(text: &[u8], mut route: impl FnMut(Route)) -> Result<(), ConfigError> {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = core::str::from_utf8(&text[..end]).map_err(|_| ConfigError { line: 0, what: "not UTF-8 text" })?;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut words = content.split_ascii_whitespace();
        let err = |what| ConfigError { line: line_no, what };
        if words.next() != Some("route") {
            return Err(err("unknown keyword"));
        }
        let tenant = words.next().and_then(|w| w.parse::<TenantId>().ok()).ok_or(err("bad tenant number"))?;
        let protocol = match words.next() {
            Some("udp") => Protocol::Udp,
            Some("tcp") => Protocol::Tcp,
            _ => return Err(err("protocol must be udp or tcp")),
        };
        let port = words.next().and_then(|w| w.parse::<u16>().ok()).filter(|p| *p != 0).ok_or(err("bad port"))?;
        if words.next().is_some() {
            return Err(err("extra words"));
        }
        route(Route { tenant, protocol, port });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn routes(text: &str) -> Result<Vec<Route>, ConfigError> {
        let mut out = Vec::new();
        parse_routes(text.as_bytes(), |r| out.push(r)).map(|_| out)
    }

    #[test]
    fn parses_routes_and_skips_comments() {
        let r = routes("# echo\nroute 0 udp 7001\n\n  route 1 tcp 7002   # second\n\0garbage").unwrap();
        assert_eq!(
            r,
            [
                Route { tenant: 0, protocol: Protocol::Udp, port: 7001 },
                Route { tenant: 1, protocol: Protocol::Tcp, port: 7002 }
            ]
        );
    }

    #[test]
    fn refuses_bad_lines() {
        assert_eq!(routes("rout 0 udp 1").unwrap_err(), ConfigError { line: 1, what: "unknown keyword" });
        assert_eq!(routes("\nroute x udp 1").unwrap_err().line, 2);
        assert_eq!(routes("route 0 icmp 1").unwrap_err().what, "protocol must be udp or tcp");
        assert_eq!(routes("route 0 udp 70000").unwrap_err().what, "bad port");
        assert_eq!(routes("route 0 udp 0").unwrap_err().what, "bad port");
        assert_eq!(routes("route 0 udp 1 2").unwrap_err().what, "extra words");
        assert!(parse_routes(&[0xff, 0xfe], |_| {}).is_err());
    }
}
