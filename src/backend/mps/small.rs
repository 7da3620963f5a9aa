//! Two- and three-site updates and centre moves at small bonds, without allocation.
//!
//! At the bonds of a chain of a few qubits (a cut of at most 8 x 16, a site of at most
//! 256 entries) the arithmetic of an update is a few hundred multiply-adds, and the general
//! path's heap matrices (the contracted pair, the factors, copies into new sites) cost more
//! than the arithmetic. Here the pair is contracted, the gate applied and the cut split in
//! buffers reused by every update on a thread (`linalg::SmallSplit`, one-sided Jacobi), and
//! the result is written into the two sites' existing buffers. Same operations and same checks as the general path
//! (`MpsState::split`): the same truncation rule, norm check and log entries, and a failing
//! factorization leaves the state as it was (the caller then takes the general path).

use std::cell::RefCell;

use num_complex::Complex64 as C64;

use super::block::Axes;
use super::{CentreEnd, MpsState};
use crate::error::Result;
use crate::linalg::{self, SMALL_SPLIT_CAP, SmallSplit, SvdBackend};
use faer::MatRef;

const ZERO: C64 = C64::new(0.0, 0.0);

/// Largest site (entries, `2 chi_l chi_r`) the small centre move takes.
const SMALL_SITE: usize = 256;

/// Most sites of a window the small path takes (a gate of up to three qubits, a window
/// block of up to five sites).
pub(super) const MAX_SITES: usize = 5;

/// Buffers of the small path: one set per thread, allocated on the thread's first small
/// update and reused by every later one, whatever the state (never cleared: each update
/// writes what it reads). A state carries none, so creating or cloning one costs nothing
/// here.
struct Buffers {
    /// The contracted window, gated in place.
    theta: [C64; SMALL_SPLIT_CAP],
    /// A second window buffer (three-site contraction, the adjoint at a left-end cut).
    tmp: [C64; SMALL_SPLIT_CAP],
    /// What is left of the window after each cut.
    rest: [C64; SMALL_SPLIT_CAP],
    /// The splits of the (at most `MAX_SITES - 1`) cuts, kept until every cut has succeeded.
    factors: [Box<SmallSplit>; MAX_SITES - 1],
    /// A centre move's site (reflectors, then `R`), its `Q`, and the product with the
    /// neighbour.
    site: [C64; SMALL_SITE],
    q: [C64; SMALL_SITE],
    out: [C64; SMALL_SITE],
}

impl Buffers {
    fn boxed() -> Box<Self> {
        Box::new(Buffers {
            theta: [ZERO; SMALL_SPLIT_CAP],
            tmp: [ZERO; SMALL_SPLIT_CAP],
            rest: [ZERO; SMALL_SPLIT_CAP],
            factors: std::array::from_fn(|_| SmallSplit::boxed()),
            site: [ZERO; SMALL_SITE],
            q: [ZERO; SMALL_SITE],
            out: [ZERO; SMALL_SITE],
        })
    }

    /// Fills every buffer with NaN (see `SmallSplit::poison`).
    #[cfg(test)]
    fn poison(&mut self) {
        let nan = C64::new(f64::NAN, f64::NAN);
        for a in [&mut self.theta, &mut self.tmp, &mut self.rest] {
            a.fill(nan);
        }
        for a in [&mut self.site, &mut self.q, &mut self.out] {
            a.fill(nan);
        }
        for f in &mut self.factors {
            f.poison();
        }
    }
}

thread_local! {
    static BUFFERS: RefCell<Option<Box<Buffers>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's buffers, or returns `None` if they are in use (not expected:
/// an update does not start another) so the caller takes the general path.
fn with_buffers<T>(f: impl FnOnce(&mut Buffers) -> T) -> Option<T> {
    BUFFERS.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        Some(f(slot.get_or_insert_with(Buffers::boxed)))
    })
}

/// Fills this thread's buffers with NaN.
#[cfg(test)]
fn poison_buffers() {
    with_buffers(|b| b.poison()).expect("buffers free");
}

/// `dst = src site`: `src` column-major `rows x site.chi_l`, `site` read as its
/// `chi_l x (2 chi_r)` view, `dst` column-major `rows x (2 chi_r)`. `false` (nothing written)
/// if either does not fit [`SMALL_SPLIT_CAP`].
fn contract(src: &[C64], rows: usize, site: &super::Site, dst: &mut [C64]) -> bool {
    let (inner, cols) = (site.chi_l, 2 * site.chi_r);
    if rows * inner > SMALL_SPLIT_CAP || rows * cols > SMALL_SPLIT_CAP || src.len() < rows * inner {
        return false;
    }
    dst[..rows * cols].fill(ZERO);
    for c in 0..cols {
        let out = &mut dst[c * rows..(c + 1) * rows];
        for t in 0..inner {
            let bv = site.data[c * inner + t];
            if bv == ZERO {
                continue;
            }
            for (o, x) in out.iter_mut().zip(&src[t * rows..(t + 1) * rows]) {
                *o += x * bv;
            }
        }
    }
    true
}

/// What a small update does to the contracted window (entries `l + chi_l (p + 2^k r)`),
/// given `chi_l` and `chi_r`.
pub(super) type WindowOp<'a> = dyn FnMut(&mut [C64], usize, usize) -> Result<()> + 'a;

impl MpsState {
    /// The update of the `k`-site window at `start` (`k` = 2 or 3, the centre already in
    /// the window) by the `2^k x 2^k` window matrix `gm`, in this thread's small buffers:
    /// the same contraction, successive splits, truncation and log entries as the general
    /// path (`apply_window_general`). Returns `Ok(false)` without touching the state when a
    /// contraction or cut is too large for the small path, the state's SVD backend is not
    /// faer, or a Jacobi split does not converge; errors (norm drift, a non-finite spectrum)
    /// also leave the state as it was.
    pub(super) fn apply_small(
        &mut self,
        gm: &[C64],
        start: usize,
        k: usize,
        centre_end: CentreEnd,
    ) -> Result<bool> {
        if !(2..=3).contains(&k) {
            return Ok(false);
        }
        self.apply_small_with(start, k, centre_end, &mut |win, chi_l, chi_r| {
            Axes { w: k, chi_l, chi_r }.apply(win, gm, k, 0);
            Ok(())
        })
    }

    /// As [`apply_small`](Self::apply_small) for a window of `k` sites (2 to [`MAX_SITES`])
    /// transformed by `op`, which gets the contracted window (entries
    /// `l + chi_l (p + 2^k r)`), `chi_l` and `chi_r`. If `op` fails, the state is as it was.
    pub(super) fn apply_small_with(
        &mut self,
        start: usize,
        k: usize,
        centre_end: CentreEnd,
        op: &mut WindowOp<'_>,
    ) -> Result<bool> {
        if self.config.svd != SvdBackend::Faer || !(2..=MAX_SITES).contains(&k) {
            return Ok(false);
        }
        with_buffers(|buffers| self.apply_small_in(buffers, start, k, centre_end, op))
            .unwrap_or(Ok(false))
    }

    /// [`apply_small_with`](Self::apply_small_with) in the given buffers.
    fn apply_small_in(
        &mut self,
        buffers: &mut Buffers,
        start: usize,
        k: usize,
        centre_end: CentreEnd,
        op: &mut WindowOp<'_>,
    ) -> Result<bool> {
        let dim = 1usize << k;
        let chi_l = self.sites[start].chi_l;
        let chi_r = self.sites[start + k - 1].chi_r;
        let len = dim * chi_l * chi_r;
        if len > SMALL_SPLIT_CAP {
            return Ok(false);
        }
        let MpsState {
            sites, config, log, ..
        } = self;
        let Buffers {
            theta,
            tmp,
            rest,
            factors,
            ..
        } = buffers;
        // theta, contracted site by site: (2 chi_l 2^j) x chi_{j+1} after site j, entries
        // l + chi_l (p + 2^k r) at the end (p = sum_j s_j 2^j), alternating between the two
        // window buffers.
        let mut rows = 2 * chi_l;
        if !contract(&sites[start].data, rows, &sites[start + 1], theta) {
            return Ok(false);
        }
        let (mut win, mut spare): (&mut [C64], &mut [C64]) = (&mut theta[..], &mut tmp[..]);
        for j in 2..k {
            rows *= 2;
            if !contract(win, rows, &sites[start + j], spare) {
                return Ok(false);
            }
            std::mem::swap(&mut win, &mut spare);
        }
        let win = &mut win[..len];
        op(win, chi_l, chi_r)?;
        // Split, as `MpsState::split`: the factors stay in the scratch until every cut is
        // done. The first cut reads the window, a later one what the previous cut left in
        // `rest`.
        let truncation = config.truncation;
        let mut cuts = [(0usize, 0.0f64, 0usize); MAX_SITES - 1];
        let mut chi;
        match centre_end {
            CentreEnd::Right => {
                // The remainder reads as (2 chi) x (2^(k-j-1) chi_r) at cut j.
                chi = chi_l;
                for (j, f) in factors.iter_mut().enumerate().take(k - 1) {
                    let (m, cols) = (2 * chi, (1usize << (k - j - 1)) * chi_r);
                    if !linalg::small_split_takes(m, cols) {
                        return Ok(false);
                    }
                    let src: &[C64] = if j == 0 { &*win } else { &rest[..] };
                    if !f.split(MatRef::from_column_major_slice(&src[..m * cols], m, cols)) {
                        return Ok(false);
                    }
                    let (kept, eps, scale) =
                        MpsState::truncate_with(config, f.s(), truncation, start + j)?;
                    for c in 0..cols {
                        for t in 0..kept {
                            rest[c * kept + t] = f.rest(t, c) * scale;
                        }
                    }
                    cuts[j] = (start + j, eps, kept);
                    chi = kept;
                }
            }
            CentreEnd::Left => {
                // The remainder reads as (chi_l 2^j) x (2 chi) for the site at offset j.
                chi = chi_r;
                for (n_cut, j) in (1..k).rev().enumerate() {
                    let rows = chi_l << j;
                    if !linalg::small_split_takes(2 * chi, rows) {
                        return Ok(false);
                    }
                    // Split A^H = U (rest'): site j = U^H[..kept, :], the remainder is
                    // (rest'[..kept, :])^H.
                    let src: &[C64] = if n_cut == 0 { &*win } else { &rest[..] };
                    let ah = &mut *spare;
                    for i in 0..rows {
                        for c in 0..2 * chi {
                            ah[i * 2 * chi + c] = src[c * rows + i].conj();
                        }
                    }
                    let f = &mut factors[n_cut];
                    let a = MatRef::from_column_major_slice(&ah[..rows * 2 * chi], 2 * chi, rows);
                    if !f.split(a) {
                        return Ok(false);
                    }
                    let (kept, eps, scale) =
                        MpsState::truncate_with(config, f.s(), truncation, start + j - 1)?;
                    for t in 0..kept {
                        for i in 0..rows {
                            rest[t * rows + i] = f.rest(t, i).conj() * scale;
                        }
                    }
                    cuts[n_cut] = (start + j - 1, eps, kept);
                    chi = kept;
                }
            }
        }
        // Every cut done: write the sites.
        match centre_end {
            CentreEnd::Right => {
                let mut left_chi = chi_l;
                for (j, f) in factors.iter().take(k - 1).enumerate() {
                    let kept = cuts[j].2;
                    let site = &mut sites[start + j];
                    site.chi_l = left_chi;
                    site.chi_r = kept;
                    site.data.clear();
                    site.data.extend_from_slice(&f.u[..2 * left_chi * kept]);
                    left_chi = kept;
                }
                let last = &mut sites[start + k - 1];
                last.chi_l = chi;
                last.chi_r = chi_r;
                last.data.clear();
                last.data.extend_from_slice(&rest[..chi * 2 * chi_r]);
            }
            CentreEnd::Left => {
                let mut right_chi = chi_r;
                for (n_cut, j) in (1..k).rev().enumerate() {
                    let f = &factors[n_cut];
                    let kept = cuts[n_cut].2;
                    let site = &mut sites[start + j];
                    site.chi_l = kept;
                    site.chi_r = right_chi;
                    site.data.clear();
                    site.data.extend(
                        (0..2 * right_chi)
                            .flat_map(|c| (0..kept).map(move |t| (c, t)))
                            .map(|(c, t)| f.u(c, t).conj()),
                    );
                    right_chi = kept;
                }
                let first = &mut sites[start];
                first.chi_l = chi_l;
                first.chi_r = chi;
                first.data.clear();
                first.data.extend_from_slice(&rest[..2 * chi_l * chi]);
            }
        }
        log.next_update();
        for &(bond, eps, kept) in &cuts[..k - 1] {
            log.record(bond, eps, kept);
        }
        Ok(true)
    }

    /// QR step `c -> c + 1` in the thread's buffers when site `c` and the product `R A[c + 1]` fit
    /// [`SMALL_SITE`]; returns `false` (nothing done) otherwise.
    pub(super) fn shift_centre_right_small(&mut self) -> bool {
        let c = self.centre;
        let (site, next) = (&self.sites[c], &self.sites[c + 1]);
        let (m, n) = (2 * site.chi_l, site.chi_r);
        let k = m.min(n);
        let cols = 2 * next.chi_r;
        if m * n > SMALL_SITE || k * cols > SMALL_SITE || m.max(n) > linalg::SMALL_QR_MAX_DIM {
            return false;
        }
        let done = with_buffers(|b| {
            let (w, q, out) = (&mut b.site[..m * n], &mut b.q[..m * k], &mut b.out);
            w.copy_from_slice(&self.sites[c].data);
            linalg::small_qr_in_place(w, m, n, q);
            // next' = R next: (k x n) (n x cols), R upper triangular in w.
            let next = &self.sites[c + 1];
            for col in 0..cols {
                let x = &next.data[col * n..(col + 1) * n];
                for i in 0..k {
                    out[col * k + i] = (i..n).map(|j| w[j * m + i] * x[j]).sum();
                }
            }
            let site = &mut self.sites[c];
            site.chi_r = k;
            site.data.clear();
            site.data.extend_from_slice(q);
            let next = &mut self.sites[c + 1];
            next.chi_l = k;
            next.data.clear();
            next.data.extend_from_slice(&out[..k * cols]);
        });
        if done.is_none() {
            return false;
        }
        self.touch(c, c + 1);
        self.centre = c + 1;
        true
    }

    /// LQ step `c -> c - 1` in the thread's buffers (`A = L Q` from the QR of `A^H`) when site `c` and
    /// the product `A[c - 1] L` fit [`SMALL_SITE`]; returns `false` (nothing done) otherwise.
    pub(super) fn shift_centre_left_small(&mut self) -> bool {
        let c = self.centre;
        let (site, prev) = (&self.sites[c], &self.sites[c - 1]);
        // A is chi_l x (2 chi_r); A^H is m x n with m = 2 chi_r, n = chi_l.
        let (m, n) = (2 * site.chi_r, site.chi_l);
        let k = m.min(n);
        let rows = 2 * prev.chi_l;
        if m * n > SMALL_SITE || rows * k > SMALL_SITE || m.max(n) > linalg::SMALL_QR_MAX_DIM {
            return false;
        }
        let done = with_buffers(|b| {
            let (w, q, out) = (&mut b.site[..m * n], &mut b.q[..m * k], &mut b.out);
            let site = &self.sites[c];
            for j in 0..n {
                for i in 0..m {
                    w[j * m + i] = site.data[i * n + j].conj();
                }
            }
            linalg::small_qr_in_place(w, m, n, q);
            // A = R^H Q^H: site c = Q^H (k x m), prev' = prev R^H ((rows x n) (n x k)).
            let prev = &self.sites[c - 1];
            for t in 0..k {
                for i in 0..rows {
                    out[t * rows + i] = (t..n)
                        .map(|j| prev.data[j * rows + i] * w[j * m + t].conj())
                        .sum();
                }
            }
            let site = &mut self.sites[c];
            site.chi_l = k;
            site.data.clear();
            site.data.extend(
                (0..m)
                    .flat_map(|i| (0..k).map(move |t| (i, t)))
                    .map(|(i, t)| q[t * m + i].conj()),
            );
            let prev = &mut self.sites[c - 1];
            prev.chi_r = k;
            prev.data.clear();
            prev.data.extend_from_slice(&out[..rows * k]);
        });
        if done.is_none() {
            return false;
        }
        self.touch(c - 1, c);
        self.centre = c - 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StateBackend;
    use crate::circuit::{Circuit, Gate};
    use crate::{BitString, MpsConfig, Truncation};
    use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

    /// A state of `n` qubits with bonds up to `2^(n/2)`, from a seeded random circuit.
    fn random_state(n: usize, config: MpsConfig, seed: u64) -> MpsState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = Circuit::new(n).unwrap();
        for _ in 0..4 {
            for q in 0..n {
                let (t, p, l) = (
                    rng.random::<f64>() * 3.0,
                    rng.random::<f64>(),
                    rng.random::<f64>(),
                );
                c.push(
                    Gate::U3 {
                        theta: t.into(),
                        phi: p.into(),
                        lambda: l.into(),
                    },
                    &[q],
                )
                .unwrap();
            }
            for q in 0..n - 1 {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let mut psi = MpsState::new(n, config).unwrap();
        psi.run(&c, &[], &[]).unwrap();
        psi
    }

    /// A random `dim x dim` unitary (row-major), the Q of a random matrix.
    fn random_unitary(dim: usize, seed: u64) -> Vec<C64> {
        let a = crate::linalg::test_support::random_matrix(dim, dim, dim, 0.0, seed);
        let (q, _) = crate::linalg::thin_qr(a.as_ref(), crate::Parallelism::Sequential);
        (0..dim * dim).map(|i| q[(i / dim, i % dim)]).collect()
    }

    fn amplitudes(psi: &MpsState) -> Vec<C64> {
        let n = psi.n_qubits;
        (0..1usize << n)
            .map(|x| {
                let bits =
                    BitString::from_bools(&(0..n).map(|q| (x >> q) & 1 == 1).collect::<Vec<_>>());
                psi.amplitude(&bits).unwrap()
            })
            .collect()
    }

    fn assert_same(a: &MpsState, b: &MpsState, what: &str) {
        assert_eq!(a.centre, b.centre, "{what}: centre");
        assert_eq!(a.bond_dimensions(), b.bond_dimensions(), "{what}: bonds");
        for (x, y) in amplitudes(a).iter().zip(amplitudes(b)) {
            assert!((x - y).norm() < 1e-13, "{what}: amplitude {x} != {y}");
        }
        assert!(a.canonical_deviation() < 1e-13, "{what}: canonical form");
        let (ra, rb) = (a.truncation_report(), b.truncation_report());
        assert_eq!(
            ra.truncating_cuts, rb.truncating_cuts,
            "{what}: truncating cuts"
        );
        assert_eq!(
            a.two_site_updates(),
            b.two_site_updates(),
            "{what}: updates"
        );
        for (x, y) in ra.discarded_per_bond.iter().zip(&rb.discarded_per_bond) {
            assert!((x - y).abs() < 1e-13, "{what}: discarded {x} != {y}");
        }
    }

    /// Two- and three-site windows, both centre ends, every position on a 6-qubit chain,
    /// exact and truncated: the stack update gives the state, bonds, canonical form and
    /// truncation log of the general path, or declines without touching the state.
    #[test]
    fn small_updates_match_the_general_path() {
        let exact = MpsConfig::default().with_update(crate::UpdateScheme::Centre);
        let truncated = MpsConfig::default()
            .with_update(crate::UpdateScheme::Centre)
            .with_truncation(Truncation::default().with_max_bond(3).with_cutoff(1e-3));
        let mut seed = 0;
        let mut truncating = 0;
        let mut taken = [0; 2];
        for config in [exact, truncated] {
            let psi = random_state(
                6,
                MpsConfig::default().with_update(crate::UpdateScheme::Centre),
                7,
            );
            for k in [2, 3] {
                for start in 0..=6 - k {
                    for end in [CentreEnd::Left, CentreEnd::Right] {
                        seed += 1;
                        let gm = random_unitary(1 << k, seed);
                        let mut a = psi.clone();
                        a.config = config;
                        // Buffers left with NaN: an update reads only what it wrote.
                        poison_buffers();
                        let last = start + k - 1;
                        a.move_centre(if end == CentreEnd::Left { last } else { start })
                            .unwrap();
                        let mut b = a.clone();
                        let what = format!("k {k} at {start}, {end:?}, {config:?}");
                        if !a.apply_small(&gm, start, k, end).unwrap() {
                            // Declined (a cut wider than 8 x 16): nothing touched.
                            assert_eq!(amplitudes(&a), amplitudes(&b), "{what}: declined");
                            assert_eq!(a.bond_dimensions(), b.bond_dimensions());
                            continue;
                        }
                        taken[k - 2] += 1;
                        b.apply_window_general(&gm, start, k, end).unwrap();
                        for s in [&mut a, &mut b] {
                            s.centre = if end == CentreEnd::Left { start } else { last };
                        }
                        assert_same(&a, &b, &what);
                        truncating += a.truncation_report().truncating_cuts;
                    }
                }
            }
        }
        assert!(truncating >= 8, "the truncated settings cut: {truncating}");
        // Every two-site window fits; three-site windows fit where the outer bonds are small.
        assert_eq!(taken[0], 20, "two-site windows taken");
        assert!(taken[1] >= 6, "three-site windows taken: {}", taken[1]);
    }

    /// Sweeping the centre across the chain and back by stack QR/LQ steps gives the state and
    /// canonical form of the general steps.
    #[test]
    fn centre_moves_match_the_general_path() {
        let psi = random_state(
            7,
            MpsConfig::default().with_update(crate::UpdateScheme::Centre),
            11,
        );
        let (mut a, mut b) = (psi.clone(), psi);
        a.move_centre(0).unwrap();
        b.move_centre(0).unwrap();
        poison_buffers();
        for _ in 0..6 {
            assert!(a.shift_centre_right_small());
            b.shift_centre_right_general();
            assert_same(&a, &b, "right");
        }
        for _ in 0..6 {
            assert!(a.shift_centre_left_small());
            b.shift_centre_left_general();
            assert_same(&a, &b, "left");
        }
    }

    /// Cuts past the small bounds are left to the general path (nothing touched).
    #[test]
    fn large_cuts_are_declined() {
        let mut psi = random_state(
            12,
            MpsConfig::default().with_update(crate::UpdateScheme::Centre),
            3,
        );
        psi.move_centre(5).unwrap();
        let before = amplitudes(&psi);
        let gm = random_unitary(4, 1);
        assert!(!psi.apply_small(&gm, 5, 2, CentreEnd::Right).unwrap());
        assert_eq!(amplitudes(&psi), before);
    }
}
