//! The quantum fusion layer: structure, the degree-P polynomial property, gradients on both
//! backends, layouts.

use qfl::qfl::{
    Backend, Entangler, QflConfig, QflLayer, Readout, bandwidth_reducing_order, layout_bandwidth,
};
use qfl::{MpsConfig, Truncation};

fn exact_mps() -> Backend {
    Backend::Mps(
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact()),
    )
}

fn inputs(layer: &QflLayer, seed: f64) -> (Vec<f64>, Vec<f64>) {
    let angles = (0..layer.n_inputs())
        .map(|i| (seed + 0.9 * i as f64).sin() * 2.5)
        .collect();
    let theta = (0..layer.n_params())
        .map(|i| (seed * 1.3 + 0.37 * i as f64).cos() * 1.7)
        .collect();
    (angles, theta)
}

#[test]
fn parameter_count_is_linear_in_modalities_and_repeats() {
    for (m, d, p) in [(2, 1, 1), (5, 2, 3), (64, 1, 4), (207, 1, 2)] {
        let layer = QflLayer::new(QflConfig::new(m, d, p)).unwrap();
        assert_eq!(layer.n_params(), 2 * m * d * p);
        assert_eq!(layer.n_qubits(), m * d);
        let rzz =
            QflLayer::new(QflConfig::new(m, d, p).with_entangler(Entangler::BrickRzz)).unwrap();
        assert_eq!(rzz.n_params(), p * (2 * m * d + (m * d - 1)));
    }
}

/// Every output, as a function of one input angle `a` with everything else fixed, is a
/// trigonometric polynomial of degree at most `P`: sampled at `N` equispaced points, its
/// discrete Fourier coefficients (the exact least-squares fit) vanish above frequency `P`,
/// and for generic parameters the frequency-`P` coefficient does not.
#[test]
fn outputs_are_trigonometric_polynomials_of_degree_p() {
    for (m, d, p) in [(3, 1, 1), (3, 1, 2), (2, 2, 3), (4, 1, 4)] {
        let layer = QflLayer::new(QflConfig::new(m, d, p).with_readout(&[
            Readout::Z,
            Readout::ZzNeighbours,
            Readout::X,
        ]))
        .unwrap();
        let (angles, theta) = inputs(&layer, 0.3);
        let n_points = 4 * p + 5;
        for which in [0, layer.n_inputs() - 1] {
            let samples: Vec<Vec<f64>> = (0..n_points)
                .map(|t| {
                    let mut a = angles.clone();
                    a[which] = 2.0 * std::f64::consts::PI * t as f64 / n_points as f64;
                    layer.forward(Backend::Dense, &a, &theta).unwrap()
                })
                .collect();
            let mut top_coefficient = 0.0f64;
            for out in 0..layer.n_outputs() {
                for freq in 0..=n_points / 2 {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (t, s) in samples.iter().enumerate() {
                        let phase =
                            2.0 * std::f64::consts::PI * (freq * t) as f64 / n_points as f64;
                        re += s[out] * phase.cos();
                        im += s[out] * phase.sin();
                    }
                    let amplitude = (re * re + im * im).sqrt() / n_points as f64;
                    if freq > p {
                        assert!(
                            amplitude < 1e-12,
                            "M{m} D{d} P{p}: output {out} has frequency {freq} ({amplitude:e})"
                        );
                    } else if freq == p {
                        top_coefficient = top_coefficient.max(amplitude);
                    }
                }
            }
            assert!(
                top_coefficient > 1e-4,
                "M{m} D{d} P{p}: degree P is reached ({top_coefficient:e})"
            );
        }
    }
}

fn finite_difference(
    layer: &QflLayer,
    backend: Backend,
    angles: &[f64],
    theta: &[f64],
    g: &[f64],
    which: (bool, usize),
) -> f64 {
    let h = 1e-4;
    let f = |delta: f64| {
        let (mut a, mut t) = (angles.to_vec(), theta.to_vec());
        if which.0 {
            a[which.1] += delta;
        } else {
            t[which.1] += delta;
        }
        let out = layer.forward(backend, &a, &t).unwrap();
        out.iter().zip(g).map(|(o, w)| o * w).sum::<f64>()
    };
    (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h)
}

#[test]
fn backward_matches_finite_differences_and_backends_agree() {
    for entangler in [
        Entangler::BrickCz,
        Entangler::BrickRzz,
        Entangler::RingCz,
        Entangler::AllToAllCz,
    ] {
        let layer = QflLayer::new(
            QflConfig::new(3, 2, 2)
                .with_entangler(entangler)
                .with_readout(&[Readout::Z, Readout::ZzNeighbours, Readout::X])
                .with_layout(&[2, 0, 1]),
        )
        .unwrap();
        let (angles, theta) = inputs(&layer, 1.1);
        let g: Vec<f64> = (0..layer.n_outputs())
            .map(|k| ((k * 7) % 5) as f64 - 2.0)
            .collect();
        let (da, dt) = layer.backward(Backend::Dense, &angles, &theta, &g).unwrap();
        let (da_m, dt_m) = layer.backward(exact_mps(), &angles, &theta, &g).unwrap();
        for i in 0..angles.len() {
            let fd = finite_difference(&layer, Backend::Dense, &angles, &theta, &g, (true, i));
            assert!(
                (fd - da[i]).abs() < 1e-8,
                "{entangler:?} angle {i}: {fd} vs {}",
                da[i]
            );
            assert!((da_m[i] - da[i]).abs() < 1e-8);
        }
        for i in (0..theta.len()).step_by(3) {
            let fd = finite_difference(&layer, Backend::Dense, &angles, &theta, &g, (false, i));
            assert!(
                (fd - dt[i]).abs() < 1e-8,
                "{entangler:?} theta {i}: {fd} vs {}",
                dt[i]
            );
        }
        for (a, b) in dt.iter().zip(&dt_m) {
            assert!((a - b).abs() < 1e-8);
        }
        let (out_d, out_m) = (
            layer.forward(Backend::Dense, &angles, &theta).unwrap(),
            layer.forward(exact_mps(), &angles, &theta).unwrap(),
        );
        for (a, b) in out_d.iter().zip(&out_m) {
            assert!((a - b).abs() < 1e-10);
        }
    }
}

/// With layout `L`, modality `L[s]` sits on chain slot `s`: the same as the identity layout
/// fed with the angles permuted accordingly.
#[test]
fn layout_permutes_registers() {
    let (m, d) = (4, 2);
    let layout = [3, 1, 0, 2];
    let permuted = QflLayer::new(QflConfig::new(m, d, 2).with_layout(&layout)).unwrap();
    let identity = QflLayer::new(QflConfig::new(m, d, 2)).unwrap();
    let (angles, theta) = inputs(&permuted, 0.7);
    let mut moved = vec![0.0; angles.len()];
    for (slot, &modality) in layout.iter().enumerate() {
        for j in 0..d {
            moved[slot * d + j] = angles[modality * d + j];
        }
    }
    let a = permuted.forward(Backend::Dense, &angles, &theta).unwrap();
    let b = identity.forward(Backend::Dense, &moved, &theta).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-12);
    }
}

#[test]
fn bandwidth_reducing_order_on_known_graphs() {
    // A path whose vertices are shuffled: the order recovers bandwidth 1.
    let shuffled = [5, 2, 7, 0, 3, 6, 1, 4];
    let edges: Vec<(usize, usize)> = shuffled.windows(2).map(|w| (w[0], w[1])).collect();
    let order = bandwidth_reducing_order(8, &edges).unwrap();
    assert_eq!(layout_bandwidth(&(0..8).collect::<Vec<_>>(), &edges), 7);
    assert_eq!(layout_bandwidth(&order, &edges), 1);
    // A 3 x 5 grid numbered along its rows: bandwidth 5 in the given order. Reverse
    // Cuthill-McKee is a heuristic: it reaches 4 here (the optimum is 3).
    let idx = |r: usize, c: usize| c + 5 * r;
    let mut grid = Vec::new();
    for r in 0..3 {
        for c in 0..5 {
            if c + 1 < 5 {
                grid.push((idx(r, c), idx(r, c + 1)));
            }
            if r + 1 < 3 {
                grid.push((idx(r, c), idx(r + 1, c)));
            }
        }
    }
    let order = bandwidth_reducing_order(15, &grid).unwrap();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..15).collect::<Vec<_>>(), "a permutation");
    assert_eq!(layout_bandwidth(&(0..15).collect::<Vec<_>>(), &grid), 5);
    assert!(
        layout_bandwidth(&order, &grid) <= 4,
        "{}",
        layout_bandwidth(&order, &grid)
    );
    assert!(bandwidth_reducing_order(3, &[(0, 5)]).is_err());
    // The layer takes the order from a graph.
    let cfg = QflConfig::new(8, 1, 1).with_modality_graph(&edges).unwrap();
    assert_eq!(layout_bandwidth(cfg.layout(), &edges), 1);
    assert!(
        QflConfig::new(3, 1, 1)
            .with_modality_graph(&[(0, 3)])
            .is_err()
    );
}

#[test]
fn invalid_settings_are_errors() {
    for cfg in [
        QflConfig::new(0, 1, 1),
        QflConfig::new(2, 0, 1),
        QflConfig::new(2, 1, 0),
        QflConfig::new(3, 1, 1).with_layout(&[0, 0, 1]),
        QflConfig::new(3, 1, 1).with_layout(&[0, 1]),
        QflConfig::new(3, 1, 1).with_readout(&[]),
    ] {
        assert!(matches!(
            QflLayer::new(cfg),
            Err(qfl::Error::InvalidSetting { .. })
        ));
    }
    let layer = QflLayer::new(QflConfig::new(2, 1, 1)).unwrap();
    assert!(layer.forward(Backend::Dense, &[0.1], &[0.0; 4]).is_err());
    assert!(
        layer
            .backward(Backend::Dense, &[0.1, 0.2], &[0.0; 4], &[1.0])
            .is_err()
    );
}

/// 256 modalities on MPS: forward and backward run at max bond 64, and the gradient matches
/// finite differences of the MPS forward pass.
#[test]
fn many_modalities_on_mps() {
    let layer = QflLayer::new(QflConfig::new(256, 1, 2)).unwrap();
    let backend = Backend::Mps(
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::default().with_max_bond(64)),
    );
    let (angles, theta) = inputs(&layer, 0.2);
    let g: Vec<f64> = (0..layer.n_outputs())
        .map(|k| if k % 3 == 0 { 1.0 } else { -0.5 })
        .collect();
    let (da, dt) = layer.backward(backend, &angles, &theta, &g).unwrap();
    for &i in &[0usize, 100, 255] {
        let fd = finite_difference(&layer, backend, &angles, &theta, &g, (true, i));
        assert!((fd - da[i]).abs() < 1e-8, "angle {i}: {fd} vs {}", da[i]);
    }
    for &i in &[0usize, 511, 1023] {
        let fd = finite_difference(&layer, backend, &angles, &theta, &g, (false, i));
        assert!((fd - dt[i]).abs() < 1e-8, "theta {i}: {fd} vs {}", dt[i]);
    }
}
