//! Integration tests, one binary with modules (one link step instead of many).
#![allow(clippy::needless_range_loop)]

#[path = "suite/baselines.rs"]
mod baselines;
#[cfg(feature = "cli")]
#[path = "suite/cli.rs"]
mod cli;
#[path = "suite/common.rs"]
mod common;
#[path = "suite/cross_check.rs"]
mod cross_check;
#[path = "suite/data.rs"]
mod data;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/fusion_quantum.rs"]
mod fusion_quantum;
#[path = "suite/gates.rs"]
mod gates;
#[path = "suite/gradients.rs"]
mod gradients;
#[path = "suite/held.rs"]
mod held;
#[path = "suite/large.rs"]
mod large;
#[path = "suite/metrics.rs"]
mod metrics;
#[path = "suite/product.rs"]
mod product;
#[path = "suite/qasm.rs"]
mod qasm;
#[path = "suite/qfl_layer.rs"]
mod qfl_layer;
#[path = "suite/routing.rs"]
mod routing;
#[path = "suite/sampling.rs"]
mod sampling;
#[path = "suite/shadows.rs"]
mod shadows;
#[path = "suite/svd_backends.rs"]
mod svd_backends;
#[path = "suite/tebd.rs"]
mod tebd;
#[path = "suite/training.rs"]
mod training;
#[path = "suite/trajectories.rs"]
mod trajectories;
#[path = "suite/truncation.rs"]
mod truncation;
