//! What the gate's benchmarks share: the median, p99 and p99.9 of timed samples, and a
//! printed row of them beside the median's ratio to a base.

use std::time::Duration;

/// The median, p99 and p99.9 of `samples`.
pub fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99), at(0.999))
}

/// The header of [`row`]s, its first column `width` wide.
pub fn header(width: usize) {
    println!(
        "{:<width$} {:>9} {:>9} {:>9} {:>7}",
        "", "median", "p99", "p99.9", "ratio"
    );
}

/// Prints `name` (padded to `width`), the median, p99 and p99.9 of `samples` in µs, and
/// the median's ratio to `base`.
pub fn row(name: &str, width: usize, samples: Vec<Duration>, base: Duration) {
    let (median, p99, p999) = stats(samples);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<width$} {:>9.2} {:>9.2} {:>9.2} {:>6.3}×",
        us(median),
        us(p99),
        us(p999),
        median.as_secs_f64() / base.as_secs_f64()
    );
}
