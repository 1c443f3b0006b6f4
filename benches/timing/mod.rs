//! Timing helpers shared by the benchmarks: medians of alternating rounds,
//! so machine noise hits both sides of a comparison alike.
#![allow(dead_code)]

use std::time::Instant;

pub const ROUNDS: usize = 9;

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Nanoseconds per iteration of `f`, one round of `iters`.
pub fn time(iters: u32, mut f: impl FnMut()) -> impl FnMut() -> f64 {
    move || {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(iters)
    }
}

/// Prints the medians of `direct` and `api`, measured in alternating rounds.
pub fn compare(what: &str, mut direct: impl FnMut() -> f64, mut api: impl FnMut() -> f64) {
    direct();
    api();
    let (mut d, mut a) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        d.push(direct());
        a.push(api());
    }
    let (d, a) = (median(d), median(a));
    println!("{what:<28} direct {d:>9.1} ns   C API {a:>9.1} ns   added {:>+8.1} ns   ratio {:.2}", a - d, a / d);
}
