//! The few-shot protocol: `k` training examples per class, a small validation set for early
//! stopping, and the rest as test, reproducible from a seed.

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

use super::Dataset;
use crate::error::{Error, Result};

/// Seed of repeat `stream` derived from a base `seed` by SplitMix64 mixing (the same
/// derivation as [`crate::run::shot_seed`]). Repeats are independent of each other and of
/// the order they run in.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    crate::run::shot_seed(seed, stream)
}

/// Sample indices of one few-shot split, each list sorted ascending. The three lists are
/// disjoint and together cover every sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The seed this split was drawn from.
    pub seed: u64,
    /// `k` samples of every class.
    pub train: Vec<usize>,
    /// Validation samples for early stopping and model selection.
    pub val: Vec<usize>,
    /// Every other sample.
    pub test: Vec<usize>,
}

/// Few-shot split settings.
///
/// For every class, in class order, the class's sample indices (ascending) are shuffled by a
/// Fisher-Yates shuffle driven by one `ChaCha8Rng::seed_from_u64(seed)` stream. The first `k`
/// go to training, the next `min(val_per_class, n_c - k - 1)` to validation, and the rest
/// (at least one per class) to test. So validation never takes the last test example of a
/// class and never overlaps test. Random integers are drawn with a fixed rejection rule on
/// `next_u64` (not `usize`), so a seed gives the same split on every platform and does not
/// depend on how `rand` samples ranges.
///
/// ```
/// use qfl::data::FewShot;
/// # fn main() -> qfl::Result<()> {
/// let labels = [0, 1, 0, 1, 0, 1, 0, 1];
/// let split = FewShot::new(2).with_val_per_class(1).split(&labels, 2, 7)?;
/// assert_eq!((split.train.len(), split.val.len(), split.test.len()), (4, 2, 2));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FewShot {
    k: usize,
    val_per_class: usize,
}

impl FewShot {
    /// `k` training examples per class and, by default, up to `k` validation examples per
    /// class.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            val_per_class: k,
        }
    }

    /// Sets the largest number of validation examples per class (0 for none).
    pub fn with_val_per_class(mut self, val_per_class: usize) -> Self {
        self.val_per_class = val_per_class;
        self
    }

    /// Training examples per class.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Largest number of validation examples per class.
    pub fn val_per_class(&self) -> usize {
        self.val_per_class
    }

    /// One split of `labels` (in `0..n_classes`) from `seed`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if `k` is 0; [`Error::InvalidData`] if a label is
    /// `>= n_classes`; [`Error::TooFewSamples`] if a class has fewer than `k + 1` samples.
    pub fn split(&self, labels: &[usize], n_classes: usize, seed: u64) -> Result<Split> {
        self.split_named(labels, n_classes, None, seed)
    }

    /// `repeats` splits; repeat `r` uses [`derive_seed`]`(seed, r)`.
    ///
    /// # Errors
    /// As [`FewShot::split`].
    pub fn splits(
        &self,
        labels: &[usize],
        n_classes: usize,
        seed: u64,
        repeats: usize,
    ) -> Result<Vec<Split>> {
        (0..repeats as u64)
            .map(|r| self.split(labels, n_classes, derive_seed(seed, r)))
            .collect()
    }

    /// One split of a data set's samples; errors name the class.
    ///
    /// # Errors
    /// As [`FewShot::split`].
    pub fn split_dataset(&self, data: &Dataset, seed: u64) -> Result<Split> {
        self.split_named(
            data.labels(),
            data.n_classes(),
            Some(data.class_names()),
            seed,
        )
    }

    /// `repeats` splits of a data set; repeat `r` uses [`derive_seed`]`(seed, r)`.
    ///
    /// # Errors
    /// As [`FewShot::split`].
    pub fn splits_dataset(&self, data: &Dataset, seed: u64, repeats: usize) -> Result<Vec<Split>> {
        (0..repeats as u64)
            .map(|r| self.split_dataset(data, derive_seed(seed, r)))
            .collect()
    }

    fn split_named(
        &self,
        labels: &[usize],
        n_classes: usize,
        names: Option<&[String]>,
        seed: u64,
    ) -> Result<Split> {
        if self.k == 0 {
            return Err(Error::InvalidSetting {
                name: "k",
                value: "0".into(),
                reason: "a few-shot split needs at least one training example per class",
            });
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &l) in labels.iter().enumerate() {
            match by_class.get_mut(l) {
                Some(members) => members.push(i),
                None => {
                    return Err(Error::InvalidData {
                        what: "labels".into(),
                        reason: format!(
                            "label {l} of sample {i} is out of range for {n_classes} classes"
                        ),
                    });
                }
            }
        }
        let need = self.k + 1;
        if let Some((class, members)) = by_class.iter().enumerate().find(|(_, m)| m.len() < need) {
            return Err(Error::TooFewSamples {
                class,
                name: names
                    .and_then(|n| n.get(class).cloned())
                    .unwrap_or_else(|| format!("class {class}")),
                have: members.len(),
                need,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for mut members in by_class {
            for i in (1..members.len()).rev() {
                let j = below(&mut rng, i as u64 + 1) as usize;
                members.swap(i, j);
            }
            let n_val = self.val_per_class.min(members.len() - need);
            train.extend_from_slice(&members[..self.k]);
            val.extend_from_slice(&members[self.k..self.k + n_val]);
            test.extend_from_slice(&members[self.k + n_val..]);
        }
        train.sort_unstable();
        val.sort_unstable();
        test.sort_unstable();
        Ok(Split {
            seed,
            train,
            val,
            test,
        })
    }
}

/// A uniform integer in `0..n` (`n >= 1`) by Lemire's multiply-and-reject on `next_u64`.
fn below(rng: &mut impl Rng, n: u64) -> u64 {
    debug_assert!(n >= 1);
    // Reject the low products that would make some results more likely than others.
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = below(&mut rng, 7);
            assert!(v < 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(below(&mut rng, 1), 0);
    }
}
