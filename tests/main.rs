//! Integration tests, one binary with modules (one link step instead of many).

#[cfg(feature = "cli")]
#[path = "suite/cli.rs"]
mod cli;
#[path = "suite/common.rs"]
mod common;
#[path = "suite/cross_check.rs"]
mod cross_check;
#[path = "suite/qasm.rs"]
mod qasm;
#[path = "suite/trajectories.rs"]
mod trajectories;
