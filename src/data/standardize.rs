//! Per-feature standardization fitted on training rows only.

use super::Dataset;
use crate::error::{Error, Result};

/// Mean and scale of every feature of every modality, fitted on chosen rows, so that
/// `(x - mean) / scale` has mean 0 and variance 1 on those rows.
///
/// The scale is the population standard deviation (divisor `n`, like scikit-learn's
/// `StandardScaler`). A feature that is constant on the fitting rows (standard deviation
/// below `1e-12` times its largest absolute value, or exactly 0) gets scale 1, so it is only
/// centred and never divided by zero.
///
/// Fit on the training rows of a split and apply to all rows: validation and test rows do
/// not influence the statistics.
///
/// ```
/// use qfl::data::Standardizer;
/// use qfl::{Dataset, Modality};
/// # fn main() -> qfl::Result<()> {
/// let m = Modality::new("x", 2, vec![1.0, 5.0, 3.0, 5.0, 100.0, 0.0])?;
/// let data = Dataset::new(vec![m], vec![0, 1, 0], vec!["a".into(), "b".into()])?;
/// let scaler = Standardizer::fit(&data, &[0, 1])?; // row 2 is not used for fitting
/// assert_eq!(scaler.mean(0), Some(&[2.0, 5.0][..]));
/// assert_eq!(scaler.scale(0), Some(&[1.0, 1.0][..])); // std of [1, 3] is 1; column 2 is constant
/// let scaled = scaler.apply(&data)?;
/// assert_eq!(scaled.modality(0).and_then(|m| m.row(2)), Some(&[98.0, -5.0][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Per modality: (name, means, scales).
    stats: Vec<(String, Vec<f64>, Vec<f64>)>,
}

impl Standardizer {
    /// Fits means and scales on the rows `rows` of `data` (repeats count twice).
    ///
    /// # Errors
    /// [`Error::InvalidData`] if `rows` is empty or has an index `>= n_samples`.
    pub fn fit(data: &Dataset, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::InvalidData {
                what: "standardization rows".into(),
                reason: "no row to fit on".into(),
            });
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= data.n_samples()) {
            return Err(Error::InvalidData {
                what: "standardization rows".into(),
                reason: format!("row {bad} is out of range for {} samples", data.n_samples()),
            });
        }
        let n = rows.len() as f64;
        let stats = data
            .modalities()
            .iter()
            .map(|m| {
                let d = m.n_features();
                let mut mean = vec![0.0; d];
                for &r in rows {
                    for (acc, &x) in mean.iter_mut().zip(&m.values()[r * d..(r + 1) * d]) {
                        *acc += x;
                    }
                }
                mean.iter_mut().for_each(|v| *v /= n);
                // Two-pass variance: no cancellation for features with a large mean.
                let mut var = vec![0.0; d];
                let mut max_abs = vec![0.0f64; d];
                for &r in rows {
                    for (j, &x) in m.values()[r * d..(r + 1) * d].iter().enumerate() {
                        var[j] += (x - mean[j]) * (x - mean[j]);
                        max_abs[j] = max_abs[j].max(x.abs());
                    }
                }
                let scale = var
                    .iter()
                    .zip(&max_abs)
                    .map(|(&v, &a)| {
                        let std = (v / n).sqrt();
                        if std > 1e-12 * a && std > 0.0 {
                            std
                        } else {
                            1.0
                        }
                    })
                    .collect();
                (m.name().to_string(), mean, scale)
            })
            .collect();
        Ok(Self { stats })
    }

    /// Means of modality `i`'s features, or `None` if out of range.
    pub fn mean(&self, i: usize) -> Option<&[f64]> {
        self.stats.get(i).map(|s| s.1.as_slice())
    }

    /// Scales of modality `i`'s features (1 for constant features), or `None`.
    pub fn scale(&self, i: usize) -> Option<&[f64]> {
        self.stats.get(i).map(|s| s.2.as_slice())
    }

    /// A copy of `data` with every feature standardized.
    ///
    /// # Errors
    /// [`Error::InvalidData`] if `data` has different modalities or feature counts than
    /// the data set this was fitted on.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset> {
        let mut out = data.clone();
        self.apply_in_place(&mut out)?;
        Ok(out)
    }

    /// Standardizes `data` in place.
    ///
    /// # Errors
    /// As [`Standardizer::apply`].
    pub fn apply_in_place(&self, data: &mut Dataset) -> Result<()> {
        let same = data.n_modalities() == self.stats.len()
            && data
                .modalities()
                .iter()
                .zip(&self.stats)
                .all(|(m, s)| m.name() == s.0 && m.n_features() == s.1.len());
        if !same {
            return Err(Error::InvalidData {
                what: "standardization".into(),
                reason:
                    "the data set's modalities differ from those the standardizer was fitted on"
                        .into(),
            });
        }
        for (m, (_, mean, scale)) in data.modalities_mut().iter_mut().zip(&self.stats) {
            let d = mean.len();
            for row in m.values_mut().chunks_exact_mut(d) {
                for ((x, mu), s) in row.iter_mut().zip(mean).zip(scale) {
                    *x = (*x - mu) / s;
                }
            }
        }
        Ok(())
    }
}
