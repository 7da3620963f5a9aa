//! Adjoint gradients: gate derivatives, dense gradients against finite differences, and MPS
//! (without truncation) against dense, to 1e-8.

use proptest::prelude::*;
use qfl::grad::{Gradient, adjoint_gradient};
use qfl::{
    Circuit, DenseState, Gate, MpsConfig, MpsState, Observable, Param, Pauli, PauliString,
    StateBackend, Truncation,
};

use super::common::{RandomCircuit, random_circuit};

/// Every parametrized gate's `matrix_derivatives` against a 4-point finite-difference stencil.
#[test]
fn gate_derivatives_match_finite_differences() {
    type Builder = fn([f64; 3]) -> Gate;
    let gates: [(Builder, usize); 14] = [
        (|a| Gate::Rx(a[0].into()), 1),
        (|a| Gate::Ry(a[0].into()), 1),
        (|a| Gate::Rz(a[0].into()), 1),
        (|a| Gate::P(a[0].into()), 1),
        (
            |a| Gate::U2 {
                phi: a[0].into(),
                lambda: a[1].into(),
            },
            2,
        ),
        (
            |a| Gate::U3 {
                theta: a[0].into(),
                phi: a[1].into(),
                lambda: a[2].into(),
            },
            3,
        ),
        (|a| Gate::Crx(a[0].into()), 1),
        (|a| Gate::Cry(a[0].into()), 1),
        (|a| Gate::Crz(a[0].into()), 1),
        (|a| Gate::Cp(a[0].into()), 1),
        (
            |a| Gate::Cu3 {
                theta: a[0].into(),
                phi: a[1].into(),
                lambda: a[2].into(),
            },
            3,
        ),
        (|a| Gate::Rxx(a[0].into()), 1),
        (|a| Gate::Ryy(a[0].into()), 1),
        (|a| Gate::Rzz(a[0].into()), 1),
    ];
    let h = 1e-3;
    for (build, slots) in gates {
        let base = [0.7, -1.3, 2.1];
        let g = build(base);
        let derivs = g.matrix_derivatives(&[], &[]).unwrap();
        assert_eq!(derivs.len(), slots, "{}", g.name());
        for (slot, d) in derivs.iter().enumerate() {
            let at = |delta: f64| {
                let mut a = base;
                a[slot] += delta;
                build(a).matrix(&[], &[]).unwrap()
            };
            let (p1, m1, p2, m2) = (at(h), at(-h), at(2.0 * h), at(-2.0 * h));
            for i in 0..d.dim() {
                for j in 0..d.dim() {
                    let fd = (8.0 * (p1.get(i, j) - m1.get(i, j)) - (p2.get(i, j) - m2.get(i, j)))
                        / (12.0 * h);
                    assert!(
                        (fd - d.get(i, j)).norm() < 1e-11,
                        "{} slot {slot} ({i},{j})",
                        g.name()
                    );
                }
            }
        }
    }
}

fn observable_from(raw: &[(f64, Vec<(usize, u8)>)], n: usize) -> Observable {
    let mut obs = Observable::new();
    for (w, ps) in raw {
        let mut seen = std::collections::BTreeMap::new();
        for &(q, p) in ps {
            seen.insert(q % n, [Pauli::X, Pauli::Y, Pauli::Z][p as usize % 3]);
        }
        let terms: Vec<(usize, Pauli)> = seen.into_iter().collect();
        obs.add_term(*w, PauliString::new(&terms).unwrap());
    }
    obs
}

fn observable_strategy() -> impl Strategy<Value = Vec<(f64, Vec<(usize, u8)>)>> {
    proptest::collection::vec(
        (
            -2.0f64..2.0,
            proptest::collection::vec((0usize..10, 0u8..3), 0..4),
        ),
        1..5,
    )
}

fn dense_value(rc: &RandomCircuit, theta: &[f64], x: &[f64], obs: &Observable) -> f64 {
    let mut s = DenseState::new(rc.circuit.n_qubits()).unwrap();
    s.run(&rc.circuit, theta, x).unwrap();
    s.expectation(obs).unwrap()
}

/// Central 4-point stencil (error O(h^4)) for every theta and x.
fn finite_difference(rc: &RandomCircuit, obs: &Observable) -> Gradient {
    let h = 1e-4;
    let stencil =
        |f: &dyn Fn(f64) -> f64| (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h);
    let theta = (0..rc.theta.len())
        .map(|i| {
            stencil(&|d| {
                let mut t = rc.theta.clone();
                t[i] += d;
                dense_value(rc, &t, &rc.x, obs)
            })
        })
        .collect();
    let x = (0..rc.x.len())
        .map(|i| {
            stencil(&|d| {
                let mut v = rc.x.clone();
                v[i] += d;
                dense_value(rc, &rc.theta, &v, obs)
            })
        })
        .collect();
    Gradient {
        value: dense_value(rc, &rc.theta, &rc.x, obs),
        theta,
        x,
    }
}

fn assert_close(a: &Gradient, b: &Gradient, tol: f64) -> Result<(), TestCaseError> {
    prop_assert!(
        (a.value - b.value).abs() < tol,
        "value {} vs {}",
        a.value,
        b.value
    );
    for (k, (u, v)) in a
        .theta
        .iter()
        .zip(&b.theta)
        .chain(a.x.iter().zip(&b.x))
        .enumerate()
    {
        prop_assert!(
            (u - v).abs() < tol * u.abs().max(1.0),
            "component {k}: {u} vs {v}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::common::proptest_config(64))]

    #[test]
    fn dense_adjoint_matches_finite_differences(rc in random_circuit(1, 6, 30), raw in observable_strategy()) {
        let obs = observable_from(&raw, rc.circuit.n_qubits());
        let g = adjoint_gradient(DenseState::new(rc.circuit.n_qubits()).unwrap(), &rc.circuit, &rc.theta, &rc.x, &obs).unwrap();
        assert_close(&g, &finite_difference(&rc, &obs), 1e-8)?;
    }

    #[test]
    fn mps_adjoint_matches_dense(rc in random_circuit(1, 10, 60), raw in observable_strategy()) {
        let n = rc.circuit.n_qubits();
        let obs = observable_from(&raw, n);
        let dense = adjoint_gradient(DenseState::new(n).unwrap(), &rc.circuit, &rc.theta, &rc.x, &obs).unwrap();
        let exact = MpsConfig::default().with_update(qfl::UpdateScheme::Centre).with_truncation(Truncation::exact());
        let mps = adjoint_gradient(MpsState::new(n, exact).unwrap(), &rc.circuit, &rc.theta, &rc.x, &obs).unwrap();
        assert_close(&mps, &dense, 1e-8)?;
    }
}

/// A QFL-shaped circuit on 40 qubits (too many for the dense oracle): the MPS adjoint
/// gradient of `sum_i g_i <Z_i>` against finite differences of MPS expectation values.
#[test]
fn mps_adjoint_on_40_qubits_matches_finite_differences() {
    let n = 40;
    let mut c = Circuit::new(n).unwrap().with_params(2 * n).with_inputs(n);
    for _layer in 0..2 {
        for q in 0..n {
            c.ry(Param::input(q), q).unwrap();
            c.rz(Param::theta(q), q).unwrap();
            c.ry(Param::theta(n + q).scaled(0.5), q).unwrap();
        }
        for q in (0..n - 1).step_by(2).chain((1..n - 1).step_by(2)) {
            c.cz(q, q + 1).unwrap();
        }
        c.crx(Param::theta(0), 0, n - 1).unwrap();
    }
    let theta: Vec<f64> = (0..2 * n).map(|i| 0.2 + 0.05 * i as f64).collect();
    let x: Vec<f64> = (0..n).map(|i| (0.3 * i as f64).sin()).collect();
    let mut obs = Observable::new();
    for q in 0..n {
        obs.add_term(((q % 7) as f64 - 3.0) / 4.0, PauliString::z(q));
    }
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::exact());
    let value = |t: &[f64], xs: &[f64]| {
        let mut s = MpsState::new(n, config).unwrap();
        s.run(&c, t, xs).unwrap();
        s.expectation(&obs).unwrap()
    };
    let g = adjoint_gradient(MpsState::new(n, config).unwrap(), &c, &theta, &x, &obs).unwrap();
    assert!((g.value - value(&theta, &x)).abs() < 1e-10);
    let h = 1e-4;
    for &i in &[0usize, 1, 17, 39, 40, 63, 79] {
        let f = |d: f64| {
            let mut t = theta.clone();
            t[i] += d;
            value(&t, &x)
        };
        let fd = (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h);
        assert!(
            (fd - g.theta[i]).abs() < 1e-8,
            "theta[{i}]: {fd} vs {}",
            g.theta[i]
        );
    }
    for &i in &[0usize, 20, 39] {
        let f = |d: f64| {
            let mut v = x.clone();
            v[i] += d;
            value(&theta, &v)
        };
        let fd = (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h);
        assert!((fd - g.x[i]).abs() < 1e-8, "x[{i}]: {fd} vs {}", g.x[i]);
    }
}
