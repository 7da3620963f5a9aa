//! Randomized measurements: sampling in rotated bases on MPS against dense, and shadow
//! estimates against exact expectation values.

use qfl::qfl::{Backend, QflConfig, QflLayer, Readout};
use qfl::{
    DenseState, GateMatrix, MpsConfig, MpsState, Pauli, PauliString, StateBackend, Truncation,
    shadows,
};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::sampling::{chi_square, chi2_critical_001, test_circuit, theta};

#[test]
fn mps_samples_in_rotated_bases_follow_dense_probabilities() {
    let n = 7;
    let c = test_circuit(n);
    let th = theta(n);
    let basis: Vec<Pauli> = (0..n)
        .map(|q| [Pauli::X, Pauli::Y, Pauli::Z][q % 3])
        .collect();
    // Dense probabilities in that basis: rotate a copy by H (X) and H S^dagger (Y).
    let mut rotated = DenseState::new(n).unwrap();
    rotated.run(&c, &th, &[]).unwrap();
    let h = num_complex::Complex64::new(std::f64::consts::FRAC_1_SQRT_2, 0.0);
    let i = num_complex::Complex64::new(0.0, 1.0);
    let hx = GateMatrix::from_row_major(1, &[h, h, h, -h]).unwrap();
    let hy = GateMatrix::from_row_major(1, &[h, -h * i, h, h * i]).unwrap();
    for (q, p) in basis.iter().enumerate() {
        match p {
            Pauli::X => rotated.apply_matrix(&hx, &[q]).unwrap(),
            Pauli::Y => rotated.apply_matrix(&hy, &[q]).unwrap(),
            Pauli::Z => {}
        }
    }
    let probs: Vec<f64> = rotated.amplitudes().iter().map(|a| a.norm_sqr()).collect();
    let mut mps = MpsState::new(
        n,
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact()),
    )
    .unwrap();
    mps.run(&c, &th, &[]).unwrap();
    for centre in [0, n / 2, n - 1] {
        mps.move_centre(centre).unwrap();
        let bases = vec![basis.clone(); 20_000];
        let samples = mps
            .sample_in_bases(&bases, &mut ChaCha8Rng::seed_from_u64(centre as u64))
            .unwrap();
        let (stat, df) = chi_square(&samples, &probs);
        assert!(
            stat < chi2_critical_001(df),
            "centre {centre}: chi2 {stat:.1} (df {df})"
        );
    }
    // The dense implementation passes the same test.
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &th, &[]).unwrap();
    let samples = dense
        .sample_in_bases(&vec![basis; 5_000], &mut ChaCha8Rng::seed_from_u64(9))
        .unwrap();
    let (stat, df) = chi_square(&samples, &probs);
    assert!(stat < chi2_critical_001(df));
    assert!(
        mps.sample_in_bases(&[vec![Pauli::X; n - 1]], &mut ChaCha8Rng::seed_from_u64(1))
            .is_err()
    );
}

/// Shadow estimates of weight-1 and weight-2 Paulis are within 5 standard errors
/// (`sqrt(3^k / shots)` bounds the standard error of a weight-k term) of the exact values, on
/// both backends, and reproducible from the seed.
#[test]
fn shadow_estimates_converge_to_exact_values() {
    let n = 6;
    let c = test_circuit(n);
    let th = theta(n);
    let mut obs: Vec<PauliString> = Vec::new();
    for q in 0..n {
        obs.push(PauliString::z(q));
        obs.push(PauliString::single(q, Pauli::X));
        obs.push(PauliString::single(q, Pauli::Y));
        if q + 1 < n {
            obs.push(PauliString::new(&[(q, Pauli::Z), (q + 1, Pauli::Z)]).unwrap());
            obs.push(PauliString::new(&[(q, Pauli::X), (q + 1, Pauli::Y)]).unwrap());
        }
    }
    let shots = 30_000;
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &th, &[]).unwrap();
    let mut mps = MpsState::new(
        n,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    mps.run(&c, &th, &[]).unwrap();
    let exact: Vec<f64> = obs
        .iter()
        .map(|p| dense.expectation_pauli(p).unwrap())
        .collect();
    for (name, est) in [
        (
            "mps",
            shadows::estimate_expectations(&mps, &obs, shots, &mut ChaCha8Rng::seed_from_u64(4))
                .unwrap(),
        ),
        (
            "dense",
            shadows::estimate_expectations(&dense, &obs, shots, &mut ChaCha8Rng::seed_from_u64(5))
                .unwrap(),
        ),
    ] {
        for ((p, e), x) in obs.iter().zip(&est).zip(&exact) {
            let sigma = (3f64.powi(p.terms().len() as i32) / shots as f64).sqrt();
            assert!(
                (e - x).abs() < 5.0 * sigma,
                "{name} <{p}>: {e} vs {x} (sigma {sigma:.4})"
            );
        }
    }
    let a =
        shadows::estimate_expectations(&mps, &obs, 100, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    let b =
        shadows::estimate_expectations(&mps, &obs, 100, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn layer_shadow_readout_estimates_exact_outputs() {
    let layer =
        QflLayer::new(QflConfig::new(4, 1, 2).with_readout(&[Readout::Z, Readout::ZzNeighbours]))
            .unwrap();
    let angles = [0.3, -1.2, 2.0, 0.8];
    let theta: Vec<f64> = (0..layer.n_params())
        .map(|k| 0.2 * k as f64 - 1.0)
        .collect();
    let backend = Backend::Mps(MpsConfig::default().with_update(qfl::UpdateScheme::Centre));
    let exact = layer.forward(backend, &angles, &theta).unwrap();
    let shots = 20_000;
    let est = layer
        .forward_shadows(
            backend,
            &angles,
            &theta,
            shots,
            &mut ChaCha8Rng::seed_from_u64(3),
        )
        .unwrap();
    for (k, (e, x)) in est.iter().zip(&exact).enumerate() {
        let weight = layer.outputs()[k].terms().len() as i32;
        let sigma = (3f64.powi(weight) / shots as f64).sqrt();
        assert!((e - x).abs() < 5.0 * sigma, "output {k}: {e} vs {x}");
    }
    assert!(
        layer
            .forward_shadows(
                backend,
                &angles,
                &theta,
                0,
                &mut ChaCha8Rng::seed_from_u64(3)
            )
            .is_err()
    );
}
