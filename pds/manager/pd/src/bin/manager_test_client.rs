//! The `manager_basic` system test's stand-in for the network virtualiser: it drives the
//! manager's protected-call API (`edgeos_manager_core::api`) through the real kernel and checks
//! every answer, then reads the manager's statistics region (mapped read-only here) and checks
//! the decoded record agrees. Services (tests/system/manager_basic/services.conf): `kv` (fork 0,
//! ports 11211-11214, policy port, pool 2, idle 1 s, max_instances 4) and `echo` (fork 1, port 7
//! UDP, policy client, max_instances 1).
#![no_std]
#![no_main]


use edgeos_manager_core::api::{self, ApiError, Reply, Request, StatsReply, MAX_MRS};
use edgeos_manager_core::policy::{self, InstanceRef};
use edgeos_manager_core::stats::StatsRecord;
use edgeos_manager_core::Protocol;
use edgeos_microkit::{
    debug_println, get_mr, memory_region_symbol, protection_domain, set_mr, var, Channel, ChannelSet, Handler, Infallible,
    MessageInfo,
};
use edgeos_system_test_pds::{check, fail, pass};

const MANAGER: Channel = Channel::new(0);
const KV: u8 = 0;
const ECHO: u8 = 1;

use edgeos_microkit::{counter, counter_frequency as frequency};

fn spin_ms(ms: u64) {
    let end = counter() + frequency() * ms / 1000;
    while counter() < end {
        core::hint::spin_loop();
    }
}

fn call(r: Request) -> Result<Reply, ApiError> {
    let msg = api::encode_request(&r);
    for (i, &v) in msg.regs().iter().enumerate() {
        set_mr(i, v);
    }
    let reply = MANAGER.pp_call(MessageInfo::new(msg.label, msg.count));
    let mut mrs = [0u64; MAX_MRS];
    let n = reply.count().min(MAX_MRS);
    for (i, m) in mrs[..n].iter_mut().enumerate() {
        *m = get_mr(i);
    }
    api::decode_reply(msg.label, reply.label(), &mrs[..n])
}

fn assign_req(service: u8, protocol: Protocol, ip: u32, port: u16) -> Request {
    Request::Assign(policy::Request { service, protocol, remote_ip: ip, remote_port: 40000, local_port: port })
}

/// ASSIGN that must succeed; (instance, fresh, refill).
fn assign(service: u8, ip: u32, port: u16) -> (InstanceRef, bool, bool) {
    match call(assign_req(service, Protocol::Udp, ip, port)) {
        Ok(Reply::Assigned { instance, fresh, refill }) => (instance, fresh, refill),
        other => fail(format_args!("ASSIGN service {service} from {ip:#x} to port {port}: {other:?}")),
    }
}

fn stats(service: u8) -> StatsReply {
    match call(Request::Stats(service)) {
        Ok(Reply::Stats(s)) => s,
        other => fail(format_args!("STATS {service}: {other:?}")),
    }
}

fn read_stats_region() -> StatsRecord {
    let size = *var!(manager_stats_size: usize = 0);
    let base = memory_region_symbol!(manager_stats_vaddr: *mut u8);
    let mut copy = [0u8; 0x2000];
    let n = size.min(copy.len());
    for (i, b) in copy[..n].iter_mut().enumerate() {
        // SAFETY: the region is mapped read-only into this PD for `size` bytes.
        *b = unsafe { base.as_ptr().add(i).read_volatile() };
    }
    match StatsRecord::decode(&copy[..n]) {
        Ok(r) => r,
        Err(e) => fail(format_args!("stats region: {e}")),
    }
}

/// Waits until the kv pool holds `pooled` instances and `live` exist.
fn wait_for_pool(pooled: u64, live: u64) -> StatsReply {
    let mut s = stats(KV);
    for _ in 0..100 {
        if s.pooled == pooled {
            break;
        }
        spin_ms(1);
        s = stats(KV);
    }
    check!((s.pooled, s.live, s.forked) == (pooled, live, live), "after a refill: {s:?}");
    s
}

struct Client {
    idle: [InstanceRef; 2],
    kept: InstanceRef,
}

#[protection_domain(heap_size = 0x10000)]
fn init() -> Client {
    let ip1 = 0x0a00_0202;
    let ip2 = 0x0a00_0203;
    // Templates run their init before every PD, so the manager's init pre-forked the pools.
    let s = stats(KV);
    check!((s.live, s.pooled) == (2, 2), "the pool was not pre-forked at the manager's init: {s:?}");
    // Pool hits.
    let (a, fresh, refill) = assign(KV, ip1, 11211);
    check!(fresh && refill && a.fork == 0, "first ASSIGN: {a:?} fresh {fresh} refill {refill}");
    let (a2, fresh, _) = assign(KV, ip2, 11211);
    check!(a2 == a && !fresh, "same port, another client: {a2:?} fresh {fresh} (policy port)");
    let (b, fresh, _) = assign(KV, ip1, 11212);
    check!(b != a && fresh, "second port: {b:?} fresh {fresh}");
    // What an ASSIGN for a key that has its instance costs, end to end (protected call,
    // policy, statistics rewrite, reply).
    let mut t = [0u64; 64];
    for x in t.iter_mut() {
        let t0 = counter();
        let (i, _, _) = assign(KV, ip2, 11212);
        *x = counter() - t0;
        check!(i == b, "repeat ASSIGN");
    }
    t.sort_unstable();
    let ns = |v: u64| v * 1_000_000_000 / frequency();
    debug_println!("bench: manager ASSIGN, existing key: median {} p99 {} ns (TCG time)", ns(t[32]), ns(t[63]));
    let s = stats(KV);
    check!((s.live, s.pooled, s.assigned, s.pool_hits, s.pool_misses) == (2, 0, 2, 2, 0), "after two pool hits: {s:?}");
    // Refill on notification (the manager runs at a higher priority).
    MANAGER.notify();
    let s = wait_for_pool(2, 4);
    check!(s.fork_median > 0 && s.fork_p99 >= s.fork_median, "fork latency: {s:?}");
    let (c, fresh_c, _) = assign(KV, ip1, 11213);
    let (d, fresh_d, _) = assign(KV, ip1, 11214);
    check!(fresh_c && fresh_d && c != d && ![a, b].contains(&c) && ![a, b].contains(&d), "pool hits 3 and 4");
    // Per-client instances and a quota refusal (echo: max_instances 1).
    let (e, fresh, _) = assign(ECHO, ip1, 7);
    check!(e.fork == 1 && fresh, "echo: {e:?}");
    let r = call(assign_req(ECHO, Protocol::Udp, ip2, 7));
    check!(r == Err(ApiError::QuotaExceeded), "a second echo client over the quota: {r:?}");
    let (e2, fresh, _) = assign(ECHO, ip1, 7);
    check!(e2 == e && !fresh, "the first echo client again: {e2:?}");
    let s = stats(ECHO);
    check!((s.live, s.refused, s.pool_misses) == (1, 1, 2), "echo stats: {s:?}");
    // Bad requests.
    let r = call(assign_req(ECHO, Protocol::Tcp, ip1, 7));
    check!(r == Err(ApiError::NotServed), "TCP to a UDP service: {r:?}");
    let r = call(assign_req(9, Protocol::Udp, ip1, 7));
    check!(r == Err(ApiError::NoSuchService), "no such service: {r:?}");
    let bad = MANAGER.pp_call(MessageInfo::new(99, 0));
    check!(bad.label() == ApiError::UnknownLabel as u64, "unknown label answered {}", bad.label());
    set_mr(0, 0);
    let bad = MANAGER.pp_call(MessageInfo::new(api::LABEL_ASSIGN, 1));
    check!(bad.label() == ApiError::BadArguments as u64, "short ASSIGN answered {}", bad.label());
    // Release: the manager destroys the instance.
    check!(call(Request::Release(a)) == Ok(Reply::Done), "RELEASE");
    let r = call(Request::Release(a));
    check!(r == Err(ApiError::NoSuchInstance), "RELEASE of a destroyed instance: {r:?}");
    let s = stats(KV);
    check!((s.live, s.destroyed, s.assigned) == (3, 1, 3), "after the release: {s:?}");
    // Idle reclaim (idle 1 s): b is touched halfway, c and d are not.
    spin_ms(600);
    let mut t = [InstanceRef::new(0, 0); api::TOUCH_MAX];
    t[0] = b;
    t[1] = a;
    let r = call(Request::Touch { count: 2, instances: t });
    check!(r == Ok(Reply::Touched { not_assigned: 1 }), "TOUCH: {r:?}");
    spin_ms(600);
    let s = stats(KV); // any call runs the idle check
    check!((s.retiring, s.assigned) == (2, 1), "after 1.2 s: {s:?}");
    let r = call(Request::AckDead(b));
    check!(r == Err(ApiError::NotDead), "ACK_DEAD of a live instance: {r:?}");
    debug_println!("manager-client: waiting for the manager's dead-list notification");
    Client { idle: [c, d], kept: b }
}

impl Handler for Client {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(MANAGER), "unexpected notification {}", channels.display());
        let Ok(Reply::DeadList { count, total, instances }) = call(Request::DeadList) else {
            fail(format_args!("DEAD_LIST failed"))
        };
        check!(count == 2 && total == 2, "DEAD_LIST: {count} of {total}");
        check!(instances[..2] == self.idle, "DEAD_LIST names {:?}, expected {:?}", &instances[..2], self.idle);
        // Asking again gives the same answer until acknowledged.
        let again = call(Request::DeadList);
        check!(matches!(again, Ok(Reply::DeadList { count: 2, .. })), "DEAD_LIST again: {again:?}");
        for i in self.idle {
            check!(call(Request::AckDead(i)) == Ok(Reply::Done), "ACK_DEAD {i:?}");
        }
        let r = call(Request::AckDead(self.idle[0]));
        check!(r == Err(ApiError::NoSuchInstance), "second ACK_DEAD: {r:?}");
        check!(matches!(call(Request::DeadList), Ok(Reply::DeadList { count: 0, total: 0, .. })), "dead list empty");
        let s = stats(KV);
        check!((s.live, s.destroyed, s.retiring, s.assigned) == (1, 3, 0, 1), "after the acks: {s:?}");
        // The kept instance still serves its key.
        let (k, fresh, _) = assign(KV, 0x0a00_0209, 11212);
        check!(k == self.kept && !fresh, "the touched instance kept its key: {k:?}");
        // The statistics region agrees.
        let rec = read_stats_region();
        check!(rec.services.len() == 2 && rec.sequence & 1 == 0, "stats record: {} services", rec.services.len());
        let (kv, echo) = (&rec.services[0], &rec.services[1]);
        check!(kv.name == "kv" && echo.name == "echo", "names {} {}", kv.name, echo.name);
        check!((kv.live, kv.destroyed, kv.releases, kv.idle_reclaims, kv.pool_hits) == (1, 3, 1, 2, 4), "kv record: {kv:?}");
        check!((echo.live, echo.refused, echo.forked) == (1, 2, 1), "echo record: {echo:?}");
        check!(kv.fork_latency.count == 4 && kv.fork_latency.min > 0, "kv fork latency record");
        debug_println!(
            "manager-client: kv fork latency min {} median {} p99 {} ticks at {} Hz",
            kv.fork_latency.min,
            kv.fork_latency.quantile(500),
            kv.fork_latency.quantile(990),
            rec.counter_frequency
        );
        debug_println!("manager-client: pool hits, refill, quota refusal, release and idle reclaim checked");
        pass("featherweight manager: API, pools, quota, idle reclaim, dead list, stats region")
    }
}
