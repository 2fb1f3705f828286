//! The latency-versus-load plot of a sweep, as a self-contained SVG file written by hand (no
//! fonts, scripts or external references, so it displays anywhere).
//!
//! x: achieved throughput (replies/s, linear); y: latency in microseconds on a log scale, one
//! line per percentile (p50, p90, p99, p99.9). Each point is labelled with its offered rate so
//! a saturated point (achieved below offered) is visible.

use std::fmt::Write;

use crate::stats::{Percentiles, PointResult};

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Picks one percentile out of a summary.
type Pick = fn(&Percentiles) -> f64;

/// The series drawn: label, colour, which percentile.
const SERIES: [(&str, &str, Pick); 4] = [
    ("p50", "#1b9e77", |p| p.p50),
    ("p90", "#7570b3", |p| p.p90),
    ("p99", "#d95f02", |p| p.p99),
    ("p99.9", "#e7298a", |p| p.p99_9),
];

/// Escapes text for an SVG text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" step for about `target` ticks over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let nice = if residual < 1.5 {
        1.0
    } else if residual < 3.5 {
        2.0
    } else if residual < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Formats a tick value compactly (12k, 1.5M).
fn tick_label(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Renders the sweep's points as an SVG document.
pub fn render_svg(points: &[PointResult], title: &str) -> String {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    let summaries: Vec<(f64, Option<f64>, Percentiles)> = points
        .iter()
        .map(|point| {
            (
                point.throughput_rps(),
                point.offered_rps,
                Percentiles::of(&point.stats.all),
            )
        })
        .collect();
    let drawable: Vec<&(f64, Option<f64>, Percentiles)> =
        summaries.iter().filter(|(_, _, p)| p.count > 0).collect();
    if drawable.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no replies were measured</text>"#,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        svg.push_str("</svg>\n");
        return svg;
    }

    // Axes ranges.
    let x_max_data = summaries
        .iter()
        .map(|(x, offered, _)| x.max(offered.unwrap_or(0.0)))
        .fold(0.0, f64::max)
        .max(1.0);
    let x_step = nice_step(x_max_data, 6.0);
    let x_max = (x_max_data / x_step).ceil() * x_step;
    let values = drawable
        .iter()
        .flat_map(|(_, _, p)| SERIES.iter().map(move |(_, _, pick)| pick(p)))
        .filter(|v| *v > 0.0);
    let (low, high) = values.fold((f64::MAX, 0.0f64), |(low, high), v| {
        (low.min(v), high.max(v))
    });
    let y_min_decade = low.max(0.1).log10().floor();
    let y_max_decade = high.max(low * 10.0).log10().ceil().max(y_min_decade + 1.0);
    let x_of = |x: f64| LEFT + x / x_max * plot_width;
    let y_of = |y: f64| {
        let fraction = (y.max(0.1).log10() - y_min_decade) / (y_max_decade - y_min_decade);
        TOP + plot_height * (1.0 - fraction)
    };

    // Grid and ticks.
    let mut x = 0.0;
    while x <= x_max + x_step / 2.0 {
        let px = x_of(x);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e4e4e4"/>"##,
            TOP + plot_height
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_height + 18.0,
            tick_label(x)
        );
        x += x_step;
    }
    let mut decade = y_min_decade;
    while decade <= y_max_decade + 0.5 {
        let value = 10f64.powf(decade);
        for multiple in [1.0, 2.0, 5.0] {
            let tick = value * multiple;
            if tick.log10() > y_max_decade + 1e-9 {
                break;
            }
            let py = y_of(tick);
            let colour = if multiple == 1.0 {
                "#d0d0d0"
            } else {
                "#f0f0f0"
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="{colour}"/>"#,
                LEFT + plot_width
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                py + 4.0,
                tick_label(tick)
            );
        }
        decade += 1.0;
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">achieved throughput (replies/s); labels: offered rate</text>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">latency from intended send (µs, log scale)</text>"#,
        TOP + plot_height / 2.0
    );

    // Series.
    for (index, (label, colour, pick)) in SERIES.iter().enumerate() {
        let coordinates: Vec<String> = drawable
            .iter()
            .map(|(x, _, p)| format!("{:.1},{:.1}", x_of(*x), y_of(pick(p))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            coordinates.join(" ")
        );
        for (x, _, p) in &drawable {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                x_of(*x),
                y_of(pick(p))
            );
        }
        let legend_y = TOP + 14.0 + index as f64 * 20.0;
        let legend_x = LEFT + plot_width + 16.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{colour}" stroke-width="2"/>"#,
            legend_x + 24.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            legend_x + 30.0,
            legend_y + 4.0
        );
    }
    // Offered-rate labels under the p50 points.
    for (x, offered, p) in &drawable {
        if let Some(offered) = offered {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#555">{}</text>"##,
                x_of(*x),
                y_of(p.p50) + 16.0,
                tick_label(*offered)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Op;
    use crate::stats::Stats;

    fn point(offered: f64, achieved_replies: u64, latency_us: u64) -> PointResult {
        let mut stats = Stats::default();
        for i in 0..achieved_replies {
            stats.record_latency(Op::Get, (latency_us + i % 50) * 1000);
        }
        stats.completed = achieved_replies;
        PointResult {
            offered_rps: Some(offered),
            duration_s: 1.0,
            stats,
            instrument: Default::default(),
        }
    }

    #[test]
    fn draws_every_series_and_point() {
        let points = [
            point(1000.0, 1000, 50),
            point(2000.0, 2000, 60),
            point(4000.0, 3100, 4000),
        ];
        let svg = render_svg(&points, "memcached <4 ports>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 12);
        assert!(svg.contains("memcached &lt;4 ports&gt;"));
        assert!(svg.contains(">4k</text>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn an_empty_sweep_still_makes_a_valid_file() {
        let svg = render_svg(&[], "nothing");
        assert!(svg.contains("no replies were measured") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10_000.0, 5.0), 2000.0);
        assert_eq!(nice_step(7.0, 7.0), 1.0);
        assert_eq!(tick_label(12_000.0), "12k");
        assert_eq!(tick_label(1_500_000.0), "1.5M");
        assert_eq!(tick_label(0.5), "0.5");
    }
}
