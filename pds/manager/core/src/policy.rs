//! Which instance serves a request, and the life of every instance, independent of the kernel:
//! the PD asks, does the system calls the answer names (fork, destroy), and reports back.
//!
//! An instance is, in turn:
//!
//! ```text
//!  fork for the pool --> Pooled --(assign: pool hit)--+
//!  fork for a request ---------------------------------+--> Assigned(key) --(touch: activity)
//!                                                           |      |
//!           (release: the virtualiser saw it idle          |      | (fault, or idle past
//!            and already dropped it)                        |      |  `idle` seconds: tick)
//!                                                           v      v
//!              Reclaiming <--(ack_dead: the virtualiser dropped it)-- Retiring (on the dead list)
//!                  |
//!                  +--(PD destroys it: destroyed)--> gone
//!                  +--(PD recycles it, once the kernel can: recycled)--> Pooled
//! ```
//!
//! The key of a request is its local port (`policy port`), its remote IPv4 address (`policy
//! client`) or 0 (`policy shared`); a service has at most one instance per key. A key is freed
//! the moment its instance leaves `Assigned`, so the next request for it gets a new instance
//! even while the old one waits on the dead list.
//!
//! The dead list exists because the virtualiser maps every instance's buffers (instance
//! windows) and would fault touching a destroyed one: an instance it has been told about
//! (assigned) is destroyed only after it acknowledges it dropped it. A pooled instance was never
//! announced, so a fault there is destroyed at once.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::config::{Policy, Protocol, ServiceId, Services};
use crate::stats::{ServiceStats, StatsRecord};

/// An instance: the fork grant of its template and the kernel's instance id. On the wire it is
/// one message register, `fork << 32 | index` (the kernel's instance-fault badge has the same
/// shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceRef {
    pub fork: u8,
    pub index: u32,
}

impl InstanceRef {
    pub const fn new(fork: u8, index: u32) -> Self {
        InstanceRef { fork, index }
    }

    pub const fn pack(self) -> u64 {
        (self.fork as u64) << 32 | self.index as u64
    }

    /// The packed form back; `None` unless bits 40.. are clear and the fork id is below 62.
    pub const fn unpack(v: u64) -> Option<Self> {
        let fork = v >> 32;
        if fork >= crate::config::FORK_IDS as u64 {
            return None;
        }
        Some(InstanceRef { fork: fork as u8, index: v as u32 })
    }
}

/// A request for an instance: the first packet of a flow the virtualiser has no route for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub service: ServiceId,
    pub protocol: Protocol,
    /// Big-endian IPv4 address as a number (10.0.2.2 = 0x0a000202).
    pub remote_ip: u32,
    pub remote_port: u16,
    pub local_port: u16,
}

/// Why a request got no instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoSuchService,
    /// The service does not serve that protocol or local port.
    NotServed,
    /// The fork grant's `max_instances` or memory quota is used up.
    QuotaExceeded,
    /// The kernel refused the fork for another reason.
    ForkFailed,
    /// The template has not reached its checkpoint yet (it runs its `init` at its own priority,
    /// after higher-priority PDs such as the manager): retry later.
    NotReady,
}

/// Why the kernel refused a fork, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkFailure {
    Quota,
    /// The template has not finished its `init` (the kernel answers InvalidState).
    NotReady,
    Other,
}

/// A misuse of the instance protocol by the virtualiser (or the PD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// Not an instance the manager tracks.
    NoSuchInstance,
    /// The instance is not assigned (touch, release).
    NotAssigned,
    /// The instance is not on the dead list (ack_dead).
    NotDead,
    /// The instance is not being reclaimed (destroyed, recycled).
    NotReclaiming,
}

/// The answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Serve(Served),
    /// No instance for the key and an empty pool: the PD forks from `fork` and reports with
    /// [`Manager::forked`].
    Fork { service: ServiceId, fork: u8 },
}

/// The instance serving a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    pub instance: InstanceRef,
    /// The virtualiser has never been given this instance since it was forked.
    pub fresh: bool,
}

/// What to do with a faulted instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Never announced to the virtualiser: destroy it now, then call [`Manager::destroyed`].
    Destroy(InstanceRef),
    /// On the dead list: notify the virtualiser; destroy after its ACK_DEAD.
    NotifyVirtualiser,
    /// Already retiring or being reclaimed: nothing more to do.
    Nothing,
    /// Not an instance the policy knows (the PD may destroy it: the virtualiser never saw it).
    Unknown,
}

/// Why an instance is on the dead list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetireReason {
    Faulted,
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pooled,
    Assigned { key: u32 },
    Retiring(RetireReason),
    Reclaiming,
}

#[derive(Clone, Copy, Debug)]
struct Inst {
    service: ServiceId,
    state: State,
    /// Counter ticks of the last activity (assignment or touch).
    last: u64,
}

struct Svc {
    policy: Policy,
    fork: u8,
    port_lo: u16,
    port_hi: u16,
    protocols: u8,
    idle_ticks: u64,
    pool_target: u32,
    keys: BTreeMap<u32, InstanceRef>,
    pool: VecDeque<InstanceRef>,
    /// A pool fork was refused: stop refilling until an instance of this service is destroyed.
    refill_blocked: bool,
    /// The template is not ready: skip it until the next refill round.
    not_ready: bool,
    stats: ServiceStats,
}

/// The manager's policy state.
pub struct Manager {
    services: Vec<Svc>,
    instances: BTreeMap<InstanceRef, Inst>,
    /// Instances waiting for the virtualiser's ACK_DEAD, oldest first.
    dead: VecDeque<InstanceRef>,
    ticks_per_sec: u64,
    /// The earliest tick an idle reclaim can be due (u64::MAX: none).
    next_idle_check: u64,
    bad_requests: u64,
    /// Services whose statistics changed since the last [`Manager::encode_stats_update`] (bit
    /// per service), and those whose latency histogram did.
    dirty: u32,
    histogram_dirty: u32,
    /// Instances ever put on the dead list (the PD compares it around an event to know whether
    /// to notify the virtualiser).
    retired: u64,
}

impl Manager {
    /// A manager for `services`, whose clock (`now` arguments) runs at `ticks_per_sec`.
    pub fn new(services: &Services, ticks_per_sec: u64) -> Self {
        let services = services
            .iter()
            .map(|(_, s)| Svc {
                policy: s.policy,
                fork: s.fork,
                port_lo: s.port_lo,
                port_hi: s.port_hi,
                protocols: s.protocols,
                idle_ticks: s.idle_secs as u64 * ticks_per_sec.max(1),
                pool_target: s.pool,
                keys: BTreeMap::new(),
                pool: VecDeque::new(),
                refill_blocked: false,
                not_ready: false,
                stats: ServiceStats::new(s),
            })
            .collect();
        Manager {
            services,
            instances: BTreeMap::new(),
            dead: VecDeque::new(),
            ticks_per_sec: ticks_per_sec.max(1),
            next_idle_check: u64::MAX,
            bad_requests: 0,
            dirty: u32::MAX,
            histogram_dirty: u32::MAX,
            retired: 0,
        }
    }

    fn touched(&mut self, service: ServiceId) {
        self.dirty |= 1 << (service as u32 & 31);
    }

    fn key(svc: &Svc, req: &Request) -> u32 {
        match svc.policy {
            Policy::Port => req.local_port as u32,
            Policy::Client => req.remote_ip,
            Policy::Shared => 0,
        }
    }

    fn check(&mut self, req: &Request) -> Result<(), Refusal> {
        let Some(svc) = self.services.get_mut(req.service as usize) else {
            self.bad_requests += 1;
            return Err(Refusal::NoSuchService);
        };
        let proto = match req.protocol {
            Protocol::Tcp => 1,
            Protocol::Udp => 2,
        };
        if svc.protocols & proto == 0 || !(svc.port_lo..=svc.port_hi).contains(&req.local_port) {
            svc.stats.refused += 1;
            self.dirty |= 1 << (req.service as u32 & 31);
            return Err(Refusal::NotServed);
        }
        Ok(())
    }

    fn note_activity(&mut self, svc: usize, now: u64) {
        let idle = self.services[svc].idle_ticks;
        if idle != 0 {
            self.next_idle_check = self.next_idle_check.min(now.saturating_add(idle));
        }
    }

    /// Which instance serves `req`: the key's instance, else one from the pool, else a fork.
    pub fn assign(&mut self, req: &Request, now: u64) -> Result<Decision, Refusal> {
        self.check(req)?;
        self.touched(req.service);
        let s = req.service as usize;
        let svc = &mut self.services[s];
        let key = Self::key(svc, req);
        if let Some(&instance) = svc.keys.get(&key) {
            svc.stats.assignments += 1;
            if let Some(i) = self.instances.get_mut(&instance) {
                i.last = now;
            }
            return Ok(Decision::Serve(Served { instance, fresh: false }));
        }
        if let Some(instance) = svc.pool.pop_front() {
            svc.stats.pool_hits += 1;
            svc.stats.assignments += 1;
            svc.stats.pooled -= 1;
            svc.stats.assigned += 1;
            svc.keys.insert(key, instance);
            let i = self.instances.get_mut(&instance).expect("pooled instances are tracked");
            i.state = State::Assigned { key };
            i.last = now;
            self.note_activity(s, now);
            return Ok(Decision::Serve(Served { instance, fresh: true }));
        }
        svc.stats.pool_misses += 1;
        Ok(Decision::Fork { service: req.service, fork: svc.fork })
    }

    /// The result of the fork a [`Decision::Fork`] asked for (`latency` in counter ticks). A
    /// refused fork refuses the request and changes nothing else.
    pub fn forked(&mut self, req: &Request, result: Result<u32, ForkFailure>, latency: u64, now: u64) -> Result<Served, Refusal> {
        self.check(req)?;
        self.touched(req.service);
        if result.is_ok() {
            self.histogram_dirty |= 1 << (req.service as u32 & 31);
        }
        let s = req.service as usize;
        let svc = &mut self.services[s];
        let index = match result {
            Ok(index) => index,
            Err(f) => {
                svc.stats.refused += 1;
                if f != ForkFailure::NotReady {
                    svc.stats.fork_failures += 1;
                }
                return Err(match f {
                    ForkFailure::Quota => Refusal::QuotaExceeded,
                    ForkFailure::NotReady => Refusal::NotReady,
                    ForkFailure::Other => Refusal::ForkFailed,
                });
            }
        };
        let instance = InstanceRef::new(svc.fork, index);
        if self.instances.contains_key(&instance) {
            // The kernel handed out a live id twice: keep what we know, refuse the request.
            svc.stats.refused += 1;
            return Err(Refusal::ForkFailed);
        }
        svc.stats.forked += 1;
        svc.stats.live += 1;
        svc.stats.fork_latency.record(latency);
        let key = Self::key(svc, req);
        if svc.keys.contains_key(&key) {
            // Cannot happen in one thread of control; be safe: the new one goes to the pool.
            svc.stats.pooled += 1;
            svc.pool.push_back(instance);
            self.instances.insert(instance, Inst { service: req.service, state: State::Pooled, last: now });
            return self.assign(req, now).map(|d| match d {
                Decision::Serve(s) => s,
                Decision::Fork { .. } => unreachable!("the key is assigned"),
            });
        }
        svc.stats.assignments += 1;
        svc.stats.assigned += 1;
        svc.keys.insert(key, instance);
        self.instances.insert(instance, Inst { service: req.service, state: State::Assigned { key }, last: now });
        self.note_activity(s, now);
        Ok(Served { instance, fresh: true })
    }

    /// Forks needed to bring pools back to target: (service, fork grant, count), skipping
    /// services whose last pool fork was refused (until one of their instances is destroyed)
    /// and those whose template was not ready (until [`Self::new_refill_round`]).
    pub fn pool_deficit(&self) -> impl Iterator<Item = (ServiceId, u8, u32)> + '_ {
        self.services.iter().enumerate().filter_map(|(i, s)| {
            let n = s.pool_target.saturating_sub(s.pool.len() as u32);
            (n > 0 && !s.refill_blocked && !s.not_ready).then_some((i as ServiceId, s.fork, n))
        })
    }

    /// Starts a refill round: templates that were not ready are tried again.
    pub fn new_refill_round(&mut self) {
        for s in &mut self.services {
            s.not_ready = false;
        }
    }

    /// Whether any pool is below target (and refillable).
    pub fn wants_refill(&self) -> bool {
        self.pool_deficit().next().is_some()
    }

    /// The result of a pool fork for `service`.
    pub fn pooled(&mut self, service: ServiceId, result: Result<u32, ForkFailure>, latency: u64, now: u64) {
        if (service as usize) < self.services.len() {
            self.touched(service);
            if result.is_ok() {
                self.histogram_dirty |= 1 << (service as u32 & 31);
            }
        }
        let Some(svc) = self.services.get_mut(service as usize) else { return };
        match result {
            Ok(index) => {
                let instance = InstanceRef::new(svc.fork, index);
                if self.instances.contains_key(&instance) {
                    svc.refill_blocked = true;
                    return;
                }
                svc.stats.forked += 1;
                svc.stats.live += 1;
                svc.stats.pooled += 1;
                svc.stats.fork_latency.record(latency);
                svc.pool.push_back(instance);
                self.instances.insert(instance, Inst { service, state: State::Pooled, last: now });
            }
            Err(ForkFailure::NotReady) => svc.not_ready = true,
            Err(_) => {
                svc.stats.fork_failures += 1;
                svc.refill_blocked = true;
            }
        }
    }

    /// The virtualiser saw traffic for `instance` (keeps it from idle reclaim).
    pub fn touch(&mut self, instance: InstanceRef, now: u64) -> Result<(), PolicyError> {
        let i = self.instances.get_mut(&instance).ok_or(PolicyError::NoSuchInstance)?;
        match i.state {
            State::Assigned { .. } => {
                i.last = now;
                Ok(())
            }
            _ => Err(PolicyError::NotAssigned),
        }
    }

    /// The virtualiser saw `instance` idle and has ALREADY dropped it (its routes and its
    /// window use): it goes straight to reclaiming. The PD then destroys it ([`Self::destroyed`]);
    /// once the kernel can recycle, it may recycle it instead ([`Self::recycled`]).
    pub fn release(&mut self, instance: InstanceRef) -> Result<InstanceRef, PolicyError> {
        let i = self.instances.get_mut(&instance).ok_or(PolicyError::NoSuchInstance)?;
        let State::Assigned { key } = i.state else { return Err(PolicyError::NotAssigned) };
        i.state = State::Reclaiming;
        let service = i.service;
        let svc = &mut self.services[service as usize];
        svc.keys.remove(&key);
        svc.stats.assigned -= 1;
        svc.stats.releases += 1;
        self.touched(service);
        Ok(instance)
    }

    /// Moves assigned instances idle for longer than their service's `idle` onto the dead list
    /// (the virtualiser must drop them first). Returns how many were added.
    pub fn tick(&mut self, now: u64) -> usize {
        if now < self.next_idle_check {
            return 0;
        }
        let mut next = u64::MAX;
        let mut added = 0;
        for (&r, i) in self.instances.iter_mut() {
            let State::Assigned { key } = i.state else { continue };
            let svc = &mut self.services[i.service as usize];
            if svc.idle_ticks == 0 {
                continue;
            }
            let due = i.last.saturating_add(svc.idle_ticks);
            if due <= now {
                i.state = State::Retiring(RetireReason::Idle);
                svc.keys.remove(&key);
                svc.stats.assigned -= 1;
                svc.stats.retiring += 1;
                svc.stats.idle_reclaims += 1;
                self.dead.push_back(r);
                self.retired += 1;
                self.dirty |= 1 << (i.service as u32 & 31);
                added += 1;
            } else {
                next = next.min(due);
            }
        }
        self.next_idle_check = next;
        added
    }

    /// `instance` faulted (the kernel stopped it).
    pub fn fault(&mut self, instance: InstanceRef) -> FaultAction {
        let Some(i) = self.instances.get_mut(&instance) else { return FaultAction::Unknown };
        self.dirty |= 1 << (i.service as u32 & 31);
        let svc = &mut self.services[i.service as usize];
        match i.state {
            State::Pooled => {
                svc.stats.faulted += 1;
                svc.stats.pooled -= 1;
                svc.pool.retain(|p| *p != instance);
                i.state = State::Reclaiming;
                FaultAction::Destroy(instance)
            }
            State::Assigned { key } => {
                svc.stats.faulted += 1;
                svc.stats.assigned -= 1;
                svc.stats.retiring += 1;
                svc.keys.remove(&key);
                i.state = State::Retiring(RetireReason::Faulted);
                self.dead.push_back(instance);
                self.retired += 1;
                FaultAction::NotifyVirtualiser
            }
            State::Retiring(RetireReason::Idle) => {
                svc.stats.faulted += 1;
                i.state = State::Retiring(RetireReason::Faulted);
                FaultAction::Nothing
            }
            State::Retiring(RetireReason::Faulted) | State::Reclaiming => FaultAction::Nothing,
        }
    }

    /// The dead list: up to `out.len()` instances the virtualiser must drop, oldest first,
    /// written to `out`; returns (written, total on the list). The list changes only through
    /// [`Self::ack_dead`], so asking twice gives the same answer.
    pub fn dead_list(&self, out: &mut [InstanceRef]) -> (usize, usize) {
        let n = out.len().min(self.dead.len());
        for (o, d) in out.iter_mut().zip(self.dead.iter()) {
            *o = *d;
        }
        (n, self.dead.len())
    }

    /// The reason `instance` is on the dead list.
    pub fn retire_reason(&self, instance: InstanceRef) -> Option<RetireReason> {
        match self.instances.get(&instance)?.state {
            State::Retiring(r) => Some(r),
            _ => None,
        }
    }

    /// The virtualiser dropped a dead instance: the PD may destroy it now (then [`Self::destroyed`]).
    pub fn ack_dead(&mut self, instance: InstanceRef) -> Result<InstanceRef, PolicyError> {
        let i = self.instances.get_mut(&instance).ok_or(PolicyError::NoSuchInstance)?;
        let State::Retiring(_) = i.state else { return Err(PolicyError::NotDead) };
        i.state = State::Reclaiming;
        self.services[i.service as usize].stats.retiring -= 1;
        self.dirty |= 1 << (i.service as u32 & 31);
        self.dead.retain(|d| *d != instance);
        Ok(instance)
    }

    /// The PD destroyed a reclaiming instance.
    pub fn destroyed(&mut self, instance: InstanceRef) -> Result<(), PolicyError> {
        let i = self.instances.get(&instance).ok_or(PolicyError::NoSuchInstance)?;
        if i.state != State::Reclaiming {
            return Err(PolicyError::NotReclaiming);
        }
        self.dirty |= 1 << (i.service as u32 & 31);
        let svc = &mut self.services[i.service as usize];
        svc.stats.live -= 1;
        svc.stats.destroyed += 1;
        svc.refill_blocked = false;
        self.instances.remove(&instance);
        Ok(())
    }

    /// The recycle hook: once the kernel can reset an instance to its template's snapshot
    /// without a destroy and a fork (`docs/featherweight.md`, Recycle), the PD recycles a
    /// reclaiming instance and calls this: it goes back to its service's pool.
    pub fn recycled(&mut self, instance: InstanceRef, now: u64) -> Result<(), PolicyError> {
        let i = self.instances.get_mut(&instance).ok_or(PolicyError::NoSuchInstance)?;
        if i.state != State::Reclaiming {
            return Err(PolicyError::NotReclaiming);
        }
        i.state = State::Pooled;
        i.last = now;
        self.dirty |= 1 << (i.service as u32 & 31);
        let svc = &mut self.services[i.service as usize];
        svc.stats.pooled += 1;
        svc.stats.recycled += 1;
        svc.pool.push_back(instance);
        Ok(())
    }

    /// The service an instance belongs to.
    pub fn service_of(&self, instance: InstanceRef) -> Option<ServiceId> {
        self.instances.get(&instance).map(|i| i.service)
    }

    pub fn stats(&self, service: ServiceId) -> Option<&ServiceStats> {
        self.services.get(service as usize).map(|s| &s.stats)
    }

    /// Requests naming no service.
    pub fn bad_requests(&self) -> u64 {
        self.bad_requests
    }

    /// Instances on the dead list.
    pub fn dead_count(&self) -> usize {
        self.dead.len()
    }

    /// Instances ever put on the dead list: if it grew over an event, notify the virtualiser.
    pub fn retired_total(&self) -> u64 {
        self.retired
    }

    pub fn ticks_per_sec(&self) -> u64 {
        self.ticks_per_sec
    }

    /// The statistics record of everything (the PD encodes it into its stats region).
    pub fn record(&self, sequence: u32, now: u64) -> StatsRecord {
        StatsRecord {
            sequence,
            counter_frequency: self.ticks_per_sec,
            now,
            dead_pending: self.dead.len() as u32,
            bad_requests: self.bad_requests,
            services: self.services.iter().map(|s| s.stats.clone()).collect(),
        }
    }

    /// Encodes the statistics record straight into `out` (what [`Self::record`] would encode,
    /// without allocating); `None` if it does not fit.
    pub fn encode_stats(&self, sequence: u32, now: u64, out: &mut [u8]) -> Option<usize> {
        let stats = self.services.iter().map(|s| &s.stats);
        crate::stats::encode_parts(sequence, self.ticks_per_sec, now, self.bad_requests, self.dead.len() as u32, stats, out)
    }

    /// Brings `out` up to date with the statistics, rewriting only the header and the records
    /// of services that changed since the last call (histogram buckets only if a fork was
    /// recorded): the PD's cheap per-change update. `out` must be the same buffer every time,
    /// zeroed before the first call; returns the record's size and the services rewritten (bit
    /// per service), `None` if it does not fit.
    pub fn encode_stats_update(&mut self, sequence: u32, now: u64, out: &mut [u8]) -> Option<(usize, u32)> {
        let n = crate::stats::record_size(self.services.len());
        if out.len() < n {
            return None;
        }
        crate::stats::encode_header(sequence, self.ticks_per_sec, now, self.bad_requests, self.dead.len() as u32, self.services.len(), out);
        for (i, svc) in self.services.iter().enumerate() {
            let bit = 1 << (i as u32 & 31);
            if self.dirty & bit != 0 {
                crate::stats::encode_service(i, &svc.stats, self.histogram_dirty & bit != 0, out);
            }
        }
        let written = self.dirty;
        self.dirty = 0;
        self.histogram_dirty = 0;
        Some((n, written))
    }

    /// Checks every internal invariant (tests; cheap enough for debug builds of the PD).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut counts = alloc::vec![(0u32, 0u32, 0u32, 0u32); self.services.len()];
        for (r, i) in &self.instances {
            let svc = self.services.get(i.service as usize).ok_or("instance of no service")?;
            if r.fork != svc.fork {
                return Err("instance under another service's fork");
            }
            let c = &mut counts[i.service as usize];
            c.0 += 1;
            match i.state {
                State::Pooled => {
                    c.1 += 1;
                    if !svc.pool.contains(r) {
                        return Err("pooled instance missing from its pool");
                    }
                }
                State::Assigned { key } => {
                    c.2 += 1;
                    if svc.keys.get(&key) != Some(r) {
                        return Err("assigned instance not under its key");
                    }
                }
                State::Retiring(_) => {
                    c.3 += 1;
                    if !self.dead.contains(r) {
                        return Err("retiring instance missing from the dead list");
                    }
                }
                State::Reclaiming => {}
            }
        }
        for (s, svc) in self.services.iter().enumerate() {
            let st = &svc.stats;
            if (st.live, st.pooled, st.assigned, st.retiring) != counts[s] {
                return Err("gauges disagree with the instances");
            }
            if st.forked != st.destroyed + st.live as u64 {
                return Err("forked != destroyed + live");
            }
            if svc.keys.len() as u32 != st.assigned || svc.pool.len() as u32 != st.pooled {
                return Err("key or pool size disagrees");
            }
            for (k, r) in &svc.keys {
                match self.instances.get(r) {
                    Some(Inst { state: State::Assigned { key }, .. }) if key == k => {}
                    _ => return Err("a key names an instance not assigned to it"),
                }
            }
        }
        for d in &self.dead {
            if !matches!(self.instances.get(d), Some(Inst { state: State::Retiring(_), .. })) {
                return Err("dead list names an instance that is not retiring");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::config::tests::Rng;
    use alloc::vec;

    const TPS: u64 = 1000;

    fn manager(text: &str) -> Manager {
        Manager::new(&parse(text.as_bytes()).unwrap(), TPS)
    }

    fn req(service: ServiceId, remote_ip: u32, local_port: u16) -> Request {
        Request { service, protocol: Protocol::Tcp, remote_ip, remote_port: 40000, local_port }
    }

    /// Assigns, forking with the next id from `next` if asked.
    fn serve(m: &mut Manager, r: &Request, next: &mut u32, now: u64) -> Served {
        match m.assign(r, now).unwrap() {
            Decision::Serve(s) => s,
            Decision::Fork { .. } => {
                *next += 1;
                m.forked(r, Ok(*next - 1), 100, now).unwrap()
            }
        }
    }

    fn fill_pools(m: &mut Manager, next: &mut u32) {
        let todo: Vec<_> = m.pool_deficit().collect();
        for (s, _, n) in todo {
            for _ in 0..n {
                m.pooled(s, Ok(*next), 50, 0);
                *next += 1;
            }
        }
    }

    #[test]
    fn port_policy_one_instance_per_local_port() {
        let mut m = manager("service m fork 3 ports 100-102 protocols tcp policy port");
        let mut next = 0;
        let a = serve(&mut m, &req(0, 1, 100), &mut next, 0);
        assert_eq!(a, Served { instance: InstanceRef::new(3, 0), fresh: true });
        // Another client, same port: same instance, not fresh.
        let b = serve(&mut m, &req(0, 2, 100), &mut next, 1);
        assert_eq!(b, Served { instance: a.instance, fresh: false });
        let c = serve(&mut m, &req(0, 1, 101), &mut next, 2);
        assert_eq!(c, Served { instance: InstanceRef::new(3, 1), fresh: true });
        let st = m.stats(0).unwrap();
        assert_eq!((st.live, st.assigned, st.forked, st.assignments, st.pool_misses), (2, 2, 2, 3, 2));
        m.check_invariants().unwrap();
    }

    #[test]
    fn client_and_shared_policies() {
        let mut m = manager("service c fork 0 ports 80 protocols tcp policy client\nservice s fork 1 ports 7 protocols tcp,udp policy shared");
        let mut next = 0;
        let a = serve(&mut m, &req(0, 0x0a00_0202, 80), &mut next, 0);
        let b = serve(&mut m, &req(0, 0x0a00_0203, 80), &mut next, 0);
        let a2 = serve(&mut m, &Request { remote_port: 1, ..req(0, 0x0a00_0202, 80) }, &mut next, 0);
        assert_ne!(a.instance, b.instance);
        assert_eq!(a2.instance, a.instance);
        let s1 = serve(&mut m, &req(1, 1, 7), &mut next, 0);
        let s2 = serve(&mut m, &Request { protocol: Protocol::Udp, ..req(1, 2, 7) }, &mut next, 0);
        assert_eq!((s1.instance.fork, s2.instance, s2.fresh), (1, s1.instance, false));
        assert_eq!(m.stats(1).unwrap().live, 1);
        m.check_invariants().unwrap();
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut m = manager("service c fork 0 ports 80-81 protocols tcp policy client");
        assert_eq!(m.assign(&req(1, 0, 80), 0), Err(Refusal::NoSuchService));
        assert_eq!(m.assign(&req(0, 0, 82), 0), Err(Refusal::NotServed));
        assert_eq!(m.assign(&Request { protocol: Protocol::Udp, ..req(0, 0, 80) }, 0), Err(Refusal::NotServed));
        assert_eq!(m.bad_requests(), 1);
        assert_eq!(m.stats(0).unwrap().refused, 2);
    }

    #[test]
    fn pool_hits_and_misses() {
        let mut m = manager("service m fork 0 ports 100-199 protocols udp policy port pool 2");
        let mut next = 0;
        assert_eq!(m.pool_deficit().collect::<Vec<_>>(), vec![(0, 0, 2)]);
        fill_pools(&mut m, &mut next);
        assert!(!m.wants_refill());
        assert_eq!(m.stats(0).unwrap().pooled, 2);
        let r = |p| Request { protocol: Protocol::Udp, ..req(0, 9, p) };
        // Two hits (pool order), then a miss that forks.
        assert_eq!(m.assign(&r(100), 0), Ok(Decision::Serve(Served { instance: InstanceRef::new(0, 0), fresh: true })));
        assert_eq!(m.assign(&r(101), 0), Ok(Decision::Serve(Served { instance: InstanceRef::new(0, 1), fresh: true })));
        assert_eq!(m.assign(&r(102), 0), Ok(Decision::Fork { service: 0, fork: 0 }));
        assert_eq!(m.forked(&r(102), Ok(7), 1234, 0), Ok(Served { instance: InstanceRef::new(0, 7), fresh: true }));
        let st = m.stats(0).unwrap();
        assert_eq!((st.pool_hits, st.pool_misses, st.pooled, st.assigned, st.live), (2, 1, 0, 3, 3));
        assert_eq!(st.fork_latency.count, 3);
        assert_eq!(st.fork_latency.max, 1234);
        assert_eq!(m.pool_deficit().collect::<Vec<_>>(), vec![(0, 0, 2)]);
        m.check_invariants().unwrap();
    }

    #[test]
    fn quota_refusal_changes_nothing_else() {
        let mut m = manager("service m fork 0 ports 100-199 protocols tcp policy port pool 1");
        let mut next = 0;
        fill_pools(&mut m, &mut next);
        serve(&mut m, &req(0, 1, 100), &mut next, 0);
        assert_eq!(m.assign(&req(0, 1, 101), 0), Ok(Decision::Fork { service: 0, fork: 0 }));
        let before = m.stats(0).unwrap().clone();
        assert_eq!(m.forked(&req(0, 1, 101), Err(ForkFailure::Quota), 10, 0), Err(Refusal::QuotaExceeded));
        assert_eq!(m.forked(&req(0, 1, 101), Err(ForkFailure::Other), 10, 0), Err(Refusal::ForkFailed));
        let after = m.stats(0).unwrap();
        assert_eq!((after.refused, after.fork_failures), (before.refused + 2, before.fork_failures + 2));
        let after = after.clone();
        assert_eq!((after.live, after.assigned, after.forked, after.assignments), (before.live, before.assigned, before.forked, before.assignments));
        // A template not ready yet: the request is refused, and pool refills skip it until
        // the next round.
        assert_eq!(m.forked(&req(0, 1, 101), Err(ForkFailure::NotReady), 10, 0), Err(Refusal::NotReady));
        assert_eq!(m.stats(0).unwrap().fork_failures, before.fork_failures + 2);
        m.pooled(0, Err(ForkFailure::NotReady), 0, 0);
        assert!(!m.wants_refill());
        m.new_refill_round();
        assert!(m.wants_refill());
        // A pool fork refused for quota stops refilling until something is destroyed.
        m.pooled(0, Err(ForkFailure::Quota), 0, 0);
        assert!(!m.wants_refill());
        let i = m.assign(&req(0, 1, 100), 0).unwrap();
        let Decision::Serve(s) = i else { panic!() };
        m.release(s.instance).unwrap();
        m.destroyed(s.instance).unwrap();
        assert!(m.wants_refill());
        m.check_invariants().unwrap();
    }

    #[test]
    fn idle_reclaim_goes_through_the_dead_list() {
        let mut m = manager("service m fork 0 ports 100-199 protocols tcp policy port idle 60\nservice n fork 1 ports 200 protocols tcp policy shared");
        let mut next = 0;
        let a = serve(&mut m, &req(0, 1, 100), &mut next, 0);
        let b = serve(&mut m, &req(0, 1, 101), &mut next, 30 * TPS);
        let forever = serve(&mut m, &req(1, 1, 200), &mut next, 0);
        assert_eq!(m.tick(59 * TPS), 0);
        m.touch(a.instance, 50 * TPS).unwrap(); // activity moves a's deadline to 110 s
        assert_eq!(m.tick(100 * TPS), 1); // b (last 30 s) is due, a is not
        assert_eq!(m.retire_reason(b.instance), Some(RetireReason::Idle));
        assert_eq!(m.touch(b.instance, 100 * TPS), Err(PolicyError::NotAssigned));
        // b's key is free at once: a new request forks a new instance.
        let b2 = serve(&mut m, &req(0, 1, 101), &mut next, 100 * TPS);
        assert!(b2.fresh && b2.instance != b.instance);
        assert_eq!(m.tick(110 * TPS), 1);
        let mut out = [InstanceRef::new(0, 0); 8];
        assert_eq!(m.dead_list(&mut out), (2, 2));
        assert_eq!(&out[..2], &[b.instance, a.instance]);
        assert_eq!(m.destroyed(b.instance), Err(PolicyError::NotReclaiming));
        assert_eq!(m.ack_dead(b.instance), Ok(b.instance));
        assert_eq!(m.ack_dead(b.instance), Err(PolicyError::NotDead));
        m.destroyed(b.instance).unwrap();
        assert_eq!(m.dead_list(&mut out), (1, 1));
        assert_eq!(m.ack_dead(a.instance), Ok(a.instance));
        m.destroyed(a.instance).unwrap();
        // idle 0: never reclaimed.
        assert_eq!(m.tick(1_000_000 * TPS), 1); // only b2
        assert!(m.touch(forever.instance, 0).is_ok());
        let st = m.stats(0).unwrap();
        assert_eq!((st.idle_reclaims, st.destroyed, st.live, st.retiring), (3, 2, 1, 1));
        m.check_invariants().unwrap();
    }

    #[test]
    fn release_by_the_virtualiser() {
        let mut m = manager("service m fork 0 ports 100 protocols tcp policy shared");
        let mut next = 0;
        let a = serve(&mut m, &req(0, 1, 100), &mut next, 0);
        assert_eq!(m.release(a.instance), Ok(a.instance));
        assert_eq!(m.release(a.instance), Err(PolicyError::NotAssigned));
        assert_eq!(m.release(InstanceRef::new(0, 99)), Err(PolicyError::NoSuchInstance));
        m.destroyed(a.instance).unwrap();
        assert_eq!(m.destroyed(a.instance), Err(PolicyError::NoSuchInstance));
        let st = m.stats(0).unwrap();
        assert_eq!((st.releases, st.destroyed, st.live), (1, 1, 0));
        m.check_invariants().unwrap();
    }

    #[test]
    fn faults_two_step_protocol() {
        let mut m = manager("service m fork 2 ports 100-199 protocols tcp policy port pool 1 idle 5");
        let mut next = 0;
        fill_pools(&mut m, &mut next);
        let pooled = InstanceRef::new(2, 0);
        // A pooled instance was never announced: destroy at once.
        assert_eq!(m.fault(pooled), FaultAction::Destroy(pooled));
        assert_eq!(m.fault(pooled), FaultAction::Nothing);
        m.destroyed(pooled).unwrap();
        // An assigned one: dead list, key freed, destroyed only after ACK_DEAD.
        let a = serve(&mut m, &req(0, 1, 100), &mut next, 0);
        assert_eq!(m.fault(a.instance), FaultAction::NotifyVirtualiser);
        assert_eq!(m.fault(a.instance), FaultAction::Nothing);
        assert_eq!(m.retire_reason(a.instance), Some(RetireReason::Faulted));
        let again = serve(&mut m, &req(0, 1, 100), &mut next, 1);
        assert_ne!(again.instance, a.instance);
        assert_eq!(m.destroyed(a.instance), Err(PolicyError::NotReclaiming));
        assert_eq!(m.release(a.instance), Err(PolicyError::NotAssigned));
        let mut out = [InstanceRef::new(0, 0); 1];
        assert_eq!(m.dead_list(&mut out), (1, 1));
        assert_eq!(m.ack_dead(a.instance), Ok(a.instance));
        m.destroyed(a.instance).unwrap();
        // An idle-retiring instance that faults is counted but stays on the list once.
        assert_eq!(m.tick(100 * TPS), 1);
        assert_eq!(m.fault(again.instance), FaultAction::Nothing);
        assert_eq!(m.retire_reason(again.instance), Some(RetireReason::Faulted));
        assert_eq!(m.dead_count(), 1);
        assert_eq!(m.fault(InstanceRef::new(2, 1000)), FaultAction::Unknown);
        let st = m.stats(0).unwrap();
        assert_eq!((st.faulted, st.destroyed, st.retiring), (3, 2, 1));
        m.check_invariants().unwrap();
    }

    #[test]
    fn recycle_hook_refills_the_pool() {
        let mut m = manager("service m fork 0 ports 100-101 protocols tcp policy port pool 1");
        let mut next = 0;
        let a = serve(&mut m, &req(0, 1, 100), &mut next, 0);
        m.release(a.instance).unwrap();
        m.recycled(a.instance, 5).unwrap();
        assert!(!m.wants_refill());
        assert_eq!(m.assign(&req(0, 1, 101), 6), Ok(Decision::Serve(Served { instance: a.instance, fresh: true })));
        assert_eq!(m.stats(0).unwrap().recycled, 1);
        m.check_invariants().unwrap();
    }

    #[test]
    fn instance_refs_pack() {
        let r = InstanceRef::new(61, 65535);
        assert_eq!(InstanceRef::unpack(r.pack()), Some(r));
        assert_eq!(InstanceRef::unpack(62 << 32), None);
        assert_eq!(InstanceRef::unpack(1 << 50), None);
    }

    /// Random requests, touches, releases, faults, ticks, acks and refills against a fake kernel
    /// with a quota; invariants hold after every step.
    #[test]
    fn randomized_churn() {
        for seed in 0..20 {
            let mut rng = Rng::new(seed);
            let mut m = manager(
                "service a fork 0 ports 1000-1009 protocols tcp,udp policy port pool 3 idle 2\n\
                 service b fork 1 ports 2000 protocols tcp policy client pool 2 idle 1\n\
                 service c fork 2 ports 3000 protocols udp policy shared",
            );
            const QUOTA: usize = 12;
            // The fake kernel: live ids per fork.
            let mut live: [Vec<u32>; 3] = [vec![], vec![], vec![]];
            let kfork = |live: &mut [Vec<u32>; 3], f: u8| -> Result<u32, ForkFailure> {
                let l = &mut live[f as usize];
                if l.len() >= QUOTA {
                    return Err(ForkFailure::Quota);
                }
                let id = (0..).find(|i| !l.contains(i)).unwrap();
                l.push(id);
                Ok(id)
            };
            let kdestroy = |live: &mut [Vec<u32>; 3], r: InstanceRef| {
                let l = &mut live[r.fork as usize];
                let p = l.iter().position(|i| *i == r.index).expect("destroying a live instance");
                l.remove(p);
            };
            let mut incremental = vec![0u8; crate::stats::record_size(3)];
            let mut full = vec![0u8; crate::stats::record_size(3)];
            // The virtualiser's view: instances it was given.
            let mut known: Vec<InstanceRef> = vec![];
            let mut now = 0u64;
            for _ in 0..3000 {
                now += rng.below(300);
                match rng.below(10) {
                    0..=3 => {
                        let svc = rng.below(4) as u8; // 3 = no such service
                        let r = Request {
                            service: svc,
                            protocol: if rng.below(2) == 0 { Protocol::Tcp } else { Protocol::Udp },
                            remote_ip: rng.below(5) as u32,
                            remote_port: 1,
                            local_port: [1000, 1005, 1009, 2000, 3000, 1010][rng.below(6) as usize],
                        };
                        let served = match m.assign(&r, now) {
                            Ok(Decision::Serve(s)) => Some(s),
                            Ok(Decision::Fork { fork, .. }) => m.forked(&r, kfork(&mut live, fork), rng.below(1000), now).ok(),
                            Err(_) => None,
                        };
                        if let Some(s) = served {
                            assert_eq!(s.fresh, !known.contains(&s.instance), "fresh flag");
                            if s.fresh {
                                known.push(s.instance);
                            }
                        }
                    }
                    4 => {
                        if let Some(&k) = known.get(rng.below(known.len() as u64 + 1) as usize) {
                            let _ = m.touch(k, now);
                        }
                    }
                    5 => {
                        if let Some(&k) = known.get(rng.below(known.len() as u64 + 1) as usize) {
                            if let Ok(r) = m.release(k) {
                                known.retain(|x| *x != r);
                                kdestroy(&mut live, r);
                                m.destroyed(r).unwrap();
                            }
                        }
                    }
                    6 => {
                        // A fault of any live instance.
                        let f = rng.below(3) as usize;
                        if let Some(&id) = live[f].get(rng.below(live[f].len() as u64 + 1) as usize) {
                            let r = InstanceRef::new(f as u8, id);
                            if let FaultAction::Destroy(d) = m.fault(r) {
                                assert!(!known.contains(&d), "destroying an instance the virtualiser knows");
                                kdestroy(&mut live, d);
                                m.destroyed(d).unwrap();
                            }
                        }
                    }
                    7 => {
                        m.tick(now);
                    }
                    8 => {
                        // The virtualiser drains the dead list.
                        let mut out = [InstanceRef::new(0, 0); 4];
                        let (n, _) = m.dead_list(&mut out);
                        for &d in &out[..n] {
                            known.retain(|x| *x != d);
                            let r = m.ack_dead(d).unwrap();
                            kdestroy(&mut live, r);
                            m.destroyed(r).unwrap();
                        }
                    }
                    _ => {
                        let todo: Vec<_> = m.pool_deficit().collect();
                        for (s, f, n) in todo {
                            for _ in 0..n {
                                let r = kfork(&mut live, f);
                                m.pooled(s, r, 10, now);
                            }
                        }
                    }
                }
                m.check_invariants().unwrap();
                m.encode_stats_update(1, now, &mut incremental).unwrap();
                m.encode_stats(1, now, &mut full).unwrap();
                assert!(incremental == full, "the incremental statistics record drifted");
                for (f, l) in live.iter().enumerate() {
                    assert_eq!(m.stats(f as u8).unwrap().live as usize, l.len(), "live count vs kernel");
                }
                // No instance serves two keys (keys map to distinct instances).
                let mut all: Vec<InstanceRef> = m.services.iter().flat_map(|s| s.keys.values().copied()).collect();
                let n = all.len();
                all.sort();
                all.dedup();
                assert_eq!(all.len(), n, "an instance under two keys");
            }
            let total: u64 = (0..3).map(|s| m.stats(s).unwrap().assignments).sum();
            assert!(total > 100, "seed {seed}: only {total} assignments");
        }
    }
}
