//! The closed set of gates and their matrices.
//!
//! Matrix convention (see `docs/conventions.md`): a gate acting on qubits `(q0, q1, ..)` has
//! its matrix written in the textbook form, with the **first qubit argument as the most
//! significant bit** of the row and column index. So `Cx` on `(control, target)` is
//! `[[1,0,0,0],[0,1,0,0],[0,0,0,1],[0,0,1,0]]`, and a user matrix `kron(A, B)` applies `A` to
//! the first qubit and `B` to the second. Rotations are `R_P(t) = exp(-i t P / 2)`.

use std::f64::consts::FRAC_1_SQRT_2;
use std::sync::Arc;

use num_complex::Complex64 as C64;

use super::param::Param;
use crate::error::{Error, Result};

const ZERO: C64 = C64::new(0.0, 0.0);
const ONE: C64 = C64::new(1.0, 0.0);
const I: C64 = C64::new(0.0, 1.0);

/// Tolerance on `max |U^dagger U - I|` for user-supplied matrices.
pub const UNITARY_TOLERANCE: f64 = 1e-10;

/// A numeric gate matrix on 1, 2 or 3 qubits, row-major, first qubit most significant.
#[derive(Clone, Debug, PartialEq)]
pub struct GateMatrix {
    n_qubits: usize,
    data: Entries,
}

/// The entries of a [`GateMatrix`]: one- and two-qubit matrices inline (256 bytes, cheap to
/// build and copy once per gate of a run), three-qubit ones on the heap. Entries past
/// `dim * dim` are zero, so the derived equality compares matrices.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // inline on purpose: no allocation per gate of a run
enum Entries {
    Small([C64; 16]),
    Large(Box<[C64; 64]>),
}

impl std::ops::Deref for Entries {
    type Target = [C64];
    fn deref(&self) -> &[C64] {
        match self {
            Entries::Small(a) => a,
            Entries::Large(a) => &a[..],
        }
    }
}

impl std::ops::DerefMut for Entries {
    fn deref_mut(&mut self) -> &mut [C64] {
        match self {
            Entries::Small(a) => a,
            Entries::Large(a) => &mut a[..],
        }
    }
}

impl GateMatrix {
    /// The zero matrix on `n_qubits` (1..=3).
    fn zeros(n_qubits: usize) -> Self {
        let data = if n_qubits <= 2 {
            Entries::Small([ZERO; 16])
        } else {
            Entries::Large(Box::new([ZERO; 64]))
        };
        GateMatrix { n_qubits, data }
    }

    /// Builds a matrix from row-major entries; `entries.len()` must be `4^n_qubits` with
    /// `n_qubits` in 1..=3. Unitarity is not checked here (see [`Gate::unitary1`]).
    pub fn from_row_major(n_qubits: usize, entries: &[C64]) -> Result<Self> {
        let dim = 1usize << n_qubits;
        if !(1..=3).contains(&n_qubits) || entries.len() != dim * dim {
            return Err(Error::MatrixShape {
                n_qubits,
                expected: dim * dim,
                got: entries.len(),
            });
        }
        let mut m = GateMatrix::zeros(n_qubits);
        m.data[..dim * dim].copy_from_slice(entries);
        Ok(m)
    }

    fn identity(n_qubits: usize) -> Self {
        let dim = 1 << n_qubits;
        let mut m = GateMatrix::zeros(n_qubits);
        for i in 0..dim {
            m.data[i * dim + i] = ONE;
        }
        m
    }

    /// Number of qubits the matrix acts on.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Side length `2^n_qubits`.
    pub fn dim(&self) -> usize {
        1 << self.n_qubits
    }

    /// Row-major entries (`dim * dim` of them).
    pub fn as_slice(&self) -> &[C64] {
        &self.data[..self.dim() * self.dim()]
    }

    /// The row-major entries of a one-qubit matrix; `None` for two or three qubits.
    pub fn as_2x2(&self) -> Option<[C64; 4]> {
        (self.n_qubits == 1).then(|| [self.data[0], self.data[1], self.data[2], self.data[3]])
    }

    /// Entry at `(row, col)`.
    pub fn get(&self, row: usize, col: usize) -> C64 {
        self.data[row * self.dim() + col]
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> Self {
        let dim = self.dim();
        let mut out = self.clone();
        for r in 0..dim {
            for c in 0..dim {
                out.data[r * dim + c] = self.data[c * dim + r].conj();
            }
        }
        out
    }

    /// `max |U^dagger U - I|` over all entries (infinite if an entry is not finite).
    pub fn unitarity_deviation(&self) -> f64 {
        let dim = self.dim();
        if self
            .as_slice()
            .iter()
            .any(|z| !z.re.is_finite() || !z.im.is_finite())
        {
            return f64::INFINITY;
        }
        let mut worst = 0.0f64;
        for r in 0..dim {
            for c in 0..dim {
                let mut acc = ZERO;
                for k in 0..dim {
                    acc += self.data[k * dim + r].conj() * self.data[k * dim + c];
                }
                if r == c {
                    acc -= ONE;
                }
                worst = worst.max(acc.norm());
            }
        }
        worst
    }

    /// The product `self * other` (same size).
    ///
    /// # Errors
    /// [`Error::MatrixShape`] if the sizes differ.
    pub fn mul(&self, other: &GateMatrix) -> Result<GateMatrix> {
        if other.n_qubits != self.n_qubits {
            return Err(Error::MatrixShape {
                n_qubits: self.n_qubits,
                expected: self.dim() * self.dim(),
                got: other.dim() * other.dim(),
            });
        }
        let dim = self.dim();
        let mut out = GateMatrix::zeros(self.n_qubits);
        for r in 0..dim {
            for c in 0..dim {
                out.data[r * dim + c] = (0..dim)
                    .map(|k| self.data[r * dim + k] * other.data[k * dim + c])
                    .sum();
            }
        }
        Ok(out)
    }

    /// `|1><1| ⊗ d`: the derivative of a controlled gate whose target block has derivative `d`.
    fn controlled_derivative(d: &GateMatrix) -> Self {
        let mut m = GateMatrix::zeros(d.n_qubits + 1);
        let dd = m.dim();
        let h = d.dim();
        for r in 0..h {
            for c in 0..h {
                m.data[(h + r) * dd + (h + c)] = d.get(r, c);
            }
        }
        m
    }

    fn scaled(&self, factor: C64) -> Self {
        let mut out = self.clone();
        out.data.iter_mut().for_each(|z| *z *= factor);
        out
    }

    /// The controlled version of a one-qubit matrix, control first (most significant).
    fn controlled(u: &GateMatrix) -> Self {
        let mut m = GateMatrix::identity(u.n_qubits + 1);
        let d = m.dim();
        let h = u.dim();
        for r in 0..h {
            for c in 0..h {
                m.data[(h + r) * d + (h + c)] = u.get(r, c);
            }
        }
        m
    }

    fn one(entries: [C64; 4]) -> Self {
        let mut data = [ZERO; 16];
        data[..4].copy_from_slice(&entries);
        GateMatrix {
            n_qubits: 1,
            data: Entries::Small(data),
        }
    }

    fn two(entries: [C64; 16]) -> Self {
        GateMatrix {
            n_qubits: 2,
            data: Entries::Small(entries),
        }
    }
}

/// A user-supplied one-qubit unitary, checked on construction.
#[derive(Clone, Debug, PartialEq)]
pub struct Unitary1(GateMatrix);

/// A user-supplied two-qubit unitary, checked on construction.
#[derive(Clone, Debug, PartialEq)]
pub struct Unitary2(GateMatrix);

/// How a gate acts (see [`Gate::action`]): the special forms let a simulator skip the full
/// matrix for the gates of most circuits.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A one-qubit gate: its 2 x 2 matrix, row-major.
    One([C64; 4]),
    /// A two-qubit gate that applies the 2 x 2 block (row-major) to the second qubit when the
    /// first is `|1>`, and nothing otherwise.
    Controlled([C64; 4]),
    /// The exchange of the two qubits.
    Swap,
    /// A diagonal two-qubit gate: its diagonal, first qubit most significant.
    Diagonal([C64; 4]),
    /// Any other gate: its full matrix (boxed, so the common forms stay small to return).
    General(Box<GateMatrix>),
}

impl Action {
    /// The full matrix of the gate (first qubit most significant).
    pub fn into_matrix(self) -> GateMatrix {
        match self {
            Action::One(u) => GateMatrix::one(u),
            Action::Controlled(u) => GateMatrix::controlled(&GateMatrix::one(u)),
            Action::Swap => GateMatrix::two([
                ONE, ZERO, ZERO, ZERO, //
                ZERO, ZERO, ONE, ZERO, //
                ZERO, ONE, ZERO, ZERO, //
                ZERO, ZERO, ZERO, ONE,
            ]),
            Action::Diagonal(d) => {
                let mut m = GateMatrix::zeros(2);
                for (k, z) in d.into_iter().enumerate() {
                    m.data[k * 4 + k] = z;
                }
                m
            }
            Action::General(m) => *m,
        }
    }
}

/// The closed set of gates qfl simulates: the OpenQASM 2.0 `qelib1.inc` set plus checked
/// user matrices. Angles are [`Param`]s, bound at run time.
///
/// Every matrix is defined in `docs/conventions.md`; the first qubit argument is the most
/// significant bit of the matrix index, and for controlled gates the control(s) come first.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// Identity.
    I,
    /// Pauli X.
    X,
    /// Pauli Y.
    Y,
    /// Pauli Z.
    Z,
    /// Hadamard.
    H,
    /// `diag(1, i)`.
    S,
    /// `diag(1, -i)`.
    Sdg,
    /// `diag(1, e^{i pi/4})`.
    T,
    /// `diag(1, e^{-i pi/4})`.
    Tdg,
    /// Square root of X: `[[1+i, 1-i], [1-i, 1+i]] / 2`.
    Sx,
    /// Inverse of `Sx`.
    Sxdg,
    /// `exp(-i t X / 2)`.
    Rx(Param),
    /// `exp(-i t Y / 2)`.
    Ry(Param),
    /// `exp(-i t Z / 2)`.
    Rz(Param),
    /// Phase `diag(1, e^{i l})` (qelib1 `p` and `u1`).
    P(Param),
    /// `U3(pi/2, phi, lambda)`.
    U2 {
        /// phi.
        phi: Param,
        /// lambda.
        lambda: Param,
    },
    /// `[[cos(t/2), -e^{i l} sin(t/2)], [e^{i p} sin(t/2), e^{i(p+l)} cos(t/2)]]` (qelib1 `u3`, `U`, `u`).
    U3 {
        /// theta.
        theta: Param,
        /// phi.
        phi: Param,
        /// lambda.
        lambda: Param,
    },
    /// Controlled X (control, target).
    Cx,
    /// Controlled Y.
    Cy,
    /// Controlled Z.
    Cz,
    /// Controlled Hadamard.
    Ch,
    /// Controlled `Rx`.
    Crx(Param),
    /// Controlled `Ry`.
    Cry(Param),
    /// Controlled `Rz`.
    Crz(Param),
    /// Controlled phase (qelib1 `cp`, `cu1`).
    Cp(Param),
    /// Controlled `U3`.
    Cu3 {
        /// theta.
        theta: Param,
        /// phi.
        phi: Param,
        /// lambda.
        lambda: Param,
    },
    /// Swap.
    Swap,
    /// `[[1,0,0,0],[0,0,i,0],[0,i,0,0],[0,0,0,1]]`.
    ISwap,
    /// `exp(-i t X⊗X / 2)`.
    Rxx(Param),
    /// `exp(-i t Y⊗Y / 2)`.
    Ryy(Param),
    /// `exp(-i t Z⊗Z / 2)`.
    Rzz(Param),
    /// Toffoli (control, control, target).
    Ccx,
    /// Fredkin (control, target, target).
    Cswap,
    /// A checked user one-qubit unitary.
    Unitary1(Arc<Unitary1>),
    /// A checked user two-qubit unitary (first qubit most significant).
    Unitary2(Arc<Unitary2>),
}

fn rot(t: f64, pauli: char) -> [C64; 4] {
    let (s, c) = (t / 2.0).sin_cos();
    match pauli {
        'x' => [
            C64::new(c, 0.0),
            C64::new(0.0, -s),
            C64::new(0.0, -s),
            C64::new(c, 0.0),
        ],
        'y' => [
            C64::new(c, 0.0),
            C64::new(-s, 0.0),
            C64::new(s, 0.0),
            C64::new(c, 0.0),
        ],
        // e^{-i t/2}, e^{i t/2}: the same values as `from_polar(1, -+t/2)`, one sincos.
        _ => [C64::new(c, -s), ZERO, ZERO, C64::new(c, s)],
    }
}

fn u3(theta: f64, phi: f64, lambda: f64) -> [C64; 4] {
    // Three sincos, not four: e^{i(phi + lambda)} as the product of the two phases (a
    // sincos was a fifth of a small circuit of u3 gates; the product differs by round-off).
    let (s, c) = (theta / 2.0).sin_cos();
    let cis = |a: f64| {
        let (s, c) = a.sin_cos();
        C64::new(c, s)
    };
    let (p, l) = (cis(phi), cis(lambda));
    [C64::new(c, 0.0), -l * s, p * s, p * l * c]
}

fn iswap() -> GateMatrix {
    GateMatrix::two([
        ONE, ZERO, ZERO, ZERO, //
        ZERO, ZERO, I, ZERO, //
        ZERO, I, ZERO, ZERO, //
        ZERO, ZERO, ZERO, ONE,
    ])
}

fn phase(l: f64) -> [C64; 4] {
    [ONE, ZERO, ZERO, C64::from_polar(1.0, l)]
}

/// `cos(t/2) I - i sin(t/2) P⊗P` for P in {X, Y}.
fn two_axis(t: f64, pauli: char) -> GateMatrix {
    let (s, c) = (t / 2.0).sin_cos();
    let c = C64::new(c, 0.0);
    let mis = -I * s;
    // X⊗X is the anti-diagonal of ones; Y⊗Y is the anti-diagonal (-1, 1, 1, -1).
    let (outer, inner) = if pauli == 'x' {
        (mis, mis)
    } else {
        (-mis, mis)
    };
    GateMatrix::two([
        c, ZERO, ZERO, outer, //
        ZERO, c, inner, ZERO, //
        ZERO, inner, c, ZERO, //
        outer, ZERO, ZERO, c,
    ])
}

impl Gate {
    /// The qelib1 `u1(lambda)` gate, which is [`Gate::P`].
    pub fn u1(lambda: impl Into<Param>) -> Gate {
        Gate::P(lambda.into())
    }

    /// A checked one-qubit unitary from row-major entries.
    ///
    /// # Errors
    /// [`Error::MatrixShape`] if there are not 4 entries, [`Error::NotUnitary`] if
    /// `max |U^dagger U - I| > 1e-10` or an entry is not finite.
    pub fn unitary1(entries: &[C64]) -> Result<Gate> {
        let m = GateMatrix::from_row_major(1, entries).map_err(|_| Error::MatrixShape {
            n_qubits: 1,
            expected: 4,
            got: entries.len(),
        })?;
        check_unitary(&m)?;
        Ok(Gate::Unitary1(Arc::new(Unitary1(m))))
    }

    /// A checked two-qubit unitary from row-major entries (first qubit most significant).
    ///
    /// # Errors
    /// As [`Gate::unitary1`], with 16 entries.
    pub fn unitary2(entries: &[C64]) -> Result<Gate> {
        let m = GateMatrix::from_row_major(2, entries).map_err(|_| Error::MatrixShape {
            n_qubits: 2,
            expected: 16,
            got: entries.len(),
        })?;
        check_unitary(&m)?;
        Ok(Gate::Unitary2(Arc::new(Unitary2(m))))
    }

    /// The qelib1 name of the gate (`"unitary"` for user matrices).
    pub fn name(&self) -> &'static str {
        match self {
            Gate::I => "id",
            Gate::X => "x",
            Gate::Y => "y",
            Gate::Z => "z",
            Gate::H => "h",
            Gate::S => "s",
            Gate::Sdg => "sdg",
            Gate::T => "t",
            Gate::Tdg => "tdg",
            Gate::Sx => "sx",
            Gate::Sxdg => "sxdg",
            Gate::Rx(_) => "rx",
            Gate::Ry(_) => "ry",
            Gate::Rz(_) => "rz",
            Gate::P(_) => "p",
            Gate::U2 { .. } => "u2",
            Gate::U3 { .. } => "u3",
            Gate::Cx => "cx",
            Gate::Cy => "cy",
            Gate::Cz => "cz",
            Gate::Ch => "ch",
            Gate::Crx(_) => "crx",
            Gate::Cry(_) => "cry",
            Gate::Crz(_) => "crz",
            Gate::Cp(_) => "cp",
            Gate::Cu3 { .. } => "cu3",
            Gate::Swap => "swap",
            Gate::ISwap => "iswap",
            Gate::Rxx(_) => "rxx",
            Gate::Ryy(_) => "ryy",
            Gate::Rzz(_) => "rzz",
            Gate::Ccx => "ccx",
            Gate::Cswap => "cswap",
            Gate::Unitary1(_) => "unitary1",
            Gate::Unitary2(_) => "unitary2",
        }
    }

    /// Number of qubits the gate acts on (1, 2 or 3).
    pub fn n_qubits(&self) -> usize {
        match self {
            Gate::I
            | Gate::X
            | Gate::Y
            | Gate::Z
            | Gate::H
            | Gate::S
            | Gate::Sdg
            | Gate::T
            | Gate::Tdg
            | Gate::Sx
            | Gate::Sxdg
            | Gate::Rx(_)
            | Gate::Ry(_)
            | Gate::Rz(_)
            | Gate::P(_)
            | Gate::U2 { .. }
            | Gate::U3 { .. }
            | Gate::Unitary1(_) => 1,
            Gate::Ccx | Gate::Cswap => 3,
            _ => 2,
        }
    }

    /// The angles of the gate, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        let arr: [Option<&Param>; 3] = match self {
            Gate::Rx(p)
            | Gate::Ry(p)
            | Gate::Rz(p)
            | Gate::P(p)
            | Gate::Crx(p)
            | Gate::Cry(p)
            | Gate::Crz(p)
            | Gate::Cp(p)
            | Gate::Rxx(p)
            | Gate::Ryy(p)
            | Gate::Rzz(p) => [Some(p), None, None],
            Gate::U2 { phi, lambda } => [Some(phi), Some(lambda), None],
            Gate::U3 { theta, phi, lambda } | Gate::Cu3 { theta, phi, lambda } => {
                [Some(theta), Some(phi), Some(lambda)]
            }
            _ => [None, None, None],
        };
        arr.into_iter().flatten()
    }

    /// The value of angle `p` of this gate, checked finite.
    fn bind(&self, p: &Param, theta: &[f64], x: &[f64]) -> Result<f64> {
        let value = p.value(theta, x);
        if value.is_finite() {
            Ok(value)
        } else {
            Err(Error::NonFiniteAngle {
                gate: self.name(),
                what: "bound value",
                value,
            })
        }
    }

    /// The numeric matrix with angles bound from `theta` and `x`.
    ///
    /// # Errors
    /// [`Error::NonFiniteAngle`] if a bound angle is not finite (for example an index beyond
    /// the slices given).
    pub fn matrix(&self, theta: &[f64], x: &[f64]) -> Result<GateMatrix> {
        Ok(self.action(theta, x)?.into_matrix())
    }

    /// How the gate acts, with angles bound from `theta` and `x`: the form a simulator can
    /// apply without the full matrix where there is one (a 2 x 2 block, a controlled 2 x 2
    /// block, an exchange), else the matrix. [`Gate::matrix`] is built from this.
    ///
    /// # Errors
    /// As [`Gate::matrix`].
    pub fn action(&self, theta: &[f64], x: &[f64]) -> Result<Action> {
        let v = |p: &Param| self.bind(p, theta, x);
        let h = C64::new(FRAC_1_SQRT_2, 0.0);
        let x_block = [ZERO, ONE, ONE, ZERO];
        Ok(match self {
            Gate::I => Action::One([ONE, ZERO, ZERO, ONE]),
            Gate::X => Action::One(x_block),
            Gate::Y => Action::One([ZERO, -I, I, ZERO]),
            Gate::Z => Action::One([ONE, ZERO, ZERO, -ONE]),
            Gate::H => Action::One([h, h, h, -h]),
            Gate::S => Action::One([ONE, ZERO, ZERO, I]),
            Gate::Sdg => Action::One([ONE, ZERO, ZERO, -I]),
            Gate::T => Action::One(phase(std::f64::consts::FRAC_PI_4)),
            Gate::Tdg => Action::One(phase(-std::f64::consts::FRAC_PI_4)),
            Gate::Sx => {
                let (a, b) = (C64::new(0.5, 0.5), C64::new(0.5, -0.5));
                Action::One([a, b, b, a])
            }
            Gate::Sxdg => {
                let (a, b) = (C64::new(0.5, -0.5), C64::new(0.5, 0.5));
                Action::One([a, b, b, a])
            }
            Gate::Rx(p) => Action::One(rot(v(p)?, 'x')),
            Gate::Ry(p) => Action::One(rot(v(p)?, 'y')),
            Gate::Rz(p) => Action::One(rot(v(p)?, 'z')),
            Gate::P(p) => Action::One(phase(v(p)?)),
            Gate::U2 { phi, lambda } => {
                Action::One(u3(std::f64::consts::FRAC_PI_2, v(phi)?, v(lambda)?))
            }
            Gate::U3 { theta, phi, lambda } => Action::One(u3(v(theta)?, v(phi)?, v(lambda)?)),
            Gate::Cx => Action::Controlled(x_block),
            Gate::Cy => Action::Controlled([ZERO, -I, I, ZERO]),
            Gate::Cz => Action::Controlled([ONE, ZERO, ZERO, -ONE]),
            Gate::Ch => Action::Controlled([h, h, h, -h]),
            Gate::Crx(p) => Action::Controlled(rot(v(p)?, 'x')),
            Gate::Cry(p) => Action::Controlled(rot(v(p)?, 'y')),
            Gate::Crz(p) => Action::Controlled(rot(v(p)?, 'z')),
            Gate::Cp(p) => Action::Controlled(phase(v(p)?)),
            Gate::Cu3 { theta, phi, lambda } => {
                Action::Controlled(u3(v(theta)?, v(phi)?, v(lambda)?))
            }
            Gate::Swap => Action::Swap,
            Gate::ISwap => Action::General(Box::new(iswap())),
            Gate::Rxx(p) => Action::General(Box::new(two_axis(v(p)?, 'x'))),
            Gate::Ryy(p) => Action::General(Box::new(two_axis(v(p)?, 'y'))),
            Gate::Rzz(p) => {
                let [a, _, _, b] = rot(v(p)?, 'z');
                Action::Diagonal([a, b, b, a])
            }
            Gate::Ccx => Action::General(Box::new(GateMatrix::controlled(
                &GateMatrix::controlled(&GateMatrix::one(x_block)),
            ))),
            Gate::Cswap => Action::General(Box::new(GateMatrix::controlled(
                &Gate::Swap.matrix(theta, x)?,
            ))),
            Gate::Unitary1(u) => {
                let e = u.0.as_slice();
                Action::One([e[0], e[1], e[2], e[3]])
            }
            Gate::Unitary2(u) => Action::General(Box::new(u.0.clone())),
        })
    }

    /// The derivative of the gate matrix with respect to each of its angles, in the order of
    /// [`Gate::params`]: `d U / d angle` (not unitary). Exact, no finite differences.
    ///
    /// Half-angle gates (`Rx`, `Ry`, `Rz`, `Rxx`, `Ryy`, `Rzz`, the theta of `U3`) satisfy
    /// `dU/dt = U(t + pi)/2`; phase-type angles differentiate `e^{i a}` to `i e^{i a}`; a
    /// controlled gate's derivative is `|1><1| ⊗ dU`.
    ///
    /// # Errors
    /// [`Error::NonFiniteAngle`] if a bound angle is not finite.
    pub fn matrix_derivatives(&self, theta: &[f64], x: &[f64]) -> Result<Vec<GateMatrix>> {
        use std::f64::consts::{FRAC_PI_2, PI};
        let v = |p: &Param| self.bind(p, theta, x);
        let half = C64::new(0.5, 0.0);
        // dU3/d(theta, phi, lambda) at (t, p, l).
        let du3 = |t: f64, p: f64, l: f64| -> [GateMatrix; 3] {
            let (s, c) = (t / 2.0).sin_cos();
            let dt = GateMatrix::one(u3(t + PI, p, l)).scaled(half);
            let dp = GateMatrix::one([
                ZERO,
                ZERO,
                I * C64::from_polar(s, p),
                I * C64::from_polar(c, p + l),
            ]);
            let dl = GateMatrix::one([
                ZERO,
                -I * C64::from_polar(s, l),
                ZERO,
                I * C64::from_polar(c, p + l),
            ]);
            [dt, dp, dl]
        };
        let dphase = |l: f64| GateMatrix::one([ZERO, ZERO, ZERO, I * C64::from_polar(1.0, l)]);
        let shifted = |g: Gate| -> Result<GateMatrix> { Ok(g.matrix(theta, x)?.scaled(half)) };
        let out = match self {
            Gate::Rx(p) => vec![shifted(Gate::Rx(p.shifted(PI)))?],
            Gate::Ry(p) => vec![shifted(Gate::Ry(p.shifted(PI)))?],
            Gate::Rz(p) => vec![shifted(Gate::Rz(p.shifted(PI)))?],
            Gate::Rxx(p) => vec![shifted(Gate::Rxx(p.shifted(PI)))?],
            Gate::Ryy(p) => vec![shifted(Gate::Ryy(p.shifted(PI)))?],
            Gate::Rzz(p) => vec![shifted(Gate::Rzz(p.shifted(PI)))?],
            Gate::P(p) => vec![dphase(v(p)?)],
            Gate::Cp(p) => vec![GateMatrix::controlled_derivative(&dphase(v(p)?))],
            Gate::Crx(p) => vec![GateMatrix::controlled_derivative(
                &GateMatrix::one(rot(v(p)? + PI, 'x')).scaled(half),
            )],
            Gate::Cry(p) => vec![GateMatrix::controlled_derivative(
                &GateMatrix::one(rot(v(p)? + PI, 'y')).scaled(half),
            )],
            Gate::Crz(p) => vec![GateMatrix::controlled_derivative(
                &GateMatrix::one(rot(v(p)? + PI, 'z')).scaled(half),
            )],
            Gate::U3 {
                theta: t,
                phi,
                lambda,
            } => du3(v(t)?, v(phi)?, v(lambda)?).to_vec(),
            Gate::U2 { phi, lambda } => du3(FRAC_PI_2, v(phi)?, v(lambda)?)[1..].to_vec(),
            Gate::Cu3 {
                theta: t,
                phi,
                lambda,
            } => du3(v(t)?, v(phi)?, v(lambda)?)
                .iter()
                .map(GateMatrix::controlled_derivative)
                .collect(),
            _ => Vec::new(),
        };
        debug_assert_eq!(out.len(), self.params().count());
        Ok(out)
    }

    /// The inverse gate (`G^dagger`), with angles negated symbolically so that it still
    /// binds from the same `theta` and `x`.
    pub fn inverse(&self) -> Gate {
        use std::f64::consts::FRAC_PI_2;
        match self {
            Gate::S => Gate::Sdg,
            Gate::Sdg => Gate::S,
            Gate::T => Gate::Tdg,
            Gate::Tdg => Gate::T,
            Gate::Sx => Gate::Sxdg,
            Gate::Sxdg => Gate::Sx,
            Gate::Rx(p) => Gate::Rx(p.negated()),
            Gate::Ry(p) => Gate::Ry(p.negated()),
            Gate::Rz(p) => Gate::Rz(p.negated()),
            Gate::P(p) => Gate::P(p.negated()),
            Gate::U2 { phi, lambda } => Gate::U3 {
                theta: Param::Fixed(-FRAC_PI_2),
                phi: lambda.negated(),
                lambda: phi.negated(),
            },
            Gate::U3 { theta, phi, lambda } => Gate::U3 {
                theta: theta.negated(),
                phi: lambda.negated(),
                lambda: phi.negated(),
            },
            Gate::Crx(p) => Gate::Crx(p.negated()),
            Gate::Cry(p) => Gate::Cry(p.negated()),
            Gate::Crz(p) => Gate::Crz(p.negated()),
            Gate::Cp(p) => Gate::Cp(p.negated()),
            Gate::Cu3 { theta, phi, lambda } => Gate::Cu3 {
                theta: theta.negated(),
                phi: lambda.negated(),
                lambda: phi.negated(),
            },
            Gate::ISwap => Gate::Unitary2(Arc::new(Unitary2(iswap().adjoint()))),
            Gate::Rxx(p) => Gate::Rxx(p.negated()),
            Gate::Ryy(p) => Gate::Ryy(p.negated()),
            Gate::Rzz(p) => Gate::Rzz(p.negated()),
            Gate::Unitary1(u) => Gate::Unitary1(Arc::new(Unitary1(u.0.adjoint()))),
            Gate::Unitary2(u) => Gate::Unitary2(Arc::new(Unitary2(u.0.adjoint()))),
            // Self-inverse gates.
            Gate::I
            | Gate::X
            | Gate::Y
            | Gate::Z
            | Gate::H
            | Gate::Cx
            | Gate::Cy
            | Gate::Cz
            | Gate::Ch
            | Gate::Swap
            | Gate::Ccx
            | Gate::Cswap => self.clone(),
        }
    }
}

fn check_unitary(m: &GateMatrix) -> Result<()> {
    let deviation = m.unitarity_deviation();
    if deviation > UNITARY_TOLERANCE {
        return Err(Error::NotUnitary {
            n_qubits: m.n_qubits(),
            deviation,
            tolerance: UNITARY_TOLERANCE,
        });
    }
    Ok(())
}
