//! Records the prism-q version resolved in Cargo.lock, so the runner reports what it runs.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_prism = false;
    for line in lock.lines() {
        if line == "[[package]]" {
            in_prism = false;
        } else if line == "name = \"prism-q\"" {
            in_prism = true;
        } else if in_prism && let Some(v) = line.strip_prefix("version = ") {
            version = v.trim_matches('"').to_string();
        }
    }
    println!("cargo:rustc-env=PRISM_Q_VERSION={version}");
}
