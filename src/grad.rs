//! Gradients of expectation values by adjoint differentiation.
//!
//! For `L(theta, x) = <psi| O |psi>` with `psi = U_G ... U_1 |0>`, one forward run and one
//! backward sweep give the derivative with respect to every gate angle, hence (through each
//! [`Param`]'s affine map) every trainable parameter and every input feature:
//!
//! ```text
//! lambda_G = O psi_G
//! for g = G .. 1:  psi_{g-1} = U_g^dagger psi_g,  lambda_{g-1} = U_g^dagger lambda_g,
//!                  dL/d a = 2 Re <lambda_{g-1}| U_g^dagger dU_g/da |psi_{g-1}>
//! ```
//!
//! The cost is a small constant times one forward pass, independent of the number of
//! parameters (see `docs/theory.md` for the MPS version and what truncation does to it).
//! For several outputs `<O_k>` with upstream gradients `g_k`, pass the single observable
//! `sum_k g_k O_k`: that is the vector-Jacobian product.
//!
//! ```
//! use qfl::{Circuit, DenseState, Observable, Param, PauliString, grad::adjoint_gradient};
//! # fn main() -> qfl::Result<()> {
//! let mut c = Circuit::new(1)?.with_params(1);
//! c.ry(Param::theta(0), 0)?;
//! let z = Observable::new().with_term(1.0, PauliString::z(0));
//! let g = adjoint_gradient(DenseState::new(1)?, &c, &[0.3], &[], &z)?;
//! // <Z> = cos(theta), d<Z>/dtheta = -sin(theta).
//! assert!((g.value - 0.3f64.cos()).abs() < 1e-12);
//! assert!((g.theta[0] + 0.3f64.sin()).abs() < 1e-12);
//! # Ok(()) }
//! ```

use crate::backend::{AdjointBackend, AdjointPair};
use crate::circuit::{Circuit, GateMatrix, Param};
use crate::error::{Error, Result};
use crate::observable::Observable;

/// An expectation value and its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// `<psi|O|psi>`.
    pub value: f64,
    /// `dL/d theta[i]` for every declared trainable parameter.
    pub theta: Vec<f64>,
    /// `dL/d x[i]` for every declared input feature.
    pub x: Vec<f64>,
}

/// Runs `circuit` on `state` (which must be `|0...0>` of the right width) with `theta` and
/// `x`, and returns `<O>` with its gradient with respect to `theta` and `x`.
///
/// # Errors
/// Any error of [`StateBackend::run`](crate::StateBackend::run), a bad observable, and the
/// numerical errors of the backward sweep.
pub fn adjoint_gradient<B: AdjointBackend>(
    mut state: B,
    circuit: &Circuit,
    theta: &[f64],
    x: &[f64],
    observable: &Observable,
) -> Result<Gradient> {
    state.run(circuit, theta, x)?;
    let (value, mut pair) = state.into_adjoint_pair(observable)?;
    let mut g_theta = vec![0.0; circuit.n_params()];
    let mut g_x = vec![0.0; circuit.n_inputs()];
    let mut slots: Vec<Param> = Vec::with_capacity(3);
    let mut local: Vec<GateMatrix> = Vec::with_capacity(3);
    for inst in circuit.instructions().iter().rev() {
        let gate = inst.gate();
        let u_dagger = gate.matrix(theta, x)?.adjoint();
        slots.clear();
        local.clear();
        if gate.params().any(|p| p.source().is_some()) {
            for (p, d) in gate.params().zip(gate.matrix_derivatives(theta, x)?) {
                if p.source().is_some() {
                    slots.push(*p);
                    local.push(u_dagger.mul(&d)?);
                }
            }
        }
        let overlaps = pair.step(&u_dagger, &local, inst.qubits())?;
        for (p, ov) in slots.iter().zip(overlaps) {
            let d_angle = 2.0 * ov.re;
            match *p {
                Param::Theta { index, scale, .. } => g_theta[index] += scale * d_angle,
                Param::Input { index, scale, .. } => g_x[index] += scale * d_angle,
                Param::Fixed(_) => {}
            }
        }
    }
    if g_theta.iter().chain(&g_x).any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            context: "adjoint gradient".into(),
        });
    }
    Ok(Gradient {
        value,
        theta: g_theta,
        x: g_x,
    })
}
