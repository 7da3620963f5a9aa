//! Shot sampling on MPS against the exact probabilities, by a chi-square test at fixed seeds.

use qfl::{BitString, Circuit, DenseState, MpsConfig, MpsState, Param, StateBackend, Truncation};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// Upper critical value of the chi-square distribution at p = 0.001 by the Wilson-Hilferty
/// approximation (accurate to about 1% for df >= 3).
pub(super) fn chi2_critical_001(df: usize) -> f64 {
    let d = df as f64;
    let z = 3.0902; // standard normal quantile at 0.999
    d * (1.0 - 2.0 / (9.0 * d) + z * (2.0 / (9.0 * d)).sqrt()).powi(3)
}

/// Pearson chi-square of `samples` against `probs`, pooling bins with expected count < 5.
pub(super) fn chi_square(samples: &[BitString], probs: &[f64]) -> (f64, usize) {
    let shots = samples.len() as f64;
    let mut counts = vec![0usize; probs.len()];
    for s in samples {
        counts[s.to_index().unwrap() as usize] += 1;
    }
    let (mut stat, mut bins) = (0.0, 0usize);
    let (mut pooled_obs, mut pooled_exp) = (0.0, 0.0);
    for (c, p) in counts.iter().zip(probs) {
        let e = p * shots;
        if e < 5.0 {
            pooled_obs += *c as f64;
            pooled_exp += e;
        } else {
            stat += (*c as f64 - e).powi(2) / e;
            bins += 1;
        }
    }
    if pooled_exp >= 5.0 {
        stat += (pooled_obs - pooled_exp).powi(2) / pooled_exp;
        bins += 1;
    } else {
        assert!(
            pooled_obs <= 20.0,
            "{pooled_obs} shots in bins of expected total {pooled_exp}"
        );
    }
    (stat, bins - 1)
}

pub(super) fn test_circuit(n: usize) -> Circuit {
    let mut c = Circuit::new(n).unwrap().with_params(2 * n);
    for layer in 0..3 {
        for q in 0..n {
            c.ry(Param::theta(q).scaled(1.0 + layer as f64), q).unwrap();
            c.rz(Param::theta(n + q), q).unwrap();
        }
        for q in (layer % 2..n - 1).step_by(2) {
            c.cx(q, q + 1).unwrap();
        }
        c.crx(0.8, n - 1, 0).unwrap();
    }
    c
}

pub(super) fn theta(n: usize) -> Vec<f64> {
    (0..2 * n).map(|i| 0.35 + 0.41 * i as f64).collect()
}

#[test]
fn mps_samples_follow_dense_probabilities() {
    let n = 7;
    let c = test_circuit(n);
    let th = theta(n);
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &th, &[]).unwrap();
    let probs: Vec<f64> = dense.amplitudes().iter().map(|a| a.norm_sqr()).collect();
    let mut mps = MpsState::new(
        n,
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact()),
    )
    .unwrap();
    mps.run(&c, &th, &[]).unwrap();
    // Sample with the centre at each end and in the middle (different environments are used).
    for (k, centre) in [0, n / 2, n - 1].into_iter().enumerate() {
        mps.move_centre(centre).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + k as u64);
        let samples = mps.sample(20_000, &mut rng).unwrap();
        let (stat, df) = chi_square(&samples, &probs);
        let crit = chi2_critical_001(df);
        assert!(
            stat < crit,
            "centre {centre}: chi2 {stat:.1} >= {crit:.1} (df {df})"
        );
    }
    // The dense sampler passes the same test.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (stat, df) = chi_square(&dense.sample(20_000, &mut rng).unwrap(), &probs);
    assert!(stat < chi2_critical_001(df));
}

#[test]
pub(super) fn chi_square_test_has_power() {
    // Samples of one state tested against the probabilities of a slightly different state fail.
    let n = 6;
    let c = test_circuit(n);
    let th = theta(n);
    let mut other = th.clone();
    other[0] += 0.3;
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &other, &[]).unwrap();
    let probs: Vec<f64> = dense.amplitudes().iter().map(|a| a.norm_sqr()).collect();
    let mut mps = MpsState::new(
        n,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    mps.run(&c, &th, &[]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (stat, df) = chi_square(&mps.sample(20_000, &mut rng).unwrap(), &probs);
    assert!(
        stat > chi2_critical_001(df),
        "a wrong distribution must be rejected: {stat} (df {df})"
    );
}

#[test]
fn sampling_is_reproducible_from_a_seed() {
    let n = 6;
    let mut mps = MpsState::new(
        n,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    mps.run(&test_circuit(n), &theta(n), &[]).unwrap();
    let a = mps.sample(500, &mut ChaCha8Rng::seed_from_u64(42)).unwrap();
    let b = mps.sample(500, &mut ChaCha8Rng::seed_from_u64(42)).unwrap();
    let c = mps.sample(500, &mut ChaCha8Rng::seed_from_u64(43)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn truncated_mps_samples_its_own_distribution() {
    // With truncation the sampler must follow the truncated MPS exactly (not the ideal state).
    let n = 8;
    let c = test_circuit(n);
    let th = theta(n);
    let mut mps = MpsState::new(
        n,
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact().with_max_bond(2)),
    )
    .unwrap();
    mps.run(&c, &th, &[]).unwrap();
    assert!(
        mps.fidelity_estimate() < 0.999,
        "the test needs a truncated state"
    );
    mps.move_centre(n / 2).unwrap();
    let probs: Vec<f64> = mps
        .to_dense()
        .unwrap()
        .iter()
        .map(|a| a.norm_sqr())
        .collect();
    let (stat, df) = chi_square(
        &mps.sample(20_000, &mut ChaCha8Rng::seed_from_u64(11))
            .unwrap(),
        &probs,
    );
    assert!(stat < chi2_critical_001(df), "chi2 {stat} (df {df})");
}
