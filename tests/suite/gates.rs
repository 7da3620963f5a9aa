//! Every gate's matrix against its definition in docs/conventions.md, built independently:
//! rotations as matrix exponentials (Taylor series), controlled gates as
//! `|0><0| ⊗ I + |1><1| ⊗ U`, with the first qubit the most significant index bit.
//! Plus the qubit order of the state vector.

use num_complex::Complex64 as C64;
use qfl::{Circuit, DenseState, Gate, Param, StateBackend};

type M = Vec<Vec<C64>>;

fn c(re: f64, im: f64) -> C64 {
    C64::new(re, im)
}

fn eye(d: usize) -> M {
    (0..d)
        .map(|i| (0..d).map(|j| c((i == j) as u8 as f64, 0.0)).collect())
        .collect()
}

fn mat(rows: &[&[C64]]) -> M {
    rows.iter().map(|r| r.to_vec()).collect()
}

fn mul(a: &M, b: &M) -> M {
    let d = a.len();
    (0..d)
        .map(|i| {
            (0..d)
                .map(|j| (0..d).map(|k| a[i][k] * b[k][j]).sum())
                .collect()
        })
        .collect()
}

fn scale(a: &M, s: C64) -> M {
    a.iter()
        .map(|r| r.iter().map(|x| x * s).collect())
        .collect()
}

fn add(a: &M, b: &M) -> M {
    a.iter()
        .zip(b)
        .map(|(r, s)| r.iter().zip(s).map(|(x, y)| x + y).collect())
        .collect()
}

fn kron(a: &M, b: &M) -> M {
    let (p, q) = (a.len(), b.len());
    (0..p * q)
        .map(|i| {
            (0..p * q)
                .map(|j| a[i / q][j / q] * b[i % q][j % q])
                .collect()
        })
        .collect()
}

/// exp(A) by a Taylor series (converges fast for the small norms used here).
fn expm(a: &M) -> M {
    let mut term = eye(a.len());
    let mut sum = eye(a.len());
    for k in 1..40 {
        term = scale(&mul(&term, a), c(1.0 / k as f64, 0.0));
        sum = add(&sum, &term);
    }
    sum
}

fn x() -> M {
    mat(&[&[c(0., 0.), c(1., 0.)], &[c(1., 0.), c(0., 0.)]])
}
fn y() -> M {
    mat(&[&[c(0., 0.), c(0., -1.)], &[c(0., 1.), c(0., 0.)]])
}
fn z() -> M {
    mat(&[&[c(1., 0.), c(0., 0.)], &[c(0., 0.), c(-1., 0.)]])
}
fn h() -> M {
    scale(&add(&x(), &z()), c(std::f64::consts::FRAC_1_SQRT_2, 0.0))
}
/// exp(-i t P / 2)
fn rot(p: &M, t: f64) -> M {
    expm(&scale(p, c(0.0, -t / 2.0)))
}
fn controlled(u: &M) -> M {
    let d = u.len();
    let mut m = eye(2 * d);
    for i in 0..d {
        for j in 0..d {
            m[d + i][d + j] = u[i][j];
        }
    }
    m
}
fn phase(l: f64) -> M {
    mat(&[
        &[c(1., 0.), c(0., 0.)],
        &[c(0., 0.), C64::from_polar(1.0, l)],
    ])
}
/// Qiskit's U(theta, phi, lambda) = e^{i(phi+lambda)/2} RZ(phi) RY(theta) RZ(lambda).
fn u3(t: f64, p: f64, l: f64) -> M {
    let m = mul(&mul(&rot(&z(), p), &rot(&y(), t)), &rot(&z(), l));
    scale(&m, C64::from_polar(1.0, (p + l) / 2.0))
}

fn check(gate: Gate, expected: M) {
    let m = gate.matrix(&[0.0; 4], &[0.0; 4]).unwrap();
    let d = m.dim();
    assert_eq!(d, expected.len(), "{}", gate.name());
    for i in 0..d {
        for j in 0..d {
            let diff = (m.get(i, j) - expected[i][j]).norm();
            assert!(
                diff < 1e-13,
                "{} entry ({i},{j}): {} vs {}",
                gate.name(),
                m.get(i, j),
                expected[i][j]
            );
        }
    }
    assert!(
        m.unitarity_deviation() < 1e-13,
        "{} is not unitary",
        gate.name()
    );
}

const ANGLES: [f64; 4] = [0.0, 0.37, -1.9, 3.0];

#[test]
fn fixed_gates_match_definitions() {
    use std::f64::consts::FRAC_PI_4;
    check(Gate::I, eye(2));
    check(Gate::X, x());
    check(Gate::Y, y());
    check(Gate::Z, z());
    check(Gate::H, h());
    check(Gate::S, phase(2.0 * FRAC_PI_4));
    check(Gate::Sdg, phase(-2.0 * FRAC_PI_4));
    check(Gate::T, phase(FRAC_PI_4));
    check(Gate::Tdg, phase(-FRAC_PI_4));
    // SX = e^{i pi/4} RX(pi/2), and SX^2 = X.
    let sx = scale(
        &rot(&x(), std::f64::consts::FRAC_PI_2),
        C64::from_polar(1.0, FRAC_PI_4),
    );
    assert!(
        mul(&sx, &sx)
            .iter()
            .flatten()
            .zip(x().iter().flatten())
            .all(|(a, b)| (a - b).norm() < 1e-13)
    );
    check(Gate::Sx, sx.clone());
    check(
        Gate::Sxdg,
        scale(
            &rot(&x(), -std::f64::consts::FRAC_PI_2),
            C64::from_polar(1.0, -FRAC_PI_4),
        ),
    );
    check(Gate::Cx, controlled(&x()));
    check(Gate::Cy, controlled(&y()));
    check(Gate::Cz, controlled(&z()));
    check(Gate::Ch, controlled(&h()));
    let swap = add(
        &add(&kron(&eye(2), &eye(2)), &kron(&x(), &x())),
        &add(&kron(&y(), &y()), &kron(&z(), &z())),
    );
    check(Gate::Swap, scale(&swap, c(0.5, 0.0)));
    // iSWAP = exp(i pi/4 (XX + YY)).
    let xy = add(&kron(&x(), &x()), &kron(&y(), &y()));
    check(Gate::ISwap, expm(&scale(&xy, c(0.0, FRAC_PI_4))));
    check(Gate::Ccx, controlled(&controlled(&x())));
    check(Gate::Cswap, controlled(&scale(&swap, c(0.5, 0.0))));
}

#[test]
fn rotation_gates_match_definitions() {
    for &t in &ANGLES {
        check(Gate::Rx(t.into()), rot(&x(), t));
        check(Gate::Ry(t.into()), rot(&y(), t));
        check(Gate::Rz(t.into()), rot(&z(), t));
        check(Gate::P(t.into()), phase(t));
        check(Gate::u1(t), phase(t));
        check(Gate::Crx(t.into()), controlled(&rot(&x(), t)));
        check(Gate::Cry(t.into()), controlled(&rot(&y(), t)));
        check(Gate::Crz(t.into()), controlled(&rot(&z(), t)));
        check(Gate::Cp(t.into()), controlled(&phase(t)));
        check(Gate::Rxx(t.into()), rot(&kron(&x(), &x()), t));
        check(Gate::Ryy(t.into()), rot(&kron(&y(), &y()), t));
        check(Gate::Rzz(t.into()), rot(&kron(&z(), &z()), t));
        for &(p, l) in &[(0.2, -0.7), (1.3, 2.9)] {
            check(
                Gate::U3 {
                    theta: t.into(),
                    phi: p.into(),
                    lambda: l.into(),
                },
                u3(t, p, l),
            );
            check(
                Gate::Cu3 {
                    theta: t.into(),
                    phi: p.into(),
                    lambda: l.into(),
                },
                controlled(&u3(t, p, l)),
            );
            check(
                Gate::U2 {
                    phi: p.into(),
                    lambda: l.into(),
                },
                u3(std::f64::consts::FRAC_PI_2, p, l),
            );
        }
    }
}

#[test]
fn user_matrices_and_inverses() {
    // A user kron(A, B) acts A on the first qubit.
    let a = rot(&y(), 0.3);
    let b = rot(&x(), -1.1);
    let ab = kron(&a, &b);
    let flat: Vec<C64> = ab.iter().flatten().copied().collect();
    check(Gate::unitary2(&flat).unwrap(), ab);
    // Every gate times its inverse is the identity, with parameters bound.
    let theta = [0.4, -2.2];
    let x_in = [1.7];
    let params = [
        Param::theta(0),
        Param::input(0).scaled(0.5).shifted(0.1),
        Param::Fixed(2.5),
    ];
    let gates = vec![
        Gate::S,
        Gate::T,
        Gate::Sx,
        Gate::ISwap,
        Gate::Rx(params[0]),
        Gate::Ry(params[1]),
        Gate::Rz(params[2]),
        Gate::P(params[1]),
        Gate::U2 {
            phi: params[0],
            lambda: params[1],
        },
        Gate::U3 {
            theta: params[0],
            phi: params[1],
            lambda: params[2],
        },
        Gate::Cu3 {
            theta: params[2],
            phi: params[0],
            lambda: params[1],
        },
        Gate::Crx(params[0]),
        Gate::Cry(params[1]),
        Gate::Crz(params[2]),
        Gate::Cp(params[0]),
        Gate::Rxx(params[1]),
        Gate::Ryy(params[2]),
        Gate::Rzz(params[0]),
        Gate::Ccx,
        Gate::Cswap,
        Gate::unitary2(&flat).unwrap(),
    ];
    for g in gates {
        let m = g.matrix(&theta, &x_in).unwrap();
        let mi = g.inverse().matrix(&theta, &x_in).unwrap();
        let d = m.dim();
        for i in 0..d {
            for j in 0..d {
                let e: C64 = (0..d).map(|k| mi.get(i, k) * m.get(k, j)).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (e - want).norm() < 1e-13,
                    "{}: inverse fails at ({i},{j})",
                    g.name()
                );
            }
        }
    }
}

#[test]
fn qubit_order_is_little_endian_and_first_argument_is_control() {
    let run = |build: &dyn Fn(&mut Circuit)| {
        let mut c = Circuit::new(3).unwrap();
        build(&mut c);
        let mut s = DenseState::new(3).unwrap();
        s.run(&c, &[], &[]).unwrap();
        s.amplitudes()
            .iter()
            .position(|a| (a.norm() - 1.0).abs() < 1e-12)
            .unwrap()
    };
    // X on qubit 0 sets bit 0 of the index.
    assert_eq!(
        run(&|c| {
            c.x(0).unwrap();
        }),
        0b001
    );
    assert_eq!(
        run(&|c| {
            c.x(2).unwrap();
        }),
        0b100
    );
    // CX(control, target): control qubit 2 set, target qubit 0 flips.
    assert_eq!(
        run(&|c| {
            c.x(2).unwrap().cx(2, 0).unwrap();
        }),
        0b101
    );
    // Control not set: nothing happens.
    assert_eq!(
        run(&|c| {
            c.x(0).unwrap().cx(2, 0).unwrap();
        }),
        0b001
    );
    // CCX(c0, c1, t) and CSWAP(c, a, b).
    assert_eq!(
        run(&|c| {
            c.x(0).unwrap().x(1).unwrap().ccx(0, 1, 2).unwrap();
        }),
        0b111
    );
    assert_eq!(
        run(&|c| {
            c.x(2).unwrap().x(0).unwrap().cswap(2, 0, 1).unwrap();
        }),
        0b110
    );
    // Bit strings print qubit n-1 first.
    let b = qfl::BitString::from_index(3, 0b001);
    assert_eq!(b.to_string(), "001");
}
