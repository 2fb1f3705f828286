//! The flow table: which tenant receives a packet.
//!
//! Two kinds of routes, looked up most specific first:
//! - a connection route: the full 5-tuple (protocol, remote address and port, local port; the
//!   local address is the node's) -> tenant, held in an open-addressing hash table;
//! - a port route: (protocol, local port) -> tenant, held in a directly indexed array per
//!   protocol (O(1), 64 Ki entries of 2 bytes each).
//!
//! Both are installed and removed at run time (by the manager, through [`crate::api`]); the
//! virtualiser starts with the static routes of its description.

use alloc::boxed::Box;
use alloc::vec;

use crate::parse::{Ipv4, PROTOCOL_TCP, PROTOCOL_UDP};

/// A tenant, by its index in the virtualiser.
pub type TenantId = u16;

/// The transport protocols that are routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    pub fn from_ip(protocol: u8) -> Option<Self> {
        match protocol {
            PROTOCOL_UDP => Some(Protocol::Udp),
            PROTOCOL_TCP => Some(Protocol::Tcp),
            _ => None,
        }
    }

    pub fn ip_number(self) -> u8 {
        match self {
            Protocol::Udp => PROTOCOL_UDP,
            Protocol::Tcp => PROTOCOL_TCP,
        }
    }
}

/// A connection as the node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Connection {
    pub protocol: Protocol,
    pub remote_ip: Ipv4,
    pub remote_port: u16,
    pub local_port: u16,
}

/// Why a route could not be installed or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The port or connection is already routed to another tenant.
    Taken { tenant: TenantId },
    /// No route to remove.
    NotFound,
    /// The connection table is full.
    Full,
    /// The tenant id is not one this virtualiser serves.
    NoSuchTenant,
}

/// Slots of the connection table [`FlowTable::new`] makes (a power of two); three quarters of
/// them can hold routes. [`FlowTable::with_connections`] sizes it for more (the virtualiser
/// serving featherweight instances routes one connection per client flow).
pub const CONNECTIONS: usize = 1024;
/// Port table entries hold `tenant + 1`; 0 is "no route" (so the tables start zeroed).
const NO_TENANT: u16 = 0;

#[derive(Clone, Copy)]
enum Slot {
    Empty,
    /// A removed entry: lookups continue past it.
    Deleted,
    Used(Connection, TenantId),
}

/// The routes of one node.
pub struct FlowTable {
    udp_ports: Box<[u16]>,
    tcp_ports: Box<[u16]>,
    connections: Box<[Slot]>,
    /// `connections.len() - 1` (the length is a power of two).
    mask: usize,
    used: usize,
    tenants: TenantId,
}

fn hash(c: &Connection) -> usize {
    // FNV-1a over the tuple's bytes: cheap and spreads remote ports well.
    let mut h: u32 = 0x811c_9dc5;
    let proto = c.protocol.ip_number();
    for b in [proto]
        .iter()
        .chain(c.remote_ip.iter())
        .chain(c.remote_port.to_be_bytes().iter())
        .chain(c.local_port.to_be_bytes().iter())
    {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize
}

impl FlowTable {
    /// An empty table for `tenants` tenants (ids `0..tenants`, at most 65534).
    pub fn new(tenants: TenantId) -> Self {
        Self::with_connections(tenants, CONNECTIONS)
    }

    /// An empty table with `slots` connection slots (rounded up to a power of two, at least
    /// 16); `slots * 3 / 4` connections can be routed at once.
    pub fn with_connections(tenants: TenantId, slots: usize) -> Self {
        let slots = slots.clamp(16, 1 << 20).next_power_of_two();
        FlowTable {
            udp_ports: vec![NO_TENANT; 65536].into_boxed_slice(),
            tcp_ports: vec![NO_TENANT; 65536].into_boxed_slice(),
            connections: vec![Slot::Empty; slots].into_boxed_slice(),
            mask: slots - 1,
            used: 0,
            tenants: tenants.min(u16::MAX - 1),
        }
    }

    /// Tenant ids this table accepts (`0..tenants()`).
    pub fn tenants(&self) -> TenantId {
        self.tenants
    }

    /// Connection routes installed.
    pub fn connections(&self) -> usize {
        self.used
    }

    /// Connection routes the table can hold.
    pub fn connection_capacity(&self) -> usize {
        self.connections.len() * 3 / 4
    }

    /// Removes every connection route to `tenant`; returns how many there were. A scan of the
    /// whole table (instances are released far less often than packets arrive).
    pub fn remove_connections_of(&mut self, tenant: TenantId) -> usize {
        let mut removed = 0;
        for slot in self.connections.iter_mut() {
            if matches!(slot, Slot::Used(_, t) if *t == tenant) {
                *slot = Slot::Deleted;
                removed += 1;
            }
        }
        self.used -= removed;
        if self.used == 0 {
            // Nothing left: drop the tombstones too, so probes stay short.
            self.connections.iter_mut().for_each(|s| *s = Slot::Empty);
        }
        removed
    }

    /// Removes the route of `(protocol, port)` if it goes to `tenant`; true if it did.
    pub fn remove_port_of(&mut self, protocol: Protocol, port: u16, tenant: TenantId) -> bool {
        let entry = &mut self.ports(protocol)[port as usize];
        if *entry == tenant.wrapping_add(1) && *entry != NO_TENANT {
            *entry = NO_TENANT;
            true
        } else {
            false
        }
    }

    fn ports(&mut self, protocol: Protocol) -> &mut [u16] {
        match protocol {
            Protocol::Udp => &mut self.udp_ports,
            Protocol::Tcp => &mut self.tcp_ports,
        }
    }

    /// Routes `(protocol, port)` to `tenant`.
    pub fn install_port(&mut self, protocol: Protocol, port: u16, tenant: TenantId) -> Result<(), RouteError> {
        if tenant >= self.tenants {
            return Err(RouteError::NoSuchTenant);
        }
        let entry = &mut self.ports(protocol)[port as usize];
        if *entry != NO_TENANT && *entry != tenant + 1 {
            return Err(RouteError::Taken { tenant: *entry - 1 });
        }
        *entry = tenant + 1;
        Ok(())
    }

    /// Removes the route of `(protocol, port)`.
    pub fn remove_port(&mut self, protocol: Protocol, port: u16) -> Result<TenantId, RouteError> {
        let entry = &mut self.ports(protocol)[port as usize];
        if *entry == NO_TENANT {
            return Err(RouteError::NotFound);
        }
        Ok(core::mem::replace(entry, NO_TENANT) - 1)
    }

    /// The tenant a port is routed to.
    pub fn port_owner(&self, protocol: Protocol, port: u16) -> Option<TenantId> {
        let t = match protocol {
            Protocol::Udp => self.udp_ports[port as usize],
            Protocol::Tcp => self.tcp_ports[port as usize],
        };
        t.checked_sub(1)
    }

    fn find(&self, c: &Connection) -> Option<usize> {
        let mut i = hash(c) & self.mask;
        for _ in 0..self.connections.len() {
            match self.connections[i] {
                Slot::Empty => return None,
                Slot::Used(k, _) if k == *c => return Some(i),
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Routes one connection to `tenant` (more specific than its port's route).
    pub fn install_connection(&mut self, c: Connection, tenant: TenantId) -> Result<(), RouteError> {
        if tenant >= self.tenants {
            return Err(RouteError::NoSuchTenant);
        }
        if let Some(i) = self.find(&c) {
            return match self.connections[i] {
                Slot::Used(_, t) if t == tenant => Ok(()),
                Slot::Used(_, t) => Err(RouteError::Taken { tenant: t }),
                _ => unreachable!("find returns used slots"),
            };
        }
        // Keep a quarter free so probes stay short and always end at an empty slot.
        if self.used >= self.connection_capacity() {
            return Err(RouteError::Full);
        }
        let mut i = hash(&c) & self.mask;
        loop {
            if !matches!(self.connections[i], Slot::Used(..)) {
                self.connections[i] = Slot::Used(c, tenant);
                self.used += 1;
                return Ok(());
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes one connection's route.
    pub fn remove_connection(&mut self, c: &Connection) -> Result<TenantId, RouteError> {
        let i = self.find(c).ok_or(RouteError::NotFound)?;
        let Slot::Used(_, t) = core::mem::replace(&mut self.connections[i], Slot::Deleted) else {
            unreachable!("find returns used slots")
        };
        self.used -= 1;
        Ok(t)
    }

    /// The tenant that receives a packet of connection `c`: its connection route, else its
    /// local port's route.
    pub fn lookup(&self, c: &Connection) -> Option<TenantId> {
        if self.used != 0 {
            if let Some(i) = self.find(c) {
                if let Slot::Used(_, t) = self.connections[i] {
                    return Some(t);
                }
            }
        }
        self.port_owner(c.protocol, c.local_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> FlowTable {
        FlowTable::new(4)
    }

    fn conn(remote_port: u16, local_port: u16) -> Connection {
        Connection { protocol: Protocol::Tcp, remote_ip: [10, 0, 2, 2], remote_port, local_port }
    }

    #[test]
    fn port_routes() {
        let mut t = table();
        t.install_port(Protocol::Udp, 7, 0).unwrap();
        t.install_port(Protocol::Tcp, 7, 1).unwrap();
        assert_eq!(t.lookup(&Connection { protocol: Protocol::Udp, ..conn(1, 7) }), Some(0));
        assert_eq!(t.lookup(&conn(1, 7)), Some(1));
        assert_eq!(t.lookup(&conn(1, 8)), None);
        assert_eq!(t.install_port(Protocol::Tcp, 7, 2), Err(RouteError::Taken { tenant: 1 }));
        assert_eq!(t.install_port(Protocol::Tcp, 9, 4), Err(RouteError::NoSuchTenant));
        assert_eq!(t.remove_port(Protocol::Tcp, 7), Ok(1));
        assert_eq!(t.lookup(&conn(1, 7)), None);
        assert_eq!(t.remove_port(Protocol::Tcp, 7), Err(RouteError::NotFound));
    }

    #[test]
    fn connection_routes_win_over_ports() {
        let mut t = table();
        t.install_port(Protocol::Tcp, 80, 0).unwrap();
        t.install_connection(conn(5000, 80), 2).unwrap();
        assert_eq!(t.lookup(&conn(5000, 80)), Some(2));
        assert_eq!(t.lookup(&conn(5001, 80)), Some(0));
        assert_eq!(t.install_connection(conn(5000, 80), 3), Err(RouteError::Taken { tenant: 2 }));
        assert_eq!(t.remove_connection(&conn(5000, 80)), Ok(2));
        assert_eq!(t.lookup(&conn(5000, 80)), Some(0));
    }

    #[test]
    fn connection_table_fills_and_empties() {
        let mut t = table();
        let max = CONNECTIONS * 3 / 4;
        for p in 0..max as u16 {
            t.install_connection(conn(p, 1), p % 4).unwrap();
        }
        assert_eq!(t.install_connection(conn(60000, 1), 0), Err(RouteError::Full));
        for p in 0..max as u16 {
            assert_eq!(t.lookup(&conn(p, 1)), Some(p % 4));
        }
        for p in (0..max as u16).step_by(2) {
            t.remove_connection(&conn(p, 1)).unwrap();
        }
        for p in 0..max as u16 {
            assert_eq!(t.lookup(&conn(p, 1)), if p % 2 == 0 { None } else { Some(p % 4) });
        }
        // Deleted slots are reused.
        for p in (0..max as u16).step_by(2) {
            t.install_connection(conn(p, 1), 3).unwrap();
        }
        assert_eq!(t.lookup(&conn(0, 1)), Some(3));
    }

    #[test]
    fn thousands_of_tenants_and_connections() {
        // The virtualiser's shape: 4 static tenants plus 4 services of 8192 instances.
        let tenants = 4 + 4 * 8192;
        let mut t = FlowTable::with_connections(tenants, 16384);
        assert_eq!(t.connection_capacity(), 12288);
        for i in 0..10_000u16 {
            let c = Connection { protocol: Protocol::Udp, remote_ip: [10, 0, (i >> 8) as u8, i as u8], remote_port: 4000 + i, local_port: 11211 };
            t.install_connection(c, 4 + i * 3).unwrap();
        }
        assert_eq!(t.connections(), 10_000);
        t.install_port(Protocol::Tcp, 11211, tenants - 1).unwrap();
        assert_eq!(t.port_owner(Protocol::Tcp, 11211), Some(tenants - 1));
        let c = Connection { protocol: Protocol::Udp, remote_ip: [10, 0, 0, 7], remote_port: 4007, local_port: 11211 };
        assert_eq!(t.lookup(&c), Some(4 + 21));
        assert_eq!(t.remove_connections_of(4 + 21), 1);
        assert_eq!(t.lookup(&c), None);
        assert_eq!(t.connections(), 9_999);
    }

    #[test]
    fn removing_a_tenants_routes() {
        let mut t = table();
        t.install_port(Protocol::Tcp, 80, 1).unwrap();
        t.install_port(Protocol::Udp, 80, 2).unwrap();
        for p in 0..20 {
            t.install_connection(conn(p, 81), 1 + (p % 2)).unwrap();
        }
        assert!(!t.remove_port_of(Protocol::Udp, 80, 1));
        assert!(t.remove_port_of(Protocol::Tcp, 80, 1));
        assert!(!t.remove_port_of(Protocol::Tcp, 80, 1));
        assert_eq!(t.port_owner(Protocol::Udp, 80), Some(2));
        assert_eq!(t.remove_connections_of(1), 10);
        assert_eq!(t.connections(), 10);
        for p in 0..20 {
            assert_eq!(t.lookup(&conn(p, 81)), (p % 2 == 1).then_some(2));
        }
        assert_eq!(t.remove_connections_of(2), 10);
        assert_eq!(t.connections(), 0);
        t.install_connection(conn(1, 81), 0).unwrap();
        assert_eq!(t.lookup(&conn(1, 81)), Some(0));
    }
}
