//! What the benches share.

use qfl::{Circuit, Param};

/// The brick circuit every MPS bench times or prepares: per layer RY and RZ on every qubit
/// (fixed, varied angles), then CX on the even pairs, then on the odd pairs. Returns the
/// circuit and its angles.
pub fn brick(n: usize, layers: usize) -> (Circuit, Vec<f64>) {
    let mut c = Circuit::new(n).expect("n > 0").with_params(2 * n * layers);
    for layer in 0..layers {
        for q in 0..n {
            let k = 2 * (layer * n + q);
            c.ry(Param::theta(k), q).expect("valid");
            c.rz(Param::theta(k + 1), q).expect("valid");
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                c.cx(q, q + 1).expect("valid");
            }
        }
    }
    let theta = (0..2 * n * layers)
        .map(|i| 0.3 + 1.7 * ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    (c, theta)
}
