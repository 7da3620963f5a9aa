//! Matrix product state backend.
//!
//! The state of `n` qubits is a chain of site tensors `A[i]` of shape `(chi_l, 2, chi_r)`,
//! with `chi_l = 1` at site 0 and `chi_r = 1` at site `n - 1`; site `i` holds qubit `i`.
//!
//! **Canonical form.** The state tracks an orthogonality centre `c`. Invariant, kept by every
//! operation: every site left of `c` is left-orthonormal (`sum_s A[s]^H A[s] = I`), every site
//! right of `c` is right-orthonormal (`sum_s A[s] A[s]^H = I`). So the norm of the state is the
//! Frobenius norm of `A[c]`, and a truncated SVD of two sites next to the centre is the best
//! approximation of the whole state in the 2-norm.
//!
//! **Gates.** One-qubit gates act on a site in place and do not touch the form. A `k`-qubit
//! gate (k = 2, 3) on adjacent sites moves the centre into the window, contracts and splits:
//!
//! ```text
//!      |    |               |  |             |      |
//!     [  G   ]              [ G ]            U --S-- V^H
//!      |    |      ->       |  |      ->     |      |
//!  --A[i]--A[i+1]--     --[ theta ]--     --A'[i]--A'[i+1]--
//! ```
//!
//! `theta` is reshaped to a `(2 chi_l) x (2 chi_r)` matrix, factored by a checked SVD (see
//! `linalg`), truncated by the state's [`Truncation`], renormalized, and the discarded
//! weight recorded. A non-adjacent gate applied alone is routed: its qubits are swapped next
//! to each other (each swap itself a two-site update), the gate applied, and the swaps undone.
//! A run follows a plan made from the whole circuit (`routing`): gathered qubits may stay
//! where they are while the gates ahead allow ([`Routing::Lookahead`]), runs of gates on one
//! pair are fused into one update, and the plan ends by sorting every qubit home, so qubit `i`
//! is on site `i` whenever a call returns.
//!
//! Storage: a site's entries are column-major with index `l + chi_l * (s + 2 * r)`, so the same
//! buffer reads as the `(2 chi_l) x chi_r` matrix `(l, s) x r` and as the `chi_l x (2 chi_r)`
//! matrix `l x (s, r)` without copies.

mod adjoint;
mod amplitudes;
mod block;
mod held;
mod product;
mod readout;
mod routing;
mod small;
mod tebd;
mod truncation;

pub use block::AMPLITUDE_TAIL_MAX_QUBITS;
pub use held::{HOLD_FROM_START_MAX_QUBITS, HOLD_MAX_CUTOFF, HOLD_MAX_QUBITS};
pub use routing::Routing;
pub use tebd::{
    AUTO_TEBD_BOND, AUTO_TEBD_MIN_QUBITS, AUTO_TEBD_STEPS_PER_QUBIT, UpdateScheme, ZReadOut,
};

pub use adjoint::MpsAdjointPair;

pub use truncation::{CutoffRule, EXACT_CUTOFF, Truncation, TruncationEvent, TruncationReport};

use faer::{Mat, MatRef};
use num_complex::Complex64 as C64;

use super::{DenseState, Parallelism, check_gate_qubits};
use crate::circuit::{Action, GateMatrix};
use crate::error::{Error, Result};
pub use crate::linalg::SplitMethod;
use crate::linalg::{self, SvdBackend};
use routing::{Part, Route, Step};
use truncation::TruncationLog;

const ZERO: C64 = C64::new(0.0, 0.0);

/// Windows of at least this many sites are contracted in the order of fewest
/// multiply-adds (see [`MpsState::window_theta`]); shorter ones site by site.
const CHAIN_ORDER_MIN_SITES: usize = 8;

/// Number of terms above which [`MpsState`] evaluates an [`Observable`](crate::Observable) in
/// one sweep through its MPO instead of term by term.
pub const MPO_EXPECTATION_TERMS: usize = 4;

/// Settings of an [`MpsState`]: truncation, how cuts are factored (split method and SVD
/// backend), threads and the norm check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MpsConfig {
    truncation: Truncation,
    split: SplitMethod,
    parallelism: Parallelism,
    svd: SvdBackend,
    norm_tolerance: f64,
    update: UpdateScheme,
    routing: Routing,
    window_blocks: bool,
}

impl Default for MpsConfig {
    /// [`Truncation::default`], [`SplitMethod::Gram`], one thread, [`SvdBackend::Faer`],
    /// norm tolerance `1e-8`, [`UpdateScheme::Auto`], [`Routing::Lookahead`], window
    /// blocks on.
    fn default() -> Self {
        MpsConfig {
            truncation: Truncation::default(),
            split: SplitMethod::default(),
            parallelism: Parallelism::Sequential,
            svd: SvdBackend::Faer,
            norm_tolerance: 1e-8,
            update: UpdateScheme::default(),
            routing: Routing::default(),
            window_blocks: true,
        }
    }
}

impl MpsConfig {
    /// Sets the truncation.
    pub fn with_truncation(mut self, truncation: Truncation) -> Self {
        self.truncation = truncation;
        self
    }

    /// Sets how a two-site tensor is factored at each cut.
    pub fn with_split(mut self, split: SplitMethod) -> Self {
        self.split = split;
        self
    }

    /// How cuts are factored.
    pub fn split(&self) -> SplitMethod {
        self.split
    }

    /// Sets how [`MpsState::run`](crate::StateBackend::run) applies the gates of a circuit
    /// (default [`UpdateScheme::Auto`], as `qfl run`; [`UpdateScheme::Centre`] makes every
    /// truncation optimal at 2-5x the time on entangling circuits, see `docs/performance.md`).
    pub fn with_update(mut self, update: UpdateScheme) -> Self {
        self.update = update;
        self
    }

    /// How circuits are run.
    pub fn update(&self) -> UpdateScheme {
        self.update
    }

    /// Sets how [`MpsState::run`](crate::StateBackend::run) routes gates on qubits that are
    /// not neighbours on the chain. Gates applied one at a time with
    /// [`apply_matrix`](crate::StateBackend::apply_matrix) always swap back.
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// How runs route far gates.
    pub fn routing(&self) -> Routing {
        self.routing
    }

    /// Sets whether a centred run ([`UpdateScheme::Centre`]) applies a run of steps that
    /// stays within a few sites of small bonds as one block: the window contracted once,
    /// every step applied to it, and one split back (a factorization per cut of the window
    /// instead of one per update). The same state to round-off where nothing is
    /// truncated; where something is, a block truncates less often. The largest such block
    /// is the whole chain: a chain of at most 12 qubits that has become entangled finishes
    /// the run on its `2^n` amplitudes (gates fused, as a state-vector simulator runs them)
    /// and is split back into sites once, at the end; so does a chain of up to
    /// [`AMPLITUDE_TAIL_MAX_QUBITS`] qubits once its bonds make a two-site update dearer
    /// than a gate on every amplitude (its only truncation is then the split back). On by
    /// default; off, every update is factored on its own (as Qiskit Aer and prism-q do).
    pub fn with_window_blocks(mut self, on: bool) -> Self {
        self.window_blocks = on;
        self
    }

    /// Whether centred runs take window blocks.
    pub fn window_blocks(&self) -> bool {
        self.window_blocks
    }

    /// Sets the threads the linear algebra may use.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Sets which library computes the SVDs: every cut's with [`SplitMethod::Svd`], the
    /// fallbacks of [`SplitMethod::Gram`]. [`SvdBackend::Lapack`] needs the
    /// cargo feature `lapack`: without it, [`MpsState::new`] returns
    /// [`Error::FeatureNotEnabled`].
    pub fn with_svd(mut self, svd: SvdBackend) -> Self {
        self.svd = svd;
        self
    }

    /// Sets the tolerance on `|norm - 1|` before each truncation (a unitary gate keeps the norm,
    /// so a drift means round-off has gone wrong).
    pub fn with_norm_tolerance(mut self, tolerance: f64) -> Self {
        self.norm_tolerance = tolerance;
        self
    }

    /// The truncation.
    pub fn truncation(&self) -> Truncation {
        self.truncation
    }

    /// The parallelism.
    pub fn parallelism(&self) -> Parallelism {
        self.parallelism
    }

    /// The SVD backend.
    pub fn svd(&self) -> SvdBackend {
        self.svd
    }

    /// The norm tolerance.
    pub fn norm_tolerance(&self) -> f64 {
        self.norm_tolerance
    }

    fn validate(&self) -> Result<()> {
        self.truncation.validate()?;
        self.svd.check_available()?;
        if !(self.norm_tolerance.is_finite() && self.norm_tolerance > 0.0) {
            return Err(Error::InvalidSetting {
                name: "norm_tolerance",
                value: self.norm_tolerance.to_string(),
                reason: "must be finite and positive",
            });
        }
        Ok(())
    }
}

/// One site tensor, entries at `l + chi_l * (s + 2 * r)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Site {
    pub chi_l: usize,
    pub chi_r: usize,
    pub data: Vec<C64>,
}

impl Site {
    /// `(l, s) x r` view.
    pub fn as_ls_r(&self) -> MatRef<'_, C64> {
        MatRef::from_column_major_slice(&self.data, 2 * self.chi_l, self.chi_r)
    }

    /// `l x (s, r)` view.
    pub fn as_l_sr(&self) -> MatRef<'_, C64> {
        MatRef::from_column_major_slice(&self.data, self.chi_l, 2 * self.chi_r)
    }

    fn from_mat(m: MatRef<'_, C64>, chi_l: usize, chi_r: usize) -> Site {
        debug_assert_eq!(m.nrows() * m.ncols(), 2 * chi_l * chi_r);
        Site {
            chi_l,
            chi_r,
            data: col_major_of(m),
        }
    }
}

/// The most rows of the left part a split reduces in one factorization
/// ([`MpsState::left_block`]): its `R x R` eigendecomposition and the cut-by-cut split of
/// an `R x R` matrix stay small next to the passes over the whole window it saves.
const BLOCK_ROWS: usize = 256;

/// ... and the fewest sites it takes at once (fewer cuts save too little).
const BLOCK_MIN_SITES: usize = 3;

/// The smallest eigenvalue of `A A^H`, as a fraction of its trace, with which
/// [`MpsState::left_block`] goes on: eigenvalues carry an absolute error of about
/// `R eps` of the trace (`5.7e-14` at `R = 256`), so their square roots are then exact to
/// about `3e-6` relative, and no cut of the block can see a spurious Schmidt value.
const BLOCK_MIN_WEIGHT: f64 = 1e-8;

/// The shape of a window's tensor: `k` sites from site `start`, with the bonds `chi_l` on
/// its left and `chi_r` on its right.
#[derive(Clone, Copy, Debug)]
struct Span {
    chi_l: usize,
    k: usize,
    chi_r: usize,
    start: usize,
}

impl Span {
    /// A whole chain of `n` sites.
    #[cfg(test)]
    fn chain(n: usize) -> Self {
        Span {
            chi_l: 1,
            k: n,
            chi_r: 1,
            start: 0,
        }
    }
}

/// Which end of a window the orthogonality centre is left on after a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CentreEnd {
    Left,
    Right,
}

/// A matrix product state of `n` qubits with explicit truncation.
///
/// ```
/// use qfl::{Circuit, MpsConfig, MpsState, StateBackend, Truncation};
/// # fn main() -> qfl::Result<()> {
/// let n = 100;
/// let mut ghz = Circuit::new(n)?;
/// ghz.h(0)?;
/// for q in 0..n - 1 {
///     ghz.cx(q, q + 1)?;
/// }
/// let config = MpsConfig::default().with_truncation(Truncation::default().with_max_bond(16));
/// let mut psi = MpsState::new(n, config)?;
/// psi.run(&ghz, &[], &[])?;
/// assert_eq!(psi.bond_dimensions().iter().max(), Some(&2));
/// let zz = psi.expectation_pauli(&"Z0 Z99".parse()?)?;
/// assert!((zz - 1.0).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MpsState {
    n_qubits: usize,
    sites: Vec<Site>,
    centre: usize,
    config: MpsConfig,
    log: TruncationLog,
    /// Sites modified since the last `take_touched` (used by caches of contractions).
    touched: Option<(usize, usize)>,
    /// One-qubit density matrices read locally from the Hastings form at the end of the last
    /// TEBD run; cleared by any change of the state.
    local: Option<Vec<[C64; 4]>>,
    /// The state as its amplitudes, when a run left it so (see `held`); `sites` and
    /// `centre` are then stale, and every reader and change goes through these.
    held: Option<DenseState>,
    /// Set when a TEBD run left `sites` in Hastings' form (right-orthonormal only up to
    /// the truncations, see `tebd`), the state being the normalized one they represent:
    /// the sweep that makes them exactly canonical is deferred until something needs it
    /// (see [`MpsState::settle`]). Readers then read a swept copy, made once ([`swept`]).
    ///
    /// [`swept`]: MpsState::swept
    unswept: bool,
    /// The swept copy of an `unswept` state, made by its first reader.
    swept: std::sync::OnceLock<Box<MpsState>>,
}

impl MpsState {
    /// `|0...0>` on `n_qubits` qubits (all bonds of dimension 1, centre at site 0).
    ///
    /// # Errors
    /// [`Error::NoQubits`], [`Error::InvalidSetting`] for bad settings.
    pub fn new(n_qubits: usize, config: MpsConfig) -> Result<Self> {
        if n_qubits == 0 {
            return Err(Error::NoQubits);
        }
        config.validate()?;
        let site = Site {
            chi_l: 1,
            chi_r: 1,
            data: vec![C64::new(1.0, 0.0), ZERO],
        };
        Ok(MpsState {
            n_qubits,
            sites: vec![site; n_qubits],
            centre: 0,
            config,
            log: TruncationLog::new(n_qubits),
            touched: None,
            local: None,
            held: None,
            unswept: false,
            swept: std::sync::OnceLock::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MpsConfig {
        &self.config
    }

    /// The orthogonality centre (see the module docs for the invariant).
    /// A state holding its amplitudes ([`holds_amplitudes`](Self::holds_amplitudes)) has
    /// none until it is split; this is then `n - 1`, where the split leaves it.
    pub fn centre(&self) -> usize {
        if self.held.is_some() {
            return self.n_qubits - 1;
        }
        if self.unswept {
            // Where the sweep leaves it.
            return 0;
        }
        self.centre
    }

    /// What truncation has discarded so far (totals, per-bond sums, fidelity estimate and
    /// proven bound).
    pub fn truncation_report(&self) -> TruncationReport {
        self.log.report()
    }

    /// Every cut that discarded weight, in order.
    pub fn truncation_events(&self) -> &[TruncationEvent] {
        &self.log.events
    }

    /// Number of two-site updates applied so far (gates and routing swaps).
    pub fn two_site_updates(&self) -> usize {
        self.log.updates
    }

    /// Largest bond dimension now.
    pub fn max_bond_dimension(&self) -> usize {
        if self.held.is_some() || self.unswept {
            return crate::StateBackend::bond_dimensions(self)
                .into_iter()
                .max()
                .unwrap_or(1);
        }
        self.sites.iter().map(|s| s.chi_r).max().unwrap_or(1)
    }

    /// Moves the orthogonality centre to `site` by QR sweeps; the state is unchanged.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`] if `site >= n_qubits`.
    pub fn move_centre(&mut self, site: usize) -> Result<()> {
        if site >= self.n_qubits {
            return Err(Error::QubitOutOfRange {
                qubit: site,
                n_qubits: self.n_qubits,
            });
        }
        self.release()?;
        while self.centre < site {
            self.shift_centre_right();
        }
        while self.centre > site {
            self.shift_centre_left();
        }
        Ok(())
    }

    /// Largest deviation from the canonical-form invariant (orthonormality of every site
    /// except the centre). Costs a sweep; meant for tests and debugging.
    pub fn canonical_deviation(&self) -> f64 {
        if self.held.is_some() || self.unswept {
            return self
                .with_sites()
                .map_or(f64::NAN, |s| s.canonical_deviation());
        }
        let p = self.config.parallelism;
        let mut worst = 0.0f64;
        for (i, site) in self.sites.iter().enumerate() {
            if i == self.centre {
                continue;
            }
            let (g, k) = if i < self.centre {
                let a = site.as_ls_r();
                let mut g = Mat::<C64>::zeros(site.chi_r, site.chi_r);
                linalg::mul(g.as_mut(), a.adjoint(), a, p);
                (g, site.chi_r)
            } else {
                let a = site.as_l_sr();
                let mut g = Mat::<C64>::zeros(site.chi_l, site.chi_l);
                linalg::mul(g.as_mut(), a, a.adjoint(), p);
                (g, site.chi_l)
            };
            worst = worst.max((&g - Mat::<C64>::identity(k, k)).norm_max());
        }
        worst
    }

    /// The start of a run: the product prefix (see `product`), then, on a state that runs
    /// held (see `held`), the rest on the amplitudes. Returns how many instructions ran; the
    /// state is on sites (not held) when that is fewer than all.
    fn start_run(
        &mut self,
        instructions: &[crate::Instruction],
        theta: &[f64],
        x: &[f64],
    ) -> Result<usize> {
        let done = self.run_product_prefix(instructions, theta, x)?;
        if done < instructions.len() {
            if self.runs_held() {
                self.run_held(&instructions[done..], theta, x)?;
                return Ok(instructions.len());
            }
            // The rest needs sites.
            self.release()?;
        }
        Ok(done)
    }

    /// Marks sites `lo..=hi` as modified.
    fn touch(&mut self, lo: usize, hi: usize) {
        self.local = None;
        self.touched = Some(match self.touched {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }

    /// The range of sites modified since the last call.
    pub(crate) fn take_touched(&mut self) -> Option<(usize, usize)> {
        self.touched.take()
    }

    /// QR step: centre `c` -> `c + 1`.
    fn shift_centre_right(&mut self) {
        if !self.shift_centre_right_small() {
            self.shift_centre_right_general();
        }
    }

    /// [`shift_centre_right`](Self::shift_centre_right) by `linalg::thin_qr`, any bond.
    fn shift_centre_right_general(&mut self) {
        let c = self.centre;
        self.touch(c, c + 1);
        let p = self.config.parallelism;
        let (q, r) = linalg::thin_qr(self.sites[c].as_ls_r(), p);
        let chi_l = self.sites[c].chi_l;
        let k = q.ncols();
        self.sites[c] = Site::from_mat(q.as_ref(), chi_l, k);
        let next = &self.sites[c + 1];
        let mut m = Mat::<C64>::zeros(k, 2 * next.chi_r);
        linalg::mul(m.as_mut(), r.as_ref(), next.as_l_sr(), p);
        let chi_r = next.chi_r;
        self.sites[c + 1] = Site::from_mat(m.as_ref(), k, chi_r);
        self.centre = c + 1;
    }

    /// LQ step: centre `c` -> `c - 1`.
    fn shift_centre_left(&mut self) {
        if !self.shift_centre_left_small() {
            self.shift_centre_left_general();
        }
    }

    /// [`shift_centre_left`](Self::shift_centre_left) by `linalg::thin_qr`, any bond.
    fn shift_centre_left_general(&mut self) {
        let c = self.centre;
        self.touch(c - 1, c);
        let p = self.config.parallelism;
        // A = L Q with A^H = Q' R', L = R'^H, Q = Q'^H.
        let ah = self.sites[c].as_l_sr().adjoint().to_owned();
        let (q, r) = linalg::thin_qr(ah.as_ref(), p);
        let k = q.ncols();
        let chi_r = self.sites[c].chi_r;
        self.sites[c] = Site::from_mat(q.adjoint().to_owned().as_ref(), k, chi_r);
        let prev = &self.sites[c - 1];
        let mut m = Mat::<C64>::zeros(2 * prev.chi_l, k);
        linalg::mul(m.as_mut(), prev.as_ls_r(), r.adjoint(), p);
        let chi_l = prev.chi_l;
        self.sites[c - 1] = Site::from_mat(m.as_ref(), chi_l, k);
        self.centre = c - 1;
    }

    /// One-qubit gate (row-major 2 x 2) in place: `A[l, s, r] <- sum_t G[s, t] A[l, t, r]`.
    fn apply_one(&mut self, u: &[C64; 4], q: usize) {
        self.touch(q, q);
        apply_one_to_site(&mut self.sites[q], u);
    }

    /// Applies a `k`-site gate given in window memory order (`p = sum_j s_j 2^j` over window
    /// offsets `j`) to sites `start .. start + k`.
    fn apply_window(&mut self, gm: &[C64], start: usize, k: usize) -> Result<()> {
        self.apply_window_toward(gm, start, k, None)
    }

    /// [`apply_window`](Self::apply_window) leaving the centre at the end of the window
    /// nearer the window that starts at `next` (the plan's next multi-site step), so the
    /// centre move before that step is one QR shorter when it lies the other way from where
    /// the centre came. The split is the same either way (the same cut of the same centred
    /// tensor, so the same singular values and truncation); only the side that keeps the
    /// singular values differs. Without `next`, the centre stays on the side it came from.
    fn apply_window_toward(
        &mut self,
        gm: &[C64],
        start: usize,
        k: usize,
        next: Option<usize>,
    ) -> Result<()> {
        let end = start + k - 1;
        let centre_end = self.enter_window(start, end, next)?;
        if !self.apply_small(gm, start, k, centre_end)? {
            self.apply_window_general(gm, start, k, centre_end)?;
        }
        self.touch(start, end);
        self.centre = match centre_end {
            CentreEnd::Left => start,
            CentreEnd::Right => end,
        };
        Ok(())
    }

    /// Moves the centre into the window of sites `start..=end` (to its nearer end) and
    /// returns the end the centre should be left at after an update of the window: toward
    /// `next` (the first site of the plan's next multi-site step), else on the side the
    /// centre came from.
    fn enter_window(&mut self, start: usize, end: usize, next: Option<usize>) -> Result<CentreEnd> {
        let centre_end = match next {
            Some(n) if n > start => CentreEnd::Right,
            Some(n) if n < start => CentreEnd::Left,
            _ if self.centre > end => CentreEnd::Left,
            _ => CentreEnd::Right,
        };
        if self.centre < start {
            self.move_centre(start)?;
        } else if self.centre > end {
            self.move_centre(end)?;
        }
        Ok(centre_end)
    }

    /// The update of [`apply_window`](Self::apply_window) (centre already in the window) by
    /// heap matrices and `linalg::split_left`, for any bond and SVD backend.
    fn apply_window_general(
        &mut self,
        gm: &[C64],
        start: usize,
        k: usize,
        centre_end: CentreEnd,
    ) -> Result<()> {
        let (data, chi_l, chi_r) = self.window_theta(start, k);
        let dim = 1usize << k;
        let data = apply_gate_to_theta(data, gm, chi_l, dim, chi_r);
        // Split into k sites.
        let new_sites = self.split(data, chi_l, k, chi_r, start, centre_end)?;
        for (j, site) in new_sites.into_iter().enumerate() {
            self.sites[start + j] = site;
        }
        Ok(())
    }

    /// Contracts sites `start .. start + k` into `theta` with entries at
    /// `l + chi_l * (p + 2^k * r)`; returns `(theta, chi_l, chi_r)`.
    ///
    /// A window of at least [`CHAIN_ORDER_MIN_SITES`] sites is contracted in the order of
    /// fewest multiply-adds (the matrix-chain order: joining sites `i..m` and `m..j` costs
    /// `chi_i chi_m chi_j 2^(j - i)`), which on a whole chain joins two halves contracted
    /// the same way. Site by site from the left costs `chi_l 2^j chi_j 2 chi_(j+1)` at site
    /// `j`, growing with `2^j` up to the last sites: 24 qubits at bond 256 took 3.2 s that
    /// way, about ten products of the final size where the middle cut costs one.
    pub(crate) fn window_theta(&self, start: usize, k: usize) -> (Vec<C64>, usize, usize) {
        let chi_l = self.sites[start].chi_l;
        let chi_r = self.sites[start + k - 1].chi_r;
        if k < CHAIN_ORDER_MIN_SITES {
            return (self.window_theta_from_left(start, k), chi_l, chi_r);
        }
        // bond[t]: the bond left of the window's site t (bond[k]: right of the last).
        let bond: Vec<f64> = std::iter::once(chi_l)
            .chain(self.sites[start..start + k].iter().map(|s| s.chi_r))
            .map(|c| c as f64)
            .collect();
        // cost[i][j], best[i][j]: the fewest multiply-adds for sites i..j and its last join.
        let mut cost = vec![vec![0.0f64; k + 1]; k + 1];
        let mut best = vec![vec![0usize; k + 1]; k + 1];
        for len in 2..=k {
            for i in 0..=k - len {
                let j = i + len;
                let outer = bond[i] * bond[j] * (len as f64).exp2();
                let (m, c) = (i + 1..j)
                    .map(|m| (m, cost[i][m] + cost[m][j] + outer * bond[m]))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .expect("a window of two or more sites has an inner bond");
                cost[i][j] = c;
                best[i][j] = m;
            }
        }
        let data = self.contract_in_order(start, 0, k, &best);
        (data, chi_l, chi_r)
    }

    /// Sites `start + i .. start + j` contracted in the order `best` of
    /// [`window_theta`](Self::window_theta).
    fn contract_in_order(&self, start: usize, i: usize, j: usize, best: &[Vec<usize>]) -> Vec<C64> {
        if j == i + 1 {
            return self.sites[start + i].data.clone();
        }
        let m = best[i][j];
        let left = self.contract_in_order(start, i, m, best);
        let right = self.contract_in_order(start, m, j, best);
        let rows = self.sites[start + i].chi_l << (m - i);
        let chi = self.sites[start + m - 1].chi_r;
        let cols = right.len() / chi;
        let mut data = vec![ZERO; rows * cols];
        linalg::mul(
            faer::MatMut::from_column_major_slice_mut(&mut data, rows, cols),
            MatRef::from_column_major_slice(&left, rows, chi),
            MatRef::from_column_major_slice(&right, chi, cols),
            self.config.parallelism,
        );
        data
    }

    /// [`window_theta`](Self::window_theta) site by site from the left.
    fn window_theta_from_left(&self, start: usize, k: usize) -> Vec<C64> {
        let p = self.config.parallelism;
        let mut data = self.sites[start].data.clone();
        let mut rows = 2 * self.sites[start].chi_l;
        for j in 1..k {
            let site = &self.sites[start + j];
            let theta = MatRef::from_column_major_slice(&data, rows, site.chi_l);
            let mut next = Mat::<C64>::zeros(rows, 2 * site.chi_r);
            linalg::mul(next.as_mut(), theta, site.as_l_sr(), p);
            data = col_major(next);
            rows *= 2;
        }
        data
    }

    /// Splits `theta` (entries at `l + chi_l * (p + 2^k * r)`) into `k` sites by successive
    /// SVDs, leaving the centre at the chosen end. Returns the new sites without touching the
    /// state, so a failing SVD leaves the state as it was.
    fn split(
        &mut self,
        theta: Vec<C64>,
        chi_l: usize,
        k: usize,
        chi_r: usize,
        start: usize,
        centre_end: CentreEnd,
    ) -> Result<Vec<Site>> {
        let p = self.config.parallelism;
        let truncation = self.config.truncation;
        let method = self.config.split;
        let svd = self.config.svd;
        let mut sites: Vec<Option<Site>> = vec![None; k];
        let mut rest = theta;
        let mut cuts = Vec::with_capacity(k - 1);
        match centre_end {
            CentreEnd::Right => {
                let span = Span {
                    chi_l,
                    k,
                    chi_r,
                    start,
                };
                self.sweep_right(rest, span, &mut sites, &mut cuts)?;
            }
            CentreEnd::Left => {
                // rest has entries at l + chi_l * (p + 2^(j+1) * m), read as
                // (chi_l 2^j) x (2 chi) for the site at offset j.
                let mut chi = chi_r;
                for j in (1..k).rev() {
                    let rows = chi_l * (1usize << j);
                    // Split A^H = U (S V^H): A = V S U^H, so site j = U^H (kept x 2 chi) and
                    // the remainder is (S V^H)^H = V S (rows x kept).
                    let a = MatRef::from_column_major_slice(&rest, rows, 2 * chi);
                    let ah = a.adjoint().to_owned();
                    let f = linalg::split_left(ah.as_ref(), method, p, svd)?;
                    let (kept, eps, scale) = self.truncate(&f.s, truncation, start + j - 1)?;
                    let mut uh = Vec::with_capacity(kept * 2 * chi);
                    for col in 0..2 * chi {
                        uh.extend((0..kept).map(|t| f.u[(col, t)].conj()));
                    }
                    sites[j] = Some(Site {
                        chi_l: kept,
                        chi_r: chi,
                        data: uh,
                    });
                    let mut next = Vec::with_capacity(rows * kept);
                    for t in 0..kept {
                        next.extend(f.rest.row(t).iter().map(|z| z.conj() * scale));
                    }
                    cuts.push((start + j - 1, eps, kept));
                    rest = next;
                    chi = kept;
                }
                sites[0] = Some(Site {
                    chi_l,
                    chi_r: chi,
                    data: rest,
                });
            }
        }
        self.log.next_update();
        for (bond, eps, kept) in cuts {
            self.log.record(bond, eps, kept);
        }
        Ok(sites
            .into_iter()
            .map(|s| s.expect("every site of the window is set"))
            .collect())
    }

    /// The cuts of [`split`](Self::split) towards a centre at the right end: `theta` of
    /// `span` (entries at `l + chi_l * (p + 2^k * r)`) into the `k` entries of `sites`, the
    /// last one the centre, every cut's truncation pushed to `cuts`. A wide left part of at
    /// most [`BLOCK_ROWS`] rows is first reduced in one factorization ([`Self::left_block`]).
    fn sweep_right(
        &self,
        theta: Vec<C64>,
        span: Span,
        sites: &mut [Option<Site>],
        cuts: &mut Vec<(usize, f64, usize)>,
    ) -> Result<()> {
        if let Some((b, rest, chi)) = self.left_block(&theta, span, sites, cuts)? {
            drop(theta);
            let right = Span {
                chi_l: chi,
                k: span.k - b,
                chi_r: span.chi_r,
                start: span.start + b,
            };
            return self.sweep_right(rest, right, &mut sites[b..], cuts);
        }
        let Span {
            chi_l,
            k,
            chi_r,
            start,
        } = span;
        let (p, truncation) = (self.config.parallelism, self.config.truncation);
        let (method, svd) = (self.config.split, self.config.svd);
        // rest has entries at m + chi * (p + 2^(k-j) * r), read as (2 chi) x (2^(k-j-1) chi_r).
        let mut rest = theta;
        let mut chi = chi_l;
        for j in 0..k - 1 {
            let cols = (1usize << (k - j - 1)) * chi_r;
            let a = MatRef::from_column_major_slice(&rest, 2 * chi, cols);
            let f = linalg::split_left_keeping(a, method, p, svd, |w| truncation.certain_keep(w))?;
            let (kept, eps, scale) = self.truncate_tail(&f.s, f.tail, truncation, start + j)?;
            sites[j] = Some(Site::from_mat(f.u.as_ref().get(.., ..kept), chi, kept));
            let mut next = Vec::with_capacity(kept * cols);
            for col in 0..cols {
                next.extend(f.rest.col(col).iter().take(kept).map(|z| z * scale));
            }
            cuts.push((start + j, eps, kept));
            rest = next;
            chi = kept;
        }
        sites[k - 1] = Some(Site {
            chi_l: chi,
            chi_r,
            data: rest,
        });
        Ok(())
    }

    /// The first `b` sites of [`sweep_right`](Self::sweep_right)'s split in one
    /// factorization, when the left part of `theta` of `b + 1` sites is a wide matrix `A` of
    /// `R = chi_l 2^(b+1)` rows (at least [`BLOCK_MIN_SITES`] + 1 sites, at most
    /// [`BLOCK_ROWS`] rows and the max bond, more columns than rows; the first cuts when a
    /// chain's amplitudes are split back into sites). The cut-by-cut split costs one pass over
    /// all of `theta` per cut; here `A A^H = U diag(w) U^H` once, and `M = U diag(sqrt w)`,
    /// which has the same left reduced state (`M M^H = A A^H`), is split into sites
    /// `0..b` cut by cut at the cost of an `R x R` matrix: every cut sees the Schmidt
    /// values and vectors of `A`, so the sites and their truncation are those of the
    /// cut-by-cut split (to round-off, up to a unitary on each bond). The rest is then
    /// `L^H A`, `L` the isometry of the new sites, renormalized as each cut renormalizes;
    /// returns `b`, it and its left bond. `None` (nothing done) when `A A^H` has an eigenvalue
    /// below [`BLOCK_MIN_WEIGHT`] of its trace: a square root is only as exact as the
    /// eigenvalue, so a nearly rank-deficient `A` takes the cut-by-cut split, whose weights
    /// are exact row norms (see `linalg::gram_split`).
    fn left_block(
        &self,
        theta: &[C64],
        span: Span,
        sites: &mut [Option<Site>],
        cuts: &mut Vec<(usize, f64, usize)>,
    ) -> Result<Option<(usize, Vec<C64>, usize)>> {
        let Span {
            chi_l,
            k,
            chi_r,
            start,
        } = span;
        let cap = BLOCK_ROWS.min(self.config.truncation.max_bond().unwrap_or(usize::MAX));
        // The most sites b with R = chi_l 2^(b+1) <= cap and the (b+1)-site part wide.
        let mut b = 0;
        while b + 2 < k
            && chi_l << (b + 2) <= cap
            && (chi_l << (b + 2)) <= (1usize << (k - b - 2)) * chi_r
        {
            b += 1;
        }
        if b < BLOCK_MIN_SITES {
            return Ok(None);
        }
        let rows = chi_l << (b + 1);
        let cols = theta.len() / rows;
        let p = linalg::par_for(self.config.parallelism, cols);
        let a = MatRef::from_column_major_slice(theta, rows, cols);
        let Some((w, u)) = linalg::gram_eigen(a, p) else {
            return Ok(None);
        };
        let total: f64 = w.iter().sum();
        if w.iter().any(|&x| x < BLOCK_MIN_WEIGHT * total) {
            return Ok(None);
        }
        let mut m = Vec::with_capacity(rows * rows);
        for (t, x) in w.iter().enumerate() {
            let r = x.sqrt();
            m.extend(u.col(t).iter().map(|z| z * r));
        }
        let mut inner: Vec<Option<Site>> = vec![None; b + 1];
        let block = Span {
            chi_l,
            k: b + 1,
            chi_r: rows,
            start,
        };
        self.sweep_right(m, block, &mut inner, cuts)?;
        // L: the new sites 0..b as a (chi_l 2^b) x chi matrix, one site at a time.
        let mut l = Mat::<C64>::identity(chi_l, chi_l);
        for (j, site) in inner.iter().take(b).enumerate() {
            let site = site.as_ref().expect("the inner sweep sets every site");
            let mut next = Mat::<C64>::zeros(2 * l.nrows(), site.chi_r);
            let s = site.as_ls_r();
            for bit in 0..2 {
                let (r0, h) = (bit * l.nrows(), site.chi_l);
                faer::linalg::matmul::matmul(
                    next.as_mut().subrows_mut(r0, l.nrows()),
                    faer::Accum::Replace,
                    l.as_ref(),
                    s.subrows(bit * h, h),
                    C64::new(1.0, 0.0),
                    faer::Par::Seq,
                );
            }
            l = next;
            sites[j] = Some(site.clone());
            debug_assert_eq!(l.nrows(), chi_l << (j + 1));
        }
        let chi = l.ncols();
        // rest = L^H A, A read as (R / 2) x (2 cols): entries at m + chi * (p + 2 r).
        let mut data = vec![ZERO; chi * 2 * cols];
        faer::linalg::matmul::matmul(
            faer::MatMut::from_column_major_slice_mut(&mut data, chi, 2 * cols),
            faer::Accum::Replace,
            l.adjoint(),
            MatRef::from_column_major_slice(theta, rows / 2, 2 * cols),
            C64::new(1.0, 0.0),
            p,
        );
        // A plain sum of squares: the entries are bounded by |A|, and faer's robust norm
        // of this wide matrix cost more than the product (0.3 s at 24 qubits).
        let norm = data.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(Error::NonFinite {
                context: format!("left block of {b} sites from bond {start}"),
            });
        }
        let scale = total.sqrt() / norm;
        data.iter_mut().for_each(|z| *z *= scale);
        Ok(Some((b, data, chi)))
    }

    /// [`truncate`](Self::truncate) of a split that returned only the directions the
    /// truncation keeps, the rest of the weight `tail` (0: all of them): those are kept, and
    /// the tail is what is discarded.
    fn truncate_tail(
        &self,
        s: &[f64],
        tail: f64,
        truncation: Truncation,
        bond: usize,
    ) -> Result<(usize, f64, f64)> {
        if tail == 0.0 {
            return self.truncate(s, truncation, bond);
        }
        let kept_weight: f64 = s.iter().map(|x| x * x).sum();
        let total = kept_weight + tail;
        Self::check_norm(&self.config, total.sqrt(), bond)?;
        Ok((s.len(), tail / total, 1.0 / kept_weight.sqrt()))
    }

    /// Applies the truncation rule to singular values `s`, checking the norm first.
    /// Returns (kept, discarded fraction, rescale factor for the kept values).
    fn truncate(
        &self,
        s: &[f64],
        truncation: Truncation,
        bond: usize,
    ) -> Result<(usize, f64, f64)> {
        Self::truncate_with(&self.config, s, truncation, bond)
    }

    /// [`truncate`](Self::truncate) with the state's settings passed in (for callers that
    /// hold other parts of the state borrowed).
    fn truncate_with(
        config: &MpsConfig,
        s: &[f64],
        truncation: Truncation,
        bond: usize,
    ) -> Result<(usize, f64, f64)> {
        let total: f64 = s.iter().map(|x| x * x).sum();
        Self::check_norm(config, total.sqrt(), bond)?;
        let (kept, eps) = truncation.keep(s);
        let kept_weight: f64 = s[..kept].iter().map(|x| x * x).sum();
        Ok((kept, eps, 1.0 / kept_weight.sqrt()))
    }

    /// The error for a cut at `bond` whose weights have the norm `norm`: not finite, or
    /// further from 1 than the norm tolerance.
    fn check_norm(config: &MpsConfig, norm: f64, bond: usize) -> Result<()> {
        if !norm.is_finite() {
            return Err(Error::NonFinite {
                context: format!("singular values at bond {bond}"),
            });
        }
        if (norm - 1.0).abs() > config.norm_tolerance {
            return Err(Error::NormDrift {
                norm,
                tolerance: config.norm_tolerance,
                context: format!("two-site update at bond {bond}"),
            });
        }
        Ok(())
    }

    /// Swaps the qubits on sites `i` and `i + 1` (a two-site update with truncation).
    fn swap_sites(&mut self, i: usize) -> Result<()> {
        self.apply_window(&SWAP_MATRIX, i, 2)
    }
}

/// One-qubit gate on a site tensor in place: `A[l, s, r] <- sum_t G[s, t] A[l, t, r]`.
fn apply_one_to_site(site: &mut Site, u: &[C64; 4]) {
    let chi_l = site.chi_l;
    let [g00, g01, g10, g11] = *u;
    for r in 0..site.chi_r {
        let base = 2 * chi_l * r;
        let (lo, hi) = site.data[base..base + 2 * chi_l].split_at_mut(chi_l);
        for (a0, a1) in lo.iter_mut().zip(hi.iter_mut()) {
            let (x0, x1) = (*a0, *a1);
            *a0 = g00 * x0 + g01 * x1;
            *a1 = g10 * x0 + g11 * x1;
        }
    }
}

/// Copies a faer matrix into a column-major vector.
fn col_major(m: Mat<C64>) -> Vec<C64> {
    col_major_of(m.as_ref())
}

/// Copies a faer matrix view into a column-major vector, a column slice at a time when the
/// columns are contiguous.
fn col_major_of(m: MatRef<'_, C64>) -> Vec<C64> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for j in 0..m.ncols() {
        match m.col(j).try_as_col_major() {
            Some(col) => out.extend_from_slice(col.as_slice()),
            None => out.extend(m.col(j).iter().copied()),
        }
    }
    out
}

/// `theta'[l, p', r] = sum_p gm[p' * D + p] theta[l, p, r]`, entries at `l + chi_l (p + D r)`.
fn apply_gate_to_theta(
    mut theta: Vec<C64>,
    gm: &[C64],
    chi_l: usize,
    dim: usize,
    chi_r: usize,
) -> Vec<C64> {
    let block = chi_l * dim;
    let mut tmp = vec![ZERO; block];
    for r in 0..chi_r {
        let src = &mut theta[r * block..(r + 1) * block];
        tmp.iter_mut().for_each(|z| *z = ZERO);
        for pp in 0..dim {
            let out = &mut tmp[pp * chi_l..(pp + 1) * chi_l];
            for pq in 0..dim {
                let g = gm[pp * dim + pq];
                if g == ZERO {
                    continue;
                }
                let col = &src[pq * chi_l..(pq + 1) * chi_l];
                for (o, x) in out.iter_mut().zip(col) {
                    *o += g * x;
                }
            }
        }
        src.copy_from_slice(&tmp);
    }
    theta
}

/// The exchange of two adjacent sites in window memory order.
pub(crate) const SWAP_MATRIX: [C64; 16] = {
    let mut gm = [ZERO; 16];
    gm[0] = C64::new(1.0, 0.0);
    gm[6] = C64::new(1.0, 0.0);
    gm[9] = C64::new(1.0, 0.0);
    gm[15] = C64::new(1.0, 0.0);
    gm
};

/// [`SWAP_MATRIX`] on the heap.
pub(crate) fn swap_matrix() -> Vec<C64> {
    SWAP_MATRIX.to_vec()
}

/// The two-site matrix (window memory order) of a fused update: the product of its parts,
/// the first applied first. Built on the stack from each gate's [`Action`]: a one-qubit
/// gate mixes row pairs, a controlled gate the row pairs with the control bit set, a swap
/// exchanges rows 1 and 2; only other two-qubit gates take a 4 x 4 product.
pub(crate) fn fused_matrix(
    parts: &[Part],
    instructions: &[crate::Instruction],
    theta: &[f64],
    x: &[f64],
) -> Result<[C64; 16]> {
    let mut acc = [ZERO; 16];
    for i in 0..4 {
        acc[i * 5] = C64::new(1.0, 0.0);
    }
    // One-qubit gates on each window offset since the last two-site part, multiplied as
    // 2 x 2 matrices (a quarter of the work of folding each into the 4 x 4).
    let mut pending: [Option<[C64; 4]>; 2] = [None, None];
    let flush = |acc: &mut [C64; 16], pending: &mut [Option<[C64; 4]>; 2]| -> Result<()> {
        for (offset, u) in pending.iter_mut().enumerate() {
            if let Some(u) = u.take() {
                fold_action(acc, &Action::One(u), [1 << offset, 0])?;
            }
        }
        Ok(())
    };
    for part in parts {
        match part {
            Part::Swap => {
                flush(&mut acc, &mut pending)?;
                fold_action(&mut acc, &Action::Swap, [1, 2])?;
            }
            Part::One { inst, offset } => match instructions[*inst].gate().action(theta, x)? {
                Action::One(u) => {
                    let slot = &mut pending[*offset];
                    *slot = Some(match slot {
                        Some(v) => mul_2x2(&u, v),
                        None => u,
                    });
                }
                action => {
                    flush(&mut acc, &mut pending)?;
                    fold_action(&mut acc, &action, [1 << offset, 0])?;
                }
            },
            Part::Two { inst, arg_at } => {
                flush(&mut acc, &mut pending)?;
                let action = instructions[*inst].gate().action(theta, x)?;
                let mut bit_of_arg = [0; 2];
                for (j, &a) in arg_at.iter().enumerate() {
                    bit_of_arg[a] = 1 << j;
                }
                fold_action(&mut acc, &action, bit_of_arg)?;
            }
        }
    }
    flush(&mut acc, &mut pending)?;
    Ok(acc)
}

/// `a b` for row-major 2 x 2 matrices.
fn mul_2x2(a: &[C64; 4], b: &[C64; 4]) -> [C64; 4] {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
    ]
}

/// `acc <- G acc` for a gate acting on a two-site window (row-major 4 x 4, window memory
/// order): `bit_of_arg[a]` is the row bit of gate argument `a` (the second unused for a
/// one-qubit gate).
fn fold_action(acc: &mut [C64; 16], action: &Action, bit_of_arg: [usize; 2]) -> Result<()> {
    // Rows r0 (bit clear, `when` bits set) and r0 | bit mixed by the 2 x 2 block u.
    let mix = |acc: &mut [C64; 16], u: &[C64], bit: usize, when: usize| {
        let (g00, g01, g10, g11) = (u[0], u[1], u[2], u[3]);
        for r0 in (0..4).filter(|r| r & bit == 0 && r & when == when) {
            let r1 = r0 | bit;
            for c in 0..4 {
                let (a, b) = (acc[r0 * 4 + c], acc[r1 * 4 + c]);
                acc[r0 * 4 + c] = g00 * a + g01 * b;
                acc[r1 * 4 + c] = g10 * a + g11 * b;
            }
        }
    };
    let [b0, b1] = bit_of_arg;
    // Window row p is gate index: bit 1 - a set for each argument a whose bit is set in p.
    let index = |p: usize| usize::from(p & b0 != 0) * 2 + usize::from(p & b1 != 0);
    match action {
        Action::One(u) => mix(acc, u, b0, 0),
        Action::Controlled(u) => mix(acc, u, b1, b0),
        Action::Swap => {
            for c in 0..4 {
                acc.swap(b0 * 4 + c, b1 * 4 + c);
            }
        }
        Action::Diagonal(d) => {
            for (r, row) in acc.chunks_exact_mut(4).enumerate() {
                let z = d[index(r)];
                row.iter_mut().for_each(|a| *a *= z);
            }
        }
        Action::General(m) if m.n_qubits() == 1 => mix(acc, m.as_slice(), b0, 0),
        Action::General(m) if m.n_qubits() == 2 => {
            let mut next = [ZERO; 16];
            for r in 0..4 {
                for k in 0..4 {
                    let g = m.get(index(r), index(k));
                    if g == ZERO {
                        continue;
                    }
                    for c in 0..4 {
                        next[r * 4 + c] += g * acc[k * 4 + c];
                    }
                }
            }
            *acc = next;
        }
        Action::General(m) => {
            return Err(Error::MatrixShape {
                n_qubits: m.n_qubits(),
                expected: 16,
                got: m.as_slice().len(),
            });
        }
    }
    Ok(())
}

/// For each window memory index `p = sum_j s_j 2^j` of a `k`-site window (`k = arg_at.len()`
/// at most 3), the gate matrix index: `arg_at[j]` is the gate argument on window offset `j`,
/// and argument `a` is bit `k - 1 - a` of a gate index.
fn window_index_map(arg_at: &[usize]) -> [usize; 8] {
    let k = arg_at.len();
    let mut map = [0usize; 8];
    for (p, slot) in map.iter_mut().enumerate().take(1 << k) {
        *slot = (0..k)
            .filter(|&j| (p >> j) & 1 == 1)
            .map(|j| 1usize << (k - 1 - arg_at[j]))
            .sum();
    }
    map
}

/// The gate matrix re-indexed to window memory order (see [`window_index_map`]).
fn window_matrix(m: &GateMatrix, arg_at: &[usize]) -> Vec<C64> {
    let dim = 1usize << arg_at.len();
    let map = window_index_map(arg_at);
    let mut out = vec![ZERO; dim * dim];
    for pp in 0..dim {
        for pq in 0..dim {
            out[pp * dim + pq] = m.get(map[pp], map[pq]);
        }
    }
    out
}

impl MpsState {
    /// The swaps that bring `qubits` (distinct, in range, at least 2) next to each other: the
    /// middle one (by position) stays, the others move towards it.
    pub(crate) fn plan_route(&self, qubits: &[usize]) -> Result<Route> {
        if let Some(&qubit) = qubits.iter().find(|&&q| q >= self.n_qubits) {
            // Cannot happen for checked gates; kept as a guard.
            return Err(Error::QubitOutOfRange {
                qubit,
                n_qubits: self.n_qubits,
            });
        }
        Ok(routing::route(qubits, qubits.len() / 2))
    }

    /// Applies a gate matrix, routing non-adjacent qubits with swaps.
    fn apply_routed(&mut self, m: &GateMatrix, qubits: &[usize]) -> Result<()> {
        let k = qubits.len();
        if let (1, Some(u)) = (k, m.as_2x2()) {
            self.apply_one(&u, qubits[0]);
            return Ok(());
        }
        let Route {
            swaps,
            start,
            arg_at,
        } = self.plan_route(qubits)?;
        // If a swap or the gate fails (each leaves the state as it was), undo the swaps
        // already made so qubit i is back on site i and the error leaves the state usable.
        let gm = window_matrix(m, &arg_at);
        let mut done = 0;
        let mut outcome = Ok(());
        for &b in &swaps {
            outcome = self.swap_sites(b);
            if outcome.is_err() {
                break;
            }
            done += 1;
        }
        if outcome.is_ok() {
            outcome = self.apply_window(&gm, start, k);
            if outcome.is_ok() {
                for &b in swaps.iter().rev() {
                    self.swap_sites(b)?;
                }
                return Ok(());
            }
        }
        for &b in swaps[..done].iter().rev() {
            // Best effort: the original error is the one worth reporting.
            let _ = self.swap_sites(b);
        }
        outcome
    }
}

impl MpsState {
    /// Carries out a plan by centred updates. If a step fails, the qubits are sorted home
    /// (best effort) so the state keeps qubit `i` on site `i` with the gates applied so far,
    /// and the first error is returned.
    fn run_plan(
        &mut self,
        circuit: &crate::Circuit,
        buffers: &mut routing::PlanBuffers,
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let instructions = circuit.instructions();
        let routing::PlanBuffers {
            plan,
            run_layout: layout,
            next: next_at,
            ..
        } = buffers;
        layout.reset(self.n_qubits);
        // next[i]: the first site of the next multi-site step after step i.
        next_at.clear();
        next_at.resize(plan.steps.len(), None);
        let mut ahead = None;
        for (i, step) in plan.steps.iter().enumerate().rev() {
            next_at[i] = ahead;
            ahead = match step {
                Step::Swap(b) => Some(*b),
                Step::Fused { start, .. } => Some(*start),
                Step::Gate { start, arg_at, .. } if arg_at.len() > 1 => Some(*start),
                Step::Gate { .. } => ahead,
            };
        }
        // Two-qubit gates from step i on, for the switch to the chain's amplitudes (only
        // counted on chains that may take it); a three-qubit gate counts as
        // `block::DENSE_THREE_QUBIT_WEIGHT` of them. On chains of more than
        // `block::DENSE_MAX_QUBITS` qubits every two-site update counts, routing swaps too
        // (on the amplitudes those are free relabellings).
        let mut multi_from = Vec::new();
        if self.dense_tail_may_pay() {
            let long = self.n_qubits > block::DENSE_MAX_QUBITS;
            multi_from.resize(plan.steps.len() + 1, 0usize);
            for (i, step) in plan.steps.iter().enumerate().rev() {
                let multi = match step {
                    Step::Swap(_) => usize::from(long),
                    Step::Gate { arg_at, .. } if arg_at.len() > 2 => {
                        block::DENSE_THREE_QUBIT_WEIGHT
                    }
                    Step::Gate { arg_at, .. } => usize::from(arg_at.len() > 1),
                    Step::Fused { parts, .. } => usize::from(
                        long || plan
                            .parts(*parts)
                            .iter()
                            .any(|p| matches!(p, routing::Part::Two { .. })),
                    ),
                };
                multi_from[i] = multi_from[i + 1] + multi;
            }
        }
        // UpdateScheme::Auto: the first step from which the rest may run by TEBD (after the
        // last gate of three or more qubits), if the chain is long enough; from there the
        // bonds are looked at every `check_every` steps while enough steps are left, and the
        // run switches unless it may still go over to its amplitudes.
        let tebd_from = (self.config.update == UpdateScheme::Auto
            && self.n_qubits > tebd::AUTO_TEBD_MIN_QUBITS)
            .then(|| {
                plan.steps[..plan.home_from]
                    .iter()
                    .rposition(|s| matches!(s, Step::Gate { arg_at, .. } if arg_at.len() > 2))
                    .map_or(0, |last| last + 1)
            })
            .filter(|&from| from < plan.home_from);
        let check_every = (self.n_qubits / 4).max(1);
        let switch_bond = tebd::AUTO_TEBD_BOND.min(
            self.config
                .truncation
                .max_bond()
                .unwrap_or(usize::MAX)
                .max(1),
        );
        let mut next_check = tebd_from.unwrap_or(usize::MAX);
        let mut i = 0;
        while i < plan.steps.len() {
            if i >= next_check
                && i + tebd::AUTO_TEBD_STEPS_PER_QUBIT * self.n_qubits <= plan.home_from
            {
                if self.max_bond_dimension() >= switch_bond
                    && !multi_from.get(i).is_some_and(|&m| self.dense_tail_ahead(m))
                {
                    return self.run_tebd_from(circuit, plan, i, layout, theta, x, progress);
                }
                next_check = i + check_every;
            }
            if multi_from.get(i).is_some_and(|&m| self.dense_tail_pays(m)) {
                let outcome =
                    self.apply_dense_tail(plan, i, instructions, theta, x, layout, progress);
                if let Err(e) = outcome {
                    for b in layout.sort_home() {
                        let _ = self.swap_sites(b);
                    }
                    return Err(e);
                }
                break;
            }
            let block = self
                .config
                .window_blocks
                .then(|| self.find_block(plan, i))
                .flatten();
            let outcome = if let Some(block) = block {
                let (from, next) = (i, next_at[block.to - 1]);
                i = block.to;
                self.apply_block(
                    plan,
                    from,
                    block,
                    instructions,
                    theta,
                    x,
                    next,
                    layout,
                    progress,
                )
            } else {
                let (step, next) = (&plan.steps[i], next_at[i]);
                i += 1;
                match step {
                    Step::Swap(b) => self
                        .apply_window_toward(&SWAP_MATRIX, *b, 2, next)
                        .map(|()| layout.swap(*b)),
                    Step::Gate {
                        inst,
                        start,
                        arg_at,
                    } => instructions[*inst]
                        .gate()
                        .action(theta, x)
                        .and_then(|action| match action {
                            Action::One(u) if arg_at.len() == 1 => {
                                self.apply_one(&u, *start);
                                Ok(())
                            }
                            action => {
                                let m = action.into_matrix();
                                let gm = window_matrix(&m, arg_at);
                                self.apply_window_toward(&gm, *start, arg_at.len(), next)
                            }
                        })
                        .map(|()| progress(1)),
                    Step::Fused { start, parts } => {
                        let parts = plan.parts(*parts);
                        fused_matrix(parts, instructions, theta, x)
                            .and_then(|gm| self.apply_window_toward(&gm, *start, 2, next))
                            .map(|()| {
                                for _ in parts.iter().filter(|p| !p.is_instruction()) {
                                    layout.swap(*start);
                                }
                                progress(parts.iter().filter(|p| p.is_instruction()).count());
                            })
                    }
                }
            };
            if let Err(e) = outcome {
                for b in layout.sort_home() {
                    let _ = self.swap_sites(b);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl super::StateBackend for MpsState {
    fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Runs the circuit in [`Circuit::sweep_order`](crate::Circuit::sweep_order), which gives
    /// the same state with fewer moves of the orthogonality centre.
    fn run(&mut self, circuit: &crate::Circuit, theta: &[f64], x: &[f64]) -> Result<()> {
        if circuit.n_qubits() != self.n_qubits {
            return Err(Error::QubitCountMismatch {
                circuit: circuit.n_qubits(),
                state: self.n_qubits,
            });
        }
        self.run_with_progress(circuit, theta, x, &mut |_| {})
    }

    /// As [`run`](crate::StateBackend::run), by the state's [`UpdateScheme`].
    fn run_with_progress(
        &mut self,
        circuit: &crate::Circuit,
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        if circuit.n_qubits() != self.n_qubits {
            return Err(Error::QubitCountMismatch {
                circuit: circuit.n_qubits(),
                state: self.n_qubits,
            });
        }
        circuit.check_binding(theta, x)?;
        self.settle()?;
        let done = self.start_run(circuit.instructions(), theta, x)?;
        let rest;
        let circuit = match done {
            // Nothing ran (an empty circuit too goes on: a TEBD run of it still leaves its
            // local read-out).
            0 => circuit,
            _ if done == circuit.len() => {
                progress(done);
                return self.check_norm("after running the circuit");
            }
            _ => {
                progress(done);
                rest = circuit.tail(done);
                &rest
            }
        };
        if self.config.update != UpdateScheme::Tebd
            && self.run_as_one_block(circuit, theta, x, progress)?
        {
            return self.check_norm("after running the circuit");
        }
        routing::with_plan_buffers(|buffers| {
            buffers.plan(circuit, self.config.routing);
            match self.config.update {
                UpdateScheme::Centre | UpdateScheme::Auto => {
                    self.run_plan(circuit, buffers, theta, x, progress)
                }
                UpdateScheme::Tebd => self.run_tebd(circuit, &buffers.plan, theta, x, progress),
            }
        })?;
        self.check_norm("after running the circuit")
    }

    fn apply_matrix(&mut self, matrix: &GateMatrix, qubits: &[usize]) -> Result<()> {
        check_gate_qubits(self.n_qubits, matrix, qubits)?;
        if let Some(dense) = self.held_mut() {
            return dense.apply_matrix(matrix, qubits);
        }
        self.settle()?;
        self.apply_routed(matrix, qubits)
    }

    fn check_norm(&self, context: &str) -> Result<()> {
        if self.unswept {
            // The norm is exact only after the sweep, which checks it (and normalizes) when
            // the state is next read or changed; until then, that the sites are finite.
            return match self
                .sites
                .iter()
                .all(|s| s.data.iter().all(|z| z.is_finite()))
            {
                true => Ok(()),
                false => Err(Error::NonFinite {
                    context: format!("MPS sites {context}"),
                }),
            };
        }
        let norm = self.norm();
        if !norm.is_finite() {
            return Err(Error::NonFinite {
                context: format!("MPS norm {context}"),
            });
        }
        if (norm - 1.0).abs() > self.config.norm_tolerance {
            return Err(Error::NormDrift {
                norm,
                tolerance: self.config.norm_tolerance,
                context: context.to_string(),
            });
        }
        Ok(())
    }

    fn project(&mut self, qubit: usize, outcome: bool) -> Result<f64> {
        super::check_distinct_qubits(self.n_qubits, &[qubit], "projection")?;
        if let Some(dense) = self.held_mut() {
            return dense.project(qubit, outcome);
        }
        self.settle()?;
        self.move_centre(qubit)?;
        let site = &self.sites[qubit];
        let chi_l = site.chi_l;
        let keep = usize::from(outcome);
        let probability: f64 = (0..site.chi_r)
            .flat_map(|r| site.data[chi_l * (keep + 2 * r)..chi_l * (keep + 2 * r + 1)].iter())
            .map(|z| z.norm_sqr())
            .sum();
        if probability.is_nan() || probability < super::MIN_OUTCOME_PROBABILITY {
            return Err(Error::ImpossibleOutcome {
                qubit,
                outcome,
                probability,
            });
        }
        let scale = 1.0 / probability.sqrt();
        self.touch(qubit, qubit);
        let site = &mut self.sites[qubit];
        for r in 0..site.chi_r {
            for s in 0..2 {
                let block = &mut site.data[chi_l * (s + 2 * r)..chi_l * (s + 2 * r + 1)];
                let f = if s == keep { scale } else { 0.0 };
                block.iter_mut().for_each(|z| *z *= f);
            }
        }
        Ok(probability)
    }

    fn amplitude(&self, bits: &crate::BitString) -> Result<C64> {
        if self.unswept {
            return self.swept_copy()?.amplitude(bits);
        }
        match self.held() {
            Some(dense) => dense.amplitude(bits),
            None => self.amplitude_impl(bits),
        }
    }

    fn expectation_pauli(&self, pauli: &crate::PauliString) -> Result<f64> {
        if self.unswept {
            return self.swept_copy()?.expectation_pauli(pauli);
        }
        match self.held() {
            Some(dense) => dense.expectation_pauli(pauli),
            None => self.expectation_pauli_impl(pauli),
        }
    }

    /// One contraction per term for a few terms; beyond [`MPO_EXPECTATION_TERMS`] terms, one
    /// sweep through the observable's MPO.
    fn expectation(&self, observable: &crate::Observable) -> Result<f64> {
        observable.check(self.n_qubits)?;
        if self.unswept {
            return self.swept_copy()?.expectation(observable);
        }
        if let Some(dense) = self.held() {
            return dense.expectation(observable);
        }
        if observable.terms().len() > MPO_EXPECTATION_TERMS {
            return self.mpo_expectation(observable);
        }
        let mut total = 0.0;
        for (w, p) in observable.terms() {
            total += w * self.expectation_pauli(p)?;
        }
        Ok(total)
    }

    fn z_expectations(&self) -> Result<Vec<f64>> {
        if self.unswept {
            return self.swept_copy()?.z_expectations();
        }
        if let Some(dense) = self.held() {
            return dense.z_expectations();
        }
        let rdms = self.single_qubit_rdms()?;
        Ok(rdms.iter().map(|r| (r[0] - r[3]).re).collect())
    }

    fn marginal_probabilities(&self, qubits: &[usize]) -> Result<Vec<f64>> {
        if self.unswept {
            return self.swept_copy()?.marginal_probabilities(qubits);
        }
        match self.held() {
            Some(dense) => dense.marginal_probabilities(qubits),
            None => self.marginal_impl(qubits),
        }
    }

    /// On sites, also when the state holds its amplitudes (a copy is split), so a seed
    /// draws the same bit strings whichever form the state is in.
    fn sample(&self, shots: usize, rng: &mut dyn rand::Rng) -> Result<Vec<crate::BitString>> {
        self.with_sites()?.sample_impl(shots, None, rng)
    }

    fn sample_in_bases(
        &self,
        bases: &[Vec<crate::Pauli>],
        rng: &mut dyn rand::Rng,
    ) -> Result<Vec<crate::BitString>> {
        super::check_bases(self.n_qubits, bases)?;
        self.with_sites()?
            .sample_impl(bases.len(), Some(bases), rng)
    }

    fn norm(&self) -> f64 {
        if self.unswept {
            return self.swept_copy().map_or(f64::NAN, |s| s.norm());
        }
        if let Some(dense) = self.held() {
            return dense.norm();
        }
        let c = &self.sites[self.centre];
        c.data.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt()
    }

    fn to_dense(&self) -> Result<Vec<C64>> {
        if self.unswept {
            return self.swept_copy()?.to_dense();
        }
        match self.held() {
            Some(dense) => dense.to_dense(),
            None => self.to_dense_impl(),
        }
    }

    fn bond_dimensions(&self) -> Vec<usize> {
        if self.held.is_some() {
            return held::held_bond_dimensions(self);
        }
        if self.unswept {
            return self.swept_bond_dimensions();
        }
        self.sites[..self.n_qubits - 1]
            .iter()
            .map(|s| s.chi_r)
            .collect()
    }

    fn fidelity_estimate(&self) -> f64 {
        self.log.fidelity_estimate()
    }

    fn log10_fidelity_estimate(&self) -> f64 {
        self.log.log10_fidelity_estimate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{Gate, Instruction};
    use routing::ArgAt;

    /// The cut-by-cut truncated split, independently: the state projected at each cut in
    /// turn, left to right, onto the left singular vectors (faer's SVD) that `truncation`
    /// keeps, and renormalized. Qubit `j` is bit `j` of an index.
    fn projected(amps: &[C64], n: usize, truncation: Truncation) -> Vec<C64> {
        let mut psi = amps.to_vec();
        for j in 0..n - 1 {
            let rows = 1usize << (j + 1);
            let a = MatRef::from_column_major_slice(&psi, rows, psi.len() / rows);
            let svd = a.thin_svd().unwrap();
            let s: Vec<f64> = (0..svd.S().dim()).map(|t| svd.S()[t].re).collect();
            let (kept, _) = truncation.keep(&s);
            let u = svd.U().get(.., ..kept);
            let p = u * (u.adjoint() * a);
            let norm = p.norm_l2();
            psi = (0..p.ncols())
                .flat_map(|c| p.col(c).iter().map(|z| z / norm).collect::<Vec<_>>())
                .collect();
        }
        psi
    }

    /// A split back from a chain's amplitudes whose left part takes one factorization
    /// (`left_block`: 10 to 12 qubits, exact and truncating to max bond 16 and 64, and with
    /// a cutoff that drops a weak direction at the block's first cut) gives the state of
    /// the cut-by-cut truncated split, to round-off, with the same bonds.
    #[test]
    fn a_left_block_splits_as_cut_by_cut() {
        let cases = [
            (10usize, 64usize, 1e-16, 3u64),
            (12, 64, 1e-16, 4),
            (12, 16, 1e-16, 5),
            (11, 16, 1e-16, 6),
            (12, 16, 1e-4, 7),
        ];
        for (n, max_bond, cutoff, seed) in cases {
            let mut amps = block::tests::values(1 << n, seed);
            if cutoff > 1e-16 {
                // Qubit 0 nearly |0>: a Schmidt weight of about 1e-5 at cut 0.
                for (i, z) in amps.iter_mut().enumerate() {
                    if i & 1 == 1 {
                        *z *= 3e-3;
                    }
                }
            }
            let norm = amps.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
            let amps: Vec<C64> = amps.iter().map(|z| z / norm).collect();
            let truncation = Truncation::default()
                .with_max_bond(max_bond)
                .with_cutoff(cutoff);
            let config = MpsConfig::default()
                .with_update(crate::UpdateScheme::Centre)
                .with_truncation(truncation);
            let mut psi = MpsState::new(n, config).unwrap();
            let mut sites = vec![None; n];
            let taken = psi
                .left_block(&amps, Span::chain(n), &mut sites, &mut Vec::new())
                .unwrap()
                .map(|(b, _, _)| b);
            assert!(
                taken.is_some_and(|b| b >= BLOCK_MIN_SITES),
                "n {n}: {taken:?}"
            );
            let got = psi
                .split(amps.clone(), 1, n, 1, 0, CentreEnd::Right)
                .unwrap();
            for (j, site) in got.into_iter().enumerate() {
                psi.sites[j] = site;
            }
            let want = projected(&amps, n, truncation);
            let got = psi.amplitudes_of_sites();
            let overlap: C64 = got.iter().zip(&want).map(|(g, w)| g.conj() * w).sum();
            assert!(
                (overlap.norm() - 1.0).abs() < 1e-10,
                "n {n} max bond {max_bond}: overlap {overlap}"
            );
            for j in 0..n - 1 {
                let full = (1usize << (j + 1)).min(1 << (n - j - 1));
                // With qubit 0 split off, bond j has at most 2^j values on its left.
                let full = if cutoff > 1e-16 {
                    full.min(1 << j)
                } else {
                    full
                };
                assert_eq!(psi.sites[j].chi_r, full.min(max_bond), "n {n} bond {j}");
            }
        }
    }

    /// Every gate form folded into a two-site update equals the product with its full
    /// matrix re-indexed to the window (`window_matrix`), for every placement on the window.
    #[test]
    fn folded_actions_match_window_matrices() {
        let (a, b, c) = (0.37, -1.21, 2.05);
        let gates = [
            Gate::H,
            Gate::T,
            Gate::Sx,
            Gate::Rx(a.into()),
            Gate::Ry(b.into()),
            Gate::Rz(c.into()),
            Gate::U3 {
                theta: a.into(),
                phi: b.into(),
                lambda: c.into(),
            },
            Gate::Cx,
            Gate::Cy,
            Gate::Ch,
            Gate::Crx(a.into()),
            Gate::Cp(b.into()),
            Gate::Cu3 {
                theta: a.into(),
                phi: b.into(),
                lambda: c.into(),
            },
            Gate::Swap,
            Gate::ISwap,
            Gate::Rxx(a.into()),
            Gate::Ryy(b.into()),
            Gate::Rzz(c.into()),
        ];
        // A non-trivial starting product, so row operations are checked on full rows.
        let start = [
            C64::new(0.1, 0.2),
            C64::new(-0.3, 0.5),
            C64::new(0.7, -0.1),
            C64::new(0.2, 0.0),
            C64::new(0.0, 1.0),
            C64::new(0.4, 0.4),
            C64::new(-0.6, 0.3),
            C64::new(0.9, -0.8),
            C64::new(0.5, 0.1),
            C64::new(-0.2, -0.7),
            C64::new(0.3, 0.6),
            C64::new(0.1, -0.4),
            C64::new(-0.5, 0.2),
            C64::new(0.8, 0.0),
            C64::new(0.0, -0.3),
            C64::new(0.6, 0.9),
        ];
        for gate in gates {
            let m = gate.matrix(&[], &[]).unwrap();
            let action = gate.action(&[], &[]).unwrap();
            let placements: Vec<(Vec<usize>, [usize; 2])> = if gate.n_qubits() == 1 {
                vec![(vec![0], [1, 0]), (vec![0], [2, 0])]
            } else {
                vec![(vec![0, 1], [1, 2]), (vec![1, 0], [2, 1])]
            };
            for (args, bits) in placements {
                let mut folded = start;
                fold_action(&mut folded, &action, bits).unwrap();
                // The full matrix on the window: a one-qubit gate on offset 1 is the
                // two-qubit identity-kron placed by an explicit product.
                let gm = if gate.n_qubits() == 1 {
                    let two = Gate::unitary2(&kron_identity(&m, bits[0] == 2)).unwrap();
                    window_matrix(&two.matrix(&[], &[]).unwrap(), &[1, 0])
                } else {
                    window_matrix(&m, &args)
                };
                for r in 0..4 {
                    for col in 0..4 {
                        let want: C64 = (0..4).map(|k| gm[r * 4 + k] * start[k * 4 + col]).sum();
                        let got = folded[r * 4 + col];
                        assert!(
                            (got - want).norm() < 1e-14,
                            "{} on {args:?}: entry ({r}, {col}) {got} != {want}",
                            gate.name()
                        );
                    }
                }
            }
        }
        // A fused update is the product of its parts, the first applied first: one-qubit
        // gates on both offsets before, between and after two-site parts (they are
        // multiplied as 2 x 2 matrices first; their order on an offset matters).
        let one = |g: Gate| Instruction::checked(g, &[0], 2).unwrap();
        let instructions = [
            one(Gate::Ry(a.into())),
            Instruction::checked(Gate::Cx, &[0, 1], 2).unwrap(),
            one(Gate::H),
            one(Gate::T),
            one(Gate::Rx(b.into())),
            one(Gate::Sx),
            Instruction::checked(Gate::Rzz(c.into()), &[0, 1], 2).unwrap(),
        ];
        let parts = [
            Part::One { inst: 0, offset: 1 },
            Part::One { inst: 2, offset: 1 },
            Part::One { inst: 4, offset: 0 },
            Part::Swap,
            Part::One { inst: 3, offset: 0 },
            Part::Two {
                inst: 1,
                arg_at: ArgAt::new(&[1, 0]),
            },
            Part::One { inst: 5, offset: 0 },
            Part::One { inst: 2, offset: 0 },
            Part::One { inst: 3, offset: 1 },
            Part::Two {
                inst: 6,
                arg_at: ArgAt::new(&[0, 1]),
            },
            Part::One { inst: 0, offset: 0 },
            Part::One { inst: 3, offset: 0 },
        ];
        let fused = fused_matrix(&parts, &instructions, &[], &[]).unwrap();
        let factor = |part: &Part| -> Vec<C64> {
            match *part {
                Part::Swap => swap_matrix(),
                Part::One { inst, offset } => {
                    let m = instructions[inst].gate().matrix(&[], &[]).unwrap();
                    let two = Gate::unitary2(&kron_identity(&m, offset == 1)).unwrap();
                    window_matrix(&two.matrix(&[], &[]).unwrap(), &[1, 0])
                }
                Part::Two { inst, arg_at } => window_matrix(
                    &instructions[inst].gate().matrix(&[], &[]).unwrap(),
                    &arg_at,
                ),
            }
        };
        let mut want = [ZERO; 16];
        for i in 0..4 {
            want[i * 5] = C64::new(1.0, 0.0);
        }
        for f in parts.iter().map(factor) {
            let mut next = [ZERO; 16];
            for r in 0..4 {
                for col in 0..4 {
                    next[r * 4 + col] = (0..4).map(|k| f[r * 4 + k] * want[k * 4 + col]).sum();
                }
            }
            want = next;
        }
        for (got, want) in fused.iter().zip(&want) {
            assert!((got - want).norm() < 1e-14, "{got} != {want}");
        }
    }

    /// Leaving the centre toward the next window changes where the centre ends, not the
    /// state, its bonds or what truncation discarded.
    #[test]
    fn the_centre_is_left_toward_the_next_window() {
        use crate::backend::StateBackend;
        let n = 6;
        let mut c = crate::Circuit::new(n).unwrap();
        for layer in 0..3 {
            for q in 0..n {
                c.push(Gate::Ry((0.3 + 0.4 * (q * 3 + layer) as f64).into()), &[q])
                    .unwrap();
            }
            for q in (layer % 2..n - 1).step_by(2) {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let truncated = MpsConfig::default()
            .with_update(crate::UpdateScheme::Centre)
            .with_truncation(Truncation::default().with_max_bond(3).with_cutoff(1e-4));
        let mut psi = MpsState::new(n, truncated).unwrap();
        psi.run(&c, &[], &[]).unwrap();
        psi.move_centre(2).unwrap();
        let gm = Gate::Cx.matrix(&[], &[]).unwrap();
        let gm = window_matrix(&gm, &[1, 0]);
        let mut ends = Vec::new();
        let mut states = Vec::new();
        for next in [None, Some(0), Some(5)] {
            let mut a = psi.clone();
            a.apply_window_toward(&gm, 2, 2, next).unwrap();
            ends.push(a.centre());
            assert!(a.canonical_deviation() < 1e-12, "{next:?}");
            states.push(a);
        }
        assert_eq!(ends, [3, 2, 3], "centre after the update");
        for s in &states[1..] {
            assert_eq!(s.bond_dimensions(), states[0].bond_dimensions());
            let (x, y) = (s.truncation_report(), states[0].truncation_report());
            assert!((x.log10_fidelity_estimate - y.log10_fidelity_estimate).abs() < 1e-12);
            for (p, q) in s
                .to_dense()
                .unwrap()
                .iter()
                .zip(states[0].to_dense().unwrap())
            {
                assert!((p - q).norm() < 1e-12);
            }
        }
        assert!(
            states[0].truncation_report().truncating_cuts > 0,
            "the settings truncate"
        );
    }

    /// A run started from another run's progress callback (which holds the thread's plan
    /// buffers) plans in buffers of its own: both states end as when run apart.
    #[test]
    fn a_run_inside_a_progress_callback_plans_apart() {
        use crate::backend::StateBackend;
        let circuit = |n: usize, shift: f64| {
            let mut c = crate::Circuit::new(n).unwrap();
            for layer in 0..3 {
                for q in 0..n {
                    c.push(
                        Gate::Ry((shift + 0.4 * (q * 3 + layer) as f64).into()),
                        &[q],
                    )
                    .unwrap();
                }
                c.push(Gate::Cx, &[layer, n - 1]).unwrap();
                for q in (layer % 2..n - 1).step_by(2) {
                    c.push(Gate::Cx, &[q, q + 1]).unwrap();
                }
            }
            c
        };
        // The outer chain longer than a held one, so that it plans and reports progress
        // step by step.
        let wide = HOLD_MAX_QUBITS + 2;
        let (outer, inner) = (circuit(wide, 0.3), circuit(7, 1.1));
        let config = MpsConfig::default().with_update(crate::UpdateScheme::Centre);
        let mut apart = (
            MpsState::new(wide, config).unwrap(),
            MpsState::new(7, config).unwrap(),
        );
        apart.0.run(&outer, &[], &[]).unwrap();
        apart.1.run(&inner, &[], &[]).unwrap();
        let mut a = MpsState::new(wide, config).unwrap();
        let mut b = MpsState::new(7, config).unwrap();
        let mut nested = 0;
        a.run_with_progress(&outer, &[], &[], &mut |_| {
            if nested == 0 {
                b.run(&inner, &[], &[]).unwrap();
            }
            nested += 1;
        })
        .unwrap();
        assert!(nested > 1);
        assert_eq!(
            a.z_expectations().unwrap(),
            apart.0.z_expectations().unwrap()
        );
        assert_eq!(
            b.z_expectations().unwrap(),
            apart.1.z_expectations().unwrap()
        );
    }

    /// `u` on the first (`on_first`) or second gate argument of a two-qubit matrix, first
    /// argument most significant, row-major.
    fn kron_identity(u: &GateMatrix, on_first: bool) -> Vec<C64> {
        let mut out = vec![ZERO; 16];
        for r in 0..4 {
            for c in 0..4 {
                let (hi_r, lo_r, hi_c, lo_c) = (r >> 1, r & 1, c >> 1, c & 1);
                out[r * 4 + c] = if on_first {
                    if lo_r == lo_c {
                        u.get(hi_r, hi_c)
                    } else {
                        ZERO
                    }
                } else if hi_r == hi_c {
                    u.get(lo_r, lo_c)
                } else {
                    ZERO
                };
            }
        }
        out
    }
}
