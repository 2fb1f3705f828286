//! The send schedule of one worker: when each connection's next request is due.
//!
//! Times are nanoseconds on the run's [`Clock`]. In open loop each connection always has exactly
//! one entry, its next intended send time; the worker pops every entry that is due, sends, and
//! pushes the connection's following time, computed from the *intended* time, not from when
//! the send actually happened. So a stall in the generator (or a full socket) never thins the
//! offered load: the requests it delayed are still sent, late, and their latency is counted from
//! when they should have gone out. That is what avoids coordinated omission.
//!
//! A binary heap keeps the entries ordered; with one entry per connection it holds at most a few
//! thousand, so each operation costs a dozen comparisons.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::dist::Arrivals;
use crate::rng::Rng;

/// The run's time base, shared by all workers: nanoseconds since one `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the clock's zero.
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// Pending sends, earliest first.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Schedules `connection` to send at `at`.
    pub fn push(&mut self, at: u64, connection: u32) {
        self.heap.push(Reverse((at, connection)));
    }

    /// The earliest entry due at or before `now`: its intended time and connection.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// When the earliest entry is due.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The open-loop arrival process of one connection.
#[derive(Debug, Clone)]
pub struct ArrivalStream {
    arrivals: Arrivals,
    /// This connection's requests per second.
    rate: f64,
    rng: Rng,
}

impl ArrivalStream {
    /// A stream at `rate` requests per second.
    pub fn new(arrivals: Arrivals, rate: f64, rng: Rng) -> ArrivalStream {
        ArrivalStream {
            arrivals,
            rate,
            rng,
        }
    }

    /// The first intended send time after `start`.
    pub fn first(&mut self, start: u64) -> u64 {
        start + self.arrivals.first_ns(self.rate, &mut self.rng)
    }

    /// The intended send time after the one at `previous`.
    pub fn next(&mut self, previous: u64) -> u64 {
        previous + self.arrivals.gap_ns(self.rate, &mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_only_when_due() {
        let mut schedule = Schedule::new();
        schedule.push(30, 1);
        schedule.push(10, 2);
        schedule.push(20, 3);
        schedule.push(20, 0);
        assert_eq!(schedule.next_due(), Some(10));
        assert_eq!(schedule.pop_due(9), None);
        assert_eq!(schedule.pop_due(25), Some((10, 2)));
        assert_eq!(schedule.pop_due(25), Some((20, 0)));
        assert_eq!(schedule.pop_due(25), Some((20, 3)));
        assert_eq!(schedule.pop_due(25), None);
        assert_eq!(schedule.len(), 1);
        schedule.clear();
        assert!(schedule.is_empty());
    }

    /// Drives the schedule the way an open-loop worker does, but with a clock that jumps in
    /// coarse steps (a late worker), and checks that the offered load is still exact.
    fn simulate(
        arrivals: Arrivals,
        connections: u32,
        rate_per_connection: f64,
        seconds: u64,
        step_ns: u64,
    ) -> Vec<(u64, u32)> {
        let start = 1_000_000;
        let end = start + seconds * 1_000_000_000;
        let mut streams: Vec<ArrivalStream> = (0..connections)
            .map(|c| {
                ArrivalStream::new(arrivals, rate_per_connection, Rng::stream(5, u64::from(c)))
            })
            .collect();
        let mut schedule = Schedule::new();
        for (c, stream) in streams.iter_mut().enumerate() {
            schedule.push(stream.first(start), c as u32);
        }
        let mut sent = Vec::new();
        let mut now = start;
        while now < end + step_ns {
            while let Some((at, c)) = schedule.pop_due(now) {
                if at >= end {
                    continue;
                }
                sent.push((at, c));
                schedule.push(streams[c as usize].next(at), c);
            }
            now += step_ns;
        }
        sent
    }

    #[test]
    fn open_loop_offers_the_target_rate_even_when_the_worker_is_late() {
        // 100 connections at 100 requests/s each for 10 s = 100,000 requests, Poisson: the count
        // has a standard deviation of about 316, so 1.5 % is nearly five of them.
        for step_ns in [1_000, 5_000_000] {
            let sent = simulate(Arrivals::Poisson, 100, 100.0, 10, step_ns);
            let count = sent.len() as f64;
            assert!(
                (count - 100_000.0).abs() < 1_500.0,
                "step {step_ns}: {count}"
            );
            // Intended times come out in order, whatever the step.
            assert!(sent.windows(2).all(|pair| pair[0].0 <= pair[1].0));
        }
        // The same seed gives the same intended times regardless of how late the worker runs.
        assert_eq!(
            simulate(Arrivals::Poisson, 10, 50.0, 2, 1_000),
            simulate(Arrivals::Poisson, 10, 50.0, 2, 7_000_000)
        );
    }

    #[test]
    fn fixed_arrivals_are_evenly_spaced_per_connection() {
        let sent = simulate(Arrivals::Fixed, 4, 1000.0, 1, 10_000);
        assert!((sent.len() as i64 - 4000).abs() <= 4, "{}", sent.len());
        let first_connection: Vec<u64> = sent
            .iter()
            .filter(|(_, c)| *c == 0)
            .map(|(at, _)| *at)
            .collect();
        assert!(first_connection
            .windows(2)
            .all(|pair| pair[1] - pair[0] == 1_000_000));
    }

    #[test]
    fn aggregate_poisson_gaps_are_exponential() {
        // The superposition of independent Poisson streams is Poisson at the summed rate: the
        // aggregate gaps have mean 1/rate and coefficient of variation 1.
        let sent = simulate(Arrivals::Poisson, 50, 200.0, 10, 1_000);
        let gaps: Vec<f64> = sent
            .windows(2)
            .map(|pair| (pair[1].0 - pair[0].0) as f64)
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let variance = gaps.iter().map(|gap| (gap - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 100_000.0).abs() < 2_000.0, "{mean}");
        let cv = variance.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.03, "{cv}");
    }
}
