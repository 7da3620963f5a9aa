//! OpenQASM 2.0 import.
//!
//! [`parse_str`], [`parse_bytes`] and [`parse_file`] turn an OpenQASM 2.0 source into a
//! [`Program`]: registers concatenated in declaration order, user `gate` definitions
//! expanded into qfl [`Gate`](crate::Gate)s, registers broadcast, parameter expressions
//! evaluated, and `measure`, `reset`, `barrier` and `if` kept as [`Operation`](crate::Operation)s.
//!
//! `include "qelib1.inc";` needs no file: the original 2017 library is built in, and with it
//! the gates Qiskit's version adds (`sx`, `swap`, `cp`, `rzz`, `c3x`, ...). Every library
//! gate with a native qfl variant maps to it directly; the others expand by their
//! definitions. Other includes are read relative to the including file (only with
//! [`parse_file`]).
//!
//! The lexer and recursive-descent parser are hand written: no dependency, bounded
//! recursion (expression nesting, gate nesting, includes) and bounded output
//! ([`MAX_OPERATIONS`]), and no panic on any input. Every error is an
//! [`Error::Qasm`] with the file, line and column:
//!
//! ```
//! let err = qfl::qasm::parse_str(
//!     "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncx q[0], r[1];\n",
//!     "bell.qasm",
//! )
//! .unwrap_err();
//! assert_eq!(err.to_string(), "bell.qasm:4:10: register 'r' is not declared");
//! ```
//!
//! See `docs/qasm.md` for what is supported and how results are ordered.

mod expr;
mod lexer;
mod parser;

use std::path::Path;

use crate::circuit::Program;
use crate::error::{Error, Result};

/// Largest number of operations an import may produce (after gate expansion and
/// broadcasting).
pub const MAX_OPERATIONS: usize = 20_000_000;

/// Deepest nesting of parentheses and unary operators in one expression.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

/// Most nodes (numbers, names, operators) in one expression.
pub const MAX_EXPRESSION_NODES: usize = 4096;

/// Deepest chain of user gates calling user gates.
pub const MAX_GATE_DEPTH: usize = 64;

/// Deepest chain of file includes.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// The embedded 2017 standard library.
pub(crate) const QELIB1: &str = include_str!("qelib1.inc");

/// The embedded Qiskit additions to it.
pub(crate) const QELIB1_EXTRAS: &str = include_str!("qelib1_extras.inc");

/// Parses OpenQASM 2.0 text; `file_name` is used in error messages. Includes other than
/// `qelib1.inc` are rejected (there is no directory to read them from).
///
/// ```
/// # fn main() -> qfl::Result<()> {
/// let p = qfl::qasm::parse_str(
///     "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n",
///     "bell.qasm",
/// )?;
/// assert_eq!((p.n_qubits(), p.n_clbits(), p.len()), (2, 2, 4));
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Qasm`] with the location and kind of the first problem.
pub fn parse_str(source: &str, file_name: &str) -> Result<Program> {
    parser::parse(source.as_bytes(), file_name, None, true)
}

/// Parses OpenQASM 2.0 given as bytes (which need not be UTF-8 outside identifiers,
/// numbers and strings); otherwise as [`parse_str`].
///
/// # Errors
/// [`Error::Qasm`].
pub fn parse_bytes(source: &[u8], file_name: &str) -> Result<Program> {
    parser::parse(source, file_name, None, true)
}

/// Reads and parses an OpenQASM 2.0 file. Includes other than `qelib1.inc` are read
/// relative to the including file's directory.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Qasm`] for a problem in it.
pub fn parse_file(path: impl AsRef<Path>) -> Result<Program> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let name = path.display().to_string();
    parser::parse(&bytes, &name, path.parent(), true)
}

#[cfg(test)]
mod tests;
