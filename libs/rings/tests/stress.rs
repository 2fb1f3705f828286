//! Two threads pass millions of buffers over a free/active queue pair, each side sleeping
//! (thread park, a binary "notification" like a PD's) whenever its queue is empty and using the
//! crate's wake-up protocol. Checks: every sequence number arrives exactly once and in order,
//! every buffer comes back exactly once, and nobody sleeps forever (a lost wake-up would hang
//! the test; a watchdog turns that into a failure).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use edgeos_rings::{BufferLayout, Consumer, Descriptor, Producer, QueueStorage};

const BUFFERS: u32 = 256;
const ITEMS: u64 = 3_000_000;

struct Link {
    free: QueueStorage<256>,
    active: QueueStorage<256>,
    /// The data region: one word per buffer.
    data: [AtomicU64; BUFFERS as usize],
}

#[test]
fn millions_of_items_nothing_lost_or_duplicated() {
    let link: &'static Link = Box::leak(Box::new(Link { free: QueueStorage::new(), active: QueueStorage::new(), data: std::array::from_fn(|_| AtomicU64::new(0)) }));
    let layout = BufferLayout::new(2048, BUFFERS);
    let done = Arc::new(AtomicBool::new(false));
    let notifications = Arc::new(AtomicU64::new(0));

    // The producer starts owning every buffer.
    let mut free_producer = Producer::new(link.free.view(), 256).unwrap();
    for i in 0..BUFFERS {
        free_producer.enqueue(Descriptor::new(layout.offset(i), 0)).unwrap();
    }

    let (tx_handle_slot, rx_handle_slot) = (Arc::new(std::sync::OnceLock::<thread::Thread>::new()), Arc::new(std::sync::OnceLock::<thread::Thread>::new()));

    let producer = {
        let (me, peer) = (tx_handle_slot.clone(), rx_handle_slot.clone());
        let notifications = notifications.clone();
        thread::spawn(move || {
            me.set(thread::current()).unwrap();
            let peer = loop {
                if let Some(t) = peer.get() {
                    break t.clone();
                }
                thread::yield_now();
            };
            let mut free = Consumer::new(link.free.view(), 256).unwrap();
            let mut active = Producer::new(link.active.view(), 256).unwrap();
            // Every buffer starts on the free queue, i.e. with the consumer side.
            let mut with_peer = vec![true; BUFFERS as usize];
            let mut seq = 0u64;
            while seq < ITEMS {
                // Drain free buffers and send one item in each.
                let mut sent = false;
                while seq < ITEMS {
                    let Some(d) = free.dequeue().unwrap() else { break };
                    let index = layout.check(d).unwrap() as usize;
                    assert!(with_peer[index], "buffer {index} came back twice");
                    with_peer[index] = false;
                    // The payload: the sequence number, written into the buffer's data before
                    // the Release store of `tail` publishes it.
                    link.data[index].store(seq, Ordering::Relaxed);
                    active.enqueue(Descriptor::new(d.offset, (seq % 2048) as u32)).unwrap();
                    with_peer[index] = true;
                    seq += 1;
                    sent = true;
                }
                if sent && active.signal_wanted() {
                    notifications.fetch_add(1, Ordering::Relaxed);
                    peer.unpark();
                }
                if seq < ITEMS && free.finish_batch().unwrap() {
                    thread::park();
                }
            }
        })
    };

    let consumer = {
        let (me, peer) = (rx_handle_slot.clone(), tx_handle_slot.clone());
        let done = done.clone();
        let notifications = notifications.clone();
        thread::spawn(move || {
            me.set(thread::current()).unwrap();
            let peer = loop {
                if let Some(t) = peer.get() {
                    break t.clone();
                }
                thread::yield_now();
            };
            let mut active = Consumer::new(link.active.view(), 256).unwrap();
            let mut free = Producer::new(link.free.view(), 256).unwrap();
            let mut expected = 0u64;
            // Buffers come in the order they went out, so the consumer can predict offsets.
            let mut next_index = 0u32;
            while expected < ITEMS {
                let mut returned = false;
                while let Some(d) = active.dequeue().unwrap() {
                    let index = layout.check(d).unwrap();
                    assert_eq!(index, next_index, "buffer out of order at item {expected}");
                    assert_eq!(d.len as u64, expected % 2048, "item {expected} lost or duplicated");
                    assert_eq!(link.data[index as usize].load(Ordering::Relaxed), expected, "payload not visible");
                    next_index = (next_index + 1) % BUFFERS;
                    expected += 1;
                    free.enqueue(Descriptor::new(d.offset, 0)).unwrap();
                    returned = true;
                }
                if returned && free.signal_wanted() {
                    notifications.fetch_add(1, Ordering::Relaxed);
                    peer.unpark();
                }
                if expected < ITEMS && active.finish_batch().unwrap() {
                    thread::park();
                }
            }
            done.store(true, Ordering::Release);
            expected
        })
    };

    let start = Instant::now();
    while !done.load(Ordering::Acquire) {
        assert!(start.elapsed() < Duration::from_secs(120), "stalled: a wake-up was lost");
        thread::sleep(Duration::from_millis(10));
    }
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), ITEMS);
    let n = notifications.load(Ordering::Relaxed);
    eprintln!("{ITEMS} items in {:?}, {n} notifications", start.elapsed());
    assert!(n < ITEMS, "at most one notification per batch");
}
