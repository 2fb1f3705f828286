//! Tenants that are featherweight instances (`docs/featherweight.md`): the virtualiser serves,
//! next to its static tenants, services whose tenants are instances of a template that the
//! manager PD forks and hands out per flow. This module is the host-tested part of that:
//!
//! - [`InstanceMap`]: which tenant id an instance has in the flow table (static tenants first,
//!   then [`SLOT_INSTANCES`] ids per template-backed service), which service a
//!   `(protocol, local port)` belongs to, which route a flow gets once the manager has
//!   assigned it an instance (policy `port`: the local port; `client`: the connection; `shared`:
//!   the local port) and which ports the instance is told to serve;
//! - [`InstanceMap::remove_routes`]: every route of an instance, when it is released or dead;
//! - [`Life`]: what the virtualiser keeps per live instance besides its queues: when it last
//!   moved a frame (idle reclaim), whether it has notified since it was handed over, and the
//!   one frame parked while a fresh instance has no receive buffer yet.
//!
//! The services themselves come from the manager's services file (`edgeos-manager-core`'s
//! `config`); the virtualiser PD turns each into a [`ServiceSpec`].

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::flow::{Connection, FlowTable, Protocol, RouteError, TenantId};
use crate::parse::MAX_FRAME;

/// Tenant ids reserved per template-backed service: instance ids `0..SLOT_INSTANCES`.
pub const SLOT_INSTANCES: u32 = 8192;
/// Template-backed services one virtualiser serves (its `instN_*` variable sets).
pub const MAX_SLOTS: usize = 4;

/// How a service's flows map to instances (the manager's `policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstancePolicy {
    /// One instance per local port: routed by (protocol, local port).
    Port,
    /// One instance per client address: routed by connection.
    Client,
    /// One instance for the whole service: routed by (protocol, local port).
    Shared,
}

/// A template-backed service as the virtualiser needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The manager's service id (its line in the services file).
    pub service: u8,
    /// The manager's fork grant id for its template: the virtualiser's `inst<fork>_*` variables.
    pub fork: u8,
    pub port_lo: u16,
    pub port_hi: u16,
    pub udp: bool,
    pub tcp: bool,
    pub policy: InstancePolicy,
    /// Counter ticks without a frame before an instance is released (0: never).
    pub idle_ticks: u64,
}

impl ServiceSpec {
    pub fn serves(&self, protocol: Protocol, port: u16) -> bool {
        let by_protocol = match protocol {
            Protocol::Udp => self.udp,
            Protocol::Tcp => self.tcp,
        };
        by_protocol && (self.port_lo..=self.port_hi).contains(&port)
    }
}

/// A service the virtualiser cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// More template-backed services than [`MAX_SLOTS`].
    TooManyServices,
    /// The tenant ids would not fit a [`TenantId`].
    TooManyTenants,
}

/// The route a flow gets once it has an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowRoute {
    Port { protocol: Protocol, port: u16 },
    Connection(Connection),
}

/// Static tenants and the instance tenants of each service, as flow-table tenant ids.
#[derive(Clone, Debug)]
pub struct InstanceMap {
    static_tenants: TenantId,
    specs: Vec<ServiceSpec>,
}

impl InstanceMap {
    /// Static tenants are `0..static_tenants`; service `k` of `specs` (its slot) has the ids
    /// `static_tenants + k * SLOT_INSTANCES ..` for its instances `0..SLOT_INSTANCES`.
    pub fn new(static_tenants: TenantId, specs: Vec<ServiceSpec>) -> Result<Self, MapError> {
        if specs.len() > MAX_SLOTS {
            return Err(MapError::TooManyServices);
        }
        let total = static_tenants as u64 + specs.len() as u64 * SLOT_INSTANCES as u64;
        if total > (u16::MAX - 1) as u64 {
            return Err(MapError::TooManyTenants);
        }
        Ok(InstanceMap { static_tenants, specs })
    }

    /// Tenant ids in use (what the flow table is made for).
    pub fn tenants(&self) -> TenantId {
        self.static_tenants + (self.specs.len() as u32 * SLOT_INSTANCES) as TenantId
    }

    pub fn static_tenants(&self) -> TenantId {
        self.static_tenants
    }

    pub fn slots(&self) -> &[ServiceSpec] {
        &self.specs
    }

    /// The slot whose service serves `(protocol, port)`.
    pub fn slot_for(&self, protocol: Protocol, port: u16) -> Option<usize> {
        self.specs.iter().position(|s| s.serves(protocol, port))
    }

    /// The slot of the service with manager service id `service`.
    pub fn slot_of_service(&self, service: u8) -> Option<usize> {
        self.specs.iter().position(|s| s.service == service)
    }

    /// The slot of the service whose template is fork grant `fork`.
    pub fn slot_of_fork(&self, fork: u8) -> Option<usize> {
        self.specs.iter().position(|s| s.fork == fork)
    }

    /// The tenant id of instance `instance` of slot `slot` (None: out of range).
    pub fn tenant(&self, slot: usize, instance: u32) -> Option<TenantId> {
        (slot < self.specs.len() && instance < SLOT_INSTANCES)
            .then(|| self.static_tenants + (slot as u32 * SLOT_INSTANCES + instance) as TenantId)
    }

    /// `(slot, instance)` of an instance tenant; None for static tenants and unknown ids.
    pub fn instance(&self, tenant: TenantId) -> Option<(usize, u32)> {
        let i = tenant.checked_sub(self.static_tenants)? as u32;
        let slot = (i / SLOT_INSTANCES) as usize;
        (slot < self.specs.len()).then_some((slot, i % SLOT_INSTANCES))
    }

    /// The route the flow `c` (the first packet of which found none) gets in slot `slot`.
    pub fn route_for(&self, slot: usize, c: &Connection) -> FlowRoute {
        match self.specs[slot].policy {
            InstancePolicy::Client => FlowRoute::Connection(*c),
            InstancePolicy::Port | InstancePolicy::Shared => FlowRoute::Port { protocol: c.protocol, port: c.local_port },
        }
    }

    /// The `(udp, tcp)` ports an instance of slot `slot` serves when the flow that got it is to
    /// `local_port`: with policy `port`, that port (over the service's protocols); otherwise the
    /// service's first port. 0: not served over that protocol.
    pub fn link_ports(&self, slot: usize, local_port: u16) -> (u16, u16) {
        let s = &self.specs[slot];
        let port = match s.policy {
            InstancePolicy::Port => local_port,
            InstancePolicy::Client | InstancePolicy::Shared => s.port_lo,
        };
        (if s.udp { port } else { 0 }, if s.tcp { port } else { 0 })
    }

    /// Installs `route` to `tenant`. A port route the same tenant already has is fine.
    pub fn install(table: &mut FlowTable, route: FlowRoute, tenant: TenantId) -> Result<(), RouteError> {
        match route {
            FlowRoute::Port { protocol, port } => table.install_port(protocol, port, tenant),
            FlowRoute::Connection(c) => table.install_connection(c, tenant),
        }
    }

    /// Removes every route to the instance tenant `tenant` (its service's ports and every
    /// connection); returns how many there were.
    pub fn remove_routes(&self, table: &mut FlowTable, tenant: TenantId) -> usize {
        let Some((slot, _)) = self.instance(tenant) else { return 0 };
        let s = self.specs[slot];
        let mut removed = 0;
        if matches!(s.policy, InstancePolicy::Port | InstancePolicy::Shared) {
            for port in s.port_lo..=s.port_hi {
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    removed += table.remove_port_of(protocol, port, tenant) as usize;
                }
            }
        }
        if table.connections() != 0 {
            removed += table.remove_connections_of(tenant);
        }
        removed
    }
}

/// Seconds to counter ticks, saturating.
pub fn seconds_to_ticks(seconds: u32, frequency: u64) -> u64 {
    (seconds as u64).saturating_mul(frequency)
}

/// A frame held back for an instance that had no free receive buffer yet.
pub struct Parked {
    bytes: Box<[u8; MAX_FRAME]>,
    len: usize,
}

impl Parked {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Per live instance: idle time, first notification, the parked frame.
pub struct Life {
    /// Counter ticks of the last frame moved either way (or of the hand-over).
    pub last_active: u64,
    /// The instance has notified the virtualiser since it was handed over (it is running and
    /// its receive buffers are visible).
    pub heard: bool,
    parked: Option<Parked>,
    /// Frames parked, and frames dropped because one was parked already.
    pub parked_total: u64,
    pub park_dropped: u64,
    /// When the manager was last told of activity (TOUCH).
    pub reported: u64,
}

impl Life {
    pub fn new(now: u64) -> Self {
        Life { last_active: now, heard: false, parked: None, parked_total: 0, park_dropped: 0, reported: now }
    }

    /// A frame moved at `now`; true if the manager should hear of this instance's activity
    /// (TOUCH: it keeps an idle clock of its own), at most every quarter of `idle_ticks`.
    pub fn active(&mut self, now: u64, idle_ticks: u64) -> bool {
        self.last_active = self.last_active.max(now);
        if idle_ticks != 0 && now.saturating_sub(self.reported) >= idle_ticks / 4 {
            self.reported = now;
            true
        } else {
            false
        }
    }

    /// Keeps `frame` (at most [`MAX_FRAME`] bytes) until the instance can take it; false if a
    /// frame is parked already (this one is lost) or it is too long.
    pub fn park(&mut self, frame: &[u8]) -> bool {
        if self.parked.is_some() || frame.len() > MAX_FRAME {
            self.park_dropped += 1;
            return false;
        }
        let mut bytes = Box::new([0u8; MAX_FRAME]);
        bytes[..frame.len()].copy_from_slice(frame);
        self.parked = Some(Parked { bytes, len: frame.len() });
        self.parked_total += 1;
        true
    }

    pub fn has_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Hands the parked frame to `deliver`; it stays parked if `deliver` says false.
    pub fn retry_parked(&mut self, deliver: impl FnOnce(&[u8]) -> bool) -> bool {
        let Some(p) = self.parked.take() else { return false };
        if deliver(p.bytes()) {
            true
        } else {
            self.parked = Some(p);
            false
        }
    }

    /// Whether the instance has been idle for `idle_ticks` at `now` (never if 0).
    pub fn idle(&self, now: u64, idle_ticks: u64) -> bool {
        idle_ticks != 0 && now.saturating_sub(self.last_active) >= idle_ticks
    }

    /// When it becomes idle (`u64::MAX`: never).
    pub fn idle_at(&self, idle_ticks: u64) -> u64 {
        if idle_ticks == 0 {
            u64::MAX
        } else {
            self.last_active.saturating_add(idle_ticks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn memcached(policy: InstancePolicy) -> ServiceSpec {
        ServiceSpec { service: 0, fork: 0, port_lo: 11211, port_hi: 11218, udp: true, tcp: true, policy, idle_ticks: 600 }
    }

    fn web() -> ServiceSpec {
        ServiceSpec { service: 1, fork: 3, port_lo: 80, port_hi: 80, udp: false, tcp: true, policy: InstancePolicy::Client, idle_ticks: 0 }
    }

    fn conn(protocol: Protocol, remote_port: u16, local_port: u16) -> Connection {
        Connection { protocol, remote_ip: [10, 0, 2, 2], remote_port, local_port }
    }

    #[test]
    fn tenant_ids() {
        let m = InstanceMap::new(2, vec![memcached(InstancePolicy::Port), web()]).unwrap();
        assert_eq!(m.tenants(), 2 + 2 * SLOT_INSTANCES as u16);
        assert_eq!(m.tenant(0, 0), Some(2));
        assert_eq!(m.tenant(1, 5), Some(2 + SLOT_INSTANCES as u16 + 5));
        assert_eq!(m.tenant(0, SLOT_INSTANCES), None);
        assert_eq!(m.tenant(2, 0), None);
        assert_eq!(m.instance(1), None);
        assert_eq!(m.instance(2), Some((0, 0)));
        assert_eq!(m.instance(2 + SLOT_INSTANCES as u16 + 5), Some((1, 5)));
        assert_eq!(m.instance(m.tenants()), None);
        for slot in 0..2 {
            for i in [0, 1, 4095, SLOT_INSTANCES - 1] {
                assert_eq!(m.instance(m.tenant(slot, i).unwrap()), Some((slot, i)));
            }
        }
        assert_eq!(m.slot_of_fork(3), Some(1));
        assert_eq!(m.slot_of_service(1), Some(1));
        assert_eq!(m.slot_for(Protocol::Udp, 11218), Some(0));
        assert_eq!(m.slot_for(Protocol::Udp, 11219), None);
        assert_eq!(m.slot_for(Protocol::Udp, 80), None);
        assert_eq!(m.slot_for(Protocol::Tcp, 80), Some(1));
        // Four slots of 8192 fit next to a few static tenants; five do not.
        assert!(InstanceMap::new(4, vec![web(); MAX_SLOTS]).is_ok());
        assert_eq!(InstanceMap::new(4, vec![web(); MAX_SLOTS + 1]).unwrap_err(), MapError::TooManyServices);
        assert_eq!(InstanceMap::new(40000, vec![web(); 4]).unwrap_err(), MapError::TooManyTenants);
    }

    #[test]
    fn routes_and_ports_by_policy() {
        let m = InstanceMap::new(1, vec![memcached(InstancePolicy::Port), web()]).unwrap();
        let c = conn(Protocol::Tcp, 40000, 11214);
        assert_eq!(m.route_for(0, &c), FlowRoute::Port { protocol: Protocol::Tcp, port: 11214 });
        assert_eq!(m.link_ports(0, 11214), (11214, 11214));
        let w = conn(Protocol::Tcp, 40000, 80);
        assert_eq!(m.route_for(1, &w), FlowRoute::Connection(w));
        assert_eq!(m.link_ports(1, 80), (0, 80));
        let shared = InstanceMap::new(0, vec![memcached(InstancePolicy::Shared)]).unwrap();
        assert_eq!(shared.link_ports(0, 11214), (11211, 11211));
        assert_eq!(shared.route_for(0, &c), FlowRoute::Port { protocol: Protocol::Tcp, port: 11214 });
    }

    #[test]
    fn releasing_an_instance_removes_exactly_its_routes() {
        let m = InstanceMap::new(1, vec![memcached(InstancePolicy::Port), web()]).unwrap();
        let mut table = FlowTable::with_connections(m.tenants(), 4096);
        table.install_port(Protocol::Udp, 5555, 0).unwrap();
        let a = m.tenant(0, 0).unwrap();
        let b = m.tenant(0, 1).unwrap();
        for (t, port) in [(a, 11211), (b, 11212)] {
            for p in [Protocol::Udp, Protocol::Tcp] {
                InstanceMap::install(&mut table, m.route_for(0, &conn(p, 1, port)), t).unwrap();
            }
        }
        // The same route twice (a second flow to the same port) is fine.
        InstanceMap::install(&mut table, m.route_for(0, &conn(Protocol::Tcp, 2, 11211)), a).unwrap();
        let w = m.tenant(1, 7).unwrap();
        for rp in 0..100 {
            InstanceMap::install(&mut table, m.route_for(1, &conn(Protocol::Tcp, rp, 80)), w).unwrap();
        }
        assert_eq!(table.lookup(&conn(Protocol::Tcp, 9, 11211)), Some(a));
        assert_eq!(table.lookup(&conn(Protocol::Tcp, 50, 80)), Some(w));
        assert_eq!(table.lookup(&conn(Protocol::Tcp, 500, 80)), None);
        assert_eq!(m.remove_routes(&mut table, a), 2);
        assert_eq!(table.lookup(&conn(Protocol::Tcp, 9, 11211)), None);
        assert_eq!(table.lookup(&conn(Protocol::Udp, 9, 11212)), Some(b));
        assert_eq!(m.remove_routes(&mut table, w), 100);
        assert_eq!(table.lookup(&conn(Protocol::Tcp, 50, 80)), None);
        // Static tenants are never touched.
        assert_eq!(m.remove_routes(&mut table, 0), 0);
        assert_eq!(table.port_owner(Protocol::Udp, 5555), Some(0));
        // Another instance cannot take a routed port.
        assert_eq!(
            InstanceMap::install(&mut table, FlowRoute::Port { protocol: Protocol::Udp, port: 11212 }, a),
            Err(RouteError::Taken { tenant: b })
        );
    }

    #[test]
    fn parking_one_frame() {
        let mut life = Life::new(100);
        assert!(!life.has_parked());
        assert!(!life.retry_parked(|_| unreachable!()));
        assert!(life.park(b"first"));
        assert!(!life.park(b"second"));
        assert_eq!(life.park_dropped, 1);
        assert!(!life.park(&[0u8; MAX_FRAME + 1]));
        // Still no buffer: it stays.
        assert!(!life.retry_parked(|f| {
            assert_eq!(f, b"first");
            false
        }));
        assert!(life.has_parked());
        let mut got = Vec::new();
        assert!(life.retry_parked(|f| {
            got.extend_from_slice(f);
            true
        }));
        assert_eq!(got, b"first");
        assert!(!life.has_parked());
        assert!(life.park(&[7u8; MAX_FRAME]));
        assert_eq!(life.parked_total, 2);
    }

    #[test]
    fn idle_time() {
        let mut life = Life::new(1000);
        assert!(!life.idle(1_000_000, 0));
        assert_eq!(life.idle_at(0), u64::MAX);
        assert!(!life.idle(1599, 600));
        assert!(life.idle(1600, 600));
        assert_eq!(life.idle_at(600), 1600);
        life.last_active = 2000;
        assert!(!life.idle(1600, 600), "a clock read before the last frame is not idle");
        life.last_active = u64::MAX - 1;
        assert_eq!(life.idle_at(600), u64::MAX);
        assert_eq!(seconds_to_ticks(60, 62_500_000), 3_750_000_000);
        // Activity: the manager hears of it at most every quarter of the idle time.
        let mut life = Life::new(0);
        assert!(!life.active(100, 600));
        assert!(life.active(150, 600));
        assert_eq!(life.last_active, 150);
        assert!(!life.active(299, 600));
        assert!(life.active(300, 600));
        assert!(!life.active(10_000, 0), "never reclaimed: nothing to report");
        assert_eq!(life.last_active, 10_000);
        assert_eq!(seconds_to_ticks(u32::MAX, u64::MAX), u64::MAX);
    }
}
