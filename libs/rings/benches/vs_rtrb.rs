//! Throughput of a queue pair between two threads against `rtrb`, in one run.
//!
//! Both move `ITEMS` 16-byte descriptors (offset, length) from a producer thread to a consumer
//! thread that checks each one, through ONE single-producer single-consumer queue each (ours:
//! one `Producer`/`Consumer` pair over one `QueueStorage`, i.e. an active queue alone; the
//! free queue that returns buffers in a real link is left out so both sides do the same work),
//! busy-polling on empty/full as rtrb's benchmarks do, without notifications.
//! Prints items per second for each and the ratio.
//!
//! `cargo bench -p edgeos-rings` (ITEMS=... to change the count).
use std::hint::black_box;
use std::thread;
use std::time::Instant;

use edgeos_rings::{Consumer, Descriptor, EnqueueError, Producer, QueueStorage};

const CAPACITY: usize = 512;

fn ours(items: u64) -> f64 {
    let storage: &'static QueueStorage<CAPACITY> = Box::leak(Box::new(QueueStorage::new()));
    let start = Instant::now();
    let consumer = thread::spawn(move || {
        let mut c = Consumer::new(storage.view(), CAPACITY as u32).unwrap();
        let mut expected = 0u64;
        while expected < items {
            match c.dequeue().unwrap() {
                Some(d) => {
                    assert_eq!(d.offset, expected);
                    black_box(d.len);
                    expected += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
    });
    let mut p = Producer::new(storage.view(), CAPACITY as u32).unwrap();
    let mut i = 0u64;
    while i < items {
        match p.enqueue(Descriptor::new(i, 1500)) {
            Ok(()) => i += 1,
            Err(EnqueueError::Full) => std::hint::spin_loop(),
            Err(e) => panic!("{e:?}"),
        }
    }
    consumer.join().unwrap();
    items as f64 / start.elapsed().as_secs_f64()
}

fn rtrb(items: u64) -> f64 {
    let (mut p, mut c) = rtrb::RingBuffer::<(u64, u32)>::new(CAPACITY);
    let start = Instant::now();
    let consumer = thread::spawn(move || {
        let mut expected = 0u64;
        while expected < items {
            match c.pop() {
                Ok((offset, len)) => {
                    assert_eq!(offset, expected);
                    black_box(len);
                    expected += 1;
                }
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    let mut i = 0u64;
    while i < items {
        match p.push((i, 1500)) {
            Ok(()) => i += 1,
            Err(_) => std::hint::spin_loop(),
        }
    }
    consumer.join().unwrap();
    items as f64 / start.elapsed().as_secs_f64()
}

/// One thread, batches of 256 in then 256 out: the per-operation cost without cross-core
/// traffic (and much less sensitive to other load on the machine).
fn ours_one_thread(items: u64) -> f64 {
    let storage: QueueStorage<CAPACITY> = QueueStorage::new();
    let mut p = Producer::new(storage.view(), CAPACITY as u32).unwrap();
    let mut c = Consumer::new(storage.view(), CAPACITY as u32).unwrap();
    let start = Instant::now();
    let mut i = 0u64;
    while i < items {
        for k in 0..256 {
            p.enqueue(Descriptor::new(i + k, 1500)).unwrap();
        }
        for k in 0..256 {
            let d = c.dequeue().unwrap().unwrap();
            assert_eq!(d.offset, i + k);
        }
        i += 256;
    }
    items as f64 / start.elapsed().as_secs_f64()
}

fn rtrb_one_thread(items: u64) -> f64 {
    let (mut p, mut c) = rtrb::RingBuffer::<(u64, u32)>::new(CAPACITY);
    let start = Instant::now();
    let mut i = 0u64;
    while i < items {
        for k in 0..256 {
            p.push((i + k, 1500)).unwrap();
        }
        for k in 0..256 {
            let (offset, _) = c.pop().unwrap();
            assert_eq!(offset, i + k);
        }
        i += 256;
    }
    items as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let items: u64 = std::env::var("ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(5_000_000);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(9);
    // Paired rounds (ours, then rtrb, back to back) so load changes on the machine hit both.
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let x = ours(items);
        let y = rtrb(items);
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    println!("ring throughput, {items} items per run, {rounds} paired rounds, capacity {CAPACITY}, 2 threads");
    println!("edgeos-rings: median {:.1} M items/s (best {:.1})", median(a.clone()) / 1e6, a.iter().cloned().fold(0.0, f64::max) / 1e6);
    println!("rtrb 0.4:     median {:.1} M items/s (best {:.1})", median(b.clone()) / 1e6, b.iter().cloned().fold(0.0, f64::max) / 1e6);
    println!("ratio edgeos-rings / rtrb: median of paired rounds {:.2}", median(ratios));
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let x = ours_one_thread(items * 4);
        let y = rtrb_one_thread(items * 4);
        a.push(x);
        b.push(y);
        ratios.push(x / y);
    }
    println!("one thread, batches of 256 in then out, {} items per run:", items * 4);
    println!("edgeos-rings: median {:.1} M items/s", median(a) / 1e6);
    println!("rtrb 0.4:     median {:.1} M items/s", median(b) / 1e6);
    println!("ratio edgeos-rings / rtrb: median of paired rounds {:.2}", median(ratios));
}
