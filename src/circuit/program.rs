//! Programs: circuits with classical bits, measurements, resets and classical control.
//!
//! A [`Program`] is what an OpenQASM 2.0 file describes: quantum and classical registers
//! and a list of [`Operation`]s. Unlike a [`Circuit`], it need not be unitary. When its only
//! non-unitary operations are final measurements (and barriers), [`Program::to_circuit`]
//! splits it into a unitary [`Circuit`] and the qubit-to-bit map of those measurements.
//! Programs with mid-circuit measurements, resets or `if` run shot by shot with
//! [`crate::run`].

use std::collections::BTreeMap;

use super::{Circuit, Gate, Instruction};
use crate::bits::BitString;
use crate::error::{Error, Result};

/// Largest number of qubits or classical bits a program may declare.
pub const MAX_PROGRAM_BITS: usize = 1 << 20;

/// A named register: a contiguous range `offset..offset + size` of qubits or classical bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    name: String,
    size: usize,
    offset: usize,
}

impl Register {
    /// The register name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of bits.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Index of its bit 0 in the concatenation of all registers of its kind.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True if `index` (global) belongs to this register.
    fn contains(&self, index: usize) -> bool {
        (self.offset..self.offset + self.size).contains(&index)
    }
}

/// One step of a [`Program`]. Qubit and classical-bit indices are global (registers
/// concatenated in declaration order).
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// A unitary gate.
    Gate(Instruction),
    /// Measures `qubit` in the computational basis and writes the outcome to `clbit`.
    Measure {
        /// The measured qubit.
        qubit: usize,
        /// The classical bit written.
        clbit: usize,
    },
    /// Resets `qubit` to `|0>`.
    Reset {
        /// The reset qubit.
        qubit: usize,
    },
    /// A barrier: no effect on the state.
    Barrier {
        /// The qubits it spans.
        qubits: Vec<usize>,
    },
    /// Runs `op` only if classical register number `creg` (in declaration order), read as
    /// an unsigned integer with its bit 0 least significant, equals `value`.
    If {
        /// Index of the classical register in [`Program::cregs`].
        creg: usize,
        /// The value compared with.
        value: u64,
        /// The conditioned operation (never a barrier or another `If`).
        op: Box<Operation>,
    },
}

impl Operation {
    /// The qubits the operation acts on.
    pub fn qubits(&self) -> &[usize] {
        match self {
            Operation::Gate(inst) => inst.qubits(),
            Operation::Measure { qubit, .. } | Operation::Reset { qubit } => {
                std::slice::from_ref(qubit)
            }
            Operation::Barrier { qubits } => qubits,
            Operation::If { op, .. } => op.qubits(),
        }
    }

    /// A short name: the gate name, `measure`, `reset`, `barrier` or `if`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Gate(inst) => inst.gate().name(),
            Operation::Measure { .. } => "measure",
            Operation::Reset { .. } => "reset",
            Operation::Barrier { .. } => "barrier",
            Operation::If { .. } => "if",
        }
    }
}

/// A unitary circuit and the final measurements that followed it.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredCircuit {
    /// The unitary part.
    pub circuit: Circuit,
    /// `(qubit, clbit)` of every final measurement, in program order (a later one writing
    /// the same classical bit wins).
    pub measurements: Vec<(usize, usize)>,
}

/// Counts that summarize a program, as `qfl info` prints them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ProgramStats {
    /// Number of operations of each kind (gate name, `measure`, `reset`, `barrier`), with
    /// conditioned operations counted under their own name.
    pub counts: BTreeMap<&'static str, usize>,
    /// Number of conditioned (`if`) operations.
    pub conditioned: usize,
    /// Depth over gates, measurements and resets (barriers excluded).
    pub depth: usize,
    /// Gates on two or more qubits.
    pub multi_qubit_gates: usize,
    /// Multi-qubit gates whose qubits are not neighbours: for two qubits `|a - b| > 1`, in
    /// general `max - min >= number of qubits`.
    pub long_range_gates: usize,
}

/// A quantum program: registers and a list of operations, validated on every push.
///
/// ```
/// use qfl::{Gate, Operation, Program};
/// # fn main() -> qfl::Result<()> {
/// let mut p = Program::new();
/// let q = p.add_qreg("q", 2)?;
/// let c = p.add_creg("c", 2)?;
/// p.push_gate(Gate::H, &[q])?;
/// p.push_gate(Gate::Cx, &[q, q + 1])?;
/// p.push(Operation::Measure { qubit: q, clbit: c })?;
/// p.push(Operation::Measure { qubit: q + 1, clbit: c + 1 })?;
/// let split = p.to_circuit()?;
/// assert_eq!(split.circuit.len(), 2);
/// assert_eq!(split.measurements, vec![(0, 0), (1, 1)]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    n_qubits: usize,
    n_clbits: usize,
    qregs: Vec<Register>,
    cregs: Vec<Register>,
    ops: Vec<Operation>,
}

impl Program {
    /// An empty program with no registers.
    pub fn new() -> Self {
        Program::default()
    }

    fn add_register(&mut self, name: &str, size: usize, quantum: bool) -> Result<usize> {
        let bad = |reason: String| Error::Parse {
            what: "register declaration",
            text: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("the name is empty".into()));
        }
        if size == 0 {
            return Err(bad("the size must be at least 1".into()));
        }
        if self.qregs.iter().chain(&self.cregs).any(|r| r.name == name) {
            return Err(bad("a register of this name already exists".into()));
        }
        let total = if quantum {
            &mut self.n_qubits
        } else {
            &mut self.n_clbits
        };
        let offset = *total;
        if size > MAX_PROGRAM_BITS - offset {
            return Err(Error::TooLarge {
                what: if quantum {
                    "qubit count"
                } else {
                    "classical bit count"
                },
                n_qubits: offset.saturating_add(size),
                max: MAX_PROGRAM_BITS,
            });
        }
        *total += size;
        let reg = Register {
            name: name.to_string(),
            size,
            offset,
        };
        if quantum {
            self.qregs.push(reg);
        } else {
            self.cregs.push(reg);
        }
        Ok(offset)
    }

    /// Declares a quantum register after the existing ones; returns the global index of its
    /// qubit 0.
    ///
    /// # Errors
    /// [`Error::Parse`] for an empty name, a zero size or a name already used by a quantum
    /// or classical register; [`Error::TooLarge`] beyond [`MAX_PROGRAM_BITS`] qubits.
    pub fn add_qreg(&mut self, name: &str, size: usize) -> Result<usize> {
        self.add_register(name, size, true)
    }

    /// Declares a classical register after the existing ones; returns the global index of
    /// its bit 0.
    ///
    /// # Errors
    /// As [`Program::add_qreg`].
    pub fn add_creg(&mut self, name: &str, size: usize) -> Result<usize> {
        self.add_register(name, size, false)
    }

    /// Total number of qubits.
    pub fn n_qubits(&self) -> usize {
        self.n_qubits
    }

    /// Total number of classical bits.
    pub fn n_clbits(&self) -> usize {
        self.n_clbits
    }

    /// Quantum registers in declaration order.
    pub fn qregs(&self) -> &[Register] {
        &self.qregs
    }

    /// Classical registers in declaration order.
    pub fn cregs(&self) -> &[Register] {
        &self.cregs
    }

    /// The operations in order.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends a gate with fixed angles after validating it.
    ///
    /// # Errors
    /// As [`Program::push`].
    pub fn push_gate(&mut self, gate: Gate, qubits: &[usize]) -> Result<&mut Self> {
        let inst = Instruction::checked(gate, qubits, self.n_qubits)?;
        self.ops.push(Operation::Gate(inst));
        Ok(self)
    }

    fn check_op(&self, op: &Operation, nested: bool) -> Result<()> {
        let check_qubit = |qubit: usize| {
            if qubit >= self.n_qubits {
                Err(Error::QubitOutOfRange {
                    qubit,
                    n_qubits: self.n_qubits,
                })
            } else {
                Ok(())
            }
        };
        match op {
            Operation::Gate(inst) => {
                Instruction::checked(inst.gate().clone(), inst.qubits(), self.n_qubits)?;
            }
            Operation::Measure { qubit, clbit } => {
                check_qubit(*qubit)?;
                if *clbit >= self.n_clbits {
                    return Err(Error::Parse {
                        what: "measurement",
                        text: format!("clbit {clbit}"),
                        reason: format!("the program has {} classical bits", self.n_clbits),
                    });
                }
            }
            Operation::Reset { qubit } => check_qubit(*qubit)?,
            Operation::Barrier { qubits } => {
                if nested {
                    return Err(Error::Parse {
                        what: "conditional operation",
                        text: "barrier".into(),
                        reason: "a barrier cannot be conditioned".into(),
                    });
                }
                for &q in qubits {
                    check_qubit(q)?;
                }
            }
            Operation::If { creg, op, .. } => {
                if nested {
                    return Err(Error::Parse {
                        what: "conditional operation",
                        text: "if".into(),
                        reason: "conditions cannot be nested".into(),
                    });
                }
                if *creg >= self.cregs.len() {
                    return Err(Error::Parse {
                        what: "conditional operation",
                        text: format!("classical register {creg}"),
                        reason: format!("the program has {} classical registers", self.cregs.len()),
                    });
                }
                self.check_op(op, true)?;
            }
        }
        Ok(())
    }

    /// Appends an operation after validating it.
    ///
    /// # Errors
    /// [`Error::WrongArity`], [`Error::QubitOutOfRange`], [`Error::RepeatedQubit`],
    /// [`Error::NonFiniteAngle`] for a gate; [`Error::ParamIndexOutOfRange`] if a gate angle
    /// reads `theta` or `x` (a program has fixed angles); [`Error::Parse`] for a classical
    /// bit or register that does not exist, a conditioned barrier or a nested `If`.
    pub fn push(&mut self, op: Operation) -> Result<&mut Self> {
        self.check_op(&op, false)?;
        self.ops.push(op);
        Ok(self)
    }

    /// Appends an operation the caller has already validated (the QASM parser checks every
    /// index where it reads it, with a located error); checked again in debug builds.
    pub(crate) fn push_prevalidated(&mut self, op: Operation) {
        debug_assert!(
            self.check_op(&op, false).is_ok(),
            "invalid operation {op:?}"
        );
        self.ops.push(op);
    }

    /// The unitary circuit and its final measurements.
    ///
    /// Allowed besides gates: barriers; measurements after which no gate or reset touches
    /// the measured qubit; resets of qubits nothing has touched yet (they are no-ops on
    /// `|0>` and are dropped).
    ///
    /// # Errors
    /// [`Error::NoQubits`] for a program without qubits; [`Error::NotUnitaryProgram`] naming
    /// the first operation that needs shot-by-shot simulation (an `If`, a reset of a used
    /// qubit, or a gate after a measurement of one of its qubits).
    pub fn to_circuit(&self) -> Result<MeasuredCircuit> {
        let mut circuit = Circuit::new(self.n_qubits)?;
        circuit.reserve(self.ops.len());
        let mut touched = vec![false; self.n_qubits];
        let mut measured = vec![false; self.n_qubits];
        let mut measurements = Vec::new();
        for (index, op) in self.ops.iter().enumerate() {
            let fail = |reason: &'static str| Error::NotUnitaryProgram {
                index,
                operation: self.describe(op),
                reason,
            };
            match op {
                Operation::Gate(inst) => {
                    if inst.qubits().iter().any(|&q| measured[q]) {
                        return Err(fail("a gate acts on a qubit measured before it"));
                    }
                    for &q in inst.qubits() {
                        touched[q] = true;
                    }
                    // Checked when the program was built, on a register of this width.
                    circuit.push_checked(inst.clone());
                }
                Operation::Measure { qubit, clbit } => {
                    touched[*qubit] = true;
                    measured[*qubit] = true;
                    measurements.push((*qubit, *clbit));
                }
                Operation::Reset { qubit } => {
                    if touched[*qubit] {
                        return Err(fail("reset of a qubit that was already used"));
                    }
                }
                Operation::Barrier { .. } => {}
                Operation::If { .. } => {
                    return Err(fail("classically controlled operation"));
                }
            }
        }
        Ok(MeasuredCircuit {
            circuit,
            measurements,
        })
    }

    /// The name of a global qubit, such as `q[3]`.
    pub fn qubit_name(&self, qubit: usize) -> String {
        match self.qregs.iter().find(|r| r.contains(qubit)) {
            Some(r) => format!("{}[{}]", r.name, qubit - r.offset),
            None => format!("qubit {qubit}"),
        }
    }

    /// The name of a global classical bit, such as `c[0]`.
    pub fn clbit_name(&self, clbit: usize) -> String {
        match self.cregs.iter().find(|r| r.contains(clbit)) {
            Some(r) => format!("{}[{}]", r.name, clbit - r.offset),
            None => format!("clbit {clbit}"),
        }
    }

    /// A one-line description of an operation with register names, such as
    /// `measure q[0] -> c[1]`.
    pub fn describe(&self, op: &Operation) -> String {
        let qubits = |qs: &[usize]| {
            qs.iter()
                .map(|&q| self.qubit_name(q))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match op {
            Operation::Gate(inst) => format!("{} {}", inst.gate().name(), qubits(inst.qubits())),
            Operation::Measure { qubit, clbit } => format!(
                "measure {} -> {}",
                self.qubit_name(*qubit),
                self.clbit_name(*clbit)
            ),
            Operation::Reset { qubit } => format!("reset {}", self.qubit_name(*qubit)),
            Operation::Barrier { qubits: qs } => format!("barrier {}", qubits(qs)),
            Operation::If { creg, value, op } => {
                let name = self.cregs.get(*creg).map_or("?", |r| r.name.as_str());
                format!("if ({name} == {value}) {}", self.describe(op))
            }
        }
    }

    /// The value of classical register `creg` in `clbits`, bit 0 least significant; `None`
    /// if it does not fit in 64 bits (a set bit beyond bit 63).
    pub fn creg_value(&self, creg: usize, clbits: &BitString) -> Option<u64> {
        let reg = self.cregs.get(creg)?;
        let mut value = 0u64;
        for k in 0..reg.size {
            if clbits.get(reg.offset + k) {
                if k >= 64 {
                    return None;
                }
                value |= 1 << k;
            }
        }
        Some(value)
    }

    /// The classical bits written as Qiskit writes counts keys: one group per classical
    /// register, the last declared register first, groups separated by a space, and within
    /// a group bit 0 last. A program without classical registers gives `""`.
    ///
    /// ```
    /// use qfl::{BitString, Program};
    /// # fn main() -> qfl::Result<()> {
    /// let mut p = Program::new();
    /// p.add_qreg("q", 1)?;
    /// p.add_creg("a", 2)?;
    /// p.add_creg("b", 1)?;
    /// // a[0] = 1, a[1] = 0, b[0] = 1
    /// let bits = BitString::from_bools(&[true, false, true]);
    /// assert_eq!(p.format_clbits(&bits), "1 01");
    /// # Ok(()) }
    /// ```
    pub fn format_clbits(&self, clbits: &BitString) -> String {
        let mut out = String::with_capacity(self.n_clbits + self.cregs.len());
        for (k, reg) in self.cregs.iter().rev().enumerate() {
            if k > 0 {
                out.push(' ');
            }
            for b in (0..reg.size).rev() {
                out.push(if clbits.get(reg.offset + b) { '1' } else { '0' });
            }
        }
        out
    }

    /// Gate counts by kind, depth, and multi-qubit and long-range gate counts.
    pub fn stats(&self) -> ProgramStats {
        let mut stats = ProgramStats::default();
        let mut level = vec![0usize; self.n_qubits];
        for op in &self.ops {
            let inner = match op {
                Operation::If { op, .. } => {
                    stats.conditioned += 1;
                    op.as_ref()
                }
                other => other,
            };
            *stats.counts.entry(inner.name()).or_insert(0) += 1;
            if let Operation::Gate(inst) = inner {
                let qs = inst.qubits();
                if qs.len() >= 2 {
                    stats.multi_qubit_gates += 1;
                    let (lo, hi) = qs
                        .iter()
                        .fold((usize::MAX, 0), |(lo, hi), &q| (lo.min(q), hi.max(q)));
                    if hi - lo >= qs.len() {
                        stats.long_range_gates += 1;
                    }
                }
            }
            if matches!(inner, Operation::Barrier { .. }) {
                continue;
            }
            let qs = inner.qubits();
            let d = qs.iter().map(|&q| level[q]).max().unwrap_or(0) + 1;
            for &q in qs {
                level[q] = d;
            }
            stats.depth = stats.depth.max(d);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bell() -> Program {
        let mut p = Program::new();
        p.add_qreg("q", 2).unwrap();
        p.add_creg("c", 2).unwrap();
        p.push_gate(Gate::H, &[0]).unwrap();
        p.push_gate(Gate::Cx, &[0, 1]).unwrap();
        p
    }

    #[test]
    fn registers_concatenate_and_names_are_unique() {
        let mut p = Program::new();
        assert_eq!(p.add_qreg("a", 3).unwrap(), 0);
        assert_eq!(p.add_qreg("b", 2).unwrap(), 3);
        assert_eq!(p.add_creg("c", 4).unwrap(), 0);
        assert!(p.add_creg("a", 1).is_err());
        assert!(p.add_qreg("z", 0).is_err());
        assert!(p.add_qreg("big", MAX_PROGRAM_BITS).is_err());
        assert_eq!(p.n_qubits(), 5);
        assert_eq!(p.qubit_name(4), "b[1]");
        assert_eq!(p.clbit_name(2), "c[2]");
    }

    #[test]
    fn push_validates() {
        let mut p = bell();
        assert!(p.push_gate(Gate::Cx, &[0, 0]).is_err());
        assert!(p.push_gate(Gate::H, &[2]).is_err());
        assert!(p.push_gate(Gate::Rx(crate::Param::theta(0)), &[0]).is_err());
        assert!(p.push(Operation::Measure { qubit: 0, clbit: 2 }).is_err());
        let nested = Operation::If {
            creg: 0,
            value: 1,
            op: Box::new(Operation::If {
                creg: 0,
                value: 1,
                op: Box::new(Operation::Reset { qubit: 0 }),
            }),
        };
        assert!(p.push(nested).is_err());
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn to_circuit_accepts_final_measurements_only() {
        let mut p = bell();
        p.push(Operation::Reset { qubit: 1 }).unwrap();
        p.push(Operation::Measure { qubit: 0, clbit: 0 }).unwrap();
        p.push(Operation::Barrier { qubits: vec![0, 1] }).unwrap();
        p.push(Operation::Measure { qubit: 1, clbit: 1 }).unwrap();
        // The reset of q[1] after the CX makes it non-unitary.
        assert!(matches!(
            p.to_circuit(),
            Err(Error::NotUnitaryProgram { index: 2, .. })
        ));

        let mut p = Program::new();
        p.add_qreg("q", 2).unwrap();
        p.add_creg("c", 1).unwrap();
        p.push(Operation::Reset { qubit: 0 }).unwrap();
        p.push_gate(Gate::H, &[0]).unwrap();
        p.push(Operation::Measure { qubit: 0, clbit: 0 }).unwrap();
        p.push_gate(Gate::X, &[1]).unwrap();
        let split = p.to_circuit().unwrap();
        assert_eq!(split.circuit.len(), 2);
        assert_eq!(split.measurements, vec![(0, 0)]);
        p.push_gate(Gate::X, &[0]).unwrap();
        assert!(p.to_circuit().is_err());
    }

    #[test]
    fn counts_keys_follow_qiskit() {
        let mut p = Program::new();
        p.add_qreg("q", 1).unwrap();
        p.add_creg("c0", 1).unwrap();
        p.add_creg("c1", 2).unwrap();
        let bits = BitString::from_bools(&[true, false, true]);
        assert_eq!(p.format_clbits(&bits), "10 1");
        assert_eq!(p.creg_value(1, &bits), Some(2));
        assert_eq!(Program::new().format_clbits(&BitString::zeros(0)), "");
    }

    #[test]
    fn stats_count_kinds_depth_and_range() {
        let mut p = bell();
        p.add_qreg("r", 2).unwrap();
        p.push_gate(Gate::Cz, &[0, 3]).unwrap();
        p.push(Operation::Barrier { qubits: vec![0, 1] }).unwrap();
        p.push(Operation::If {
            creg: 0,
            value: 1,
            op: Box::new(Operation::Gate(
                Instruction::checked(Gate::X, &[2], 4).unwrap(),
            )),
        })
        .unwrap();
        let s = p.stats();
        assert_eq!(s.counts.get("cx"), Some(&1));
        assert_eq!(s.counts.get("x"), Some(&1));
        assert_eq!(s.conditioned, 1);
        assert_eq!(s.multi_qubit_gates, 2);
        assert_eq!(s.long_range_gates, 1);
        assert_eq!(s.depth, 3);
    }
}
