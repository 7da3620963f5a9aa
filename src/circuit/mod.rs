//! The circuit model: pure data, no state.
//!
//! A [`Circuit`] is a list of [`Instruction`]s (a [`Gate`] and the qubits it acts on) over a
//! fixed number of qubits, with a declared number of trainable parameters and input features.
//! Every push is validated, so a circuit that exists is well formed; binding `theta` and `x`
//! happens when a backend runs it.

mod gate;
mod param;
mod program;

pub use gate::{Action, Gate, GateMatrix, UNITARY_TOLERANCE, Unitary1, Unitary2};
pub use param::Param;
pub use program::{MAX_PROGRAM_BITS, MeasuredCircuit, Operation, Program, ProgramStats, Register};

use crate::error::{Error, ParamSource, Result};

/// One gate applied to specific qubits.
#[derive(Clone, Debug, PartialEq)]
pub struct Instruction {
    gate: Gate,
    qubits: [usize; 3],
}

impl Instruction {
    /// The gate.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The qubits, in the gate's argument order (controls first).
    pub fn qubits(&self) -> &[usize] {
        &self.qubits[..self.gate.n_qubits()]
    }

    /// A validated instruction with fixed angles on a register of `n_qubits` (used by
    /// [`Program`], which has no `theta` or `x`).
    pub(crate) fn checked(gate: Gate, qubits: &[usize], n_qubits: usize) -> Result<Self> {
        let arity = gate.n_qubits();
        if qubits.len() != arity {
            return Err(Error::WrongArity {
                gate: gate.name(),
                expected: arity,
                got: qubits.len(),
            });
        }
        for (k, &q) in qubits.iter().enumerate() {
            if q >= n_qubits {
                return Err(Error::QubitOutOfRange { qubit: q, n_qubits });
            }
            if qubits[..k].contains(&q) {
                return Err(Error::RepeatedQubit {
                    qubit: q,
                    context: format!("gate {}", gate.name()),
                });
            }
        }
        for p in gate.params() {
            p.check_finite(gate.name())?;
            if let Some((kind, index)) = p.source() {
                return Err(Error::ParamIndexOutOfRange {
                    kind,
                    index,
                    declared: 0,
                });
            }
        }
        let mut q = [0usize; 3];
        q[..arity].copy_from_slice(qubits);
        Ok(Instruction { gate, qubits: q })
    }
}

/// A quantum circuit over `n_qubits` qubits, validated on every push.
///
/// ```
/// use qfl::{Circuit, Gate, Param};
/// # fn main() -> qfl::Result<()> {
/// let mut c = Circuit::new(3)?.with_params(1).with_inputs(1);
/// c.h(0)?.cx(0, 1)?.ry(Param::input(0), 2)?.rzz(Param::theta(0).scaled(2.0), 0, 2)?;
/// assert_eq!(c.len(), 4);
/// // Errors are values, not panics:
/// assert!(c.cx(0, 0).is_err());
/// assert!(c.push(Gate::Rx(Param::theta(5)), &[0]).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Circuit {
    n_qubits: usize,
    n_params: usize,
    n_inputs: usize,
    instructions: Vec<Instruction>,
}

macro_rules! fixed_gate_methods {
    ($( $(#[$doc:meta])* $name:ident => $gate:ident ( $($q:ident),+ ) ;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, $($q: usize),+) -> Result<&mut Self> {
                self.push(Gate::$gate, &[$($q),+])
            }
        )*
    };
}

macro_rules! param_gate_methods {
    ($( $(#[$doc:meta])* $name:ident => $gate:ident ( $($q:ident),+ ) ;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, angle: impl Into<Param>, $($q: usize),+) -> Result<&mut Self> {
                self.push(Gate::$gate(angle.into()), &[$($q),+])
            }
        )*
    };
}

impl Circuit {
    /// An empty circuit on `n_qubits` qubits with no parameters or inputs declared.
    ///
    /// # Errors
    /// [`Error::NoQubits`] if `n_qubits == 0`.
    pub fn new(n_qubits: usize) -> Result<Self> {
        if n_qubits == 0 {
            return Err(Error::NoQubits);
        }
        Ok(Circuit {
            n_qubits,
            n_params: 0,
            n_inputs: 0,
            instructions: Vec::new(),
        })
    }

    /// Declares `n_params` trainable parameters (the length of `theta` at run time).
    pub fn with_params(mut self, n_params: usize) -> Self {
        self.n_params = n_params;
        self
    }

    /// Declares `n_inputs` input features (the length of `x` at run time).
    pub fn with_inputs(mut self, n_inputs: usize) -> Self {
        self.n_inputs = n_inputs;
        self
    }

    /// Number of qubits.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Declared number of trainable parameters.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Declared number of input features.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    /// True if the circuit has no instructions.
    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// The instructions in order.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// An order of the instructions that gives the same unitary and lets a chain simulator
    /// sweep: multi-qubit gates are grouped into as-soon-as-possible moments (no two gates of
    /// a moment share a qubit, so they commute), each moment is taken along the chain in the
    /// direction that starts nearest to where the previous moment ended (left to right, then
    /// right to left, like a snake), and every one-qubit gate stays between the multi-qubit
    /// gates it sat between on its qubit.
    ///
    /// An MPS keeps its orthogonality centre next to the gate being applied; in the given
    /// order a brick layer that always runs left to right costs a sweep of `n` QR steps back
    /// to the left end per layer, which this order removes. Returns instruction indices.
    pub fn sweep_order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        self.sweep_order_into(&mut order, &mut Vec::new());
        order
    }

    /// [`sweep_order`](Self::sweep_order) written into `order`, with `tmp` as working space:
    /// both are cleared first, and a caller that keeps them across runs allocates nothing.
    pub(crate) fn sweep_order_into(&self, order: &mut Vec<usize>, tmp: &mut Vec<usize>) {
        // Bucket 2m holds the multi-qubit gates of moment m, bucket 2m + 1 the one-qubit
        // gates after moment m on their qubit; level[q] is the moment of the last multi-qubit
        // gate on q (0 before any). A counting sort keeps circuit order within a bucket.
        // tmp: level (n), then the bucket of each instruction, then the bucket starts.
        let (n, len) = (self.n_qubits, self.instructions.len());
        tmp.clear();
        tmp.resize(n + len, 0);
        let (level, bucket) = tmp.split_at_mut(n);
        let mut moments = 1;
        for (inst, b) in self.instructions.iter().zip(bucket.iter_mut()) {
            let qs = inst.qubits();
            if qs.len() == 1 {
                *b = 2 * level[qs[0]] + 1;
                continue;
            }
            let moment = 1 + qs.iter().map(|&q| level[q]).max().unwrap_or(0);
            moments = moments.max(moment + 1);
            *b = 2 * moment;
            for &q in qs {
                level[q] = moment;
            }
        }
        tmp.resize(n + len + 2 * moments + 1, 0);
        let (bucket, begin) = tmp[n..].split_at_mut(len);
        for &b in bucket.iter() {
            begin[b + 1] += 1;
        }
        for b in 0..2 * moments {
            begin[b + 1] += begin[b];
        }
        // Filled from each bucket's end (instructions in reverse), so `begin` ends unchanged.
        order.clear();
        order.resize(len, 0);
        for (i, &b) in bucket.iter().enumerate().rev() {
            begin[b + 1] -= 1;
            order[begin[b + 1]] = i;
        }
        // Now begin[b + 1] is where bucket b starts; shift back to begin[b].
        let begin = &tmp[n + len + 1..];
        let span = |i: usize| {
            let qs = self.instructions[i].qubits();
            let lo = qs.iter().copied().min().unwrap_or(0);
            let hi = qs.iter().copied().max().unwrap_or(0);
            (lo, hi)
        };
        let mut centre = 0usize;
        for m in 1..moments {
            let gates = &mut order[begin[2 * m]..begin[2 * m + 1]];
            gates.sort_by_key(|&i| span(i));
            if let (Some(&first), Some(&last)) = (gates.first(), gates.last()) {
                let (first_lo, _) = span(first);
                let (_, last_hi) = span(last);
                if centre.abs_diff(last_hi) < centre.abs_diff(first_lo) {
                    gates.reverse();
                    centre = span(first).0;
                } else {
                    centre = last_hi;
                }
            }
        }
    }

    /// Appends `gate` on `qubits` after validating it.
    ///
    /// # Errors
    /// [`Error::WrongArity`], [`Error::QubitOutOfRange`], [`Error::RepeatedQubit`],
    /// [`Error::NonFiniteAngle`] or [`Error::ParamIndexOutOfRange`]; the circuit is unchanged.
    pub fn push(&mut self, gate: Gate, qubits: &[usize]) -> Result<&mut Self> {
        let arity = gate.n_qubits();
        if qubits.len() != arity {
            return Err(Error::WrongArity {
                gate: gate.name(),
                expected: arity,
                got: qubits.len(),
            });
        }
        for (k, &q) in qubits.iter().enumerate() {
            if q >= self.n_qubits {
                return Err(Error::QubitOutOfRange {
                    qubit: q,
                    n_qubits: self.n_qubits,
                });
            }
            if qubits[..k].contains(&q) {
                return Err(Error::RepeatedQubit {
                    qubit: q,
                    context: format!("gate {}", gate.name()),
                });
            }
        }
        for p in gate.params() {
            p.check_finite(gate.name())?;
            if let Some((source, index)) = p.source() {
                let declared = match source {
                    ParamSource::Theta => self.n_params,
                    ParamSource::Input => self.n_inputs,
                };
                if index >= declared {
                    return Err(Error::ParamIndexOutOfRange {
                        kind: source,
                        index,
                        declared,
                    });
                }
            }
        }
        let mut q = [0usize; 3];
        q[..arity].copy_from_slice(qubits);
        self.instructions.push(Instruction { gate, qubits: q });
        Ok(self)
    }

    /// Appends an instruction validated for a register of this circuit's width with fixed
    /// angles (an [`Instruction`] of a [`Program`] of the same width), without checking it
    /// again.
    pub(crate) fn push_checked(&mut self, inst: Instruction) {
        debug_assert!(inst.qubits().iter().all(|&q| q < self.n_qubits));
        debug_assert!(inst.gate().params().all(|p| p.source().is_none()));
        self.instructions.push(inst);
    }

    /// The circuit of this one's instructions from index `from` on, with the same width,
    /// parameters and inputs (empty if `from` is past the end).
    pub(crate) fn tail(&self, from: usize) -> Circuit {
        Circuit {
            n_qubits: self.n_qubits,
            n_params: self.n_params,
            n_inputs: self.n_inputs,
            instructions: self.instructions.get(from..).unwrap_or_default().to_vec(),
        }
    }

    /// Reserves room for `additional` more instructions.
    pub fn reserve(&mut self, additional: usize) {
        self.instructions.reserve(additional);
    }

    /// Appends every instruction of `other` (which must have the same width and declare no
    /// more parameters or inputs than `self`).
    ///
    /// # Errors
    /// As [`Circuit::push`], for the first instruction that does not fit; instructions before
    /// it stay appended.
    pub fn append(&mut self, other: &Circuit) -> Result<&mut Self> {
        if other.n_qubits != self.n_qubits {
            return Err(Error::QubitCountMismatch {
                circuit: other.n_qubits,
                state: self.n_qubits,
            });
        }
        for inst in &other.instructions {
            self.push(inst.gate.clone(), inst.qubits())?;
        }
        Ok(self)
    }

    /// The inverse circuit: gates in reverse order, each replaced by its inverse. It binds
    /// from the same `theta` and `x`.
    pub fn inverse(&self) -> Circuit {
        Circuit {
            n_qubits: self.n_qubits,
            n_params: self.n_params,
            n_inputs: self.n_inputs,
            instructions: self
                .instructions
                .iter()
                .rev()
                .map(|inst| Instruction {
                    gate: inst.gate.inverse(),
                    qubits: inst.qubits,
                })
                .collect(),
        }
    }

    /// Checks that `theta` and `x` have the declared lengths and finite values.
    ///
    /// # Errors
    /// [`Error::BindingLength`] or [`Error::NonFiniteBinding`].
    pub fn check_binding(&self, theta: &[f64], x: &[f64]) -> Result<()> {
        for (source, values, expected) in [
            (ParamSource::Theta, theta, self.n_params),
            (ParamSource::Input, x, self.n_inputs),
        ] {
            if values.len() != expected {
                return Err(Error::BindingLength {
                    kind: source,
                    expected,
                    got: values.len(),
                });
            }
            if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::NonFiniteBinding {
                    kind: source,
                    index,
                    value,
                });
            }
        }
        Ok(())
    }

    /// Circuit depth: the longest chain of instructions that share qubits.
    pub fn depth(&self) -> usize {
        let mut level = vec![0usize; self.n_qubits];
        let mut depth = 0;
        for inst in &self.instructions {
            let d = inst.qubits().iter().map(|&q| level[q]).max().unwrap_or(0) + 1;
            for &q in inst.qubits() {
                level[q] = d;
            }
            depth = depth.max(d);
        }
        depth
    }

    fixed_gate_methods! {
        /// Appends an identity.
        id => I(q);
        /// Appends a Pauli X.
        x => X(q);
        /// Appends a Pauli Y.
        y => Y(q);
        /// Appends a Pauli Z.
        z => Z(q);
        /// Appends a Hadamard.
        h => H(q);
        /// Appends an S.
        s => S(q);
        /// Appends an S dagger.
        sdg => Sdg(q);
        /// Appends a T.
        t => T(q);
        /// Appends a T dagger.
        tdg => Tdg(q);
        /// Appends a square root of X.
        sx => Sx(q);
        /// Appends an inverse square root of X.
        sxdg => Sxdg(q);
        /// Appends a CNOT (control, target).
        cx => Cx(control, target);
        /// Appends a controlled Y.
        cy => Cy(control, target);
        /// Appends a controlled Z.
        cz => Cz(control, target);
        /// Appends a controlled Hadamard.
        ch => Ch(control, target);
        /// Appends a swap.
        swap => Swap(a, b);
        /// Appends an iSWAP.
        iswap => ISwap(a, b);
        /// Appends a Toffoli (control, control, target).
        ccx => Ccx(c0, c1, target);
        /// Appends a Fredkin (control, target, target).
        cswap => Cswap(control, a, b);
    }

    param_gate_methods! {
        /// Appends `exp(-i t X / 2)`.
        rx => Rx(q);
        /// Appends `exp(-i t Y / 2)`.
        ry => Ry(q);
        /// Appends `exp(-i t Z / 2)`.
        rz => Rz(q);
        /// Appends a phase `diag(1, e^{i t})`.
        p => P(q);
        /// Appends a controlled `Rx`.
        crx => Crx(control, target);
        /// Appends a controlled `Ry`.
        cry => Cry(control, target);
        /// Appends a controlled `Rz`.
        crz => Crz(control, target);
        /// Appends a controlled phase.
        cp => Cp(control, target);
        /// Appends `exp(-i t X⊗X / 2)`.
        rxx => Rxx(a, b);
        /// Appends `exp(-i t Y⊗Y / 2)`.
        ryy => Ryy(a, b);
        /// Appends `exp(-i t Z⊗Z / 2)`.
        rzz => Rzz(a, b);
    }

    /// Appends `U3(theta, phi, lambda)`.
    pub fn u3(
        &mut self,
        theta: impl Into<Param>,
        phi: impl Into<Param>,
        lambda: impl Into<Param>,
        q: usize,
    ) -> Result<&mut Self> {
        self.push(
            Gate::U3 {
                theta: theta.into(),
                phi: phi.into(),
                lambda: lambda.into(),
            },
            &[q],
        )
    }
}

impl<'a> IntoIterator for &'a Circuit {
    type Item = &'a Instruction;
    type IntoIter = std::slice::Iter<'a, Instruction>;
    fn into_iter(self) -> Self::IntoIter {
        self.instructions.iter()
    }
}
