//! Calls the server on channel 2 with message registers and checks the replies, then checks
//! that the server (passive or not) still answers a notification.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, get_mr, protection_domain, set_mr, with_msg_regs_mut, Channel, ChannelSet, Handler, Infallible, MessageInfo};
use edgeos_system_test_pds::{check, pass};

const SERVER: Channel = Channel::new(2);

struct Client;

#[protection_domain]
fn init() -> Client {
    for round in 0..3u64 {
        for i in 0..4 {
            set_mr(i, (i as u64 + 1) * 10 + round);
        }
        let reply = SERVER.pp_call(MessageInfo::new(1, 4));
        check!(reply.label() == 1001 && reply.count() == 4, "bad reply {reply:?}");
        let expect = 100 + 4 * round;
        check!(get_mr(0) == expect, "sum {} != {expect}", get_mr(0));
        check!(get_mr(1) == 4 && get_mr(3) == 10 + round, "bad reply registers");
    }
    // A long message: 120 registers.
    with_msg_regs_mut(|mr| mr.iter_mut().enumerate().for_each(|(i, r)| *r = i as u64));
    SERVER.pp_call(MessageInfo::new(1, 120));
    check!(get_mr(0) == (0..120).sum::<u64>() && get_mr(1) == 120, "long message: sum {} count {}", get_mr(0), get_mr(1));
    check!(SERVER.pp_call(MessageInfo::new(5, 0)).label() == 0xbad, "unknown label not refused");
    let passive = {
        set_mr(0, 1);
        SERVER.pp_call(MessageInfo::new(1, 1));
        get_mr(2) != 0
    };
    debug_println!("client: 6 calls answered; server passive: {passive}");
    SERVER.notify();
    Client
}

impl Handler for Client {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(SERVER), "unexpected notification {}", channels.display());
        pass("protected calls with message registers")
    }
}
