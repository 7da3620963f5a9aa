//! The training harness: reproducibility, early stopping restores the best parameters,
//! errors.

use qfl::data::Split;
use qfl::fusion::quantum::{QflFusion, QflSettings, ReadoutMode};
use qfl::fusion::{FusionSpec, new_varmap, seeded_init};
use qfl::qfl::{Backend, QflConfig};
use qfl::train::{TensorData, TrainConfig, TrainOutcome, train};
use qfl::{MpsConfig, Truncation};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Two noisy modalities, two classes, 60 samples.
fn data() -> TensorData {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let n = 60;
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for &y in &labels {
        let s = if y == 1 { 0.6 } else { -0.6 };
        a.extend((0..4).map(|_| s + rng.random::<f64>() - 0.5));
        b.extend((0..3).map(|_| -s + 1.4 * (rng.random::<f64>() - 0.5)));
    }
    TensorData::from_rows(&[(a, 4), (b, 3)], labels).unwrap()
}

fn split() -> Split {
    Split {
        seed: 0,
        train: (0..20).collect(),
        val: (20..36).collect(),
        test: (36..60).collect(),
    }
}

fn run(seed: u64, config: &TrainConfig) -> TrainOutcome {
    let spec = FusionSpec {
        modality_dims: vec![4, 3],
        n_classes: 2,
        hidden: 3,
    };
    let settings = QflSettings {
        layer: QflConfig::new(2, 1, 2),
        backend: Backend::Mps(
            MpsConfig::default()
                .with_update(qfl::UpdateScheme::Centre)
                .with_truncation(Truncation::default().with_max_bond(8)),
        ),
        readout: ReadoutMode::Exact,
    };
    let (varmap, vb) = new_varmap();
    let model = QflFusion::new(&spec, &settings, vb).unwrap();
    seeded_init(&varmap, seed).unwrap();
    train(&model, &varmap, &data(), &split(), config, |_| {}).unwrap()
}

#[test]
fn training_is_reproducible_and_keeps_the_best_epoch() {
    let config = TrainConfig {
        epochs: 40,
        batch_size: 8,
        learning_rate: 0.05,
        patience: 8,
        seed: 3,
    };
    let a = run(5, &config);
    let b = run(5, &config);
    assert_eq!(a.curve, b.curve, "same seeds, same curve");
    assert_eq!(a.test_probabilities, b.test_probabilities);
    let c = run(
        5,
        &TrainConfig {
            seed: 4,
            ..config.clone()
        },
    );
    assert_ne!(a.curve, c.curve, "the batch order depends on the seed");
    // The kept epoch has the lowest validation loss, and early stopping respected patience.
    let best = a
        .curve
        .iter()
        .min_by(|x, y| x.val_loss.total_cmp(&y.val_loss))
        .unwrap();
    assert_eq!(best.epoch, a.best_epoch);
    assert!(a.curve.len() == config.epochs || a.curve.len() == a.best_epoch + config.patience);
    // Training helped: the best validation loss is below the first epoch's.
    assert!(best.val_loss < a.curve[0].val_loss);
    assert!(a.curve[a.best_epoch - 1].train_loss < a.curve[0].train_loss);
    // Probabilities for every test row, each a distribution.
    assert_eq!(a.test_probabilities.len(), 24);
    assert!(
        a.test_probabilities
            .iter()
            .all(|p| (p.iter().sum::<f64>() - 1.0).abs() < 1e-12)
    );
    assert_eq!(
        a.test_labels,
        (36..60).map(|i| (i % 2) as u32).collect::<Vec<_>>()
    );
    assert!(a.n_parameters > 0 && a.seconds >= 0.0);
}

#[test]
fn bad_settings_are_errors() {
    let spec = FusionSpec {
        modality_dims: vec![4, 3],
        n_classes: 2,
        hidden: 0,
    };
    let settings = QflSettings {
        layer: QflConfig::new(2, 1, 1),
        backend: Backend::Dense,
        readout: ReadoutMode::Exact,
    };
    let (varmap, vb) = new_varmap();
    let model = QflFusion::new(&spec, &settings, vb).unwrap();
    let empty = Split {
        train: vec![],
        ..split()
    };
    assert!(matches!(
        train(
            &model,
            &varmap,
            &data(),
            &empty,
            &TrainConfig::default(),
            |_| {}
        ),
        Err(qfl::Error::InvalidSetting { .. })
    ));
    let zero_batch = TrainConfig {
        batch_size: 0,
        ..TrainConfig::default()
    };
    assert!(train(&model, &varmap, &data(), &split(), &zero_batch, |_| {}).is_err());
    assert!(TensorData::from_rows(&[(vec![0.0; 5], 2)], vec![0, 1, 0]).is_err());
    // A model whose modality count does not fit the data fails with a message, not a panic.
    let (v2, vb2) = new_varmap();
    let wrong = QflFusion::new(
        &FusionSpec {
            modality_dims: vec![4],
            ..spec.clone()
        },
        &QflSettings {
            layer: QflConfig::new(1, 1, 1),
            ..settings.clone()
        },
        vb2,
    )
    .unwrap();
    assert!(matches!(
        train(
            &wrong,
            &v2,
            &data(),
            &split(),
            &TrainConfig::default(),
            |_| {}
        ),
        Err(qfl::Error::Training { .. })
    ));
}
