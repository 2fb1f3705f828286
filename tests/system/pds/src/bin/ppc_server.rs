//! A server for protected calls: label 1 = sum the message registers. It replies with label
//! 1001, MR0 = sum, MR1 = count, MR2 = 1 if this PD is passive. A notification is answered with
//! a notification.
#![no_std]
#![no_main]

use edgeos_microkit::{
    debug_println, get_mr, pd_is_passive, pd_name, protection_domain, set_mr, with_msg_regs, Channel, ChannelSet, Handler,
    Infallible, MessageInfo,
};

const CLIENT: Channel = Channel::new(1);

struct Server {
    calls: u64,
}

#[protection_domain]
fn init() -> Server {
    debug_println!("{}: init (passive: {})", pd_name().unwrap_or("?"), pd_is_passive());
    Server { calls: 0 }
}

impl Handler for Server {
    type Error = Infallible;

    fn protected(&mut self, channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        assert_eq!(channel, CLIENT);
        self.calls += 1;
        if msg_info.label() != 1 {
            return Ok(MessageInfo::new(0xbad, 0));
        }
        let count = msg_info.count();
        let sum: u64 = with_msg_regs(|mr| mr[..count].iter().sum());
        let first = get_mr(0);
        set_mr(0, sum);
        set_mr(1, count as u64);
        set_mr(2, pd_is_passive() as u64);
        set_mr(3, first);
        Ok(MessageInfo::new(1001, 4))
    }

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        debug_println!("{}: notified on {} after {} calls", pd_name().unwrap_or("?"), channels.display(), self.calls);
        CLIENT.notify();
        Ok(())
    }
}
