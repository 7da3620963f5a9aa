//! The two SVD backends on the same MPS cuts: faer against the system LAPACK (`zgesdd`).
//!
//! The cuts are real: a brick circuit (RY and RZ on every qubit, CX on even pairs, CX on odd
//! pairs) runs at max bond `chi` in {16, 64, 256} until the middle of the chain is saturated;
//! then the centre moves to the middle pair, its two-site tensor is taken
//! ([`MpsState::two_site_theta`]) and the next CX is applied to it, which gives the
//! `2chi x 2chi` complex matrix the state would split at that gate. Both backends time
//! [`qfl::thin_svd`] on the same matrix: the routine, fallback ladder and checks a state
//! runs on every cut (built outside the timed closure; the SVD's own allocations are timed,
//! as the state pays them).
//!
//! Threads: faer runs with `Parallelism::Sequential`. OpenBLAS is pinned to one thread too
//! (`openblas_set_num_threads(1)`) unless `OPENBLAS_NUM_THREADS` is set, so the comparison
//! is one core against one core.
//!
//! Run: `cargo bench --bench svd` (faer only) or `cargo bench --features lapack --bench svd`
//! (both; needs `scripts/install-lapack.sh`).

mod common;
use common::brick;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use num_complex::Complex64 as C64;
use qfl::{MpsConfig, MpsState, Parallelism, StateBackend, SvdBackend, Truncation};

/// Qubits: enough that both bonds next to the middle can reach 256.
const N: usize = 24;
/// Layers: each raises a bond at most 2x, so 12 layers saturate 256 in the middle.
const LAYERS: usize = 12;

/// The `2chi x 2chi` matrix a CX on the middle pair splits, after the brick circuit at max
/// bond `chi`.
fn middle_cut(chi: usize) -> (Vec<C64>, usize, usize) {
    let (circuit, theta) = brick(N, LAYERS);
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::default().with_max_bond(chi));
    let mut state = MpsState::new(N, config).expect("valid settings");
    state.run(&circuit, &theta, &[]).expect("runs");
    let site = N / 2 - 1;
    state.move_centre(site).expect("in range");
    let (mut m, rows, cols) = state.two_site_theta(site).expect("in range");
    assert_eq!(
        (rows, cols),
        (2 * chi, 2 * chi),
        "the middle cut is not saturated at max bond {chi}"
    );
    // CX with control `site` (s_i, in the row) and target `site + 1` (s_{i+1}, in the
    // column): entries at l + chi_l (s_i + 2 s_{i+1} + 4 r); swap s_{i+1} where s_i = 1.
    let chi_l = rows / 2;
    for r in 0..cols / 2 {
        for l in 0..chi_l {
            m.swap(l + chi_l * (1 + 4 * r), l + chi_l * (3 + 4 * r));
        }
    }
    (m, rows, cols)
}

#[cfg(feature = "lapack")]
fn pin_openblas_threads() {
    unsafe extern "C" {
        fn openblas_set_num_threads(n: std::ffi::c_int);
        fn openblas_get_num_threads() -> std::ffi::c_int;
    }
    if std::env::var_os("OPENBLAS_NUM_THREADS").is_none() {
        // SAFETY: plain setters/getters of OpenBLAS's thread count, called before any
        // LAPACK work starts.
        unsafe { openblas_set_num_threads(1) };
    }
    // SAFETY: as above.
    let n = unsafe { openblas_get_num_threads() };
    eprintln!("OpenBLAS threads: {n}");
}

#[cfg(not(feature = "lapack"))]
fn pin_openblas_threads() {
    eprintln!("built without the `lapack` feature: timing faer only");
}

fn bench_svd(crit: &mut Criterion) {
    pin_openblas_threads();
    let mut group = crit.benchmark_group("svd_cut");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let backends: Vec<SvdBackend> = SvdBackend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    for &chi in &[16usize, 64, 256] {
        let (m, rows, cols) = middle_cut(chi);
        for &backend in &backends {
            let id = BenchmarkId::new(backend.name(), format!("chi{chi}_{rows}x{cols}"));
            group.bench_with_input(id, &m, |b, m| {
                b.iter(|| {
                    qfl::thin_svd(m, rows, cols, backend, Parallelism::Sequential)
                        .expect("a real cut factors")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_svd);
criterion_main!(benches);
