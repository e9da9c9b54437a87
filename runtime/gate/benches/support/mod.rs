//! What the gate's benchmarks share: the median and p99 of timed samples, and a printed
//! row of them beside the median's ratio to a base.

use std::time::Duration;

/// The median and p99 of `samples`.
pub fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99))
}

/// Prints `name` (padded to `width`), the median and p99 of `samples` in µs, and the
/// median's ratio to `base`.
pub fn row(name: &str, width: usize, samples: Vec<Duration>, base: Duration) {
    let (median, p99) = stats(samples);
    println!(
        "{name:<width$} {:>9.2} {:>9.2} {:>6.3}×",
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        median.as_secs_f64() / base.as_secs_f64()
    );
}
