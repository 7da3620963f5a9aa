//! Integration tests, one binary with modules (one link step instead of many).
#![allow(clippy::needless_range_loop)]

#[path = "suite/common.rs"]
mod common;
#[path = "suite/cross_check.rs"]
mod cross_check;
#[path = "suite/errors.rs"]
mod errors;
#[path = "suite/gates.rs"]
mod gates;
#[path = "suite/gradients.rs"]
mod gradients;
#[path = "suite/large.rs"]
mod large;
#[path = "suite/sampling.rs"]
mod sampling;
#[path = "suite/truncation.rs"]
mod truncation;
