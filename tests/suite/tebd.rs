//! The TEBD update scheme (`UpdateScheme::Tebd`) against the dense oracle and the centred
//! scheme: exact without truncation (state and local read-out), independent of the thread
//! count, canonical and normalized after a truncated run. The automatic scheme
//! (`UpdateScheme::Auto`): when it switches to TEBD, and exact either way.

use proptest::prelude::*;
use qfl::backend::mps::{AUTO_TEBD_BOND, AUTO_TEBD_MIN_QUBITS};
use qfl::{
    Circuit, DenseState, Gate, MpsConfig, MpsState, Parallelism, Param, SplitMethod, StateBackend,
    Truncation, UpdateScheme,
};

use super::common::{RandomCircuit, max_dist, random_circuit, tolerance};

fn tebd_config(truncation: Truncation, split: SplitMethod, par: Parallelism) -> MpsConfig {
    MpsConfig::default()
        .with_truncation(truncation)
        .with_split(split)
        .with_parallelism(par)
        .with_update(UpdateScheme::Tebd)
}

fn run_tebd(rc: &RandomCircuit, config: MpsConfig) -> MpsState {
    let mut mps = MpsState::new(rc.circuit.n_qubits(), config).unwrap();
    mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    mps
}

/// A brick of RY/RZ layers and CX on even then odd pairs, plus one long-range CX per layer.
fn brick(n: usize, layers: usize, long_range: bool) -> (Circuit, Vec<f64>) {
    let mut c = Circuit::new(n).unwrap().with_params(2 * n * layers);
    for layer in 0..layers {
        for q in 0..n {
            let k = 2 * (layer * n + q);
            c.ry(Param::theta(k), q).unwrap();
            c.rz(Param::theta(k + 1), q).unwrap();
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                c.cx(q, q + 1).unwrap();
            }
        }
        if long_range {
            c.cx(layer % (n / 2), n - 1 - layer % 3).unwrap();
        }
    }
    let theta = (0..2 * n * layers)
        .map(|i| 0.3 + 1.7 * ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    (c, theta)
}

proptest! {
    #![proptest_config(super::common::proptest_config(128))]

    /// Without truncation TEBD is exact: amplitudes, <Z_i> by contraction and by the local
    /// read-out all equal the dense state's; the state is canonical and normalized; two
    /// threads give the same bits as one.
    #[test]
    fn tebd_equals_dense(rc in random_circuit(1, 10, 60)) {
        let n = rc.circuit.n_qubits();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let seq = run_tebd(&rc, tebd_config(Truncation::exact(), SplitMethod::Gram, Parallelism::Sequential));
        let par = run_tebd(&rc, tebd_config(Truncation::exact(), SplitMethod::Gram, Parallelism::Rayon(2)));
        let tol = tolerance(&rc);
        let psi = seq.to_dense().unwrap();
        let d = max_dist(&psi, dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
        prop_assert_eq!(&psi, &par.to_dense().unwrap());
        let zd = dense.z_expectations().unwrap();
        let zm = seq.z_expectations().unwrap();
        let zl = seq.local_z_expectations().unwrap();
        for q in 0..n {
            prop_assert!((zm[q] - zd[q]).abs() < tol, "<Z_{q}>: {} vs {}", zm[q], zd[q]);
            prop_assert!((zl[q] - zd[q]).abs() < tol, "local <Z_{q}>: {} vs {}", zl[q], zd[q]);
        }
        prop_assert!((seq.norm() - 1.0).abs() < tol);
        prop_assert!(seq.canonical_deviation() < 1e-10);
        prop_assert_eq!(seq.fidelity_estimate(), 1.0);
    }

    /// The same with the SVD split.
    #[test]
    fn tebd_svd_split_equals_dense(rc in random_circuit(1, 9, 40)) {
        let n = rc.circuit.n_qubits();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let mps = run_tebd(&rc, tebd_config(Truncation::exact(), SplitMethod::Svd, Parallelism::Sequential));
        let tol = tolerance(&rc);
        let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
    }

    /// A TEBD run continues from any state: centred gates first, then TEBD, then centred
    /// again, equals the dense state.
    #[test]
    fn tebd_after_centred_gates(a in random_circuit(4, 8, 30), b in random_circuit(4, 8, 30)) {
        let n = a.circuit.n_qubits().min(b.circuit.n_qubits());
        let cut = |rc: &RandomCircuit| {
            let mut c = Circuit::new(n).unwrap().with_params(rc.theta.len()).with_inputs(rc.x.len());
            for inst in rc.circuit.instructions() {
                if inst.qubits().iter().all(|&q| q < n) {
                    c.push(inst.gate().clone(), inst.qubits()).unwrap();
                }
            }
            c
        };
        let (ca, cb) = (cut(&a), cut(&b));
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&ca, &a.theta, &a.x).unwrap();
        dense.run(&cb, &b.theta, &b.x).unwrap();
        dense.run(&ca, &a.theta, &a.x).unwrap();
        let centre = MpsConfig::default().with_update(qfl::UpdateScheme::Centre).with_truncation(Truncation::exact());
        let mut mps = MpsState::new(n, centre).unwrap();
        mps.run(&ca, &a.theta, &a.x).unwrap();
        let mut tebd = MpsState::new(n, centre.with_update(UpdateScheme::Tebd)).unwrap();
        // The second TEBD run starts from a state with bonds, the gates after it are centred.
        tebd.run(&ca, &a.theta, &a.x).unwrap();
        tebd.run(&cb, &b.theta, &b.x).unwrap();
        mps.run(&cb, &b.theta, &b.x).unwrap();
        for inst in ca.instructions() {
            let m = inst.gate().matrix(&a.theta, &a.x).unwrap();
            tebd.apply_matrix(&m, inst.qubits()).unwrap();
            mps.apply_matrix(&m, inst.qubits()).unwrap();
        }
        let tol = 3.0 * tolerance(&a).max(tolerance(&b));
        prop_assert!(max_dist(&tebd.to_dense().unwrap(), dense.amplitudes()) < tol);
        prop_assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < tol);
        // A gate applied after the run clears the local read-out.
        prop_assert_eq!(tebd.local_z_expectations().is_err(), !ca.is_empty());
        prop_assert_eq!(tebd.has_local_read_out(), ca.is_empty());
    }
}

/// A truncated TEBD run leaves a normalized, exactly canonical state whose `<Z_i>` are those
/// of its own amplitudes, a per-bond fidelity estimate below 1, bonds within the maximum,
/// and the same bits on one and two threads, also over several dependency-graph chunks.
#[test]
fn truncated_tebd_run_is_consistent() {
    let n = 12;
    let (c, theta) = brick(n, 6, true);
    let truncation = Truncation::default().with_max_bond(6);
    let seq = {
        let mut s = MpsState::new(
            n,
            tebd_config(truncation, SplitMethod::Gram, Parallelism::Sequential),
        )
        .unwrap();
        s.run(&c, &theta, &[]).unwrap();
        s
    };
    let mut par = MpsState::new(
        n,
        tebd_config(truncation, SplitMethod::Gram, Parallelism::Rayon(2)),
    )
    .unwrap();
    par.run(&c, &theta, &[]).unwrap();
    assert_eq!(seq.to_dense().unwrap(), par.to_dense().unwrap());
    assert_eq!(
        seq.local_z_expectations().unwrap(),
        par.local_z_expectations().unwrap()
    );
    assert!((seq.norm() - 1.0).abs() < 1e-12);
    assert!(seq.canonical_deviation() < 1e-10);
    assert!(seq.bond_dimensions().iter().all(|&b| b <= 6));
    let f = seq.fidelity_estimate();
    assert!(f > 0.0 && f < 1.0, "fidelity estimate {f}");
    // <Z_i> of the state held, against its own dense vector.
    let own = DenseState::from_amplitudes(seq.to_dense().unwrap()).unwrap();
    let (zm, zo) = (seq.z_expectations().unwrap(), own.z_expectations().unwrap());
    for q in 0..n {
        assert!((zm[q] - zo[q]).abs() < 1e-12);
    }
    // Both read-outs are estimates of the exact values; on this circuit both are close.
    let mut exact = DenseState::new(n).unwrap();
    exact.run(&c, &theta, &[]).unwrap();
    let ze = exact.z_expectations().unwrap();
    let zl = seq.local_z_expectations().unwrap();
    for q in 0..n {
        assert!(zl[q].abs() <= 1.0 + 1e-12);
        assert!((zl[q] - ze[q]).abs() < 0.5 && (zm[q] - ze[q]).abs() < 0.5);
    }
    // A run of more steps than one dependency-graph chunk (512) gives the same bits too.
    let (c, theta) = brick(n, 40, true);
    let run = |par| {
        let mut s = MpsState::new(n, tebd_config(truncation, SplitMethod::Gram, par)).unwrap();
        s.run(&c, &theta, &[]).unwrap();
        (s.to_dense().unwrap(), s.fidelity_estimate())
    };
    assert_eq!(run(Parallelism::Sequential), run(Parallelism::Rayon(2)));
}

/// The local read-out is refused on a state no TEBD run produced.
#[test]
fn local_readout_needs_a_tebd_run() {
    let mut s = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    assert!(s.local_z_expectations().is_err());
    assert!(!s.has_local_read_out());
    let mut c = Circuit::new(3).unwrap();
    c.h(0).unwrap();
    c.cx(0, 2).unwrap();
    s.run(&c, &[], &[]).unwrap();
    let err = s.local_z_expectations().unwrap_err().to_string();
    assert!(err.contains("TEBD"), "{err}");
}

/// Progress counts every instruction once, whichever scheme runs them.
#[test]
fn progress_counts_every_instruction() {
    // 14 qubits: Auto switches to TEBD part way without window blocks, and goes over to
    // the amplitudes with them (checked by the local read-out).
    let (c, theta) = brick(14, 6, true);
    for (update, blocks) in [
        (UpdateScheme::Centre, false),
        (UpdateScheme::Tebd, false),
        (UpdateScheme::Auto, false),
        (UpdateScheme::Centre, true),
        (UpdateScheme::Auto, true),
    ] {
        let config = MpsConfig::default()
            .with_update(update)
            .with_window_blocks(blocks);
        let mut s = MpsState::new(14, config).unwrap();
        let mut done = 0;
        s.run_with_progress(&c, &theta, &[], &mut |k| done += k)
            .unwrap();
        assert_eq!(done, c.len(), "{update:?} blocks {blocks}");
        assert_eq!(
            s.local_z_expectations().is_ok(),
            update != UpdateScheme::Centre && !blocks,
            "{update:?} blocks {blocks}"
        );
    }
    let mut ccx = Circuit::new(5).unwrap();
    ccx.h(0).unwrap();
    ccx.push(Gate::Ccx, &[0, 4, 2]).unwrap();
    let mut s = MpsState::new(5, MpsConfig::default().with_update(UpdateScheme::Tebd)).unwrap();
    let mut done = 0;
    s.run_with_progress(&ccx, &[], &[], &mut |k| done += k)
        .unwrap();
    assert_eq!(done, 2);
}

/// Auto without window blocks: with them, a chain of up to
/// `qfl::backend::mps::AMPLITUDE_TAIL_MAX_QUBITS` qubits whose max bond lets its updates cost
/// more than a gate on every amplitude (every exact run below) goes over to its amplitudes
/// instead of switching to TEBD (`auto_prefers_the_amplitudes_where_they_pay`).
fn auto_config(truncation: Truncation) -> MpsConfig {
    MpsConfig::default()
        .with_window_blocks(false)
        .with_truncation(truncation)
        .with_parallelism(Parallelism::Rayon(2))
        .with_update(UpdateScheme::Auto)
}

/// Asserts that an exact run's amplitudes and `<Z_i>` (held, and local where it switched)
/// equal the dense state's.
fn assert_auto_exact(c: &Circuit, theta: &[f64], switched: bool) {
    let n = c.n_qubits();
    let mut dense = DenseState::new(n).unwrap();
    dense.run(c, theta, &[]).unwrap();
    let mut mps = MpsState::new(n, auto_config(Truncation::exact())).unwrap();
    mps.run(c, theta, &[]).unwrap();
    let tol = 1e-12 * (1.0 + c.len() as f64) * n as f64;
    let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
    assert!(d < tol, "amplitudes differ by {d:e}");
    let zd = dense.z_expectations().unwrap();
    let zm = mps.z_expectations().unwrap();
    assert_eq!(mps.local_z_expectations().is_ok(), switched);
    let zl = mps.local_z_expectations().unwrap_or_else(|_| zm.clone());
    for q in 0..n {
        assert!(
            (zm[q] - zd[q]).abs() < tol,
            "<Z_{q}>: {} vs {}",
            zm[q],
            zd[q]
        );
        assert!(
            (zl[q] - zd[q]).abs() < tol,
            "local <Z_{q}>: {} vs {}",
            zl[q],
            zd[q]
        );
    }
    assert!(mps.canonical_deviation() < 1e-10);
}

/// Auto switches to TEBD on a long chain once a bond reaches `AUTO_TEBD_BOND` (a brick of
/// 14 qubits does within 4 layers), and stays centred on a chain of `AUTO_TEBD_MIN_QUBITS`
/// qubits, whatever its bonds, and on a GHZ chain, whose bonds stay at 2.
#[test]
fn auto_switches_on_long_entangled_chains_only() {
    const { assert!(AUTO_TEBD_BOND <= 16 && AUTO_TEBD_MIN_QUBITS < 14) };
    let (c, theta) = brick(14, 6, true);
    assert_auto_exact(&c, &theta, true);
    let (c, theta) = brick(AUTO_TEBD_MIN_QUBITS, 6, true);
    assert_auto_exact(&c, &theta, false);
    let mut ghz = Circuit::new(18).unwrap();
    ghz.h(0).unwrap();
    for q in 0..17 {
        ghz.cx(q, q + 1).unwrap();
    }
    ghz.cx(0, 17).unwrap();
    assert_auto_exact(&ghz, &[], false);
}

/// With window blocks (the default), Auto on a 14-qubit brick of six layers without
/// truncation goes over to the chain's amplitudes instead of switching to TEBD, and is
/// exact; at max bond 8 the updates stay too cheap for the amplitudes to pay, and Auto
/// switches; a brick of 20 qubits at max bond 256 goes over once its bonds reach 128 with
/// enough updates left, and reads `<Z_i>` exactly from the amplitudes before the split back
/// truncates them to 256 (see `LONG_DENSE_UPDATES_PER_QUBIT`).
#[test]
fn auto_prefers_the_amplitudes_where_they_pay() {
    let (c, theta) = brick(14, 6, true);
    let mut dense = DenseState::new(14).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    let blocks = |truncation| auto_config(truncation).with_window_blocks(true);
    let mut mps = MpsState::new(14, blocks(Truncation::exact())).unwrap();
    mps.run(&c, &theta, &[]).unwrap();
    assert!(mps.local_z_expectations().is_err(), "switched to TEBD");
    let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
    assert!(d < 1e-10, "amplitudes differ by {d:e}");
    let mut capped = MpsState::new(14, blocks(Truncation::exact().with_max_bond(8))).unwrap();
    capped.run(&c, &theta, &[]).unwrap();
    // A run that switched ends in TEBD (its centre at 0), one on the amplitudes with its
    // centre at the right end; both read locally when truncated.
    assert!(capped.local_z_expectations().is_ok());
    assert_eq!(capped.centre(), 0, "did not switch");
    // 20 qubits, ten layers, max bond 256.
    let (wide, theta) = brick(20, 10, false);
    let mut mps = MpsState::new(20, blocks(Truncation::default().with_max_bond(256))).unwrap();
    mps.run(&wide, &theta, &[]).unwrap();
    assert_eq!(mps.centre(), 19, "did not go over");
    assert_eq!(mps.bond_dimensions().iter().max(), Some(&256));
    let mut exact = DenseState::new(20).unwrap();
    exact.run(&wide, &theta, &[]).unwrap();
    let ze = exact.z_expectations().unwrap();
    let zl = mps.local_z_expectations().unwrap();
    let err = ze
        .iter()
        .zip(&zl)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-10, "local <Z_i> off by {err:e}");
}

/// A run that finishes on its amplitudes and truncates them at the split back keeps the
/// amplitudes' one-qubit density matrices as its local read-out. A 16-qubit brick of 40
/// layers at max bond 32 goes over once a bond reaches 32, before anything was truncated,
/// so the local `<Z_i>` are the exact circuit's while the state held (truncated at the
/// split back) reads differently.
#[test]
fn a_truncating_split_back_reads_locally_before_it() {
    let n = 16;
    let (c, theta) = brick(n, 40, false);
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    let config = auto_config(Truncation::exact().with_max_bond(32)).with_window_blocks(true);
    let mut mps = MpsState::new(n, config).unwrap();
    mps.run(&c, &theta, &[]).unwrap();
    let f = mps.fidelity_estimate();
    assert!(
        f < 1.0 - 1e-6,
        "the split back did not truncate (fidelity {f})"
    );
    assert!(mps.bond_dimensions().iter().all(|&b| b <= 32));
    let zd = dense.z_expectations().unwrap();
    let zl = mps.local_z_expectations().unwrap();
    let zm = mps.z_expectations().unwrap();
    let dist = |z: &[f64]| {
        z.iter()
            .zip(&zd)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    assert!(dist(&zl) < 1e-10, "local <Z_i> off by {:e}", dist(&zl));
    assert!(dist(&zm) > 1e-6, "held <Z_i> off by only {:e}", dist(&zm));
}

/// A gate of three or more qubits after the bonds have grown holds the switch back until
/// after it: with a Toffoli last, the run stays centred; with it first, it switches. (Seven
/// layers: the switch also needs `AUTO_TEBD_STEPS_PER_QUBIT` steps per qubit left.)
#[test]
fn auto_switches_only_after_the_last_three_qubit_gate() {
    let (brick_c, theta) = brick(14, 7, false);
    // The CX chain makes the Toffoli depend on every gate before it, so no plan order can
    // put any of them after it.
    let mut last = brick_c.clone();
    for q in 0..13 {
        last.cx(q, q + 1).unwrap();
    }
    last.push(Gate::Ccx, &[0, 7, 13]).unwrap();
    assert_auto_exact(&last, &theta, false);
    let mut first = Circuit::new(14).unwrap().with_params(theta.len());
    first.h(0).unwrap();
    first.push(Gate::Ccx, &[0, 7, 13]).unwrap();
    for inst in brick_c.instructions() {
        first.push(inst.gate().clone(), inst.qubits()).unwrap();
    }
    assert_auto_exact(&first, &theta, true);
}

/// Truncated, Auto's local read-out is as close to the exact `<Z_i>` as TEBD's from the
/// start (the truncations happen after the switch at these bonds), and its state is
/// canonical and normalized.
#[test]
fn auto_truncated_reads_like_tebd() {
    let (c, theta) = brick(16, 10, false);
    let mut dense = DenseState::new(16).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    let zd = dense.z_expectations().unwrap();
    let err = |z: &[f64]| {
        z.iter()
            .zip(&zd)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let truncation = Truncation::exact().with_max_bond(16);
    let mut auto = MpsState::new(16, auto_config(truncation)).unwrap();
    auto.run(&c, &theta, &[]).unwrap();
    let mut tebd =
        MpsState::new(16, auto_config(truncation).with_update(UpdateScheme::Tebd)).unwrap();
    tebd.run(&c, &theta, &[]).unwrap();
    assert!(auto.fidelity_estimate() < 0.999, "the run must truncate");
    let (ea, et) = (
        err(&auto.local_z_expectations().unwrap()),
        err(&tebd.local_z_expectations().unwrap()),
    );
    assert!(ea < 2.0 * et + 1e-6, "auto {ea:e} against tebd {et:e}");
    assert!((auto.norm() - 1.0).abs() < 1e-10);
    assert!(auto.canonical_deviation() < 1e-10);
}

/// The library's default is the automatic scheme, as on the command line: a truncated
/// 16-qubit brick run with `MpsConfig::default()` switches to TEBD (its local read-out
/// exists), gives the same bits as `UpdateScheme::Auto` spelled out, and reads `<Z_i>` as
/// close to the exact ones as the centred run does (within 2x), where the centred run
/// has no local read-out.
#[test]
fn the_default_update_is_auto() {
    assert_eq!(UpdateScheme::default(), UpdateScheme::Auto);
    let (c, theta) = brick(16, 10, true);
    let mut dense = DenseState::new(16).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    let zd = dense.z_expectations().unwrap();
    let truncation = Truncation::default().with_max_bond(16);
    let run = |config: MpsConfig| {
        let mut psi = MpsState::new(16, config.with_truncation(truncation)).unwrap();
        psi.run(&c, &theta, &[]).unwrap();
        psi
    };
    let default = run(MpsConfig::default());
    let auto = run(MpsConfig::default().with_update(UpdateScheme::Auto));
    let centre = run(MpsConfig::default().with_update(UpdateScheme::Centre));
    assert!(default.fidelity_estimate() < 0.999, "the run must truncate");
    let zl = default.local_z_expectations().unwrap();
    assert_eq!(zl, auto.local_z_expectations().unwrap());
    assert_eq!(default.to_dense().unwrap(), auto.to_dense().unwrap());
    assert!(centre.local_z_expectations().is_err());
    let err = |z: &[f64]| {
        z.iter()
            .zip(&zd)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let (ed, ec) = (err(&zl), err(&centre.z_expectations().unwrap()));
    assert!(
        ed < 2.0 * ec + 1e-6,
        "default {ed:e} against centred {ec:e}"
    );
}

proptest! {
    #![proptest_config(super::common::proptest_config(24))]

    /// Auto is exact without truncation on random circuits of 13-15 qubits (far gates,
    /// three-qubit gates, switched or not), its local read-out too where it switched.
    #[test]
    fn auto_equals_dense(rc in random_circuit(13, 15, 150)) {
        let n = rc.circuit.n_qubits();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let mut mps = MpsState::new(n, auto_config(Truncation::exact())).unwrap();
        mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let tol = tolerance(&rc);
        let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
        let zd = dense.z_expectations().unwrap();
        if let Ok(zl) = mps.local_z_expectations() {
            for q in 0..n {
                prop_assert!((zl[q] - zd[q]).abs() < tol, "local <Z_{q}>: {} vs {}", zl[q], zd[q]);
            }
        }
        prop_assert!(mps.canonical_deviation() < 1e-10);
    }
}
