//! The virtio-net driver PD.
//!
//! It finds the network device by scanning the 32 virtio-mmio transports of QEMU `virt`,
//! drives it with `virtio-drivers`' raw net driver (`VirtIONetRaw`: no allocation, no copy,
//! the caller provides every buffer), and moves buffers between the device's virtqueues and
//! four queues to the network virtualiser:
//!
//! - `rx_free`   (virtualiser -> driver): empty receive buffers, posted to the device;
//! - `rx_active` (driver -> virtualiser): received frames (offset of the buffer, frame length);
//! - `tx_active` (virtualiser -> driver): frames to send, submitted to the device;
//! - `tx_free`   (driver -> virtualiser): sent buffers, handed back.
//!
//! Buffers are named by their offset in the receive or transmit DMA region; a frame starts at
//! `NIC_FRAME_OFFSET` inside its buffer and the device's header goes just in front of it. The
//! driver never reads a frame: it touches registers, descriptors and buffer addresses only.
//!
//! Everything is event driven: the device interrupt (acked with the next wait) and the
//! virtualiser's notifications both run one batch; a batch ends with the queue wake-up protocol
//! so the virtualiser is notified at most once per batch and no wake-up is lost.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod hal;

use core::ptr::NonNull;

use edgeos_microkit::{
    debug_println, memory_region_symbol, protection_domain, var, Channel, ChannelSet, DeferredAction, Handler,
};
use edgeos_rings::net::{BUFFER_SIZE, NIC_BUFFERS, NIC_FRAME_OFFSET, NIC_LAYOUT};
use edgeos_rings::{raw, Consumer, Corrupt, Descriptor, Producer};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use hal::EdgeosHal;

/// Descriptors per virtqueue (QEMU's virtio-net offers 256).
const QUEUE_SIZE: usize = 256;
/// QEMU `virt`: 32 virtio-mmio transports, 0x200 bytes apart, interrupt 48 + slot (SPI 16 + slot).
const MMIO_SLOTS: usize = 32;
const MMIO_SLOT_SIZE: usize = 0x200;
const MMIO_FIRST_IRQ: usize = 48;

type Net = VirtIONetRaw<EdgeosHal, MmioTransport<'static>, QUEUE_SIZE>;

/// Why the driver stopped.
#[derive(Debug)]
enum DriverError {
    /// The virtualiser broke the queue protocol.
    Queue(Corrupt),
}

impl core::fmt::Display for DriverError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            DriverError::Queue(c) => write!(f, "queue to the virtualiser: {c}"),
        }
    }
}

impl From<Corrupt> for DriverError {
    fn from(c: Corrupt) -> Self {
        DriverError::Queue(c)
    }
}

struct Driver {
    net: Net,
    irq: Channel,
    virtualiser: Channel,
    rx_free: Consumer<'static>,
    rx_active: Producer<'static>,
    tx_active: Consumer<'static>,
    tx_free: Producer<'static>,
    rx_base: usize,
    tx_base: usize,
    /// Bytes of the device's header in front of each frame (10 legacy, 12 with VERSION_1).
    header_len: usize,
    /// Virtqueue token -> receive buffer index, for buffers the device holds.
    rx_tokens: [Option<u32>; QUEUE_SIZE],
    rx_in_device: usize,
    /// Virtqueue token -> (transmit buffer index, frame length), for frames the device holds.
    tx_tokens: [Option<(u32, u32)>; QUEUE_SIZE],
    ack_irq: bool,
    received: u64,
    sent: u64,
    dropped: u64,
    /// Counter ticks spent in the event handler (for instructions per packet under -icount).
    busy_ticks: u64,
    reported_at: u64,
}

/// Frames between two statistics lines.
const STATS_EVERY: u64 = 1 << 14;

/// The virtual counter (readable at EL0).
fn counter() -> u64 {
    let ticks: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; the kernel lets every PD read it.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks) };
    ticks
}

/// The bytes of one buffer the device reads or writes: header room plus frame room.
fn device_slice(base: usize, index: u32, header_len: usize, len: usize) -> &'static mut [u8] {
    let start = base + NIC_LAYOUT.offset(index) as usize + NIC_FRAME_OFFSET as usize - header_len;
    // SAFETY: `index` was checked against the region's layout, so the bytes lie inside the
    // mapped DMA region; while the device holds the buffer nothing else in the system touches
    // it (the virtualiser handed it over through a queue), and the driver itself never reads it.
    unsafe { core::slice::from_raw_parts_mut(start as *mut u8, len) }
}

/// Finds the first virtio network device among the transports.
fn find_device(mmio: NonNull<u8>) -> Option<(usize, MmioTransport<'static>)> {
    for slot in 0..MMIO_SLOTS {
        // SAFETY: the description maps the whole 32-transport window (checked at start-up)
        // for the PD's lifetime, uncached; each transport's header and config space are its 0x200 bytes.
        let header = unsafe { NonNull::new_unchecked(mmio.as_ptr().add(slot * MMIO_SLOT_SIZE)) }.cast::<VirtIOHeader>();
        // SAFETY: as above.
        let Ok(transport) = (unsafe { MmioTransport::new(header, MMIO_SLOT_SIZE) }) else { continue };
        if transport.device_type() == DeviceType::Network {
            return Some((slot, transport));
        }
    }
    None
}

#[protection_domain]
fn init() -> Driver {
    let irq = Channel::new(*var!(virtio_net_irq_channel: usize = 0));
    let virtualiser = Channel::new(*var!(virtualiser_channel: usize = 1));
    let expected_irq = *var!(virtio_net_irq: usize = 79);

    let mmio = memory_region_symbol!(virtio_mmio_vaddr: *mut u8);
    let mmio_size = *var!(virtio_mmio_size: usize = 0);
    if mmio_size < MMIO_SLOTS * MMIO_SLOT_SIZE {
        panic!("the virtio-mmio window is {mmio_size:#x} bytes; map all 32 transports (0x4000)");
    }
    hal::MMIO.set(mmio.as_ptr() as usize, *var!(virtio_mmio_paddr: usize = 0), mmio_size);
    let vq = memory_region_symbol!(virtqueue_vaddr: *mut u8);
    hal::QUEUE_MEMORY.set(vq.as_ptr() as usize, *var!(virtqueue_paddr: usize = 0), *var!(virtqueue_size: usize = 0));
    let rx_base = memory_region_symbol!(rx_buffers_vaddr: *mut u8).as_ptr() as usize;
    let tx_base = memory_region_symbol!(tx_buffers_vaddr: *mut u8).as_ptr() as usize;
    let (rx_size, tx_size) = (*var!(rx_buffers_size: usize = 0), *var!(tx_buffers_size: usize = 0));
    for (name, size) in [("rx_buffers", rx_size), ("tx_buffers", tx_size)] {
        if (size as u64) < NIC_LAYOUT.region_bytes() {
            panic!("DMA region {name} is {size:#x} bytes; {NIC_BUFFERS} buffers of {BUFFER_SIZE} need {:#x}", NIC_LAYOUT.region_bytes());
        }
    }
    hal::RX_BUFFERS.set(rx_base, *var!(rx_buffers_paddr: usize = 0), rx_size);
    hal::TX_BUFFERS.set(tx_base, *var!(tx_buffers_paddr: usize = 0), tx_size);

    let queue = |name, vaddr, size| {
        // SAFETY: the description maps the NIC link's queue regions for the PD's lifetime and
        // only queue views touch them.
        unsafe { raw::nic_queue(name, vaddr, size) }
    };
    let rx_free = queue("rx_free", memory_region_symbol!(rx_free_vaddr: *mut u8), *var!(rx_free_size: usize = 0));
    let rx_active = queue("rx_active", memory_region_symbol!(rx_active_vaddr: *mut u8), *var!(rx_active_size: usize = 0));
    let tx_active = queue("tx_active", memory_region_symbol!(tx_active_vaddr: *mut u8), *var!(tx_active_size: usize = 0));
    let tx_free = queue("tx_free", memory_region_symbol!(tx_free_vaddr: *mut u8), *var!(tx_free_size: usize = 0));

    let Some((slot, transport)) = find_device(mmio) else {
        panic!("no virtio network device on any of the 32 virtio-mmio transports (QEMU: -device virtio-net-device)");
    };
    let version = transport.version();
    let found_irq = MMIO_FIRST_IRQ + slot;
    if found_irq != expected_irq {
        panic!("virtio-net is in transport slot {slot} (interrupt {found_irq}) but the description grants interrupt {expected_irq}");
    }
    let net = match Net::new(transport) {
        Ok(n) => n,
        Err(e) => panic!("virtio-net initialisation failed: {e:?}"),
    };
    let mut scratch = [0u8; NIC_FRAME_OFFSET as usize];
    let header_len = match net.fill_buffer_header(&mut scratch) {
        Ok(n) if n <= NIC_FRAME_OFFSET as usize => n,
        other => panic!("virtio-net header size {other:?} does not fit the {NIC_FRAME_OFFSET} bytes of room"),
    };
    let mac = net.mac_address();
    debug_println!(
        "virtio-net: transport {slot} ({version:?}), interrupt {found_irq}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, header {header_len} bytes",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    );
    let mut driver = Driver {
        net,
        irq,
        virtualiser,
        rx_free: Consumer::new(rx_free, NIC_BUFFERS).expect("checked capacity"),
        rx_active: Producer::new(rx_active, NIC_BUFFERS).expect("checked capacity"),
        tx_active: Consumer::new(tx_active, NIC_BUFFERS).expect("checked capacity"),
        tx_free: Producer::new(tx_free, NIC_BUFFERS).expect("checked capacity"),
        rx_base,
        tx_base,
        header_len,
        rx_tokens: [None; QUEUE_SIZE],
        rx_in_device: 0,
        tx_tokens: [None; QUEUE_SIZE],
        ack_irq: false,
        received: 0,
        sent: 0,
        dropped: 0,
        busy_ticks: 0,
        reported_at: 0,
    };
    if let Err(e) = driver.run_batch() {
        panic!("virtio-net: {e}");
    }
    driver
}

impl Driver {
    /// Length of the device-visible part of a receive buffer.
    fn rx_len(&self) -> usize {
        BUFFER_SIZE as usize - NIC_FRAME_OFFSET as usize + self.header_len
    }

    /// Posts one empty receive buffer to the device.
    fn post_rx(&mut self, index: u32) {
        let buffer = device_slice(self.rx_base, index, self.header_len, self.rx_len());
        // SAFETY: the buffer stays untouched by the driver until the device returns it
        // (`receive_complete` with the same slice, found again through `rx_tokens`).
        match unsafe { self.net.receive_begin(buffer) } {
            Ok(token) if (token as usize) < QUEUE_SIZE => {
                self.rx_tokens[token as usize] = Some(index);
                self.rx_in_device += 1;
            }
            other => panic!("virtio-net refused a receive buffer: {other:?}"),
        }
    }

    /// One batch: completions from the device, new work from the virtualiser, and the wake-up
    /// protocol at the end. Loops until nothing is left that can be done now.
    fn run_batch(&mut self) -> Result<(), DriverError> {
        loop {
            let mut to_virtualiser = false;
            // Frames the device received.
            while let Some(token) = self.net.poll_receive() {
                let Some(index) = self.rx_tokens.get_mut(token as usize).and_then(Option::take) else {
                    panic!("virtio-net returned unknown receive token {token}");
                };
                self.rx_in_device -= 1;
                let buffer = device_slice(self.rx_base, index, self.header_len, self.rx_len());
                // SAFETY: the same slice that was posted with this token.
                let completed = unsafe { self.net.receive_complete(token, buffer) };
                match completed {
                    Ok((_, len)) if len > 0 && len <= (BUFFER_SIZE as u64 - NIC_FRAME_OFFSET) as usize => {
                        self.rx_active.enqueue(Descriptor::new(NIC_LAYOUT.offset(index), len as u32)).map_err(queue_error)?;
                        self.received += 1;
                        to_virtualiser = true;
                    }
                    _ => {
                        // Nothing usable: give the buffer straight back to the device.
                        self.dropped += 1;
                        self.post_rx(index);
                    }
                }
            }
            // Empty buffers from the virtualiser.
            while self.rx_in_device < QUEUE_SIZE {
                let Some(d) = self.rx_free.dequeue()? else { break };
                let index = NIC_LAYOUT.check(d)?;
                self.post_rx(index);
            }
            // Frames the device has sent.
            while let Some(token) = self.net.poll_transmit() {
                let Some((index, len)) = self.tx_tokens.get_mut(token as usize).and_then(Option::take) else {
                    panic!("virtio-net returned unknown transmit token {token}");
                };
                let buffer = device_slice(self.tx_base, index, self.header_len, self.header_len + len as usize);
                // SAFETY: the same slice that was submitted with this token.
                if let Err(e) = unsafe { self.net.transmit_complete(token, buffer) } {
                    panic!("virtio-net transmit completion failed: {e:?}");
                }
                self.tx_free.enqueue(Descriptor::new(NIC_LAYOUT.offset(index), 0)).map_err(queue_error)?;
                self.sent += 1;
                to_virtualiser = true;
            }
            // Frames to send.
            while self.net.can_send() {
                let Some(d) = self.tx_active.dequeue()? else { break };
                let index = NIC_LAYOUT.check(d)?;
                if d.len == 0 || d.len as u64 > BUFFER_SIZE as u64 - NIC_FRAME_OFFSET {
                    // Not a frame: hand the buffer back unsent.
                    self.dropped += 1;
                    self.tx_free.enqueue(Descriptor::new(d.offset, 0)).map_err(queue_error)?;
                    to_virtualiser = true;
                    continue;
                }
                let buffer = device_slice(self.tx_base, index, self.header_len, self.header_len + d.len as usize);
                if let Err(e) = self.net.fill_buffer_header(buffer) {
                    panic!("virtio-net header: {e:?}");
                }
                // SAFETY: the buffer is the driver's until the device completes it
                // (`transmit_complete` with the same slice, found again through `tx_tokens`).
                match unsafe { self.net.transmit_begin(buffer) } {
                    Ok(token) if (token as usize) < QUEUE_SIZE => self.tx_tokens[token as usize] = Some((index, d.len)),
                    other => panic!("virtio-net refused a frame it said it had room for: {other:?}"),
                }
            }
            // One notification for the whole batch, if the virtualiser asked for one. Both
            // flags are consumed (no short-circuit).
            if to_virtualiser {
                let rx = self.rx_active.signal_wanted();
                let tx = self.tx_free.signal_wanted();
                if rx | tx {
                    self.virtualiser.notify();
                }
            }
            // Ask to be woken for more work, then re-check (no lost wake-up). Frames to send
            // always wake the driver; returned receive buffers only when the device runs low
            // (they are picked up by every batch anyway), which saves a notification a frame.
            self.tx_active.request_signal();
            if self.rx_in_device < QUEUE_SIZE / 2 {
                self.rx_free.request_signal();
            } else {
                self.rx_free.cancel_signal();
            }
            let more_rx = self.rx_in_device < QUEUE_SIZE && !self.rx_free.is_empty()?;
            let more_tx = self.net.can_send() && !self.tx_active.is_empty()?;
            let more_device = self.net.poll_receive().is_some() || self.net.poll_transmit().is_some();
            if !(more_rx || more_tx || more_device) {
                return Ok(());
            }
            if more_rx {
                self.rx_free.cancel_signal();
            }
            if more_tx {
                self.tx_active.cancel_signal();
            }
        }
    }
}

fn queue_error(e: edgeos_rings::EnqueueError) -> DriverError {
    match e {
        // Every queue holds every buffer of its link, so "full" means a buffer was duplicated.
        edgeos_rings::EnqueueError::Full => DriverError::Queue(Corrupt::Index { items: NIC_BUFFERS + 1, capacity: NIC_BUFFERS }),
        edgeos_rings::EnqueueError::Corrupt(c) => DriverError::Queue(c),
    }
}

impl Handler for Driver {
    type Error = DriverError;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), DriverError> {
        let start = counter();
        if channels.contains(self.irq) {
            // Clears the device's interrupt status (drops the level-triggered line) before the
            // batch, so completions that arrive during it raise it again.
            self.net.ack_interrupt();
            self.ack_irq = true;
        }
        let result = self.run_batch();
        self.busy_ticks += counter() - start;
        if self.received - self.reported_at >= STATS_EVERY {
            self.reported_at = self.received;
            debug_println!(
                "virtio-net: stats: received {} sent {} dropped {} handler_ticks {}",
                self.received, self.sent, self.dropped, self.busy_ticks
            );
        }
        result
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        core::mem::take(&mut self.ack_irq).then(|| DeferredAction::new_irq_ack(self.irq))
    }
}
