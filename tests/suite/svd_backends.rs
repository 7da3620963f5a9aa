//! The SVD backend choice (`SvdBackend`): in every build, naming LAPACK without the `lapack`
//! feature is an error at state construction; with the feature, an MPS on LAPACK matches the
//! dense oracle and the faer MPS on random circuits, with and without truncation.

use qfl::{Error, MpsConfig, SvdBackend};

#[test]
fn names_parse_and_faer_is_always_available() {
    for b in SvdBackend::ALL {
        assert_eq!(b.name().parse::<SvdBackend>().unwrap(), b);
        assert_eq!(b.to_string(), b.name());
    }
    assert_eq!(
        " LAPACK ".parse::<SvdBackend>().unwrap(),
        SvdBackend::Lapack
    );
    assert!(matches!(
        "mkl".parse::<SvdBackend>(),
        Err(Error::Parse { .. })
    ));
    assert_eq!(SvdBackend::default(), SvdBackend::Faer);
    assert_eq!(
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .svd(),
        SvdBackend::Faer
    );
    assert!(SvdBackend::Faer.is_available());
    assert_eq!(SvdBackend::Lapack.is_available(), cfg!(feature = "lapack"));
}

/// Without the feature, choosing LAPACK is a clear error when the state is created (and from
/// `thin_svd`), never a panic.
#[cfg(not(feature = "lapack"))]
#[test]
fn lapack_without_the_feature_is_an_error_at_construction() {
    use qfl::{MpsState, Parallelism};
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_svd(SvdBackend::Lapack);
    let err = MpsState::new(4, config).unwrap_err();
    assert_eq!(
        err,
        Error::FeatureNotEnabled {
            what: "the LAPACK SVD backend (SvdBackend::Lapack)",
            feature: "lapack",
        }
    );
    let message = err.to_string();
    assert!(message.contains("--features lapack"), "{message}");
    assert_eq!(SvdBackend::Lapack.check_available(), Err(err.clone()));
    let a = [num_complex::Complex64::new(1.0, 0.0)];
    assert_eq!(
        qfl::thin_svd(&a, 1, 1, SvdBackend::Lapack, Parallelism::Sequential).unwrap_err(),
        err
    );
}

#[cfg(feature = "lapack")]
mod with_lapack {
    use num_complex::Complex64 as C64;
    use proptest::prelude::*;
    use qfl::{
        Circuit, DenseState, MpsConfig, MpsState, Parallelism, Param, SplitMethod, StateBackend,
        SvdBackend, Truncation,
    };

    use super::super::common::{RandomCircuit, fidelity, max_dist, random_circuit, tolerance};

    fn mps(rc: &RandomCircuit, t: Truncation, svd: SvdBackend) -> MpsState {
        let config = MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(t)
            .with_split(SplitMethod::Svd)
            .with_svd(svd);
        let mut state = MpsState::new(rc.circuit.n_qubits(), config).unwrap();
        state.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        state
    }

    fn dense(rc: &RandomCircuit) -> Vec<C64> {
        let mut d = DenseState::new(rc.circuit.n_qubits()).unwrap();
        d.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        d.amplitudes().to_vec()
    }

    /// The Fubini-Study angle the proven fidelity bound allows (pi/2 when it says nothing).
    fn angle_bound(state: &MpsState) -> f64 {
        state
            .truncation_report()
            .fidelity_lower_bound
            .clamp(0.0, 1.0)
            .sqrt()
            .acos()
    }

    proptest! {
        #![proptest_config(super::super::common::proptest_config(64))]

        /// Without truncation, LAPACK's MPS is the dense state, and the faer MPS, entry by entry.
        #[test]
        fn lapack_mps_equals_dense_and_faer(rc in random_circuit(1, 10, 60)) {
            let tol = tolerance(&rc);
            let expected = dense(&rc);
            let lapack = mps(&rc, Truncation::exact(), SvdBackend::Lapack);
            let faer = mps(&rc, Truncation::exact(), SvdBackend::Faer);
            let (l, f) = (lapack.to_dense().unwrap(), faer.to_dense().unwrap());
            let d = max_dist(&l, &expected);
            prop_assert!(d < tol, "LAPACK MPS vs dense: {d:e} (tol {tol:e})");
            let d = max_dist(&l, &f);
            prop_assert!(d < 2.0 * tol, "LAPACK MPS vs faer MPS: {d:e} (tol {tol:e})");
            prop_assert_eq!(lapack.bond_dimensions(), faer.bond_dimensions());
            let (zl, zf) = (lapack.z_expectations().unwrap(), faer.z_expectations().unwrap());
            prop_assert!(zl.iter().zip(&zf).all(|(a, b)| (a - b).abs() < 2.0 * tol));
        }

        /// With truncation (by bond or by cutoff): LAPACK's run keeps the proven fidelity
        /// bound against the dense state, and stays within the sum of both runs' bound angles
        /// of the faer run (the metric's triangle inequality through the dense state). Where
        /// the spectrum at a cut is degenerate the two may keep different, equally good,
        /// subspaces, so that is what can be asserted; when neither discarded anything they
        /// agree entry by entry.
        #[test]
        fn truncated_lapack_mps_matches_dense_and_faer(
            rc in random_circuit(4, 10, 80),
            chi in 2usize..6,
            exp in 2i32..6,
        ) {
            let expected = dense(&rc);
            for t in [Truncation::exact().with_max_bond(chi), Truncation::exact().with_cutoff(10f64.powi(-exp))] {
                let lapack = mps(&rc, t, SvdBackend::Lapack);
                let faer = mps(&rc, t, SvdBackend::Faer);
                let (l, f) = (lapack.to_dense().unwrap(), faer.to_dense().unwrap());
                let rl = lapack.truncation_report();
                let true_fid = fidelity(&l, &expected);
                prop_assert!(true_fid >= rl.fidelity_lower_bound - 1e-12,
                    "{t:?}: true fidelity {true_fid} below the bound {}", rl.fidelity_lower_bound);
                if let Some(chi) = t.max_bond() {
                    prop_assert!(lapack.bond_dimensions().iter().all(|&b| b <= chi));
                }
                let reach = (angle_bound(&lapack) + angle_bound(&faer)).min(std::f64::consts::FRAC_PI_2);
                let lf = fidelity(&l, &f);
                prop_assert!(lf >= reach.cos().powi(2) - 1e-12, "{t:?}: |<lapack|faer>|^2 = {lf}");
                if rl.truncating_cuts == 0 && faer.truncation_report().truncating_cuts == 0 {
                    let tol = tolerance(&rc);
                    let d = max_dist(&l, &f);
                    prop_assert!(d < 2.0 * tol, "{t:?}: nothing discarded, yet {d:e} apart");
                }
            }
        }
    }

    /// On a circuit with generic angles (no degenerate spectrum at any cut) the truncated runs
    /// of both backends keep the same subspaces: same states, same discarded weights.
    #[test]
    fn generic_truncated_runs_agree() {
        let n = 10;
        let layers = 6;
        let mut c = Circuit::new(n).unwrap().with_params(2 * n * layers);
        for layer in 0..layers {
            for q in 0..n {
                c.ry(Param::theta(2 * (layer * n + q)), q).unwrap();
                c.rz(Param::theta(2 * (layer * n + q) + 1), q).unwrap();
            }
            for q in (layer % 2..n - 1).step_by(2) {
                c.cx(q, q + 1).unwrap();
            }
        }
        c.rxx(Param::theta(0), 0, n - 1).unwrap();
        let theta: Vec<f64> = (0..2 * n * layers)
            .map(|i| 0.1 + 2.9 * ((i * 7919 + 13) % 997) as f64 / 997.0)
            .collect();
        let rc = RandomCircuit {
            circuit: c,
            theta,
            x: vec![],
        };
        for chi in [2, 4, 8] {
            let t = Truncation::exact().with_max_bond(chi);
            let (l, f) = (
                mps(&rc, t, SvdBackend::Lapack),
                mps(&rc, t, SvdBackend::Faer),
            );
            let (rl, rf) = (l.truncation_report(), f.truncation_report());
            assert!(rl.truncating_cuts > 0, "chi {chi} truncates");
            assert_eq!(rl.truncating_cuts, rf.truncating_cuts);
            for (a, b) in rl.discarded_per_bond.iter().zip(&rf.discarded_per_bond) {
                assert!((a - b).abs() < 1e-10, "chi {chi}: discarded {a} vs {b}");
            }
            let d = max_dist(&l.to_dense().unwrap(), &f.to_dense().unwrap());
            assert!(d < 1e-9, "chi {chi}: states {d:e} apart");
        }
    }

    /// The public `thin_svd` on both backends: same singular values, and LAPACK's factors
    /// reconstruct the input.
    #[test]
    fn thin_svd_backends_agree() {
        let (m, n) = (12, 7);
        let a: Vec<C64> = (0..m * n)
            .map(|i| C64::new(((i * 37) % 11) as f64 - 5.0, ((i * 13) % 7) as f64 - 3.0))
            .collect();
        let f = qfl::thin_svd(&a, m, n, SvdBackend::Faer, Parallelism::Sequential).unwrap();
        let l = qfl::thin_svd(&a, m, n, SvdBackend::Lapack, Parallelism::Sequential).unwrap();
        let scale = f.singular_values()[0];
        for (x, y) in f.singular_values().iter().zip(l.singular_values()) {
            assert!((x - y).abs() < 1e-13 * scale, "{x} vs {y}");
        }
        let s = l.singular_values();
        for j in 0..n {
            for i in 0..m {
                let rec: C64 = (0..n.min(m))
                    .map(|t| l.u(i, t) * s[t] * l.v(j, t).conj())
                    .sum();
                assert!((rec - a[i + m * j]).norm() < 1e-12 * scale);
            }
        }
        assert!(matches!(
            qfl::thin_svd(&a, m, n + 1, SvdBackend::Lapack, Parallelism::Sequential),
            Err(qfl::Error::LengthMismatch { .. })
        ));
    }
}
