//! The classical side of multimodal fusion, on candle (f64, CPU): the [`FusionModel`]
//! interface every model implements (the quantum fusion layer and the classical baselines),
//! per-modality MLP encoders, and seeded parameter initialization.
//!
//! Models are built from a [`candle_nn::VarBuilder`] over a [`candle_nn::VarMap`] the
//! trainer owns; [`seeded_init`] then overwrites every parameter from a seed (candle's CPU
//! device cannot be seeded), so a run is reproducible bit for bit.
//!
//! Parameter naming convention, which [`seeded_init`] relies on: names ending in `bias` are
//! initialized to zero, names ending in `theta` (quantum rotation angles) uniformly in
//! `[-pi, pi)`, and every other tensor uniformly in `[-1/sqrt(f), 1/sqrt(f))` with `f` its
//! last dimension (the fan-in of a candle `Linear` weight `[out, in]`).
//!
//! The classical baselines (early and late fusion, TFN, LMF, MFB, GCN) are in [`baselines`].

pub mod baselines;

pub mod quantum;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// What every fusion model sees of the data.
#[derive(Clone, Debug, PartialEq)]
pub struct FusionSpec {
    /// Feature count of each modality.
    pub modality_dims: Vec<usize>,
    /// Number of classes (the width of the logits).
    pub n_classes: usize,
    /// Hidden width of each modality's encoder MLP (0: no hidden layer).
    pub hidden: usize,
}

impl FusionSpec {
    /// Number of modalities.
    pub fn n_modalities(&self) -> usize {
        self.modality_dims.len()
    }
}

/// A multimodal classifier: one `[batch, features_m]` f64 tensor per modality in, logits
/// `[batch, n_classes]` out. Implemented by the quantum fusion layer and every baseline.
pub trait FusionModel: Send + Sync {
    /// Logits for a batch.
    ///
    /// # Errors
    /// candle errors (shape mismatches), and simulator errors wrapped as candle errors.
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor>;

    /// A short name for tables, with its main setting (`"LMF (r=4)"`).
    fn name(&self) -> String;
}

/// An MLP encoder: `Linear -> ReLU -> ... -> Linear` (no activation after the last layer).
#[derive(Clone, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// An MLP through the widths `dims` (`dims[0]` inputs, `dims.last()` outputs), with
    /// parameters under `vb` as `l0.weight`, `l0.bias`, `l1.weight`, ...
    ///
    /// # Errors
    /// candle errors.
    pub fn new(dims: &[usize], vb: VarBuilder) -> candle_core::Result<Self> {
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| candle_nn::linear(w[0], w[1], vb.pp(format!("l{i}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Mlp { layers })
    }

    /// The encoder widths for `spec`: `[input, hidden, out]`, or `[input, out]` without a
    /// hidden layer.
    pub fn widths(input: usize, hidden: usize, out: usize) -> Vec<usize> {
        if hidden == 0 {
            vec![input, out]
        } else {
            vec![input, hidden, out]
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// A fresh parameter store and a builder over it (f64, CPU).
pub fn new_varmap() -> (VarMap, VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    (varmap, vb)
}

/// Number of trainable scalars in a parameter store.
pub fn count_parameters(varmap: &VarMap) -> usize {
    varmap.all_vars().iter().map(|v| v.elem_count()).sum()
}

/// Overwrites every parameter from `seed`, in name order, following the naming convention
/// of the module docs. Deterministic across runs and platforms.
///
/// # Errors
/// candle errors.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> candle_core::Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("parameter store lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let count = shape.elem_count();
        let values: Vec<f64> = if name.ends_with("bias") {
            vec![0.0; count]
        } else if name.ends_with("theta") {
            (0..count)
                .map(|_| std::f64::consts::PI * (2.0 * rng.random::<f64>() - 1.0))
                .collect()
        } else {
            let fan_in = shape.dims().last().copied().unwrap_or(1).max(1) as f64;
            let bound = 1.0 / fan_in.sqrt();
            (0..count)
                .map(|_| bound * (2.0 * rng.random::<f64>() - 1.0))
                .collect()
        };
        var.set(&Tensor::from_vec(values, shape, &Device::Cpu)?)?;
    }
    Ok(())
}
