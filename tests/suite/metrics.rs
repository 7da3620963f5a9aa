//! Metrics: ROC AUC against scikit-learn fixtures and a brute-force pair count, its
//! symmetry and invariance properties, errors, accuracy and mean/std.

use proptest::prelude::*;
use qfl::Error;
use qfl::metrics::{MeanStd, accuracy, argmax_rows, mean_std, roc_auc, roc_auc_ovr};
use serde_json::Value;

use crate::common::proptest_config;

fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/auc_fixtures.json");
    let text = std::fs::read_to_string(path).expect("tests/data/auc_fixtures.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// AUC by counting all positive/negative pairs, ties as one half: the definition.
fn brute_force_auc(labels: &[bool], scores: &[f64]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &li) in labels.iter().enumerate() {
        for (j, &lj) in labels.iter().enumerate() {
            if li && !lj {
                pairs += 1.0;
                wins += if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

#[test]
fn binary_auc_matches_sklearn_fixtures() {
    let fx = fixtures();
    let cases = fx["binary"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let labels: Vec<bool> = ints(&case["labels"]).iter().map(|&l| l == 1).collect();
        let scores = floats(&case["scores"]);
        let expected = case["auc"].as_f64().unwrap();
        let got = roc_auc(&labels, &scores).unwrap();
        assert!(
            (got - expected).abs() <= 1e-12,
            "{}: {got} vs sklearn {expected}",
            case["name"]
        );
        assert!((got - brute_force_auc(&labels, &scores)).abs() <= 1e-12);
    }
}

#[test]
fn multiclass_auc_matches_sklearn_fixtures() {
    let fx = fixtures();
    let cases = fx["multiclass"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let n_classes = case["n_classes"].as_u64().unwrap() as usize;
        let labels = ints(&case["labels"]);
        let scores = floats(&case["scores"]);
        let got = roc_auc_ovr(&labels, &scores, n_classes).unwrap();
        let name = &case["name"];
        for (c, (a, e)) in got
            .per_class
            .iter()
            .zip(floats(&case["per_class"]))
            .enumerate()
        {
            assert!((a - e).abs() <= 1e-12, "{name} class {c}: {a} vs {e}");
        }
        let (m, w) = (
            case["macro"].as_f64().unwrap(),
            case["weighted"].as_f64().unwrap(),
        );
        assert!((got.macro_average - m).abs() <= 1e-12, "{name} macro");
        assert!((got.weighted_average - w).abs() <= 1e-12, "{name} weighted");
    }
}

#[test]
fn auc_errors() {
    assert!(matches!(
        roc_auc(&[true, true], &[0.1, 0.2]),
        Err(Error::SingleClass { n: 2, .. })
    ));
    assert!(matches!(roc_auc(&[], &[]), Err(Error::SingleClass { .. })));
    assert!(matches!(
        roc_auc(&[true, false], &[0.1]),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        roc_auc(&[true, false, true], &[0.1, f64::NAN, 0.3]),
        Err(Error::NonFiniteValue { index: 1, .. })
    ));
    assert!(matches!(
        roc_auc(&[true, false], &[f64::INFINITY, 0.0]),
        Err(Error::NonFiniteValue { index: 0, .. })
    ));
    // Class 2 has no sample: its one-vs-rest AUC is undefined.
    let e = roc_auc_ovr(&[0, 1, 0], &[0.5; 9], 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ROC AUC is undefined for class 2 vs rest: all 3 labels are negative"
    );
    assert!(matches!(
        roc_auc_ovr(&[0, 1], &[0.5; 5], 2),
        Err(Error::LengthMismatch {
            expected: 4,
            got: 5,
            ..
        })
    ));
    assert!(matches!(
        roc_auc_ovr(&[0, 3], &[0.5; 4], 2),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        roc_auc_ovr(&[0, 0], &[0.5; 2], 1),
        Err(Error::InvalidData { .. })
    ));
    assert!(matches!(
        roc_auc_ovr(&[0, 1], &[0.5, 0.5, f64::NAN, 0.5], 2),
        Err(Error::NonFiniteValue { index: 2, .. })
    ));
}

#[test]
fn two_class_ovr_is_the_binary_auc() {
    let labels = [0, 1, 1, 0, 1, 0, 0];
    let p1 = [0.2, 0.9, 0.4, 0.4, 0.7, 0.1, 0.6];
    let scores: Vec<f64> = p1.iter().flat_map(|&p| [1.0 - p, p]).collect();
    let ovr = roc_auc_ovr(&labels, &scores, 2).unwrap();
    let bin = roc_auc(&labels.map(|l| l == 1), &p1).unwrap();
    assert!((ovr.per_class[1] - bin).abs() < 1e-15);
    assert!((ovr.per_class[0] - bin).abs() < 1e-15);
    assert!((ovr.macro_average - bin).abs() < 1e-15);
}

#[test]
fn accuracy_argmax_and_mean_std() {
    assert_eq!(accuracy(&[0, 1, 2, 1], &[0, 1, 1, 1]).unwrap(), 0.75);
    assert!(accuracy(&[0], &[0, 1]).is_err());
    assert!(accuracy(&[], &[]).is_err());
    assert_eq!(
        argmax_rows(&[0.1, 0.7, 0.2, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0], 3).unwrap(),
        [1, 0, 2]
    );
    assert!(argmax_rows(&[0.1, 0.7], 3).is_err());
    assert!(argmax_rows(&[0.1, f64::NAN], 2).is_err());
    let ms = mean_std(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(ms.mean, 2.5);
    assert!((ms.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(format!("{ms:.3}"), "2.500 ± 1.291 (n = 4)");
    assert_eq!(
        mean_std(&[0.8]).unwrap(),
        MeanStd {
            mean: 0.8,
            std: 0.0,
            n: 1
        }
    );
    assert!(mean_std(&[]).is_err());
    assert!(mean_std(&[1.0, f64::INFINITY]).is_err());
}

/// Labels with both classes, and integer-valued scores (so ties are common and the monotone
/// transforms below keep the order exactly).
fn labelled_scores() -> impl Strategy<Value = (Vec<bool>, Vec<f64>)> {
    (2usize..60).prop_flat_map(|n| {
        (
            proptest::collection::vec(any::<bool>(), n),
            proptest::collection::vec(-20i32..20, n),
            0..n,
            0..n - 1,
        )
            .prop_map(|(mut labels, s, a, b)| {
                // Force one positive and one negative at distinct places.
                let b = if b >= a { b + 1 } else { b };
                labels[a] = true;
                labels[b] = false;
                (labels, s.into_iter().map(f64::from).collect())
            })
    })
}

proptest! {
    #![proptest_config(proptest_config(128))]

    #[test]
    fn auc_equals_pair_count((labels, scores) in labelled_scores()) {
        let auc = roc_auc(&labels, &scores).unwrap();
        prop_assert!((auc - brute_force_auc(&labels, &scores)).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&auc));
    }

    #[test]
    fn negated_scores_give_one_minus_auc((labels, scores) in labelled_scores()) {
        let neg: Vec<f64> = scores.iter().map(|s| -s).collect();
        let sum = roc_auc(&labels, &scores).unwrap() + roc_auc(&labels, &neg).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-12);
        // Swapping the classes does the same.
        let flipped: Vec<bool> = labels.iter().map(|l| !l).collect();
        let sum = roc_auc(&labels, &scores).unwrap() + roc_auc(&flipped, &scores).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn auc_is_invariant_under_monotone_transforms((labels, scores) in labelled_scores()) {
        let auc = roc_auc(&labels, &scores).unwrap();
        let transforms: [fn(f64) -> f64; 3] = [
            |s| 3.0 * s - 7.0,
            |s| (s / 4.0).exp(),
            |s| 1.0 / (1.0 + (-s).exp()),
        ];
        for t in transforms {
            let ts: Vec<f64> = scores.iter().map(|&s| t(s)).collect();
            prop_assert_eq!(roc_auc(&labels, &ts).unwrap(), auc);
        }
    }

    #[test]
    fn ovr_classes_are_binary_aucs(
        n_classes in 2usize..6,
        raw in proptest::collection::vec((0usize..6, -5i32..5), 12..60),
        extra in proptest::collection::vec(-5i32..5, 60 * 6),
    ) {
        // Each class appears (first n_classes samples), the rest random.
        let labels: Vec<usize> = raw.iter().enumerate().map(|(i, &(l, _))| if i < n_classes { i } else { l % n_classes }).collect();
        let scores: Vec<f64> = (0..labels.len() * n_classes).map(|k| f64::from(extra[k])).collect();
        let ovr = roc_auc_ovr(&labels, &scores, n_classes).unwrap();
        let mut weighted = 0.0;
        for c in 0..n_classes {
            let bin: Vec<bool> = labels.iter().map(|&l| l == c).collect();
            let col: Vec<f64> = (0..labels.len()).map(|i| scores[i * n_classes + c]).collect();
            let a = roc_auc(&bin, &col).unwrap();
            prop_assert_eq!(ovr.per_class[c], a);
            weighted += a * bin.iter().filter(|&&b| b).count() as f64;
        }
        let mean = ovr.per_class.iter().sum::<f64>() / n_classes as f64;
        prop_assert!((ovr.macro_average - mean).abs() < 1e-15);
        prop_assert!((ovr.weighted_average - weighted / labels.len() as f64).abs() < 1e-15);
    }
}
