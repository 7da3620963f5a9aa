//! Held amplitudes: a short chain kept as its `2^n` amplitudes between runs, split into
//! sites only when something needs the sites.
//!
//! A chain of at most [`HOLD_MAX_QUBITS`] qubits may run on its amplitudes (the whole chain
//! as one window block, see `block`). Splitting them back into `n` sites costs `n - 1`
//! factorizations at the largest cuts of the chain: on a 10-qubit chain that is half of a
//! 480-gate circuit's run, and on a 4-qubit chain more than the gates. When the split
//! cannot truncate, it changes nothing but the representation: every bond of a chain of `n`
//! qubits is at most `2^floor(n/2)`, so with a max bond at least that and a cutoff at the
//! round-off level ([`HOLD_MAX_CUTOFF`]) the sites are an exact factorization of the
//! amplitudes. The state then keeps the amplitudes ([`MpsState::holds_amplitudes`]) and
//! defers the split:
//!
//! - runs continue on the amplitudes (gates fused, no routing);
//! - `<Z_i>`, one-qubit density matrices, Pauli expectations, amplitudes, marginals, the
//!   norm, projections and `to_dense` read or change the amplitudes directly, in
//!   `O(2^n)` each;
//! - everything that needs sites (moving the centre, applying a lone gate, TEBD, adjoint
//!   differentiation, sampling, bond dimensions) splits first, with the state's truncation,
//!   exactly as the run would have split at its end. Sampling splits a copy, so a seed
//!   draws the same bit strings whichever form the state is in.
//!
//! With a larger cutoff or a smaller max bond, the run splits at its end as before, so what
//! the settings would truncate is truncated.

use std::borrow::Cow;

use num_complex::Complex64 as C64;

use super::{CentreEnd, MpsState, UpdateScheme, block};
use crate::backend::{DenseState, StateBackend};
use crate::error::Result;

/// Chains of at most this many qubits may be held as amplitudes (`2^12` amplitudes are
/// 64 KiB): the chains that may run on their amplitudes at all (`block::DENSE_MAX_QUBITS`).
pub const HOLD_MAX_QUBITS: usize = block::DENSE_MAX_QUBITS;

/// The largest relative cutoff (discarded weight per cut) under which a split is taken as
/// lossless: `1e-16`, Qiskit Aer's default and qfl's, is the round-off of the squared
/// amplitudes themselves, so what it may drop is numerical noise.
pub const HOLD_MAX_CUTOFF: f64 = 1e-16;

/// Chains of at most this many qubits that may hold run every circuit on their amplitudes
/// from its first gate; longer ones (up to [`HOLD_MAX_QUBITS`]) only from where the plan
/// finds them entangled (`block`'s dense tail). Measured on QASMBench (2 threads, max bond
/// 64, in process), holding from the first gate instead of from the dense tail: `simon_n6`
/// 6.3 -> 3.5 us, `qaoa_n6` 37 -> 22 us, `sat_n7` 16 -> 11 us, `hhl_n7` 102 -> 69 us,
/// `dnn_n8` 127 -> 94 us, `qpe_n9` 52 -> 36 us; at 10 qubits `ising_n10` gained nothing and
/// `adder_n10` (bond 1 throughout, Toffolis) took 2x longer on its 1024 amplitudes.
pub const HOLD_FROM_START_MAX_QUBITS: usize = 9;

impl MpsState {
    /// Whether the state is held as its amplitudes (see the module docs of `held`): a chain
    /// of at most [`HOLD_MAX_QUBITS`] qubits, run with window blocks on, a max bond of at
    /// least `2^floor(n/2)` and a cutoff of at most [`HOLD_MAX_CUTOFF`]. Every reader gives
    /// what it gives on the sites (to round-off); the sites are made when needed.
    pub fn holds_amplitudes(&self) -> bool {
        self.held.is_some()
    }

    /// Whether this state's settings let it hold its amplitudes.
    pub(super) fn may_hold(&self) -> bool {
        self.config.window_blocks
            && self.config.update != UpdateScheme::Tebd
            && (2..=HOLD_MAX_QUBITS).contains(&self.n_qubits)
            && self.split_is_lossless()
    }

    /// Whether splitting the chain's amplitudes into sites cannot truncate: a max bond of
    /// at least `2^floor(n/2)` and a cutoff of at most [`HOLD_MAX_CUTOFF`].
    pub(super) fn split_is_lossless(&self) -> bool {
        let truncation = self.config.truncation;
        truncation
            .max_bond()
            .is_none_or(|m| m >= 1 << (self.n_qubits / 2))
            && truncation.cutoff() <= HOLD_MAX_CUTOFF
    }

    /// The held amplitudes, if any.
    pub(super) fn held(&self) -> Option<&DenseState> {
        self.held.as_ref()
    }

    /// The chain's amplitudes from its sites (qubit `j` bit `j` of the index).
    pub(super) fn amplitudes_of_sites(&self) -> Vec<C64> {
        debug_assert!(self.held.is_none(), "sites read while amplitudes are held");
        if self.sites.iter().all(|s| s.chi_r == 1) {
            // A product state: the Kronecker product of the sites, no matrix products.
            let mut psi = Vec::with_capacity(1 << self.n_qubits);
            psi.push(C64::new(1.0, 0.0));
            for site in &self.sites {
                let len = psi.len();
                psi.extend_from_within(..);
                let (lo, hi) = psi.split_at_mut(len);
                for (a, b) in lo.iter_mut().zip(hi) {
                    *b = *a * site.data[1];
                    *a *= site.data[0];
                }
            }
            return psi;
        }
        self.window_theta(0, self.n_qubits).0
    }

    /// Takes `amps` (normalized, `2^n` of them) as the state, held.
    pub(super) fn hold(&mut self, amps: Vec<C64>) -> Result<()> {
        let dense = DenseState::from_amplitudes(amps)?
            .with_norm_tolerance(self.config.norm_tolerance)
            .with_parallel_threshold(usize::MAX);
        self.touch(0, self.n_qubits - 1);
        self.held = Some(dense);
        self.centre = self.n_qubits - 1;
        Ok(())
    }

    /// The held amplitudes, for a change in place; the state counts as changed.
    pub(super) fn held_mut(&mut self) -> Option<&mut DenseState> {
        if self.held.is_some() {
            self.touch(0, self.n_qubits - 1);
        }
        self.held.as_mut()
    }

    /// Splits held amplitudes into sites with the state's truncation, the centre at the
    /// right end (what a run on the amplitudes does at its end). Nothing to do on a state
    /// not held; an error (a factorization that fails) leaves the state held.
    pub(super) fn release(&mut self) -> Result<()> {
        self.settle()?;
        let Some(dense) = self.held.take() else {
            return Ok(());
        };
        let n = self.n_qubits;
        let amps = dense.amplitudes();
        // The small path contracts the (stale) sites into its window buffer first: make
        // them the product state, whose contraction is free, then overwrite the window.
        for site in &mut self.sites {
            site.chi_l = 1;
            site.chi_r = 1;
            site.data.clear();
            site.data
                .extend_from_slice(&[C64::new(1.0, 0.0), C64::new(0.0, 0.0)]);
        }
        self.centre = 0;
        let mut fill = |data: &mut [C64], _: usize, _: usize| {
            data.copy_from_slice(amps);
            Ok(())
        };
        let outcome = match self.apply_small_with(0, n, CentreEnd::Right, &mut fill) {
            Ok(true) => Ok(()),
            Ok(false) => self
                .split(amps.to_vec(), 1, n, 1, 0, CentreEnd::Right)
                .map(|sites| {
                    for (j, site) in sites.into_iter().enumerate() {
                        self.sites[j] = site;
                    }
                }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.touch(0, n - 1);
                self.centre = n - 1;
                Ok(())
            }
            Err(e) => {
                self.held = Some(dense);
                self.centre = n - 1;
                Err(e)
            }
        }
    }

    /// This state with sites: itself, or a copy split from its held amplitudes.
    pub(super) fn with_sites(&self) -> Result<Cow<'_, MpsState>> {
        if self.unswept {
            return self.swept_copy().map(Cow::Borrowed);
        }
        if self.held.is_none() {
            return Ok(Cow::Borrowed(self));
        }
        let mut copy = self.clone();
        copy.release()?;
        Ok(Cow::Owned(copy))
    }

    /// Whether a run on this state takes the held path ([`run_held`](Self::run_held)): the
    /// state is held already, or is a chain of at most [`HOLD_FROM_START_MAX_QUBITS`] qubits
    /// that may hold.
    pub(super) fn runs_held(&self) -> bool {
        self.may_hold() && (self.held.is_some() || self.n_qubits <= HOLD_FROM_START_MAX_QUBITS)
    }

    /// Runs `instructions` on the chain's amplitudes and holds them (see
    /// [`runs_held`](Self::runs_held) for when): every gate in circuit order with fusion, no
    /// routing, no factorization. An error leaves the state as it was.
    pub(super) fn run_held(
        &mut self,
        instructions: &[crate::Instruction],
        theta: &[f64],
        x: &[f64],
    ) -> Result<()> {
        debug_assert!(self.runs_held());
        let mut psi = match &self.held {
            Some(dense) => dense.amplitudes().to_vec(),
            None => self.amplitudes_of_sites(),
        };
        super::amplitudes::run_instructions(&mut psi, instructions, theta, x)?;
        self.hold(psi)
    }
}

/// The bond dimensions of a held state: those of its split (the Schmidt ranks above the
/// cutoff), or, if the split fails, the largest a chain of `n` qubits can have.
pub(super) fn held_bond_dimensions(state: &MpsState) -> Vec<usize> {
    match state.with_sites() {
        Ok(s) => s.bond_dimensions(),
        Err(_) => crate::backend::full_bond_dimensions(state.n_qubits),
    }
}

/// Amplitudes are read in chunks of `2^RDM_CHUNK_BITS` (1 MiB, in L2) by
/// [`rdms_of_amplitudes`]: the qubits below it in one pass over memory, one pass for each
/// qubit above. The read-out of a 24-qubit run that goes over: 0.74 s qubit by qubit on one
/// thread, 0.30 s so on two (2026-12-04, docs/performance.md run d).
const RDM_CHUNK_BITS: usize = 16;

/// The one-qubit density matrices of `amps` (qubit `j` bit `j` of the index), laid out as
/// [`MpsState::single_qubit_rdms`] gives them: `r[s, t] = sum conj(psi(.. s ..)) psi(.. t ..)`
/// over the other qubits. By the threads of the current rayon pool when `parallel`; the
/// sums are taken in the same order either way, so the bits do not depend on it.
pub(super) fn rdms_of_amplitudes(amps: &[C64], parallel: bool) -> Vec<[C64; 4]> {
    use rayon::prelude::*;
    let n = amps.len().trailing_zeros() as usize;
    let low = n.min(RDM_CHUNK_BITS);
    let chunk = 1usize << low;
    let mut out = vec![[C64::new(0.0, 0.0); 4]; n];
    let add = |acc: &mut [C64; 4], part: &[C64; 4]| {
        for (x, y) in acc.iter_mut().zip(part) {
            *x += y;
        }
    };
    // Qubits below `low`: a chunk holds both amplitudes of each of their pairs.
    let in_chunk = |c: &[C64]| -> Vec<[C64; 4]> {
        (0..low)
            .map(|q| {
                let bit = 1usize << q;
                let mut rho = [C64::new(0.0, 0.0); 4];
                for run in c.chunks_exact(2 * bit) {
                    let (zero, one) = run.split_at(bit);
                    pair_sums(&mut rho, zero, one);
                }
                rho
            })
            .collect()
    };
    let parts: Vec<Vec<[C64; 4]>> = if parallel {
        amps.par_chunks(chunk).map(in_chunk).collect()
    } else {
        amps.chunks(chunk).map(in_chunk).collect()
    };
    for part in &parts {
        for (acc, rho) in out.iter_mut().zip(part) {
            add(acc, rho);
        }
    }
    // Qubits from `low`: chunk `r` of the runs with bit q clear, and its partner `2^q` on.
    for (q, acc) in out.iter_mut().enumerate().skip(low) {
        let bit = 1usize << q;
        let per = bit / chunk;
        let cross = |r: usize| {
            let base = (r / per) * 2 * bit + (r % per) * chunk;
            let mut rho = [C64::new(0.0, 0.0); 4];
            pair_sums(
                &mut rho,
                &amps[base..base + chunk],
                &amps[base + bit..base + bit + chunk],
            );
            rho
        };
        let runs = amps.len() / (2 * chunk);
        let parts: Vec<[C64; 4]> = if parallel {
            (0..runs).into_par_iter().map(cross).collect()
        } else {
            (0..runs).map(cross).collect()
        };
        for rho in &parts {
            add(acc, rho);
        }
    }
    for rho in &mut out {
        rho[2] = rho[1].conj();
    }
    out
}

/// Adds the sums over the pairs `(zero[i], one[i])` of a qubit to `rho`: `|a|^2` to `r00`,
/// `conj(a) b` to `r01`, `|b|^2` to `r11`.
fn pair_sums(rho: &mut [C64; 4], zero: &[C64], one: &[C64]) {
    for (a, b) in zero.iter().zip(one) {
        rho[0].re += a.norm_sqr();
        rho[1] += a.conj() * b;
        rho[3].re += b.norm_sqr();
    }
}
