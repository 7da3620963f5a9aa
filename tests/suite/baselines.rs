//! The classical fusion baselines: shapes, parameter counts, gradients, fitting a toy
//! problem reproducibly, and the TFN and GCN specifics.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use qfl::fusion::baselines::{
    Gcn, ModelKind, TFN_MAX_FUSED, Tfn, build_baseline, normalized_adjacency,
};
use qfl::fusion::{FusionModel, FusionSpec, count_parameters, new_varmap, seeded_init};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Every baseline with small settings; the GCN twice (complete graph, and a path when M > 1).
fn kinds(n_modalities: usize) -> Vec<ModelKind> {
    let mut kinds = vec![
        ModelKind::Early { embed: 4 },
        ModelKind::Late { embed: 3 },
        ModelKind::Tfn { embed: 2 },
        ModelKind::Lmf { embed: 3, rank: 2 },
        ModelKind::Mfb {
            embed: 3,
            factor: 3,
            out: 4,
        },
        ModelKind::Gcn {
            embed: 3,
            gcn_hidden: 5,
            edges: None,
        },
    ];
    if n_modalities > 1 {
        kinds.push(ModelKind::Gcn {
            embed: 3,
            gcn_hidden: 5,
            edges: Some((1..n_modalities).map(|m| (m - 1, m)).collect()),
        });
    }
    kinds
}

fn build(
    kind: &ModelKind,
    spec: &FusionSpec,
    seed: u64,
) -> candle_core::Result<(VarMap, Box<dyn FusionModel>)> {
    let (varmap, vb) = new_varmap();
    let model = build_baseline(kind, spec, vb)?;
    seeded_init(&varmap, seed)?;
    Ok((varmap, model))
}

/// One `[batch, d_m]` tensor per modality, entries uniform in [-1, 1).
fn random_inputs(spec: &FusionSpec, batch: usize, seed: u64) -> candle_core::Result<Vec<Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    spec.modality_dims
        .iter()
        .map(|&d| {
            let v: Vec<f64> = (0..batch * d)
                .map(|_| 2.0 * rng.random::<f64>() - 1.0)
                .collect();
            Tensor::from_vec(v, (batch, d), &Device::Cpu)
        })
        .collect()
}

#[test]
fn baselines_shapes_finite_and_parameter_counts() -> candle_core::Result<()> {
    let specs = [
        (vec![4], 2, 0),
        (vec![4], 3, 6),
        (vec![3, 5], 2, 6),
        (vec![3, 5], 3, 0),
        (vec![2, 3, 1, 4, 2, 3], 3, 4),
    ];
    for (dims, n_classes, hidden) in specs {
        let spec = FusionSpec {
            modality_dims: dims,
            n_classes,
            hidden,
        };
        for kind in kinds(spec.n_modalities()) {
            let (varmap, model) = build(&kind, &spec, 7)?;
            assert_eq!(
                count_parameters(&varmap),
                kind.parameter_count(&spec),
                "{kind:?} on {spec:?}"
            );
            assert_eq!(model.name(), kind.label());
            for batch in [1, 5] {
                let logits = model.forward(&random_inputs(&spec, batch, 11)?)?;
                assert_eq!(logits.dims(), [batch, n_classes], "{kind:?} on {spec:?}");
                let values = logits.flatten_all()?.to_vec1::<f64>()?;
                assert!(values.iter().all(|x| x.is_finite()), "{kind:?} on {spec:?}");
            }
        }
    }
    Ok(())
}

/// The documented formulas evaluated by hand on the reference spec (dims [5, 3], 3 classes,
/// hidden 8; e = 4, r = 2, k = 3, o = 4, g = 6). Encoders: P_enc(5, 4) = 5*8+8+8*4+4 = 84,
/// P_enc(3, 4) = 68, together 152.
#[test]
fn baselines_parameter_counts_by_hand() -> candle_core::Result<()> {
    let spec = FusionSpec {
        modality_dims: vec![5, 3],
        n_classes: 3,
        hidden: 8,
    };
    let cases = [
        // P_enc(8, 4) = 64+8+32+4 = 108, head 4*3+3.
        (ModelKind::Early { embed: 4 }, 108 + 15),
        (ModelKind::Late { embed: 4 }, 152 + 2 * 15),
        // (4+1)^2 * 3 + 3.
        (ModelKind::Tfn { embed: 4 }, 152 + 75 + 3),
        // r*C*M*(e+1) + r + C = 2*3*2*5 + 2 + 3.
        (ModelKind::Lmf { embed: 4, rank: 2 }, 152 + 60 + 5),
        // M*(e*k*o + k*o) + o*C + C = 2*(48+12) + 12 + 3.
        (
            ModelKind::Mfb {
                embed: 4,
                factor: 3,
                out: 4,
            },
            152 + 120 + 15,
        ),
        // (e*g+g) + (g*g+g) + g*C + C = 30 + 42 + 21.
        (
            ModelKind::Gcn {
                embed: 4,
                gcn_hidden: 6,
                edges: None,
            },
            152 + 93,
        ),
    ];
    for (kind, expected) in cases {
        let (varmap, _) = build(&kind, &spec, 1)?;
        assert_eq!(count_parameters(&varmap), expected, "{kind:?}");
        assert_eq!(kind.parameter_count(&spec), expected, "{kind:?}");
    }
    Ok(())
}

#[test]
fn baselines_gradients_reach_every_parameter() -> candle_core::Result<()> {
    let spec = FusionSpec {
        modality_dims: vec![3, 4, 2],
        n_classes: 3,
        hidden: 5,
    };
    let batch = 8;
    let inputs = random_inputs(&spec, batch, 3)?;
    let targets = Tensor::from_vec(
        (0..batch as u32).map(|i| i % 3).collect::<Vec<u32>>(),
        batch,
        &Device::Cpu,
    )?;
    for kind in kinds(spec.n_modalities()) {
        let (varmap, model) = build(&kind, &spec, 5)?;
        let loss = candle_nn::loss::cross_entropy(&model.forward(&inputs)?, &targets)?;
        let grads = loss.backward()?;
        let data = varmap.data().lock().expect("parameter store lock");
        assert!(!data.is_empty());
        for (name, var) in data.iter() {
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{kind:?}: no gradient for {name}"));
            assert_eq!(grad.dims(), var.dims(), "{kind:?}: {name}");
            let size = grad.abs()?.sum_all()?.to_scalar::<f64>()?;
            assert!(
                size.is_finite() && size > 0.0,
                "{kind:?}: gradient of {name} is {size}"
            );
        }
    }
    Ok(())
}

/// A separable 3-class problem over 3 modalities: class means per modality plus small noise.
fn toy_problem(seed: u64) -> candle_core::Result<(FusionSpec, Vec<Tensor>, Tensor)> {
    let spec = FusionSpec {
        modality_dims: vec![4, 3, 2],
        n_classes: 3,
        hidden: 6,
    };
    let per_class = 12;
    let n = per_class * spec.n_classes;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let means: Vec<Vec<Vec<f64>>> = (0..spec.n_classes)
        .map(|_| {
            spec.modality_dims
                .iter()
                .map(|&d| (0..d).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect())
                .collect()
        })
        .collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % spec.n_classes) as u32).collect();
    let inputs = spec
        .modality_dims
        .iter()
        .enumerate()
        .map(|(m, &d)| {
            let mut v = Vec::with_capacity(n * d);
            for &c in &labels {
                for j in 0..d {
                    v.push(means[c as usize][m][j] + 0.2 * (2.0 * rng.random::<f64>() - 1.0));
                }
            }
            Tensor::from_vec(v, (n, d), &Device::Cpu)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let targets = Tensor::from_vec(labels, n, &Device::Cpu)?;
    Ok((spec, inputs, targets))
}

/// 200 full-batch AdamW steps; the losses of every step and the final training accuracy.
fn train(
    kind: &ModelKind,
    spec: &FusionSpec,
    inputs: &[Tensor],
    targets: &Tensor,
    seed: u64,
) -> candle_core::Result<(Vec<f64>, f64)> {
    let (varmap, model) = build(kind, spec, seed)?;
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 0.03,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut losses = Vec::with_capacity(200);
    for _ in 0..200 {
        let loss = candle_nn::loss::cross_entropy(&model.forward(inputs)?, targets)?;
        losses.push(loss.to_scalar::<f64>()?);
        opt.backward_step(&loss)?;
    }
    let predicted = model.forward(inputs)?.argmax(1)?;
    let correct = predicted
        .eq(targets)?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok((losses, correct / targets.dim(0)? as f64))
}

#[test]
fn baselines_fit_a_separable_problem_reproducibly() -> candle_core::Result<()> {
    let (spec, inputs, targets) = toy_problem(2024)?;
    for kind in kinds(spec.n_modalities()) {
        let (losses, accuracy) = train(&kind, &spec, &inputs, &targets, 42)?;
        assert!(
            accuracy >= 0.95,
            "{kind:?}: training accuracy {accuracy}, losses {:?} .. {:?}",
            losses.first(),
            losses.last()
        );
        let (again, _) = train(&kind, &spec, &inputs, &targets, 42)?;
        let bits = |l: &[f64]| l.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&losses), bits(&again), "{kind:?} is not reproducible");
    }
    Ok(())
}

#[test]
fn baselines_tfn_refuses_an_exponential_fusion() -> candle_core::Result<()> {
    // (9 + 1)^6 = 10^6 fits under 2^20; (10 + 1)^6 does not.
    let six = FusionSpec {
        modality_dims: vec![1; 6],
        n_classes: 2,
        hidden: 0,
    };
    assert!(10usize.pow(6) <= TFN_MAX_FUSED && 11usize.pow(6) > TFN_MAX_FUSED);
    let (_, vb) = new_varmap();
    assert!(Tfn::new(&six, 9, vb).is_ok());
    let (varmap, vb) = new_varmap();
    let err = Tfn::new(&six, 10, vb).expect_err("11^6 > 2^20");
    assert!(err.to_string().contains("TFN_MAX_FUSED"), "{err}");
    assert_eq!(count_parameters(&varmap), 0, "nothing allocated");
    // Many modalities: (3 + 1)^64 overflows usize; still an error, not a panic.
    let many = FusionSpec {
        modality_dims: vec![1; 64],
        n_classes: 2,
        hidden: 0,
    };
    let (_, vb) = new_varmap();
    assert!(build_baseline(&ModelKind::Tfn { embed: 3 }, &many, vb).is_err());
    assert_eq!(
        ModelKind::Tfn { embed: 3 }.parameter_count(&many),
        usize::MAX
    );
    Ok(())
}

#[test]
fn baselines_gcn_normalized_adjacency_by_hand() -> candle_core::Result<()> {
    // Path 0 - 1 - 2 with self-loops: degrees 2, 3, 2.
    let a = normalized_adjacency(3, Some(&[(0, 1), (2, 1)]))?;
    let s6 = 1.0 / 6f64.sqrt();
    let expected = [0.5, s6, 0.0, s6, 1.0 / 3.0, s6, 0.0, s6, 0.5];
    for (x, y) in a.iter().zip(expected) {
        assert!((x - y).abs() < 1e-15, "{a:?}");
    }
    // Complete graph on 4 nodes: every entry 1/4. A repeated edge counts once.
    let full = normalized_adjacency(4, None)?;
    assert!(full.iter().all(|x| (x - 0.25).abs() < 1e-15), "{full:?}");
    assert_eq!(
        normalized_adjacency(3, Some(&[(0, 1), (1, 0), (1, 2)]))?,
        a,
        "duplicates count once"
    );
    // No edges: the identity.
    assert_eq!(
        normalized_adjacency(2, Some(&[]))?,
        vec![1.0, 0.0, 0.0, 1.0]
    );
    // Invalid edges are errors.
    assert!(normalized_adjacency(3, Some(&[(0, 3)])).is_err());
    assert!(normalized_adjacency(3, Some(&[(1, 1)])).is_err());
    assert!(normalized_adjacency(0, None).is_err());

    // The model holds the same matrix.
    let spec = FusionSpec {
        modality_dims: vec![2, 2, 2],
        n_classes: 2,
        hidden: 0,
    };
    let (_, vb) = new_varmap();
    let gcn = Gcn::new(&spec, 3, 4, Some(&[(0, 1), (1, 2)]), vb)?;
    let held = gcn.adjacency().flatten_all()?.to_vec1::<f64>()?;
    assert_eq!(held, a);
    let (_, vb) = new_varmap();
    assert!(Gcn::new(&spec, 3, 4, Some(&[(0, 5)]), vb).is_err());
    Ok(())
}

#[test]
fn baselines_gcn_graph_changes_the_output() -> candle_core::Result<()> {
    let spec = FusionSpec {
        modality_dims: vec![3, 2, 4],
        n_classes: 3,
        hidden: 4,
    };
    let inputs = random_inputs(&spec, 6, 9)?;
    let logits = |edges: Option<Vec<(usize, usize)>>| -> candle_core::Result<Vec<f64>> {
        let kind = ModelKind::Gcn {
            embed: 3,
            gcn_hidden: 5,
            edges,
        };
        let (_, model) = build(&kind, &spec, 13)?;
        model.forward(&inputs)?.flatten_all()?.to_vec1::<f64>()
    };
    let full = logits(None)?;
    let path = logits(Some(vec![(0, 1), (1, 2)]))?;
    // The complete graph given explicitly is the default.
    let explicit_full = logits(Some(vec![(0, 1), (1, 2), (0, 2)]))?;
    assert_eq!(full, explicit_full);
    let diff = full
        .iter()
        .zip(&path)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff > 1e-6, "path and complete graph give the same logits");
    Ok(())
}

#[test]
fn baselines_reject_bad_settings_and_inputs() -> candle_core::Result<()> {
    let spec = FusionSpec {
        modality_dims: vec![3, 2],
        n_classes: 2,
        hidden: 0,
    };
    let bad_kinds = [
        ModelKind::Early { embed: 0 },
        ModelKind::Late { embed: 0 },
        ModelKind::Lmf { embed: 2, rank: 0 },
        ModelKind::Mfb {
            embed: 2,
            factor: 0,
            out: 2,
        },
        ModelKind::Gcn {
            embed: 2,
            gcn_hidden: 0,
            edges: None,
        },
    ];
    for kind in bad_kinds {
        let (_, vb) = new_varmap();
        assert!(build_baseline(&kind, &spec, vb).is_err(), "{kind:?}");
    }
    let empty = FusionSpec {
        modality_dims: vec![],
        n_classes: 2,
        hidden: 0,
    };
    let no_classes = FusionSpec {
        n_classes: 0,
        ..spec.clone()
    };
    for bad in [&empty, &no_classes] {
        for kind in kinds(2) {
            let (_, vb) = new_varmap();
            assert!(build_baseline(&kind, bad, vb).is_err(), "{kind:?} {bad:?}");
        }
    }
    // Inputs: wrong count, wrong width, mismatched batch.
    let good = random_inputs(&spec, 4, 1)?;
    let narrow = random_inputs(
        &FusionSpec {
            modality_dims: vec![3, 1],
            ..spec.clone()
        },
        4,
        1,
    )?;
    let short_batch = vec![good[0].clone(), random_inputs(&spec, 3, 1)?[1].clone()];
    for kind in kinds(2) {
        let (_, model) = build(&kind, &spec, 1)?;
        assert!(model.forward(&good).is_ok());
        assert!(model.forward(&good[..1]).is_err(), "{kind:?}");
        assert!(model.forward(&[]).is_err(), "{kind:?}");
        assert!(model.forward(&narrow).is_err(), "{kind:?}");
        assert!(model.forward(&short_batch).is_err(), "{kind:?}");
    }
    Ok(())
}
