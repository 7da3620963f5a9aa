//! The QASMBench small circuits (2 to 10 qubits, `tests/data/qasmbench-small`) on MPS: what a
//! tiny circuit costs end to end, where the per-update overhead rather than the flops decides.
//!
//! Timed as the peer comparison times `qfl run`: lowering the parsed program to a circuit,
//! a fresh `|0...0>` state, the run, and every `<Z_i>`; parsing is outside. Settings as in
//! `benches/peers/run.sh`: max bond 64, cutoff 1e-16, two threads of a two-thread rayon pool.
//! Run with `cargo bench --bench small` (a name filter works: `-- qft`).

use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qfl::{MpsConfig, MpsState, Parallelism, StateBackend, Truncation};

fn bench_small(crit: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qasmbench-small");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/qasmbench-small exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "qasm"))
        .collect();
    files.sort();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("two threads");
    let config = MpsConfig::default()
        .with_truncation(Truncation::default().with_max_bond(64).with_cutoff(1e-16))
        .with_parallelism(Parallelism::Rayon(2));
    let mut group = crit.benchmark_group("qasmbench_mps");
    for path in files {
        // Files the parser rejects (`vqe_uccsd_n4/6/8` and `hhl_n10` measure an undeclared register) and
        // circuits with mid-circuit measurement (run as trajectories) are not this bench's
        // subject.
        let Ok(program) = qfl::qasm::parse_file(&path) else {
            continue;
        };
        if program.to_circuit().is_err() {
            continue;
        }
        let name = path.file_stem().expect("a file name").to_string_lossy();
        let n = program.n_qubits();
        group.bench_function(BenchmarkId::from_parameter(&name), |b| {
            pool.install(|| {
                b.iter(|| {
                    let split = program.to_circuit().expect("no mid-circuit measurement");
                    let mut state = MpsState::new(n, config).expect("valid settings");
                    state.run(&split.circuit, &[], &[]).expect("runs");
                    state.z_expectations().expect("reads out")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_small);
criterion_main!(benches);
