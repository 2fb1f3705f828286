//! Model check of the wake-up protocol with `loom`: every interleaving (and every reordering
//! the C11 memory model allows) of a producer publishing a batch and notifying if asked, and a
//! consumer draining, requesting a signal, re-checking and waiting. A lost wake-up leaves the
//! consumer waiting forever, which loom reports as a deadlock.
//!
//! Run with `libs/rings/loom.sh` (`RUSTFLAGS="--cfg loom" cargo test --test loom`).
#![cfg(loom)]

use loom::sync::{Arc, Notify};
use loom::thread;

use edgeos_rings::{Consumer, Descriptor, Producer, QueueStorage};

const CAPACITY: u32 = 4;

fn model(batches: &'static [u64]) {
    loom::model(move || {
        let storage = Arc::new(QueueStorage::<4>::new());
        let notification = Arc::new(Notify::new());
        let total: u64 = batches.iter().sum();

        let producer = {
            let storage = storage.clone();
            let notification = notification.clone();
            thread::spawn(move || {
                let mut p = Producer::new(storage.view(), CAPACITY).unwrap();
                let mut seq = 0;
                for &n in batches {
                    for _ in 0..n {
                        p.enqueue(Descriptor::new(seq, 0)).unwrap();
                        seq += 1;
                    }
                    if p.signal_wanted() {
                        notification.notify();
                    }
                }
            })
        };

        let mut c = Consumer::new(storage.view(), CAPACITY).unwrap();
        let mut expected = 0;
        loop {
            while let Some(d) = c.dequeue().unwrap() {
                assert_eq!(d.offset, expected);
                expected += 1;
            }
            if expected == total {
                break;
            }
            if c.finish_batch().unwrap() {
                // Waits until notified: a lost wake-up deadlocks here.
                notification.wait();
            }
        }
        producer.join().unwrap();
    });
}

#[test]
fn one_batch_of_two() {
    model(&[2]);
}

#[test]
fn two_batches() {
    model(&[1, 1]);
}

#[test]
fn three_batches() {
    model(&[1, 2, 1]);
}
