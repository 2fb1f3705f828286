//! Exercises the virtualiser's route API over real protected calls, as the manager will:
//! installs and removes a port route and a connection route, checks the refusals (a taken port,
//! an unknown tenant, an unknown label), reads a tenant's counters, and prints one line the
//! test looks for: `netctl: route API ok` (or `netctl: FAIL ...`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use edgeos_microkit::{debug_println, get_mr, protection_domain, set_mr, var, Channel, Handler, Infallible, MessageInfo};
use edgeos_netvirt_core::api::{self, ApiError};

struct NetCtl;

/// One call: what it checks, its label and arguments, and the reply (label, first register)
/// expected (`u64::MAX`: no register).
type Check = (&'static str, u64, &'static [u64], (u64, u64));

fn call(ch: Channel, label: u64, args: &[u64]) -> (u64, u64) {
    for (i, a) in args.iter().enumerate() {
        set_mr(i, *a);
    }
    let reply = ch.pp_call(MessageInfo::new(label, args.len()));
    (reply.label(), if reply.count() > 0 { get_mr(0) } else { u64::MAX })
}

#[protection_domain(heap_size = 0x1000)]
fn init() -> NetCtl {
    let virt = Channel::new(*var!(virtualiser_channel: usize = 0));
    const UDP: u64 = 17;
    const TCP: u64 = 6;
    const PEER: u64 = 0x0a00_0202; // 10.0.2.2
    let checks: [Check; 9] = [
        ("install tcp 7009 -> tenant 1", api::LABEL_INSTALL_PORT, &[TCP, 7009, 1], (0, u64::MAX)),
        ("port 7001 is taken", api::LABEL_INSTALL_PORT, &[UDP, 7001, 1], (ApiError::Taken as u64, u64::MAX)),
        ("no tenant 9", api::LABEL_INSTALL_PORT, &[UDP, 7010, 9], (ApiError::NoSuchTenant as u64, u64::MAX)),
        ("remove tcp 7009", api::LABEL_REMOVE_PORT, &[TCP, 7009], (0, 1)),
        ("remove it again", api::LABEL_REMOVE_PORT, &[TCP, 7009], (ApiError::NotFound as u64, u64::MAX)),
        ("install a connection", api::LABEL_INSTALL_CONNECTION, &[TCP, PEER, 40000, 7001, 1], (0, u64::MAX)),
        ("remove the connection", api::LABEL_REMOVE_CONNECTION, &[TCP, PEER, 40000, 7001], (0, 1)),
        ("unknown label", 77, &[], (ApiError::UnknownLabel as u64, u64::MAX)),
        ("too few arguments", api::LABEL_INSTALL_PORT, &[UDP], (ApiError::BadArguments as u64, u64::MAX)),
    ];
    for (what, label, args, want) in checks {
        let got = call(virt, label, args);
        if got != want {
            debug_println!("netctl: FAIL {what}: got {got:?}, want {want:?}");
            return NetCtl;
        }
    }
    let (status, received) = call(virt, api::LABEL_COUNTERS, &[0]);
    if status != 0 {
        debug_println!("netctl: FAIL counters: status {status}");
        return NetCtl;
    }
    debug_println!("netctl: route API ok (tenant 0 has received {received} frames)");
    NetCtl
}

impl Handler for NetCtl {
    type Error = Infallible;
}
