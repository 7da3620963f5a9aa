//! The quantum fusion layer inside candle's graph, and the QFL fusion model.
//!
//! [`QflOp`] is a candle custom op: `angles [batch, M D]` and `theta [n_params]` in,
//! `outputs [batch, n_outputs]` out. Its forward runs the [`QflLayer`] on every sample (in
//! parallel over the batch with rayon, each simulation on one thread); its backward calls
//! the layer's adjoint vector-Jacobian product, so gradients reach both the encoders (through
//! the angles) and the circuit parameters. Any candle model can use it via
//! [`QflOp::apply`].
//!
//! [`QflFusion`] is the full model of the paper as made concrete in `docs/theory.md`: one MLP
//! encoder per modality to `D` angles bounded by `pi tanh`, the QFL, and a linear head.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{CpuStorage, CustomOp2, Layout, Module, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rayon::prelude::*;

use super::{FusionModel, FusionSpec, Mlp};
use crate::qfl::{Backend, QflConfig, QflLayer};

/// How the layer's outputs are read in the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadoutMode {
    /// Exact expectation values.
    Exact,
    /// Randomized measurements with `shots` shots per sample; shot seeds derive from `seed`,
    /// the call count and the sample index, so a training run is reproducible.
    Shadows {
        /// Shots per sample.
        shots: usize,
        /// Base seed.
        seed: u64,
    },
}

/// SplitMix64 of `(a, b, c)`: independent, reproducible per-task seeds.
fn derive_seed(a: u64, b: u64, c: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The quantum fusion layer as a candle op (see the module docs).
#[derive(Clone, Debug)]
pub struct QflOp {
    layer: Arc<QflLayer>,
    backend: Backend,
    readout: ReadoutMode,
    calls: Arc<AtomicU64>,
}

fn f64_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f64]> {
    let CpuStorage::F64(data) = s else {
        return Err(candle_core::Error::Msg(format!(
            "QFL op: {what} must be f64"
        )));
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::Msg(format!(
            "QFL op: {what} must be contiguous"
        ))),
    }
}

fn to_candle(e: crate::Error) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl QflOp {
    /// An op running `layer` on `backend` with the given readout.
    pub fn new(layer: Arc<QflLayer>, backend: Backend, readout: ReadoutMode) -> Self {
        QflOp {
            layer,
            backend,
            readout,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The layer.
    pub fn layer(&self) -> &QflLayer {
        &self.layer
    }

    /// `outputs [batch, n_outputs]` from `angles [batch, n_inputs]` and `theta [n_params]`.
    ///
    /// # Errors
    /// Shape or dtype mismatches, and simulator errors, as candle errors.
    pub fn apply(&self, angles: &Tensor, theta: &Tensor) -> candle_core::Result<Tensor> {
        let (_, n_in) = angles.dims2()?;
        if n_in != self.layer.n_inputs() || theta.dims1()? != self.layer.n_params() {
            return Err(candle_core::Error::Msg(format!(
                "QFL op: expected angles [batch, {}] and theta [{}], got {:?} and {:?}",
                self.layer.n_inputs(),
                self.layer.n_params(),
                angles.dims(),
                theta.dims()
            )));
        }
        angles
            .contiguous()?
            .apply_op2(&theta.contiguous()?, self.clone())
    }
}

impl CustomOp2 for QflOp {
    fn name(&self) -> &'static str {
        "quantum-fusion-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let angles = f64_slice(s1, l1, "angles")?;
        let theta = f64_slice(s2, l2, "theta")?;
        let (n_in, n_out) = (self.layer.n_inputs(), self.layer.n_outputs());
        let batch = angles.len() / n_in.max(1);
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let rows: Vec<Vec<f64>> = (0..batch)
            .into_par_iter()
            .map(|b| {
                let a = &angles[b * n_in..(b + 1) * n_in];
                match self.readout {
                    ReadoutMode::Exact => self.layer.forward(self.backend, a, theta),
                    ReadoutMode::Shadows { shots, seed } => {
                        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, call, b as u64));
                        self.layer
                            .forward_shadows(self.backend, a, theta, shots, &mut rng)
                    }
                }
            })
            .collect::<crate::Result<_>>()
            .map_err(to_candle)?;
        Ok((CpuStorage::F64(rows.concat()), Shape::from((batch, n_out))))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let angles = arg1.to_vec2::<f64>()?;
        let theta = arg2.to_vec1::<f64>()?;
        let grads = grad_res.to_vec2::<f64>()?;
        let per_sample: Vec<(Vec<f64>, Vec<f64>)> = angles
            .par_iter()
            .zip(grads.par_iter())
            .map(|(a, g)| self.layer.backward(self.backend, a, &theta, g))
            .collect::<crate::Result<_>>()
            .map_err(to_candle)?;
        let mut d_theta = vec![0.0; theta.len()];
        let mut d_angles = Vec::with_capacity(angles.len() * self.layer.n_inputs());
        for (da, dt) in &per_sample {
            d_angles.extend_from_slice(da);
            d_theta.iter_mut().zip(dt).for_each(|(acc, v)| *acc += v);
        }
        let device = arg1.device();
        Ok((
            Some(Tensor::from_vec(d_angles, arg1.shape(), device)?),
            Some(Tensor::from_vec(d_theta, arg2.shape(), device)?),
        ))
    }
}

/// Settings of the QFL fusion model.
#[derive(Clone, Debug, PartialEq)]
pub struct QflSettings {
    /// The layer (its `M` must equal the number of modalities).
    pub layer: QflConfig,
    /// Simulator.
    pub backend: Backend,
    /// Exact or randomized readout.
    pub readout: ReadoutMode,
}

/// Encoders -> `pi tanh` angles -> quantum fusion layer -> linear head.
///
/// Parameters: the encoders (`sum_m` MLP sizes from `dim_m` through `hidden` to `D`), the
/// layer's `n_params` angles (named `qfl.theta`), and the head `n_outputs * n_classes +
/// n_classes`.
#[derive(Debug)]
pub struct QflFusion {
    encoders: Vec<Mlp>,
    theta: Tensor,
    op: QflOp,
    head: Linear,
}

impl QflFusion {
    /// Builds the model under `vb`.
    ///
    /// # Errors
    /// A candle error if the layer's modality count differs from `spec`'s or its settings are
    /// invalid.
    pub fn new(
        spec: &FusionSpec,
        settings: &QflSettings,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if settings.layer.n_modalities() != spec.n_modalities() {
            return Err(candle_core::Error::Msg(format!(
                "QFL layer has {} modalities but the data has {}",
                settings.layer.n_modalities(),
                spec.n_modalities()
            )));
        }
        let layer = Arc::new(QflLayer::new(settings.layer.clone()).map_err(to_candle)?);
        let d = settings.layer.qubits_per_modality();
        let encoders = spec
            .modality_dims
            .iter()
            .enumerate()
            .map(|(m, &dim)| {
                Mlp::new(
                    &Mlp::widths(dim, spec.hidden, d),
                    vb.pp(format!("encoder{m}")),
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let theta = vb.pp("qfl").get(layer.n_params(), "theta")?;
        let head = candle_nn::linear(layer.n_outputs(), spec.n_classes, vb.pp("head"))?;
        Ok(QflFusion {
            encoders,
            theta,
            op: QflOp::new(layer, settings.backend, settings.readout),
            head,
        })
    }

    /// The quantum layer.
    pub fn layer(&self) -> &QflLayer {
        self.op.layer()
    }

    /// The layer's outputs `[batch, n_outputs]` (before the head), for inspection.
    ///
    /// # Errors
    /// As [`FusionModel::forward`].
    pub fn quantum_features(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        if modalities.len() != self.encoders.len() {
            return Err(candle_core::Error::Msg(format!(
                "expected {} modalities, got {}",
                self.encoders.len(),
                modalities.len()
            )));
        }
        let angles = modalities
            .iter()
            .zip(&self.encoders)
            .map(|(x, enc)| enc.forward(x)?.tanh()? * std::f64::consts::PI)
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.op.apply(&Tensor::cat(&angles, 1)?, &self.theta)
    }
}

impl FusionModel for QflFusion {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        self.head.forward(&self.quantum_features(modalities)?)
    }

    fn name(&self) -> String {
        let c = self.layer().config();
        format!("QFL (D={}, P={})", c.qubits_per_modality(), c.repeats())
    }
}
