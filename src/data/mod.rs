//! Multimodal data sets: named modalities of the same samples, integer class labels, loaders
//! for UEA/sktime `.ts` and per-modality CSV files, the bundled data sets, per-feature
//! standardization and the few-shot split protocol.
//!
//! A [`Dataset`] holds `n_samples` rows; each [`Modality`] stores its features row-major
//! (`n_samples x n_features`), and labels are integers `0..n_classes` with a name per class.
//!
//! ```
//! use qfl::data::{Dataset, FewShot, Standardizer};
//! # fn main() -> qfl::Result<()> {
//! let data = Dataset::bundled("nutrimouse-genotype")?;
//! assert_eq!((data.n_samples(), data.n_modalities(), data.n_classes()), (40, 2, 2));
//! let split = FewShot::new(5).split(data.labels(), data.n_classes(), 42)?;
//! let scaler = Standardizer::fit(&data, &split.train)?;
//! let scaled = scaler.apply(&data)?;
//! assert_eq!(scaled.modality(0).map(|m| m.n_features()), Some(120));
//! # Ok(()) }
//! ```
//!
//! File formats, provenance and the split protocol are described in `docs/data.md`.

mod bundled;
mod csv;
mod split;
mod standardize;
mod text;
mod ts;

pub use bundled::{BUNDLED, BUNDLED_DATA_DIR};
pub use csv::{Column, CsvLoader, Header, Labels};
pub use split::{FewShot, Split, derive_seed};
pub use standardize::Standardizer;
pub use text::SourceFile;

use crate::error::{Error, Result};

/// One view of the samples: `n_features` values per sample, stored row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Modality {
    name: String,
    n_features: usize,
    values: Vec<f64>,
}

impl Modality {
    /// A modality from row-major values (`values.len() = n_samples * n_features`).
    ///
    /// # Errors
    /// [`Error::InvalidData`] if `n_features` is 0 or does not divide `values.len()`,
    /// [`Error::NonFiniteValue`] if a value is NaN or infinite.
    pub fn new(name: impl Into<String>, n_features: usize, values: Vec<f64>) -> Result<Self> {
        let name = name.into();
        if n_features == 0 || !values.len().is_multiple_of(n_features) {
            return Err(Error::InvalidData {
                what: format!("modality {name}"),
                reason: format!(
                    "{} values do not make rows of {n_features} features",
                    values.len()
                ),
            });
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteValue {
                what: "feature value",
                index,
                value,
            });
        }
        Ok(Self {
            name,
            n_features,
            values,
        })
    }

    /// The modality's name (`"fou"`, `"gene"`, `"dim_0"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Features per sample.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.values.len() / self.n_features
    }

    /// All values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The features of sample `i`, or `None` if `i >= n_samples`.
    pub fn row(&self, i: usize) -> Option<&[f64]> {
        self.values
            .get(i * self.n_features..(i + 1) * self.n_features)
    }

    /// The rows in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.values.chunks_exact(self.n_features)
    }

    /// Mutable access to the values (the shape cannot change).
    pub(crate) fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }
}

/// Samples with several modalities and a class label each.
///
/// Invariants (checked by [`Dataset::new`]): at least one modality, every modality has the
/// same number of samples as there are labels, every label is below the number of class
/// names, and class names are distinct.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    modalities: Vec<Modality>,
    labels: Vec<usize>,
    class_names: Vec<String>,
}

impl Dataset {
    /// A data set from its parts.
    ///
    /// # Errors
    /// [`Error::InvalidData`] if there is no modality, a modality has a different number of
    /// samples than `labels`, two modalities share a name, a label is `>= class_names.len()`,
    /// or two classes share a name.
    pub fn new(
        modalities: Vec<Modality>,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidData {
            what: "dataset".into(),
            reason,
        };
        if modalities.is_empty() {
            return Err(invalid("a dataset needs at least one modality".into()));
        }
        for (i, m) in modalities.iter().enumerate() {
            if m.n_samples() != labels.len() {
                return Err(invalid(format!(
                    "modality {} has {} samples but there are {} labels",
                    m.name,
                    m.n_samples(),
                    labels.len()
                )));
            }
            if modalities[..i].iter().any(|o| o.name == m.name) {
                return Err(invalid(format!("two modalities are named {:?}", m.name)));
            }
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l >= class_names.len())
        {
            return Err(invalid(format!(
                "label {l} of sample {i} is out of range for {} classes",
                class_names.len()
            )));
        }
        for (i, c) in class_names.iter().enumerate() {
            if class_names[..i].contains(c) {
                return Err(invalid(format!("two classes are named {c:?}")));
            }
        }
        Ok(Self {
            modalities,
            labels,
            class_names,
        })
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.labels.len()
    }

    /// Number of classes (the length of [`Dataset::class_names`]; a class may have no sample
    /// in a subset).
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of modalities.
    pub fn n_modalities(&self) -> usize {
        self.modalities.len()
    }

    /// All modalities in order.
    pub fn modalities(&self) -> &[Modality] {
        &self.modalities
    }

    /// Modality `i`, or `None` if out of range.
    pub fn modality(&self, i: usize) -> Option<&Modality> {
        self.modalities.get(i)
    }

    /// The modality with this name, if any.
    pub fn modality_by_name(&self, name: &str) -> Option<&Modality> {
        self.modalities.iter().find(|m| m.name == name)
    }

    /// Labels, one per sample, in `0..n_classes`.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// The features of sample `i` in every modality, or `None` if `i >= n_samples`.
    pub fn sample(&self, i: usize) -> Option<Vec<&[f64]>> {
        self.modalities.iter().map(|m| m.row(i)).collect()
    }

    /// Total number of features over all modalities.
    pub fn n_features_total(&self) -> usize {
        self.modalities.iter().map(|m| m.n_features).sum()
    }

    /// The samples at `indices`, in that order (repeats allowed); class names are kept.
    ///
    /// # Errors
    /// [`Error::InvalidData`] if an index is `>= n_samples`.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.n_samples()) {
            return Err(Error::InvalidData {
                what: "subset".into(),
                reason: format!(
                    "sample index {bad} is out of range for {} samples",
                    self.n_samples()
                ),
            });
        }
        let modalities = self
            .modalities
            .iter()
            .map(|m| {
                let mut values = Vec::with_capacity(indices.len() * m.n_features);
                for &i in indices {
                    values.extend_from_slice(&m.values[i * m.n_features..(i + 1) * m.n_features]);
                }
                Modality {
                    name: m.name.clone(),
                    n_features: m.n_features,
                    values,
                }
            })
            .collect();
        Ok(Self {
            modalities,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        })
    }

    /// The samples of `self` followed by those of `other` (e.g. an official train and test
    /// file).
    ///
    /// # Errors
    /// [`Error::InvalidData`] if the two differ in modality names, feature counts or class
    /// names.
    pub fn concat(&self, other: &Self) -> Result<Self> {
        let same_modalities = self.modalities.len() == other.modalities.len()
            && self
                .modalities
                .iter()
                .zip(&other.modalities)
                .all(|(a, b)| a.name == b.name && a.n_features == b.n_features);
        if !same_modalities || self.class_names != other.class_names {
            return Err(Error::InvalidData {
                what: "concat".into(),
                reason: "the data sets differ in modalities, feature counts or class names".into(),
            });
        }
        let modalities = self
            .modalities
            .iter()
            .zip(&other.modalities)
            .map(|(a, b)| Modality {
                name: a.name.clone(),
                n_features: a.n_features,
                values: [a.values.as_slice(), &b.values].concat(),
            })
            .collect();
        Ok(Self {
            modalities,
            labels: [self.labels.as_slice(), &other.labels].concat(),
            class_names: self.class_names.clone(),
        })
    }

    /// Mutable modalities for in-crate transforms that keep the shapes.
    pub(crate) fn modalities_mut(&mut self) -> &mut [Modality] {
        &mut self.modalities
    }
}

/// Class names and integer labels from raw label strings.
///
/// With `declared` classes, each label must be one of them (its index is the label).
/// Otherwise the classes are the distinct labels, in numeric order when every label is an
/// integer and in byte order otherwise (like scikit-learn's `LabelEncoder`). `locate(i)`
/// gives the error location of label `i` for an unknown class.
pub(crate) fn encode_labels(
    raw: &[&str],
    declared: Option<&[String]>,
    locate: impl Fn(usize, crate::error::DataErrorKind, String) -> Error,
) -> Result<(Vec<usize>, Vec<String>)> {
    let classes: Vec<String> = match declared {
        Some(d) => d.to_vec(),
        None => {
            let mut distinct: Vec<&str> = raw.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let as_int: Option<Vec<i64>> = distinct.iter().map(|s| s.parse().ok()).collect();
            if let Some(ints) = as_int {
                let mut pairs: Vec<(i64, &str)> = ints.into_iter().zip(distinct).collect();
                pairs.sort_unstable();
                pairs.into_iter().map(|(_, s)| s.to_string()).collect()
            } else {
                distinct.into_iter().map(String::from).collect()
            }
        }
    };
    let mut labels = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        match classes.iter().position(|c| c == r) {
            Some(l) => labels.push(l),
            None => {
                return Err(locate(
                    i,
                    crate::error::DataErrorKind::UnknownClass,
                    format!("class label {r:?} is not one of {classes:?}"),
                ));
            }
        }
    }
    Ok((labels, classes))
}
