//! Brick circuits on MPS: n in {16, 64, 256} qubits, max bond in {16, 64, 256}.
//!
//! Each layer is RY and RZ on every qubit, then CX on even pairs, then on odd pairs. The
//! circuit and a fresh `|0...0>` state are built outside the timed closure
//! (`iter_batched`); only `run` is timed. Run with `cargo bench --bench brick`.

mod common;
use common::brick;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use qfl::{MpsConfig, MpsState, StateBackend, Truncation};

/// Layers: enough for the bond dimension to reach 256 in the middle of the chain.
const LAYERS: usize = 8;

fn bench_brick(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("brick_mps");
    group.sample_size(10);
    for &n in &[16usize, 64, 256] {
        let (circuit, theta) = brick(n, LAYERS);
        for &chi in &[16usize, 64, 256] {
            let config = MpsConfig::default()
                .with_update(qfl::UpdateScheme::Centre)
                .with_truncation(Truncation::default().with_max_bond(chi));
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
