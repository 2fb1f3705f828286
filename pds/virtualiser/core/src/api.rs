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
//! | 5 | tenant counters | tenant | received, dropped (ring full), sent, refused |

use crate::flow::{Connection, FlowTable, Protocol, RouteError, TenantId};

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
