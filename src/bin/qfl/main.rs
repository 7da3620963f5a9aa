//! The `qfl` command line: simulate and summarize OpenQASM 2.0 files.
//!
//! ```text
//! qfl run FILE.qasm [--backend dense|mps|auto] [--max-bond N] [--cutoff EPS]
//!                   [--observable "0.5*X1 Y2 + Z0"]... [--shots N] [--seed S]
//!                   [--threads N] [--format text|json] [--quiet]
//! qfl info FILE.qasm [--format text|json]
//! qfl train (--dataset NAME | --ts FILE | --csv FILE...) [--model qfl|early|late|tfn|lmf|mfb|gcn]
//!           [--k 5] [--repeats 10] [--d 2] [--p 2] [--backend mps|dense] [--max-bond 64]
//!           [--shots N] [--epochs 200] [--out DIR] [--quiet]
//! qfl compare (--dataset NAME | ...) [--models qfl,lmf,...] [same settings]
//! ```
//!
//! Exit codes: 0 success, 2 bad input (unreadable or invalid file, bad flags or
//! observables), 1 any other failure. Errors are one-line messages on stderr.

mod learn;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use serde::Serialize;
use std::io::IsTerminal;

use num_complex::Complex64 as C64;
use qfl::backend::MAX_DENSE_EXPORT_QUBITS;
use qfl::run::{Counts, for_each_trajectory, sample_counts};
use qfl::{
    CutoffRule, DenseState, Error, MeasuredCircuit, MpsConfig, MpsState, Observable, Parallelism,
    PauliString, Program, Routing, SplitMethod, StateBackend, SvdBackend, Truncation, UpdateScheme,
};

/// Largest qubit count `--backend auto` simulates with the dense state vector.
const AUTO_DENSE_MAX_QUBITS: usize = 20;

/// Shots used for a program that needs trajectories when `--shots` is not given.
const DEFAULT_TRAJECTORY_SHOTS: usize = 1024;

#[derive(Parser)]
#[command(
    name = "qfl",
    version,
    about = "Simulate OpenQASM 2.0 circuits as matrix product states, and train the quantum fusion layer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a circuit: <Z_i> of every qubit, observables, counts.
    Run(RunArgs),
    /// Summarize a circuit: registers, gate counts, depth, two-qubit and long-range gates.
    Info(InfoArgs),
    /// Train one fusion model by the few-shot protocol over seeds: JSON result and curve.
    Train(learn::TrainArgs),
    /// Train the QFL and every baseline by the same protocol: markdown table, JSON, plot.
    Compare(learn::CompareArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    /// Exact state vector (2^n amplitudes).
    Dense,
    /// Matrix product state with truncation.
    Mps,
    /// Dense up to 20 qubits, MPS beyond.
    Auto,
}

/// The library that computes the MPS cuts' SVDs (`qfl::SvdBackend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SvdChoice {
    /// faer, pure Rust (always built in).
    Faer,
    /// The system LAPACK (OpenBLAS): needs qfl built with `--features lapack`.
    Lapack,
}

impl From<SvdChoice> for SvdBackend {
    fn from(c: SvdChoice) -> Self {
        match c {
            SvdChoice::Faer => SvdBackend::Faer,
            SvdChoice::Lapack => SvdBackend::Lapack,
        }
    }
}

/// How the MPS cuts are factored (`qfl::SplitMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SplitChoice {
    /// Eigendecomposition of the Gram matrix (fast; the default).
    Gram,
    /// Singular value decomposition by the library `--svd` names.
    Svd,
}

impl From<SplitChoice> for SplitMethod {
    fn from(c: SplitChoice) -> Self {
        match c {
            SplitChoice::Gram => SplitMethod::Gram,
            SplitChoice::Svd => SplitMethod::Svd,
        }
    }
}

/// How an MPS run applies its gates (`qfl::UpdateScheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum UpdateChoice {
    /// Centred updates while bonds are small, TEBD for the rest of the run on chains of
    /// more than 12 qubits once a bond reaches 8 (default).
    Auto,
    /// Orthogonality centre moved next to every gate: every truncation optimal.
    Centre,
    /// TEBD in Hastings' form: no centre moves, gates on disjoint pairs in parallel.
    Tebd,
}

impl From<UpdateChoice> for UpdateScheme {
    fn from(c: UpdateChoice) -> Self {
        match c {
            UpdateChoice::Centre => UpdateScheme::Centre,
            UpdateChoice::Tebd => UpdateScheme::Tebd,
            UpdateChoice::Auto => UpdateScheme::Auto,
        }
    }
}

/// Which singular values the cutoff drops (`qfl::CutoffRule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CutoffRuleChoice {
    /// Only those both rules below drop (default): at a shared cutoff, at least what Qiskit
    /// Aer, quimb and prism-q keep.
    Both,
    /// The smallest while their summed squares stay within the cutoff's share of the total
    /// (Qiskit Aer, ITensor, quimb's rsum2).
    Weight,
    /// Each with s^2 at most the cutoff times the largest's (prism-q, with sqrt(cutoff)).
    Value,
}

impl From<CutoffRuleChoice> for CutoffRule {
    fn from(c: CutoffRuleChoice) -> Self {
        match c {
            CutoffRuleChoice::Both => CutoffRule::Both,
            CutoffRuleChoice::Weight => CutoffRule::DiscardedWeight,
            CutoffRuleChoice::Value => CutoffRule::RelativeValue,
        }
    }
}

/// How an MPS run routes gates on qubits that are not neighbours (`qfl::Routing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RoutingChoice {
    /// Leave gathered qubits where they are when the gates ahead do not need them back
    /// (default).
    Lookahead,
    /// Swap the qubits back after every gate.
    SwapBack,
}

impl From<RoutingChoice> for Routing {
    fn from(c: RoutingChoice) -> Self {
        match c {
            RoutingChoice::Lookahead => Routing::Lookahead,
            RoutingChoice::SwapBack => Routing::SwapBack,
        }
    }
}

/// How `<Z_i>` are read from an MPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReadoutChoice {
    /// Local where the run ended in TEBD or on truncated amplitudes, exact otherwise (default).
    Auto,
    /// The expectation in the state held, by contraction.
    Exact,
    /// Qiskit Aer's local estimate from the TEBD form (needs `--update tebd`).
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable text.
    Text,
    /// One JSON object.
    Json,
}

/// The MPS settings, shared by `run`, `train` and `compare`.
#[derive(Args, Clone, Debug)]
struct MpsArgs {
    /// Largest MPS bond dimension.
    #[arg(long, default_value_t = 64)]
    max_bond: usize,
    /// MPS truncation cutoff: discarded weight allowed per cut, relative (see --cutoff-rule).
    #[arg(long, default_value_t = 1e-16)]
    cutoff: f64,
    /// How the cutoff is read: both (drop a singular value only where the two rules below
    /// agree), weight (the discarded weight per cut at most the cutoff's share) or value
    /// (each dropped s^2 at most the cutoff times the largest's).
    #[arg(long, value_enum, default_value_t = CutoffRuleChoice::Both)]
    cutoff_rule: CutoffRuleChoice,
    /// How MPS cuts are factored: gram (eigendecomposition of A A^H) or svd.
    #[arg(long, value_enum, default_value_t = SplitChoice::Gram)]
    split: SplitChoice,
    /// Library for the MPS SVDs, used with `--split svd` and as the Gram split's fallback
    /// (lapack needs the `lapack` cargo feature).
    #[arg(long, value_enum, default_value_t = SvdChoice::Faer)]
    svd: SvdChoice,
    /// How an MPS run applies its gates: centre (the orthogonality centre moved next to every
    /// gate), tebd (Hastings' form, gates on disjoint pairs in parallel with --threads) or auto
    /// (centre while bonds are small, then tebd on chains of more than 12 qubits).
    #[arg(long, value_enum, default_value_t = UpdateChoice::Auto)]
    update: UpdateChoice,
    /// How an MPS run routes gates on far-apart qubits: lookahead (leave gathered qubits
    /// where they are unless the next gates need them back; sorted home at the end) or
    /// swap-back (after every gate).
    #[arg(long, value_enum, default_value_t = RoutingChoice::Lookahead)]
    routing: RoutingChoice,
    /// Factor every update of a centred run on its own: no window blocks (runs of gates
    /// within a few sites of small bonds applied to the contracted window and split back
    /// once; see `MpsConfig::with_window_blocks`).
    #[arg(long)]
    no_window_blocks: bool,
}

impl MpsArgs {
    /// The settings, checked: truncation values, and the SVD library built in.
    fn config(&self) -> Result<MpsConfig, Failure> {
        let truncation = Truncation::default()
            .with_max_bond(self.max_bond)
            .with_cutoff(self.cutoff)
            .with_cutoff_rule(self.cutoff_rule.into());
        truncation.validate()?;
        let svd = SvdBackend::from(self.svd);
        svd.check_available()?;
        Ok(MpsConfig::default()
            .with_truncation(truncation)
            .with_split(self.split.into())
            .with_svd(svd)
            .with_update(self.update.into())
            .with_routing(self.routing.into())
            .with_window_blocks(!self.no_window_blocks))
    }
}

#[derive(Args)]
struct RunArgs {
    /// The OpenQASM 2.0 file.
    file: PathBuf,
    /// Simulator.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    #[command(flatten)]
    mps: MpsArgs,
    /// How <Z_i> are read from an MPS: exact (in the state held), local (Qiskit Aer's
    /// estimate from the TEBD form; needs --update tebd and no mid-circuit measurement) or
    /// auto (local where the run ended in TEBD or on its amplitudes with a truncating split
    /// back, which it reads before that truncation; exact otherwise).
    #[arg(long, value_enum, default_value_t = ReadoutChoice::Auto)]
    readout: ReadoutChoice,
    /// An observable to measure: Pauli strings with optional weights, joined by + or -,
    /// such as "Z0 Z5" or "0.5*X1 Y2 - Z0". Repeat for several.
    #[arg(long = "observable", value_name = "TERMS")]
    observables: Vec<String>,
    /// Number of shots to sample (counts over the classical registers).
    #[arg(long)]
    shots: Option<usize>,
    /// Seed of the sampling and of the trajectories.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads of the simulation: the MPS linear algebra and the dense kernels run on a
    /// pool of this many. Without it, MPS runs on one thread and dense kernels on rayon's
    /// global pool (sized by RAYON_NUM_THREADS).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Run the simulation up to this many times in this process (same circuit, settings and
    /// seed), for timing: the first run also pays one-time costs (cold caches, first
    /// allocations), the later ones show the steady state. The results reported are the
    /// first run's; `timings.runs_ms` lists every run's time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Stop repeating once the runs so far took this many seconds in total (the first run
    /// always happens).
    #[arg(long, value_name = "SECONDS")]
    repeat_budget: Option<f64>,
    /// Write the first run's final state vector to this file, after the timed part: 2^n
    /// amplitudes as little-endian f64 pairs (re, im), qubit 0 the least significant bit of
    /// the index (docs/conventions.md). For up to 30 qubits, and not for programs with
    /// mid-circuit measurement, reset or if (they run as trajectories). The file is created
    /// before the run, so a path that cannot be written fails at once.
    #[arg(long, value_name = "FILE")]
    save_state: Option<PathBuf>,
}

#[derive(Args)]
struct InfoArgs {
    /// The OpenQASM 2.0 file.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A failure and its exit code.
enum Failure {
    /// Bad input: exit code 2.
    Input(String),
    /// Anything else: exit code 1.
    Run(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Qasm { .. }
            | Error::Io { .. }
            | Error::Parse { .. }
            | Error::InvalidSetting { .. }
            | Error::FeatureNotEnabled { .. }
            | Error::QubitOutOfRange { .. }
            | Error::RepeatedQubit { .. }
            | Error::StateTooLarge { .. }
            | Error::NoQubits
            | Error::Data { .. }
            | Error::UnknownDataset { .. }
            | Error::TooFewSamples { .. } => Failure::Input(e.to_string()),
            other => Failure::Run(other.to_string()),
        }
    }
}

/// Keeps glibc from returning freed blocks to the kernel between gates.
///
/// An MPS update allocates and frees matrices of a few hundred KiB to a few MiB per gate.
/// With glibc's defaults those are `mmap`ed and unmapped, or the heap top is trimmed, on every
/// gate, and each re-use faults its pages in again: 14% of the time of a 100-qubit brick at
/// max bond 64 went to the kernel (0.16 s of 1.12 s). With blocks up to 32 MiB served from
/// the heap and a 256 MiB trim threshold the kernel time is gone (0.01 s) and peak memory
/// grew from 22 MB to 23 MB. A library cannot set this for its users; the command line can.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread is
    // spawned, and a rejected value (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Start-up work done on the thread that will simulate, before anything is timed (like the
/// peers' imports, it is not simulation):
///
/// - A small entangling MPS circuit and read-out. The first use of faer's kernels in a
///   process pays about 1 ms of one-time set-up (they read the CPU's cache sizes from sysfs;
///   the standard library reads the CPU count): measured by `perf` on a 2-qubit circuit,
///   where it was nearly all of the reported simulation time. Small cuts bypass faer (see
///   `linalg::jacobi`), so the circuit entangles 10 qubits until the middle cuts are wide
///   enough (`64 x 64`) for faer's eigensolver and products: warming only the small path
///   left the set-up inside the first wide cut of `dnn_n8` (1.1 ms -> 1.8 ms reported).
/// - A five-qubit program parsed, lowered and run the way `qfl run` runs a file (routing of
///   a far and a three-qubit gate, fusion, read-out), as the peers' runners run a small
///   circuit before timing theirs: the first run through that code otherwise paid for its
///   cold instruction cache and branch history (`qft_n4`: 40 us first run against 13 us for
///   the next ones in the same process).
/// - 4 MiB of heap touched and freed. glibc gives each thread its own arena, and a fresh
///   arena's pages are faulted in by the kernel on first use: on `basis_trotter_n4` (1800
///   gates, about 1 MiB of heap) that was half of the first run's time (0.41 ms against
///   0.19 ms with the pages already mapped), a per-process cost a Python peer has already
///   paid in its imports. [`tune_allocator`] keeps the freed pages in the arena.
///
/// Errors are ignored (nothing depends on this).
fn warm_up() {
    // The heap first: touching 4 MiB evicts the caches the circuits below warm.
    let pages: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 << 10]).collect();
    drop(std::hint::black_box(pages));
    const N: usize = 10;
    let Ok(mut psi) = MpsState::new(N, MpsConfig::default()) else {
        return;
    };
    let (Ok(h), Ok(t), Ok(cx)) = (
        qfl::Gate::H.matrix(&[], &[]),
        qfl::Gate::T.matrix(&[], &[]),
        qfl::Gate::Cx.matrix(&[], &[]),
    ) else {
        return;
    };
    for layer in 0..6 {
        for q in 0..N {
            let _ = psi.apply_matrix(if (q + layer) % 3 == 0 { &t } else { &h }, &[q]);
        }
        for first in [0, 1] {
            for q in (first..N - 1).step_by(2) {
                let _ = psi.apply_matrix(&cx, &[q, q + 1]);
            }
        }
    }
    let _ = psi.z_expectations();
    const PROGRAM: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[5];\n\
        h q[0]; rx(0.3) q[1]; ry(0.2) q[2]; rz(0.1) q[3]; u3(0.1,0.2,0.3) q[4];\n\
        cx q[0],q[1]; cz q[1],q[2]; cx q[0],q[4]; cp(0.4) q[3],q[1]; ccx q[0],q[2],q[4];\n\
        swap q[1],q[3]; t q[2]; cx q[2],q[3];\n";
    if let Ok(program) = qfl::qasm::parse_str(PROGRAM, "warm-up")
        && let Ok(split) = program.to_circuit()
        && let Ok(mut psi) = MpsState::new(program.n_qubits(), MpsConfig::default())
        && psi.run(&split.circuit, &[], &[]).is_ok()
    {
        let _ = psi.z_expectations();
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Info(args) => info(&args),
        Command::Train(args) => learn::train(&args),
        Command::Compare(args) => learn::compare(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// Parses `"0.5*X1 Y2 - Z0 + 2*Z3 Z4"` into a weighted sum.
fn parse_observable(text: &str) -> Result<Observable, Failure> {
    let bad = |reason: String| Failure::Input(format!("observable {text:?}: {reason}"));
    let mut observable = Observable::new();
    let mut sign = 1.0;
    let mut weight: Option<f64> = None;
    let mut factors: Vec<&str> = Vec::new();
    let mut flush = |sign: f64, weight: Option<f64>, factors: &mut Vec<&str>| {
        if factors.is_empty() && weight.is_none() {
            return Err(bad("empty term".into()));
        }
        let pauli: PauliString = factors
            .join(" ")
            .parse()
            .map_err(|e: Error| bad(e.to_string()))?;
        observable.add_term(sign * weight.unwrap_or(1.0), pauli);
        factors.clear();
        Ok(())
    };
    if text.trim().is_empty() {
        return Err(bad("empty observable".into()));
    }
    for token in text.split_whitespace() {
        match token {
            "+" | "-" => {
                flush(sign, weight, &mut factors)?;
                sign = if token == "-" { -1.0 } else { 1.0 };
                weight = None;
            }
            _ => {
                let factor = match token.rsplit_once('*') {
                    Some((w, rest)) => {
                        if weight.is_some() || !factors.is_empty() {
                            return Err(bad(format!("weight in the middle of a term: {token:?}")));
                        }
                        let w: f64 = w
                            .parse()
                            .map_err(|_| bad(format!("invalid weight {w:?}")))?;
                        if !w.is_finite() {
                            return Err(bad(format!("weight {w} is not finite")));
                        }
                        weight = Some(w);
                        rest
                    }
                    None => token,
                };
                if !factor.is_empty() {
                    factors.push(factor);
                }
            }
        }
    }
    flush(sign, weight, &mut factors)?;
    Ok(observable)
}

fn read_program(file: &PathBuf) -> Result<(Program, f64), Failure> {
    let start = Instant::now();
    let program = qfl::qasm::parse_file(file)?;
    Ok((program, start.elapsed().as_secs_f64() * 1e3))
}

fn progress(len: usize, quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}}, eta {{eta}}]"
    )) {
        bar.set_style(style);
    }
    bar
}

#[derive(Serialize)]
struct ObservableValue {
    observable: String,
    value: f64,
}

#[derive(Serialize)]
struct MpsSummary {
    max_bond: usize,
    cutoff: f64,
    cutoff_rule: &'static str,
    split: &'static str,
    svd: &'static str,
    update: &'static str,
    routing: &'static str,
    /// Whether centred runs took window blocks.
    window_blocks: bool,
    /// How `<Z_i>` were read: "exact" or "local" (`--readout auto` reads locally exactly
    /// when the run ended in TEBD: `--update tebd`, or `auto` after its switch; or when an
    /// `auto` run finished on its amplitudes and the split back truncated them).
    readout: &'static str,
    peak_bond: usize,
    fidelity_estimate: f64,
    /// Finite where `fidelity_estimate` underflows to 0.
    log10_fidelity_estimate: f64,
}

#[derive(Serialize)]
struct Timings {
    /// Reading and parsing the file, and lowering a program without mid-circuit
    /// measurement, reset or `if` to a circuit.
    parse_ms: f64,
    /// The first run's simulation (gates and read-out).
    simulate_ms: f64,
    sample_ms: f64,
    /// Every run's simulation time, the first included (`--repeat`).
    runs_ms: Vec<f64>,
}

#[derive(Serialize)]
struct RunReport {
    file: String,
    n_qubits: usize,
    n_clbits: usize,
    operations: usize,
    backend: &'static str,
    /// "statevector" (one run, sampled) or "trajectories" (one run per shot).
    mode: &'static str,
    /// What the counts keys are: "classical registers" or "all qubits".
    counts_over: Option<&'static str>,
    shots: Option<usize>,
    seed: u64,
    /// `--threads`, when given.
    threads: Option<u16>,
    z: Vec<f64>,
    observables: Vec<ObservableValue>,
    counts: Option<Counts>,
    mps: Option<MpsSummary>,
    timings: Timings,
}

/// What a simulation returns, whatever the backend.
struct Outcome {
    mode: &'static str,
    z: Vec<f64>,
    /// How `z` was read: "exact" or "local".
    readout: &'static str,
    observables: Vec<f64>,
    counts: Option<Counts>,
    counts_over: Option<&'static str>,
    peak_bond: usize,
    fidelity: f64,
    log10_fidelity: f64,
    simulate_ms: f64,
    sample_ms: f64,
    /// The final state vector, exported after the timer stopped (`--save-state`).
    state: Option<Vec<C64>>,
}

/// How a run's `<Z_i>` are read from its final state, and the read-out's name.
type ReadZ<B> = fn(&B) -> qfl::Result<(Vec<f64>, &'static str)>;

fn simulate<B: StateBackend + Clone>(
    program: &Program,
    unitary: Option<&MeasuredCircuit>,
    initial: B,
    observables: &[Observable],
    args: &RunArgs,
    z_of: ReadZ<B>,
    export: bool,
) -> Result<Outcome, Failure> {
    let n = program.n_qubits();
    let start = Instant::now();
    if let Some(split) = unitary {
        let mut state = initial;
        // In the order that keeps an MPS centre next to the gates (the same unitary). A
        // bar only where one is drawn: creating even a hidden one cost 1-6 us, a tenth of a
        // small circuit's run.
        if !args.quiet && std::io::stderr().is_terminal() {
            let bar = progress(split.circuit.len(), args.quiet, "gates");
            state.run_with_progress(&split.circuit, &[], &[], &mut |k| bar.inc(k as u64))?;
            bar.finish_and_clear();
        } else {
            state.run(&split.circuit, &[], &[])?;
        }
        let (z, readout) = z_of(&state)?;
        let values = observables
            .iter()
            .map(|o| state.expectation(o))
            .collect::<Result<Vec<_>, _>>()?;
        let simulate_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let (counts, counts_over) = match args.shots {
            None => (None, None),
            Some(shots) if split.measurements.is_empty() => {
                // No measurement in the file: measure every qubit at the end.
                let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
                let mut counts = Counts::new();
                for sample in state.sample(shots, &mut rng)? {
                    *counts.entry(sample.to_string()).or_insert(0) += 1;
                }
                (Some(counts), Some("all qubits"))
            }
            Some(shots) => (
                Some(sample_counts(
                    program,
                    &split.measurements,
                    &state,
                    shots,
                    args.seed,
                )?),
                Some("classical registers"),
            ),
        };
        let sample_ms = start.elapsed().as_secs_f64() * 1e3;
        let exported = if export {
            Some(state.to_dense()?)
        } else {
            None
        };
        return Ok(Outcome {
            mode: "statevector",
            z,
            readout,
            observables: values,
            counts,
            counts_over,
            peak_bond: state.bond_dimensions().into_iter().max().unwrap_or(1),
            fidelity: state.fidelity_estimate(),
            log10_fidelity: state.log10_fidelity_estimate(),
            simulate_ms,
            sample_ms,
            state: exported,
        });
    }
    // Mid-circuit measurement, reset or if: one trajectory per shot; expectation values
    // are averages over the final states, which is the expectation in the mixed state.
    let shots = args.shots.unwrap_or(DEFAULT_TRAJECTORY_SHOTS);
    let bar = progress(shots, args.quiet, "shots");
    let mut z = vec![0.0; n];
    let mut values = vec![0.0; observables.len()];
    let mut counts = Counts::new();
    let mut peak_bond = 1;
    let mut fidelity = 1.0f64;
    let mut log10_fidelity = 0.0f64;
    for_each_trajectory(program, initial, shots, args.seed, |_, state, clbits| {
        for (acc, v) in z.iter_mut().zip(state.z_expectations()?) {
            *acc += v;
        }
        for (acc, o) in values.iter_mut().zip(observables) {
            *acc += state.expectation(o)?;
        }
        *counts.entry(program.format_clbits(clbits)).or_insert(0) += 1;
        peak_bond = peak_bond.max(state.bond_dimensions().into_iter().max().unwrap_or(1));
        fidelity = fidelity.min(state.fidelity_estimate());
        log10_fidelity = log10_fidelity.min(state.log10_fidelity_estimate());
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    let scale = 1.0 / shots.max(1) as f64;
    z.iter_mut().for_each(|v| *v *= scale);
    values.iter_mut().for_each(|v| *v *= scale);
    Ok(Outcome {
        mode: "trajectories",
        z,
        readout: "exact",
        observables: values,
        counts: Some(counts),
        counts_over: Some("classical registers"),
        peak_bond,
        fidelity,
        log10_fidelity,
        simulate_ms: start.elapsed().as_secs_f64() * 1e3,
        sample_ms: 0.0,
        // `run` refuses --save-state for trajectories before any run.
        state: None,
    })
}

/// Writes amplitudes as little-endian `f64` pairs (re, im).
fn write_state(file: std::fs::File, amplitudes: &[C64]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(file);
    for a in amplitudes {
        out.write_all(&a.re.to_le_bytes())?;
        out.write_all(&a.im.to_le_bytes())?;
    }
    out.flush()
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    let observables = args
        .observables
        .iter()
        .map(|o| parse_observable(o))
        .collect::<Result<Vec<_>, _>>()?;
    let mps_config = args.mps.config()?;
    let (program, read_ms) = read_program(&args.file)?;
    // Lowered to a circuit once, as part of reading the file (not once per `--repeat`
    // run): the peers' runners also time their runs from a parsed circuit.
    let start = Instant::now();
    let unitary = program.to_circuit().ok();
    let parse_ms = read_ms + start.elapsed().as_secs_f64() * 1e3;
    let n = program.n_qubits();
    if n == 0 {
        return Err(Failure::Input(format!(
            "{}: the program declares no qubits",
            args.file.display()
        )));
    }
    for o in &observables {
        o.check(n)?;
    }
    let use_dense = match args.backend {
        BackendChoice::Dense => true,
        BackendChoice::Mps => false,
        BackendChoice::Auto => n <= AUTO_DENSE_MAX_QUBITS,
    };
    let parallelism = match args.threads {
        None | Some(1) => Parallelism::Sequential,
        Some(t) => Parallelism::Rayon(usize::from(t)),
    };
    if args.readout == ReadoutChoice::Local {
        if use_dense {
            return Err(Failure::Input(
                "--readout local needs the mps backend (with --update tebd)".into(),
            ));
        }
        if args.mps.update != UpdateChoice::Tebd {
            return Err(Failure::Input("--readout local needs --update tebd".into()));
        }
        if unitary.is_none() {
            return Err(Failure::Input(
                "--readout local is not available for programs with mid-circuit measurement, \
                 reset or if (they run as trajectories, gate by gate)"
                    .into(),
            ));
        }
    }
    if let Some(b) = args.repeat_budget
        && !(b.is_finite() && b >= 0.0)
    {
        return Err(Failure::Input(format!(
            "--repeat-budget must be a finite number of seconds >= 0, got {b}"
        )));
    }
    // Checked, and the file created, before the run: a long run must not end in an error
    // that could have been reported at the start.
    let state_file = match &args.save_state {
        None => None,
        Some(path) => {
            if unitary.is_none() {
                return Err(Failure::Input(
                    "--save-state is not available for programs with mid-circuit measurement, \
                     reset or if (they run as trajectories, one state per shot)"
                        .into(),
                ));
            }
            if n > MAX_DENSE_EXPORT_QUBITS {
                return Err(Failure::Input(format!(
                    "--save-state: the program has {n} qubits; a state vector is written for \
                     at most {MAX_DENSE_EXPORT_QUBITS} (2^{MAX_DENSE_EXPORT_QUBITS} amplitudes, {} GiB)",
                    (16u64 << MAX_DENSE_EXPORT_QUBITS) >> 30
                )));
            }
            let f = std::fs::File::create(path).map_err(|e| {
                Failure::Run(format!(
                    "--save-state {}: cannot create: {e}",
                    path.display()
                ))
            })?;
            Some((path, f))
        }
    };
    let once = |export: bool| {
        if use_dense {
            simulate(
                &program,
                unitary.as_ref(),
                DenseState::new(n)?,
                &observables,
                args,
                |s: &DenseState| Ok((s.z_expectations()?, "exact")),
                export,
            )
        } else {
            let config = mps_config.with_parallelism(parallelism);
            let z_of: ReadZ<MpsState> = match args.readout {
                ReadoutChoice::Exact => |s| Ok((s.z_expectations()?, "exact")),
                ReadoutChoice::Local => |s| Ok((s.local_z_expectations()?, "local")),
                // Local where the run ended in TEBD (UpdateScheme::Tebd, or Auto after its
                // switch) or on amplitudes that the split back truncated, which is when the
                // local estimate exists.
                ReadoutChoice::Auto => |s| {
                    let (z, how) = s.z_expectations_auto()?;
                    Ok((z, how.name()))
                },
            };
            simulate(
                &program,
                unitary.as_ref(),
                MpsState::new(n, config)?,
                &observables,
                args,
                z_of,
                export,
            )
        }
    };
    let go = || -> Result<(Outcome, Vec<f64>), Failure> {
        warm_up();
        let first = once(state_file.is_some())?;
        let mut runs = vec![first.simulate_ms];
        let mut total = first.simulate_ms;
        let budget_ms = args.repeat_budget.map_or(f64::INFINITY, |b| b * 1e3);
        while runs.len() < args.repeat as usize && total < budget_ms {
            let ms = once(false)?.simulate_ms;
            runs.push(ms);
            total += ms;
        }
        Ok((first, runs))
    };
    let (mut outcome, runs_ms) = match args.threads {
        None => go()?,
        Some(t) => rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(t))
            .build()
            .map_err(|e| Failure::Run(format!("cannot start {t} threads: {e}")))?
            .install(go)?,
    };
    if let (Some((path, file)), Some(amplitudes)) = (state_file, outcome.state.take()) {
        write_state(file, &amplitudes)
            .map_err(|e| Failure::Run(format!("--save-state {}: {e}", path.display())))?;
    }
    let report = RunReport {
        file: args.file.display().to_string(),
        n_qubits: n,
        n_clbits: program.n_clbits(),
        operations: program.len(),
        backend: if use_dense { "dense" } else { "mps" },
        mode: outcome.mode,
        counts_over: outcome.counts_over,
        shots: outcome.counts.as_ref().map(|c| c.values().sum()),
        seed: args.seed,
        threads: args.threads,
        z: outcome.z,
        observables: args
            .observables
            .iter()
            .zip(&outcome.observables)
            .map(|(o, &value)| ObservableValue {
                observable: o.clone(),
                value,
            })
            .collect(),
        counts: outcome.counts,
        mps: (!use_dense).then_some(MpsSummary {
            max_bond: args.mps.max_bond,
            cutoff: args.mps.cutoff,
            cutoff_rule: CutoffRule::from(args.mps.cutoff_rule).name(),
            split: match args.mps.split {
                SplitChoice::Gram => "gram",
                SplitChoice::Svd => "svd",
            },
            svd: mps_config.svd().name(),
            update: UpdateScheme::from(args.mps.update).name(),
            routing: Routing::from(args.mps.routing).name(),
            window_blocks: mps_config.window_blocks(),
            readout: outcome.readout,
            peak_bond: outcome.peak_bond,
            fidelity_estimate: outcome.fidelity,
            log10_fidelity_estimate: outcome.log10_fidelity,
        }),
        timings: Timings {
            parse_ms,
            simulate_ms: outcome.simulate_ms,
            sample_ms: outcome.sample_ms,
            runs_ms,
        },
    };
    match args.format {
        Format::Json => print_json(&report),
        Format::Text => emit(&render_run_text(&report, &program)),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Run(format!("cannot write JSON: {e}")))?;
    emit(&(text + "\n"))
}

/// Writes the whole output to stdout. A closed pipe (`qfl ... | head`) is not an error; any
/// other write failure (a full disk) is a failure with a message, never a panic.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Run(format!("cannot write output: {e}"))),
    }
}

/// Appends one formatted line to a `String`.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

fn render_run_text(r: &RunReport, program: &Program) -> String {
    let mut out = String::new();
    outln!(
        out,
        "{}: {} qubits, {} classical bits, {} operations",
        r.file,
        r.n_qubits,
        r.n_clbits,
        r.operations
    );
    match &r.mps {
        Some(m) => outln!(
            out,
            "backend: mps (max bond {}, cutoff {:e} ({} rule), split {}, svd {}, update {}, \
             routing {}, window blocks {}, read-out {})",
            m.max_bond,
            m.cutoff,
            m.cutoff_rule,
            m.split,
            m.svd,
            m.update,
            m.routing,
            if m.window_blocks { "on" } else { "off" },
            m.readout
        ),
        None => outln!(out, "backend: dense"),
    }
    if r.mode == "trajectories" {
        outln!(
            out,
            "mode: {} trajectories (mid-circuit measurement, reset or if); expectation values are averages over them",
            r.shots.unwrap_or(0)
        );
    }
    outln!(out, "<Z_i>:");
    for (q, z) in r.z.iter().enumerate() {
        outln!(out, "  {:>4} {:<10} {:>+.10}", q, program.qubit_name(q), z);
    }
    if !r.observables.is_empty() {
        outln!(out, "observables:");
        for o in &r.observables {
            outln!(out, "  <{}> = {:+.10}", o.observable, o.value);
        }
    }
    if let Some(counts) = &r.counts {
        outln!(
            out,
            "counts ({} shots, seed {}, over {}):",
            r.shots.unwrap_or(0),
            r.seed,
            r.counts_over.unwrap_or("classical registers")
        );
        let mut sorted: Vec<(&String, &usize)> = counts.iter().collect();
        sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (key, count) in sorted {
            let shown = if key.is_empty() { "(no bits)" } else { key };
            outln!(out, "  {shown}  {count}");
        }
    }
    if let Some(m) = &r.mps {
        if m.fidelity_estimate >= 1e-6 {
            outln!(
                out,
                "mps: peak bond {}, fidelity estimate {:.12}",
                m.peak_bond,
                m.fidelity_estimate
            );
        } else {
            outln!(
                out,
                "mps: peak bond {}, fidelity estimate {:.3e} (log10 {:.2})",
                m.peak_bond,
                m.fidelity_estimate,
                m.log10_fidelity_estimate
            );
        }
    }
    outln!(
        out,
        "time: parse {:.3} ms, simulate {:.3} ms, sample {:.3} ms",
        r.timings.parse_ms,
        r.timings.simulate_ms,
        r.timings.sample_ms
    );
    if let [_, rest @ ..] = r.timings.runs_ms.as_slice()
        && !rest.is_empty()
    {
        let fastest = rest.iter().copied().fold(f64::INFINITY, f64::min);
        outln!(
            out,
            "repeated: {} more run(s), fastest {fastest:.3} ms",
            rest.len()
        );
    }
    out
}

#[derive(Serialize)]
struct RegisterInfo {
    name: String,
    size: usize,
}

#[derive(Serialize)]
struct InfoReport {
    file: String,
    n_qubits: usize,
    n_clbits: usize,
    qregs: Vec<RegisterInfo>,
    cregs: Vec<RegisterInfo>,
    operations: usize,
    counts: BTreeMap<&'static str, usize>,
    conditioned: usize,
    depth: usize,
    multi_qubit_gates: usize,
    long_range_gates: usize,
    unitary: bool,
    /// Why the program needs trajectories, when it does.
    non_unitary_reason: Option<String>,
    parse_ms: f64,
}

fn info(args: &InfoArgs) -> Result<(), Failure> {
    let (program, parse_ms) = read_program(&args.file)?;
    let stats = program.stats();
    let regs = |rs: &[qfl::Register]| {
        rs.iter()
            .map(|r| RegisterInfo {
                name: r.name().to_string(),
                size: r.size(),
            })
            .collect::<Vec<_>>()
    };
    let non_unitary_reason = match program.to_circuit() {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    };
    let report = InfoReport {
        file: args.file.display().to_string(),
        n_qubits: program.n_qubits(),
        n_clbits: program.n_clbits(),
        qregs: regs(program.qregs()),
        cregs: regs(program.cregs()),
        operations: program.len(),
        counts: stats.counts,
        conditioned: stats.conditioned,
        depth: stats.depth,
        multi_qubit_gates: stats.multi_qubit_gates,
        long_range_gates: stats.long_range_gates,
        unitary: non_unitary_reason.is_none(),
        non_unitary_reason,
        parse_ms,
    };
    if args.format == Format::Json {
        return print_json(&report);
    }
    let list = |rs: &[RegisterInfo]| {
        rs.iter()
            .map(|r| format!("{}[{}]", r.name, r.size))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    outln!(out, "file: {}", report.file);
    outln!(out, "qubits: {} ({})", report.n_qubits, list(&report.qregs));
    outln!(out, "clbits: {} ({})", report.n_clbits, list(&report.cregs));
    outln!(out, "operations: {}", report.operations);
    outln!(out, "depth: {}", report.depth);
    outln!(
        out,
        "two-qubit and larger gates: {}",
        report.multi_qubit_gates
    );
    outln!(
        out,
        "long-range gates (non-adjacent qubits): {}",
        report.long_range_gates
    );
    outln!(out, "conditioned operations: {}", report.conditioned);
    match &report.non_unitary_reason {
        None => outln!(out, "unitary: yes (final measurements only)"),
        Some(reason) => outln!(out, "unitary: no ({reason})"),
    }
    outln!(out, "operation counts:");
    let mut counts: Vec<(&&str, &usize)> = report.counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (name, count) in counts {
        outln!(out, "  {name:<10} {count}");
    }
    outln!(out, "parse time: {:.3} ms", report.parse_ms);
    emit(&out)
}
