//! Truncated MPS: the fidelity estimate against the true fidelity `|<psi_mps|psi_dense>|^2`.
//!
//! What is proven (docs/theory.md): with the centre on the cut, truncating a fraction `eps` of
//! the weight and renormalizing moves the state by the Fubini-Study angle `asin(sqrt(eps))`;
//! unitaries preserve angles and the angle is a metric, so the true fidelity is at least
//! `cos^2(min(pi/2, sum_k asin(sqrt(eps_k))))`. That bound is asserted on every case.
//!
//! What is estimated: `prod_k (1 - eps_k)`. It is a heuristic (discards at different cuts
//! are not independent), so it is tested statistically over a fixed set of seeded circuits.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use qfl::{DenseState, MpsConfig, MpsState, SplitMethod, StateBackend, Truncation};

use super::common::{RandomCircuit, fidelity, random_circuit};

fn truncated(rc: &RandomCircuit, t: Truncation) -> (f64, qfl::TruncationReport) {
    let (f, r, _) = truncated_with_events(rc, t, SplitMethod::default());
    (f, r)
}

fn truncated_with_events(
    rc: &RandomCircuit,
    t: Truncation,
    split: SplitMethod,
) -> (f64, qfl::TruncationReport, Vec<qfl::TruncationEvent>) {
    let n = rc.circuit.n_qubits();
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(t)
        .with_split(split);
    let mut mps = MpsState::new(n, config).unwrap();
    mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    assert!(
        (mps.norm() - 1.0).abs() < 1e-10,
        "truncated state is renormalized"
    );
    if let Some(chi) = t.max_bond() {
        assert!(mps.bond_dimensions().iter().all(|&b| b <= chi));
    }
    let f = fidelity(&mps.to_dense().unwrap(), dense.amplitudes());
    (f, mps.truncation_report(), mps.truncation_events().to_vec())
}

proptest! {
    #![proptest_config(super::common::proptest_config(96))]

    /// The proven lower bound holds for bond-limited and cutoff-limited truncation, with
    /// either split method, and a run that discarded nothing is exact.
    #[test]
    fn fidelity_lower_bound_holds(rc in random_circuit(6, 10, 80), chi in 2usize..6, exp in 2i32..6) {
        let settings = [Truncation::exact().with_max_bond(chi), Truncation::exact().with_cutoff(10f64.powi(-exp))];
        for (t, split) in settings.into_iter().flat_map(|t| [(t, SplitMethod::Gram), (t, SplitMethod::Svd)]) {
            let (f, r, events) = truncated_with_events(&rc, t, split);
            prop_assert!(f >= r.fidelity_lower_bound - 1e-12, "true {f} below bound {}", r.fidelity_lower_bound);
            prop_assert!(r.fidelity_estimate <= 1.0 && r.fidelity_lower_bound <= r.fidelity_estimate + 1e-15);
            prop_assert!((r.log10_fidelity_estimate - r.fidelity_estimate.log10()).abs() < 1e-12);
            if r.truncating_cuts == 0 {
                prop_assert!((f - 1.0).abs() < 1e-9);
            }
            // The per-bond sums are the sums of the recorded events.
            let mut per_bond = vec![0.0; rc.circuit.n_qubits() - 1];
            for e in &events {
                per_bond[e.bond] += e.discarded;
            }
            prop_assert_eq!(events.len(), r.truncating_cuts);
            for (a, b) in per_bond.iter().zip(&r.discarded_per_bond) {
                prop_assert!((a - b).abs() <= 1e-15 * a.max(1.0));
            }
        }
    }
}

proptest! {
    #![proptest_config(super::common::proptest_config(48))]

    /// Each cutoff rule reaches the cuts and keeps its promise there: under the
    /// discarded-weight rule and the default (both rules) no cut discards more than the
    /// cutoff's share of its weight; under every rule the proven fidelity bound holds. A
    /// large cutoff makes the rules disagree often.
    #[test]
    fn cutoff_rules_keep_their_bounds(rc in random_circuit(6, 9, 60), exp in 1i32..5) {
        let cutoff = 10f64.powi(-exp);
        for rule in [qfl::CutoffRule::Both, qfl::CutoffRule::DiscardedWeight, qfl::CutoffRule::RelativeValue] {
            let t = Truncation::exact().with_cutoff(cutoff).with_cutoff_rule(rule);
            let (f, r, events) = truncated_with_events(&rc, t, SplitMethod::Svd);
            prop_assert!(f >= r.fidelity_lower_bound - 1e-12, "{rule:?}: true {f} below bound {}", r.fidelity_lower_bound);
            if rule != qfl::CutoffRule::RelativeValue {
                for e in &events {
                    prop_assert!(e.discarded <= cutoff * (1.0 + 1e-9), "{rule:?}: {e:?} over {cutoff}");
                }
            }
        }
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// 400 seeded random circuits (6-10 qubits, up to 80 gates of every kind).
fn circuits() -> Vec<RandomCircuit> {
    let mut runner = TestRunner::deterministic();
    let strategy = random_circuit(6, 10, 80);
    (0..400)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// The estimate is consistent with the truth: under bond limits, the median of
/// true/estimate is within 5% of 1 and the 5th-95th percentiles within [0.8, 1.25] where the
/// estimate is at least 0.5; under cutoffs, the estimated infidelity is within a factor 2 of
/// the true one at the median and rarely understates it (95th percentile of true/estimated
/// below 2). Figures measured by this test are printed with `--nocapture` and recorded in
/// docs/theory.md.
#[test]
fn fidelity_estimate_is_consistent() {
    let cs = circuits();
    let mut ratios = Vec::new();
    let mut inf_ratios = Vec::new();
    for (k, rc) in cs.iter().enumerate() {
        let (f, r) = truncated(rc, Truncation::exact().with_max_bond(2 + k % 4));
        if r.fidelity_estimate >= 0.5 && r.truncating_cuts > 0 {
            ratios.push(f / r.fidelity_estimate);
        }
        let (f, r) = truncated(
            rc,
            Truncation::exact().with_cutoff(10f64.powi(-2 - (k % 4) as i32)),
        );
        let inf_est = 1.0 - r.fidelity_estimate;
        if inf_est > 1e-12 {
            inf_ratios.push((1.0 - f) / inf_est);
        }
    }
    ratios.sort_by(f64::total_cmp);
    inf_ratios.sort_by(f64::total_cmp);
    let (lo, med, hi) = (
        quantile(&ratios, 0.05),
        quantile(&ratios, 0.5),
        quantile(&ratios, 0.95),
    );
    let (ilo, imed, ihi) = (
        quantile(&inf_ratios, 0.05),
        quantile(&inf_ratios, 0.5),
        quantile(&inf_ratios, 0.95),
    );
    println!(
        "bond-limited, estimate >= 0.5: n = {}, true/estimate 5% {lo:.3} median {med:.3} 95% {hi:.3}",
        ratios.len()
    );
    println!(
        "cutoff-limited: n = {}, true/estimated infidelity 5% {ilo:.3} median {imed:.3} 95% {ihi:.3}",
        inf_ratios.len()
    );
    assert!(
        ratios.len() >= 100 && inf_ratios.len() >= 100,
        "too few truncating cases"
    );
    assert!((med - 1.0).abs() < 0.05, "median {med}");
    assert!(lo > 0.8 && hi < 1.25, "5%-95% band [{lo}, {hi}]");
    assert!((0.5..=2.0).contains(&imed), "infidelity median {imed}");
    assert!(ihi < 2.0, "infidelity 95th percentile {ihi}");
}
