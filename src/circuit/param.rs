//! Gate angles: fixed, trainable or input-driven, each an affine function of its source.

use crate::error::{Error, ParamSource, Result};

/// The angle of a rotation gate.
///
/// A `Param` is bound at run time: [`Param::Fixed`] is a constant, [`Param::Theta`] reads the
/// trainable parameter `theta[index]` and [`Param::Input`] the input feature `x[index]`; both of
/// the latter are affine, `value = scale * source + offset`. One circuit therefore runs many
/// inputs and parameter sets without being rebuilt.
///
/// ```
/// use qfl::Param;
/// let p = Param::theta(2).scaled(0.5).shifted(1.0);
/// assert_eq!(p.value(&[0.0, 0.0, 4.0], &[]), 3.0);
/// let fixed: Param = 0.25.into();
/// assert_eq!(fixed.value(&[], &[]), 0.25);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    /// A constant angle.
    Fixed(f64),
    /// `scale * theta[index] + offset`.
    Theta {
        /// Index into the trainable parameter slice.
        index: usize,
        /// Multiplier.
        scale: f64,
        /// Additive constant.
        offset: f64,
    },
    /// `scale * x[index] + offset`.
    Input {
        /// Index into the input feature slice.
        index: usize,
        /// Multiplier.
        scale: f64,
        /// Additive constant.
        offset: f64,
    },
}

impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Fixed(v)
    }
}

impl Param {
    /// The trainable parameter `theta[index]` (scale 1, offset 0).
    pub fn theta(index: usize) -> Self {
        Param::Theta {
            index,
            scale: 1.0,
            offset: 0.0,
        }
    }

    /// The input feature `x[index]` (scale 1, offset 0).
    pub fn input(index: usize) -> Self {
        Param::Input {
            index,
            scale: 1.0,
            offset: 0.0,
        }
    }

    /// Multiplies the whole angle by `factor` (scale and offset, or the fixed value).
    pub fn scaled(self, factor: f64) -> Self {
        match self {
            Param::Fixed(v) => Param::Fixed(v * factor),
            Param::Theta {
                index,
                scale,
                offset,
            } => Param::Theta {
                index,
                scale: scale * factor,
                offset: offset * factor,
            },
            Param::Input {
                index,
                scale,
                offset,
            } => Param::Input {
                index,
                scale: scale * factor,
                offset: offset * factor,
            },
        }
    }

    /// Adds `delta` to the angle.
    pub fn shifted(self, delta: f64) -> Self {
        match self {
            Param::Fixed(v) => Param::Fixed(v + delta),
            Param::Theta {
                index,
                scale,
                offset,
            } => Param::Theta {
                index,
                scale,
                offset: offset + delta,
            },
            Param::Input {
                index,
                scale,
                offset,
            } => Param::Input {
                index,
                scale,
                offset: offset + delta,
            },
        }
    }

    /// The negated angle (used by [`crate::Gate::inverse`]).
    pub fn negated(self) -> Self {
        self.scaled(-1.0)
    }

    /// The source and index this angle reads, if any.
    pub fn source(&self) -> Option<(ParamSource, usize)> {
        match *self {
            Param::Fixed(_) => None,
            Param::Theta { index, .. } => Some((ParamSource::Theta, index)),
            Param::Input { index, .. } => Some((ParamSource::Input, index)),
        }
    }

    /// The bound value. Indices must be in range (the circuit checks this on push and on bind);
    /// an index out of range reads as NaN, which the backends report as an error.
    pub fn value(&self, theta: &[f64], x: &[f64]) -> f64 {
        match *self {
            Param::Fixed(v) => v,
            Param::Theta {
                index,
                scale,
                offset,
            } => theta.get(index).map_or(f64::NAN, |t| scale * t + offset),
            Param::Input {
                index,
                scale,
                offset,
            } => x.get(index).map_or(f64::NAN, |t| scale * t + offset),
        }
    }

    /// Checks that every number in the parameter is finite.
    pub(crate) fn check_finite(&self, gate: &'static str) -> Result<()> {
        let check = |what, value: f64| {
            if value.is_finite() {
                Ok(())
            } else {
                Err(Error::NonFiniteAngle { gate, what, value })
            }
        };
        match *self {
            Param::Fixed(v) => check("value", v),
            Param::Theta { scale, offset, .. } | Param::Input { scale, offset, .. } => {
                check("scale", scale)?;
                check("offset", offset)
            }
        }
    }
}
