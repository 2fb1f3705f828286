//! Written as a PD for rust-sel4's `sel4-microkit` 5 would be: only Cargo.toml knows it runs on
//! EdgeOS. Uses the heap (`alloc`), `var!`, message registers, a deferred notify and the
//! channel set; the test passes when its peer (the same program, named `peer`) answers.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use sel4_microkit::{
    debug_println, memory_region_symbol, pd_name, protection_domain, var, Channel, ChannelSet, DeferredAction, Handler,
    Infallible, MessageInfo,
};

const PEER: Channel = Channel::new(7);

#[protection_domain(heap_size = 0x10000)]
fn init() -> Compat {
    let name = pd_name().unwrap_or("?");
    let mut words: BTreeMap<String, usize> = BTreeMap::new();
    for w in "the quick brown fox jumps over the lazy dog the end".split(' ') {
        *words.entry(String::from(w)).or_default() += 1;
    }
    let squares: Vec<u64> = (0..100).map(|i| i * i).collect();
    let greeting = var!(compat_greeting: [u8; 8] = *b"unset\0\0\0");
    let shared = memory_region_symbol!(compat_shared: *mut [u8], n = 4096);
    debug_println!(
        "{name}: heap ok ({} distinct words, 'the' x{}, sum of squares {}), var {:?}, region {} bytes",
        words.len(),
        words["the"],
        squares.iter().sum::<u64>(),
        core::str::from_utf8(&greeting[..5]).unwrap_or("?"),
        shared.len()
    );
    let first = name == "first";
    if first {
        PEER.notify();
    }
    Compat { first, answer: false }
}

struct Compat {
    first: bool,
    answer: bool,
}

impl Handler for Compat {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        assert!(channels.contains(PEER));
        if self.first {
            debug_println!("first: peer answered on channels {}", channels.display());
            debug_println!("EDGEOS-TEST: PASS (sel4-microkit source compatibility)");
            sel4_microkit::debug_shutdown();
        }
        self.answer = true;
        Ok(())
    }

    fn protected(&mut self, _channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Self::Error> {
        Ok(msg_info)
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        core::mem::take(&mut self.answer).then(|| DeferredAction::new_notify(PEER))
    }
}
