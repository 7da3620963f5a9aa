//! Bit strings over any number of qubits.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A computational basis state of `n` qubits, packed 64 bits a word.
///
/// Bit `q` is qubit `q`. As text it is written like Qiskit: qubit `n-1` first, qubit 0 last.
///
/// ```
/// use qfl::BitString;
/// let b: BitString = "110".parse().unwrap();
/// assert!(!b.get(0) && b.get(1) && b.get(2));
/// assert_eq!(b.to_index(), Some(6));
/// assert_eq!(b.to_string(), "110");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BitString {
    n_bits: usize,
    words: Vec<u64>,
}

impl BitString {
    /// All zeros.
    pub fn zeros(n_bits: usize) -> Self {
        BitString {
            n_bits,
            words: vec![0; n_bits.div_ceil(64)],
        }
    }

    /// The basis state with index `index` (qubit 0 the least significant bit); `n_bits <= 64`
    /// bits of `index` are used.
    pub fn from_index(n_bits: usize, index: u64) -> Self {
        let mut b = Self::zeros(n_bits);
        for q in 0..n_bits.min(64) {
            b.set(q, (index >> q) & 1 == 1);
        }
        b
    }

    /// From one bool per qubit, qubit 0 first.
    pub fn from_bools(bits: &[bool]) -> Self {
        let mut b = Self::zeros(bits.len());
        for (q, &v) in bits.iter().enumerate() {
            b.set(q, v);
        }
        b
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.n_bits
    }

    /// True if there are no bits.
    pub fn is_empty(&self) -> bool {
        self.n_bits == 0
    }

    /// Bit of qubit `q` (false beyond the length).
    pub fn get(&self, q: usize) -> bool {
        q < self.n_bits && (self.words[q / 64] >> (q % 64)) & 1 == 1
    }

    /// Sets bit `q`; bits beyond the length are ignored.
    pub fn set(&mut self, q: usize, value: bool) {
        if q >= self.n_bits {
            return;
        }
        let mask = 1u64 << (q % 64);
        if value {
            self.words[q / 64] |= mask;
        } else {
            self.words[q / 64] &= !mask;
        }
    }

    /// The index of the basis state if it fits in 64 bits.
    pub fn to_index(&self) -> Option<u64> {
        if self.words.iter().skip(1).any(|&w| w != 0) {
            None
        } else {
            Some(self.words.first().copied().unwrap_or(0))
        }
    }

    /// Number of ones.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl fmt::Display for BitString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for q in (0..self.n_bits).rev() {
            f.write_str(if self.get(q) { "1" } else { "0" })?;
        }
        Ok(())
    }
}

impl FromStr for BitString {
    type Err = Error;

    /// Parses `0`/`1` characters, qubit `n-1` first (Qiskit order).
    fn from_str(s: &str) -> Result<Self> {
        let n = s.len();
        let mut b = Self::zeros(n);
        for (k, ch) in s.bytes().enumerate() {
            match ch {
                b'0' => {}
                b'1' => b.set(n - 1 - k, true),
                _ => {
                    return Err(Error::Parse {
                        what: "bit string",
                        text: s.to_string(),
                        reason: format!("character {} at position {k} is not 0 or 1", ch as char),
                    });
                }
            }
        }
        Ok(b)
    }
}
