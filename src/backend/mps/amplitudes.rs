//! The gates of a whole circuit on the amplitudes of a short chain, with gate fusion.
//!
//! A chain of a few qubits is cheaper to run as its `2^n` amplitudes than as an MPS: a gate
//! costs a few multiply-adds per amplitude, where a two-site update costs a factorization.
//! [`MpsState::run_as_one_block`](super::MpsState) contracts such a chain once, runs every
//! gate here and splits the result back into sites with the usual truncation.
//!
//! Gates are fused as they come, as Qiskit Aer's fusion pass does for its state vector: the
//! one-qubit gates on a qubit are multiplied into one pending `2 x 2` matrix, and a two-qubit
//! gate takes the pending matrices of its qubits and every later gate on the same pair (and
//! the one-qubit gates on its qubits) into one `4 x 4` matrix, applied only when a gate
//! touches one of its qubits and another qubit. Pending matrices act on disjoint qubits, so
//! they commute and the order of their application does not matter. A lone controlled,
//! diagonal or swap gate keeps its cheap form; a fused matrix that turns out diagonal is
//! applied as a diagonal.
//!
//! On chains of 16 qubits or more the fused gates are not applied one by one, each a pass
//! over the `2^n` amplitudes, but queued and applied at the end in cache-sized chunks
//! (`run_blocked`): a segment of gates that, reordered only past gates on other qubits, act
//! on at most 14 index bits is applied to one chunk of `2^14` amplitudes after another, so
//! a ten-layer brick over 20 qubits takes 7 passes over the amplitudes instead of 190.
//!
//! Qubit `j` is bit `j` of an amplitude's index; a gate's matrix has its first argument as
//! the most significant bit (`docs/conventions.md`).

use num_complex::Complex64 as C64;
use rayon::prelude::*;

use crate::backend::Parallelism;
use crate::backend::dense::{SharedMut, insert_zero_bits};
use crate::circuit::Action;

const ZERO: C64 = C64::new(0.0, 0.0);
const ONE: C64 = C64::new(1.0, 0.0);

/// A pending two-qubit operation on qubits `(a, b)` (`a` the matrix's most significant bit).
enum PairOp {
    /// One gate as it came (controlled, diagonal, swap or a general `4 x 4`).
    Gate(Action),
    /// A product of gates, row-major.
    Fused([C64; 16]),
}

/// Applies gates to `psi` with fusion (see the module docs); [`finish`](Self::finish)
/// applies what is pending.
pub(super) struct Fuser<'a> {
    psi: &'a mut [C64],
    /// The product of the one-qubit gates on each qubit not applied yet.
    one: Vec<Option<[C64; 4]>>,
    pair: Option<(usize, usize, PairOp)>,
    /// The index bit of each qubit (see [`exchange`](Self::exchange)); pending matrices are
    /// kept by bit.
    bit_of: Vec<usize>,
    /// Whether two-qubit gates are fused: on fewer than [`FUSE_MIN_QUBITS`] qubits a `4 x 4`
    /// product costs about as much as applying a gate (one-qubit gates are always
    /// multiplied: a `2 x 2` product is 8 multiply-adds).
    fuse: bool,
    /// Whether gates are applied by the threads of the current rayon pool (see
    /// [`with_parallelism`](Self::with_parallelism)).
    parallel: bool,
    /// On chains of at least [`BLOCKED_MIN_QUBITS`] qubits, the gates decided on (fused)
    /// are queued here and applied by [`finish`](Self::finish) in cache-sized chunks (see
    /// [`run_blocked`]), with the chunks' number of index bits.
    queue: Option<(Vec<Kernel>, usize)>,
}

/// A gate the fuser has decided on, on index bits, waiting in its queue.
enum Kernel {
    /// A row-major `2 x 2` on a bit.
    One([C64; 4], usize),
    /// A two-qubit action on bits `(a, b)` (`a` the matrix's most significant bit).
    Pair(Action, usize, usize),
    /// A row-major `4 x 4` on bits `(a, b)`.
    Fused([C64; 16], usize, usize),
    /// A `2 x 2` on bit `t` where bits `c1` and `c2` are both 1.
    Doubly([C64; 4], usize, usize, usize),
    /// A gate of three qubits, its first argument the most significant bit.
    Matrix(crate::circuit::GateMatrix, [usize; 3]),
}

impl Kernel {
    /// The index bits the kernel touches, as a mask.
    fn mask(&self) -> usize {
        let bits: &[usize] = match self {
            Kernel::One(_, q) => &[*q],
            Kernel::Pair(_, a, b) | Kernel::Fused(_, a, b) => &[*a, *b],
            Kernel::Doubly(_, c1, c2, t) => &[*c1, *c2, *t],
            Kernel::Matrix(_, q) => q,
        };
        bits.iter().fold(0, |m, &b| m | 1 << b)
    }

    /// Applies the kernel to `psi` (`2^n` amplitudes) on one thread, its bits read through
    /// `at` (the bit of `psi` that stands for each of its bits).
    fn apply(&self, psi: &mut [C64], at: impl Fn(usize) -> usize) {
        match self {
            Kernel::One(u, q) => apply_one(psi, u, at(*q)),
            Kernel::Pair(action, a, b) => apply_pair(psi, action, at(*a), at(*b)),
            Kernel::Fused(m, a, b) => apply_fused(psi, m, at(*a), at(*b)),
            Kernel::Doubly(u, c1, c2, t) => {
                apply_doubly_controlled(psi, u, at(*c1), at(*c2), at(*t))
            }
            Kernel::Matrix(m, q) => {
                let n = psi.len().trailing_zeros() as usize;
                crate::backend::dense::apply_kernel(psi, n, m, &q.map(&at), false);
            }
        }
    }
}

/// Chains of at least this many qubits (`2^16` amplitudes, 1 MiB) have their gates applied
/// in chunks of [`CHUNK_BITS`] index bits ([`run_blocked`]).
const BLOCKED_MIN_QUBITS: usize = 16;

/// The index bits of a chunk: `2^14` amplitudes, 256 KiB, held in a core's second-level
/// cache while every gate of a segment is applied to it.
const CHUNK_BITS: usize = 14;

/// The lowest index bits are in every chunk: a chunk is gathered in runs of at least
/// `2^CHUNK_LOW_BITS` contiguous amplitudes (two cache lines).
const CHUNK_LOW_BITS: usize = 3;

/// Applies `kernels` in order to `psi` (`2^n` amplitudes, `n > chunk_bits`) in segments, as
/// state-vector simulators block their gates for the cache: a segment takes, in order,
/// every kernel whose bits fit, with the bits taken so far, into `chunk_bits` bits and that
/// touches no bit of a kernel it passed over (so a kernel is only ever moved past kernels
/// on other bits, with which it commutes); its first kernel always (the chunk then has
/// more bits when `chunk_bits` is too small for it). The segment's bits, topped up with the lowest
/// other bits, split the amplitudes into `2^(n - chunk_bits)` chunks of `2^chunk_bits`;
/// each chunk is gathered into a buffer, every kernel of the segment applied to it, and
/// written back (by the threads of the current rayon pool when `parallel`). Gates over the
/// whole chain thus cost a pass over the amplitudes per segment instead of one per gate (a
/// ten-layer brick on 20 qubits: 7 segments of its 190 fused gates).
fn run_blocked(psi: &mut [C64], kernels: Vec<Kernel>, chunk_bits: usize, parallel: bool) {
    let n = psi.len().trailing_zeros() as usize;
    debug_assert!(chunk_bits < n);
    let low = (1usize << CHUNK_LOW_BITS) - 1;
    let mut rest = kernels;
    while !rest.is_empty() {
        let (mut mask, mut passed) = (low, 0usize);
        let mut segment = Vec::new();
        let mut later = Vec::new();
        for kernel in rest {
            let bits = kernel.mask();
            let fits = (mask | bits).count_ones() as usize <= chunk_bits || segment.is_empty();
            if bits & passed != 0 || !fits {
                passed |= bits;
                later.push(kernel);
            } else {
                mask |= bits;
                segment.push(kernel);
            }
        }
        let mut bit = 0;
        while (mask.count_ones() as usize) < chunk_bits {
            mask |= 1 << bit;
            bit += 1;
        }
        apply_segment(psi, &segment, mask, parallel);
        rest = later;
    }
}

/// Applies `segment` to the chunks of `psi` whose bits are those of `mask` (see
/// [`run_blocked`]).
fn apply_segment(psi: &mut [C64], segment: &[Kernel], mask: usize, parallel: bool) {
    let n = psi.len().trailing_zeros() as usize;
    let bits: Vec<usize> = (0..n).filter(|&b| mask >> b & 1 == 1).collect();
    let k = bits.len();
    // Local bit of each chunk bit; the chunk's lowest `run_bits` bits are contiguous.
    let mut local = vec![usize::MAX; n];
    for (l, &b) in bits.iter().enumerate() {
        local[b] = l;
    }
    let run_bits = bits
        .iter()
        .enumerate()
        .take_while(|&(l, &b)| l == b)
        .count();
    let run = 1usize << run_bits;
    // Offset of each run of the chunk from its base.
    let offsets: Vec<usize> = (0..1usize << (k - run_bits))
        .map(|h| {
            (run_bits..k)
                .filter(|&l| (h >> (l - run_bits)) & 1 == 1)
                .fold(0, |o, l| o | 1 << bits[l])
        })
        .collect();
    let ptr = SharedMut::new(psi);
    let one_chunk = |buf: &mut Vec<C64>, c: usize| {
        let base = insert_zero_bits(c, &bits);
        // SAFETY: chunk `c` alone touches the indices `base | o` (`base` has the chunk's
        // bits clear, `o` only those), all below `psi.len()`, which stays borrowed.
        unsafe {
            for (h, &o) in offsets.iter().enumerate() {
                let src = std::slice::from_raw_parts(ptr.get().add(base | o), run);
                buf[h * run..(h + 1) * run].copy_from_slice(src);
            }
            for kernel in segment {
                kernel.apply(buf, |b| local[b]);
            }
            for (h, &o) in offsets.iter().enumerate() {
                let dst = std::slice::from_raw_parts_mut(ptr.get().add(base | o), run);
                dst.copy_from_slice(&buf[h * run..(h + 1) * run]);
            }
        }
    };
    let chunks = 1usize << (n - k);
    if parallel {
        (0..chunks)
            .into_par_iter()
            .for_each_init(|| vec![ZERO; 1 << k], one_chunk);
    } else {
        let mut buf = vec![ZERO; 1 << k];
        for c in 0..chunks {
            one_chunk(&mut buf, c);
        }
    }
}

/// Amplitude vectors of at least this many entries (1 MiB) may have their gates applied by
/// several threads: below that a gate takes a few microseconds, about what handing it to
/// the pool costs.
const PARALLEL_MIN_AMPLITUDES: usize = 1 << 16;

/// Index groups per task of a parallel gate.
const PARALLEL_TASK: usize = 1 << 12;

/// Multiplies every amplitude `psi[p]` by `factor(p)`, by the threads of the current rayon
/// pool (a diagonal gate).
fn par_scale(psi: &mut [C64], factor: impl Fn(usize) -> C64 + Sync) {
    psi.par_chunks_mut(PARALLEL_TASK)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (i, z) in chunk.iter_mut().enumerate() {
                *z *= factor(c * PARALLEL_TASK + i);
            }
        });
}

/// The diagonal of the row-major `4 x 4` `m`, if every entry off it is zero.
fn diagonal_of(m: &[C64; 16]) -> Option<[C64; 4]> {
    (0..16)
        .filter(|k| k % 5 != 0)
        .all(|k| m[k] == ZERO)
        .then(|| [m[0], m[5], m[10], m[15]])
}

/// [`apply_one`] by the threads of the current rayon pool.
fn par_apply_one(psi: &mut [C64], u: &[C64; 4], q: usize) {
    let b = 1usize << q;
    if u[1] == ZERO && u[2] == ZERO {
        let (d0, d1) = (u[0], u[3]);
        return par_scale(psi, |p| if p & b == 0 { d0 } else { d1 });
    }
    let ptr = SharedMut::new(psi);
    let groups = psi.len() / 2;
    (0..groups)
        .into_par_iter()
        .with_min_len(PARALLEL_TASK)
        .for_each(move |k| {
            let p = insert_zero_bits(k, &[q]);
            // SAFETY: `p` has bit q clear and is below `psi.len()`; group `k` alone touches
            // `p` and `p | b`, both in `psi`, which stays borrowed for the call.
            unsafe {
                let (x, y) = (ptr.get().add(p), ptr.get().add(p | b));
                let (s, t) = (*x, *y);
                *x = u[0] * s + u[1] * t;
                *y = u[2] * s + u[3] * t;
            }
        });
}

/// [`apply_fused`] by the threads of the current rayon pool.
fn par_apply_fused(psi: &mut [C64], m: &[C64; 16], a: usize, b: usize) {
    let (ba, bb) = (1usize << a, 1usize << b);
    if let Some(d) = diagonal_of(m) {
        return par_scale(psi, |p| {
            d[usize::from(p & ba != 0) * 2 + usize::from(p & bb != 0)]
        });
    }
    let offsets = [0, bb, ba, ba | bb];
    let sorted = [a.min(b), a.max(b)];
    let ptr = SharedMut::new(psi);
    let groups = psi.len() / 4;
    (0..groups)
        .into_par_iter()
        .with_min_len(PARALLEL_TASK / 4)
        .for_each(move |k| {
            let p = insert_zero_bits(k, &sorted);
            // SAFETY: `p` has bits a and b clear and is below `psi.len()`; group `k` alone
            // touches `p | o` for the four offsets, all in `psi`, which stays borrowed.
            unsafe {
                let v = offsets.map(|o| *ptr.get().add(p | o));
                for (r, o) in offsets.iter().enumerate() {
                    let row = &m[r * 4..r * 4 + 4];
                    *ptr.get().add(p | o) =
                        row[0] * v[0] + row[1] * v[1] + row[2] * v[2] + row[3] * v[3];
                }
            }
        });
}

/// The fewest qubits on which [`Fuser`] fuses two-qubit gates: a `4 x 4` product is 64
/// complex multiply-adds, a two-qubit gate on `2^n` amplitudes `2^(n + 2)`, a one-qubit gate
/// `2^(n + 1)`.
const FUSE_MIN_QUBITS: usize = 6;

/// `x y` for row-major `2 x 2` matrices.
fn product2(x: &[C64; 4], y: &[C64; 4]) -> [C64; 4] {
    [
        x[0] * y[0] + x[1] * y[2],
        x[0] * y[1] + x[1] * y[3],
        x[2] * y[0] + x[3] * y[2],
        x[2] * y[1] + x[3] * y[3],
    ]
}

/// `x y` for row-major `4 x 4` matrices.
fn product4(x: &[C64; 16], y: &[C64; 16]) -> [C64; 16] {
    let mut out = [ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[r * 4 + c] = x[r * 4] * y[c]
                + x[r * 4 + 1] * y[4 + c]
                + x[r * 4 + 2] * y[8 + c]
                + x[r * 4 + 3] * y[12 + c];
        }
    }
    out
}

/// `(u on one qubit) m` for a row-major `4 x 4` `m`: `u (x) 1` if `high` (the most
/// significant bit), else `1 (x) u`. Half the work of the full product.
fn lift_times(u: &[C64; 4], m: &mut [C64; 16], high: bool) {
    let stride = if high { 2 } else { 1 };
    let rows: [usize; 2] = if high { [0, 1] } else { [0, 2] };
    for r in rows {
        let (i, j) = (r * 4, (r + stride) * 4);
        for c in 0..4 {
            let (x, y) = (m[i + c], m[j + c]);
            m[i + c] = u[0] * x + u[1] * y;
            m[j + c] = u[2] * x + u[3] * y;
        }
    }
}

/// `x (x) y`: `x` on the most significant bit.
fn kron(x: &[C64; 4], y: &[C64; 4]) -> [C64; 16] {
    let mut out = [ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[r * 4 + c] = x[(r >> 1) * 2 + (c >> 1)] * y[(r & 1) * 2 + (c & 1)];
        }
    }
    out
}

const I2: [C64; 4] = [ONE, ZERO, ZERO, ONE];

/// The `4 x 4` matrix of a two-qubit action, row-major.
fn pair_matrix(action: &Action) -> [C64; 16] {
    match action {
        Action::Controlled(u) => {
            let mut m = [ZERO; 16];
            m[0] = ONE;
            m[5] = ONE;
            m[10] = u[0];
            m[11] = u[1];
            m[14] = u[2];
            m[15] = u[3];
            m
        }
        Action::Diagonal(d) => {
            let mut m = [ZERO; 16];
            for k in 0..4 {
                m[k * 5] = d[k];
            }
            m
        }
        Action::Swap => {
            let mut m = [ZERO; 16];
            m[0] = ONE;
            m[6] = ONE;
            m[9] = ONE;
            m[15] = ONE;
            m
        }
        Action::General(g) => {
            let mut m = [ZERO; 16];
            m.copy_from_slice(g.as_slice());
            m
        }
        Action::One(u) => kron(u, &I2),
    }
}

/// `m` with its two qubits exchanged (the bits of its row and column indices swapped).
fn exchanged(m: &[C64; 16]) -> [C64; 16] {
    let s = |x: usize| ((x & 1) << 1) | (x >> 1);
    let mut out = [ZERO; 16];
    for r in 0..4 {
        for c in 0..4 {
            out[s(r) * 4 + s(c)] = m[r * 4 + c];
        }
    }
    out
}

/// Calls `f` with every index whose bits `lo` and `hi` (`lo < hi`) are clear, in order.
#[inline(always)]
fn bases2(len: usize, lo: usize, hi: usize, mut f: impl FnMut(usize)) {
    let (l, h) = (1usize << lo, 1usize << hi);
    for x in (0..len).step_by(2 * h) {
        for y in (x..x + h).step_by(2 * l) {
            for p in y..y + l {
                f(p);
            }
        }
    }
}

/// Applies the row-major `2 x 2` `u` to qubit `q` of `psi`.
fn apply_one(psi: &mut [C64], u: &[C64; 4], q: usize) {
    let b = 1usize << q;
    if u[1] == ZERO && u[2] == ZERO {
        let (d0, d1) = (u[0], u[3]);
        for chunk in psi.chunks_exact_mut(2 * b) {
            let (x, y) = chunk.split_at_mut(b);
            if d0 != ONE {
                x.iter_mut().for_each(|z| *z *= d0);
            }
            y.iter_mut().for_each(|z| *z *= d1);
        }
        return;
    }
    if b == 1 {
        // Pairs of neighbours: one loop, no inner slices of length one.
        for pair in psi.chunks_exact_mut(2) {
            let (s, t) = (pair[0], pair[1]);
            pair[0] = u[0] * s + u[1] * t;
            pair[1] = u[2] * s + u[3] * t;
        }
        return;
    }
    for chunk in psi.chunks_exact_mut(2 * b) {
        let (x, y) = chunk.split_at_mut(b);
        for (p, q) in x.iter_mut().zip(y.iter_mut()) {
            let (s, t) = (*p, *q);
            *p = u[0] * s + u[1] * t;
            *q = u[2] * s + u[3] * t;
        }
    }
}

/// Applies a two-qubit `action` to qubits `(a, b)` of `psi`.
fn apply_pair(psi: &mut [C64], action: &Action, a: usize, b: usize) {
    let (ba, bb) = (1usize << a, 1usize << b);
    let (lo, hi) = (a.min(b), a.max(b));
    let len = psi.len();
    match action {
        Action::Controlled(u) => bases2(len, lo, hi, |p| {
            let (i, j) = (p | ba, p | ba | bb);
            let (x, y) = (psi[i], psi[j]);
            psi[i] = u[0] * x + u[1] * y;
            psi[j] = u[2] * x + u[3] * y;
        }),
        Action::Diagonal(d) => bases2(len, lo, hi, |p| {
            psi[p] *= d[0];
            psi[p | bb] *= d[1];
            psi[p | ba] *= d[2];
            psi[p | ba | bb] *= d[3];
        }),
        Action::Swap => bases2(len, lo, hi, |p| psi.swap(p | ba, p | bb)),
        Action::One(u) => apply_one(psi, u, a),
        Action::General(_) => apply_fused(psi, &pair_matrix(action), a, b),
    }
}

/// Applies the row-major `4 x 4` `m` to qubits `(a, b)` of `psi`.
fn apply_fused(psi: &mut [C64], m: &[C64; 16], a: usize, b: usize) {
    if let Some(d) = diagonal_of(m) {
        return apply_pair(psi, &Action::Diagonal(d), a, b);
    }
    let (ba, bb) = (1usize << a, 1usize << b);
    let offsets = [0, bb, ba, ba | bb];
    bases2(psi.len(), a.min(b), a.max(b), |p| {
        let v = offsets.map(|o| psi[p | o]);
        for (r, o) in offsets.iter().enumerate() {
            let row = &m[r * 4..r * 4 + 4];
            psi[p | o] = row[0] * v[0] + row[1] * v[1] + row[2] * v[2] + row[3] * v[3];
        }
    });
}

/// The `2 x 2` block `u` if the row-major `8 x 8` `m` is `|11><11| (x) u` plus the
/// identity on the rest (a Toffoli, a doubly controlled rotation), else `None`.
pub(super) fn doubly_controlled(m: &[C64]) -> Option<[C64; 4]> {
    if m.len() != 64 {
        return None;
    }
    for r in 0..8 {
        for c in 0..8 {
            if r >= 6 && c >= 6 {
                continue;
            }
            let want = if r == c { ONE } else { ZERO };
            if m[r * 8 + c] != want {
                return None;
            }
        }
    }
    Some([m[54], m[55], m[62], m[63]])
}

/// Applies `u` to qubit `t` of `psi` where qubits `c1` and `c2` are both 1.
fn apply_doubly_controlled(psi: &mut [C64], u: &[C64; 4], c1: usize, c2: usize, t: usize) {
    let (m1, m2, bt) = (1usize << c1, 1usize << c2, 1usize << t);
    let controls = m1 | m2;
    for p in 0..psi.len() {
        if p & controls == controls && p & bt == 0 {
            let (x, y) = (psi[p], psi[p | bt]);
            psi[p] = u[0] * x + u[1] * y;
            psi[p | bt] = u[2] * x + u[3] * y;
        }
    }
}

/// Applies every gate of `instructions`, in order, to the amplitudes `psi` with fusion.
pub(super) fn run_instructions(
    psi: &mut [C64],
    instructions: &[crate::Instruction],
    theta: &[f64],
    x: &[f64],
) -> crate::error::Result<()> {
    let mut fuser = Fuser::new(psi);
    for inst in instructions {
        fuser.push(inst.gate().action(theta, x)?, inst.qubits());
    }
    fuser.finish();
    Ok(())
}

impl<'a> Fuser<'a> {
    /// A fuser over the amplitudes `psi` of a chain (`psi.len()` a power of two).
    pub fn new(psi: &'a mut [C64]) -> Self {
        let n = psi.len().trailing_zeros() as usize;
        Fuser {
            psi,
            one: vec![None; n],
            pair: None,
            bit_of: (0..n).collect(),
            fuse: n >= FUSE_MIN_QUBITS,
            parallel: false,
            queue: (n >= BLOCKED_MIN_QUBITS).then(|| (Vec::new(), CHUNK_BITS)),
        }
    }

    /// Queues the gates and applies them in chunks of `chunk_bits` index bits (fewer than
    /// the chain's qubits), whatever the chain's length: the tests' way to take
    /// [`run_blocked`]'s segments on short chains.
    #[cfg(test)]
    fn blocked_in(mut self, chunk_bits: usize) -> Self {
        self.queue = Some((Vec::new(), chunk_bits));
        self
    }

    /// Queues the kernel `make` gives when the gates are blocked (and says so); else the
    /// caller applies the gate now.
    fn queued(&mut self, make: impl FnOnce() -> Kernel) -> bool {
        match &mut self.queue {
            Some((queue, _)) => {
                queue.push(make());
                true
            }
            None => false,
        }
    }

    /// Applies gates with the threads of the current rayon pool under
    /// [`Parallelism::Rayon`] (other than `Rayon(1)`) when there are at least
    /// [`PARALLEL_MIN_AMPLITUDES`] amplitudes; the default is one thread.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallel = parallelism.is_parallel() && self.psi.len() >= PARALLEL_MIN_AMPLITUDES;
        self
    }

    /// Applies a two-qubit `action` to bits `(a, b)` (see [`apply_pair`]).
    fn apply_pair(&mut self, action: &Action, a: usize, b: usize) {
        if self.queued(|| Kernel::Pair(action.clone(), a, b)) {
            return;
        }
        match action {
            _ if !self.parallel => apply_pair(self.psi, action, a, b),
            Action::One(u) => par_apply_one(self.psi, u, a),
            _ => par_apply_fused(self.psi, &pair_matrix(action), a, b),
        }
    }

    /// Applies the row-major `2 x 2` `u` to bit `q` (see [`apply_one`]).
    fn apply_one(&mut self, u: &[C64; 4], q: usize) {
        if self.queued(|| Kernel::One(*u, q)) {
            return;
        }
        if self.parallel {
            par_apply_one(self.psi, u, q);
        } else {
            apply_one(self.psi, u, q);
        }
    }

    /// Applies the row-major `4 x 4` `m` to bits `(a, b)` (see [`apply_fused`]).
    fn apply_fused(&mut self, m: &[C64; 16], a: usize, b: usize) {
        if self.queued(|| Kernel::Fused(*m, a, b)) {
            return;
        }
        if self.parallel {
            par_apply_fused(self.psi, m, a, b);
        } else {
            apply_fused(self.psi, m, a, b);
        }
    }

    /// Applies the pending pair operation.
    fn flush_pair(&mut self) {
        if let Some((a, b, op)) = self.pair.take() {
            match op {
                PairOp::Gate(action) => self.apply_pair(&action, a, b),
                PairOp::Fused(m) => self.apply_fused(&m, a, b),
            }
        }
    }

    /// Applies the pending one-qubit product on `q`.
    fn flush_one(&mut self, q: usize) {
        if let Some(u) = self.one[q].take() {
            self.apply_one(&u, q);
        }
    }

    /// The pending pair operation as a matrix (converting a lone gate).
    fn pair_fused(op: &mut PairOp) -> &mut [C64; 16] {
        if let PairOp::Gate(action) = op {
            *op = PairOp::Fused(pair_matrix(action));
        }
        match op {
            PairOp::Fused(m) => m,
            PairOp::Gate(_) => unreachable!("converted above"),
        }
    }

    /// Takes the gate `action` on `qubits` (distinct, in the gate's argument order).
    pub fn push(&mut self, action: Action, qubits: &[usize]) {
        let mut bits = [0usize; 3];
        for (b, &q) in bits.iter_mut().zip(qubits) {
            *b = self.bit_of[q];
        }
        self.push_bits(action, &bits[..qubits.len()]);
    }

    /// Exchanges qubits `a` and `b` without moving an amplitude: from now on each is read
    /// where the other was (see [`finish`](Self::finish)).
    pub fn exchange(&mut self, a: usize, b: usize) {
        self.bit_of.swap(a, b);
    }

    /// [`push`](Self::push) on index bits.
    fn push_bits(&mut self, action: Action, qubits: &[usize]) {
        match (action, qubits) {
            (Action::One(u), &[q]) => {
                if let Some((a, b, op)) = &mut self.pair
                    && (q == *a || q == *b)
                {
                    let high = q == *a;
                    lift_times(&u, Self::pair_fused(op), high);
                    return;
                }
                self.one[q] = Some(match self.one[q] {
                    Some(prev) => product2(&u, &prev),
                    None => u,
                });
            }
            (action, &[a, b]) => {
                if let Some((pa, pb, op)) = &mut self.pair
                    && ((a, b) == (*pa, *pb) || (a, b) == (*pb, *pa))
                {
                    let g = pair_matrix(&action);
                    let g = if a == *pa { g } else { exchanged(&g) };
                    let m = Self::pair_fused(op);
                    *m = product4(&g, m);
                    return;
                }
                self.flush_pair();
                if !self.fuse {
                    self.flush_one(a);
                    self.flush_one(b);
                    self.apply_pair(&action, a, b);
                    return;
                }
                let op = match (self.one[a].take(), self.one[b].take()) {
                    (None, None) => PairOp::Gate(action),
                    (ua, ub) => PairOp::Fused(product4(
                        &pair_matrix(&action),
                        &kron(&ua.unwrap_or(I2), &ub.unwrap_or(I2)),
                    )),
                };
                self.pair = Some((a, b, op));
            }
            (action, qubits) => {
                self.flush_pair();
                for &q in qubits {
                    self.flush_one(q);
                }
                if let (Action::General(m), &[c1, c2, t]) = (&action, qubits)
                    && let Some(u) = doubly_controlled(m.as_slice())
                {
                    if !self.queued(|| Kernel::Doubly(u, c1, c2, t)) {
                        apply_doubly_controlled(self.psi, &u, c1, c2, t);
                    }
                    return;
                }
                if let &[q0, q1, q2] = qubits
                    && self.queued(|| Kernel::Matrix(action.clone().into_matrix(), [q0, q1, q2]))
                {
                    return;
                }
                let n = self.one.len();
                crate::backend::dense::apply_kernel(
                    self.psi,
                    n,
                    &action.into_matrix(),
                    qubits,
                    self.parallel,
                );
            }
        }
    }

    /// Applies everything pending, then moves the amplitudes so that qubit `j` is bit `j`
    /// again (undoing the [`exchange`](Self::exchange)s: at most `n - 1` passes).
    pub fn finish(mut self) {
        self.flush_pair();
        for q in 0..self.one.len() {
            self.flush_one(q);
        }
        for q in 0..self.bit_of.len() {
            let bit = self.bit_of[q];
            if bit != q {
                // Bit q holds the qubit `other`; after the exchange it holds q, and `other`
                // is on `bit`.
                let other = (0..self.bit_of.len()).find(|&o| self.bit_of[o] == q);
                let other = other.expect("bit_of is a permutation");
                self.apply_pair(&Action::Swap, q, bit);
                self.bit_of[other] = bit;
                self.bit_of[q] = q;
            }
        }
        if let Some((queue, chunk_bits)) = self.queue.take() {
            run_blocked(self.psi, queue, chunk_bits, self.parallel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DenseState;
    use crate::backend::StateBackend;
    use crate::circuit::{Gate, GateMatrix};

    use super::super::block::tests::{max_dist, values};

    fn normalised(v: Vec<C64>) -> Vec<C64> {
        let s = v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        v.into_iter().map(|z| z / s).collect()
    }

    /// Every form of gate action, alone, agrees with the dense backend applying the gate's
    /// full matrix, on qubits in both orders and far apart; the diagonal form with four
    /// different entries.
    #[test]
    fn each_action_matches_the_dense_backend() {
        let n = 4;
        let psi = normalised(values(1 << n, 77));
        let (a, b) = (0.7, -1.3);
        let diag = Action::Diagonal([
            C64::from_polar(1.0, a),
            C64::from_polar(1.0, b),
            C64::from_polar(1.0, a + 0.4),
            C64::from_polar(1.0, -b),
        ]);
        let cases: Vec<(Action, Vec<Vec<usize>>)> = vec![
            (
                Gate::Ry(a.into()).action(&[], &[]).unwrap(),
                vec![vec![0], vec![3]],
            ),
            (
                Gate::Rz(a.into()).action(&[], &[]).unwrap(),
                vec![vec![1], vec![2]],
            ),
            (
                Gate::Crx(b.into()).action(&[], &[]).unwrap(),
                vec![vec![0, 3], vec![3, 1], vec![2, 1]],
            ),
            (Action::Swap, vec![vec![1, 3], vec![2, 0]]),
            (diag, vec![vec![0, 2], vec![3, 1]]),
            (
                Gate::Rxx(a.into()).action(&[], &[]).unwrap(),
                vec![vec![3, 0], vec![1, 2]],
            ),
            (
                Gate::Ccx.action(&[], &[]).unwrap(),
                vec![vec![0, 2, 3], vec![3, 0, 1], vec![1, 3, 0]],
            ),
            (
                Gate::Cswap.action(&[], &[]).unwrap(),
                vec![vec![0, 2, 3], vec![3, 0, 1]],
            ),
        ];
        for (action, placements) in cases {
            let m: GateMatrix = action.clone().into_matrix();
            for qubits in placements {
                let mut got = psi.clone();
                let mut f = Fuser::new(&mut got);
                f.push(action.clone(), &qubits);
                f.finish();
                let mut dense = DenseState::from_amplitudes(psi.clone()).unwrap();
                dense.apply_matrix(&m, &qubits).unwrap();
                for (g, w) in got.iter().zip(dense.amplitudes()) {
                    assert!((g - w).norm() < 1e-14, "{action:?} on {qubits:?}");
                }
            }
        }
    }

    /// Long random sequences of every kind of gate, on overlapping and disjoint qubits in
    /// both orders (so every fusion path is taken: one-qubit products, a pair absorbing
    /// one-qubit gates and gates on the same pair in either order, a pair flushed by a
    /// three-qubit gate), against the dense backend gate by gate.
    #[test]
    fn fused_sequences_match_the_dense_backend() {
        // 16 qubits: 2^16 amplitudes, blocked, in parallel on a pool of two threads.
        for (n, rounds) in [(2usize, 20), (3, 20), (5, 20), (7, 20), (16, 3)] {
            random_sequences(n, rounds, 60, None, |f| {
                assert_eq!(f.parallel, n == 16);
                assert_eq!(f.queue.is_some(), n == 16);
            });
        }
    }

    /// The blocked application ([`run_blocked`]) on chains longer than its chunks, with
    /// chunks of 4 to 9 bits (so a segment holds a few gates and passes many over, and
    /// every chunk is gathered in runs of 8 to 512 amplitudes), sequential and parallel,
    /// against the dense backend gate by gate.
    #[test]
    fn blocked_sequences_match_the_dense_backend() {
        for (n, chunk_bits, rounds) in [(6usize, 4usize, 10), (9, 5, 10), (11, 9, 4), (13, 6, 3)] {
            random_sequences(n, rounds, 120, Some(chunk_bits), |_| {});
        }
    }

    /// Applies `rounds` random sequences of `gates` gates on `n` qubits through a fuser
    /// (blocked in `chunk_bits` bits if given; `check` sees it before the first gate), with
    /// parallelism on a pool of two threads, and compares with the dense backend.
    fn random_sequences(
        n: usize,
        rounds: usize,
        gates: usize,
        chunk_bits: Option<usize>,
        check: impl Fn(&Fuser),
    ) {
        let mut seed = 11u64 + n as u64;
        let mut next = move |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % m as u64) as usize
        };
        let pool = two_threads();
        for round in 0..rounds {
            let psi = normalised(values(1 << n, (n * 100 + round) as u64));
            let mut got = psi.clone();
            let mut dense = DenseState::from_amplitudes(psi).unwrap();
            let mut f = Fuser::new(&mut got).with_parallelism(Parallelism::Rayon(2));
            if let Some(bits) = chunk_bits {
                f = f.blocked_in(bits);
                f.parallel = round % 2 == 1;
            }
            check(&f);
            for g in 0..gates {
                let angle = 0.37 * g as f64 - 1.1;
                let a = next(n);
                let b = (a + 1 + next(n - 1)) % n;
                let (gate, qubits): (Gate, Vec<usize>) = match next(11) {
                    0 => (Gate::H, vec![a]),
                    1 => (Gate::Rz(angle.into()), vec![a]),
                    2 => (
                        Gate::U3 {
                            theta: angle.into(),
                            phi: 0.3.into(),
                            lambda: (-angle).into(),
                        },
                        vec![b],
                    ),
                    3 => (Gate::Cx, vec![a, b]),
                    4 => (Gate::Cz, vec![b, a]),
                    5 => (Gate::Rzz(angle.into()), vec![a, b]),
                    6 => (Gate::Swap, vec![a, b]),
                    7 => (Gate::ISwap, vec![b, a]),
                    8 | 9 if n >= 3 => {
                        let t = (0..n).find(|&t| t != a && t != b).unwrap();
                        if next(2) == 0 {
                            (Gate::Ccx, vec![a, b, t])
                        } else {
                            (Gate::Cswap, vec![t, a, b])
                        }
                    }
                    _ => (Gate::Ry(angle.into()), vec![b]),
                };
                let action = gate.action(&[], &[]).unwrap();
                dense
                    .apply_matrix(&action.clone().into_matrix(), &qubits)
                    .unwrap();
                pool.install(|| f.push(action, &qubits));
            }
            pool.install(|| f.finish());
            let d = max_dist(&got, dense.amplitudes());
            assert!(
                d < 1e-13,
                "n {n} chunks {chunk_bits:?} round {round}: {d:e}"
            );
        }
    }

    fn two_threads() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
    }

    /// Exchanges relabel qubits without moving amplitudes: a sequence of gates and
    /// exchanges gives what the dense backend gives with the exchanges as swap gates, and
    /// `finish` puts every qubit back on its own bit (also with pending fused matrices on
    /// exchanged qubits, and on chains too short to fuse).
    #[test]
    fn exchanges_are_swaps_applied_at_the_end() {
        let mut seed = 5u64;
        let mut next = move |m: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % m as u64) as usize
        };
        let pool = two_threads();
        for (n, rounds) in [(3usize, 10), (6, 10), (8, 10), (16, 2)] {
            for round in 0..rounds {
                let psi = normalised(values(1 << n, (n * 31 + round) as u64));
                let mut got = psi.clone();
                let mut dense = DenseState::from_amplitudes(psi).unwrap();
                let mut f = Fuser::new(&mut got).with_parallelism(Parallelism::Rayon(0));
                for g in 0..40 {
                    let a = next(n);
                    let b = (a + 1 + next(n - 1)) % n;
                    let (gate, qubits) = match next(4) {
                        0 => (Gate::Swap, vec![a, b]),
                        1 => (Gate::Ry((0.2 * g as f64).into()), vec![a]),
                        2 => (Gate::Cx, vec![a, b]),
                        _ => (Gate::Rzz((0.5 - 0.1 * g as f64).into()), vec![b, a]),
                    };
                    let action = gate.action(&[], &[]).unwrap();
                    dense
                        .apply_matrix(&action.clone().into_matrix(), &qubits)
                        .unwrap();
                    if matches!(gate, Gate::Swap) {
                        f.exchange(a, b);
                    } else {
                        pool.install(|| f.push(action, &qubits));
                    }
                }
                pool.install(|| f.finish());
                let d = max_dist(&got, dense.amplitudes());
                assert!(d < 1e-13, "n {n} round {round}: {d:e}");
            }
        }
    }
}
