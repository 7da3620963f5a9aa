//! The exact state vector: the reference oracle every other backend is checked against.
//!
//! `2^n` complex amplitudes, qubit 0 the least significant bit of the index. Kernels run on
//! one thread below [`DEFAULT_PARALLEL_THRESHOLD`] qubits and on the current rayon pool above
//! it (each kernel is written once; the threshold only decides how it is driven).

use num_complex::Complex64 as C64;
use rand::Rng;
use rayon::prelude::*;

use super::{
    MAX_DENSE_EXPORT_QUBITS, StateBackend, check_gate_qubits, check_marginal, draw_from_cumulative,
    full_bond_dimensions,
};
use crate::bits::BitString;
use crate::circuit::GateMatrix;
use crate::error::{Error, Result};
use crate::observable::{Observable, Pauli, PauliString};

/// Qubit count from which dense kernels use the rayon pool (below it, one thread: the
/// overhead of splitting a 2^13-amplitude vector outweighs the gain).
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 14;

/// Default tolerance on `|norm - 1|` checked after a circuit runs.
pub const DEFAULT_NORM_TOLERANCE: f64 = 1e-8;

/// Smallest chunk of work handed to one rayon task.
const MIN_TASK: usize = 1 << 12;

/// An exact `n`-qubit state vector.
///
/// ```
/// use qfl::{Circuit, DenseState, StateBackend};
/// # fn main() -> qfl::Result<()> {
/// let mut c = Circuit::new(2)?;
/// c.h(0)?.cx(0, 1)?;
/// let mut psi = DenseState::new(2)?;
/// psi.run(&c, &[], &[])?;
/// assert!((psi.amplitudes()[3].re - 0.5f64.sqrt()).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DenseState {
    n_qubits: usize,
    amps: Vec<C64>,
    parallel_threshold: usize,
    norm_tolerance: f64,
}

/// A raw pointer shared by tasks that touch disjoint indices.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(*mut C64);
// SAFETY: every task that holds the pointer reads and writes a set of indices disjoint from
// every other task's (see `apply_kernel`), so no two threads touch the same element.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}
impl SharedMut {
    /// The pointer to `amps`' first element; the caller keeps `amps` borrowed while tasks
    /// use it, and gives the tasks disjoint indices.
    pub(crate) fn new(amps: &mut [C64]) -> Self {
        SharedMut(amps.as_mut_ptr())
    }

    pub(crate) fn get(self) -> *mut C64 {
        self.0
    }
}

fn available_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bit masks of a Pauli string: `(x_mask, z_mask, phase)` with
/// `P|i> = phase (-1)^{|i & z_mask|} |i ^ x_mask>` (Y contributes to both masks and `i`).
fn pauli_masks(p: &PauliString) -> (usize, usize, C64) {
    let (mut xmask, mut zmask, mut n_y) = (0usize, 0usize, 0usize);
    for &(q, pauli) in p.terms() {
        match pauli {
            Pauli::X => xmask |= 1 << q,
            Pauli::Y => {
                xmask |= 1 << q;
                zmask |= 1 << q;
                n_y += 1;
            }
            Pauli::Z => zmask |= 1 << q,
        }
    }
    let phase = [
        C64::new(1.0, 0.0),
        C64::new(0.0, 1.0),
        C64::new(-1.0, 0.0),
        C64::new(0.0, -1.0),
    ][n_y % 4];
    (xmask, zmask, phase)
}

/// Inserts a zero bit at each of the (ascending) positions.
#[inline]
pub(crate) fn insert_zero_bits(mut b: usize, sorted_positions: &[usize]) -> usize {
    for &p in sorted_positions {
        let low = b & ((1usize << p) - 1);
        b = ((b >> p) << (p + 1)) | low;
    }
    b
}

impl DenseState {
    /// `|0...0>` on `n_qubits` qubits, refusing sizes that do not fit in available memory.
    ///
    /// # Errors
    /// [`Error::NoQubits`]; [`Error::StateTooLarge`] if `16 * 2^n` bytes exceed the memory
    /// the operating system reports as available (or the allocation fails).
    pub fn new(n_qubits: usize) -> Result<Self> {
        let limit = available_memory().unwrap_or(u128::MAX);
        Self::with_memory_limit(n_qubits, limit)
    }

    /// As [`DenseState::new`] with an explicit byte limit.
    ///
    /// # Errors
    /// As [`DenseState::new`].
    pub fn with_memory_limit(n_qubits: usize, bytes_available: u128) -> Result<Self> {
        if n_qubits == 0 {
            return Err(Error::NoQubits);
        }
        let too_large = |bytes_needed| Error::StateTooLarge {
            n_qubits,
            bytes_needed,
            bytes_available,
        };
        if n_qubits >= usize::BITS as usize - 5 {
            return Err(too_large(16u128 << n_qubits.min(120)));
        }
        let bytes_needed = 16u128 << n_qubits;
        if bytes_needed > bytes_available {
            return Err(too_large(bytes_needed));
        }
        let len = 1usize << n_qubits;
        let mut amps = Vec::new();
        amps.try_reserve_exact(len)
            .map_err(|_| too_large(bytes_needed))?;
        amps.resize(len, C64::new(0.0, 0.0));
        amps[0] = C64::new(1.0, 0.0);
        Ok(DenseState {
            n_qubits,
            amps,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            norm_tolerance: DEFAULT_NORM_TOLERANCE,
        })
    }

    /// A state from its amplitudes (length a power of two, at least 2, all finite).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a bad length, [`Error::NonFinite`] for NaN entries.
    pub fn from_amplitudes(amps: Vec<C64>) -> Result<Self> {
        if amps.len() < 2 || !amps.len().is_power_of_two() {
            return Err(Error::InvalidSetting {
                name: "amplitudes.len()",
                value: amps.len().to_string(),
                reason: "must be a power of two, at least 2",
            });
        }
        if let Some(i) = amps
            .iter()
            .position(|a| !a.re.is_finite() || !a.im.is_finite())
        {
            return Err(Error::NonFinite {
                context: format!("amplitude {i}"),
            });
        }
        Ok(DenseState {
            n_qubits: amps.len().trailing_zeros() as usize,
            amps,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            norm_tolerance: DEFAULT_NORM_TOLERANCE,
        })
    }

    /// Sets the qubit count from which kernels run on the rayon pool.
    pub fn with_parallel_threshold(mut self, qubits: usize) -> Self {
        self.parallel_threshold = qubits;
        self
    }

    /// Sets the tolerance on `|norm - 1|` checked after a circuit.
    pub fn with_norm_tolerance(mut self, tolerance: f64) -> Self {
        self.norm_tolerance = tolerance;
        self
    }

    /// The amplitudes, qubit 0 the least significant bit of the index.
    pub fn amplitudes(&self) -> &[C64] {
        &self.amps
    }

    /// `<self|other>`.
    ///
    /// # Errors
    /// [`Error::QubitCountMismatch`].
    pub fn inner(&self, other: &DenseState) -> Result<C64> {
        if other.n_qubits != self.n_qubits {
            return Err(Error::QubitCountMismatch {
                circuit: other.n_qubits,
                state: self.n_qubits,
            });
        }
        Ok(self.sum_over(|i| self.amps[i].conj() * other.amps[i]))
    }

    fn parallel(&self) -> bool {
        self.n_qubits >= self.parallel_threshold
    }

    /// Sums `f(i)` over every index, on one thread or on the pool.
    fn sum_over<T, F>(&self, f: F) -> T
    where
        T: Send + std::iter::Sum<T>,
        F: Fn(usize) -> T + Sync + Send,
    {
        let len = self.amps.len();
        if self.parallel() {
            (0..len).into_par_iter().with_min_len(MIN_TASK).map(f).sum()
        } else {
            (0..len).map(f).sum()
        }
    }

    fn probabilities(&self) -> Vec<f64> {
        self.amps.iter().map(|a| a.norm_sqr()).collect()
    }
}

/// Applies `m` to `qubits` of `amps` (first qubit most significant in the matrix).
pub(crate) fn apply_kernel(
    amps: &mut [C64],
    n_qubits: usize,
    m: &GateMatrix,
    qubits: &[usize],
    parallel: bool,
) {
    let k = qubits.len();
    let dim = 1usize << k;
    let mut offsets = [0usize; 8];
    for (l, off) in offsets.iter_mut().enumerate().take(dim) {
        *off = (0..k)
            .filter(|&j| (l >> (k - 1 - j)) & 1 == 1)
            .map(|j| 1usize << qubits[j])
            .sum();
    }
    let mut sorted = [0usize; 3];
    sorted[..k].copy_from_slice(qubits);
    sorted[..k].sort_unstable();
    let sorted = &sorted[..k];
    let mat = m.as_slice();
    let ptr = SharedMut(amps.as_mut_ptr());
    let body = move |b: usize| {
        let base = insert_zero_bits(b, sorted);
        let p = ptr.get();
        let mut v = [C64::new(0.0, 0.0); 8];
        // SAFETY: `base + offsets[l]` ranges over the 2^k indices that agree with `base`
        // outside the gate's qubits; distinct `b` give disjoint sets, all below 2^n.
        unsafe {
            for l in 0..dim {
                v[l] = *p.add(base + offsets[l]);
            }
            for r in 0..dim {
                let row = &mat[r * dim..(r + 1) * dim];
                let mut acc = C64::new(0.0, 0.0);
                for l in 0..dim {
                    acc += row[l] * v[l];
                }
                *p.add(base + offsets[r]) = acc;
            }
        }
    };
    let count = 1usize << (n_qubits - k);
    if parallel {
        (0..count)
            .into_par_iter()
            .with_min_len(MIN_TASK / dim)
            .for_each(body);
    } else {
        (0..count).for_each(body);
    }
}

/// The adjoint pair of the dense backend: two state vectors.
#[derive(Debug)]
pub struct DenseAdjointPair {
    psi: DenseState,
    lambda: DenseState,
}

impl DenseState {
    /// `O |psi>` for a weighted sum of Pauli strings (not normalized).
    fn apply_observable(&self, observable: &Observable) -> Result<Vec<C64>> {
        observable.check(self.n_qubits)?;
        let mut out = vec![C64::new(0.0, 0.0); self.amps.len()];
        for (w, p) in observable.terms() {
            let (xmask, zmask, phase) = pauli_masks(p);
            let phase = phase * *w;
            for (i, a) in self.amps.iter().enumerate() {
                let sign = if (i & zmask).count_ones() % 2 == 1 {
                    -1.0
                } else {
                    1.0
                };
                out[i ^ xmask] += phase * sign * a;
            }
        }
        Ok(out)
    }
}

impl super::AdjointBackend for DenseState {
    type Pair = DenseAdjointPair;

    fn into_adjoint_pair(self, observable: &Observable) -> Result<(f64, DenseAdjointPair)> {
        let value = self.expectation(observable)?;
        let lambda = DenseState {
            amps: self.apply_observable(observable)?,
            ..self.clone()
        };
        Ok((value, DenseAdjointPair { psi: self, lambda }))
    }
}

impl super::AdjointPair for DenseAdjointPair {
    fn step(
        &mut self,
        u_dagger: &GateMatrix,
        local: &[GateMatrix],
        qubits: &[usize],
    ) -> Result<Vec<C64>> {
        self.psi.apply_matrix(u_dagger, qubits)?;
        self.lambda.apply_matrix(u_dagger, qubits)?;
        local
            .iter()
            .map(|m| {
                let mut moved = self.psi.clone();
                moved.apply_matrix(m, qubits)?;
                self.lambda.inner(&moved)
            })
            .collect()
    }
}

impl StateBackend for DenseState {
    fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    fn apply_matrix(&mut self, matrix: &GateMatrix, qubits: &[usize]) -> Result<()> {
        check_gate_qubits(self.n_qubits, matrix, qubits)?;
        let parallel = self.parallel();
        apply_kernel(&mut self.amps, self.n_qubits, matrix, qubits, parallel);
        Ok(())
    }

    fn check_norm(&self, context: &str) -> Result<()> {
        let norm = self.norm();
        if !norm.is_finite() {
            return Err(Error::NonFinite {
                context: format!("dense state norm {context}"),
            });
        }
        if (norm - 1.0).abs() > self.norm_tolerance {
            return Err(Error::NormDrift {
                norm,
                tolerance: self.norm_tolerance,
                context: context.to_string(),
            });
        }
        Ok(())
    }

    fn project(&mut self, qubit: usize, outcome: bool) -> Result<f64> {
        super::check_distinct_qubits(self.n_qubits, &[qubit], "projection")?;
        let bit = usize::from(outcome);
        let probability = self.sum_over(|i| {
            if (i >> qubit) & 1 == bit {
                self.amps[i].norm_sqr()
            } else {
                0.0
            }
        });
        if probability.is_nan() || probability < super::MIN_OUTCOME_PROBABILITY {
            return Err(Error::ImpossibleOutcome {
                qubit,
                outcome,
                probability,
            });
        }
        let scale = 1.0 / probability.sqrt();
        for (i, a) in self.amps.iter_mut().enumerate() {
            *a = if (i >> qubit) & 1 == bit {
                *a * scale
            } else {
                C64::new(0.0, 0.0)
            };
        }
        Ok(probability)
    }

    fn amplitude(&self, bits: &BitString) -> Result<C64> {
        if bits.len() != self.n_qubits {
            return Err(Error::BitStringLength {
                expected: self.n_qubits,
                got: bits.len(),
            });
        }
        let index = bits.to_index().unwrap_or(0) as usize;
        Ok(self.amps[index])
    }

    fn expectation_pauli(&self, pauli: &PauliString) -> Result<f64> {
        pauli.check(self.n_qubits)?;
        let (xmask, zmask, phase) = pauli_masks(pauli);
        // P|i> = phase (-1)^{|i & zmask|} |i ^ xmask>, so <psi|P|psi> sums
        // conj(psi[i ^ xmask]) * phase(i) * psi[i].
        let amps = &self.amps;
        let total: C64 = self.sum_over(|i| {
            let sign = if (i & zmask).count_ones() % 2 == 1 {
                -1.0
            } else {
                1.0
            };
            amps[i ^ xmask].conj() * amps[i] * sign
        });
        let value = (total * phase).re;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                context: format!("expectation of {pauli}"),
            });
        }
        Ok(value)
    }

    fn z_expectations(&self) -> Result<Vec<f64>> {
        let n = self.n_qubits;
        let chunk = MIN_TASK.min(self.amps.len());
        let kernel = |(c, amps): (usize, &[C64])| {
            let mut z = vec![0.0; n];
            for (j, a) in amps.iter().enumerate() {
                let i = c * chunk + j;
                let p = a.norm_sqr();
                for (q, zq) in z.iter_mut().enumerate() {
                    *zq += if (i >> q) & 1 == 1 { -p } else { p };
                }
            }
            z
        };
        let add = |mut a: Vec<f64>, b: Vec<f64>| {
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            a
        };
        let z = if self.parallel() {
            self.amps
                .par_chunks(chunk)
                .enumerate()
                .map(kernel)
                .reduce(|| vec![0.0; n], add)
        } else {
            self.amps
                .chunks(chunk)
                .enumerate()
                .map(kernel)
                .fold(vec![0.0; n], add)
        };
        if z.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                context: "Z expectations".into(),
            });
        }
        Ok(z)
    }

    fn marginal_probabilities(&self, qubits: &[usize]) -> Result<Vec<f64>> {
        check_marginal(self.n_qubits, qubits)?;
        let mut out = vec![0.0; 1 << qubits.len()];
        for (i, a) in self.amps.iter().enumerate() {
            let k: usize = qubits
                .iter()
                .enumerate()
                .map(|(j, &q)| ((i >> q) & 1) << j)
                .sum();
            out[k] += a.norm_sqr();
        }
        Ok(out)
    }

    fn sample(&self, shots: usize, rng: &mut dyn Rng) -> Result<Vec<BitString>> {
        let mut cumulative = self.probabilities();
        let mut acc = 0.0;
        for c in cumulative.iter_mut() {
            acc += *c;
            *c = acc;
        }
        if !acc.is_finite() || acc <= 0.0 {
            return Err(Error::NonFinite {
                context: format!("sampling: total probability {acc}"),
            });
        }
        Ok((0..shots)
            .map(|_| {
                BitString::from_index(self.n_qubits, draw_from_cumulative(&cumulative, rng) as u64)
            })
            .collect())
    }

    fn sample_in_bases(&self, bases: &[Vec<Pauli>], rng: &mut dyn Rng) -> Result<Vec<BitString>> {
        super::check_bases(self.n_qubits, bases)?;
        let h = C64::new(std::f64::consts::FRAC_1_SQRT_2, 0.0);
        let hx = GateMatrix::from_row_major(1, &[h, h, h, -h])?;
        let hy = GateMatrix::from_row_major(
            1,
            &[h, -h * C64::new(0.0, 1.0), h, h * C64::new(0.0, 1.0)],
        )?;
        let mut out = Vec::with_capacity(bases.len());
        for basis in bases {
            let mut rotated = self.clone();
            for (q, p) in basis.iter().enumerate() {
                match p {
                    Pauli::X => rotated.apply_matrix(&hx, &[q])?,
                    Pauli::Y => rotated.apply_matrix(&hy, &[q])?,
                    Pauli::Z => {}
                }
            }
            out.extend(rotated.sample(1, rng)?);
        }
        Ok(out)
    }

    fn norm(&self) -> f64 {
        self.sum_over(|i| self.amps[i].norm_sqr()).sqrt()
    }

    fn to_dense(&self) -> Result<Vec<C64>> {
        if self.n_qubits > MAX_DENSE_EXPORT_QUBITS {
            return Err(Error::TooLarge {
                what: "to_dense",
                n_qubits: self.n_qubits,
                max: MAX_DENSE_EXPORT_QUBITS,
            });
        }
        Ok(self.amps.clone())
    }

    fn bond_dimensions(&self) -> Vec<usize> {
        full_bond_dimensions(self.n_qubits)
    }

    fn fidelity_estimate(&self) -> f64 {
        1.0
    }
}
