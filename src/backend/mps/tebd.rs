//! The TEBD update scheme: gates applied in Hastings' form, in parallel where they commute.
//!
//! In this form every site tensor `B_i` is (approximately) right-orthonormal and the Schmidt
//! values `lambda_i` of every bond are kept beside them; `lambda_{i-1} B_i` is the site's
//! tensor with the orthogonality centre on it. A two-site gate on sites `i, i + 1` needs no
//! centre move:
//!
//! ```text
//! phi   = G (B_i B_{i+1})                 (2 chi_l) x (2 chi_r)
//! theta = diag(lambda_{i-1}) phi          the centred two-site tensor
//! theta^H theta = V diag(s^2) V^H         right singular vectors by the Gram matrix
//! B_{i+1} = V^H,  B_i = phi V,  lambda_i = s   truncated to the kept columns, s renormalized
//! ```
//!
//! `B_i = phi V` (Hastings, arXiv:0903.3253) needs no division by small Schmidt values. The
//! singular values are taken as the column norms of `theta V`, so the weight a cut discards is
//! exact for `theta`, as in [`SplitMethod::Gram`].
//!
//! Gates on disjoint pairs touch disjoint tensors, so they run in parallel: each step starts as
//! soon as the steps before it on its sites are done (a dependency graph, not layer by layer,
//! so a chain of routing swaps on one side of the chain overlaps the gates elsewhere), and
//! every order the threads take gives the same bits.
//! What this gives up: a truncation is optimal for the whole state only while the
//! environments are orthonormal, which truncations elsewhere spoil slightly; the centred
//! scheme ([`UpdateScheme::Centre`]) keeps them exact by a QR per centre move. At the end of a
//! run the state is the normalized state its Hastings-form sites represent, brought to exact
//! mixed-canonical form (an LQ sweep, centre at 0) when something first needs it: every
//! read-out is of the state it holds (readers with `&self` sweep a copy, once), and a run
//! whose `<Z_i>` are read locally ([`MpsState::local_z_expectations`], kept from the Hastings
//! form) never pays for the sweep.
//!
//! Gates of operator-Schmidt rank 2 (CZ and CX, and any two-qubit gate made of one of them
//! and one-qubit gates, as the fuser makes them) map the bond between the two sites to at
//! most twice its dimension; where that is well below the tensor's width the update factors
//! through it instead of forming `theta` (see `factored_vectors`).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use num_complex::Complex64 as C64;

use super::routing::{Layout, Plan, Step};
use super::{MpsState, Site, apply_gate_to_theta, fused_matrix, swap_matrix, window_matrix};
use crate::backend::{Parallelism, StateBackend};
use crate::error::{Error, Result};
use crate::linalg::{self, SplitMethod, SvdBackend};

/// How an [`MpsState`] applies two-qubit gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UpdateScheme {
    /// The orthogonality centre is moved next to every gate (a QR per step), so every
    /// truncation is the optimal one for the whole state. One gate at a time.
    Centre,
    /// Time-evolving block decimation in Hastings' form (see the module docs of
    /// `backend::mps::tebd`): no centre moves, gates on disjoint pairs in parallel, and a
    /// local read-out like Qiskit Aer's. Used by [`StateBackend::run`](crate::StateBackend::run); single
    /// gates applied with `apply_matrix` still use the centred update.
    Tebd,
    /// Centred updates while the chain's bonds are small, TEBD for the rest of the run once
    /// they are not. A run starts as [`Centre`](Self::Centre) (with its window blocks, its
    /// small-cut kernels and the switch of short chains to their amplitudes, which are
    /// faster than TEBD's batches while bonds are small); on a chain of more than
    /// [`AUTO_TEBD_MIN_QUBITS`] qubits it switches to [`Tebd`](Self::Tebd) for the rest of
    /// the plan once some bond reaches [`AUTO_TEBD_BOND`], no gate of three or more qubits
    /// is left (those convert the whole chain in TEBD) and at least
    /// [`AUTO_TEBD_STEPS_PER_QUBIT`] steps per qubit are. A chain of up to
    /// [`AMPLITUDE_TAIL_MAX_QUBITS`](super::AMPLITUDE_TAIL_MAX_QUBITS) qubits that may still
    /// reach a bond where the updates left cost more than running them on its amplitudes
    /// stays centred while it may, and goes over to the amplitudes there. Whether a run switched shows
    /// in [`MpsState::local_z_expectations`], which is available exactly when it did.
    ///
    /// The default, as on the command line (`qfl run`'s scheme, and the one the peer
    /// comparisons in `docs/performance.md` time since 2026-12-03).
    #[default]
    Auto,
}

/// [`UpdateScheme::Auto`] keeps the centred update on chains of at most this many qubits
/// (those that may finish on their amplitudes, `block::DENSE_MAX_QUBITS`).
pub const AUTO_TEBD_MIN_QUBITS: usize = super::block::DENSE_MAX_QUBITS;

/// [`UpdateScheme::Auto`] switches only with at least this many plan steps per qubit left:
/// entering and leaving Hastings' form cost about a sweep of updates each.
pub const AUTO_TEBD_STEPS_PER_QUBIT: usize = 2;

/// The bond at which [`UpdateScheme::Auto`] switches a run to TEBD (the max bond, if that
/// is smaller). Measured on 2 threads (docs/performance.md): switching at 8 was as fast as
/// TEBD from the start on bricks, QFL circuits and random circuits at max bond 16 and 64;
/// switching at 16 or 32 was up to 22% slower (random, 50 qubits, max bond 16: 468, 521
/// and 558 ms; QFL, 64 qubits, max bond 64: 243, 296, 263 ms), and 32 never switched at
/// max bond 16 (brick, 100 qubits, 20 layers: 249 against 129 ms). GHZ and CX-only
/// circuits, whose bonds stay at 1 or 2, keep the centred update's speed (TEBD from the
/// start was 4-8x slower on them).
pub const AUTO_TEBD_BOND: usize = 8;

impl UpdateScheme {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            UpdateScheme::Centre => "centre",
            UpdateScheme::Tebd => "tebd",
            UpdateScheme::Auto => "auto",
        }
    }
}

/// Sites `B_i` and bond weights `lambda_i` (bond `i` joins sites `i` and `i + 1`).
// Cloned only by the tests, to replay a dependency-graph run.
#[cfg_attr(test, derive(Clone))]
struct Hastings {
    b: Vec<Site>,
    lambda: Vec<Vec<f64>>,
}

impl Hastings {
    /// The update of sites `i`, `i + 1` by the window matrix `gm`.
    fn pair<'a>(&'a self, i: usize, gm: &'a [C64]) -> Pair<'a> {
        Pair {
            bl: &self.b[i],
            br: &self.b[i + 1],
            w: i.checked_sub(1).map(|j| self.lambda[j].as_slice()),
            gm,
            bond: i,
        }
    }
}

/// What one TEBD update produces, applied to the state only when every gate of a batch
/// succeeded up to it.
struct Cut {
    left: Site,
    right: Site,
    lambda: Vec<f64>,
    eps: f64,
    kept: usize,
}

/// Settings an update needs (copied out of the state so updates can run in parallel).
#[derive(Clone, Copy)]
struct UpdateSettings {
    truncation: super::Truncation,
    split: SplitMethod,
    svd: SvdBackend,
    par: Par,
}

/// Row `l + chi_l * s` of a `(l, s) x r` matrix carries the left weight `w[l]`.
fn scale_rows(data: &mut [C64], chi_l: usize, w: &[f64]) {
    for (k, z) in data.iter_mut().enumerate() {
        *z *= w[k % chi_l];
    }
}

/// What one TEBD update reads: sites `bl`, `br` (adjacent, joined by bond `bond`), the
/// left bond weights `w` (`None` at the left end) and the gate `gm` in window order.
#[derive(Clone, Copy)]
struct Pair<'a> {
    bl: &'a Site,
    br: &'a Site,
    w: Option<&'a [f64]>,
    gm: &'a [C64],
    bond: usize,
}

/// One TEBD update of `pair`.
fn update(pair: Pair<'_>, settings: UpdateSettings) -> Result<Cut> {
    let Pair {
        bl, br, w, bond, ..
    } = pair;
    let (chi_l, chi_r) = (bl.chi_l, br.chi_r);
    let rows = 2 * chi_l;
    let factored = match settings.split {
        SplitMethod::Gram => factored_vectors(pair, settings)?,
        SplitMethod::Svd => None,
    };
    let Vectors {
        v,
        psi,
        tail,
        total,
    } = match factored {
        Some(f) => f,
        None => full_vectors(pair, settings)?,
    };
    let k = psi.ncols();
    let mut s = vec![0.0f64; k];
    for (t, acc) in s.iter_mut().enumerate() {
        let col = psi.col(t);
        *acc = match w {
            Some(w) => col
                .iter()
                .enumerate()
                .map(|(row, z)| z.norm_sqr() * w[row % chi_l] * w[row % chi_l])
                .sum::<f64>(),
            None => col.iter().map(|z| z.norm_sqr()).sum::<f64>(),
        }
        .sqrt();
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&x, &y| s[y].total_cmp(&s[x]));
    let sorted: Vec<f64> = order.iter().map(|&t| s[t]).collect();
    let held: f64 = sorted.iter().map(|x| x * x).sum();
    let total = if tail { total } else { held };
    if !total.is_finite() || total <= 0.0 {
        return Err(Error::NonFinite {
            context: format!("singular values at bond {bond}"),
        });
    }
    // Relative weights: theta's norm is 1 only up to the truncations elsewhere.
    let normalized: Vec<f64> = sorted.iter().map(|x| x / total.sqrt()).collect();
    let (kept, eps) = if tail {
        (k, ((total - held) / total).max(0.0))
    } else {
        settings.truncation.keep(&normalized)
    };
    let kept_weight: f64 = normalized[..kept].iter().map(|x| x * x).sum();
    let scale = 1.0 / kept_weight.sqrt();
    let mut left = Vec::with_capacity(rows * kept);
    for &t in &order[..kept] {
        left.extend(psi.col(t).iter().copied());
    }
    let right = v.adjoint_columns(&order[..kept], settings.par);
    Ok(Cut {
        left: Site {
            chi_l,
            chi_r: kept,
            data: left,
        },
        right: Site {
            chi_l: kept,
            chi_r,
            data: right,
        },
        lambda: normalized[..kept].iter().map(|x| x * scale).collect(),
        eps,
        kept,
    })
}

/// The right singular vectors of an update's `theta` and `psi = phi V`, before the
/// truncation picks and orders the columns.
struct Vectors {
    /// `V`, or the factors it is the product of.
    v: RightVectors,
    /// `phi V`: one column per column of `V`.
    psi: Mat<C64>,
    /// Whether the columns are already only those kept ([`Truncation::certain_keep`]), so
    /// the discarded weight is `total` less theirs.
    ///
    /// [`Truncation::certain_keep`]: super::Truncation::certain_keep
    tail: bool,
    /// `|theta|_F^2`, used when `tail` is set.
    total: f64,
}

/// `V` itself (`2 chi_r x k`), or `V = Q V_M` with `Q` of orthonormal columns
/// (`2 chi_r x K`) and `V_M` (`K x k`), multiplied out only for the columns kept.
enum RightVectors {
    Full(Mat<C64>),
    Factored { q: Mat<C64>, vm: Mat<C64> },
}

impl RightVectors {
    /// The site `V^H` restricted to the columns `cols` of `V` (in that order): entries
    /// `(t, j)` at `t + kept * j`.
    fn adjoint_columns(&self, cols: &[usize], p: Par) -> Vec<C64> {
        match self {
            RightVectors::Full(v) => {
                // Row j of V, the columns picked, conjugated: column j of V^H.
                let mut right = Vec::with_capacity(cols.len() * v.nrows());
                for j in 0..v.nrows() {
                    right.extend(cols.iter().map(|&t| v[(j, t)].conj()));
                }
                right
            }
            RightVectors::Factored { q, vm } => {
                // V^H = V_M^H Q^H, with only the rows of V^H picked.
                let picked =
                    Mat::<C64>::from_fn(cols.len(), vm.nrows(), |t, i| vm[(i, cols[t])].conj());
                let mut vh = Mat::<C64>::zeros(cols.len(), q.nrows());
                matmul(
                    vh.as_mut(),
                    Accum::Replace,
                    picked.as_ref(),
                    q.adjoint(),
                    C64::new(1.0, 0.0),
                    p,
                );
                super::col_major(vh)
            }
        }
    }
}

/// `V` from the whole two-site tensor: `phi = G (B_i B_{i+1})`, then the right singular
/// vectors of `theta` by the Gram matrix (or the SVD), then `psi = phi V`.
fn full_vectors(pair: Pair<'_>, settings: UpdateSettings) -> Result<Vectors> {
    let Pair {
        bl,
        br,
        w,
        gm,
        bond,
    } = pair;
    let (chi_l, chi_r) = (bl.chi_l, br.chi_r);
    let (rows, cols) = (2 * chi_l, 2 * chi_r);
    let p = settings.par;
    // phi = B_i B_{i+1}, entries at l + chi_l (s1 + 2 s2 + 4 r): the window layout.
    let mut phi = Mat::<C64>::zeros(rows, cols);
    matmul(
        phi.as_mut(),
        Accum::Replace,
        bl.as_ls_r(),
        br.as_l_sr(),
        C64::new(1.0, 0.0),
        p,
    );
    let phi = apply_gate_to_theta(super::col_major(phi), gm, chi_l, 4, chi_r);
    let mut theta = phi.clone();
    if let Some(w) = w {
        scale_rows(&mut theta, chi_l, w);
    }
    let phi_m = MatRef::from_column_major_slice(&phi, rows, cols);
    let theta_m = MatRef::from_column_major_slice(&theta, rows, cols);
    if !theta.iter().all(|z| z.re.is_finite() && z.im.is_finite()) {
        return Err(Error::NonFinite {
            context: format!("two-site tensor at bond {bond}"),
        });
    }
    // V: right singular vectors of theta, by the Gram matrix or the SVD.
    let gram = match settings.split {
        SplitMethod::Gram => right_gram_vectors(theta_m, p),
        SplitMethod::Svd => None,
    };
    let (v, tail) = match gram {
        Some((vals, v)) => certain_columns(v, &vals, settings),
        None => (
            linalg::checked_svd(theta_m, par_of(p), settings.svd)?.v,
            false,
        ),
    };
    // psi = phi V; theta V = diag(w) psi, whose column norms are the singular values.
    let mut psi = Mat::<C64>::zeros(rows, v.ncols());
    matmul(
        psi.as_mut(),
        Accum::Replace,
        phi_m,
        v.as_ref(),
        C64::new(1.0, 0.0),
        p,
    );
    Ok(Vectors {
        v: RightVectors::Full(v),
        psi,
        tail,
        total: if tail { theta_m.squared_norm_l2() } else { 0.0 },
    })
}

/// The eigenvectors `v` (eigenvalues `vals`, non-decreasing) restricted to those the
/// truncation certainly keeps, if it can tell from the eigenvalues (then `true`): the others
/// are discarded whatever their exact weights, which `total` less the kept weight gives.
fn certain_columns(v: Mat<C64>, vals: &[f64], settings: UpdateSettings) -> (Mat<C64>, bool) {
    match settings.truncation.certain_keep(vals) {
        Some(keep) => (v.as_ref().subcols(v.ncols() - keep, keep).to_owned(), true),
        None => (v, false),
    }
}

/// The terms `A_k (x) B_k` of a two-qubit gate's operator-Schmidt decomposition
/// `G = sum_k A_k (x) B_k` (`A_k` on the window's first qubit, `B_k` on its second, each
/// `2 x 2` row-major, `A_k` carrying the term's weight), without the terms below round-off
/// (`1e-14` of the largest). CZ and CX, and any of them between one-qubit gates, have two
/// terms; a SWAP or a generic gate four. `None` if the gate is not finite.
fn operator_schmidt(gm: &[C64]) -> Option<Vec<([C64; 4], [C64; 4])>> {
    // gm[(a1 + 2 a2) * 4 + (b1 + 2 b2)] = <a1 a2| G |b1 b2>; the reshuffled matrix has rows
    // (a1, b1) and columns (a2, b2).
    let m = Mat::<C64>::from_fn(4, 4, |i, j| {
        let (a1, b1, a2, b2) = (i / 2, i % 2, j / 2, j % 2);
        gm[(a1 + 2 * a2) * 4 + (b1 + 2 * b2)]
    });
    let f = linalg::checked_svd(m.as_ref(), Parallelism::Sequential, SvdBackend::Faer).ok()?;
    let top = f.s.first().copied().unwrap_or(0.0);
    Some(
        f.s.iter()
            .enumerate()
            .take_while(|&(_, &s)| s > 1e-14 * top)
            .map(|(t, &s)| {
                let a = std::array::from_fn(|i| f.u[(i, t)] * s);
                let b = std::array::from_fn(|j| f.v[(j, t)].conj());
                (a, b)
            })
            .collect(),
    )
}

/// The largest `K / n` at which an update factors `theta` through its inner dimension
/// `K` (terms of the gate times the bond between the sites) rather than taking the `n x n`
/// Gram matrix of the whole tensor. Timed on one thread (random sites, 2026-12-03): a
/// `382 x 388` tensor with `K = 248` (0.64) took 56 ms whole and 45 ms factored (QR 17,
/// eigensolver and Gram 18, products 10), a `256 x 382` one with `K = 222` (0.58) 46 and
/// 26 ms, but a `388 x 256` one with `K = 214` (0.84) 19 ms whole against 24 factored. The
/// QFL-shaped circuits' factored cuts are at 0.5-0.65.
const FACTORED_MAX_RATIO: f64 = 0.7;

/// `V` through the gate's operator-Schmidt form, when that makes the eigensolver smaller.
///
/// With `G = sum_k A_k (x) B_k` (`r` terms) the two-site tensor is a product through an
/// inner dimension `K = r chi` (`chi` the bond between the sites):
///
/// ```text
/// phi = L R,   L = [A_0 B_i, .., A_{r-1} B_i]   (2 chi_l x K)
///              R = [B_0 B_{i+1}; ..; B_{r-1} B_{i+1}]   (K x 2 chi_r)
/// R^H = Q T (thin QR)  =>  phi = (L T^H) Q^H = M Q^H,   theta = diag(w) M Q^H
/// ```
///
/// so `theta`'s right singular vectors are `Q V_M` with `V_M` those of `diag(w) M`
/// (`2 chi_l x K`), and `psi = phi Q V_M = M V_M`. A CZ or CX brick doubles a bond per
/// layer, so where a bond is about half its neighbours (every other bond of a QFL circuit
/// growing under its cutoff) the eigensolver is `K` instead of `2 chi_r` wide, about a
/// quarter of the work. `Q` is orthonormal to round-off (Householder), so `V` is too.
/// `Ok(None)` when `K` is not small enough for this to pay ([`FACTORED_MAX_RATIO`]) or
/// the Gram eigensolver declines (the caller then takes the whole tensor).
fn factored_vectors(pair: Pair<'_>, settings: UpdateSettings) -> Result<Option<Vectors>> {
    let Pair {
        bl,
        br,
        w,
        gm,
        bond,
    } = pair;
    let p = settings.par;
    let (chi_l, chi, chi_r) = (bl.chi_l, bl.chi_r, br.chi_r);
    let (rows, cols) = (2 * chi_l, 2 * chi_r);
    // The eigensolver the whole tensor would take (right_gram_vectors).
    let full = if 2 * rows <= cols { rows } else { cols };
    // A gate has at most 4 terms: skip the decomposition when even 2 cannot pay.
    if (2 * chi) as f64 > FACTORED_MAX_RATIO * full as f64 {
        return Ok(None);
    }
    let Some(terms) = operator_schmidt(gm) else {
        return Ok(None);
    };
    let r = terms.len();
    let kdim = r * chi;
    if kdim == 0 || kdim >= cols || kdim as f64 > FACTORED_MAX_RATIO * full as f64 {
        return Ok(None);
    }
    // R^H: entry ((s', rr), (k, m)) = conj(sum_s B_k[s', s] B_{i+1}[m, s + 2 rr]).
    let bd = &br.data;
    let rh = Mat::<C64>::from_fn(cols, kdim, |row, col| {
        let (s2, rr) = (row % 2, row / 2);
        let (k, m) = (col / chi, col % chi);
        let b = &terms[k].1;
        let at = |s: usize| bd[m + chi * (s + 2 * rr)];
        (b[2 * s2] * at(0) + b[2 * s2 + 1] * at(1)).conj()
    });
    // L: entry ((l, s'), (k, m)) = sum_s A_k[s', s] B_i[(l, s), m].
    let ld = &bl.data;
    let l_mat = Mat::<C64>::from_fn(rows, kdim, |row, col| {
        let (l, s1) = (row % chi_l, row / chi_l);
        let (k, m) = (col / chi, col % chi);
        let a = &terms[k].0;
        let at = |s: usize| ld[l + chi_l * (s + 2 * m)];
        a[2 * s1] * at(0) + a[2 * s1 + 1] * at(1)
    });
    let (q, t) = linalg::thin_qr(rh.as_ref(), par_of(p));
    let mut mphi = Mat::<C64>::zeros(rows, kdim);
    matmul(
        mphi.as_mut(),
        Accum::Replace,
        l_mat.as_ref(),
        t.adjoint(),
        C64::new(1.0, 0.0),
        p,
    );
    let mut mw = mphi.clone();
    if let Some(w) = w {
        for j in 0..kdim {
            for (row, z) in mw.col_mut(j).iter_mut().enumerate() {
                *z *= w[row % chi_l];
            }
        }
    }
    let total = mw.squared_norm_l2();
    if !total.is_finite() {
        return Err(Error::NonFinite {
            context: format!("two-site tensor at bond {bond}"),
        });
    }
    let Some((vals, vm)) = right_gram_vectors(mw.as_ref(), p) else {
        return Ok(None);
    };
    let (vm, tail) = certain_columns(vm, &vals, settings);
    let mut psi = Mat::<C64>::zeros(rows, vm.ncols());
    matmul(
        psi.as_mut(),
        Accum::Replace,
        mphi.as_ref(),
        vm.as_ref(),
        C64::new(1.0, 0.0),
        p,
    );
    Ok(Some(Vectors {
        v: RightVectors::Factored { q, vm },
        psi,
        tail,
        total,
    }))
}

fn par_of(p: Par) -> Parallelism {
    match p {
        Par::Seq => Parallelism::Sequential,
        Par::Rayon(n) => Parallelism::Rayon(n.get()),
    }
}

/// Eigenvalues (non-decreasing) and eigenvectors of `A^H A` on its support, or `None` if the
/// eigensolver fails or its eigenvalues do not add up to `|A|_F^2`.
///
/// An `A` with `2m > n` gives all `n` eigenpairs: those of `B B^H` with `B = A^H`. A wide one
/// (`2m <= n`, rank at most `m`) gives the `m` that can be non-zero, at the cost of an
/// `m x m` eigensolver instead of an `n x n` one: with the QR factorization `A^H = Q R`,
/// `A^H A = Q (R R^H) Q^H`, so the eigenvectors are `Q` times those of `R R^H`, orthonormal to
/// round-off because `Q` is (they are not computed as `A^H U / s`, which loses accuracy for
/// small singular values). At the cut of a 20-qubit brick where `theta` is `256 x 512` this
/// is a 256 instead of a 512 eigensolver. Nearer square the QR and the product with `Q` cost
/// more than the smaller eigensolver saves (a 256-qubit QFL circuit at max bond 256, whose
/// cuts are slightly wide: 7.4-7.7 s with the full eigensolver, 8.0 s with the QR on every
/// wide cut).
fn right_gram_vectors(a: MatRef<'_, C64>, p: Par) -> Option<(Vec<f64>, Mat<C64>)> {
    let b = a.adjoint().to_owned();
    if 2 * a.nrows() > a.ncols() {
        return linalg::gram_eigen(b.as_ref(), p);
    }
    let (q, r) = linalg::thin_qr(b.as_ref(), par_of(p));
    let (vals, vr) = linalg::gram_eigen(r.as_ref(), p)?;
    let mut v = Mat::<C64>::zeros(q.nrows(), vr.ncols());
    matmul(
        v.as_mut(),
        Accum::Replace,
        q.as_ref(),
        vr.as_ref(),
        C64::new(1.0, 0.0),
        p,
    );
    Some((vals, v))
}

/// Steps per chunk of a TEBD segment: each chunk runs as one dependency graph and reports
/// its progress when done. Large enough that the wait at the end of a chunk (the last
/// updates running on fewer threads) costs little, small enough for a progress bar.
const DAG_CHUNK: usize = 512;

/// One step of a TEBD segment with its matrix formed.
struct Task {
    /// The site a one-qubit gate acts on, or the left site of a two-site update.
    site: usize,
    kind: TaskKind,
    /// Routing swaps and circuit instructions the step carries out.
    swaps: usize,
    gates: usize,
}

enum TaskKind {
    Single([C64; 4]),
    Pair { gm: Vec<C64> },
}

impl Task {
    fn pair(site: usize, gm: Vec<C64>, swaps: usize, gates: usize) -> Self {
        Task {
            site,
            kind: TaskKind::Pair { gm },
            swaps,
            gates,
        }
    }

    /// The sites the task reads and writes.
    fn sites(&self) -> std::ops::Range<usize> {
        match self.kind {
            TaskKind::Single(_) => self.site..self.site + 1,
            TaskKind::Pair { .. } => self.site..self.site + 2,
        }
    }

    /// Applies the task to `h`: a two-site update's discarded weight and kept dimension.
    fn run(&self, h: &mut Hastings, settings: UpdateSettings) -> Result<(f64, usize)> {
        match &self.kind {
            TaskKind::Single(u) => {
                super::apply_one_to_site(&mut h.b[self.site], u);
                Ok((0.0, 0))
            }
            TaskKind::Pair { gm } => {
                let i = self.site;
                let cut = update(h.pair(i, gm), settings)?;
                h.b[i] = cut.left;
                h.b[i + 1] = cut.right;
                h.lambda[i] = cut.lambda;
                Ok((cut.eps, cut.kept))
            }
        }
    }
}

/// Whether each task may split its own factorizations over the threads (never a one-qubit
/// task, which has none): where one update of an as-soon-as-possible layer costs more than
/// the layer's share per thread (a 20-qubit brick's layer with one 512-wide update among
/// small ones), whole updates cannot keep the threads busy and the large ones take the pool
/// too; otherwise one thread each, as the pool's barriers inside faer then only add waiting
/// (a 256-qubit QFL circuit at max bond 256: 8.7 s with the pool in every update, 7.0-7.2 s
/// without). Costs are estimated from the bond dimensions at the start of the chunk, so the
/// choice does not depend on the order the threads run the tasks in.
fn inner_parallelism(h: &Hastings, tasks: &[Task], threads: usize) -> Vec<bool> {
    let n = h.b.len();
    let mut ready = vec![0usize; n];
    let mut layer_of = Vec::with_capacity(tasks.len());
    let mut layers: Vec<(f64, f64)> = Vec::new();
    for task in tasks {
        let sites = task.sites();
        let layer = ready[sites.clone()].iter().copied().max().unwrap_or(0);
        ready[sites].iter_mut().for_each(|r| *r = layer + 1);
        if layer == layers.len() {
            layers.push((0.0, 0.0));
        }
        if let TaskKind::Pair { .. } = task.kind {
            let (r, c) = (2 * h.b[task.site].chi_l, 2 * h.b[task.site + 1].chi_r);
            let cost = (r * c * r.min(c)) as f64;
            let (total, largest) = &mut layers[layer];
            *total += cost;
            *largest = largest.max(cost);
        }
        layer_of.push(layer);
    }
    tasks
        .iter()
        .zip(&layer_of)
        .map(|(task, &l)| {
            let (total, largest) = layers[l];
            matches!(task.kind, TaskKind::Pair { .. }) && largest * threads as f64 > total
        })
        .collect()
}

/// The dependency graph of a chunk of tasks: each task waits for the last task before it
/// on each of its sites. Tasks on disjoint sites commute, so any order that respects the
/// graph gives the same state as program order, bit for bit (each update is a function of
/// its inputs alone).
struct Dag {
    /// Per task, the tasks that wait for it (at most one per site).
    next: Vec<[Option<usize>; 2]>,
    /// Per task, how many tasks it waits for.
    waiting: Vec<u8>,
}

impl Dag {
    fn new(tasks: &[Task], n_sites: usize) -> Self {
        let mut last: Vec<Option<usize>> = vec![None; n_sites];
        let mut next = vec![[None; 2]; tasks.len()];
        let mut waiting = vec![0u8; tasks.len()];
        for (t, task) in tasks.iter().enumerate() {
            let mut preds: Vec<usize> = task.sites().filter_map(|s| last[s]).collect();
            preds.dedup();
            for p in preds {
                waiting[t] += 1;
                let slot = next[p].iter_mut().find(|x| x.is_none());
                *slot.expect("a task has at most one successor per site") = Some(t);
            }
            for s in task.sites() {
                last[s] = Some(t);
            }
        }
        Dag { next, waiting }
    }

    /// The tasks that wait for none, in program order.
    fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.waiting.len()).filter(|&t| self.waiting[t] == 0)
    }
}

/// What the threads running a [`Dag`] share.
struct Shared<'a> {
    state: std::sync::Mutex<DagState<'a>>,
    /// Set on the first error: no task starts after it.
    stop: std::sync::atomic::AtomicBool,
}

impl<'a> Shared<'a> {
    fn lock(&self) -> std::sync::MutexGuard<'_, DagState<'a>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct DagState<'a> {
    h: &'a mut Hastings,
    waiting: Vec<u8>,
    done: Vec<Option<(f64, usize)>>,
    /// The failing task first in program order, and its error.
    error: Option<(usize, Error)>,
}

impl DagState<'_> {
    /// Records task `t`'s outcome; returns the tasks it made ready.
    fn finish(
        &mut self,
        t: usize,
        out: Result<(f64, usize)>,
        next: &[[Option<usize>; 2]],
        stop: &std::sync::atomic::AtomicBool,
    ) -> Vec<usize> {
        match out {
            Ok(out) => {
                self.done[t] = Some(out);
                let mut ready = Vec::new();
                for &d in next[t].iter().flatten() {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 {
                        ready.push(d);
                    }
                }
                ready
            }
            Err(e) => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                if self.error.as_ref().is_none_or(|(first, _)| t < *first) {
                    self.error = Some((t, e));
                }
                Vec::new()
            }
        }
    }
}

/// Runs task `t` on the scope's threads, then the tasks it makes ready: the first on the
/// same thread (a chain of updates stays where its tensors are warm), the others spawned for
/// idle threads to take.
fn spawn_task<'s, F>(
    s: &rayon::Scope<'s>,
    run: &'s F,
    t: usize,
    stop: &'s std::sync::atomic::AtomicBool,
) where
    F: Fn(usize) -> Vec<usize> + Sync,
{
    s.spawn(move |s| {
        let mut t = t;
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let ready = run(t);
            let Some((&first, rest)) = ready.split_first() else {
                return;
            };
            for &d in rest {
                spawn_task(s, run, d, stop);
            }
            t = first;
        }
    });
}

impl MpsState {
    /// Puts the state in Hastings' form (centre to site 0, then an SVD sweep to the right
    /// that gauges every bond to its Schmidt basis). Exact: no truncation.
    fn enter_hastings(&mut self) -> Result<Hastings> {
        self.move_centre(0)?;
        let n = self.n_qubits;
        let mut b = std::mem::take(&mut self.sites);
        let mut lambda: Vec<Vec<f64>> = Vec::with_capacity(n.saturating_sub(1));
        for i in 0..n - 1 {
            let chi_l = b[i].chi_l;
            let mut m = b[i].data.clone();
            if let Some(w) = i.checked_sub(1).map(|j| &lambda[j]) {
                scale_rows(&mut m, chi_l, w);
            }
            let view = MatRef::from_column_major_slice(&m, 2 * chi_l, b[i].chi_r);
            let f = match linalg::checked_svd(view, self.config.parallelism, self.config.svd) {
                Ok(f) => f,
                Err(e) => {
                    // Put the sites back: the state is as it was (centre at 0).
                    self.sites = b;
                    return Err(e);
                }
            };
            let k = f.s.len();
            let mut left = Mat::<C64>::zeros(2 * chi_l, k);
            linalg::mul(
                left.as_mut(),
                b[i].as_ls_r(),
                f.v.as_ref(),
                self.config.parallelism,
            );
            let next = &b[i + 1];
            let mut right = Mat::<C64>::zeros(k, 2 * next.chi_r);
            linalg::mul(
                right.as_mut(),
                f.v.adjoint(),
                next.as_l_sr(),
                self.config.parallelism,
            );
            let chi_r = next.chi_r;
            b[i] = Site::from_mat(left.as_ref(), chi_l, k);
            b[i + 1] = Site::from_mat(right.as_ref(), k, chi_r);
            lambda.push(f.s);
        }
        Ok(Hastings { b, lambda })
    }

    /// Leaves Hastings' form: the sites are kept as they are, and the sweep back to exact
    /// mixed-canonical form deferred ([`settle`](Self::settle)); keeps `rdms`, the local
    /// one-qubit density matrices read from the Hastings form (by qubit).
    ///
    /// The sweep is an LQ factorization per site, as much work as a layer of updates: on a
    /// 256-qubit QFL circuit at max bond 256 it took 2.1 of the run's 6.5 s, and a run whose
    /// `<Z_i>` are read locally does not need it.
    fn leave_hastings(&mut self, h: Hastings, rdms: Vec<[C64; 4]>) {
        self.sites = h.b;
        self.centre = self.n_qubits - 1;
        self.touch(0, self.n_qubits - 1);
        self.unswept = true;
        self.swept = std::sync::OnceLock::new();
        self.local = Some(rdms);
    }

    /// Back to exact mixed-canonical form (centre at 0), normalized.
    fn restore_canonical(&mut self, h: Hastings) -> Result<()> {
        self.sites = h.b;
        self.centre = self.n_qubits - 1;
        self.sweep_to_canonical()
    }

    /// Makes a state a TEBD run left in Hastings' form exactly canonical (centre at 0) and
    /// normalized, by the sweep [`leave_hastings`](Self::leave_hastings) deferred (or by
    /// taking the copy a reader swept). Nothing to do on any other state. The local read-out
    /// stays: the sweep changes the sites, not the state.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the state's norm is not finite or zero (the state is then
    /// unusable, as a run that fails is).
    pub(super) fn settle(&mut self) -> Result<()> {
        if !self.unswept {
            return Ok(());
        }
        let local = self.local.take();
        match self.swept.take() {
            Some(copy) => {
                self.sites = copy.sites;
                self.centre = copy.centre;
                self.touch(0, self.n_qubits - 1);
            }
            None => self.sweep_to_canonical()?,
        }
        self.unswept = false;
        self.local = local;
        Ok(())
    }

    /// The swept copy of a state left in Hastings' form, made on the first call (readers
    /// with `&self` read it; [`settle`](Self::settle) takes it).
    pub(super) fn swept_copy(&self) -> Result<&MpsState> {
        if let Some(copy) = self.swept.get() {
            return Ok(copy);
        }
        let mut copy = self.clone();
        copy.settle()?;
        Ok(self.swept.get_or_init(|| Box::new(copy)))
    }

    /// The bond dimensions the sweep of [`settle`](Self::settle) gives, without sweeping:
    /// the LQ step at site `c` makes bond `c - 1` the smaller of its dimension and twice
    /// that of bond `c` after its own step.
    pub(super) fn swept_bond_dimensions(&self) -> Vec<usize> {
        let n = self.n_qubits;
        let mut dims = vec![1; n - 1];
        let mut right = 1;
        for c in (1..n).rev() {
            right = self.sites[c].chi_l.min(2 * right);
            dims[c - 1] = right;
        }
        dims
    }

    /// The LQ sweep from the centre at `n - 1` to 0, sites before the centre right-orthonormal
    /// only approximately (Hastings' form).
    ///
    /// The sweep normalizes the centre after every step: the sites of a heavily truncated
    /// run each carry a little less than unit weight, and their product (the state's norm)
    /// can fall below the smallest `f64` (a 1000-qubit, 20-layer brick at max bond 64 did),
    /// while every site, and the state's direction, is representable.
    fn sweep_to_canonical(&mut self) -> Result<()> {
        loop {
            let c = self.centre;
            let norm = self.sites[c]
                .data
                .iter()
                .map(|z| z.norm_sqr())
                .sum::<f64>()
                .sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(Error::NonFinite {
                    context: format!("norm of the state after a TEBD run (at site {c})"),
                });
            }
            self.sites[c].data.iter_mut().for_each(|z| *z /= norm);
            if c == 0 {
                break;
            }
            self.shift_centre_left();
        }
        self.touch(0, self.n_qubits - 1);
        Ok(())
    }

    fn update_settings(&self, par: Par) -> UpdateSettings {
        UpdateSettings {
            truncation: self.config.truncation,
            split: self.config.split,
            svd: self.config.svd,
            par,
        }
    }

    /// A gate of three or more qubits on the window of sites `start ..`: the centred update
    /// on the canonical form, then back to Hastings' form.
    fn tebd_window_fallback(
        &mut self,
        h: &mut Hastings,
        gm: &[C64],
        start: usize,
        k: usize,
    ) -> Result<()> {
        let taken = Hastings {
            b: std::mem::take(&mut h.b),
            lambda: std::mem::take(&mut h.lambda),
        };
        self.restore_canonical(taken)?;
        let outcome = self.apply_window(gm, start, k);
        *h = self.enter_hastings()?;
        outcome
    }

    /// Runs a plan of `circuit` by TEBD (see [`UpdateScheme::Tebd`]); `progress` is told how
    /// many instructions each step completed.
    pub(crate) fn run_tebd(
        &mut self,
        circuit: &crate::Circuit,
        plan: &Plan,
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let mut layout = Layout::identity(self.n_qubits);
        self.run_tebd_from(circuit, plan, 0, &mut layout, theta, x, progress)
    }

    /// Runs the steps of `plan` from step `from` by TEBD, the qubits placed as `layout` says
    /// (the steps before `from` done, by any scheme; `from <= plan.home_from`). On an error
    /// the qubits are sorted home (best effort) with the gates applied so far.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_tebd_from(
        &mut self,
        circuit: &crate::Circuit,
        plan: &Plan,
        from: usize,
        layout: &mut Layout,
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let mut h = match self.enter_hastings() {
            Ok(h) => h,
            Err(e) => {
                for b in layout.sort_home() {
                    let _ = self.swap_sites(b);
                }
                return Err(e);
            }
        };
        let (gates, home) = plan.steps.split_at(plan.home_from);
        let mut outcome = self.tebd_steps(
            &mut h,
            layout,
            circuit,
            plan,
            &gates[from..],
            theta,
            x,
            progress,
        );
        // The local read-out is taken before the swaps that sort the qubits home: they do not
        // change the circuit's state, only the approximation of it, so each qubit's
        // estimate is read where it stands.
        let mut rdms = Vec::new();
        if outcome.is_ok() {
            let at_site = local_rdms(&h);
            rdms = (0..self.n_qubits)
                .map(|q| at_site[layout.site(q)])
                .collect();
            outcome = self.tebd_steps(&mut h, layout, circuit, plan, home, theta, x, progress);
        }
        match outcome {
            Ok(()) => {
                self.leave_hastings(h, rdms);
                Ok(())
            }
            Err(e) => {
                // Keep the gates applied so far, in canonical form with every qubit home;
                // report the first error.
                if self.restore_canonical(h).is_ok() {
                    for b in layout.sort_home() {
                        let _ = self.swap_sites(b);
                    }
                }
                Err(e)
            }
        }
    }

    /// The steps of a plan in Hastings' form. Steps on disjoint sites commute exactly in this
    /// form (an update on sites `i, i + 1` reads `B_i`, `B_{i+1}`, `lambda_{i-1}` and writes
    /// only the first two and `lambda_i`), so each run of steps between gates of three or
    /// more qubits runs as a dependency graph (see [`Self::tebd_layers`]): each step, gate or
    /// routing swap, as soon as the steps before it on its sites are done. The result is the
    /// same as in plan order; a gate of three or more qubits converts the whole state and is
    /// a barrier.
    #[allow(clippy::too_many_arguments)]
    fn tebd_steps(
        &mut self,
        h: &mut Hastings,
        layout: &mut Layout,
        circuit: &crate::Circuit,
        plan: &Plan,
        steps: &[Step],
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let instructions = circuit.instructions();
        let mut rest = steps;
        while !rest.is_empty() {
            let cut = rest
                .iter()
                .position(|s| matches!(s, Step::Gate { arg_at, .. } if arg_at.len() > 2))
                .unwrap_or(rest.len());
            let (segment, after) = rest.split_at(cut);
            self.tebd_layers(h, layout, instructions, plan, segment, theta, x, progress)?;
            rest = match after.split_first() {
                Some((
                    Step::Gate {
                        inst,
                        start,
                        arg_at,
                    },
                    tail,
                )) => {
                    let m = instructions[*inst].gate().matrix(theta, x)?;
                    let gm = window_matrix(&m, arg_at);
                    self.tebd_window_fallback(h, &gm, *start, arg_at.len())?;
                    progress(1);
                    tail
                }
                _ => after,
            };
        }
        Ok(())
    }

    /// One- and two-site steps, each as soon as the steps before it on its sites are done:
    /// the segment is cut into chunks of [`DAG_CHUNK`] steps (progress is reported per chunk)
    /// and each chunk runs as a dependency graph (see [`Dag`]).
    #[allow(clippy::too_many_arguments)]
    fn tebd_layers(
        &mut self,
        h: &mut Hastings,
        layout: &mut Layout,
        instructions: &[crate::Instruction],
        plan: &Plan,
        steps: &[Step],
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let swap = swap_matrix();
        for chunk in steps.chunks(DAG_CHUNK) {
            let mut tasks = Vec::with_capacity(chunk.len());
            for step in chunk {
                tasks.push(match step {
                    Step::Swap(b) => Task::pair(*b, swap.clone(), 1, 0),
                    Step::Gate {
                        inst,
                        start,
                        arg_at,
                    } => {
                        let m = instructions[*inst].gate().matrix(theta, x)?;
                        match (arg_at.len(), m.as_2x2()) {
                            (1, Some(u)) => Task {
                                site: *start,
                                kind: TaskKind::Single(u),
                                swaps: 0,
                                gates: 1,
                            },
                            _ => Task::pair(*start, window_matrix(&m, arg_at), 0, 1),
                        }
                    }
                    Step::Fused { start, parts } => {
                        let parts = plan.parts(*parts);
                        let gates = parts.iter().filter(|p| p.is_instruction()).count();
                        let gm = fused_matrix(parts, instructions, theta, x)?.to_vec();
                        Task::pair(*start, gm, parts.len() - gates, gates)
                    }
                });
            }
            let (done, outcome) = self.run_dag(h, &tasks);
            for (task, out) in tasks.iter().zip(&done) {
                let Some(cut) = out else { continue };
                if let TaskKind::Pair { .. } = task.kind {
                    self.log.next_update();
                    self.log.record(task.site, cut.0, cut.1);
                }
                for _ in 0..task.swaps {
                    layout.swap(task.site);
                }
            }
            outcome?;
            progress(tasks.iter().map(|t| t.gates).sum());
        }
        Ok(())
    }

    /// Runs `tasks` (one chunk of a segment, in program order) on `h`, each task as soon as
    /// the tasks before it on its sites are done: on the state's threads by a [`Dag`], else
    /// in order. Returns, per task, whether it was done (with a two-site update's discarded
    /// weight and kept dimension), and the first error (in program order): the tasks done
    /// are then exactly those whose predecessors all succeeded and that started before the
    /// error was seen, so the state is the circuit applied up to a consistent cut.
    fn run_dag(&self, h: &mut Hastings, tasks: &[Task]) -> (Vec<Option<(f64, usize)>>, Result<()>) {
        let threads = match self.config.parallelism {
            Parallelism::Rayon(t) => t,
            Parallelism::Sequential => 1,
        };
        let base = self.update_settings(Par::Seq);
        let inner = inner_parallelism(h, tasks, threads);
        // A two-site task's settings (`inner` is false for one-qubit tasks).
        let settings = |t: usize, h: &Hastings, bond: usize| UpdateSettings {
            par: if inner[t] {
                linalg::par_for(
                    self.config.parallelism,
                    2 * h.b[bond].chi_l.max(h.b[bond + 1].chi_r),
                )
            } else {
                Par::Seq
            },
            ..base
        };
        if threads <= 1 || tasks.len() <= 1 {
            let mut done = vec![None; tasks.len()];
            for (t, task) in tasks.iter().enumerate() {
                match task.run(h, settings(t, h, task.site)) {
                    Ok(out) => done[t] = Some(out),
                    Err(e) => return (done, Err(e)),
                }
            }
            return (done, Ok(()));
        }
        let dag = Dag::new(tasks, self.n_qubits);
        let shared = Shared {
            state: std::sync::Mutex::new(DagState {
                h,
                waiting: dag.waiting.clone(),
                done: vec![None; tasks.len()],
                error: None,
            }),
            stop: std::sync::atomic::AtomicBool::new(false),
        };
        let run = |t: usize| {
            // Inputs taken out of the state (the sites) or copied (the left weights: only
            // an update on this task's left site writes them, and none runs meanwhile).
            let task = &tasks[t];
            let TaskKind::Pair { gm, .. } = &task.kind else {
                let mut g = shared.lock();
                let out = task.run(g.h, base);
                return g.finish(t, out, &dag.next, &shared.stop);
            };
            let bond = task.site;
            let (bl, br, w, settings) = {
                let mut g = shared.lock();
                let settings = settings(t, g.h, bond);
                let w = bond.checked_sub(1).map(|j| g.h.lambda[j].clone());
                let bl = std::mem::take(&mut g.h.b[bond]);
                let br = std::mem::take(&mut g.h.b[bond + 1]);
                (bl, br, w, settings)
            };
            let pair = Pair {
                bl: &bl,
                br: &br,
                w: w.as_deref(),
                gm,
                bond,
            };
            let out = update(pair, settings);
            let mut g = shared.lock();
            let out = match out {
                Ok(cut) => {
                    g.h.b[bond] = cut.left;
                    g.h.b[bond + 1] = cut.right;
                    g.h.lambda[bond] = cut.lambda;
                    Ok((cut.eps, cut.kept))
                }
                Err(e) => {
                    g.h.b[bond] = bl;
                    g.h.b[bond + 1] = br;
                    Err(e)
                }
            };
            g.finish(t, out, &dag.next, &shared.stop)
        };
        rayon::scope(|s| {
            for t in dag.roots() {
                spawn_task(s, &run, t, &shared.stop);
            }
        });
        let state = shared.state.into_inner().unwrap_or_else(|e| e.into_inner());
        let outcome = match state.error {
            Some((_, e)) => Err(e),
            None => Ok(()),
        };
        (state.done, outcome)
    }

    /// `<Z_i>` of every qubit read locally at the end of the last run: from the Hastings
    /// form of a TEBD run, as Qiskit Aer's MPS method reads them (`lambda_{i-1} B_i`
    /// contracted with itself as if its environments were exactly orthonormal), or, for a
    /// run that finished on its amplitudes ([`UpdateScheme::Auto`] on a short chain), from
    /// the amplitudes before the split back truncated them. After truncations this is not
    /// the expectation in the state held (that is [`StateBackend::z_expectations`]) but an
    /// estimate of the untruncated circuit's value that is often closer to it, as it does
    /// not see the run's last truncation; see `docs/theory.md`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if the state was not produced by a TEBD run
    /// ([`UpdateScheme::Tebd`]) or a run that finished on its amplitudes with a truncating
    /// split back, or was changed since.
    ///
    /// [`StateBackend::z_expectations`]: crate::StateBackend::z_expectations
    pub fn local_z_expectations(&self) -> Result<Vec<f64>> {
        match &self.local {
            Some(rdms) => Ok(rdms.iter().map(|r| (r[0] - r[3]).re).collect()),
            None => Err(Error::InvalidSetting {
                name: "read-out",
                value: "local".into(),
                reason: "needs a state just produced by a TEBD run (UpdateScheme::Tebd) or \
                         one that finished on its truncated amplitudes, and not changed since",
            }),
        }
    }

    /// Whether [`local_z_expectations`](Self::local_z_expectations) has values: the state
    /// was produced by a TEBD run, or by a run that finished on its amplitudes and truncated
    /// them, and not changed since (a check that builds no error).
    pub fn has_local_read_out(&self) -> bool {
        self.local.is_some()
    }

    /// `<Z_i>` of every qubit as `qfl run` reports them (its `--readout auto`): the local
    /// read-out ([`local_z_expectations`](Self::local_z_expectations)) where the last run
    /// left one, else the exact values in the state held
    /// ([`StateBackend::z_expectations`]), with which of the two it is.
    ///
    /// ```
    /// use qfl::{Circuit, MpsConfig, MpsState, StateBackend, ZReadOut};
    /// let mut c = Circuit::new(3)?;
    /// c.h(0)?;
    /// c.cx(0, 1)?;
    /// let mut psi = MpsState::new(3, MpsConfig::default())?;
    /// psi.run(&c, &[], &[])?;
    /// // A short chain that never truncated: the state held is read.
    /// let (z, how) = psi.z_expectations_auto()?;
    /// assert_eq!(how, ZReadOut::Exact);
    /// assert!(z[0].abs() < 1e-12 && (z[2] - 1.0).abs() < 1e-12);
    /// # Ok::<(), qfl::Error>(())
    /// ```
    ///
    /// # Errors
    /// Those of the reader taken.
    ///
    /// [`StateBackend::z_expectations`]: crate::StateBackend::z_expectations
    pub fn z_expectations_auto(&self) -> Result<(Vec<f64>, ZReadOut)> {
        if self.has_local_read_out() {
            Ok((self.local_z_expectations()?, ZReadOut::Local))
        } else {
            Ok((self.z_expectations()?, ZReadOut::Exact))
        }
    }
}

/// Which reader gave [`MpsState::z_expectations_auto`]'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZReadOut {
    /// The expectation values in the state held ([`StateBackend::z_expectations`]).
    ///
    /// [`StateBackend::z_expectations`]: crate::StateBackend::z_expectations
    Exact,
    /// The local read-out of the last run ([`MpsState::local_z_expectations`]).
    Local,
}

impl ZReadOut {
    /// `"exact"` or `"local"`, as `qfl run` reports it.
    pub fn name(&self) -> &'static str {
        match self {
            ZReadOut::Exact => "exact",
            ZReadOut::Local => "local",
        }
    }
}

/// The one-qubit density matrices of the Hastings form:
/// `rho_i[s, s'] = sum_{l, r} lambda_{i-1}[l]^2 B_i[l, s, r] conj(B_i[l, s', r])`, trace 1.
fn local_rdms(h: &Hastings) -> Vec<[C64; 4]> {
    h.b.iter()
        .enumerate()
        .map(|(i, site)| {
            let chi_l = site.chi_l;
            let w = i.checked_sub(1).map(|j| h.lambda[j].as_slice());
            let mut rho = [C64::new(0.0, 0.0); 4];
            for r in 0..site.chi_r {
                let base = 2 * chi_l * r;
                for l in 0..chi_l {
                    let wl = w.map_or(1.0, |w| w[l] * w[l]);
                    let a0 = site.data[base + l];
                    let a1 = site.data[base + chi_l + l];
                    rho[0] += a0 * a0.conj() * wl;
                    rho[1] += a0 * a1.conj() * wl;
                    rho[2] += a1 * a0.conj() * wl;
                    rho[3] += a1 * a1.conj() * wl;
                }
            }
            let tr = (rho[0] + rho[3]).re;
            if tr > 0.0 {
                rho.iter_mut().for_each(|z| *z /= tr);
            }
            rho
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MpsConfig;
    use crate::backend::StateBackend;
    use crate::circuit::{Circuit, Gate};

    /// `right_gram_vectors` against faer's SVD on wide (at most half as tall: the QR path;
    /// less wide: the full Gram matrix), square and tall matrices, full rank, rank-deficient
    /// and graded (singular values over 8 orders of magnitude): its largest eigenvalues are
    /// the squared singular values and any others are round-off, its eigenvectors are
    /// orthonormal and `A v_t` has norm `sqrt(lambda_t)`, so they span the right singular
    /// directions whatever the degeneracies.
    #[test]
    fn right_gram_vectors_agree_with_the_svd_on_every_shape() {
        use crate::linalg::test_support::random_matrix;
        for (m, n, rank, spread) in [
            (24, 64, 24, 0.0),
            (40, 64, 40, 3.0),
            (40, 80, 12, 0.0),
            (48, 96, 48, 8.0),
            (33, 33, 33, 2.0),
            (96, 40, 40, 0.0),
            (8, 300, 8, 1.0),
            (300, 300, 100, 4.0),
        ] {
            let a = random_matrix(m, n, rank, spread, (m * n + rank) as u64);
            let norm2 = a.squared_norm_l2();
            for p in [Par::Seq, Par::rayon(2)] {
                let (vals, v) = right_gram_vectors(a.as_ref(), p).unwrap();
                let what = format!("{m} x {n}, rank {rank}, spread {spread}, {p:?}");
                let k = if 2 * m <= n { m } else { n };
                assert_eq!(vals.len(), k, "{what}");
                assert_eq!(v.shape(), (n, k), "{what}");
                let svd = a.thin_svd().unwrap();
                let s = svd.S().column_vector();
                for t in 0..k {
                    let want = if t < m.min(n) { s[t].re * s[t].re } else { 0.0 };
                    let got = vals[k - 1 - t];
                    assert!(
                        (got - want).abs() < 1e-12 * norm2,
                        "{what}: value {t}: {got} vs {want}"
                    );
                }
                let gram = v.adjoint() * &v;
                let av = &a * &v;
                for t in 0..v.ncols() {
                    for u in 0..v.ncols() {
                        let want = if t == u { 1.0 } else { 0.0 };
                        assert!(
                            (gram[(t, u)] - C64::new(want, 0.0)).norm() < 1e-12,
                            "{what}: V^H V at {t},{u}"
                        );
                    }
                    let col = av.col(t).squared_norm_l2();
                    assert!(
                        (col - vals[t]).abs() < 1e-11 * norm2,
                        "{what}: |A v_{t}|^2 {col} vs {}",
                        vals[t]
                    );
                }
            }
        }
    }

    /// Sites each scaled by 1e-120: the state's norm (1e-720) is below the `f64` range, its
    /// direction is not; restoring the canonical form gives the normalized state.
    #[test]
    fn restoring_the_canonical_form_survives_a_norm_below_the_f64_range() {
        let n = 6;
        let mut c = Circuit::new(n).unwrap();
        for q in 0..n {
            c.push(Gate::Ry((0.3 + 0.2 * q as f64).into()), &[q])
                .unwrap();
        }
        for q in 0..n - 1 {
            c.push(Gate::Cx, &[q, q + 1]).unwrap();
            c.push(Gate::Rz((0.7 * q as f64).into()), &[q + 1]).unwrap();
        }
        let mut psi = MpsState::new(
            n,
            MpsConfig::default().with_update(crate::UpdateScheme::Centre),
        )
        .unwrap();
        psi.run(&c, &[], &[]).unwrap();
        let want = psi.to_dense().unwrap();
        let mut h = psi.enter_hastings().unwrap();
        for site in &mut h.b {
            site.data.iter_mut().for_each(|z| *z *= 1e-120);
        }
        psi.restore_canonical(h).unwrap();
        assert_eq!(psi.centre, 0);
        assert!(psi.canonical_deviation() < 1e-12);
        for (x, y) in psi.to_dense().unwrap().iter().zip(&want) {
            assert!((x - y).norm() < 1e-12, "{x} vs {y}");
        }
    }

    /// A TEBD run leaves its sites in Hastings' form and defers the sweep: readers read a
    /// swept copy, made once; `settle` takes that copy (or sweeps); either way the state
    /// is the one the sweep gives, with the bond dimensions reported before it, and the
    /// local read-out survives. A run after it starts from the swept state.
    #[test]
    fn a_tebd_run_defers_its_sweep_until_needed() {
        let n = 10;
        let mut c = Circuit::new(n).unwrap();
        for layer in 0..6 {
            for q in 0..n {
                c.push(Gate::Ry((0.4 + 0.3 * (q + layer) as f64).into()), &[q])
                    .unwrap();
            }
            for q in (layer % 2..n - 1).step_by(2) {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let config = MpsConfig::default()
            .with_truncation(crate::backend::mps::Truncation::default().with_max_bond(5))
            .with_update(UpdateScheme::Tebd);
        let mut psi = MpsState::new(n, config).unwrap();
        psi.run(&c, &[], &[]).unwrap();
        assert!(psi.unswept && psi.swept.get().is_none());
        let dims = psi.bond_dimensions();
        assert!(dims.contains(&5), "{dims:?}");
        let local = psi.local_z_expectations().unwrap();
        assert_eq!(psi.centre(), 0);
        let dense = psi.to_dense().unwrap();
        assert!(psi.unswept && psi.swept.get().is_some());
        assert!((psi.norm() - 1.0).abs() < 1e-12);
        let mut fresh = psi.clone();
        fresh.swept = std::sync::OnceLock::new();
        fresh.settle().unwrap();
        let mut later = psi.clone();
        psi.settle().unwrap();
        assert!(!psi.unswept && psi.swept.get().is_none());
        for s in [&psi, &fresh] {
            assert_eq!(s.bond_dimensions(), dims);
            assert_eq!(s.centre(), 0);
            assert!(s.canonical_deviation() < 1e-10);
            assert_eq!(s.local_z_expectations().unwrap(), local);
            for (x, y) in s.to_dense().unwrap().iter().zip(&dense) {
                assert!((x - y).norm() < 1e-13, "{x} vs {y}");
            }
        }
        // A further run on the unswept state and on the settled one.
        let mut d = Circuit::new(n).unwrap();
        d.push(Gate::Cx, &[2, 7]).unwrap();
        d.push(Gate::Ry(0.9.into()), &[4]).unwrap();
        later.run(&d, &[], &[]).unwrap();
        psi.run(&d, &[], &[]).unwrap();
        for (x, y) in later
            .to_dense()
            .unwrap()
            .iter()
            .zip(&psi.to_dense().unwrap())
        {
            assert!((x - y).norm() < 1e-12, "{x} vs {y}");
        }
    }

    /// A random site `chi_l x 2 x chi_r` from `seed`.
    fn random_site(chi_l: usize, chi_r: usize, seed: u64) -> Site {
        let m = crate::linalg::test_support::random_matrix(
            2 * chi_l,
            chi_r,
            chi_r.min(2 * chi_l),
            1.0,
            seed,
        );
        Site::from_mat(m.as_ref(), chi_l, chi_r)
    }

    /// A random one-qubit unitary (row-major) from three angles.
    fn unitary(a: f64, b: f64, c: f64) -> [C64; 4] {
        let (co, si) = (a.cos(), a.sin());
        [
            C64::from_polar(co, b),
            -C64::from_polar(si, c),
            C64::from_polar(si, -c),
            C64::from_polar(co, -b),
        ]
    }

    /// `CZ (U (x) V)` in window order (`U` on the window's first qubit).
    fn cz_after(u: &[C64; 4], v: &[C64; 4]) -> Vec<C64> {
        let mut gm = vec![C64::new(0.0, 0.0); 16];
        for (a1, a2, b1, b2) in (0..16).map(|i| (i & 1, (i >> 1) & 1, (i >> 2) & 1, i >> 3)) {
            let sign = if a1 == 1 && a2 == 1 { -1.0 } else { 1.0 };
            gm[(a1 + 2 * a2) * 4 + (b1 + 2 * b2)] = u[2 * a1 + b1] * v[2 * a2 + b2] * sign;
        }
        gm
    }

    /// The factored update gives the update of the whole tensor: the same Schmidt values,
    /// right vectors orthonormal, and `B_i B_{i+1} = G (B_i B_{i+1})` before the update. A
    /// CZ between one-qubit gates has two operator-Schmidt terms (inner dimension `2 chi`)
    /// and is factored on every shape here; a SWAP has four, and is factored only where
    /// `4 chi` is small enough.
    #[test]
    fn factored_updates_match_the_whole_tensor() {
        let settings = |split| UpdateSettings {
            truncation: crate::backend::mps::Truncation::default(),
            split,
            svd: SvdBackend::Faer,
            par: Par::Seq,
        };
        let cz = cz_after(&unitary(0.3, 1.1, -0.4), &unitary(1.2, 0.2, 0.9));
        assert_eq!(operator_schmidt(&cz).unwrap().len(), 2);
        assert_eq!(operator_schmidt(&swap_matrix()).unwrap().len(), 4);
        for (chi_l, chi, chi_r, weighted, swap_factored) in [
            (10, 4, 10, true, false),
            (12, 5, 16, false, true),
            (30, 12, 24, true, false),
        ] {
            for (gm, factored) in [(cz.clone(), true), (swap_matrix(), swap_factored)] {
                let (bl, br) = (random_site(chi_l, chi, 7), random_site(chi, chi_r, 8));
                let w: Vec<f64> = (0..chi_l).map(|l| 0.9f64.powi(l as i32)).collect();
                let w = weighted.then_some(w.as_slice());
                let what = format!("chi {chi_l}, {chi}, {chi_r}, factored {factored}");
                let pair = Pair {
                    bl: &bl,
                    br: &br,
                    w,
                    gm: &gm,
                    bond: 0,
                };
                let f = factored_vectors(pair, settings(SplitMethod::Gram)).unwrap();
                assert_eq!(f.is_some(), factored, "{what}");
                let a = update(pair, settings(SplitMethod::Gram)).unwrap();
                let b = update(pair, settings(SplitMethod::Svd)).unwrap();
                assert_eq!(a.kept, b.kept, "{what}");
                let terms = if gm == cz { 2 } else { 4 };
                assert_eq!(
                    a.kept,
                    (2 * chi_l).min(2 * chi_r).min(terms * chi),
                    "{what}"
                );
                for (x, y) in a.lambda.iter().zip(&b.lambda) {
                    assert!((x - y).abs() < 1e-12, "{what}: lambda {x} vs {y}");
                }
                let right = a.right.as_l_sr();
                let gram = right * right.adjoint();
                assert!(
                    (&gram - Mat::<C64>::identity(a.kept, a.kept)).norm_max() < 1e-12,
                    "{what}: right site not orthonormal"
                );
                // The product of the new sites is the gate applied to the old ones.
                let product = |l: &Site, r: &Site| {
                    let m = l.as_ls_r() * r.as_l_sr();
                    super::super::col_major(m)
                };
                let want = apply_gate_to_theta(product(&bl, &br), &gm, chi_l, 4, chi_r);
                let got = product(&a.left, &a.right);
                let scale = want.iter().map(|z| z.norm()).fold(0.0, f64::max);
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).norm() < 1e-12 * scale, "{what}: {x} vs {y}");
                }
            }
        }
    }

    /// A chunk run as a dependency graph on two threads gives the bits program order gives;
    /// when one update fails (a gate with a NaN entry), the error names its bond, neither it
    /// nor any task after it on its sites is done, and the state is exactly the tasks done
    /// applied in program order (the same as one thread when nothing failed).
    #[test]
    fn a_dependency_graph_run_equals_program_order_and_stops_cleanly() {
        let n = 10;
        let mut c = Circuit::new(n).unwrap();
        for layer in 0..4 {
            for q in 0..n {
                c.push(Gate::Ry((0.3 + 0.2 * (q * layer) as f64).into()), &[q])
                    .unwrap();
            }
            for q in (layer % 2..n - 1).step_by(2) {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let truncation = crate::backend::mps::Truncation::default().with_max_bond(6);
        let state = |par| {
            let config = MpsConfig::default()
                .with_truncation(truncation)
                .with_update(UpdateScheme::Tebd)
                .with_parallelism(par);
            let mut psi = MpsState::new(n, config).unwrap();
            psi.run(&c, &[], &[]).unwrap();
            psi.settle().unwrap();
            psi
        };
        let (mut seq, par) = (state(Parallelism::Sequential), state(Parallelism::Rayon(2)));
        let start = seq.enter_hastings().unwrap();
        // Bonds of the pair tasks (program order), with a one-qubit task on site 5.
        let bonds = [0, 2, 4, 6, 1, 3, 7, 8, 0, 2, 6, 5, 7];
        let tasks_with = |bad: Option<usize>| {
            let mut tasks: Vec<Task> = bonds
                .iter()
                .enumerate()
                .map(|(k, &b)| {
                    let u = unitary(0.3 + 0.1 * k as f64, 0.2 * b as f64, 0.7);
                    let mut gm = cz_after(&u, &unitary(1.1, 0.4, 0.1 * k as f64));
                    if bad == Some(k) {
                        gm[5] = C64::new(f64::NAN, 0.0);
                    }
                    Task::pair(b, gm, 0, 1)
                })
                .collect();
            tasks.insert(
                9,
                Task {
                    site: 5,
                    kind: TaskKind::Single(unitary(0.8, 0.3, 0.2)),
                    swaps: 0,
                    gates: 1,
                },
            );
            tasks
        };
        let replay = |tasks: &[Task], done: &[Option<(f64, usize)>]| {
            let mut h = start.clone();
            for (task, d) in tasks.iter().zip(done) {
                if let Some(d) = d {
                    assert_eq!(task.run(&mut h, seq.update_settings(Par::Seq)).unwrap(), *d);
                }
            }
            h
        };
        let same = |a: &Hastings, b: &Hastings| {
            assert!(a.b.iter().zip(&b.b).all(|(x, y)| x.data == y.data));
            assert_eq!(a.lambda, b.lambda);
        };
        // Nothing fails: every task done, the same bits on one and two threads.
        let tasks = tasks_with(None);
        let mut one = start.clone();
        let (done_one, out) = seq.run_dag(&mut one, &tasks);
        out.unwrap();
        let mut two = start.clone();
        let (done_two, out) = par.run_dag(&mut two, &tasks);
        out.unwrap();
        assert!(done_one.iter().all(Option::is_some));
        assert_eq!(done_one, done_two);
        same(&one, &two);
        same(&one, &replay(&tasks, &done_one));
        // Task 2 (bond 4) fails. Tasks 5 (bond 3), 9 (site 5), 12 (bond 5) and 10 (bond 2,
        // after 5) wait for it.
        let tasks = tasks_with(Some(2));
        for psi in [&seq, &par] {
            let mut h = start.clone();
            let (done, out) = psi.run_dag(&mut h, &tasks);
            let err = out.unwrap_err().to_string();
            assert!(err.contains("bond 4"), "{err}");
            for t in [2, 5, 9, 10, 12] {
                assert!(done[t].is_none(), "task {t} ran after the failure");
            }
            same(&h, &replay(&tasks, &done));
        }
        let mut h = start.clone();
        let (done, _) = seq.run_dag(&mut h, &tasks);
        assert_eq!(
            done.iter().map(Option::is_some).collect::<Vec<_>>()[..3],
            [true, true, false]
        );
        assert!(done[3..].iter().all(Option::is_none));
    }
}
