//! Non-unitary QASMBench circuits (mid-circuit measurement, reset, classical `if`): the exact
//! outcome distribution from dense branching against seeded trajectories on both backends,
//! by a chi-square goodness-of-fit test.
//!
//! Test: outcomes whose expected count `N p` is at least 5 are bins of their own; the rest
//! are pooled into one bin (merged into the smallest bin if the pool expects fewer than 5).
//! An observed outcome with exact probability 0 fails at once. The statistic is compared
//! with the chi-square law with `bins - 1` degrees of freedom and the test passes when the
//! p-value exceeds 0.001. Seeds are fixed, so the test is deterministic; the p-values are
//! printed (`cargo test -- --nocapture`).

use std::collections::BTreeMap;

use qfl::qasm::parse_file;
use qfl::run::{Distribution, exact_distribution, run_shots};
use qfl::{DenseState, MpsConfig, MpsState, Truncation};

use super::qasm::data_dir;

const FILES: [&str; 5] = [
    "bb84_n8.qasm",
    "inverseqft_n4.qasm",
    "ipea_n2.qasm",
    "qec_sm_n5.qasm",
    "shor_n5.qasm",
];
const SHOTS: usize = 4000;
const SEED: u64 = 20_261_124;
const P_THRESHOLD: f64 = 1e-3;

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let a = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |a, (i, c)| a + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized upper incomplete gamma `Q(a, x)` (Numerical Recipes' series and continued
/// fraction).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let prefactor = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut ap, mut del, mut sum) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * prefactor
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        prefactor * h
    }
}

/// Upper tail probability of the chi-square law with `dof` degrees of freedom.
fn chi_square_p_value(statistic: f64, dof: usize) -> f64 {
    gamma_q(dof as f64 / 2.0, statistic / 2.0)
}

#[test]
fn chi_square_tail_matches_tables() {
    for (x, k, p) in [
        (3.841_458_820_694_124, 1, 0.05),
        (10.827_566_170_662_733, 1, 0.001),
        (18.307_038_053_275_146, 10, 0.05),
        (2.0 * 1000f64.ln(), 2, 0.001),
        (29.588_298_445_074_41, 10, 0.001),
    ] {
        let got = chi_square_p_value(x, k);
        assert!(
            (got - p).abs() < 1e-9 * p.max(1e-3),
            "k={k}, x={x}: {got} vs {p}"
        );
    }
}

/// (statistic, degrees of freedom, p-value), or an error naming an impossible outcome.
fn chi_square(exact: &Distribution, counts: &BTreeMap<String, usize>) -> (f64, usize, f64) {
    let n = counts.values().sum::<usize>() as f64;
    for (k, &c) in counts {
        assert!(
            exact.get(k).copied().unwrap_or(0.0) > 0.0,
            "outcome {k} observed {c} times but its exact probability is 0"
        );
    }
    let mut bins: Vec<(f64, f64)> = Vec::new(); // (expected, observed)
    let mut pool = (0.0, 0.0);
    for (k, &p) in exact {
        let observed = counts.get(k).copied().unwrap_or(0) as f64;
        if n * p >= 5.0 {
            bins.push((n * p, observed));
        } else {
            pool.0 += n * p;
            pool.1 += observed;
        }
    }
    if pool.0 >= 5.0 || bins.is_empty() {
        bins.push(pool);
    } else if pool.0 > 0.0 || pool.1 > 0.0 {
        let smallest = bins
            .iter_mut()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("at least one bin");
        smallest.0 += pool.0;
        smallest.1 += pool.1;
    }
    let statistic: f64 = bins.iter().map(|(e, o)| (o - e) * (o - e) / e).sum();
    let dof = bins.len().saturating_sub(1);
    let p = if dof == 0 {
        1.0
    } else {
        chi_square_p_value(statistic, dof)
    };
    (statistic, dof, p)
}

#[test]
fn trajectories_match_exact_branching_on_both_backends() {
    for name in FILES {
        let program = parse_file(data_dir().join(name)).unwrap();
        let n = program.n_qubits();
        let exact = exact_distribution(&program, DenseState::new(n).unwrap()).unwrap();
        let total: f64 = exact.values().sum();
        assert!((total - 1.0).abs() < 1e-10, "{name}: total {total}");
        // The same branching on an exact MPS agrees with the dense one.
        let mps = || {
            MpsState::new(
                n,
                MpsConfig::default()
                    .with_update(qfl::UpdateScheme::Centre)
                    .with_truncation(Truncation::exact().with_max_bond(256)),
            )
            .unwrap()
        };
        let exact_mps = exact_distribution(&program, mps()).unwrap();
        assert_eq!(
            exact.keys().collect::<Vec<_>>(),
            exact_mps.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (k, p) in &exact {
            assert!((p - exact_mps[k]).abs() < 1e-10, "{name} {k}");
        }

        let dense_counts = run_shots(&program, DenseState::new(n).unwrap(), SHOTS, SEED).unwrap();
        let mps_counts = run_shots(&program, mps(), SHOTS, SEED).unwrap();
        for (label, counts) in [("dense", &dense_counts), ("mps", &mps_counts)] {
            assert_eq!(counts.values().sum::<usize>(), SHOTS);
            let (statistic, dof, p) = chi_square(&exact, counts);
            eprintln!(
                "{name} {label}: {} outcomes, chi2 = {statistic:.2}, dof = {dof}, p = {p:.3}",
                exact.len()
            );
            assert!(
                p > P_THRESHOLD,
                "{name} {label}: chi2 = {statistic:.2} with {dof} dof, p = {p:e}"
            );
        }
    }
}

/// The known answers: the syndrome circuit corrects its planted error, and the inverse
/// QFT of the uniform state reads 0.
#[test]
fn known_outcomes() {
    let exact = |name: &str| {
        let p = parse_file(data_dir().join(name)).unwrap();
        exact_distribution(&p, DenseState::new(p.n_qubits()).unwrap()).unwrap()
    };
    let qec = exact("qec_sm_n5.qasm");
    assert_eq!(qec.len(), 1);
    assert!((qec["01 000"] - 1.0).abs() < 1e-12, "{qec:?}");
    let iqft = exact("inverseqft_n4.qasm");
    assert_eq!(iqft.len(), 1);
    assert!((iqft["0 0 0 0"] - 1.0).abs() < 1e-12, "{iqft:?}");
}
