//! # qfl: quantum circuits as matrix product states, and the Quantum Fusion Layer
//!
//! qfl simulates quantum circuits at large qubit counts as matrix product states (MPS), with
//! an exact state-vector backend as the reference every MPS result is checked against.
//!
//! ## Layers
//! - [`circuit`]: pure data. [`Gate`] (the closed qelib1 set plus checked user matrices),
//!   [`Param`] (fixed, trainable or input angles, bound at run time), [`Circuit`] (validated
//!   on every push).
//! - [`observable`]: [`PauliString`] and weighted sums ([`Observable`]).
//! - [`backend`]: the [`StateBackend`] trait with two implementations, [`DenseState`] (exact)
//!   and [`MpsState`] (SVD truncation with explicit [`Truncation`] settings).
//! - [`grad`]: adjoint differentiation of expectation values on either backend.
//! - [`fusion`]: the classical side on candle: the [`fusion::FusionModel`] interface,
//!   encoders, seeded initialization.
//! - [`experiment`]: the few-shot protocol (splits, training, ROC AUC over seeds, tables).
//! - [`train`]: training any fusion model (Adam, cross-entropy, early stopping, curves).
//! - [`shadows`]: randomized measurements (classical shadows) estimating many observables.
//! - [`qfl`](mod@qfl): the quantum fusion layer ([`qfl::QflLayer`]): circuit, readout, forward and
//!   backward on either backend.
//! - [`qasm`]: the OpenQASM 2.0 importer, giving a [`Program`] (registers, gates,
//!   measurements, resets, classical `if`); [`Program::to_circuit`] gives the unitary
//!   [`Circuit`] when the measurements are final.
//! - [`run`]: programs shot by shot (seeded trajectories) on any backend, sampling, and
//!   exact outcome distributions. See `docs/qasm.md`.
//! - [`data`]: multimodal data sets ([`Dataset`] of named [`Modality`]s), `.ts` and CSV
//!   loaders with file:line:field errors, the bundled sets, standardization and the
//!   few-shot split protocol. See `docs/data.md`.
//! - [`metrics`]: ROC AUC (binary and one-vs-rest), accuracy, mean and spread over repeats.
//!
//! ## Feature flags
//! - `cli` (default): the `qfl` command line (`qfl run`, `qfl info`) and its dependencies
//!   (clap, indicatif, serde, serde_json). The library itself needs none of them:
//!   `default-features = false` leaves them out.
//! - `lapack` (off): a second SVD backend, [`SvdBackend::Lapack`], running the system LAPACK
//!   (`zgesdd`, then `zgesvd`) through ndarray-linalg over Debian's OpenBLAS
//!   (`scripts/install-lapack.sh` installs it). Chosen per state with
//!   [`MpsConfig::with_svd`]; without the feature that choice is an
//!   [`Error::FeatureNotEnabled`] when the state is created. The default build stays pure Rust.
//!
//! Only the private `linalg` module and the MPS backend talk to faer (and only `linalg` to
//! ndarray-linalg); the public API speaks `num_complex::Complex64`.
//!
//! ## Quick start
//! ```
//! use qfl::{Circuit, MpsConfig, MpsState, Param, StateBackend, Truncation};
//! # fn main() -> qfl::Result<()> {
//! // A 2-layer brick circuit on 50 qubits with one trainable angle per qubit.
//! let n = 50;
//! let mut c = Circuit::new(n)?.with_params(n);
//! for _layer in 0..2 {
//!     for q in 0..n {
//!         c.ry(Param::theta(q), q)?;
//!     }
//!     for q in (0..n - 1).step_by(2).chain((1..n - 1).step_by(2)) {
//!         c.cx(q, q + 1)?;
//!     }
//! }
//! let theta: Vec<f64> = (0..n).map(|q| 0.1 * q as f64).collect();
//! let mut psi = MpsState::new(n, MpsConfig::default().with_truncation(Truncation::default().with_max_bond(32)))?;
//! psi.run(&c, &theta, &[])?;
//! let z = psi.z_expectations()?;
//! assert_eq!(z.len(), n);
//! println!("<Z_0> = {:.6}, fidelity estimate {:.6}", z[0], psi.fidelity_estimate());
//! # Ok(()) }
//! ```
//!
//! Conventions (qubit order, gate matrices) are in `docs/conventions.md`; the design in
//! `docs/architecture.md`.

#![warn(missing_docs)]
// Index loops mirror the tensor formulas they implement; iterator chains would hide them.
#![allow(clippy::needless_range_loop)]

pub mod backend;
mod bits;
pub mod circuit;
pub mod data;
pub mod error;
pub mod experiment;
pub mod fusion;
pub mod grad;
mod linalg;
pub mod metrics;
pub mod observable;
#[cfg(feature = "cli")]
pub mod plot;
pub mod qasm;
pub mod qfl;
pub mod run;
pub mod shadows;
pub mod train;

pub use backend::{
    AdjointBackend, AdjointPair, CutoffRule, DenseState, MpsConfig, MpsState, Parallelism, Routing,
    SplitMethod, StateBackend, Truncation, TruncationEvent, TruncationReport, UpdateScheme,
    ZReadOut,
};
pub use bits::BitString;
pub use circuit::{
    Circuit, Gate, GateMatrix, Instruction, MeasuredCircuit, Operation, Param, Program,
    ProgramStats, Register,
};
pub use data::{Dataset, Modality};
pub use error::{DataErrorKind, DataField, Error, ParamSource, QasmErrorKind, Result};
pub use linalg::{SVD_RESIDUAL_TOLERANCE, SvdBackend, ThinSvd, thin_svd};
pub use observable::{Observable, Pauli, PauliString};

/// The code blocks of README.md, compiled and run as doctests so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
