//! Figures the benchmarks share.

/// The median of a non-empty list (the upper middle of an even one).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
