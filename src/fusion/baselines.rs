//! The classical fusion baselines the quantum fusion layer is compared with: early and late
//! fusion, tensor fusion ([`Tfn`]), low-rank tensor fusion ([`Lmf`]), factorized bilinear
//! pooling ([`Mfb`]) and a graph convolutional network over the modalities ([`Gcn`]).
//!
//! Notation used in every parameter-count formula below: `M` modalities of widths `d_m`,
//! `C = spec.n_classes`, `h = spec.hidden`, `e` the embedding size (a setting of each model),
//! and `P_enc(d, e)` the parameter count of one encoder [`Mlp`] with widths
//! [`Mlp::widths(d, h, e)`](Mlp::widths):
//!
//! ```text
//! P_enc(d, e) = d*h + h + h*e + e     (h > 0)
//! P_enc(d, e) = d*e + e               (h = 0)
//! ```
//!
//! Every model except [`EarlyFusion`] encodes modality `m` with its own encoder `z_m =
//! Mlp_m(x_m)` (no activation on `z_m`), stored under `enc{m}`. All parameter names follow
//! the naming convention of [`seeded_init`](super::seeded_init); where a weight's last
//! dimension is not its fan-in this is said in the model's docs.
//! [`ModelKind::parameter_count`] evaluates the formulas.
//!
//! Settings are checked when a model is built (zero sizes, a TFN product over
//! [`TFN_MAX_FUSED`], graph edges naming missing modalities); the errors are
//! [`Error::InvalidSetting`] wrapped as candle errors.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use qfl::fusion::baselines::{ModelKind, build_baseline};
//! use qfl::fusion::{FusionSpec, count_parameters, new_varmap, seeded_init};
//! # fn main() -> candle_core::Result<()> {
//! let spec = FusionSpec { modality_dims: vec![5, 3], n_classes: 3, hidden: 8 };
//! let kind = ModelKind::Lmf { embed: 4, rank: 2 };
//! let (varmap, vb) = new_varmap();
//! let model = build_baseline(&kind, &spec, vb)?;
//! seeded_init(&varmap, 7)?;
//! assert_eq!(count_parameters(&varmap), kind.parameter_count(&spec)); // 217
//! let x = [Tensor::ones((2, 5), candle_core::DType::F64, &Device::Cpu)?,
//!          Tensor::zeros((2, 3), candle_core::DType::F64, &Device::Cpu)?];
//! assert_eq!(model.forward(&x)?.dims(), [2, 3]);
//! assert_eq!(model.name(), "LMF (r=2, e=4)");
//! # Ok(()) }
//! ```

use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::{FusionModel, FusionSpec, Mlp};
use crate::Error;

/// Largest fused size `prod_m (e_m + 1)` a [`Tfn`] accepts (2^20). The fused vector of one
/// sample and the head weight (`n_classes` times it) grow exponentially in the number of
/// modalities; past this size [`Tfn::new`] returns an error instead of allocating.
pub const TFN_MAX_FUSED: usize = 1 << 20;

/// Offset inside the smoothed signed square root of [`Mfb`] (see there).
const MFB_SQRT_EPS: f64 = 1e-12;
/// Offset inside the L2 norm of [`Mfb`], so a zero vector maps to zero instead of NaN.
const MFB_NORM_EPS: f64 = 1e-12;

/// Which baseline to build, with its settings. The quantum fusion layer will be added here as
/// another variant, hence `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ModelKind {
    /// [`EarlyFusion`]: raw features concatenated, one MLP.
    Early {
        /// Width of the last hidden layer before the classifier head.
        embed: usize,
    },
    /// [`LateFusion`]: one classifier per modality, logits averaged.
    Late {
        /// Embedding size of each modality's classifier.
        embed: usize,
    },
    /// [`Tfn`]: tensor fusion (outer product of the embeddings with a 1 appended).
    Tfn {
        /// Embedding size of each modality.
        embed: usize,
    },
    /// [`Lmf`]: low-rank multimodal fusion.
    Lmf {
        /// Embedding size of each modality.
        embed: usize,
        /// Rank `r` of the fusion tensor's decomposition.
        rank: usize,
    },
    /// [`Mfb`]: multimodal factorized bilinear pooling.
    Mfb {
        /// Embedding size of each modality.
        embed: usize,
        /// Factor `k` (width of each sum-pooling window).
        factor: usize,
        /// Output size `o` of the pooled vector.
        out: usize,
    },
    /// [`Gcn`]: a two-layer graph convolutional network whose nodes are the modalities.
    Gcn {
        /// Embedding size of each modality (the node feature size).
        embed: usize,
        /// Width of both GCN layers.
        gcn_hidden: usize,
        /// Undirected edges between modalities; `None` for the complete graph.
        edges: Option<Vec<(usize, usize)>>,
    },
}

impl ModelKind {
    /// The number of trainable scalars the model has on `spec`, from the formulas in each
    /// model's documentation. For a [`Tfn`] whose size overflows `usize` it is `usize::MAX`.
    pub fn parameter_count(&self, spec: &FusionSpec) -> usize {
        let c = spec.n_classes;
        let m = spec.n_modalities();
        let enc = |e: usize| -> usize {
            spec.modality_dims
                .iter()
                .map(|&d| mlp_parameter_count(&Mlp::widths(d, spec.hidden, e)))
                .sum()
        };
        match self {
            ModelKind::Early { embed: e } => {
                let total: usize = spec.modality_dims.iter().sum();
                mlp_parameter_count(&Mlp::widths(total, spec.hidden, *e)) + e * c + c
            }
            ModelKind::Late { embed: e } => enc(*e) + m * (e * c + c),
            ModelKind::Tfn { embed: e } => {
                let fused = (e + 1).checked_pow(m as u32).unwrap_or(usize::MAX);
                enc(*e)
                    .saturating_add(fused.saturating_mul(c))
                    .saturating_add(c)
            }
            ModelKind::Lmf { embed: e, rank: r } => enc(*e) + r * c * m * (e + 1) + r + c,
            ModelKind::Mfb {
                embed: e,
                factor: k,
                out: o,
            } => enc(*e) + m * (e * k * o + k * o) + o * c + c,
            ModelKind::Gcn {
                embed: e,
                gcn_hidden: g,
                ..
            } => enc(*e) + (e * g + g) + (g * g + g) + g * c + c,
        }
    }

    /// A short label for tables (`"LMF (r=4)"`), the same as the built model's
    /// [`FusionModel::name`].
    pub fn label(&self) -> String {
        match self {
            ModelKind::Early { embed } => format!("Early (e={embed})"),
            ModelKind::Late { embed } => format!("Late (e={embed})"),
            ModelKind::Tfn { embed } => format!("TFN (e={embed})"),
            ModelKind::Lmf { embed, rank } => format!("LMF (r={rank}, e={embed})"),
            ModelKind::Mfb { embed, factor, out } => {
                format!("MFB (k={factor}, o={out}, e={embed})")
            }
            ModelKind::Gcn {
                embed,
                gcn_hidden,
                edges,
            } => {
                let graph = if edges.is_some() { "graph" } else { "complete" };
                format!("GCN (e={embed}, g={gcn_hidden}, {graph})")
            }
        }
    }
}

/// Builds the baseline `kind` on `spec` with its parameters under `vb`.
///
/// # Errors
/// Invalid settings (see each model's `new`), candle errors.
pub fn build_baseline(
    kind: &ModelKind,
    spec: &FusionSpec,
    vb: VarBuilder,
) -> candle_core::Result<Box<dyn FusionModel>> {
    Ok(match kind {
        ModelKind::Early { embed } => Box::new(EarlyFusion::new(spec, *embed, vb)?),
        ModelKind::Late { embed } => Box::new(LateFusion::new(spec, *embed, vb)?),
        ModelKind::Tfn { embed } => Box::new(Tfn::new(spec, *embed, vb)?),
        ModelKind::Lmf { embed, rank } => Box::new(Lmf::new(spec, *embed, *rank, vb)?),
        ModelKind::Mfb { embed, factor, out } => {
            Box::new(Mfb::new(spec, *embed, *factor, *out, vb)?)
        }
        ModelKind::Gcn {
            embed,
            gcn_hidden,
            edges,
        } => Box::new(Gcn::new(spec, *embed, *gcn_hidden, edges.as_deref(), vb)?),
    })
}

/// Parameter count of an [`Mlp`] with the given widths (weights and biases).
fn mlp_parameter_count(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

fn invalid(name: &'static str, value: impl ToString, reason: &'static str) -> candle_core::Error {
    candle_core::Error::wrap(Error::InvalidSetting {
        name,
        value: value.to_string(),
        reason,
    })
}

fn check_positive(name: &'static str, value: usize) -> candle_core::Result<()> {
    if value == 0 {
        return Err(invalid(name, value, "must be at least 1"));
    }
    Ok(())
}

fn check_spec(spec: &FusionSpec) -> candle_core::Result<()> {
    if spec.modality_dims.is_empty() {
        return Err(invalid(
            "modality_dims",
            "[]",
            "needs at least one modality",
        ));
    }
    if let Some(d) = spec.modality_dims.iter().find(|&&d| d == 0) {
        return Err(invalid(
            "modality_dims",
            d,
            "every modality needs a feature",
        ));
    }
    check_positive("n_classes", spec.n_classes)
}

/// Checks one `[batch, d_m]` tensor per modality, all with the same batch; returns the batch.
fn check_inputs(modalities: &[Tensor], dims: &[usize]) -> candle_core::Result<usize> {
    if modalities.len() != dims.len() {
        return Err(invalid(
            "number of modality tensors",
            modalities.len(),
            "forward needs exactly one tensor per modality of the FusionSpec",
        ));
    }
    let batch = modalities[0].dims().first().copied().unwrap_or(0);
    for (m, (x, &d)) in modalities.iter().zip(dims).enumerate() {
        if x.dims() != [batch, d] {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("modality {m} input"),
                expected: (batch, d).into(),
                got: x.shape().clone(),
            });
        }
    }
    Ok(batch)
}

/// One encoder per modality, `enc{m}` with widths `Mlp::widths(d_m, hidden, embed)`.
fn encoders(spec: &FusionSpec, embed: usize, vb: &VarBuilder) -> candle_core::Result<Vec<Mlp>> {
    spec.modality_dims
        .iter()
        .enumerate()
        .map(|(m, &d)| {
            Mlp::new(
                &Mlp::widths(d, spec.hidden, embed),
                vb.pp(format!("enc{m}")),
            )
        })
        .collect()
}

fn encode(encoders: &[Mlp], modalities: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
    encoders
        .iter()
        .zip(modalities)
        .map(|(enc, x)| enc.forward(x))
        .collect()
}

/// `[z, 1]`: a column of ones appended to a `[batch, e]` tensor.
fn append_one(z: &Tensor) -> candle_core::Result<Tensor> {
    let ones = Tensor::ones((z.dim(0)?, 1), z.dtype(), z.device())?;
    Tensor::cat(&[z, &ones], 1)
}

/// Early fusion: the raw features of all modalities concatenated, then one MLP.
///
/// ```text
/// x = [x_1, ..., x_M]                 (width D = sum_m d_m)
/// logits = head(ReLU(Mlp(x)))         Mlp widths Mlp::widths(D, h, e), head: e -> C
/// ```
///
/// Parameters (`enc`, `head`): `P_enc(D, e) + e*C + C`.
#[derive(Clone, Debug)]
pub struct EarlyFusion {
    dims: Vec<usize>,
    embed: usize,
    encoder: Mlp,
    head: Linear,
}

impl EarlyFusion {
    /// Builds the model with last hidden width `embed`.
    ///
    /// # Errors
    /// An empty spec, a zero width or class count, candle errors.
    pub fn new(spec: &FusionSpec, embed: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        let total = spec.modality_dims.iter().sum();
        let encoder = Mlp::new(&Mlp::widths(total, spec.hidden, embed), vb.pp("enc"))?;
        let head = candle_nn::linear(embed, spec.n_classes, vb.pp("head"))?;
        Ok(EarlyFusion {
            dims: spec.modality_dims.clone(),
            embed,
            encoder,
            head,
        })
    }
}

impl FusionModel for EarlyFusion {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        check_inputs(modalities, &self.dims)?;
        let x = Tensor::cat(modalities, 1)?;
        self.head.forward(&self.encoder.forward(&x)?.relu()?)
    }

    fn name(&self) -> String {
        ModelKind::Early { embed: self.embed }.label()
    }
}

/// Late fusion: one classifier per modality, their logits averaged.
///
/// ```text
/// logits_m = head_m(ReLU(Mlp_m(x_m)))     head_m: e -> C
/// logits   = (1/M) sum_m logits_m
/// ```
///
/// Parameters (`enc{m}`, `head{m}`): `sum_m P_enc(d_m, e) + M*(e*C + C)`.
#[derive(Clone, Debug)]
pub struct LateFusion {
    dims: Vec<usize>,
    embed: usize,
    encoders: Vec<Mlp>,
    heads: Vec<Linear>,
}

impl LateFusion {
    /// Builds the model with per-modality embedding size `embed`.
    ///
    /// # Errors
    /// An empty spec, a zero width or class count, candle errors.
    pub fn new(spec: &FusionSpec, embed: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        let encoders = encoders(spec, embed, &vb)?;
        let heads = (0..spec.n_modalities())
            .map(|m| candle_nn::linear(embed, spec.n_classes, vb.pp(format!("head{m}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(LateFusion {
            dims: spec.modality_dims.clone(),
            embed,
            encoders,
            heads,
        })
    }
}

impl FusionModel for LateFusion {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        check_inputs(modalities, &self.dims)?;
        let logits = encode(&self.encoders, modalities)?
            .iter()
            .zip(&self.heads)
            .map(|(z, head)| head.forward(&z.relu()?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::stack(&logits, 0)?.mean(0)
    }

    fn name(&self) -> String {
        ModelKind::Late { embed: self.embed }.label()
    }
}

/// Tensor Fusion Network (Zadeh et al., EMNLP 2017): the outer product of all embeddings, each
/// with a 1 appended, so the fused vector holds every unimodal, bimodal, ..., M-modal product
/// of embedding entries.
///
/// ```text
/// z_m = Mlp_m(x_m)                                   (width e)
/// f   = vec([z_1, 1] (x) [z_2, 1] (x) ... (x) [z_M, 1])   (width (e+1)^M)
/// logits = head(f)                                   head: (e+1)^M -> C
/// ```
///
/// The paper follows the fusion with fully connected layers; here a single linear head, so
/// the fusion itself carries the nonlinearity. The embeddings have no activation.
///
/// Parameters (`enc{m}`, `head`): `sum_m P_enc(d_m, e) + (e+1)^M * C + C`.
///
/// The fused width is exponential in `M`; [`Tfn::new`] refuses `(e+1)^M >` [`TFN_MAX_FUSED`].
#[derive(Clone, Debug)]
pub struct Tfn {
    dims: Vec<usize>,
    embed: usize,
    encoders: Vec<Mlp>,
    head: Linear,
}

impl Tfn {
    /// Builds the model with per-modality embedding size `embed`.
    ///
    /// # Errors
    /// `(embed + 1)^M >` [`TFN_MAX_FUSED`]; an empty spec, a zero width or class count;
    /// candle errors.
    pub fn new(spec: &FusionSpec, embed: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        let fused = u32::try_from(spec.n_modalities())
            .ok()
            .and_then(|m| (embed + 1).checked_pow(m))
            .filter(|&f| f <= TFN_MAX_FUSED)
            .ok_or_else(|| {
                invalid(
                    "TFN fused size (embed + 1)^n_modalities",
                    format!("({embed} + 1)^{}", spec.n_modalities()),
                    "exceeds TFN_MAX_FUSED = 2^20; use LMF, or a smaller embedding",
                )
            })?;
        let encoders = encoders(spec, embed, &vb)?;
        let head = candle_nn::linear(fused, spec.n_classes, vb.pp("head"))?;
        Ok(Tfn {
            dims: spec.modality_dims.clone(),
            embed,
            encoders,
            head,
        })
    }
}

impl FusionModel for Tfn {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        let batch = check_inputs(modalities, &self.dims)?;
        let z = encode(&self.encoders, modalities)?;
        let mut fused = append_one(&z[0])?;
        for zm in &z[1..] {
            let zm = append_one(zm)?;
            let width = fused.dim(1)? * zm.dim(1)?;
            // [B, a, 1] * [B, 1, b] -> [B, a, b], row-major flattening as in vec(.).
            fused = fused
                .unsqueeze(2)?
                .broadcast_mul(&zm.unsqueeze(1)?)?
                .reshape((batch, width))?;
        }
        self.head.forward(&fused)
    }

    fn name(&self) -> String {
        ModelKind::Tfn { embed: self.embed }.label()
    }
}

/// Low-rank Multimodal Fusion (Liu et al., ACL 2018): the TFN weight tensor decomposed into
/// `r` rank-one terms, so the cost is linear in `M`.
///
/// ```text
/// z_m = Mlp_m(x_m)                                    (width e)
/// g_m^(i) = W_m^(i) [z_m, 1]        W_m^(i): [C, e+1], i = 1..r
/// logits  = sum_i w_i * (g_1^(i) * g_2^(i) * ... * g_M^(i)) + b    (* elementwise)
/// ```
///
/// This is the authors' implementation of the paper's equation (the rank-one terms mixed by
/// learned weights `w` of length `r` plus a bias `b`), with the fused output width equal to
/// the class count, so the fusion output is the logits.
///
/// Parameters (`enc{m}`, `factor{m}.weight` `[r, C, e+1]`, `fusion.weight` `[1, r]`,
/// `fusion.bias` `[C]`): `sum_m P_enc(d_m, e) + r*C*M*(e+1) + r + C`. The factors are stored
/// with the fan-in `e+1` last, so [`seeded_init`](super::seeded_init) draws them from
/// `U(+-1/sqrt(e+1))`; the mixing weights from `U(+-1/sqrt(r))`.
#[derive(Clone, Debug)]
pub struct Lmf {
    dims: Vec<usize>,
    embed: usize,
    rank: usize,
    n_classes: usize,
    encoders: Vec<Mlp>,
    /// Per modality, `[r * C, e + 1]` (the `[r, C, e+1]` parameter reshaped).
    factors: Vec<Tensor>,
    /// `[1, r, 1]`, broadcast over batch and classes.
    rank_weight: Tensor,
    bias: Tensor,
}

impl Lmf {
    /// Builds the model with per-modality embedding size `embed` and rank `rank`.
    ///
    /// # Errors
    /// An empty spec, a zero width, rank or class count, candle errors.
    pub fn new(
        spec: &FusionSpec,
        embed: usize,
        rank: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        check_positive("rank", rank)?;
        let c = spec.n_classes;
        let encoders = encoders(spec, embed, &vb)?;
        let factors = (0..spec.n_modalities())
            .map(|m| {
                vb.pp(format!("factor{m}"))
                    .get((rank, c, embed + 1), "weight")?
                    .reshape((rank * c, embed + 1))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let fusion = vb.pp("fusion");
        let rank_weight = fusion.get((1, rank), "weight")?.reshape((1, rank, 1))?;
        let bias = fusion.get(c, "bias")?;
        Ok(Lmf {
            dims: spec.modality_dims.clone(),
            embed,
            rank,
            n_classes: c,
            encoders,
            factors,
            rank_weight,
            bias,
        })
    }
}

impl FusionModel for Lmf {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        let batch = check_inputs(modalities, &self.dims)?;
        let z = encode(&self.encoders, modalities)?;
        let mut product: Option<Tensor> = None;
        for (zm, factor) in z.iter().zip(&self.factors) {
            // [B, e+1] x [e+1, r*C] -> [B, r, C]
            let g = append_one(zm)?.matmul(&factor.t()?)?.reshape((
                batch,
                self.rank,
                self.n_classes,
            ))?;
            product = Some(match product {
                None => g,
                Some(p) => (p * g)?,
            });
        }
        let product = product.ok_or_else(|| invalid("modality_dims", "[]", "no modality"))?;
        product
            .broadcast_mul(&self.rank_weight)?
            .sum(1)?
            .broadcast_add(&self.bias)
    }

    fn name(&self) -> String {
        ModelKind::Lmf {
            embed: self.embed,
            rank: self.rank,
        }
        .label()
    }
}

/// Multimodal Factorized Bilinear pooling (Yu et al., ICCV 2017), extended to `M`
/// modalities.
///
/// ```text
/// z_m = Mlp_m(x_m)                          (width e)
/// p   = P_1 z_1 * P_2 z_2 * ... * P_M z_M   P_m: e -> k*o (with bias), * elementwise
/// s_j = sum_{t<k} p_{j*k + t}               sum pooling over windows of k, j < o
/// s   = signed_sqrt(s);  s = s / ||s||_2    power and L2 normalization
/// logits = head(s)                          head: o -> C
/// ```
///
/// The paper pools two modalities (`U^T x * V^T y`). For `M > 2` this uses the common
/// generalization: one projection per modality and the elementwise product of all `M`
/// projections, so each pooled entry is a sum of `k` rank-one `M`-linear forms (a rank-`k`
/// factorization of an `M`-linear map, as MFB is for the bilinear one). For `M = 1` it is a
/// projection, pooling and normalization of one embedding. The paper's dropout after the
/// product is left out (the trainer decides regularization).
///
/// The signed square root `sign(s) sqrt(|s|)` has an infinite derivative at 0; it is computed
/// as `s / (s^2 + 1e-12)^(1/4)`, equal to it up to relative `1e-12 / s^2` and with a finite
/// gradient everywhere. The L2 norm is `sqrt(sum s^2 + 1e-12)`.
///
/// Parameters (`enc{m}`, `proj{m}`, `head`): `sum_m P_enc(d_m, e) + M*(e*k*o + k*o) + o*C + C`.
#[derive(Clone, Debug)]
pub struct Mfb {
    dims: Vec<usize>,
    embed: usize,
    factor: usize,
    out: usize,
    encoders: Vec<Mlp>,
    projections: Vec<Linear>,
    head: Linear,
}

impl Mfb {
    /// Builds the model with per-modality embedding size `embed`, factor `k = factor` and
    /// pooled size `o = out`.
    ///
    /// # Errors
    /// An empty spec, a zero width, factor, output size or class count, candle errors.
    pub fn new(
        spec: &FusionSpec,
        embed: usize,
        factor: usize,
        out: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        check_positive("factor", factor)?;
        check_positive("out", out)?;
        let encoders = encoders(spec, embed, &vb)?;
        let projections = (0..spec.n_modalities())
            .map(|m| candle_nn::linear(embed, factor * out, vb.pp(format!("proj{m}"))))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let head = candle_nn::linear(out, spec.n_classes, vb.pp("head"))?;
        Ok(Mfb {
            dims: spec.modality_dims.clone(),
            embed,
            factor,
            out,
            encoders,
            projections,
            head,
        })
    }
}

impl FusionModel for Mfb {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        let batch = check_inputs(modalities, &self.dims)?;
        let z = encode(&self.encoders, modalities)?;
        let mut product: Option<Tensor> = None;
        for (zm, proj) in z.iter().zip(&self.projections) {
            let p = proj.forward(zm)?;
            product = Some(match product {
                None => p,
                Some(q) => (q * p)?,
            });
        }
        let product = product.ok_or_else(|| invalid("modality_dims", "[]", "no modality"))?;
        let pooled = product.reshape((batch, self.out, self.factor))?.sum(2)?;
        self.head.forward(&power_l2_normalize(&pooled)?)
    }

    fn name(&self) -> String {
        ModelKind::Mfb {
            embed: self.embed,
            factor: self.factor,
            out: self.out,
        }
        .label()
    }
}

/// MFB's power normalization (smoothed signed square root) then L2 normalization of each
/// row of a `[batch, o]` tensor.
fn power_l2_normalize(pooled: &Tensor) -> candle_core::Result<Tensor> {
    let root = pooled.sqr()?.affine(1.0, MFB_SQRT_EPS)?.sqrt()?.sqrt()?;
    let signed = (pooled / root)?;
    let norm = signed
        .sqr()?
        .sum_keepdim(1)?
        .affine(1.0, MFB_NORM_EPS)?
        .sqrt()?;
    signed.broadcast_div(&norm)
}

/// The symmetrically normalized adjacency with self-loops, `D^-1/2 (A + I) D^-1/2` with `D`
/// the degree matrix of `A + I` (Kipf and Welling, ICLR 2017), of the undirected graph on
/// `n_nodes` nodes with the given `edges` (`None`: the complete graph). Row-major,
/// `n_nodes * n_nodes` entries. An edge listed twice or in both directions counts once.
///
/// # Errors
/// An edge naming a node `>= n_nodes`, an edge from a node to itself (self-loops are always
/// added), `n_nodes == 0`.
pub fn normalized_adjacency(
    n_nodes: usize,
    edges: Option<&[(usize, usize)]>,
) -> candle_core::Result<Vec<f64>> {
    check_positive("number of graph nodes", n_nodes)?;
    let n = n_nodes;
    let mut a = vec![0.0; n * n];
    match edges {
        None => a.iter_mut().for_each(|x| *x = 1.0),
        Some(edges) => {
            for &(i, j) in edges {
                if i >= n || j >= n {
                    return Err(invalid(
                        "GCN edge",
                        format!("({i}, {j})"),
                        "names a modality the spec does not have",
                    ));
                }
                if i == j {
                    return Err(invalid(
                        "GCN edge",
                        format!("({i}, {j})"),
                        "self-loops are added by the model; list only edges between modalities",
                    ));
                }
                a[i * n + j] = 1.0;
                a[j * n + i] = 1.0;
            }
            (0..n).for_each(|i| a[i * n + i] = 1.0);
        }
    }
    let inv_sqrt_deg: Vec<f64> = (0..n)
        .map(|i| 1.0 / a[i * n..(i + 1) * n].iter().sum::<f64>().sqrt())
        .collect();
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] *= inv_sqrt_deg[i] * inv_sqrt_deg[j];
        }
    }
    Ok(a)
}

/// A graph convolutional network (Kipf and Welling, ICLR 2017) over the modalities: each
/// modality is a node whose feature is its embedding.
///
/// ```text
/// H0 = [z_1; ...; z_M]                 (M nodes, width e each)
/// H1 = ReLU(A_hat H0 W1 + b1)          W1: e -> g
/// H2 = ReLU(A_hat H1 W2 + b2)          W2: g -> g
/// logits = head(mean over nodes of H2) head: g -> C
/// ```
///
/// `A_hat` is [`normalized_adjacency`] of the given edges, or of the complete graph when none
/// are given (then every node aggregates the mean of all embeddings). The adjacency is fixed,
/// not learned.
///
/// Parameters (`enc{m}`, `gcn0`, `gcn1`, `head`):
/// `sum_m P_enc(d_m, e) + (e*g + g) + (g*g + g) + g*C + C`.
#[derive(Clone, Debug)]
pub struct Gcn {
    dims: Vec<usize>,
    embed: usize,
    gcn_hidden: usize,
    complete: bool,
    encoders: Vec<Mlp>,
    adjacency: Tensor,
    layers: [Linear; 2],
    head: Linear,
}

impl Gcn {
    /// Builds the model with node feature size `embed`, GCN width `gcn_hidden` and the graph
    /// `edges` between modalities (`None`: complete graph).
    ///
    /// # Errors
    /// Invalid edges (see [`normalized_adjacency`]), an empty spec, a zero width or class
    /// count, candle errors.
    pub fn new(
        spec: &FusionSpec,
        embed: usize,
        gcn_hidden: usize,
        edges: Option<&[(usize, usize)]>,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        check_spec(spec)?;
        check_positive("embed", embed)?;
        check_positive("gcn_hidden", gcn_hidden)?;
        let m = spec.n_modalities();
        let adjacency = Tensor::from_vec(normalized_adjacency(m, edges)?, (m, m), &Device::Cpu)?
            .to_dtype(vb.dtype())?
            .to_device(vb.device())?;
        let encoders = encoders(spec, embed, &vb)?;
        let layers = [
            candle_nn::linear(embed, gcn_hidden, vb.pp("gcn0"))?,
            candle_nn::linear(gcn_hidden, gcn_hidden, vb.pp("gcn1"))?,
        ];
        let head = candle_nn::linear(gcn_hidden, spec.n_classes, vb.pp("head"))?;
        Ok(Gcn {
            dims: spec.modality_dims.clone(),
            embed,
            gcn_hidden,
            complete: edges.is_none(),
            encoders,
            adjacency,
            layers,
            head,
        })
    }

    /// The normalized adjacency `[M, M]` the model aggregates with.
    pub fn adjacency(&self) -> &Tensor {
        &self.adjacency
    }
}

impl FusionModel for Gcn {
    fn forward(&self, modalities: &[Tensor]) -> candle_core::Result<Tensor> {
        check_inputs(modalities, &self.dims)?;
        let z = encode(&self.encoders, modalities)?;
        // [B, M, e]
        let mut h = Tensor::stack(&z, 1)?;
        for layer in &self.layers {
            // A_hat [M, M] applied to each sample's node features [M, width].
            h = layer
                .forward(&self.adjacency.broadcast_matmul(&h)?)?
                .relu()?;
        }
        self.head.forward(&h.mean(1)?)
    }

    fn name(&self) -> String {
        ModelKind::Gcn {
            embed: self.embed,
            gcn_hidden: self.gcn_hidden,
            edges: (!self.complete).then(Vec::new),
        }
        .label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::{new_varmap, seeded_init};

    fn spec3() -> FusionSpec {
        FusionSpec {
            modality_dims: vec![2, 3, 1],
            n_classes: 2,
            hidden: 0,
        }
    }

    fn inputs(spec: &FusionSpec, batch: usize) -> candle_core::Result<Vec<Tensor>> {
        spec.modality_dims
            .iter()
            .enumerate()
            .map(|(m, &d)| {
                let v = (0..batch * d)
                    .map(|i| ((i * 7 + m * 3) % 11) as f64 / 5.0 - 1.0)
                    .collect::<Vec<_>>();
                Tensor::from_vec(v, (batch, d), &Device::Cpu)
            })
            .collect()
    }

    /// `[z_m, 1]` of every modality, as plain rows.
    fn augmented(encoders: &[Mlp], x: &[Tensor]) -> candle_core::Result<Vec<Vec<Vec<f64>>>> {
        encode(encoders, x)?
            .iter()
            .map(|z| {
                let mut rows = z.to_vec2::<f64>()?;
                rows.iter_mut().for_each(|r| r.push(1.0));
                Ok(rows)
            })
            .collect()
    }

    /// Digits of the flat outer-product index `f` in base `e + 1`, modality 0 most significant.
    fn digits(mut f: usize, base: usize, n: usize) -> Vec<usize> {
        let mut d = vec![0; n];
        for m in (0..n).rev() {
            d[m] = f % base;
            f /= base;
        }
        d
    }

    #[test]
    fn fusion_tfn_matches_the_explicit_outer_product() -> candle_core::Result<()> {
        let spec = spec3();
        let e = 2;
        let (varmap, vb) = new_varmap();
        let tfn = Tfn::new(&spec, e, vb)?;
        seeded_init(&varmap, 3)?;
        let x = inputs(&spec, 4)?;
        let u = augmented(&tfn.encoders, &x)?;
        let w = tfn.head.weight().to_vec2::<f64>()?;
        let logits = tfn.forward(&x)?.to_vec2::<f64>()?;
        for b in 0..4 {
            for c in 0..spec.n_classes {
                let expected: f64 = (0..(e + 1).pow(3))
                    .map(|f| {
                        let d = digits(f, e + 1, 3);
                        w[c][f] * (0..3).map(|m| u[m][b][d[m]]).product::<f64>()
                    })
                    .sum();
                assert!((logits[b][c] - expected).abs() < 1e-12);
            }
        }
        Ok(())
    }

    /// LMF is TFN with the weight tensor `W_c = sum_i w_i (x)_m W_m^(i)[c]` (the paper's claim).
    #[test]
    fn fusion_lmf_is_tfn_with_a_low_rank_weight() -> candle_core::Result<()> {
        let spec = spec3();
        let (e, r, n_c) = (2, 3, spec.n_classes);
        let (mut varmap, vb) = new_varmap();
        let lmf = Lmf::new(&spec, e, r, vb)?;
        seeded_init(&varmap, 4)?;
        // The bias is zero after seeded_init; give it values so it is checked too.
        let bias = [0.25, -0.5];
        varmap.set_one("fusion.bias", Tensor::new(&bias, &Device::Cpu)?)?;
        let x = inputs(&spec, 3)?;
        let u = augmented(&lmf.encoders, &x)?;
        let factors: Vec<Vec<Vec<f64>>> = lmf
            .factors
            .iter()
            .map(|f| f.to_vec2::<f64>())
            .collect::<candle_core::Result<_>>()?;
        let w = lmf.rank_weight.flatten_all()?.to_vec1::<f64>()?;
        let logits = lmf.forward(&x)?.to_vec2::<f64>()?;
        for b in 0..3 {
            for c in 0..n_c {
                let expected: f64 = (0..(e + 1).pow(3))
                    .map(|f| {
                        let d = digits(f, e + 1, 3);
                        let weight: f64 = (0..r)
                            .map(|i| {
                                w[i] * (0..3)
                                    .map(|m| factors[m][i * n_c + c][d[m]])
                                    .product::<f64>()
                            })
                            .sum();
                        weight * (0..3).map(|m| u[m][b][d[m]]).product::<f64>()
                    })
                    .sum();
                assert!((logits[b][c] - expected - bias[c]).abs() < 1e-12);
            }
        }
        Ok(())
    }

    #[test]
    fn fusion_gcn_matches_a_hand_forward() -> candle_core::Result<()> {
        let spec = spec3();
        let (e, g) = (2, 3);
        let edges = [(0, 1), (1, 2)];
        let (varmap, vb) = new_varmap();
        let gcn = Gcn::new(&spec, e, g, Some(&edges), vb)?;
        seeded_init(&varmap, 5)?;
        let x = inputs(&spec, 2)?;
        let z: Vec<Vec<Vec<f64>>> = encode(&gcn.encoders, &x)?
            .iter()
            .map(|t| t.to_vec2::<f64>())
            .collect::<candle_core::Result<_>>()?;
        let a = normalized_adjacency(3, Some(&edges))?;
        let w1 = gcn.layers[0].weight().to_vec2::<f64>()?;
        let w2 = gcn.layers[1].weight().to_vec2::<f64>()?;
        let wh = gcn.head.weight().to_vec2::<f64>()?;
        // Biases are zero after seeded_init. h_out[n] = ReLU(sum_k a[n][k] W h[k]).
        let layer = |h: &[Vec<f64>], w: &[Vec<f64>]| -> Vec<Vec<f64>> {
            (0..3)
                .map(|n| {
                    (0..w.len())
                        .map(|o| {
                            let v: f64 = (0..3)
                                .map(|k| {
                                    a[n * 3 + k]
                                        * (0..w[o].len()).map(|i| w[o][i] * h[k][i]).sum::<f64>()
                                })
                                .sum();
                            v.max(0.0)
                        })
                        .collect()
                })
                .collect()
        };
        let logits = gcn.forward(&x)?.to_vec2::<f64>()?;
        for b in 0..2 {
            let h0: Vec<Vec<f64>> = (0..3).map(|m| z[m][b].clone()).collect();
            let h2 = layer(&layer(&h0, &w1), &w2);
            for c in 0..spec.n_classes {
                let expected: f64 = (0..g)
                    .map(|j| wh[c][j] * (0..3).map(|n| h2[n][j]).sum::<f64>() / 3.0)
                    .sum();
                assert!((logits[b][c] - expected).abs() < 1e-12);
            }
        }
        Ok(())
    }

    #[test]
    fn fusion_mfb_normalization() -> candle_core::Result<()> {
        let pooled = Tensor::new(&[[4.0f64, -9.0, 0.0], [0.0, 0.0, 0.0]], &Device::Cpu)?;
        let out = power_l2_normalize(&pooled)?.to_vec2::<f64>()?;
        let s = 13f64.sqrt();
        for (x, y) in out[0].iter().zip([2.0 / s, -3.0 / s, 0.0]) {
            assert!((x - y).abs() < 1e-12, "{out:?}");
        }
        assert_eq!(out[1], vec![0.0; 3]);
        // The gradient is finite at 0, where sign(s) sqrt(|s|) has none.
        let var = candle_core::Var::from_tensor(&pooled)?;
        let grads = power_l2_normalize(var.as_tensor())?.sum_all()?.backward()?;
        let g = grads.get(var.as_tensor()).map(|g| g.flatten_all());
        let g = g.ok_or_else(|| candle_core::Error::Msg("no gradient".into()))??;
        assert!(g.to_vec1::<f64>()?.iter().all(|x| x.is_finite()));
        Ok(())
    }
}
