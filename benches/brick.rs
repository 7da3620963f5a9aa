//! Brick circuits on MPS: n in {16, 64, 256} qubits, max bond in {16, 64, 256}.
//!
//! Each layer is RY and RZ on every qubit, then CX on even pairs, then on odd pairs. The
//! circuit and a fresh `|0...0>` state are built outside the timed closure
//! (`iter_batched`); only `run` is timed. Run with `cargo bench --bench brick`.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use qfl::{Circuit, MpsConfig, MpsState, Param, StateBackend, Truncation};

/// Layers: enough for the bond dimension to reach 256 in the middle of the chain.
const LAYERS: usize = 8;

fn brick(n: usize) -> (Circuit, Vec<f64>) {
    let mut c = Circuit::new(n).expect("n > 0").with_params(2 * n * LAYERS);
    for layer in 0..LAYERS {
        for q in 0..n {
            let k = 2 * (layer * n + q);
            c.ry(Param::theta(k), q).expect("valid");
            c.rz(Param::theta(k + 1), q).expect("valid");
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                c.cx(q, q + 1).expect("valid");
            }
        }
    }
    let theta = (0..2 * n * LAYERS)
        .map(|i| 0.3 + 1.7 * ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    (c, theta)
}

fn bench_brick(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("brick_mps");
    group.sample_size(10);
    for &n in &[16usize, 64, 256] {
        let (circuit, theta) = brick(n);
        for &chi in &[16usize, 64, 256] {
            let config =
                MpsConfig::default().with_truncation(Truncation::default().with_max_bond(chi));
            group.bench_with_input(BenchmarkId::new(format!("n{n}"), chi), &chi, |b, _| {
                b.iter_batched(
                    || MpsState::new(n, config).expect("valid settings"),
                    |mut state| {
                        state.run(&circuit, &theta, &[]).expect("runs");
                        state
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_brick);
criterion_main!(benches);
