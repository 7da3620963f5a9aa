//! One forward pass against one adjoint gradient, on QFL-shaped circuits.
//!
//! M qubits (one per modality, D = 1), P blocks of: S(x) = RY(x_i) on every qubit, then
//! U(theta) = RZ, RY on every qubit and a CZ brick. Forward = run + every <Z_i>; gradient =
//! `adjoint_gradient` of `sum_i w_i <Z_i>` with respect to every theta and x. MPS at max bond
//! 64 for every M; dense for M = 8. Circuits and inputs are built outside the timed closure.
//! Run with `cargo bench --bench gradient`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qfl::grad::adjoint_gradient;
use qfl::{
    Circuit, DenseState, MpsConfig, MpsState, Observable, Param, PauliString, StateBackend,
    Truncation,
};

fn qfl_circuit(m: usize, p: usize) -> Circuit {
    let mut c = Circuit::new(m)
        .expect("m > 0")
        .with_inputs(m)
        .with_params(2 * m * p);
    for block in 0..p {
        for q in 0..m {
            c.ry(Param::input(q), q).expect("valid");
        }
        for q in 0..m {
            let k = 2 * (block * m + q);
            c.rz(Param::theta(k), q).expect("valid");
            c.ry(Param::theta(k + 1), q).expect("valid");
        }
        for start in [0, 1] {
            for q in (start..m.saturating_sub(1)).step_by(2) {
                c.cz(q, q + 1).expect("valid");
            }
        }
    }
    c
}

fn bench_gradient(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("qfl_gradient");
    group.sample_size(10);
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::default().with_max_bond(64));
    for &m in &[8usize, 64, 256] {
        let obs = (0..m).fold(Observable::new(), |o, q| {
            o.with_term(1.0 / (1 + q) as f64, PauliString::z(q))
        });
        let x: Vec<f64> = (0..m).map(|q| (0.7 * q as f64).sin()).collect();
        for &p in &[1usize, 2, 4] {
            let c = qfl_circuit(m, p);
            let theta: Vec<f64> = (0..c.n_params())
                .map(|k| 0.1 + 0.37 * (k % 13) as f64)
                .collect();
            let id = format!("M{m}_P{p}");
            group.bench_function(BenchmarkId::new("mps_forward", &id), |b| {
                b.iter(|| {
                    let mut s = MpsState::new(m, config).expect("valid");
                    s.run(&c, &theta, &x).expect("runs");
                    s.z_expectations().expect("finite")
                })
            });
            group.bench_function(BenchmarkId::new("mps_gradient", &id), |b| {
                b.iter(|| {
                    adjoint_gradient(
                        MpsState::new(m, config).expect("valid"),
                        &c,
                        &theta,
                        &x,
                        &obs,
                    )
                    .expect("runs")
                })
            });
            if m <= 20 {
                group.bench_function(BenchmarkId::new("dense_forward", &id), |b| {
                    b.iter(|| {
                        let mut s = DenseState::new(m).expect("fits");
                        s.run(&c, &theta, &x).expect("runs");
                        s.z_expectations().expect("finite")
                    })
                });
                group.bench_function(BenchmarkId::new("dense_gradient", &id), |b| {
                    b.iter(|| {
                        adjoint_gradient(DenseState::new(m).expect("fits"), &c, &theta, &x, &obs)
                            .expect("runs")
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench_gradient);
criterion_main!(benches);
