//! The random distributions of a workload: key and value sizes, inter-arrival gaps, key
//! popularity. Every sampler is an inverse CDF applied to one uniform draw, so it is exact,
//! cheap, and reproducible from the seed.
//!
//! The Facebook ETC distributions are the ones mutilate ships (its `--keysize=fb_key`,
//! `--valuesize=fb_value` and `--iadist=fb_ia`), fitted by Atikoglu et al., "Workload Analysis
//! of a Large-Scale Key-Value Store" (SIGMETRICS 2012), to Facebook's ETC memcached pool:
//!
//! | what            | distribution                 | location | scale    | shape    |
//! |-----------------|------------------------------|----------|----------|----------|
//! | key size (B)    | generalized extreme value    | 30.7984  | 8.20449  | 0.078688 |
//! | value size (B)  | generalized Pareto           | 0        | 214.476  | 0.348238 |
//! | inter-arrival (µs) | generalized Pareto        | 0        | 16.0292  | 0.154971 |

use std::fmt;

use crate::rng::Rng;

/// Facebook ETC key size: GEV(30.7984, 8.20449, 0.078688) bytes.
pub const FB_KEY: SizeDist = SizeDist::Gev {
    location: 30.7984,
    scale: 8.20449,
    shape: 0.078688,
};
/// Facebook ETC value size: generalized Pareto (0, 214.476, 0.348238) bytes.
pub const FB_VALUE: SizeDist = SizeDist::GeneralizedPareto {
    location: 0.0,
    scale: 214.476,
    shape: 0.348238,
};
/// The shape of Facebook ETC inter-arrival gaps, generalized Pareto (0, 16.0292 µs, 0.154971).
pub const FB_IA_SHAPE: f64 = 0.154971;
/// The scale of Facebook ETC inter-arrival gaps in microseconds (mean 18.97 µs, about 52.7k
/// requests/s on one connection); [`Arrivals::FacebookEtc`] rescales it to the target rate.
pub const FB_IA_SCALE_US: f64 = 16.0292;

/// A distribution of sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeDist {
    /// Always this size.
    Fixed(u32),
    /// Uniform over the integers `low..=high`.
    Uniform { low: u32, high: u32 },
    /// Generalized extreme value distribution.
    Gev {
        location: f64,
        scale: f64,
        shape: f64,
    },
    /// Generalized Pareto distribution.
    GeneralizedPareto {
        location: f64,
        scale: f64,
        shape: f64,
    },
}

impl SizeDist {
    /// Parses `30`, `fixed:30`, `uniform:10,40` (also `uniform(10,40)`), `fb-key`, `fb-value`,
    /// `gev:LOCATION,SCALE,SHAPE` or `gpareto:LOCATION,SCALE,SHAPE`.
    pub fn parse(text: &str) -> Result<SizeDist, String> {
        let (name, args) = split_spec(text);
        let numbers = |count: usize| -> Result<Vec<f64>, String> {
            let values: Vec<f64> = args
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| {
                    part.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{part}` in `{text}` is not a number"))
                })
                .collect::<Result<_, _>>()?;
            if values.len() != count {
                return Err(format!(
                    "`{text}`: `{name}` takes {count} numbers, got {}",
                    values.len()
                ));
            }
            if values.iter().any(|value| !value.is_finite()) {
                return Err(format!("`{text}`: every parameter must be finite"));
            }
            Ok(values)
        };
        let whole = |value: f64| -> Result<u32, String> {
            if value < 1.0 || value.fract() != 0.0 || value > f64::from(u32::MAX) {
                return Err(format!(
                    "`{text}`: sizes are whole numbers of bytes, at least 1 (got {value})"
                ));
            }
            Ok(value as u32)
        };
        let dist = match name {
            "fixed" => SizeDist::Fixed(whole(numbers(1)?[0])?),
            "uniform" => {
                let values = numbers(2)?;
                let (low, high) = (whole(values[0])?, whole(values[1])?);
                if low > high {
                    return Err(format!("`{text}`: the low bound {low} is above the high bound {high}"));
                }
                SizeDist::Uniform { low, high }
            }
            "fb-key" | "fb_key" | "etc-key" if args.is_empty() => FB_KEY,
            "fb-value" | "fb_value" | "etc-value" if args.is_empty() => FB_VALUE,
            "gev" | "gpareto" => {
                let values = numbers(3)?;
                if values[1] <= 0.0 {
                    return Err(format!("`{text}`: the scale must be positive"));
                }
                if name == "gev" {
                    SizeDist::Gev { location: values[0], scale: values[1], shape: values[2] }
                } else {
                    SizeDist::GeneralizedPareto { location: values[0], scale: values[1], shape: values[2] }
                }
            }
            _ if args.is_empty() && name.parse::<f64>().is_ok() => SizeDist::Fixed(whole(name.parse::<f64>().unwrap_or(0.0))?),
            _ => {
                return Err(format!(
                    "unknown size distribution `{text}`: use N, fixed:N, uniform:LOW,HIGH, fb-key, fb-value, \
                     gev:LOCATION,SCALE,SHAPE or gpareto:LOCATION,SCALE,SHAPE"
                ))
            }
        };
        Ok(dist)
    }

    /// The value at cumulative probability `u` in (0, 1) (the inverse CDF), before rounding.
    pub fn quantile(&self, u: f64) -> f64 {
        match *self {
            SizeDist::Fixed(size) => f64::from(size),
            SizeDist::Uniform { low, high } => {
                let span = f64::from(high - low) + 1.0;
                (f64::from(low) + (u * span).floor()).min(f64::from(high))
            }
            SizeDist::Gev {
                location,
                scale,
                shape,
            } => {
                // F(x) = exp(-(1 + shape z)^(-1/shape)), z = (x - location) / scale.
                let minus_log = -u.ln();
                if shape == 0.0 {
                    location - scale * minus_log.ln()
                } else {
                    location + scale * (minus_log.powf(-shape) - 1.0) / shape
                }
            }
            SizeDist::GeneralizedPareto {
                location,
                scale,
                shape,
            } => gpareto_quantile(location, scale, shape, u),
        }
    }

    /// The mean, where it has a simple closed form (used by tests and the report).
    pub fn mean(&self) -> Option<f64> {
        match *self {
            SizeDist::Fixed(size) => Some(f64::from(size)),
            SizeDist::Uniform { low, high } => Some((f64::from(low) + f64::from(high)) / 2.0),
            SizeDist::Gev { .. } => None,
            SizeDist::GeneralizedPareto {
                location,
                scale,
                shape,
            } => (shape < 1.0).then(|| location + scale / (1.0 - shape)),
        }
    }

    /// A size in `min..=max` bytes for the uniform draw `u`: the quantile rounded to the nearest
    /// byte, then clamped (heavy-tailed distributions need a cap; memcached limits keys to 250
    /// bytes and items to 1 MiB).
    pub fn size_at(&self, u: f64, min: usize, max: usize) -> usize {
        let value = self.quantile(u).round();
        if value.is_nan() || value <= min as f64 {
            min
        } else if value >= max as f64 {
            max
        } else {
            value as usize
        }
    }

    /// A random size in `min..=max`, see [`SizeDist::size_at`].
    pub fn sample(&self, rng: &mut Rng, min: usize, max: usize) -> usize {
        match *self {
            SizeDist::Fixed(size) => (size as usize).clamp(min, max),
            _ => self.size_at(rng.unit(), min, max),
        }
    }

    /// The largest size this distribution can produce, if bounded.
    pub fn upper_bound(&self) -> Option<u32> {
        match *self {
            SizeDist::Fixed(size) => Some(size),
            SizeDist::Uniform { high, .. } => Some(high),
            _ => None,
        }
    }
}

impl fmt::Display for SizeDist {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeDist::Fixed(size) => write!(formatter, "fixed:{size}"),
            SizeDist::Uniform { low, high } => write!(formatter, "uniform:{low},{high}"),
            dist if dist == FB_KEY => write!(formatter, "fb-key"),
            dist if dist == FB_VALUE => write!(formatter, "fb-value"),
            SizeDist::Gev {
                location,
                scale,
                shape,
            } => write!(formatter, "gev:{location},{scale},{shape}"),
            SizeDist::GeneralizedPareto {
                location,
                scale,
                shape,
            } => {
                write!(formatter, "gpareto:{location},{scale},{shape}")
            }
        }
    }
}

/// The generalized Pareto inverse CDF: F(x) = 1 - (1 + shape z)^(-1/shape), z = (x - location) / scale.
fn gpareto_quantile(location: f64, scale: f64, shape: f64, u: f64) -> f64 {
    let tail = 1.0 - u;
    if shape == 0.0 {
        location - scale * tail.ln()
    } else {
        location + scale * (tail.powf(-shape) - 1.0) / shape
    }
}

/// How open-loop requests are spaced on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential gaps: a Poisson process (the superposition over connections is Poisson too).
    Poisson,
    /// Equal gaps (each connection starts at a random phase so connections do not align).
    Fixed,
    /// Facebook ETC gaps: generalized Pareto with shape 0.154971, scaled to the target rate.
    FacebookEtc,
}

impl Arrivals {
    /// Parses `poisson`, `fixed` or `fb-ia`.
    pub fn parse(text: &str) -> Result<Arrivals, String> {
        match text {
            "poisson" | "exponential" => Ok(Arrivals::Poisson),
            "fixed" | "uniform" => Ok(Arrivals::Fixed),
            "fb-ia" | "fb_ia" | "etc" => Ok(Arrivals::FacebookEtc),
            _ => Err(format!(
                "unknown arrival process `{text}`: use poisson, fixed or fb-ia"
            )),
        }
    }

    /// The name `parse` accepts.
    pub fn name(&self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Fixed => "fixed",
            Arrivals::FacebookEtc => "fb-ia",
        }
    }

    /// The gap in nanoseconds before the next request, for `rate` requests per second, from the
    /// uniform draw `u`. The mean gap is 1/rate for every process.
    pub fn gap_ns_at(&self, rate: f64, u: f64) -> f64 {
        let mean_ns = 1e9 / rate;
        match self {
            Arrivals::Poisson => -mean_ns * (1.0 - u).ln(),
            Arrivals::Fixed => mean_ns,
            // Mean of GPareto(0, scale, shape) is scale / (1 - shape); keep the shape, pick the scale.
            Arrivals::FacebookEtc => {
                gpareto_quantile(0.0, mean_ns * (1.0 - FB_IA_SHAPE), FB_IA_SHAPE, u)
            }
        }
    }

    /// A random gap in whole nanoseconds (at least 1).
    pub fn gap_ns(&self, rate: f64, rng: &mut Rng) -> u64 {
        let gap = match self {
            Arrivals::Fixed => self.gap_ns_at(rate, 0.5),
            _ => self.gap_ns_at(rate, rng.unit()),
        };
        (gap.round() as u64).max(1)
    }

    /// When a connection's first request is due, after `start`: a random point within the first
    /// mean gap for fixed spacing (so connections do not fire in lockstep), a full random gap
    /// otherwise (memoryless for Poisson).
    pub fn first_ns(&self, rate: f64, rng: &mut Rng) -> u64 {
        match self {
            Arrivals::Fixed => (rng.unit() * 1e9 / rate) as u64,
            _ => self.gap_ns(rate, rng),
        }
    }
}

/// How keys are picked from the key space.
#[derive(Debug, Clone, PartialEq)]
pub enum Popularity {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `s`: key of rank k (from 1) has probability proportional to 1/k^s.
    Zipf(f64),
}

impl Popularity {
    /// Parses `uniform`, `zipf` (s = 0.99, YCSB's default) or `zipf:S` (also `zipf(S)`).
    pub fn parse(text: &str) -> Result<Popularity, String> {
        let (name, args) = split_spec(text);
        match name {
            "uniform" if args.is_empty() => Ok(Popularity::Uniform),
            "zipf" if args.is_empty() => Ok(Popularity::Zipf(0.99)),
            "zipf" => {
                let s: f64 = args
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{text}`: the Zipf exponent `{args}` is not a number"))?;
                if !(s.is_finite() && s >= 0.0) {
                    return Err(format!(
                        "`{text}`: the Zipf exponent must be a finite number >= 0"
                    ));
                }
                Ok(Popularity::Zipf(s))
            }
            _ => Err(format!(
                "unknown key popularity `{text}`: use uniform, zipf or zipf:S"
            )),
        }
    }
}

impl fmt::Display for Popularity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Popularity::Uniform => write!(formatter, "uniform"),
            Popularity::Zipf(s) => write!(formatter, "zipf:{s}"),
        }
    }
}

/// Draws key indices in `0..keys` according to a [`Popularity`]. Key index i has rank i + 1.
#[derive(Debug, Clone)]
pub struct KeyPicker {
    keys: u64,
    /// For Zipf: the cumulative probability of ranks 1..=k at index k - 1; empty for uniform.
    cumulative: Vec<f64>,
}

impl KeyPicker {
    /// A picker over `keys` keys (at least 1).
    pub fn new(popularity: &Popularity, keys: u64) -> KeyPicker {
        let cumulative = match popularity {
            Popularity::Uniform => Vec::new(),
            Popularity::Zipf(s) => {
                let weights: Vec<f64> = (1..=keys).map(|rank| (rank as f64).powf(-s)).collect();
                let total: f64 = weights.iter().sum();
                let mut running = 0.0;
                let mut cumulative: Vec<f64> = weights
                    .iter()
                    .map(|weight| {
                        running += weight;
                        running / total
                    })
                    .collect();
                if let Some(last) = cumulative.last_mut() {
                    *last = 1.0;
                }
                cumulative
            }
        };
        KeyPicker { keys, cumulative }
    }

    /// The key index for the uniform draw `u` in (0, 1).
    pub fn pick_at(&self, u: f64) -> u64 {
        if self.cumulative.is_empty() {
            ((u * self.keys as f64) as u64).min(self.keys - 1)
        } else {
            (self.cumulative.partition_point(|&c| c < u) as u64).min(self.keys - 1)
        }
    }

    /// A random key index.
    pub fn pick(&self, rng: &mut Rng) -> u64 {
        if self.cumulative.is_empty() {
            rng.below(self.keys)
        } else {
            self.pick_at(rng.unit())
        }
    }
}

/// Splits `name:args` or `name(args)` into its name and argument text.
fn split_spec(text: &str) -> (&str, &str) {
    let text = text.trim();
    if let Some((name, rest)) = text.split_once('(') {
        return (name.trim(), rest.strip_suffix(')').unwrap_or(rest));
    }
    match text.split_once(':') {
        Some((name, args)) => (name.trim(), args),
        None => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empirical quantile at p of sorted samples.
    fn empirical(sorted: &[f64], p: f64) -> f64 {
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
    }

    fn samples(n: usize, seed: u64, mut draw: impl FnMut(&mut Rng) -> f64) -> Vec<f64> {
        let mut rng = Rng::seeded(seed);
        let mut values: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    #[test]
    fn parses_every_spelling() {
        assert_eq!(SizeDist::parse("30"), Ok(SizeDist::Fixed(30)));
        assert_eq!(SizeDist::parse("fixed:200"), Ok(SizeDist::Fixed(200)));
        assert_eq!(
            SizeDist::parse("uniform:10,40"),
            Ok(SizeDist::Uniform { low: 10, high: 40 })
        );
        assert_eq!(
            SizeDist::parse("uniform(10, 40)"),
            Ok(SizeDist::Uniform { low: 10, high: 40 })
        );
        assert_eq!(SizeDist::parse("fb-key"), Ok(FB_KEY));
        assert_eq!(SizeDist::parse("fb_value"), Ok(FB_VALUE));
        assert_eq!(
            SizeDist::parse("gpareto:0,214.476,0.348238"),
            Ok(SizeDist::GeneralizedPareto {
                location: 0.0,
                scale: 214.476,
                shape: 0.348238
            })
        );
        assert_eq!(SizeDist::parse(&FB_KEY.to_string()), Ok(FB_KEY));
        assert_eq!(
            SizeDist::parse(&SizeDist::Uniform { low: 3, high: 9 }.to_string()),
            Ok(SizeDist::Uniform { low: 3, high: 9 })
        );
        assert_eq!(Popularity::parse("zipf:1.2"), Ok(Popularity::Zipf(1.2)));
        assert_eq!(Popularity::parse("zipf"), Ok(Popularity::Zipf(0.99)));
        assert_eq!(Arrivals::parse("fb-ia"), Ok(Arrivals::FacebookEtc));
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        let error = SizeDist::parse("uniform:40,10").unwrap_err();
        assert!(
            error.contains("low bound 40 is above the high bound 10"),
            "{error}"
        );
        assert!(SizeDist::parse("uniform:10")
            .unwrap_err()
            .contains("takes 2 numbers"));
        assert!(SizeDist::parse("0").unwrap_err().contains("at least 1"));
        assert!(SizeDist::parse("2.5")
            .unwrap_err()
            .contains("whole numbers"));
        assert!(SizeDist::parse("gev:1,-2,0")
            .unwrap_err()
            .contains("scale must be positive"));
        assert!(SizeDist::parse("lognormal")
            .unwrap_err()
            .contains("unknown size distribution"));
        assert!(Popularity::parse("zipf:-1").is_err());
        assert!(Arrivals::parse("bursty").is_err());
    }

    #[test]
    fn uniform_sizes_cover_the_range_evenly() {
        let dist = SizeDist::Uniform { low: 10, high: 19 };
        let mut rng = Rng::seeded(11);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let size = dist.sample(&mut rng, 1, 250);
            counts[size - 10] += 1;
        }
        for count in counts {
            assert!((f64::from(count) - 10_000.0).abs() < 400.0, "{counts:?}");
        }
    }

    #[test]
    fn gev_key_sizes_match_the_analytic_quantiles() {
        let values = samples(200_000, 5, |rng| FB_KEY.quantile(rng.unit()));
        for p in [0.1f64, 0.25, 0.5, 0.75, 0.9, 0.99] {
            // Closed form of the GEV quantile, written independently of `quantile`.
            let (mu, sigma, xi) = (30.7984_f64, 8.20449_f64, 0.078688_f64);
            let analytic = mu + sigma / xi * ((-p.ln()).powf(-xi) - 1.0);
            let measured = empirical(&values, p);
            assert!(
                (measured - analytic).abs() < 0.02 * analytic,
                "p{p}: {measured} vs {analytic}"
            );
        }
        // The median of the ETC key size is about 33.9 bytes.
        assert!(
            (FB_KEY.quantile(0.5) - 33.86).abs() < 0.05,
            "{}",
            FB_KEY.quantile(0.5)
        );
    }

    #[test]
    fn gpareto_value_sizes_match_mean_and_quantiles() {
        let values = samples(400_000, 6, |rng| FB_VALUE.quantile(rng.unit()));
        let analytic_mean = 214.476 / (1.0 - 0.348238);
        assert_eq!(FB_VALUE.mean(), Some(analytic_mean));
        // The tail is heavy (finite variance only for shape < 0.5), so compare the mean loosely
        // and the quantiles tightly.
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            (mean - analytic_mean).abs() < 0.03 * analytic_mean,
            "{mean} vs {analytic_mean}"
        );
        for p in [0.25f64, 0.5, 0.9, 0.99] {
            let analytic = 214.476 / 0.348238 * ((1.0 - p).powf(-0.348238) - 1.0);
            let measured = empirical(&values, p);
            assert!(
                (measured - analytic).abs() < 0.03 * analytic,
                "p{p}: {measured} vs {analytic}"
            );
        }
    }

    #[test]
    fn sizes_are_rounded_and_clamped() {
        assert_eq!(FB_VALUE.size_at(1e-12, 1, 1000), 1);
        assert_eq!(FB_VALUE.size_at(1.0 - 1e-15, 1, 1000), 1000);
        assert_eq!(
            SizeDist::Fixed(300).sample(&mut Rng::seeded(1), 1, 250),
            250
        );
        assert_eq!(FB_KEY.size_at(0.5, 1, 250), 34);
    }

    #[test]
    fn every_arrival_process_has_the_requested_mean_rate() {
        for arrivals in [Arrivals::Poisson, Arrivals::Fixed, Arrivals::FacebookEtc] {
            let rate = 2000.0;
            let mut rng = Rng::seeded(9);
            let n = 200_000;
            let total: u64 = (0..n).map(|_| arrivals.gap_ns(rate, &mut rng)).sum();
            let mean_ns = total as f64 / n as f64;
            assert!(
                (mean_ns - 500_000.0).abs() < 0.01 * 500_000.0,
                "{arrivals:?}: mean gap {mean_ns}"
            );
        }
    }

    #[test]
    fn poisson_gaps_are_exponential() {
        // P(gap > t) = exp(-rate t): check at one, two and three mean gaps.
        let values = samples(200_000, 12, |rng| {
            Arrivals::Poisson.gap_ns_at(1000.0, rng.unit())
        });
        for multiple in [1.0, 2.0, 3.0] {
            let threshold = multiple * 1e6;
            let above =
                values.iter().filter(|&&gap| gap > threshold).count() as f64 / values.len() as f64;
            let analytic = (-multiple).exp();
            assert!(
                (above - analytic).abs() < 0.005,
                "{multiple}: {above} vs {analytic}"
            );
        }
    }

    #[test]
    fn fb_ia_at_its_native_rate_is_mutilates_distribution() {
        // At the rate matching its native mean (1 / 18.97 µs), the rescaled gap distribution is
        // GPareto(0, 16.0292 µs, 0.154971) exactly.
        let native_rate = 1e6 / (FB_IA_SCALE_US / (1.0 - FB_IA_SHAPE));
        for u in [0.1, 0.5, 0.9, 0.999] {
            let ours = Arrivals::FacebookEtc.gap_ns_at(native_rate, u) / 1000.0;
            let theirs = FB_IA_SCALE_US / FB_IA_SHAPE * ((1.0 - u).powf(-FB_IA_SHAPE) - 1.0);
            assert!(
                (ours - theirs).abs() < 1e-9 * theirs.max(1.0),
                "{ours} vs {theirs}"
            );
        }
    }

    #[test]
    fn zipf_frequencies_follow_the_power_law() {
        let keys = 1000;
        let s = 0.99;
        let picker = KeyPicker::new(&Popularity::Zipf(s), keys);
        let harmonic: f64 = (1..=keys).map(|k| (k as f64).powf(-s)).sum();
        let mut rng = Rng::seeded(4);
        let n = 500_000;
        let mut counts = vec![0u32; keys as usize];
        for _ in 0..n {
            counts[picker.pick(&mut rng) as usize] += 1;
        }
        for rank in [1u64, 2, 10, 100] {
            let expected = (rank as f64).powf(-s) / harmonic;
            let measured = f64::from(counts[rank as usize - 1]) / f64::from(n);
            assert!(
                (measured - expected).abs() < 0.05 * expected + 0.0003,
                "rank {rank}: {measured} vs {expected}"
            );
        }
    }

    #[test]
    fn uniform_popularity_covers_all_keys() {
        let picker = KeyPicker::new(&Popularity::Uniform, 50);
        let mut rng = Rng::seeded(2);
        let mut seen = [0u32; 50];
        for _ in 0..50_000 {
            seen[picker.pick(&mut rng) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&count| (800..1200).contains(&count)),
            "{seen:?}"
        );
        assert_eq!(picker.pick_at(0.999_999_9), 49);
        let zipf = KeyPicker::new(&Popularity::Zipf(1.0), 50);
        assert_eq!(zipf.pick_at(1e-9), 0);
        assert_eq!(zipf.pick_at(0.999_999_999), 49);
    }
}
