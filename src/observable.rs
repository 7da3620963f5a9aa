//! Observables: Pauli strings on arbitrary qubits and real-weighted sums of them.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A single-qubit Pauli operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pauli {
    /// Pauli X.
    X,
    /// Pauli Y.
    Y,
    /// Pauli Z.
    Z,
}

impl Pauli {
    fn letter(self) -> char {
        match self {
            Pauli::X => 'X',
            Pauli::Y => 'Y',
            Pauli::Z => 'Z',
        }
    }
}

/// A tensor product of Paulis on distinct qubits (identity elsewhere), sorted by qubit.
///
/// ```
/// use qfl::{Pauli, PauliString};
/// let p: PauliString = "Z0 X3".parse().unwrap();
/// assert_eq!(p.terms(), &[(0, Pauli::Z), (3, Pauli::X)]);
/// assert!("Z1 X1".parse::<PauliString>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PauliString {
    terms: Vec<(usize, Pauli)>,
}

impl PauliString {
    /// The identity (empty product).
    pub fn identity() -> Self {
        PauliString::default()
    }

    /// Builds a Pauli string from `(qubit, Pauli)` pairs in any order.
    ///
    /// # Errors
    /// [`Error::RepeatedQubit`] if a qubit appears twice.
    pub fn new(terms: &[(usize, Pauli)]) -> Result<Self> {
        let mut terms = terms.to_vec();
        terms.sort_by_key(|t| t.0);
        if let Some(w) = terms.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::RepeatedQubit {
                qubit: w[0].0,
                context: "Pauli string".into(),
            });
        }
        Ok(PauliString { terms })
    }

    /// A single Pauli on one qubit.
    pub fn single(qubit: usize, pauli: Pauli) -> Self {
        PauliString {
            terms: vec![(qubit, pauli)],
        }
    }

    /// `Z_i`.
    pub fn z(qubit: usize) -> Self {
        Self::single(qubit, Pauli::Z)
    }

    /// The non-identity factors, sorted by qubit.
    pub fn terms(&self) -> &[(usize, Pauli)] {
        &self.terms
    }

    /// True if the string is the identity.
    pub fn is_identity(&self) -> bool {
        self.terms.is_empty()
    }

    /// Largest qubit index used, if any.
    pub fn max_qubit(&self) -> Option<usize> {
        self.terms.last().map(|t| t.0)
    }

    /// Checks that every qubit is below `n_qubits`.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`].
    pub fn check(&self, n_qubits: usize) -> Result<()> {
        match self.max_qubit() {
            Some(q) if q >= n_qubits => Err(Error::QubitOutOfRange { qubit: q, n_qubits }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PauliString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("I");
        }
        for (k, (q, p)) in self.terms.iter().enumerate() {
            if k > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}{}", p.letter(), q)?;
        }
        Ok(())
    }
}

impl FromStr for PauliString {
    type Err = Error;

    /// Parses whitespace-separated factors such as `"Z0 X5 Y12"`; `"I"` or an empty string is
    /// the identity.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: String| Error::Parse {
            what: "Pauli string",
            text: s.to_string(),
            reason,
        };
        let mut terms = Vec::new();
        for tok in s.split_whitespace() {
            if tok == "I" {
                continue;
            }
            let mut chars = tok.chars();
            let pauli = match chars.next() {
                Some('X' | 'x') => Pauli::X,
                Some('Y' | 'y') => Pauli::Y,
                Some('Z' | 'z') => Pauli::Z,
                _ => return Err(bad(format!("factor {tok:?} must start with X, Y or Z"))),
            };
            let q: usize = chars.as_str().parse().map_err(|_| {
                bad(format!(
                    "factor {tok:?} needs a qubit index after the letter"
                ))
            })?;
            terms.push((q, pauli));
        }
        PauliString::new(&terms).map_err(|e| bad(e.to_string()))
    }
}

/// A real-weighted sum of Pauli strings, `sum_k w_k P_k`.
///
/// ```
/// use qfl::{Observable, PauliString};
/// let h = Observable::new()
///     .with_term(0.5, "Z0 Z1".parse().unwrap())
///     .with_term(-1.0, PauliString::z(2));
/// assert_eq!(h.terms().len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observable {
    terms: Vec<(f64, PauliString)>,
}

impl Observable {
    /// The zero observable.
    pub fn new() -> Self {
        Observable::default()
    }

    /// Adds `weight * pauli`.
    pub fn with_term(mut self, weight: f64, pauli: PauliString) -> Self {
        self.terms.push((weight, pauli));
        self
    }

    /// Adds `weight * pauli` in place.
    pub fn add_term(&mut self, weight: f64, pauli: PauliString) {
        self.terms.push((weight, pauli));
    }

    /// The terms.
    pub fn terms(&self) -> &[(f64, PauliString)] {
        &self.terms
    }

    /// Checks that every qubit is below `n_qubits` and every weight is finite.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`] or [`Error::NonFinite`].
    pub fn check(&self, n_qubits: usize) -> Result<()> {
        for (w, p) in &self.terms {
            if !w.is_finite() {
                return Err(Error::NonFinite {
                    context: format!("weight {w} of observable term {p}"),
                });
            }
            p.check(n_qubits)?;
        }
        Ok(())
    }
}
