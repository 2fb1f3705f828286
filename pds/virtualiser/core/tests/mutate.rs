//! Smoke test of the frame parsers with plain `cargo test`: valid frames of every kind, each
//! mutated many times (bit flips, byte overwrites with interesting values, truncation,
//! extension), run through `fuzzing::exercise`, which panics if a property breaks.

use edgeos_netvirt_core::fuzzing::{exercise, sample_table};
use edgeos_netvirt_core::parse::internet_checksum;

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn ipv4_frame(protocol: u8, transport: &[u8]) -> Vec<u8> {
    let mut f = vec![0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + transport.len();
    let mut ip = [0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0, 0, 64, protocol, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15];
    let c = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(transport);
    f
}

fn seeds() -> Vec<Vec<u8>> {
    let mut udp = vec![0x9c, 0x40, 0x1b, 0x59, 0, 12, 0, 0];
    udp.extend_from_slice(b"ping");
    let tcp = vec![0x9c, 0x40, 0x1b, 0x59, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 2, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 2, 15]);
    let mut big = ipv4_frame(17, &[0x9c, 0x40, 0x1b, 0x59, 0x05, 0xc8, 0, 0]);
    big.resize(14 + 20 + 1480, 0x5a);
    vec![ipv4_frame(17, &udp), ipv4_frame(6, &tcp), arp, big, ipv4_frame(1, &[8, 0, 0, 0])]
}

#[test]
fn mutated_frames_keep_the_properties() {
    let table = sample_table();
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let interesting = [0x00, 0x01, 0x05, 0x0f, 0x40, 0x45, 0x4f, 0x7f, 0x80, 0xf0, 0xff];
    let mut runs = 0;
    for seed in seeds() {
        exercise(&seed, &table);
        for _ in 0..20_000 {
            let mut f = seed.clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(5) {
                    0 if !f.is_empty() => {
                        let i = rng.below(f.len());
                        f[i] ^= 1 << rng.below(8);
                    }
                    1 if !f.is_empty() => {
                        let i = rng.below(f.len());
                        f[i] = interesting[rng.below(interesting.len())];
                    }
                    2 => f.truncate(rng.below(f.len() + 1)),
                    3 => f.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                    _ => {
                        // Header fields that carry lengths: 16 (IPv4 total), 14 (IHL), 38 (UDP
                        // length), 46 (TCP data offset).
                        let i = [14, 16, 17, 38, 39, 46][rng.below(6)];
                        if i < f.len() {
                            f[i] = rng.next() as u8;
                        }
                    }
                }
            }
            exercise(&f, &table);
            runs += 1;
        }
    }
    // Random bytes of every length up to past a jumbo frame.
    for len in (0..1600).chain([9000]) {
        let f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&f, &table);
        runs += 1;
    }
    assert!(runs > 100_000);
}
