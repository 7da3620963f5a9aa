//! Training any [`FusionModel`]: Adam, cross-entropy, seeded mini-batches, early stopping
//! on the validation loss (restoring the best parameters), and the training curve.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::data::Split;
use crate::error::{Error, Result};
use crate::fusion::{FusionModel, count_parameters};

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Most epochs.
    pub epochs: usize,
    /// Mini-batch size (the whole training set if larger).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Epochs without a better validation loss before stopping (0: never stop early).
    pub patience: usize,
    /// Seed of the mini-batch order.
    pub seed: u64,
}

impl Default for TrainConfig {
    /// 200 epochs, batches of 32, learning rate 0.01, patience 20, seed 0.
    fn default() -> Self {
        TrainConfig {
            epochs: 200,
            batch_size: 32,
            learning_rate: 0.01,
            patience: 20,
            seed: 0,
        }
    }
}

/// A data set as tensors: one `[n_samples, features_m]` f64 tensor per modality, and labels.
#[derive(Clone, Debug)]
pub struct TensorData {
    /// One tensor per modality.
    pub modalities: Vec<Tensor>,
    /// Labels in `0..n_classes`.
    pub labels: Vec<u32>,
}

impl TensorData {
    /// Builds tensors from row-major feature matrices.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if a matrix's length is not `n_samples * n_features`.
    pub fn from_rows(modalities: &[(Vec<f64>, usize)], labels: Vec<u32>) -> Result<Self> {
        let n = labels.len();
        let tensors = modalities
            .iter()
            .enumerate()
            .map(|(m, (values, dim))| {
                if values.len() != n * dim {
                    return Err(Error::InvalidSetting {
                        name: "modality values",
                        value: format!(
                            "modality {m}: {} values for {n} samples x {dim} features",
                            values.len()
                        ),
                        reason: "must be n_samples * n_features, row-major",
                    });
                }
                Tensor::from_vec(values.clone(), (n, *dim), &Device::Cpu).map_err(candle_error)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TensorData {
            modalities: tensors,
            labels,
        })
    }

    fn select(&self, rows: &[usize]) -> Result<(Vec<Tensor>, Tensor)> {
        let idx = Tensor::from_vec(
            rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
            rows.len(),
            &Device::Cpu,
        )
        .map_err(candle_error)?;
        let xs = self
            .modalities
            .iter()
            .map(|t| t.index_select(&idx, 0))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(candle_error)?;
        let ys: Vec<u32> = rows.iter().map(|&r| self.labels[r]).collect();
        Ok((
            xs,
            Tensor::from_vec(ys, rows.len(), &Device::Cpu).map_err(candle_error)?,
        ))
    }
}

/// One epoch of the training curve.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches.
    pub train_loss: f64,
    /// Validation loss after the epoch (NaN without a validation set).
    pub val_loss: f64,
}

/// What training produced.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The training curve.
    pub curve: Vec<EpochRecord>,
    /// The epoch whose parameters were kept (best validation loss).
    pub best_epoch: usize,
    /// Class probabilities `[n_test][n_classes]` on the test rows, with the kept parameters.
    pub test_probabilities: Vec<Vec<f64>>,
    /// Labels of the test rows.
    pub test_labels: Vec<u32>,
    /// Trainable scalars.
    pub n_parameters: usize,
    /// Wall time of training, in seconds.
    pub seconds: f64,
}

fn candle_error(e: candle_core::Error) -> Error {
    Error::Training {
        message: e.to_string(),
    }
}

fn snapshot(varmap: &VarMap) -> Result<Vec<(String, Tensor)>> {
    let data = varmap.data().lock().map_err(|_| Error::InvalidSetting {
        name: "varmap",
        value: "poisoned".into(),
        reason: "the parameter store lock was poisoned",
    })?;
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy().map_err(candle_error)?)))
        .collect()
}

fn restore(varmap: &VarMap, saved: &[(String, Tensor)]) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::InvalidSetting {
        name: "varmap",
        value: "poisoned".into(),
        reason: "the parameter store lock was poisoned",
    })?;
    for (k, t) in saved {
        if let Some(v) = data.get(k) {
            v.set(t).map_err(candle_error)?;
        }
    }
    Ok(())
}

/// Rows per forward pass when evaluating (bounds memory for wide models such as TFN).
const EVAL_CHUNK: usize = 64;

fn mean_loss(model: &dyn FusionModel, data: &TensorData, rows: &[usize]) -> Result<f64> {
    if rows.is_empty() {
        return Ok(f64::NAN);
    }
    let mut total = 0.0;
    for chunk in rows.chunks(EVAL_CHUNK) {
        let (xs, ys) = data.select(chunk)?;
        let logits = model.forward(&xs).map_err(candle_error)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &ys)
            .and_then(|l| l.to_scalar::<f64>())
            .map_err(candle_error)?;
        total += loss * chunk.len() as f64;
    }
    Ok(total / rows.len() as f64)
}

/// Class probabilities of `rows`, in chunks.
fn probabilities(
    model: &dyn FusionModel,
    data: &TensorData,
    rows: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(EVAL_CHUNK) {
        let (xs, _) = data.select(chunk)?;
        let p = candle_nn::ops::softmax(&model.forward(&xs).map_err(candle_error)?, 1)
            .and_then(|p| p.to_vec2::<f64>())
            .map_err(candle_error)?;
        out.extend(p);
    }
    Ok(out)
}

/// Trains `model` (whose parameters live in `varmap`) on the split's training rows, stopping
/// early on the validation rows' loss (an empty validation set keeps the last epoch), and scores the test rows with the best parameters.
/// `on_epoch` sees every epoch's record as it happens (for progress bars).
///
/// # Errors
/// [`Error::InvalidSetting`] for an empty training set or zero batch size;
/// [`Error::NonFinite`] if the loss becomes NaN; [`Error::Training`] if candle fails.
pub fn train(
    model: &dyn FusionModel,
    varmap: &VarMap,
    data: &TensorData,
    split: &Split,
    config: &TrainConfig,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> Result<TrainOutcome> {
    let (train_rows, val_rows, test_rows) = (&split.train[..], &split.val[..], &split.test[..]);
    if train_rows.is_empty() || config.batch_size == 0 {
        return Err(Error::InvalidSetting {
            name: "training set / batch size",
            value: format!("{} rows, batch {}", train_rows.len(), config.batch_size),
            reason: "needs at least one training row and a positive batch size",
        });
    }
    let start = Instant::now();
    let params = ParamsAdamW {
        lr: config.learning_rate,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = AdamW::new(varmap.all_vars(), params).map_err(candle_error)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = train_rows.to_vec();
    let mut curve = Vec::new();
    let mut best = (f64::INFINITY, 0usize, snapshot(varmap)?);
    for epoch in 1..=config.epochs {
        // Fisher-Yates with the seeded generator.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(config.batch_size) {
            let (xs, ys) = data.select(chunk)?;
            let logits = model.forward(&xs).map_err(candle_error)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &ys).map_err(candle_error)?;
            let value = loss.to_scalar::<f64>().map_err(candle_error)?;
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    context: format!("training loss at epoch {epoch}"),
                });
            }
            opt.backward_step(&loss).map_err(candle_error)?;
            total += value;
            batches += 1;
        }
        let record = EpochRecord {
            epoch,
            train_loss: total / batches as f64,
            val_loss: mean_loss(model, data, val_rows)?,
        };
        on_epoch(&record);
        // Without a validation set, the last epoch is kept.
        let score = if record.val_loss.is_nan() {
            -(epoch as f64)
        } else {
            record.val_loss
        };
        if score < best.0 {
            best = (score, epoch, snapshot(varmap)?);
        }
        curve.push(record);
        if config.patience > 0 && epoch - best.1 >= config.patience {
            break;
        }
    }
    restore(varmap, &best.2)?;
    let test_probabilities = probabilities(model, data, test_rows)?;
    Ok(TrainOutcome {
        curve,
        best_epoch: best.1,
        test_probabilities,
        test_labels: test_rows.iter().map(|&r| data.labels[r]).collect(),
        n_parameters: count_parameters(varmap),
        seconds: start.elapsed().as_secs_f64(),
    })
}
