//! The quantum fusion layer inside candle: gradients through the custom op, both backends,
//! learning, reproducibility.

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use qfl::fusion::quantum::{QflFusion, QflSettings, ReadoutMode};
use qfl::fusion::{FusionModel, FusionSpec, count_parameters, new_varmap, seeded_init};
use qfl::qfl::{Backend, QflConfig, Readout};
use qfl::{MpsConfig, Truncation};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

fn spec() -> FusionSpec {
    FusionSpec {
        modality_dims: vec![3, 2],
        n_classes: 2,
        hidden: 4,
    }
}

fn settings(backend: Backend) -> QflSettings {
    QflSettings {
        layer: QflConfig::new(2, 2, 2).with_readout(&[Readout::Z, Readout::ZzNeighbours]),
        backend,
        readout: ReadoutMode::Exact,
    }
}

fn build(backend: Backend, seed: u64) -> (VarMap, QflFusion) {
    let (varmap, vb) = new_varmap();
    let model = QflFusion::new(&spec(), &settings(backend), vb).unwrap();
    seeded_init(&varmap, seed).unwrap();
    (varmap, model)
}

fn batch(n: usize, seed: u64) -> (Vec<Tensor>, Tensor) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let mut m0 = Vec::new();
    let mut m1 = Vec::new();
    for &y in &labels {
        let s = if y == 1 { 1.0 } else { -1.0 };
        for _ in 0..3 {
            m0.push(0.8 * s + 0.6 * (rng.random::<f64>() - 0.5));
        }
        for _ in 0..2 {
            m1.push(-0.5 * s + 0.6 * (rng.random::<f64>() - 0.5));
        }
    }
    let dev = Device::Cpu;
    (
        vec![
            Tensor::from_vec(m0, (n, 3), &dev).unwrap(),
            Tensor::from_vec(m1, (n, 2), &dev).unwrap(),
        ],
        Tensor::from_vec(labels, n, &dev).unwrap(),
    )
}

fn loss(model: &QflFusion, xs: &[Tensor], ys: &Tensor) -> Tensor {
    candle_nn::loss::cross_entropy(&model.forward(xs).unwrap(), ys).unwrap()
}

fn var_named(varmap: &VarMap, name: &str) -> Var {
    varmap.data().lock().unwrap()[name].clone()
}

/// candle's autograd through the QFL op equals central finite differences of the loss, for
/// circuit angles and for encoder weights (which reach the circuit through the angles).
#[test]
fn gradients_through_the_op_match_finite_differences() {
    let (varmap, model) = build(Backend::Dense, 3);
    let (xs, ys) = batch(4, 1);
    let grads = loss(&model, &xs, &ys).backward().unwrap();
    for (name, indices) in [
        ("qfl.theta", vec![0usize, 5, 11, 15]),
        ("encoder0.l0.weight", vec![0, 7]),
        ("encoder1.l1.weight", vec![1, 6]),
    ] {
        let var = var_named(&varmap, name);
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let base = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for &i in &indices {
            let h = 1e-5;
            let at = |d: f64| {
                let mut v = base.clone();
                v[i] += d;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l = loss(&model, &xs, &ys).to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                l
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-7,
                "{name}[{i}]: finite difference {fd} vs autograd {}",
                g[i]
            );
        }
    }
}

#[test]
fn dense_and_mps_agree_inside_candle() {
    let mps = Backend::Mps(
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact()),
    );
    let (_vd, dense_model) = build(Backend::Dense, 8);
    let (_vm, mps_model) = build(mps, 8);
    let (xs, ys) = batch(5, 2);
    let a = dense_model
        .forward(&xs)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let b = mps_model
        .forward(&xs)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-10);
    }
    let _ = ys;
}

fn train(seed: u64, steps: usize) -> (Vec<f64>, f64) {
    let (varmap, model) = build(
        Backend::Mps(MpsConfig::default().with_update(qfl::UpdateScheme::Centre)),
        seed,
    );
    let (xs, ys) = batch(24, 5);
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 0.05,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let l = loss(&model, &xs, &ys);
        losses.push(l.to_scalar::<f64>().unwrap());
        opt.backward_step(&l).unwrap();
    }
    let pred = model
        .forward(&xs)
        .unwrap()
        .argmax(1)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    let truth = ys.to_vec1::<u32>().unwrap();
    let acc = pred.iter().zip(&truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64;
    (losses, acc)
}

/// The model learns a separable problem end to end (encoders and circuit), and training is
/// reproducible bit for bit from the seed.
#[test]
fn qfl_model_learns_and_is_reproducible() {
    let (losses, acc) = train(11, 60);
    assert!(
        acc >= 0.95,
        "training accuracy {acc}, losses {:?}",
        &losses[losses.len() - 5..]
    );
    assert!(
        losses.last().unwrap() < &(0.5 * losses[0]),
        "loss {} -> {}",
        losses[0],
        losses.last().unwrap()
    );
    let (again, _) = train(11, 60);
    assert_eq!(losses, again, "bit-for-bit reproducible");
    let (other, _) = train(12, 5);
    assert_ne!(losses[..5], other[..], "another seed starts elsewhere");
}

#[test]
fn parameter_count_and_shadow_readout() {
    let (varmap, model) = build(Backend::Dense, 1);
    // encoders: (3*4 + 4 + 4*2 + 2) + (2*4 + 4 + 4*2 + 2); layer 2*4*2 = 16; head 7*2 + 2.
    let expected = (12 + 4 + 8 + 2) + (8 + 4 + 8 + 2) + 16 + (7 * 2 + 2);
    assert_eq!(count_parameters(&varmap), expected);
    assert_eq!(model.layer().n_params(), 16);
    assert_eq!(model.name(), "QFL (D=2, P=2)");
    let (v2, vb) = new_varmap();
    let shadow = QflFusion::new(
        &spec(),
        &QflSettings {
            readout: ReadoutMode::Shadows {
                shots: 4000,
                seed: 9,
            },
            ..settings(Backend::Dense)
        },
        vb,
    )
    .unwrap();
    seeded_init(&v2, 1).unwrap();
    let (xs, _) = batch(3, 4);
    let exact = model
        .quantum_features(&xs)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let est = shadow
        .quantum_features(&xs)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for (e, x) in est.iter().zip(&exact) {
        assert!((e - x).abs() < 5.0 * (9.0f64 / 4000.0).sqrt(), "{e} vs {x}");
    }
    // A wrong modality count is an error, not a panic.
    assert!(model.forward(&xs[..1]).is_err());
}
