//! Classification metrics: ROC AUC (binary, and one-vs-rest for several classes), accuracy,
//! and the mean and sample standard deviation of a metric over repeats.
//!
//! ROC AUC is computed as the Mann-Whitney U statistic with midranks for tied scores,
//! `AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)` where `R_pos` is the sum of the
//! ranks of the positive examples. This equals the area under the ROC curve with ties
//! counted as half (scikit-learn's `roc_auc_score`), in `O(n log n)` and in `f64`. The tests
//! compare it with scikit-learn values kept as fixtures (`scripts/auc_fixtures.py`).
//!
//! ```
//! use qfl::metrics::{roc_auc, roc_auc_ovr};
//! # fn main() -> qfl::Result<()> {
//! let auc = roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8])?;
//! assert_eq!(auc, 0.75);
//! // Three classes, scores row-major (one row of 3 per sample).
//! let labels = [0, 1, 2, 2];
//! let scores = [0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.2, 0.7, 0.3, 0.3, 0.4];
//! let ovr = roc_auc_ovr(&labels, &scores, 3)?;
//! assert_eq!(ovr.macro_average, 1.0);
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};

/// Binary ROC AUC: the probability that a random positive scores above a random negative,
/// ties counting one half.
///
/// # Errors
/// [`Error::LengthMismatch`] if the slices differ in length, [`Error::NonFiniteValue`] for a
/// NaN or infinite score, [`Error::SingleClass`] if all labels are equal (or there are none).
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64> {
    if labels.len() != scores.len() {
        return Err(Error::LengthMismatch {
            what: "roc_auc scores vs labels",
            expected: labels.len(),
            got: scores.len(),
        });
    }
    check_finite(scores)?;
    auc_of(
        labels.len(),
        |i| labels[i],
        |i| scores[i],
        || "binary labels".into(),
    )
}

/// One-vs-rest ROC AUC of every class, with its macro and prevalence-weighted averages
/// (scikit-learn's `roc_auc_score(multi_class="ovr", average="macro" | "weighted")`).
#[derive(Clone, Debug, PartialEq)]
pub struct OvrAuc {
    /// AUC of class `c` against all others, scored by column `c`.
    pub per_class: Vec<f64>,
    /// Unweighted mean of `per_class`.
    pub macro_average: f64,
    /// Mean of `per_class` weighted by each class's number of samples.
    pub weighted_average: f64,
}

/// One-vs-rest ROC AUC for `n_classes >= 2` classes.
///
/// `scores` is row-major `labels.len() x n_classes`: column `c` scores class `c` (e.g.
/// predicted probabilities or logits; unlike scikit-learn, rows need not sum to 1, and the
/// AUC depends only on the order within each column).
///
/// # Errors
/// [`Error::LengthMismatch`] if `scores.len() != labels.len() * n_classes`;
/// [`Error::InvalidData`] if `n_classes < 2` or a label is `>= n_classes`;
/// [`Error::NonFiniteValue`] for a NaN or infinite score; [`Error::SingleClass`] if a class
/// has no sample (its one-vs-rest AUC is undefined) or every sample is of one class.
pub fn roc_auc_ovr(labels: &[usize], scores: &[f64], n_classes: usize) -> Result<OvrAuc> {
    if n_classes < 2 {
        return Err(Error::InvalidData {
            what: "roc_auc_ovr classes".into(),
            reason: format!("one-vs-rest AUC needs at least 2 classes, got {n_classes}"),
        });
    }
    let expected = labels
        .len()
        .checked_mul(n_classes)
        .ok_or_else(|| Error::InvalidData {
            what: "roc_auc_ovr scores".into(),
            reason: "labels.len() * n_classes overflows".into(),
        })?;
    if scores.len() != expected {
        return Err(Error::LengthMismatch {
            what: "roc_auc_ovr scores vs labels x classes",
            expected,
            got: scores.len(),
        });
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= n_classes) {
        return Err(Error::InvalidData {
            what: "roc_auc_ovr labels".into(),
            reason: format!("label {l} of sample {i} is out of range for {n_classes} classes"),
        });
    }
    check_finite(scores)?;
    let mut counts = vec![0usize; n_classes];
    for &l in labels {
        counts[l] += 1;
    }
    let per_class = (0..n_classes)
        .map(|c| {
            auc_of(
                labels.len(),
                |i| labels[i] == c,
                |i| scores[i * n_classes + c],
                || format!("class {c} vs rest"),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let macro_average = per_class.iter().sum::<f64>() / n_classes as f64;
    let weighted_average = per_class
        .iter()
        .zip(&counts)
        .map(|(a, &n)| a * n as f64)
        .sum::<f64>()
        / labels.len() as f64;
    Ok(OvrAuc {
        per_class,
        macro_average,
        weighted_average,
    })
}

/// Mann-Whitney AUC of sample set `0..n` with positives `is_pos(i)` and scores `score(i)`.
fn auc_of(
    n: usize,
    is_pos: impl Fn(usize) -> bool,
    score: impl Fn(usize) -> f64,
    context: impl Fn() -> String,
) -> Result<f64> {
    let n_pos = (0..n).filter(|&i| is_pos(i)).count();
    let n_neg = n - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(Error::SingleClass {
            context: context(),
            n,
            class: if n_pos == 0 { "negative" } else { "positive" }.into(),
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| score(a).total_cmp(&score(b)));
    // Sum of the (1-based, mid-) ranks of the positives, tie group by tie group. Ranks are
    // integers or halves, so the sum is exact in f64 up to 2^52.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < n {
        let s = score(order[start]);
        let mut end = start + 1;
        while end < n && score(order[end]) == s {
            end += 1;
        }
        let pos_in_group = order[start..end].iter().filter(|&&i| is_pos(i)).count();
        // Ranks start+1 ..= end share the midrank (start + 1 + end) / 2.
        rank_sum += pos_in_group as f64 * (start + 1 + end) as f64 / 2.0;
        start = end;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

fn check_finite(scores: &[f64]) -> Result<()> {
    match scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        Some((index, &value)) => Err(Error::NonFiniteValue {
            what: "score",
            index,
            value,
        }),
        None => Ok(()),
    }
}

/// Fraction of `predicted` equal to `labels`.
///
/// # Errors
/// [`Error::LengthMismatch`] if the lengths differ, [`Error::InvalidData`] if they are empty.
pub fn accuracy(labels: &[usize], predicted: &[usize]) -> Result<f64> {
    if labels.len() != predicted.len() {
        return Err(Error::LengthMismatch {
            what: "accuracy predictions vs labels",
            expected: labels.len(),
            got: predicted.len(),
        });
    }
    if labels.is_empty() {
        return Err(Error::InvalidData {
            what: "accuracy".into(),
            reason: "no sample".into(),
        });
    }
    let hits = labels.iter().zip(predicted).filter(|(a, b)| a == b).count();
    Ok(hits as f64 / labels.len() as f64)
}

/// The class with the largest score in each row of row-major `scores` (`n x n_classes`);
/// the first one on ties.
///
/// # Errors
/// [`Error::InvalidData`] if `n_classes` is 0 or does not divide `scores.len()`,
/// [`Error::NonFiniteValue`] for a NaN or infinite score.
pub fn argmax_rows(scores: &[f64], n_classes: usize) -> Result<Vec<usize>> {
    if n_classes == 0 || !scores.len().is_multiple_of(n_classes) {
        return Err(Error::InvalidData {
            what: "argmax scores".into(),
            reason: format!("{} scores do not make rows of {n_classes}", scores.len()),
        });
    }
    check_finite(scores)?;
    Ok(scores
        .chunks_exact(n_classes)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, row[0]),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0
        })
        .collect())
}

/// Mean and spread of a metric over repeats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor `n - 1`); 0 when `n = 1`.
    pub std: f64,
    /// Number of values.
    pub n: usize,
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match f.precision() {
            Some(p) => write!(f, "{:.p$} ± {:.p$} (n = {})", self.mean, self.std, self.n),
            None => write!(f, "{} ± {} (n = {})", self.mean, self.std, self.n),
        }
    }
}

/// Mean and sample standard deviation of `values` (e.g. one AUC per repeat).
///
/// # Errors
/// [`Error::InvalidData`] if `values` is empty, [`Error::NonFiniteValue`] for a NaN or
/// infinite value.
pub fn mean_std(values: &[f64]) -> Result<MeanStd> {
    if values.is_empty() {
        return Err(Error::InvalidData {
            what: "mean_std".into(),
            reason: "no value".into(),
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFiniteValue {
            what: "value",
            index,
            value,
        });
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n == 1 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    Ok(MeanStd { mean, std, n })
}
