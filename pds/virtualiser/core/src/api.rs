//! The virtualiser's protected-call API: how a manager installs and removes routes at run
//! time, and reads a tenant's counters. A request is a label and message registers; the reply
//! label is 0 on success or an [`ApiError`] code.
//!
//! | label | request | message registers | reply |
//! |---|---|---|---|
//! | 1 | install port route | protocol (6 TCP, 17 UDP), port, tenant | - |
//! | 2 | remove port route | protocol, port | tenant |
//! | 3 | install connection route | protocol, remote IPv4 (big-endian u32), remote port, local port, tenant | - |
//! | 4 | remove connection route | protocol, remote IPv4, remote port, local port | tenant |
//! | 5 | tenant counters | tenant | received, dropped (ring full), sent, refused, malformed (node-wide), unrouted (node-wide) |
//!
//! Who may call: only the controller, the PD on the channel the description names with the
//! virtualiser's `controller_channel` variable (`setvar_id` of the virtualiser's end of that
//! channel). A call on any other channel, or any call when no controller is named, is refused
//! with [`ApiError::NotController`], whatever it asks ([`admitted`], [`admit`]). What a route may name: a
//! static tenant (instance tenants' routes are the virtualiser's own), and a port that no
//! instance service serves ([`ApiError::ServicePort`]).

use crate::flow::{Connection, FlowTable, Protocol, RouteError, TenantId};
use crate::instances::InstanceMap;

pub const LABEL_INSTALL_PORT: u64 = 1;
pub const LABEL_REMOVE_PORT: u64 = 2;
pub const LABEL_INSTALL_CONNECTION: u64 = 3;
pub const LABEL_REMOVE_CONNECTION: u64 = 4;
pub const LABEL_COUNTERS: u64 = 5;

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    InstallPort { protocol: Protocol, port: u16, tenant: TenantId },
    RemovePort { protocol: Protocol, port: u16 },
    InstallConnection { connection: Connection, tenant: TenantId },
    RemoveConnection { connection: Connection },
    Counters { tenant: TenantId },
}

/// Reply labels for refused requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ApiError {
    UnknownLabel = 1,
    /// Too few message registers, or a value out of range.
    BadArguments = 2,
    Taken = 3,
    NotFound = 4,
    Full = 5,
    NoSuchTenant = 6,
    /// The caller is not the controller.
    NotController = 7,
    /// The port (or a connection's local port) belongs to an instance service.
    ServicePort = 8,
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Taken { .. } => ApiError::Taken,
            RouteError::NotFound => ApiError::NotFound,
            RouteError::Full => ApiError::Full,
            RouteError::NoSuchTenant => ApiError::NoSuchTenant,
        }
    }
}

fn arg<T: TryFrom<u64>>(mrs: &[u64], i: usize) -> Result<T, ApiError> {
    mrs.get(i).copied().and_then(|v| T::try_from(v).ok()).ok_or(ApiError::BadArguments)
}

fn protocol(mrs: &[u64]) -> Result<Protocol, ApiError> {
    Protocol::from_ip(arg::<u8>(mrs, 0)?).ok_or(ApiError::BadArguments)
}

fn connection(mrs: &[u64]) -> Result<Connection, ApiError> {
    Ok(Connection {
        protocol: protocol(mrs)?,
        remote_ip: arg::<u32>(mrs, 1)?.to_be_bytes(),
        remote_port: arg(mrs, 2)?,
        local_port: arg(mrs, 3)?,
    })
}

/// Decodes a request from its label and message registers.
pub fn decode(label: u64, mrs: &[u64]) -> Result<Request, ApiError> {
    match label {
        LABEL_INSTALL_PORT => Ok(Request::InstallPort { protocol: protocol(mrs)?, port: arg(mrs, 1)?, tenant: arg(mrs, 2)? }),
        LABEL_REMOVE_PORT => Ok(Request::RemovePort { protocol: protocol(mrs)?, port: arg(mrs, 1)? }),
        LABEL_INSTALL_CONNECTION => Ok(Request::InstallConnection { connection: connection(mrs)?, tenant: arg(mrs, 4)? }),
        LABEL_REMOVE_CONNECTION => Ok(Request::RemoveConnection { connection: connection(mrs)? }),
        LABEL_COUNTERS => Ok(Request::Counters { tenant: arg(mrs, 0)? }),
        _ => Err(ApiError::UnknownLabel),
    }
}

/// Decides whether the PD on channel `caller` may make `request`: only the controller (the
/// channel id `controller`; None: nobody) may call at all, a route must name a static tenant of
/// `map`, and it must not touch a port an instance service of `map` serves (those routes are
/// installed and removed by the virtualiser as instances come and go).
pub fn admit(request: &Request, caller: usize, controller: Option<usize>, map: &InstanceMap) -> Result<(), ApiError> {
    if controller != Some(caller) {
        return Err(ApiError::NotController);
    }
    let tenant_ok = |tenant: TenantId| if tenant < map.static_tenants() { Ok(()) } else { Err(ApiError::NoSuchTenant) };
    let port_ok = |protocol: Protocol, port: u16| match map.slot_for(protocol, port) {
        Some(_) => Err(ApiError::ServicePort),
        None => Ok(()),
    };
    match *request {
        Request::InstallPort { protocol, port, tenant } => {
            tenant_ok(tenant)?;
            port_ok(protocol, port)
        }
        Request::RemovePort { protocol, port } => port_ok(protocol, port),
        Request::InstallConnection { connection, tenant } => {
            tenant_ok(tenant)?;
            port_ok(connection.protocol, connection.local_port)
        }
        Request::RemoveConnection { connection } => port_ok(connection.protocol, connection.local_port),
        Request::Counters { .. } => Ok(()),
    }
}

/// What the PD does with a call on channel `caller`: refuses a caller that is not the
/// controller before looking at the request at all (a stranger learns nothing, not even
/// whether its label exists), then decodes it and checks what it names ([`admit`]).
pub fn admitted(label: u64, mrs: &[u64], caller: usize, controller: Option<usize>, map: &InstanceMap) -> Result<Request, ApiError> {
    if controller != Some(caller) {
        return Err(ApiError::NotController);
    }
    let request = decode(label, mrs)?;
    admit(&request, caller, controller, map)?;
    Ok(request)
}

/// Applies a route request to the table; returns the reply's message registers (at most one:
/// the tenant a removed route belonged to). Counters are answered by the caller, which keeps them.
pub fn apply(table: &mut FlowTable, request: Request) -> Result<Option<u64>, ApiError> {
    match request {
        Request::InstallPort { protocol, port, tenant } => table.install_port(protocol, port, tenant).map(|_| None),
        Request::RemovePort { protocol, port } => table.remove_port(protocol, port).map(|t| Some(t as u64)),
        Request::InstallConnection { connection, tenant } => table.install_connection(connection, tenant).map(|_| None),
        Request::RemoveConnection { connection } => table.remove_connection(&connection).map(|t| Some(t as u64)),
        Request::Counters { .. } => Ok(None),
    }
    .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_apply() {
        let mut t = FlowTable::new(2);
        let r = decode(LABEL_INSTALL_PORT, &[17, 7, 1]).unwrap();
        assert_eq!(r, Request::InstallPort { protocol: Protocol::Udp, port: 7, tenant: 1 });
        assert_eq!(apply(&mut t, r), Ok(None));
        assert_eq!(apply(&mut t, decode(LABEL_INSTALL_PORT, &[17, 7, 0]).unwrap()), Err(ApiError::Taken));
        assert_eq!(apply(&mut t, decode(LABEL_REMOVE_PORT, &[17, 7]).unwrap()), Ok(Some(1)));
        let c = decode(LABEL_INSTALL_CONNECTION, &[6, 0x0a00_0202, 5000, 80, 0]).unwrap();
        assert_eq!(
            c,
            Request::InstallConnection {
                connection: Connection { protocol: Protocol::Tcp, remote_ip: [10, 0, 2, 2], remote_port: 5000, local_port: 80 },
                tenant: 0
            }
        );
        assert_eq!(apply(&mut t, c), Ok(None));
        assert_eq!(apply(&mut t, decode(LABEL_REMOVE_CONNECTION, &[6, 0x0a00_0202, 5000, 80]).unwrap()), Ok(Some(0)));
    }

    fn map() -> InstanceMap {
        use crate::instances::{InstancePolicy, ServiceSpec};
        let memcached =
            ServiceSpec { service: 0, fork: 0, port_lo: 11211, port_hi: 11218, udp: true, tcp: true, policy: InstancePolicy::Port, idle_ticks: 0 };
        let web = ServiceSpec { service: 1, fork: 1, port_lo: 80, port_hi: 80, udp: false, tcp: true, policy: InstancePolicy::Client, idle_ticks: 0 };
        InstanceMap::new(3, alloc::vec![memcached, web]).unwrap()
    }

    #[test]
    fn only_the_controller_calls() {
        let m = map();
        let install = decode(LABEL_INSTALL_PORT, &[17, 7001, 0]).unwrap();
        let counters = decode(LABEL_COUNTERS, &[0]).unwrap();
        assert_eq!(admit(&install, 5, Some(5), &m), Ok(()));
        assert_eq!(admit(&counters, 5, Some(5), &m), Ok(()));
        for request in [install, counters] {
            // Another channel, or no controller named at all: refused, whatever is asked.
            assert_eq!(admit(&request, 4, Some(5), &m), Err(ApiError::NotController));
            assert_eq!(admit(&request, 5, None, &m), Err(ApiError::NotController));
            assert_eq!(admit(&request, 0, None, &m), Err(ApiError::NotController));
        }
        // The refusal comes before any argument check: a stranger learns nothing.
        let bad_tenant = decode(LABEL_INSTALL_PORT, &[17, 11211, 9]).unwrap();
        assert_eq!(admit(&bad_tenant, 4, Some(5), &m), Err(ApiError::NotController));
        for (label, mrs) in [(99, &[][..]), (LABEL_INSTALL_PORT, &[17][..]), (LABEL_INSTALL_PORT, &[17, 11211, 9][..])] {
            assert_eq!(admitted(label, mrs, 4, Some(5), &m), Err(ApiError::NotController));
        }
        // The controller gets the decode and admit answers.
        assert_eq!(admitted(99, &[], 5, Some(5), &m), Err(ApiError::UnknownLabel));
        assert_eq!(admitted(LABEL_INSTALL_PORT, &[17], 5, Some(5), &m), Err(ApiError::BadArguments));
        assert_eq!(admitted(LABEL_INSTALL_PORT, &[17, 11211, 0], 5, Some(5), &m), Err(ApiError::ServicePort));
        assert_eq!(
            admitted(LABEL_INSTALL_PORT, &[17, 7001, 2], 5, Some(5), &m),
            Ok(Request::InstallPort { protocol: Protocol::Udp, port: 7001, tenant: 2 })
        );
    }

    #[test]
    fn routes_name_static_tenants_only() {
        let m = map();
        let port = |t| decode(LABEL_INSTALL_PORT, &[6, 7000, t]).unwrap();
        let conn = |t| decode(LABEL_INSTALL_CONNECTION, &[6, 0x0a00_0202, 5000, 7000, t]).unwrap();
        for t in 0..3 {
            assert_eq!(admit(&port(t), 1, Some(1), &m), Ok(()));
            assert_eq!(admit(&conn(t), 1, Some(1), &m), Ok(()));
        }
        // 3 is the first instance tenant (of memcached), 99 nobody: neither may be named.
        for t in [3, 4, 3 + 8192, 99, 65535] {
            assert_eq!(admit(&port(t), 1, Some(1), &m), Err(ApiError::NoSuchTenant), "tenant {t}");
            assert_eq!(admit(&conn(t), 1, Some(1), &m), Err(ApiError::NoSuchTenant), "tenant {t}");
        }
        // Counters of any tenant may be read (the PD answers NoSuchTenant for one not live).
        assert_eq!(admit(&decode(LABEL_COUNTERS, &[3]).unwrap(), 1, Some(1), &m), Ok(()));
    }

    #[test]
    fn service_ports_are_the_virtualisers() {
        let m = map();
        let ok = |label, args: &[u64]| admit(&decode(label, args).unwrap(), 2, Some(2), &m);
        for port in [11211, 11215, 11218] {
            for proto in [6, 17] {
                assert_eq!(ok(LABEL_INSTALL_PORT, &[proto, port, 0]), Err(ApiError::ServicePort));
                assert_eq!(ok(LABEL_REMOVE_PORT, &[proto, port]), Err(ApiError::ServicePort));
                assert_eq!(ok(LABEL_INSTALL_CONNECTION, &[proto, 0x0a00_0202, 4000, port, 1]), Err(ApiError::ServicePort));
                assert_eq!(ok(LABEL_REMOVE_CONNECTION, &[proto, 0x0a00_0202, 4000, port]), Err(ApiError::ServicePort));
            }
        }
        // Next to the range, and the web service's port over the protocol it does not serve.
        assert_eq!(ok(LABEL_INSTALL_PORT, &[6, 11210, 0]), Ok(()));
        assert_eq!(ok(LABEL_INSTALL_PORT, &[17, 11219, 0]), Ok(()));
        assert_eq!(ok(LABEL_INSTALL_PORT, &[6, 80, 0]), Err(ApiError::ServicePort));
        assert_eq!(ok(LABEL_INSTALL_PORT, &[17, 80, 0]), Ok(()));
        assert_eq!(ok(LABEL_REMOVE_CONNECTION, &[6, 0x0a00_0202, 4000, 80]), Err(ApiError::ServicePort));
    }

    #[test]
    fn error_codes_are_stable() {
        // The codes are the reply labels netctl and tests/net/client.py compare against.
        let codes = [
            (ApiError::UnknownLabel, 1),
            (ApiError::BadArguments, 2),
            (ApiError::Taken, 3),
            (ApiError::NotFound, 4),
            (ApiError::Full, 5),
            (ApiError::NoSuchTenant, 6),
            (ApiError::NotController, 7),
            (ApiError::ServicePort, 8),
        ];
        for (e, code) in codes {
            assert_eq!(e as u64, code);
        }
    }

    #[test]
    fn bad_requests() {
        assert_eq!(decode(99, &[]), Err(ApiError::UnknownLabel));
        assert_eq!(decode(LABEL_INSTALL_PORT, &[17, 7]), Err(ApiError::BadArguments));
        assert_eq!(decode(LABEL_INSTALL_PORT, &[1, 7, 0]), Err(ApiError::BadArguments));
        assert_eq!(decode(LABEL_INSTALL_PORT, &[17, 70000, 0]), Err(ApiError::BadArguments));
        assert_eq!(decode(LABEL_INSTALL_CONNECTION, &[6, 1 << 40, 1, 1, 0]), Err(ApiError::BadArguments));
        let mut t = FlowTable::new(1);
        assert_eq!(apply(&mut t, decode(LABEL_INSTALL_PORT, &[6, 7, 5]).unwrap()), Err(ApiError::NoSuchTenant));
    }
}
