//! Benchmark server: replies to every protected call at once (echoing MR count and label).
#![no_std]
#![no_main]

use edgeos_microkit::{protection_domain, Channel, Handler, Infallible, MessageInfo};

struct Server;

#[protection_domain]
fn init() -> Server {
    Server
}

impl Handler for Server {
    type Error = Infallible;

    fn protected(&mut self, _channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        Ok(msg_info)
    }
}
