//! The manager's protected-call API, used by the network virtualiser. A request is a label and
//! message registers; the reply label is 0 on success or an [`ApiError`] code. An instance is
//! one register, `fork << 32 | index` ([`InstanceRef::pack`]).
//!
//! | label | request | request MRs | reply MRs |
//! |---|---|---|---|
//! | 1 | ASSIGN: an instance for a new flow | service, protocol (6 TCP, 17 UDP), remote IPv4 (big-endian u32), remote port, local port | instance, fresh (1: never given to the virtualiser since its fork), refill (1: pools are low, notify the manager when idle) |
//! | 2 | RELEASE: the virtualiser saw the instance idle and dropped it; the manager destroys it | instance | - |
//! | 3 | TOUCH: activity on instances (defers idle reclaim) | 1..=16 instances | how many were not assigned (ignored) |
//! | 4 | DEAD_LIST: instances the virtualiser must drop (faulted, or idle past `idle`) | - | n (<= 16), total on the list, then n instances |
//! | 5 | ACK_DEAD: the virtualiser dropped a dead instance; the manager destroys it | instance | - |
//! | 6 | STATS: one service's figures | service | live, pooled, assigned, retiring, forked, destroyed, faulted, assignments, refused, pool hits, pool misses, fork median, fork p99 (counter ticks) |
//!
//! Reply labels: 0 success, 1 unknown label, 2 bad arguments (too few registers, a value out of
//! range), 3 no such service, 4 not served (protocol or local port not the service's), 5 quota
//! exceeded (the template's `max_instances` or memory: no instance for this flow), 6 fork failed
//! (another kernel refusal), 7 no such instance, 8 not assigned, 9 not dead (ACK_DEAD of an
//! instance not on the dead list), 10 not ready (the template has not finished its `init`:
//! retry later).
//!
//! The dead-instance protocol: when instances die (fault) or go idle the manager notifies the
//! virtualiser's channel; the virtualiser calls DEAD_LIST, stops using each instance named
//! (routes, instance window), and ACK_DEADs each; the manager destroys only then. DEAD_LIST
//! changes only through ACK_DEAD, so asking again is harmless; the virtualiser repeats until
//! the total is 0.
//!
//! Refill: forks for the pools run outside the virtualiser's calls when possible. An ASSIGN
//! reply with refill = 1 asks the virtualiser to notify the manager once it is done with its
//! batch; the manager refills on that notification.

use crate::config::{Protocol, ServiceId};
use crate::policy::{self, Decision, ForkFailure, InstanceRef, Manager, PolicyError, Refusal};

pub const LABEL_ASSIGN: u64 = 1;
pub const LABEL_RELEASE: u64 = 2;
pub const LABEL_TOUCH: u64 = 3;
pub const LABEL_DEAD_LIST: u64 = 4;
pub const LABEL_ACK_DEAD: u64 = 5;
pub const LABEL_STATS: u64 = 6;

/// Instances one TOUCH carries.
pub const TOUCH_MAX: usize = 16;
/// Instances one DEAD_LIST reply carries.
pub const DEAD_LIST_MAX: usize = 16;
/// Message registers of the longest message.
pub const MAX_MRS: usize = 2 + DEAD_LIST_MAX;
/// Registers of a STATS reply.
pub const STATS_MRS: usize = 13;

/// Reply labels of refused requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ApiError {
    UnknownLabel = 1,
    /// Too few message registers, or a value out of range.
    BadArguments = 2,
    NoSuchService = 3,
    /// The service does not serve that protocol or local port.
    NotServed = 4,
    /// The template's quota (max_instances or memory) is used up: no instance for this flow.
    QuotaExceeded = 5,
    /// The kernel refused the fork for another reason.
    ForkFailed = 6,
    NoSuchInstance = 7,
    NotAssigned = 8,
    NotDead = 9,
    /// The service's template has not finished its `init` yet: retry the request later.
    NotReady = 10,
}

impl ApiError {
    pub fn from_label(label: u64) -> Option<ApiError> {
        Some(match label {
            1 => ApiError::UnknownLabel,
            2 => ApiError::BadArguments,
            3 => ApiError::NoSuchService,
            4 => ApiError::NotServed,
            5 => ApiError::QuotaExceeded,
            6 => ApiError::ForkFailed,
            7 => ApiError::NoSuchInstance,
            8 => ApiError::NotAssigned,
            9 => ApiError::NotDead,
            10 => ApiError::NotReady,
            _ => return None,
        })
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoSuchService => ApiError::NoSuchService,
            Refusal::NotServed => ApiError::NotServed,
            Refusal::QuotaExceeded => ApiError::QuotaExceeded,
            Refusal::ForkFailed => ApiError::ForkFailed,
            Refusal::NotReady => ApiError::NotReady,
        }
    }
}

impl From<PolicyError> for ApiError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::NoSuchInstance => ApiError::NoSuchInstance,
            PolicyError::NotAssigned | PolicyError::NotReclaiming => ApiError::NotAssigned,
            PolicyError::NotDead => ApiError::NotDead,
        }
    }
}

/// A label and message registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub label: u64,
    pub mrs: [u64; MAX_MRS],
    pub count: usize,
}

impl Message {
    fn new(label: u64, regs: &[u64]) -> Self {
        let mut mrs = [0; MAX_MRS];
        mrs[..regs.len()].copy_from_slice(regs);
        Message { label, mrs, count: regs.len() }
    }

    /// The registers in use.
    pub fn regs(&self) -> &[u64] {
        &self.mrs[..self.count]
    }
}

/// A decoded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Assign(policy::Request),
    Release(InstanceRef),
    Touch { count: usize, instances: [InstanceRef; TOUCH_MAX] },
    DeadList,
    AckDead(InstanceRef),
    Stats(ServiceId),
}

/// One service's figures (STATS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsReply {
    pub live: u64,
    pub pooled: u64,
    pub assigned: u64,
    pub retiring: u64,
    pub forked: u64,
    pub destroyed: u64,
    pub faulted: u64,
    pub assignments: u64,
    pub refused: u64,
    pub pool_hits: u64,
    pub pool_misses: u64,
    pub fork_median: u64,
    pub fork_p99: u64,
}

impl StatsReply {
    fn regs(&self) -> [u64; STATS_MRS] {
        [
            self.live,
            self.pooled,
            self.assigned,
            self.retiring,
            self.forked,
            self.destroyed,
            self.faulted,
            self.assignments,
            self.refused,
            self.pool_hits,
            self.pool_misses,
            self.fork_median,
            self.fork_p99,
        ]
    }
}

/// A decoded successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Assigned { instance: InstanceRef, fresh: bool, refill: bool },
    Done,
    Touched { not_assigned: u32 },
    DeadList { count: usize, total: usize, instances: [InstanceRef; DEAD_LIST_MAX] },
    Stats(StatsReply),
}

const NO_INSTANCE: InstanceRef = InstanceRef::new(0, 0);

fn arg<T: TryFrom<u64>>(mrs: &[u64], i: usize) -> Result<T, ApiError> {
    mrs.get(i).copied().and_then(|v| T::try_from(v).ok()).ok_or(ApiError::BadArguments)
}

fn instance(mrs: &[u64], i: usize) -> Result<InstanceRef, ApiError> {
    mrs.get(i).copied().and_then(InstanceRef::unpack).ok_or(ApiError::BadArguments)
}

// ----- the virtualiser's side -----

/// The message of a request.
pub fn encode_request(r: &Request) -> Message {
    match r {
        Request::Assign(q) => Message::new(
            LABEL_ASSIGN,
            &[q.service as u64, q.protocol.ip_number() as u64, q.remote_ip as u64, q.remote_port as u64, q.local_port as u64],
        ),
        Request::Release(i) => Message::new(LABEL_RELEASE, &[i.pack()]),
        Request::Touch { count, instances } => {
            let mut regs = [0u64; TOUCH_MAX];
            let n = (*count).min(TOUCH_MAX);
            for (r, i) in regs.iter_mut().zip(&instances[..n]) {
                *r = i.pack();
            }
            Message::new(LABEL_TOUCH, &regs[..n])
        }
        Request::DeadList => Message::new(LABEL_DEAD_LIST, &[]),
        Request::AckDead(i) => Message::new(LABEL_ACK_DEAD, &[i.pack()]),
        Request::Stats(s) => Message::new(LABEL_STATS, &[*s as u64]),
    }
}

/// The reply to a request with label `request_label`, from the reply's label and registers.
pub fn decode_reply(request_label: u64, label: u64, mrs: &[u64]) -> Result<Reply, ApiError> {
    if label != 0 {
        return Err(ApiError::from_label(label).unwrap_or(ApiError::BadArguments));
    }
    match request_label {
        LABEL_ASSIGN => Ok(Reply::Assigned { instance: instance(mrs, 0)?, fresh: arg::<u64>(mrs, 1)? != 0, refill: arg::<u64>(mrs, 2)? != 0 }),
        LABEL_RELEASE | LABEL_ACK_DEAD => Ok(Reply::Done),
        LABEL_TOUCH => Ok(Reply::Touched { not_assigned: arg(mrs, 0)? }),
        LABEL_DEAD_LIST => {
            let count: usize = arg(mrs, 0)?;
            if count > DEAD_LIST_MAX {
                return Err(ApiError::BadArguments);
            }
            let mut instances = [NO_INSTANCE; DEAD_LIST_MAX];
            for (k, slot) in instances[..count].iter_mut().enumerate() {
                *slot = instance(mrs, 2 + k)?;
            }
            Ok(Reply::DeadList { count, total: arg(mrs, 1)?, instances })
        }
        LABEL_STATS => {
            let mut r = [0u64; STATS_MRS];
            for (k, v) in r.iter_mut().enumerate() {
                *v = arg(mrs, k)?;
            }
            let [live, pooled, assigned, retiring, forked, destroyed, faulted, assignments, refused, pool_hits, pool_misses, fork_median, fork_p99] = r;
            Ok(Reply::Stats(StatsReply {
                live,
                pooled,
                assigned,
                retiring,
                forked,
                destroyed,
                faulted,
                assignments,
                refused,
                pool_hits,
                pool_misses,
                fork_median,
                fork_p99,
            }))
        }
        _ => Err(ApiError::UnknownLabel),
    }
}

// ----- the manager's side -----

/// Decodes a request from its label and message registers (only the `count` the message
/// info names).
pub fn decode_request(label: u64, mrs: &[u64]) -> Result<Request, ApiError> {
    match label {
        LABEL_ASSIGN => Ok(Request::Assign(policy::Request {
            service: arg(mrs, 0)?,
            protocol: mrs.get(1).copied().and_then(Protocol::from_ip).ok_or(ApiError::BadArguments)?,
            remote_ip: arg(mrs, 2)?,
            remote_port: arg(mrs, 3)?,
            local_port: arg(mrs, 4)?,
        })),
        LABEL_RELEASE => Ok(Request::Release(instance(mrs, 0)?)),
        LABEL_TOUCH => {
            if mrs.is_empty() || mrs.len() > TOUCH_MAX {
                return Err(ApiError::BadArguments);
            }
            let mut instances = [NO_INSTANCE; TOUCH_MAX];
            for (k, slot) in instances[..mrs.len()].iter_mut().enumerate() {
                *slot = instance(mrs, k)?;
            }
            Ok(Request::Touch { count: mrs.len(), instances })
        }
        LABEL_DEAD_LIST => Ok(Request::DeadList),
        LABEL_ACK_DEAD => Ok(Request::AckDead(instance(mrs, 0)?)),
        LABEL_STATS => Ok(Request::Stats(arg(mrs, 0)?)),
        _ => Err(ApiError::UnknownLabel),
    }
}

/// The reply message for an answer.
pub fn encode_reply(r: &Result<Reply, ApiError>) -> Message {
    match r {
        Err(e) => Message::new(*e as u64, &[]),
        Ok(Reply::Assigned { instance, fresh, refill }) => Message::new(0, &[instance.pack(), *fresh as u64, *refill as u64]),
        Ok(Reply::Done) => Message::new(0, &[]),
        Ok(Reply::Touched { not_assigned }) => Message::new(0, &[*not_assigned as u64]),
        Ok(Reply::DeadList { count, total, instances }) => {
            let mut regs = [0u64; MAX_MRS];
            let n = (*count).min(DEAD_LIST_MAX);
            regs[0] = n as u64;
            regs[1] = *total as u64;
            for (r, i) in regs[2..].iter_mut().zip(&instances[..n]) {
                *r = i.pack();
            }
            Message::new(0, &regs[..2 + n])
        }
        Ok(Reply::Stats(s)) => Message::new(0, &s.regs()),
    }
}

/// What the manager PD does for the policy: read the clock, fork, destroy.
pub trait Kernel {
    /// The counter (ticks at the manager's `ticks_per_sec`).
    fn now(&mut self) -> u64;
    /// Forks an instance of fork grant `fork`; its instance id.
    fn fork(&mut self, fork: u8) -> Result<u32, ForkFailure>;
    /// Destroys an instance (the policy has made sure nobody uses it).
    fn destroy(&mut self, instance: InstanceRef);
}

fn destroy<K: Kernel>(m: &mut Manager, k: &mut K, instance: InstanceRef) {
    k.destroy(instance);
    // Cannot fail: the policy just moved it to reclaiming.
    let _ = m.destroyed(instance);
}

/// Serves one request: the whole protected-call handler, less the message registers.
pub fn serve<K: Kernel>(m: &mut Manager, k: &mut K, request: &Request) -> Result<Reply, ApiError> {
    let now = k.now();
    // Idle reclaim first, so the answer reflects it.
    m.tick(now);
    match request {
        Request::Assign(q) => {
            let served = match m.assign(q, now)? {
                Decision::Serve(s) => s,
                Decision::Fork { fork, .. } => {
                    let t0 = k.now();
                    let result = k.fork(fork);
                    let t1 = k.now();
                    m.forked(q, result, t1.saturating_sub(t0), t1)?
                }
            };
            Ok(Reply::Assigned { instance: served.instance, fresh: served.fresh, refill: m.wants_refill() })
        }
        Request::Release(i) => {
            let i = m.release(*i)?;
            destroy(m, k, i);
            Ok(Reply::Done)
        }
        Request::Touch { count, instances } => {
            let not_assigned = instances[..(*count).min(TOUCH_MAX)].iter().filter(|i| m.touch(**i, now).is_err()).count();
            Ok(Reply::Touched { not_assigned: not_assigned as u32 })
        }
        Request::DeadList => {
            let mut instances = [NO_INSTANCE; DEAD_LIST_MAX];
            let (count, total) = m.dead_list(&mut instances);
            Ok(Reply::DeadList { count, total, instances })
        }
        Request::AckDead(i) => {
            let i = m.ack_dead(*i)?;
            destroy(m, k, i);
            Ok(Reply::Done)
        }
        Request::Stats(s) => {
            let st = m.stats(*s).ok_or(ApiError::NoSuchService)?;
            Ok(Reply::Stats(StatsReply {
                live: st.live as u64,
                pooled: st.pooled as u64,
                assigned: st.assigned as u64,
                retiring: st.retiring as u64,
                forked: st.forked,
                destroyed: st.destroyed,
                faulted: st.faulted,
                assignments: st.assignments,
                refused: st.refused,
                pool_hits: st.pool_hits,
                pool_misses: st.pool_misses,
                fork_median: st.fork_latency.quantile(500),
                fork_p99: st.fork_latency.quantile(990),
            }))
        }
    }
}

/// Forks until every pool is at target (or its forks are refused, or its template is not
/// ready yet). Returns the forks made.
pub fn refill<K: Kernel>(m: &mut Manager, k: &mut K) -> usize {
    let mut made = 0;
    m.new_refill_round();
    loop {
        let next = m.pool_deficit().next();
        let Some((service, fork, _)) = next else { break };
        let t0 = k.now();
        let result = k.fork(fork);
        let t1 = k.now();
        if result.is_ok() {
            made += 1;
        }
        m.pooled(service, result, t1.saturating_sub(t0), t1);
    }
    made
}

/// An instance faulted: returns true if the virtualiser must be notified (dead list).
pub fn fault<K: Kernel>(m: &mut Manager, k: &mut K, instance: InstanceRef) -> bool {
    match m.fault(instance) {
        policy::FaultAction::Destroy(i) => {
            destroy(m, k, i);
            false
        }
        // Not ours to know: the virtualiser never heard of it, so destroying it is safe.
        policy::FaultAction::Unknown => {
            k.destroy(instance);
            false
        }
        policy::FaultAction::NotifyVirtualiser => true,
        policy::FaultAction::Nothing => false,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::config::parse;
    use std::vec::Vec;

    /// A fake kernel: a quota per fork, a clock that advances 10 ticks per read.
    struct Fake {
        clock: u64,
        live: Vec<InstanceRef>,
        quota: usize,
        destroyed: Vec<InstanceRef>,
    }

    impl Kernel for Fake {
        fn now(&mut self) -> u64 {
            self.clock += 10;
            self.clock
        }
        fn fork(&mut self, fork: u8) -> Result<u32, ForkFailure> {
            if self.live.iter().filter(|i| i.fork == fork).count() >= self.quota {
                return Err(ForkFailure::Quota);
            }
            let id = (0..).find(|n| !self.live.contains(&InstanceRef::new(fork, *n))).unwrap();
            self.live.push(InstanceRef::new(fork, id));
            Ok(id)
        }
        fn destroy(&mut self, i: InstanceRef) {
            assert!(self.live.contains(&i), "destroy of a dead instance {i:?}");
            self.live.retain(|x| *x != i);
            self.destroyed.push(i);
        }
    }

    /// One call through both sides' encoders and decoders, as the virtualiser would make it.
    fn call(m: &mut Manager, k: &mut Fake, r: Request) -> Result<Reply, ApiError> {
        let msg = encode_request(&r);
        let reply = encode_reply(&decode_request(msg.label, msg.regs()).and_then(|req| {
            assert_eq!(req, r);
            serve(m, k, &req)
        }));
        decode_reply(msg.label, reply.label, reply.regs())
    }

    fn assign(service: ServiceId, ip: u32, port: u16) -> Request {
        Request::Assign(policy::Request { service, protocol: Protocol::Udp, remote_ip: ip, remote_port: 5000, local_port: port })
    }

    #[test]
    fn full_protocol_through_messages() {
        let services = parse(b"service m fork 4 ports 100-101 protocols udp policy port pool 1\nservice s fork 2 ports 7 protocols tcp policy shared").unwrap();
        let mut m = Manager::new(&services, 1);
        let mut k = Fake { clock: 0, live: Vec::new(), quota: 2, destroyed: Vec::new() };
        assert_eq!(refill(&mut m, &mut k), 1);
        let a = InstanceRef::new(4, 0);
        // Pool hit: fresh, and the pool is now low.
        assert_eq!(call(&mut m, &mut k, assign(0, 1, 100)), Ok(Reply::Assigned { instance: a, fresh: true, refill: true }));
        assert_eq!(call(&mut m, &mut k, assign(0, 2, 100)), Ok(Reply::Assigned { instance: a, fresh: false, refill: true }));
        // Miss: forks instance 1; then the quota (2) is used up.
        let b = InstanceRef::new(4, 1);
        assert_eq!(call(&mut m, &mut k, assign(0, 2, 101)), Ok(Reply::Assigned { instance: b, fresh: true, refill: true }));
        assert_eq!(refill(&mut m, &mut k), 0);
        assert!(!m.wants_refill());
        // Errors.
        assert_eq!(call(&mut m, &mut k, assign(0, 1, 102)), Err(ApiError::NotServed));
        assert_eq!(call(&mut m, &mut k, assign(9, 1, 100)), Err(ApiError::NoSuchService));
        assert_eq!(call(&mut m, &mut k, Request::Release(InstanceRef::new(4, 9))), Err(ApiError::NoSuchInstance));
        assert_eq!(call(&mut m, &mut k, Request::AckDead(a)), Err(ApiError::NotDead));
        // Touch: one assigned, one unknown.
        let mut t = [NO_INSTANCE; TOUCH_MAX];
        t[0] = a;
        t[1] = InstanceRef::new(4, 7);
        assert_eq!(call(&mut m, &mut k, Request::Touch { count: 2, instances: t }), Ok(Reply::Touched { not_assigned: 1 }));
        // A fault of b: dead list, not destroyed until ACK_DEAD.
        assert!(fault(&mut m, &mut k, b));
        let Ok(Reply::DeadList { count: 1, total: 1, instances }) = call(&mut m, &mut k, Request::DeadList) else { panic!() };
        assert_eq!(instances[0], b);
        assert!(k.live.contains(&b));
        assert_eq!(call(&mut m, &mut k, Request::AckDead(b)), Ok(Reply::Done));
        assert!(!k.live.contains(&b));
        assert_eq!(call(&mut m, &mut k, Request::DeadList), Ok(Reply::DeadList { count: 0, total: 0, instances: [NO_INSTANCE; DEAD_LIST_MAX] }));
        // Quota: the shared service can fork once more (fork 2 is its own grant), and the
        // memcached key 101 gets a new instance since b's is gone.
        assert!(matches!(call(&mut m, &mut k, assign(0, 3, 101)), Ok(Reply::Assigned { fresh: true, .. })));
        let st = call(&mut m, &mut k, Request::Stats(0));
        let Ok(Reply::Stats(st)) = st else { panic!("{st:?}") };
        assert_eq!((st.live, st.assigned, st.forked, st.destroyed, st.faulted, st.pool_hits, st.pool_misses), (2, 2, 3, 1, 1, 1, 2));
        assert_eq!(st.refused, 1);
        assert!(st.fork_median > 0 && st.fork_p99 >= st.fork_median);
        // Quota exceeded: refused with its own code.
        assert_eq!(call(&mut m, &mut k, assign(1, 0, 7)), Err(ApiError::NotServed)); // UDP to a TCP service
        let tcp = Request::Assign(policy::Request { service: 1, protocol: Protocol::Tcp, remote_ip: 0, remote_port: 1, local_port: 7 });
        assert!(call(&mut m, &mut k, tcp).is_ok());
        k.quota = 0;
        assert_eq!(call(&mut m, &mut k, Request::Release(a)), Ok(Reply::Done));
        assert_eq!(call(&mut m, &mut k, assign(0, 3, 100)), Err(ApiError::QuotaExceeded));
        assert_eq!(k.destroyed, [b, a]);
        m.check_invariants().unwrap();
    }

    #[test]
    fn idle_instances_reach_the_dead_list_on_any_call() {
        let services = parse(b"service m fork 0 ports 100 protocols udp policy shared idle 1").unwrap();
        let mut m = Manager::new(&services, 100); // 100 ticks a second; the fake clock does 10 a read
        let mut k = Fake { clock: 0, live: Vec::new(), quota: 5, destroyed: Vec::new() };
        let Ok(Reply::Assigned { instance, .. }) = call(&mut m, &mut k, assign(0, 1, 100)) else { panic!() };
        for _ in 0..20 {
            let _ = call(&mut m, &mut k, Request::Stats(0));
        }
        // Any call runs the idle check first, so STATS already shows it.
        let Ok(Reply::Stats(st)) = call(&mut m, &mut k, Request::Stats(0)) else { panic!() };
        assert_eq!((st.retiring, st.assigned), (1, 0));
        let Ok(Reply::DeadList { count: 1, instances, .. }) = call(&mut m, &mut k, Request::DeadList) else { panic!() };
        assert_eq!(instances[0], instance);
        assert_eq!(call(&mut m, &mut k, Request::Release(instance)), Err(ApiError::NotAssigned));
        assert_eq!(call(&mut m, &mut k, Request::AckDead(instance)), Ok(Reply::Done));
        assert_eq!(m.stats(0).unwrap().idle_reclaims, 1);
    }

    #[test]
    fn malformed_messages() {
        assert_eq!(decode_request(0, &[]), Err(ApiError::UnknownLabel));
        assert_eq!(decode_request(99, &[]), Err(ApiError::UnknownLabel));
        assert_eq!(decode_request(LABEL_ASSIGN, &[0, 17, 1, 2]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_ASSIGN, &[0, 1, 1, 2, 3]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_ASSIGN, &[256, 17, 1, 2, 3]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_ASSIGN, &[0, 17, 1 << 32, 2, 3]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_ASSIGN, &[0, 17, 1, 65536, 3]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_RELEASE, &[]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_RELEASE, &[62 << 32]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_TOUCH, &[]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_TOUCH, &[0; 17]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_ACK_DEAD, &[u64::MAX]), Err(ApiError::BadArguments));
        assert_eq!(decode_request(LABEL_STATS, &[300]), Err(ApiError::BadArguments));
        assert_eq!(decode_reply(LABEL_ASSIGN, 5, &[]), Err(ApiError::QuotaExceeded));
        assert_eq!(decode_reply(LABEL_ASSIGN, 77, &[]), Err(ApiError::BadArguments));
        assert_eq!(decode_reply(LABEL_DEAD_LIST, 0, &[17, 0]), Err(ApiError::BadArguments));
        for e in 1..=10 {
            assert_eq!(ApiError::from_label(e).map(|x| x as u64), Some(e));
        }
        // The exact wire form of an ASSIGN and its reply.
        let msg = encode_request(&assign(3, 0x0a00_0202, 11211));
        assert_eq!((msg.label, msg.regs()), (1, &[3, 17, 0x0a00_0202, 5000, 11211][..]));
        let reply = encode_reply(&Ok(Reply::Assigned { instance: InstanceRef::new(2, 7), fresh: true, refill: false }));
        assert_eq!((reply.label, reply.regs()), (0, &[(2 << 32) | 7, 1, 0][..]));
    }
}

