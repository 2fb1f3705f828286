//! Conversions between microseconds (the description's unit) and counter ticks.

/// Microseconds to counter ticks at `freq` Hz, rounded up so a budget is never shortened to zero.
pub fn us_to_ticks(us: u64, freq: u64) -> u64 {
    let t = (us as u128 * freq as u128).div_ceil(1_000_000);
    t.min(u64::MAX as u128) as u64
}

/// Counter ticks to microseconds at `freq` Hz, rounded down.
pub fn ticks_to_us(ticks: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    ((ticks as u128 * 1_000_000) / freq as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(us_to_ticks(1000, 62_500_000), 62_500);
        assert_eq!(us_to_ticks(1, 1_000_000_000), 1000);
        assert_eq!(us_to_ticks(1, 3), 1); // rounded up, never 0
        assert_eq!(ticks_to_us(62_500, 62_500_000), 1000);
        assert_eq!(us_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }
}
