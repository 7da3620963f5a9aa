//! The few-shot protocol: train a model on `k` labelled examples per class, stop early on a
//! validation set, score the rest, repeat over seeds, report ROC AUC and accuracy as mean and
//! standard deviation, with parameter counts and training time.
//!
//! Every model is built by a closure from a [`FusionSpec`] and a [`VarBuilder`], so the QFL
//! and every baseline go through the same harness. Per repeat `r`, the split is drawn from
//! `derive_seed(seed, r)`, features are standardized with statistics of the training rows
//! only, the model's parameters are initialized from `derive_seed(seed, 1000 + r)`, and the
//! mini-batch order from `derive_seed(seed, 2000 + r)`, so a result is reproducible from the
//! seed alone.

use candle_nn::VarBuilder;

use crate::data::{Dataset, FewShot, Standardizer, derive_seed};
use crate::error::{Error, Result};
use crate::fusion::{FusionModel, FusionSpec, new_varmap, seeded_init};
use crate::metrics::{MeanStd, accuracy, argmax_rows, mean_std, roc_auc, roc_auc_ovr};
use crate::train::{EpochRecord, TensorData, TrainConfig, train};

/// Builds a model for a data set's shape.
pub type ModelBuilder<'a> =
    dyn Fn(&FusionSpec, VarBuilder<'static>) -> candle_core::Result<Box<dyn FusionModel>> + 'a;

/// The few-shot protocol's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Protocol {
    /// Labelled training examples per class.
    pub k: usize,
    /// Validation examples per class for early stopping.
    pub val_per_class: usize,
    /// Repeats (each with its own split and initialization).
    pub repeats: usize,
    /// Base seed.
    pub seed: u64,
    /// Hidden width of every modality encoder.
    pub hidden: usize,
    /// Optimizer and stopping settings (its `seed` is replaced per repeat).
    pub train: TrainConfig,
}

impl Protocol {
    /// `k` per class, `ceil(k / 2)` per class for validation, 10 repeats, seed 0, hidden width
    /// 16, default training.
    pub fn new(k: usize) -> Self {
        Protocol {
            k,
            val_per_class: k.div_ceil(2),
            repeats: 10,
            seed: 0,
            hidden: 16,
            train: TrainConfig::default(),
        }
    }
}

/// One repeat of one model.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Repeat index.
    pub repeat: usize,
    /// Test ROC AUC (binary, or one-vs-rest macro average).
    pub auc: f64,
    /// Test accuracy.
    pub accuracy: f64,
    /// Trainable scalars.
    pub n_parameters: usize,
    /// Training time in seconds.
    pub seconds: f64,
    /// The epoch kept by early stopping.
    pub best_epoch: usize,
    /// The training curve.
    pub curve: Vec<EpochRecord>,
}

/// All repeats of one model, summarized.
#[derive(Clone, Debug)]
pub struct ModelResult {
    /// The model's name.
    pub name: String,
    /// Every repeat.
    pub runs: Vec<RunRecord>,
    /// Test ROC AUC over repeats.
    pub auc: MeanStd,
    /// Test accuracy over repeats.
    pub accuracy: MeanStd,
    /// Trainable scalars (the same in every repeat).
    pub n_parameters: usize,
    /// Training time over repeats, seconds.
    pub seconds: MeanStd,
}

/// Row-major test probabilities -> ROC AUC (binary on class 1, else one-vs-rest macro).
fn auc_of(labels: &[usize], probabilities: &[Vec<f64>], n_classes: usize) -> Result<f64> {
    let flat: Vec<f64> = probabilities.concat();
    if n_classes == 2 {
        let positive: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
        let scores: Vec<f64> = probabilities.iter().map(|p| p[1]).collect();
        roc_auc(&positive, &scores)
    } else {
        Ok(roc_auc_ovr(labels, &flat, n_classes)?.macro_average)
    }
}

/// Runs the protocol for one model on `dataset`. `progress(repeat, epoch_record)` sees every
/// epoch.
///
/// # Errors
/// Split errors (a class with too few samples), model-building and training errors.
pub fn evaluate(
    dataset: &Dataset,
    build: &ModelBuilder<'_>,
    protocol: &Protocol,
    mut progress: impl FnMut(usize, &EpochRecord),
) -> Result<ModelResult> {
    let spec = FusionSpec {
        modality_dims: dataset
            .modalities()
            .iter()
            .map(|m| m.n_features())
            .collect(),
        n_classes: dataset.n_classes(),
        hidden: protocol.hidden,
    };
    let few_shot = FewShot::new(protocol.k).with_val_per_class(protocol.val_per_class);
    let mut runs = Vec::with_capacity(protocol.repeats);
    let mut name = String::new();
    for repeat in 0..protocol.repeats {
        let split = few_shot.split_dataset(dataset, derive_seed(protocol.seed, repeat as u64))?;
        let scaled = Standardizer::fit(dataset, &split.train)?.apply(dataset)?;
        let rows: Vec<(Vec<f64>, usize)> = scaled
            .modalities()
            .iter()
            .map(|m| (m.values().to_vec(), m.n_features()))
            .collect();
        let labels: Vec<u32> = scaled.labels().iter().map(|&l| l as u32).collect();
        let data = TensorData::from_rows(&rows, labels)?;
        let (varmap, vb) = new_varmap();
        let model = build(&spec, vb).map_err(|e| Error::Training {
            message: e.to_string(),
        })?;
        name = model.name();
        seeded_init(&varmap, derive_seed(protocol.seed, 1000 + repeat as u64)).map_err(|e| {
            Error::Training {
                message: e.to_string(),
            }
        })?;
        let config = TrainConfig {
            seed: derive_seed(protocol.seed, 2000 + repeat as u64),
            ..protocol.train.clone()
        };
        let outcome = train(model.as_ref(), &varmap, &data, &split, &config, |r| {
            progress(repeat, r)
        })?;
        let test_labels: Vec<usize> = outcome.test_labels.iter().map(|&l| l as usize).collect();
        let predicted = argmax_rows(&outcome.test_probabilities.concat(), spec.n_classes)?;
        runs.push(RunRecord {
            repeat,
            auc: auc_of(&test_labels, &outcome.test_probabilities, spec.n_classes)?,
            accuracy: accuracy(&test_labels, &predicted)?,
            n_parameters: outcome.n_parameters,
            seconds: outcome.seconds,
            best_epoch: outcome.best_epoch,
            curve: outcome.curve,
        });
    }
    let pick = |f: fn(&RunRecord) -> f64| -> Result<MeanStd> {
        mean_std(&runs.iter().map(f).collect::<Vec<_>>())
    };
    Ok(ModelResult {
        name,
        auc: pick(|r| r.auc)?,
        accuracy: pick(|r| r.accuracy)?,
        seconds: pick(|r| r.seconds)?,
        n_parameters: runs.first().map_or(0, |r| r.n_parameters),
        runs,
    })
}

/// A markdown table: model, ROC AUC mean +- std, accuracy, parameters, training time.
pub fn markdown_table(results: &[ModelResult]) -> String {
    let mut out = String::from(
        "| model | ROC AUC | accuracy | parameters | train time (s) |\n|---|---|---|---|---|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {:.3} ± {:.3} | {:.3} ± {:.3} | {} | {:.2} ± {:.2} |\n",
            r.name,
            r.auc.mean,
            r.auc.std,
            r.accuracy.mean,
            r.accuracy.std,
            r.n_parameters,
            r.seconds.mean,
            r.seconds.std
        ));
    }
    out
}
