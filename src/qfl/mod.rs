//! The Quantum Fusion Layer (QFL) of "Expressive and Scalable Quantum Fusion for Multimodal
//! Learning" (arXiv 2510.06938), as a circuit on `n = M * D` qubits.
//!
//! ```text
//!   modality m's angles a_m (D of them, from its classical encoder)
//!        │
//!  |0>──[ S(a) ]──[ U(theta_1) ]──[ S(a) ]──[ U(theta_2) ]── ... ──[ U(theta_P) ]── readout
//!        └────────── block 1 ─────┘└──────── block 2 ─────┘
//! ```
//!
//! - `S(a)`: the multimodal state preparation, `RY(a_{m,j})` on qubit `j` of modality `m`'s
//!   register (registers laid out along the chain in [`QflConfig::with_layout`] order);
//! - `U(theta_p)`: trainable `RZ` and `RY` on every qubit, then an entangling layer within and
//!   across registers ([`Entangler`]);
//! - the block `U(theta_p) S(a)` is repeated `P` times (data re-uploading), so every output is
//!   a trigonometric polynomial of degree at most `P` in each input angle, and the parameter
//!   count grows linearly in `M` and `P`;
//! - readout: expectation values of local observables ([`Readout`]).
//!
//! A [`QflLayer`] speaks only to the circuit model, observables and the backend trait: the
//! same layer runs on [`Backend::Dense`] or [`Backend::Mps`]. [`QflLayer::forward`] gives the
//! outputs; [`QflLayer::backward`] the vector-Jacobian product with respect to the input
//! angles and the trainable parameters, by one adjoint sweep. Choices and theory are in
//! `docs/theory.md`.

use crate::backend::{DenseState, MpsConfig, MpsState, StateBackend};
use crate::circuit::{Circuit, Param};
use crate::error::{Error, Result};
use crate::grad::{Gradient, adjoint_gradient};
use crate::observable::{Observable, Pauli, PauliString};

/// The entangling layer at the end of every `U(theta)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entangler {
    /// CZ on even then odd neighbouring pairs along the whole chain (within and across
    /// registers). The default: nearest-neighbour, so MPS-friendly.
    BrickCz,
    /// As `BrickCz` with trainable `RZZ` instead of CZ (one more parameter per pair).
    BrickRzz,
    /// `BrickCz` plus a CZ closing the ring from the last qubit to the first.
    RingCz,
    /// CZ from the first qubit of every register to the first qubit of every other register
    /// (all-to-all across modalities) plus a CZ chain inside each register. Long-range.
    AllToAllCz,
    /// No entanglement (a product of per-qubit models; a baseline).
    None,
}

/// A family of local observables read out of the final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readout {
    /// `Z_i` on every qubit.
    Z,
    /// `Z_i Z_{i+1}` on every neighbouring pair along the chain.
    ZzNeighbours,
    /// `X_i` on every qubit.
    X,
}

/// Which simulator a layer runs on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    /// The exact state vector (up to the machine's memory).
    Dense,
    /// A matrix product state with these settings.
    Mps(MpsConfig),
}

/// Settings of a [`QflLayer`].
#[derive(Clone, Debug, PartialEq)]
pub struct QflConfig {
    n_modalities: usize,
    qubits_per_modality: usize,
    repeats: usize,
    entangler: Entangler,
    readout: Vec<Readout>,
    layout: Vec<usize>,
}

impl QflConfig {
    /// `M` modalities with `D` qubits (angles) each, the block repeated `P` times; brick CZ
    /// entangler, `Z` readout, registers in the given order.
    pub fn new(n_modalities: usize, qubits_per_modality: usize, repeats: usize) -> Self {
        QflConfig {
            n_modalities,
            qubits_per_modality,
            repeats,
            entangler: Entangler::BrickCz,
            readout: vec![Readout::Z],
            layout: (0..n_modalities).collect(),
        }
    }

    /// Sets the entangling layer.
    pub fn with_entangler(mut self, entangler: Entangler) -> Self {
        self.entangler = entangler;
        self
    }

    /// Sets the observables read out (in this order, each family over the whole chain).
    pub fn with_readout(mut self, readout: &[Readout]) -> Self {
        self.readout = readout.to_vec();
        self
    }

    /// Sets the order of the modality registers along the chain: `layout[k]` is the modality
    /// whose register is the `k`-th along the chain. See [`bandwidth_reducing_order`].
    pub fn with_layout(mut self, layout: &[usize]) -> Self {
        self.layout = layout.to_vec();
        self
    }

    /// Lays the registers out for a graph over the modalities: the bandwidth-reducing order
    /// of [`bandwidth_reducing_order`], so modalities joined by an edge sit close along the
    /// chain and the nearest-neighbour entangler couples them cheaply.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`] (naming the modality) for an edge outside the modalities.
    pub fn with_modality_graph(self, edges: &[(usize, usize)]) -> Result<Self> {
        let order = bandwidth_reducing_order(self.n_modalities, edges)?;
        Ok(self.with_layout(&order))
    }

    /// The register order along the chain.
    pub fn layout(&self) -> &[usize] {
        &self.layout
    }

    /// Number of modalities `M`.
    pub fn n_modalities(&self) -> usize {
        self.n_modalities
    }

    /// Qubits (angles) per modality `D`.
    pub fn qubits_per_modality(&self) -> usize {
        self.qubits_per_modality
    }

    /// Repeats `P`.
    pub fn repeats(&self) -> usize {
        self.repeats
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason| {
            Err(Error::InvalidSetting {
                name,
                value,
                reason,
            })
        };
        if self.n_modalities == 0 {
            return bad("n_modalities", "0".into(), "must be at least 1");
        }
        if self.qubits_per_modality == 0 {
            return bad("qubits_per_modality", "0".into(), "must be at least 1");
        }
        if self.repeats == 0 {
            return bad("repeats", "0".into(), "must be at least 1");
        }
        if self.readout.is_empty() {
            return bad(
                "readout",
                "[]".into(),
                "needs at least one observable family",
            );
        }
        let mut seen = vec![false; self.n_modalities];
        if self.layout.len() != self.n_modalities
            || self
                .layout
                .iter()
                .any(|&m| m >= self.n_modalities || std::mem::replace(&mut seen[m], true))
        {
            return bad(
                "layout",
                format!("{:?}", self.layout),
                "must be a permutation of the modalities",
            );
        }
        Ok(())
    }
}

/// The quantum fusion layer: a validated circuit and its readout.
///
/// ```
/// use qfl::qfl::{Backend, QflConfig, QflLayer};
/// # fn main() -> qfl::Result<()> {
/// let layer = QflLayer::new(QflConfig::new(3, 2, 2))?; // M = 3, D = 2, P = 2
/// assert_eq!(layer.n_qubits(), 6);
/// assert_eq!(layer.n_params(), 2 * 6 * 2);
/// let angles = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]; // modality-major: a[m * D + j]
/// let theta = vec![0.05; layer.n_params()];
/// let out = layer.forward(Backend::Dense, &angles, &theta)?;
/// assert_eq!(out.len(), 6); // <Z_i> on every qubit
/// let (d_angles, d_theta) = layer.backward(Backend::Dense, &angles, &theta, &[1.0; 6])?;
/// assert_eq!((d_angles.len(), d_theta.len()), (6, 24));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct QflLayer {
    config: QflConfig,
    circuit: Circuit,
    outputs: Vec<PauliString>,
}

impl QflLayer {
    /// Builds the circuit and readout of `config`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for zero sizes, an empty readout or a layout that is not a
    /// permutation.
    pub fn new(config: QflConfig) -> Result<Self> {
        config.validate()?;
        let (m, d, p) = (
            config.n_modalities,
            config.qubits_per_modality,
            config.repeats,
        );
        let n = m * d;
        let qubit = Self::qubit_map(&config);
        let per_block_rot = 2 * n;
        let pairs: Vec<(usize, usize)> = entangling_pairs(config.entangler, n, m, d);
        let per_block_ent = if config.entangler == Entangler::BrickRzz {
            pairs.len()
        } else {
            0
        };
        let n_params = p * (per_block_rot + per_block_ent);
        let mut c = Circuit::new(n)?.with_params(n_params).with_inputs(n);
        let mut k = 0;
        for _block in 0..p {
            // S(a): modality m's angle j on its qubit.
            for mod_idx in 0..m {
                for j in 0..d {
                    c.ry(Param::input(mod_idx * d + j), qubit[mod_idx * d + j])?;
                }
            }
            // U(theta): rotations along the chain, then the entangler.
            for q in 0..n {
                c.rz(Param::theta(k), q)?.ry(Param::theta(k + 1), q)?;
                k += 2;
            }
            for &(a, b) in &pairs {
                if config.entangler == Entangler::BrickRzz {
                    c.rzz(Param::theta(k), a, b)?;
                    k += 1;
                } else {
                    c.cz(a, b)?;
                }
            }
        }
        debug_assert_eq!(k, n_params);
        let mut outputs = Vec::new();
        for r in &config.readout {
            match r {
                Readout::Z => outputs.extend((0..n).map(PauliString::z)),
                Readout::X => outputs.extend((0..n).map(|q| PauliString::single(q, Pauli::X))),
                Readout::ZzNeighbours => outputs.extend((0..n.saturating_sub(1)).map(|q| {
                    PauliString::new(&[(q, Pauli::Z), (q + 1, Pauli::Z)]).expect("distinct")
                })),
            }
        }
        Ok(QflLayer {
            config,
            circuit: c,
            outputs,
        })
    }

    /// `qubit[m * D + j]`: the chain position of modality `m`'s `j`-th qubit.
    fn qubit_map(config: &QflConfig) -> Vec<usize> {
        let d = config.qubits_per_modality;
        let mut map = vec![0; config.n_modalities * d];
        for (slot, &m) in config.layout.iter().enumerate() {
            for j in 0..d {
                map[m * d + j] = slot * d + j;
            }
        }
        map
    }

    /// The settings.
    pub fn config(&self) -> &QflConfig {
        &self.config
    }

    /// The circuit (inputs `x` are the angles, modality-major; parameters `theta`).
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// The observables read out, in output order.
    pub fn outputs(&self) -> &[PauliString] {
        &self.outputs
    }

    /// Number of qubits `M * D`.
    pub fn n_qubits(&self) -> usize {
        self.circuit.n_qubits()
    }

    /// Number of input angles `M * D`.
    pub fn n_inputs(&self) -> usize {
        self.circuit.n_inputs()
    }

    /// Number of trainable parameters (linear in `M` and `P`).
    pub fn n_params(&self) -> usize {
        self.circuit.n_params()
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The outputs `<O_k>` for input angles `angles` (modality-major) and parameters `theta`.
    ///
    /// # Errors
    /// [`Error::BindingLength`] or [`Error::NonFiniteBinding`] for bad slices; backend errors.
    pub fn forward(&self, backend: Backend, angles: &[f64], theta: &[f64]) -> Result<Vec<f64>> {
        match backend {
            Backend::Dense => self.forward_on(DenseState::new(self.n_qubits())?, angles, theta),
            Backend::Mps(cfg) => {
                self.forward_on(MpsState::new(self.n_qubits(), cfg)?, angles, theta)
            }
        }
    }

    fn forward_on<B: StateBackend>(
        &self,
        mut state: B,
        angles: &[f64],
        theta: &[f64],
    ) -> Result<Vec<f64>> {
        state.run(&self.circuit, theta, angles)?;
        // Single-qubit families come from one sweep; the rest term by term.
        let mut z = None;
        self.outputs
            .iter()
            .map(|p| match p.terms() {
                [(q, Pauli::Z)] => {
                    if z.is_none() {
                        z = Some(state.z_expectations()?);
                    }
                    Ok(z.as_ref().expect("just set")[*q])
                }
                _ => state.expectation_pauli(p),
            })
            .collect()
    }

    /// The outputs estimated by randomized measurements: `shots` shots in random Pauli bases
    /// (classical shadows, see [`crate::shadows`]), drawn from `rng`. An unbiased estimate
    /// of [`QflLayer::forward`]; its gradient in training is the exact [`QflLayer::backward`]
    /// (the estimate's noise has mean zero).
    ///
    /// # Errors
    /// As [`QflLayer::forward`]; [`Error::InvalidSetting`] for zero shots.
    pub fn forward_shadows(
        &self,
        backend: Backend,
        angles: &[f64],
        theta: &[f64],
        shots: usize,
        rng: &mut dyn rand::Rng,
    ) -> Result<Vec<f64>> {
        let n = self.n_qubits();
        match backend {
            Backend::Dense => {
                let mut s = DenseState::new(n)?;
                s.run(&self.circuit, theta, angles)?;
                crate::shadows::estimate_expectations(&s, &self.outputs, shots, rng)
            }
            Backend::Mps(cfg) => {
                let mut s = MpsState::new(n, cfg)?;
                s.run(&self.circuit, theta, angles)?;
                crate::shadows::estimate_expectations(&s, &self.outputs, shots, rng)
            }
        }
    }

    /// The vector-Jacobian product: for upstream gradients `grad_outputs[k] = dLoss/d<O_k>`,
    /// returns `(dLoss/d angles, dLoss/d theta)` by one adjoint sweep of the observable
    /// `sum_k grad_outputs[k] O_k` (cost a small constant times one forward pass).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if `grad_outputs` has the wrong length; as
    /// [`QflLayer::forward`].
    pub fn backward(
        &self,
        backend: Backend,
        angles: &[f64],
        theta: &[f64],
        grad_outputs: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        if grad_outputs.len() != self.outputs.len() {
            return Err(Error::InvalidSetting {
                name: "grad_outputs.len()",
                value: grad_outputs.len().to_string(),
                reason: "must equal the number of outputs",
            });
        }
        let observable = self
            .outputs
            .iter()
            .zip(grad_outputs)
            .filter(|(_, g)| **g != 0.0)
            .fold(Observable::new(), |o, (p, g)| o.with_term(*g, p.clone()));
        let n = self.n_qubits();
        let Gradient {
            theta: d_theta,
            x: d_angles,
            ..
        } = match backend {
            Backend::Dense => adjoint_gradient(
                DenseState::new(n)?,
                &self.circuit,
                theta,
                angles,
                &observable,
            )?,
            Backend::Mps(cfg) => adjoint_gradient(
                MpsState::new(n, cfg)?,
                &self.circuit,
                theta,
                angles,
                &observable,
            )?,
        };
        Ok((d_angles, d_theta))
    }
}

/// The entangling pairs of one block, as chain positions.
fn entangling_pairs(e: Entangler, n: usize, m: usize, d: usize) -> Vec<(usize, usize)> {
    let brick = || -> Vec<(usize, usize)> {
        (0..n.saturating_sub(1))
            .step_by(2)
            .chain((1..n.saturating_sub(1)).step_by(2))
            .map(|q| (q, q + 1))
            .collect()
    };
    match e {
        Entangler::BrickCz | Entangler::BrickRzz => brick(),
        Entangler::RingCz => {
            let mut v = brick();
            if n > 2 {
                v.push((n - 1, 0));
            }
            v
        }
        Entangler::AllToAllCz => {
            let mut v = Vec::new();
            for slot in 0..m {
                for j in 0..d.saturating_sub(1) {
                    v.push((slot * d + j, slot * d + j + 1));
                }
            }
            for a in 0..m {
                for b in a + 1..m {
                    v.push((a * d, b * d));
                }
            }
            v
        }
        Entangler::None => Vec::new(),
    }
}

/// A bandwidth-reducing order of the modalities of a graph (reverse Cuthill–McKee), for
/// [`QflConfig::with_layout`]: modalities joined by an edge end up close along the chain, so
/// their entanglement costs less bond dimension. `edges` are undirected pairs `(a, b)`.
///
/// # Errors
/// [`Error::QubitOutOfRange`] (naming the modality) for an edge outside `0..n_modalities`.
pub fn bandwidth_reducing_order(
    n_modalities: usize,
    edges: &[(usize, usize)],
) -> Result<Vec<usize>> {
    let mut adj = vec![Vec::new(); n_modalities];
    for &(a, b) in edges {
        for v in [a, b] {
            if v >= n_modalities {
                return Err(Error::QubitOutOfRange {
                    qubit: v,
                    n_qubits: n_modalities,
                });
            }
        }
        if a != b {
            adj[a].push(b);
            adj[b].push(a);
        }
    }
    for list in &mut adj {
        list.sort_unstable();
        list.dedup();
    }
    let mut order = Vec::with_capacity(n_modalities);
    let mut placed = vec![false; n_modalities];
    while order.len() < n_modalities {
        // Start each component at a vertex of minimum degree.
        let start = (0..n_modalities)
            .filter(|&v| !placed[v])
            .min_by_key(|&v| (adj[v].len(), v))
            .expect("some vertex is not placed");
        placed[start] = true;
        let mut head = order.len();
        order.push(start);
        while head < order.len() {
            let v = order[head];
            head += 1;
            let mut next: Vec<usize> = adj[v].iter().copied().filter(|&u| !placed[u]).collect();
            next.sort_by_key(|&u| (adj[u].len(), u));
            for u in next {
                placed[u] = true;
                order.push(u);
            }
        }
    }
    order.reverse();
    Ok(order)
}

/// The bandwidth of a layout: the largest distance along the chain between two modalities
/// joined by an edge.
pub fn layout_bandwidth(layout: &[usize], edges: &[(usize, usize)]) -> usize {
    let mut pos = vec![0; layout.len()];
    for (slot, &m) in layout.iter().enumerate() {
        if m < pos.len() {
            pos[m] = slot;
        }
    }
    edges
        .iter()
        .filter(|&&(a, b)| a < pos.len() && b < pos.len())
        .map(|&(a, b)| pos[a].abs_diff(pos[b]))
        .max()
        .unwrap_or(0)
}
