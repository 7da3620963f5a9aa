//! OpenQASM 2.0 import speed on QASMBench's largest small circuit, `hhl_n10.qasm`
//! (3.3 MB, 186,000 lines).
//!
//! - `hhl_n10/as_is`: the file as published; it parses to its last lines and is rejected
//!   there (it measures an undeclared register `q`), so this times the whole file.
//! - `hhl_n10_valid/<lines>`: the file without those invalid `measure` lines, cut to 10%,
//!   30% and 100% of its lines: a size sweep that returns a `Program`.
//!
//! Sources are read and prepared outside the timed closures; only parsing is timed. Run
//! with `cargo bench --bench qasm_parse`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use qfl::qasm::parse_bytes;

fn bench_parse(crit: &mut Criterion) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qasmbench-small/hhl_n10.qasm");
    let source = std::fs::read(&path).expect("the QASMBench data is in tests/data");

    let mut group = crit.benchmark_group("hhl_n10");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(source.len() as u64));
    group.bench_function("as_is", |b| {
        b.iter(|| {
            let result = parse_bytes(black_box(&source), "hhl_n10.qasm");
            assert!(result.is_err(), "the file measures an undeclared register");
            result
        })
    });
    group.finish();

    let text = String::from_utf8_lossy(&source);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("measure q["))
        .collect();
    let mut group = crit.benchmark_group("hhl_n10_valid");
    group.sample_size(20);
    for percent in [10usize, 30, 100] {
        let n_lines = lines.len() * percent / 100;
        let prefix = lines[..n_lines].join("\n");
        group.throughput(Throughput::Bytes(prefix.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n_lines), &prefix, |b, src| {
            b.iter(|| parse_bytes(black_box(src.as_bytes()), "hhl_n10.qasm").expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
