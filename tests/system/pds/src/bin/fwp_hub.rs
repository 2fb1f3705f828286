//! The holder of the `fwp_array` test (`hub-N`): forks N instances of `fwp_peer`, gives each a
//! number through its mailbox (instance window), notifies it through the channel array, and
//! checks every answer that comes back through the array (one notification for many
//! instances, `ChannelArray::take` says which). Round 2 recycles the same instances (memory,
//! mailbox and the page each got on demand back to the snapshot, the demand pages freed) and
//! asks again. Then: a destroyed instance cannot be notified; round 3 forks again with the ids
//! reused; free memory after round 3's destroys equals round 2's (the window's tables stay,
//! nothing else).
#![no_std]
#![no_main]

use edgeos_microkit::{
    debug_free_frames, debug_println, pd_name, protection_domain, var, Channel, ChannelArray, ChannelSet, Fork, ForkError, Handler,
    Infallible, Instance,
};
use edgeos_system_test_pds::{check, fail, pass};

const PEERS: Fork = Fork::new(0);
const ARRAY: ChannelArray = ChannelArray::new(5);
const MAX: usize = 1024;
const MARKER: u64 = 0xfeed;

fn mailbox(i: u32) -> *mut u64 {
    let base = *var!(mailboxes_vaddr: usize = 0);
    let stride = *var!(mailboxes_stride: usize = 0);
    (base + i as usize * stride) as *mut u64
}

struct Hub {
    n: u32,
    round: u64,
    answered: [u64; MAX / 64],
    count: u32,
    free_after_first: u64,
}

impl Hub {
    fn ask(&self, i: u32) -> u64 {
        self.round * 100_000 + i as u64
    }

    /// Round 2: the same instances, recycled.
    fn recycle_round(&mut self) {
        self.answered = [0; MAX / 64];
        self.count = 0;
        let free0 = debug_free_frames();
        for i in 0..self.n {
            if let Err(e) = PEERS.recycle(Instance::new(i)) {
                fail(format_args!("recycle {i}: {e}"));
            }
            // SAFETY: instance i lives; its mailbox is mapped at mailbox(i).
            unsafe {
                let m = mailbox(i);
                check!(m.read_volatile() == 0 && m.add(1).read_volatile() == 0, "instance {i}'s mailbox was not reset");
                check!(m.add(2).read_volatile() == MARKER, "instance {i}'s mailbox lost the snapshot's marker");
                m.write_volatile(self.ask(i));
            }
        }
        // Each instance's scratch page (got on demand in round 1) went back.
        let freed = debug_free_frames() - free0;
        check!(freed == self.n as u64, "recycling {} instances freed {freed} pages, expected one each", self.n);
        for i in 0..self.n {
            if let Err(e) = ARRAY.notify(Instance::new(i)) {
                fail(format_args!("notify instance {i}: {e}"));
            }
        }
    }

    fn start_round(&mut self) {
        self.answered = [0; MAX / 64];
        self.count = 0;
        let free0 = debug_free_frames();
        for _ in 0..self.n {
            let inst = match PEERS.fork() {
                Ok(i) => i,
                Err(e) => fail(format_args!("fork: {e}")),
            };
            let i = inst.index();
            check!(i < self.n, "instance id {i} out of range");
            // SAFETY: while instance i lives its mailbox is mapped rw at mailbox(i).
            unsafe {
                let m = mailbox(i);
                check!(m.add(2).read_volatile() == MARKER, "instance {i} did not start from the snapshot's mailbox");
                check!(m.add(1).read_volatile() == 0, "instance {i}'s mailbox is not fresh");
                m.write_volatile(self.ask(i));
            }
        }
        // The peer's 64 KiB zero array is not copied at fork (pages come on demand).
        let pages = (free0 - debug_free_frames()) / self.n as u64;
        debug_println!("fwp_array: {pages} pages per instance at fork (64 KiB of zero bss not among them)");
        check!(pages < 16, "{pages} pages per instance: zero pages were copied");
        for i in 0..self.n {
            if let Err(e) = ARRAY.notify(Instance::new(i)) {
                fail(format_args!("notify instance {i}: {e}"));
            }
        }
    }

    fn end_round(&mut self) {
        for i in 0..self.n {
            if let Err(e) = PEERS.destroy(Instance::new(i)) {
                fail(format_args!("destroy {i}: {e}"));
            }
        }
        check!(ARRAY.notify(Instance::new(0)) == Err(ForkError::InvalidChild), "a destroyed instance was notified");
    }
}

#[protection_domain]
fn init() -> Hub {
    let name = pd_name().unwrap_or("");
    let n: u32 = name.strip_prefix("hub-").and_then(|n| n.parse().ok()).unwrap_or(1).min(MAX as u32);
    let mut hub = Hub { n, round: 1, answered: [0; MAX / 64], count: 0, free_after_first: 0 };
    hub.start_round();
    hub
}

impl Handler for Hub {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(Channel::new(ARRAY.index())), "notified on {channels:?}, not the array");
        let mut bad = None;
        let r = ARRAY.take(|inst| {
            let i = inst.index();
            if i >= self.n || self.answered[i as usize / 64] & (1 << (i % 64)) != 0 {
                bad = Some(i);
                return;
            }
            // SAFETY: instance i lives (it notified) and its mailbox is mapped at mailbox(i).
            let got = unsafe { mailbox(i).add(1).read_volatile() };
            if got != self.ask(i) * 3 + MARKER {
                bad = Some(i);
                return;
            }
            self.answered[i as usize / 64] |= 1 << (i % 64);
            self.count += 1;
        });
        if let Err(e) = r {
            fail(format_args!("take: {e}"));
        }
        if let Some(i) = bad {
            fail(format_args!("instance {i} answered wrongly or twice"));
        }
        if self.count < self.n {
            return Ok(());
        }
        debug_println!("fwp_array: round {}: {} instances answered through the array", self.round, self.n);
        if self.round == 1 {
            self.round = 2;
            self.recycle_round();
            return Ok(());
        }
        self.end_round();
        if self.round == 2 {
            self.free_after_first = debug_free_frames();
            self.round = 3;
            self.start_round();
            return Ok(());
        }
        let free = debug_free_frames();
        check!(free == self.free_after_first, "free frames {free} after round 3, {} after round 2", self.free_after_first);
        pass("channel arrays and instance windows");
    }
}
