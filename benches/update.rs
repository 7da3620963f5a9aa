//! One two-site update at a saturated cut: the split methods and thread counts side by side.
//!
//! A brick circuit (RY and RZ on every qubit, CX on even pairs, CX on odd pairs) runs on 24
//! qubits at max bond `chi` in {64, 256} until the middle of the chain is saturated, once per
//! configuration, outside the timed closure. Each iteration clones that state (outside the
//! timed closure, `iter_batched`) and applies one CX to the middle pair: the centre move, the
//! contraction to `theta`, the gate, the split of the `2chi x 2chi` matrix by the state's
//! [`SplitMethod`], the truncation back to `chi` and the new site tensors. The states of the
//! two methods differ only by rounding, so both split the same cut up to round-off.
//!
//! The group `zgemm` times a dense complex matrix product of the cut's size (`512 x 512` times
//! `512 x 512`, `8 * 512^3` real flops) by faer on one and two threads: the rate the machine
//! reaches on the kernel every update is built from, against which the update's own flop
//! rate is read (`docs/performance.md`).
//!
//! Run: `cargo bench --bench update`.

mod common;
use common::brick;

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use qfl::{Gate, MpsConfig, MpsState, Parallelism, SplitMethod, StateBackend, Truncation};

const N: usize = 24;
const LAYERS: usize = 12;

fn bench_update(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("two_site_update");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let (circuit, theta) = brick(N, LAYERS);
    let cx = Gate::Cx.matrix(&[], &[]).expect("fixed gate");
    let site = N / 2 - 1;
    for &chi in &[64usize, 256] {
        for (split, split_name) in [(SplitMethod::Gram, "gram"), (SplitMethod::Svd, "svd")] {
            for (par, par_name) in [
                (Parallelism::Sequential, "1t"),
                (Parallelism::Rayon(2), "2t"),
            ] {
                let config = MpsConfig::default()
                    .with_update(qfl::UpdateScheme::Centre)
                    .with_truncation(Truncation::default().with_max_bond(chi))
                    .with_split(split)
                    .with_parallelism(par);
                let mut state = MpsState::new(N, config).expect("valid settings");
                state.run(&circuit, &theta, &[]).expect("runs");
                state.move_centre(site).expect("in range");
                assert_eq!(state.bond_dimensions()[site], chi, "middle cut saturated");
                let id = BenchmarkId::new(format!("{split_name}_{par_name}"), chi);
                group.bench_with_input(id, &state, |b, state| {
                    b.iter_batched(
                        || state.clone(),
                        |mut s| {
                            s.apply_matrix(&cx, &[site, site + 1]).expect("applies");
                            s
                        },
                        BatchSize::LargeInput,
                    )
                });
            }
        }
    }
    group.finish();
}

fn bench_zgemm(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("zgemm");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 512;
    let entry = |i: usize, j: usize| {
        let k = (i * 7919 + j * 104_729) % 1000;
        num_complex::Complex64::new(
            k as f64 / 1000.0 - 0.5,
            ((k * 31) % 1000) as f64 / 1000.0 - 0.5,
        )
    };
    let a = faer::Mat::from_fn(n, n, entry);
    let b = faer::Mat::from_fn(n, n, |i, j| entry(j, i));
    for (par, name) in [(faer::Par::Seq, "1t"), (faer::Par::rayon(2), "2t")] {
        let mut c = faer::Mat::<num_complex::Complex64>::zeros(n, n);
        group.bench_function(BenchmarkId::new(name, n), |bench| {
            bench.iter(|| {
                faer::linalg::matmul::matmul(
                    c.as_mut(),
                    faer::Accum::Replace,
                    a.as_ref(),
                    b.as_ref(),
                    num_complex::Complex64::new(1.0, 0.0),
                    par,
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_update, bench_zgemm);
criterion_main!(benches);
