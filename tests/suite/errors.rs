//! Every validation error is returned as a structured value, never a panic.

use num_complex::Complex64 as C64;
use qfl::{
    BitString, Circuit, DenseState, Error, Gate, GateMatrix, MpsConfig, MpsState, Param,
    ParamSource, Pauli, PauliString, StateBackend, Truncation,
};

fn c(re: f64) -> C64 {
    C64::new(re, 0.0)
}

#[test]
fn circuit_push_errors() {
    assert_eq!(Circuit::new(0), Err(Error::NoQubits));
    let mut circ = Circuit::new(3).unwrap().with_params(2).with_inputs(1);
    assert_eq!(
        circ.h(3).unwrap_err(),
        Error::QubitOutOfRange {
            qubit: 3,
            n_qubits: 3
        }
    );
    assert!(matches!(
        circ.cx(1, 1),
        Err(Error::RepeatedQubit { qubit: 1, .. })
    ));
    assert!(matches!(
        circ.ccx(0, 2, 0),
        Err(Error::RepeatedQubit { qubit: 0, .. })
    ));
    assert_eq!(
        circ.push(Gate::Cx, &[0]).unwrap_err(),
        Error::WrongArity {
            gate: "cx",
            expected: 2,
            got: 1
        }
    );
    assert!(matches!(
        circ.rx(f64::NAN, 0),
        Err(Error::NonFiniteAngle {
            gate: "rx",
            what: "value",
            ..
        })
    ));
    assert!(matches!(
        circ.ry(Param::theta(0).scaled(f64::INFINITY), 0),
        Err(Error::NonFiniteAngle {
            gate: "ry",
            what: "scale",
            ..
        })
    ));
    assert!(matches!(
        circ.rz(Param::input(0).shifted(f64::NEG_INFINITY), 0),
        Err(Error::NonFiniteAngle { what: "offset", .. })
    ));
    assert_eq!(
        circ.rz(Param::theta(2), 0).unwrap_err(),
        Error::ParamIndexOutOfRange {
            kind: ParamSource::Theta,
            index: 2,
            declared: 2
        }
    );
    assert_eq!(
        circ.rzz(Param::input(1), 0, 1).unwrap_err(),
        Error::ParamIndexOutOfRange {
            kind: ParamSource::Input,
            index: 1,
            declared: 1
        }
    );
    // Nothing was pushed by the failed calls.
    assert!(circ.is_empty());
}

#[test]
fn user_matrix_errors() {
    assert!(matches!(
        Gate::unitary1(&[c(1.0), c(0.0), c(0.0), c(2.0)]),
        Err(Error::NotUnitary { n_qubits: 1, .. })
    ));
    assert!(matches!(
        Gate::unitary1(&[c(1.0), c(0.0), c(0.0), C64::new(f64::NAN, 0.0)]),
        Err(Error::NotUnitary { deviation, .. }) if deviation.is_infinite()
    ));
    assert_eq!(
        Gate::unitary2(&[c(1.0); 4]).unwrap_err(),
        Error::MatrixShape {
            n_qubits: 2,
            expected: 16,
            got: 4
        }
    );
    assert!(GateMatrix::from_row_major(4, &[c(0.0); 256]).is_err());
}

#[test]
fn binding_errors() {
    let mut circ = Circuit::new(2).unwrap().with_params(2).with_inputs(1);
    circ.rx(Param::theta(1), 0)
        .unwrap()
        .ry(Param::input(0), 1)
        .unwrap();
    let mut psi = DenseState::new(2).unwrap();
    assert_eq!(
        psi.run(&circ, &[0.1], &[0.2]).unwrap_err(),
        Error::BindingLength {
            kind: ParamSource::Theta,
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        psi.run(&circ, &[0.1, 0.2], &[]).unwrap_err(),
        Error::BindingLength {
            kind: ParamSource::Input,
            expected: 1,
            got: 0
        }
    );
    assert!(matches!(
        psi.run(&circ, &[0.1, f64::NAN], &[0.0]),
        Err(Error::NonFiniteBinding {
            kind: ParamSource::Theta,
            index: 1,
            ..
        })
    ));
    let mut mps = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    assert_eq!(
        mps.run(&circ, &[0.1, 0.2], &[0.3]).unwrap_err(),
        Error::QubitCountMismatch {
            circuit: 2,
            state: 3
        }
    );
    // Nothing ran: still |000>.
    assert_eq!(mps.amplitude(&BitString::zeros(3)).unwrap(), c(1.0));
}

#[test]
fn backend_setting_and_size_errors() {
    assert_eq!(
        MpsState::new(
            0,
            MpsConfig::default().with_update(qfl::UpdateScheme::Centre)
        )
        .unwrap_err(),
        Error::NoQubits
    );
    assert!(matches!(
        MpsState::new(
            4,
            MpsConfig::default()
                .with_update(qfl::UpdateScheme::Centre)
                .with_truncation(Truncation::default().with_max_bond(0))
        ),
        Err(Error::InvalidSetting {
            name: "max_bond",
            ..
        })
    ));
    assert!(matches!(
        MpsState::new(
            4,
            MpsConfig::default()
                .with_update(qfl::UpdateScheme::Centre)
                .with_truncation(Truncation::default().with_cutoff(f64::NAN))
        ),
        Err(Error::InvalidSetting { name: "cutoff", .. })
    ));
    assert!(matches!(
        MpsState::new(
            4,
            MpsConfig::default()
                .with_update(qfl::UpdateScheme::Centre)
                .with_norm_tolerance(0.0)
        ),
        Err(Error::InvalidSetting {
            name: "norm_tolerance",
            ..
        })
    ));
    // A dense state that does not fit is refused before allocating.
    assert!(matches!(
        DenseState::with_memory_limit(30, 1 << 30),
        Err(Error::StateTooLarge { n_qubits: 30, bytes_needed, .. }) if bytes_needed == 16 << 30
    ));
    assert!(matches!(
        DenseState::new(70),
        Err(Error::StateTooLarge { n_qubits: 70, .. })
    ));
    let big = MpsState::new(
        40,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    assert!(matches!(
        big.to_dense(),
        Err(Error::TooLarge {
            what: "to_dense",
            n_qubits: 40,
            ..
        })
    ));
    let many: Vec<usize> = (0..21).collect();
    assert!(matches!(
        big.marginal_probabilities(&many),
        Err(Error::TooLarge { .. })
    ));
    assert!(DenseState::from_amplitudes(vec![c(1.0); 3]).is_err());
    assert!(DenseState::from_amplitudes(vec![C64::new(f64::NAN, 0.0), c(0.0)]).is_err());
}

#[test]
fn readout_errors() {
    let psi = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    let dense = DenseState::new(3).unwrap();
    let backends: [&dyn StateBackend; 2] = [&psi, &dense];
    for b in backends {
        assert_eq!(
            b.amplitude(&BitString::zeros(4)).unwrap_err(),
            Error::BitStringLength {
                expected: 3,
                got: 4
            }
        );
        assert_eq!(
            b.expectation_pauli(&PauliString::z(3)).unwrap_err(),
            Error::QubitOutOfRange {
                qubit: 3,
                n_qubits: 3
            }
        );
        assert!(matches!(
            b.marginal_probabilities(&[0, 0]),
            Err(Error::RepeatedQubit { qubit: 0, .. })
        ));
        assert!(matches!(
            b.marginal_probabilities(&[5]),
            Err(Error::QubitOutOfRange { qubit: 5, .. })
        ));
        let nan = qfl::Observable::new().with_term(f64::NAN, PauliString::z(0));
        assert!(matches!(b.expectation(&nan), Err(Error::NonFinite { .. })));
    }
    assert!(matches!(
        PauliString::new(&[(1, Pauli::X), (1, Pauli::Z)]),
        Err(Error::RepeatedQubit { qubit: 1, .. })
    ));
    assert!(matches!(
        "Z0 Q1".parse::<PauliString>(),
        Err(Error::Parse {
            what: "Pauli string",
            ..
        })
    ));
    assert!(matches!(
        "Z".parse::<PauliString>(),
        Err(Error::Parse { .. })
    ));
    assert!(matches!(
        "0120".parse::<BitString>(),
        Err(Error::Parse {
            what: "bit string",
            ..
        })
    ));
}

#[test]
fn numerical_failures_are_errors() {
    // apply_matrix takes any matrix; a non-unitary one shows up as norm drift at the next
    // two-site update on MPS, and at the end of a run on dense.
    let twice = GateMatrix::from_row_major(1, &[c(2.0), c(0.0), c(0.0), c(2.0)]).unwrap();
    let cx = Gate::Cx.matrix(&[], &[]).unwrap();
    let mut mps = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    mps.apply_matrix(&twice, &[0]).unwrap();
    assert!(matches!(
        mps.apply_matrix(&cx, &[0, 1]),
        Err(Error::NormDrift { .. })
    ));
    let mut dense = DenseState::from_amplitudes(vec![c(1.0), c(1.0)]).unwrap();
    let circ = Circuit::new(1).unwrap();
    assert!(matches!(
        dense.run(&circ, &[], &[]),
        Err(Error::NormDrift { .. })
    ));
    // NaN entries reaching an SVD are reported, not panicked on.
    let nan = GateMatrix::from_row_major(2, &[C64::new(f64::NAN, 0.0); 16]).unwrap();
    let mut mps = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    let err = mps.apply_matrix(&nan, &[0, 2]).unwrap_err();
    assert!(
        matches!(err, Error::SvdFailed { .. } | Error::NonFinite { .. }),
        "{err}"
    );
    // The failed long-range gate left the state as it was (its routing swaps were undone).
    assert_eq!(mps.amplitude(&BitString::zeros(3)).unwrap(), c(1.0));
    assert!((mps.norm() - 1.0).abs() < 1e-15);
    // Messages name what is wrong.
    assert_eq!(
        Error::QubitOutOfRange {
            qubit: 7,
            n_qubits: 3
        }
        .to_string(),
        "qubit 7 is out of range for a register of 3 qubits"
    );
}
