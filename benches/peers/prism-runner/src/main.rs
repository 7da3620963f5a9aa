//! prism-q side of qfl's peer comparison (`benches/peers/`).
//!
//! ```text
//! prism-runner FILE.qasm --max-bond CHI [--threads 2] [--seed 0] [--svd-epsilon EPS]
//!              [--repeat K] [--repeat-budget SECONDS] [--save-state FILE]
//! ```
//!
//! Parses the OpenQASM file with prism-q's own parser (not timed), then times, on a rayon
//! pool of `--threads` workers, the simulation on prism-q's MPS backend at max bond `CHI` and
//! all `<Z_i>`, and prints one JSON line:
//! `{"sim":"prism-q","seconds":..,"first_seconds":..,"runs":[..],"z":[..],...}`.
//!
//! Before the timed runs a four-qubit warm-up circuit goes through the same path (as the
//! Aer, quimb and qfl runners do), so one-time costs of the process (thread pool start,
//! lazily initialised tables, first allocations) are not charged to the circuit. The circuit
//! then runs up to `--repeat` times (default 1) in the process, stopping early once the runs
//! took `--repeat-budget` seconds in total: `first_seconds` is the first run, `seconds` the
//! fastest, `runs` all of them; the results reported are the first run's.
//!
//! Two paths, both with the MPS backend forced (never prism-q's automatic dispatch):
//!
//! - default: the public entry point a prism-q user calls,
//!   `simulate(&circuit).backend(BackendKind::Mps { max_bond_dim }).expectation_values_reported`
//!   with one `Z_q` observable per qubit. It runs prism-q's own gate fusion and evaluates the
//!   observables on the chain with shared environments. This path has no truncation knob: the
//!   backend keeps its default relative threshold (singular values at or below `1e-12` times
//!   the largest of the cut are dropped), plus the bond cap.
//! - `--svd-epsilon EPS`: builds `MpsBackend::new(seed, CHI)` itself, sets
//!   `set_svd_epsilon(EPS)` (same meaning: relative to the largest singular value, not a
//!   discarded weight), and replays what the default path does inside prism-q (QFT-block and
//!   Pauli-rotation expansion, `fuse_circuit_for_profile`, `init`, `apply_instructions`,
//!   `pauli_expectations`) through public functions.
//!
//! `--save-state FILE` (only with `--svd-epsilon`, and only for chains small enough for
//! prism-q's dense export) writes the first run's state vector, exported by the backend after
//! the timer stopped, as raw little-endian `f64` pairs (re, im), amplitude index bit `q` =
//! qubit `q`: `benches/peers/cutoff_sweep.py --fidelity` reads it to compute the true fidelity
//! with the exact state.
//!
//! Exit codes: 0 ok, 2 bad arguments or unreadable/unparsable file, 1 simulation failure
//! (the message on stderr).

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::Instant;

use prism_q::backend::Backend;
use prism_q::circuit::fusion::fuse_circuit_for_profile;
use prism_q::circuit::{expand_pauli_rotations, expand_qft_blocks, recognize_qft_blocks};
use prism_q::{BackendKind, Circuit, Exactness, MpsBackend, PauliTerm, ThreadPool, simulate};

/// The prism-q version in Cargo.lock (read by build.rs).
const PRISM_VERSION: &str = env!("PRISM_Q_VERSION");

struct Args {
    file: String,
    max_bond: usize,
    threads: usize,
    seed: u64,
    svd_epsilon: Option<f64>,
    repeat: usize,
    repeat_budget: f64,
    save_state: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut file = None;
    let mut max_bond = None;
    let mut threads = 2;
    let mut seed = 0;
    let mut svd_epsilon = None;
    let mut repeat = 1;
    let mut repeat_budget = f64::INFINITY;
    let mut save_state = None;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--max-bond" => {
                max_bond = Some(
                    value("--max-bond")?
                        .parse()
                        .map_err(|e| format!("--max-bond: {e}"))?,
                )
            }
            "--threads" => {
                threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--seed" => {
                seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--svd-epsilon" => {
                let e: f64 = value("--svd-epsilon")?
                    .parse()
                    .map_err(|e| format!("--svd-epsilon: {e}"))?;
                if !(0.0..1.0).contains(&e) {
                    return Err(format!("--svd-epsilon must be in [0, 1), got {e}"));
                }
                svd_epsilon = Some(e);
            }
            "--repeat" => {
                repeat = value("--repeat")?
                    .parse()
                    .map_err(|e| format!("--repeat: {e}"))?;
                if repeat == 0 {
                    return Err("--repeat must be at least 1".into());
                }
            }
            "--repeat-budget" => {
                repeat_budget = value("--repeat-budget")?
                    .parse()
                    .map_err(|e| format!("--repeat-budget: {e}"))?;
                if repeat_budget.is_nan() || repeat_budget < 0.0 {
                    return Err(format!("--repeat-budget must be >= 0, got {repeat_budget}"));
                }
            }
            "--save-state" => save_state = Some(value("--save-state")?),
            "-h" | "--help" => {
                return Err("usage: prism-runner FILE.qasm --max-bond CHI [--threads 2] [--seed 0] [--svd-epsilon EPS] [--repeat K] [--repeat-budget S] [--save-state FILE]".into());
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if file.is_none() => file = Some(a),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    let max_bond: usize = max_bond.ok_or("--max-bond is required")?;
    if max_bond == 0 || threads == 0 {
        return Err("--max-bond and --threads must be at least 1".into());
    }
    if save_state.is_some() && svd_epsilon.is_none() {
        return Err("--save-state needs --svd-epsilon (the path that holds the backend)".into());
    }
    Ok(Args {
        file: file.ok_or("a QASM file is required")?,
        max_bond,
        threads,
        seed,
        svd_epsilon,
        repeat,
        repeat_budget,
        save_state,
    })
}

/// What one timed run returns.
struct Run {
    seconds: f64,
    z: Vec<f64>,
    peak_bond: Option<usize>,
    fidelity: Option<f64>,
    /// The state vector as (re, im) pairs, exported after the timer stopped (`--save-state`).
    state: Option<Vec<(f64, f64)>>,
}

fn z_observables(n: usize) -> Vec<Vec<PauliTerm>> {
    (0..n).map(|q| vec![PauliTerm::z(q)]).collect()
}

/// The public entry point with the MPS backend forced.
fn run_simulate(circuit: &Circuit, args: &Args) -> Result<Run, String> {
    let observables = z_observables(circuit.num_qubits);
    let start = Instant::now();
    let result = simulate(circuit)
        .backend(BackendKind::Mps {
            max_bond_dim: args.max_bond,
        })
        .seed(args.seed)
        .expectation_values_reported(&observables)
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let fidelity = match result.metadata.exactness {
        Exactness::Exact => Some(1.0),
        Exactness::Approximate {
            fidelity_lower_bound,
        } => fidelity_lower_bound,
        _ => None,
    };
    Ok(Run {
        seconds,
        z: result.values,
        peak_bond: result.metadata.bond.map(|b| b.peak),
        fidelity,
        state: None,
    })
}

/// The backend driven by hand, for a truncation threshold other than the default.
fn run_backend(circuit: &Circuit, args: &Args, epsilon: f64, export: bool) -> Result<Run, String> {
    let n = circuit.num_qubits;
    let observables = z_observables(n);
    let start = Instant::now();
    let mut backend = MpsBackend::new(args.seed, args.max_bond);
    backend.set_svd_epsilon(epsilon);
    let expanded = if backend.supports_qft_block() {
        recognize_qft_blocks(circuit)
    } else {
        expand_qft_blocks(circuit)
    };
    let expanded = if backend.supports_pauli_rotation() {
        expanded
    } else {
        let rotated = match expand_pauli_rotations(&expanded) {
            Cow::Owned(c) => Some(c),
            Cow::Borrowed(_) => None,
        };
        rotated.map_or(expanded, Cow::Owned)
    };
    let fused = fuse_circuit_for_profile(
        &expanded,
        backend.supports_fused_gates(),
        backend.fusion_state_qubits(n),
        backend.fusion_profile(n),
    );
    backend
        .init(n, circuit.num_classical_bits)
        .map_err(|e| e.to_string())?;
    backend
        .apply_instructions(&fused.instructions)
        .map_err(|e| e.to_string())?;
    let z = backend
        .pauli_expectations(&observables)
        .map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let state = if export {
        let amps = backend.export_statevector().map_err(|e| e.to_string())?;
        Some(amps.iter().map(|a| (a.re, a.im)).collect())
    } else {
        None
    };
    Ok(Run {
        seconds,
        z,
        peak_bond: backend.bond_report().map(|b| b.peak),
        fidelity: Some((1.0 - backend.truncation_discarded()).max(0.0)),
        state,
    })
}

/// The warm-up circuit (as the other runners'): one- and two-qubit gates on four qubits.
const WARM_UP: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[4];\n\
    h q[0];\nry(0.3) q[1];\nrz(0.2) q[2];\nrx(0.1) q[3];\ncx q[0],q[3];\ncz q[1],q[2];\ncx q[1],q[2];\n";

fn json_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".into()
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let circuit = match prism_q::circuit::openqasm::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file);
            return ExitCode::from(2);
        }
    };
    let pool = match ThreadPool::with_threads(args.threads) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let once = |c: &Circuit, export: bool| match args.svd_epsilon {
        None => run_simulate(c, &args),
        Some(eps) => run_backend(c, &args, eps, export),
    };
    let warm = match prism_q::circuit::openqasm::parse(WARM_UP) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: warm-up circuit: {e}");
            return ExitCode::from(1);
        }
    };
    let runs = pool.install(|| -> Result<(Run, Vec<f64>), String> {
        once(&warm, false)?;
        let first = once(&circuit, args.save_state.is_some())?;
        let mut runs = vec![first.seconds];
        while runs.len() < args.repeat && runs.iter().sum::<f64>() < args.repeat_budget {
            runs.push(once(&circuit, false)?.seconds);
        }
        Ok((first, runs))
    });
    let (run, runs) = match runs {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let (Some(path), Some(state)) = (&args.save_state, &run.state) {
        let mut bytes = Vec::with_capacity(16 * state.len());
        for &(re, im) in state {
            bytes.extend_from_slice(&re.to_le_bytes());
            bytes.extend_from_slice(&im.to_le_bytes());
        }
        if let Err(e) = std::fs::write(path, bytes) {
            eprintln!("error: --save-state {path}: {e}");
            return ExitCode::from(1);
        }
    }
    let fastest = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let runs_json: Vec<String> = runs.iter().map(|&t| json_f64(t)).collect();
    let z: Vec<String> = run.z.iter().map(|&v| json_f64(v)).collect();
    println!(
        "{{\"sim\":\"prism-q\",\"seconds\":{},\"first_seconds\":{},\"runs\":[{}],\"z\":[{}],\"peak_bond\":{},\"fidelity\":{},\"version\":\"{}\",\"threads\":{},\"path\":\"{}\",\"svd_epsilon\":{}}}",
        json_f64(fastest),
        json_f64(run.seconds),
        runs_json.join(","),
        z.join(","),
        run.peak_bond.map_or("null".into(), |b| b.to_string()),
        run.fidelity.map_or("null".into(), json_f64),
        PRISM_VERSION,
        args.threads,
        if args.svd_epsilon.is_some() {
            "backend"
        } else {
            "simulate"
        },
        args.svd_epsilon.map_or("1e-12".into(), json_f64),
    );
    ExitCode::SUCCESS
}
