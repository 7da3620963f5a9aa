//! The `qfl` binary on good and bad files: output, JSON values and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::qasm::data_dir;

fn qfl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qfl"))
        .args(args)
        .output()
        .expect("the qfl binary runs")
}

fn file(name: &str) -> String {
    data_dir().join(name).display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The `z` array of a `qfl run --format json` report.
fn z_values(v: &serde_json::Value) -> Vec<f64> {
    v["z"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A scratch file with `content`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!("qfl-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn run_prints_z_of_every_qubit_matching_the_reference() {
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir().join("reference.json")).unwrap())
            .unwrap();
    for name in ["qft_n4.qasm", "adder_n10.qasm", "wstate_n3.qasm"] {
        let z_ref = reference["circuits"][name]["z"].as_array().unwrap().clone();
        for backend in ["dense", "mps", "auto"] {
            let o = qfl(&["run", &file(name), "--backend", backend, "--format", "json"]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let v = json(&o);
            let z = v["z"].as_array().unwrap();
            assert_eq!(z.len(), z_ref.len());
            for (a, b) in z.iter().zip(&z_ref) {
                assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-8);
            }
            let expected_backend = if backend == "mps" { "mps" } else { "dense" };
            assert_eq!(v["backend"], expected_backend);
            assert_eq!(v["mps"].is_object(), backend == "mps");
            assert!(v["timings"]["simulate_ms"].as_f64().unwrap() >= 0.0);
        }
    }
    let o = qfl(&["run", &file("qft_n4.qasm"), "--backend", "mps"]);
    let out = stdout(&o);
    assert!(out.contains("<Z_i>:"), "{out}");
    assert!(out.contains("q[3]"), "{out}");
    assert!(out.contains("mps: peak bond"), "{out}");
    assert!(out.contains("fidelity estimate"), "{out}");
    assert!(out.contains("time: parse"), "{out}");
}

#[test]
fn observables_and_counts() {
    let bell = TempFile::new(
        "bell.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n",
    );
    let o = qfl(&[
        "run",
        bell.path(),
        "--observable",
        "Z0 Z1",
        "--observable",
        "0.5*X0 X1 - Z0 + 2*Y0 Y1",
        "--shots",
        "500",
        "--seed",
        "9",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let obs = v["observables"].as_array().unwrap();
    assert_eq!(obs[0]["observable"], "Z0 Z1");
    assert!((obs[0]["value"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    // <XX> = 1, <Z0> = 0, <YY> = -1 on the Bell state.
    assert!((obs[1]["value"].as_f64().unwrap() - (0.5 - 2.0)).abs() < 1e-12);
    let counts = v["counts"].as_object().unwrap();
    assert!(counts.keys().all(|k| k == "00" || k == "11"));
    assert_eq!(
        counts.values().map(|c| c.as_u64().unwrap()).sum::<u64>(),
        500
    );
    assert_eq!(v["counts_over"], "classical registers");
    // The same seed gives the same counts.
    let again = qfl(&[
        "run",
        bell.path(),
        "--shots",
        "500",
        "--seed",
        "9",
        "--format",
        "json",
    ]);
    assert_eq!(json(&again)["counts"], v["counts"]);
}

#[test]
fn non_unitary_files_run_as_trajectories() {
    let o = qfl(&[
        "run",
        &file("qec_sm_n5.qasm"),
        "--shots",
        "64",
        "--backend",
        "mps",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["mode"], "trajectories");
    assert_eq!(v["counts"]["01 000"], 64, "{v}");
    let o = qfl(&["run", &file("inverseqft_n4.qasm"), "--shots", "32"]);
    let out = stdout(&o);
    assert!(out.contains("32 trajectories"), "{out}");
    assert!(out.contains("0 0 0 0  32"), "{out}");
}

#[test]
fn bad_input_exits_with_2_and_a_located_message() {
    let o = qfl(&["run", &file("hhl_n10.qasm")]);
    assert_eq!(o.status.code(), Some(2));
    assert_no_panic(&o);
    let err = stderr(&o);
    assert!(
        err.contains("hhl_n10.qasm:186801:9: register 'q' is not declared"),
        "{err}"
    );
    let o = qfl(&["info", &file("vqe_uccsd_n4.qasm")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("vqe_uccsd_n4.qasm:225:9:"),
        "{}",
        stderr(&o)
    );

    let broken = TempFile::new("broken.qasm", "OPENQASM 2.0;\nqreg q[2];\nh q[0];\n");
    let o = qfl(&["run", broken.path()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":3:1: gate 'h' is not defined"),
        "{}",
        stderr(&o)
    );

    for args in [
        vec!["run", "/nonexistent/file.qasm"],
        vec!["run", &file("qft_n4.qasm"), "--backend", "gpu"],
        vec!["run", &file("qft_n4.qasm"), "--max-bond", "0"],
        vec!["run", &file("qft_n4.qasm"), "--cutoff", "-1"],
        vec!["run", &file("qft_n4.qasm"), "--observable", "Q1"],
        vec!["run", &file("qft_n4.qasm"), "--observable", "abc*Z0"],
        vec!["run", &file("qft_n4.qasm"), "--observable", "Z7"],
        vec!["run", &file("qft_n4.qasm"), "--observable", "Z1 Z1"],
        vec!["run"],
        vec!["frobnicate"],
    ] {
        let o = qfl(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_no_panic(&o);
        assert!(!stderr(&o).trim().is_empty(), "{args:?}");
    }
}

#[test]
fn info_reports_counts_depth_and_range() {
    let o = qfl(&["info", &file("adder_n10.qasm"), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["n_qubits"], 10);
    assert_eq!(v["n_clbits"], 5);
    assert_eq!(v["counts"]["ccx"], 8);
    assert_eq!(v["counts"]["cx"], 17);
    assert_eq!(v["counts"]["measure"], 5);
    assert_eq!(v["multi_qubit_gates"], 25);
    assert_eq!(v["unitary"], true);
    assert!(v["depth"].as_u64().unwrap() > 0);
    assert!(v["long_range_gates"].as_u64().unwrap() > 0);

    let o = qfl(&["info", &file("shor_n5.qasm")]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for needle in [
        "qubits: 5 (q[5])",
        "clbits: 5 (c[5])",
        "depth:",
        "two-qubit and larger gates:",
        "long-range gates",
        "unitary: no",
        "cswap",
    ] {
        assert!(out.contains(needle), "{needle:?} missing in {out}");
    }
}

#[test]
fn auto_backend_switches_to_mps_beyond_20_qubits() {
    let mut src =
        String::from("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg a[15];\nqreg b[15];\nh a[0];\n");
    for q in 0..14 {
        src.push_str(&format!("cx a[{q}], a[{}];\n", q + 1));
    }
    src.push_str("cx a[14], b[0];\n");
    for q in 0..14 {
        src.push_str(&format!("cx b[{q}], b[{}];\n", q + 1));
    }
    let ghz = TempFile::new("ghz30.qasm", &src);
    let o = qfl(&[
        "run",
        ghz.path(),
        "--observable",
        "Z0 Z29",
        "--shots",
        "200",
        "--format",
        "json",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["backend"], "mps");
    assert_eq!(v["n_qubits"], 30);
    assert_eq!(v["mps"]["peak_bond"], 2);
    assert!((v["observables"][0]["value"].as_f64().unwrap() - 1.0).abs() < 1e-12);
    assert!(
        v["z"]
            .as_array()
            .unwrap()
            .iter()
            .all(|z| z.as_f64().unwrap().abs() < 1e-12)
    );
    // No measurement in the file: counts over all qubits, all zeros or all ones.
    assert_eq!(v["counts_over"], "all qubits");
    let counts = v["counts"].as_object().unwrap();
    assert!(
        counts
            .keys()
            .all(|k| k == &"0".repeat(30) || k == &"1".repeat(30))
    );
}

/// `--threads N` runs the simulation on a pool of N threads: the same `<Z_i>` (to round-off)
/// on both backends, N echoed in the JSON, and 0 or a non-number rejected as bad input.
#[test]
fn threads_option_gives_the_same_values() {
    let path = file("adder_n10.qasm");
    for backend in ["mps", "dense"] {
        let base = json(&qfl(&[
            "run",
            &path,
            "--backend",
            backend,
            "--format",
            "json",
        ]));
        assert!(base["threads"].is_null());
        for threads in ["1", "2", "3"] {
            let o = qfl(&[
                "run",
                &path,
                "--backend",
                backend,
                "--threads",
                threads,
                "--format",
                "json",
            ]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let v = json(&o);
            assert_eq!(v["threads"].as_u64(), threads.parse().ok());
            for (a, b) in v["z"]
                .as_array()
                .unwrap()
                .iter()
                .zip(base["z"].as_array().unwrap())
            {
                assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12);
            }
        }
    }
    for bad in ["0", "two", "-1"] {
        let o = qfl(&["run", &path, "--threads", bad]);
        assert_eq!(o.status.code(), Some(2), "--threads {bad}: {}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn repeat_times_every_run_and_reports_the_first() {
    let path = file("qft_n4.qasm");
    let base = json(&qfl(&[
        "run",
        &path,
        "--backend",
        "mps",
        "--format",
        "json",
    ]));
    assert_eq!(base["timings"]["runs_ms"].as_array().unwrap().len(), 1);
    let o = qfl(&[
        "run",
        &path,
        "--backend",
        "mps",
        "--repeat",
        "4",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let runs = v["timings"]["runs_ms"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0], v["timings"]["simulate_ms"]);
    assert!(runs.iter().all(|t| t.as_f64().unwrap() > 0.0));
    assert_eq!(v["z"], base["z"]);
    // A budget of 0 s stops after the first run.
    let v = json(&qfl(&[
        "run",
        &path,
        "--repeat",
        "4",
        "--repeat-budget",
        "0",
        "--format",
        "json",
    ]));
    assert_eq!(v["timings"]["runs_ms"].as_array().unwrap().len(), 1);
    // The log10 of the fidelity estimate is reported beside it.
    let v = json(&qfl(&[
        "run",
        &file("dnn_n8.qasm"),
        "--backend",
        "mps",
        "--max-bond",
        "2",
        "--format",
        "json",
    ]));
    let f = v["mps"]["fidelity_estimate"].as_f64().unwrap();
    let log10 = v["mps"]["log10_fidelity_estimate"].as_f64().unwrap();
    assert!(f < 1.0 && (log10 - f.log10()).abs() < 1e-12, "{f} {log10}");
    // Window blocks are on by default and reported; off, the same values to round-off.
    let blocks = |extra: &[&str]| {
        let sat = file("sat_n7.qasm");
        let mut args = vec!["run", &sat, "--backend", "mps", "--format", "json"];
        args.extend_from_slice(extra);
        json(&qfl(&args))
    };
    let (on, off) = (blocks(&[]), blocks(&["--no-window-blocks"]));
    assert_eq!(on["mps"]["window_blocks"], true);
    assert_eq!(off["mps"]["window_blocks"], false);
    for (a, b) in z_values(&on).iter().zip(z_values(&off)) {
        assert!((a - b).abs() < 1e-12, "{a} {b}");
    }
    // The cutoff rule: reported, "both" by default, and checked.
    for (given, reported) in [
        (None, "both"),
        (Some("weight"), "weight"),
        (Some("value"), "value"),
    ] {
        let sat = file("sat_n7.qasm");
        let mut args = vec![
            "run",
            &sat,
            "--backend",
            "mps",
            "--cutoff",
            "1e-3",
            "--format",
            "json",
        ];
        if let Some(rule) = given {
            args.extend_from_slice(&["--cutoff-rule", rule]);
        }
        let v = json(&qfl(&args));
        assert_eq!(v["mps"]["cutoff_rule"], reported, "{given:?}");
    }
    let o = qfl(&["run", &path, "--backend", "mps", "--cutoff-rule", "largest"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--cutoff-rule"), "{}", stderr(&o));
    let o = qfl(&["run", &path, "--backend", "mps", "--repeat", "3"]);
    assert!(
        stdout(&o).contains("repeated: 2 more run(s), fastest"),
        "{}",
        stdout(&o)
    );
    for args in [
        ["--repeat", "0"],
        ["--repeat", "-2"],
        ["--repeat-budget", "-1"],
        ["--repeat-budget", "NaN"],
    ] {
        let o = qfl(&["run", &path, args[0], args[1]]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_no_panic(&o);
        // clap names the option, or the stray value it could not take as one.
        let err = stderr(&o);
        assert!(
            err.contains("--repeat") || err.contains(args[1]),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [["--help"], ["--version"]] {
        let o = qfl(&args);
        assert_eq!(o.status.code(), Some(0));
    }
    let o = qfl(&["run", "--help"]);
    assert!(stdout(&o).contains("--observable"));
    assert!(Path::new(env!("CARGO_BIN_EXE_qfl")).exists());
}

/// Reads a `--save-state` file: little-endian (re, im) pairs.
fn read_state(path: &Path) -> Vec<(f64, f64)> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() % 16, 0, "{} bytes", bytes.len());
    bytes
        .chunks_exact(16)
        .map(|c| {
            let re = f64::from_le_bytes(c[..8].try_into().unwrap());
            let im = f64::from_le_bytes(c[8..].try_into().unwrap());
            (re, im)
        })
        .collect()
}

/// `--save-state` writes the final state with qubit 0 as the least significant bit, the
/// same from the dense and the MPS backend, and reports nothing different on stdout.
#[test]
fn save_state_writes_the_state_vector() {
    // |q2 q1 q0> = |0 1 1> + i |1 0 1> (up to a factor): X on q0, then a phased Bell pair on
    // q1 and q2, so the indices 3 and 5 carry the amplitude and the bit order shows.
    let circuit = TempFile::new(
        "save-state.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\nx q[0];\nh q[1];\ncx q[1],q[2];\nx q[1];\ns q[2];\n",
    );
    for backend in ["dense", "mps"] {
        let out = std::env::temp_dir().join(format!(
            "qfl-cli-{}-state-{backend}.bin",
            std::process::id()
        ));
        let o = qfl(&[
            "run",
            circuit.path(),
            "--backend",
            backend,
            "--format",
            "json",
            "--repeat",
            "2",
            "--save-state",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stderr(&o));
        let amps = read_state(&out);
        let _ = std::fs::remove_file(&out);
        assert_eq!(amps.len(), 8, "{backend}");
        let h = std::f64::consts::FRAC_1_SQRT_2;
        for (i, &(re, im)) in amps.iter().enumerate() {
            let want = match i {
                3 => (h, 0.0),
                5 => (0.0, h),
                _ => (0.0, 0.0),
            };
            assert!(
                (re - want.0).abs() < 1e-12 && (im - want.1).abs() < 1e-12,
                "{backend}: amplitude {i} is ({re}, {im}), want {want:?}"
            );
        }
        // The <Z_i> reported agree with the state written: q0 = 1, q1 and q2 mixed.
        let z = z_values(&json(&o));
        assert!(
            (z[0] + 1.0).abs() < 1e-12 && z[1].abs() < 1e-12 && z[2].abs() < 1e-12,
            "{z:?}"
        );
    }
}

/// `--save-state` refuses, before running, what it cannot write.
#[test]
fn save_state_rejects_trajectories_large_states_and_bad_paths() {
    let out = std::env::temp_dir().join(format!("qfl-cli-{}-never.bin", std::process::id()));
    let o = qfl(&[
        "run",
        &file("qec_sm_n5.qasm"),
        "--save-state",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--save-state is not available"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "no file for a refused run");

    let big = TempFile::new(
        "save-state-31.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[31];\nh q[0];\n",
    );
    let o = qfl(&[
        "run",
        big.path(),
        "--backend",
        "mps",
        "--save-state",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("31 qubits"), "{}", stderr(&o));
    assert!(!out.exists());

    let o = qfl(&[
        "run",
        &file("adder_n4.qasm"),
        "--save-state",
        "/nonexistent-dir/state.bin",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot create"), "{}", stderr(&o));
    assert_no_panic(&o);
}

/// A failure that is not bad input (here: output that cannot be written, a full disk) exits
/// with code 1 and a message, not a panic or a backtrace.
#[cfg(target_os = "linux")]
#[test]
fn unwritable_output_exits_1_with_a_message() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // no /dev/full on this machine: nothing to test
    };
    let o = Command::new(env!("CARGO_BIN_EXE_qfl"))
        .args(["info", &file("adder_n10.qasm")])
        .stdout(full)
        .output()
        .expect("the qfl binary runs");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write output"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

/// `qfl compare` on a bundled data set writes the table, JSON and plot, and reproduces
/// itself from the seed; `qfl train` writes a JSON result and a curve.
#[test]
fn compare_and_train_on_bundled_data() {
    let dir = std::env::temp_dir().join(format!("qfl-cli-compare-{}", std::process::id()));
    let out = dir.display().to_string();
    let args = [
        "compare",
        "--dataset",
        "nutrimouse-genotype",
        "--k",
        "3",
        "--repeats",
        "2",
        "--epochs",
        "15",
        "--models",
        "qfl,lmf,gcn",
        "--out",
        &out,
        "--quiet",
    ];
    let a = qfl(&args);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let text = stdout(&a);
    assert!(
        text.contains("| QFL (D=2, P=2) |") && text.contains("| LMF") && text.contains("| GCN"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("compare-nutrimouse-genotype-k3.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["models"].as_array().unwrap().len(), 3);
    let auc = json["models"][0]["auc_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc));
    assert!(
        std::fs::read_to_string(dir.join("compare-nutrimouse-genotype-k3.svg"))
            .unwrap()
            .starts_with("<svg")
    );
    assert!(
        std::fs::read_to_string(dir.join("compare-nutrimouse-genotype-k3.md"))
            .unwrap()
            .contains("ROC AUC")
    );
    let b = qfl(&args);
    let again: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("compare-nutrimouse-genotype-k3.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(b.status.code(), Some(0));
    // Same seed, same numbers (wall-clock times aside).
    let without_time = |v: &serde_json::Value| {
        let mut runs = v["models"][0]["runs"].clone();
        for r in runs.as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("seconds");
        }
        runs
    };
    assert_eq!(without_time(&json), without_time(&again));
    let t = qfl(&[
        "train",
        "--dataset",
        "basic-motions",
        "--k",
        "2",
        "--repeats",
        "1",
        "--epochs",
        "5",
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    assert!(
        dir.join("train-qfl--d-2--p-2-.json").exists(),
        "{:?}",
        std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    assert!(
        std::fs::read_to_string(dir.join("curve-qfl--d-2--p-2-.svg"))
            .unwrap()
            .contains("validation loss")
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `train` takes the MPS settings of `run` (cutoff, split, SVD library, update scheme,
/// routing) and refuses bad ones before any training.
#[test]
fn train_takes_the_mps_settings() {
    let dir = std::env::temp_dir().join(format!("qfl-cli-mps-settings-{}", std::process::id()));
    let out = dir.display().to_string();
    let t = qfl(&[
        "train",
        "--dataset",
        "basic-motions",
        "--k",
        "2",
        "--repeats",
        "1",
        "--epochs",
        "3",
        "--entangler",
        "all",
        "--max-bond",
        "16",
        "--cutoff",
        "1e-12",
        "--split",
        "svd",
        "--update",
        "tebd",
        "--routing",
        "swap-back",
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(t.status.code(), Some(0), "{}", stderr(&t));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("train-qfl--d-2--p-2-.json")).unwrap(),
    )
    .unwrap();
    let auc = report["models"][0]["auc_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc), "{auc}");
    assert!(
        report["command"]
            .as_str()
            .unwrap()
            .contains("--routing swap-back")
    );
    std::fs::remove_dir_all(&dir).ok();
    let bad = qfl(&[
        "train",
        "--dataset",
        "basic-motions",
        "--cutoff=-1",
        "--out",
        &out,
        "--quiet",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("cutoff"), "{}", stderr(&bad));
    assert!(
        !dir.exists(),
        "refused before creating the output directory"
    );
}

#[test]
fn train_rejects_bad_data_with_exit_code_2() {
    let unknown = qfl(&["train", "--dataset", "no-such-set", "--quiet"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    let bad = TempFile::new("bad.csv", "1,2,a\n3,oops,b\n");
    let o = qfl(&["train", "--csv", bad.path(), "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(":2:"), "names the line: {}", stderr(&o));
    let none = qfl(&["train", "--quiet"]);
    assert_eq!(none.status.code(), Some(2));
    let graph = qfl(&[
        "train",
        "--dataset",
        "nutrimouse-diet",
        "--graph",
        "0-5",
        "--quiet",
    ]);
    assert_eq!(graph.status.code(), Some(2));
    assert!(stderr(&graph).contains("--graph"), "{}", stderr(&graph));
}

/// `--svd lapack` in a build without the `lapack` feature: exit 2 and a message naming the
/// feature, whatever the backend.
#[cfg(not(feature = "lapack"))]
#[test]
fn svd_lapack_without_the_feature_exits_2() {
    for backend in ["mps", "dense"] {
        let o = qfl(&[
            "run",
            &file("qft_n4.qasm"),
            "--backend",
            backend,
            "--svd",
            "lapack",
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_no_panic(&o);
        let err = stderr(&o);
        assert!(err.contains("cargo feature `lapack`"), "{err}");
    }
}

/// `--svd faer|lapack` gives the same values, and the report names the backend.
#[test]
fn svd_choice_is_reported_and_agrees() {
    let choices: &[&str] = if cfg!(feature = "lapack") {
        &["faer", "lapack"]
    } else {
        &["faer"]
    };
    let mut zs = Vec::new();
    for svd in choices {
        let o = qfl(&[
            "run",
            &file("qft_n4.qasm"),
            "--backend",
            "mps",
            "--svd",
            svd,
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["mps"]["svd"], *svd);
        zs.push(v["z"].clone());
    }
    for z in &zs[1..] {
        for (a, b) in z.as_array().unwrap().iter().zip(zs[0].as_array().unwrap()) {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-10);
        }
    }
}

#[test]
fn routings_agree_when_exact() {
    let path = file("adder_n10.qasm");
    let mut results = Vec::new();
    for update in ["centre", "tebd"] {
        for routing in ["lookahead", "swap-back"] {
            let o = qfl(&[
                "run",
                &path,
                "--backend",
                "mps",
                "--update",
                update,
                "--routing",
                routing,
                "--format",
                "json",
            ]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let v = json(&o);
            assert_eq!(v["mps"]["routing"], routing);
            results.push(v["z"].as_array().unwrap().clone());
        }
    }
    for z in &results[1..] {
        for (a, b) in z.iter().zip(&results[0]) {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-10);
        }
    }
    let o = qfl(&["run", &path, "--routing", "sideways"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sideways"), "{}", stderr(&o));
}

#[test]
fn tebd_update_and_local_readout_agree_when_exact() {
    let path = file("adder_n10.qasm");
    let base = json(&qfl(&[
        "run",
        &path,
        "--backend",
        "mps",
        "--format",
        "json",
    ]));
    // The default update is auto; a 10-qubit chain never leaves the centred update, so the
    // automatic read-out is the exact one.
    assert_eq!(base["mps"]["update"], "auto");
    assert_eq!(base["mps"]["readout"], "exact");
    for (threads, readout) in [("1", "exact"), ("2", "exact"), ("2", "local")] {
        let o = qfl(&[
            "run",
            &path,
            "--backend",
            "mps",
            "--update",
            "tebd",
            "--readout",
            readout,
            "--threads",
            threads,
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["mps"]["update"], "tebd");
        assert_eq!(v["mps"]["readout"], readout);
        for (a, b) in v["z"]
            .as_array()
            .unwrap()
            .iter()
            .zip(base["z"].as_array().unwrap())
        {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-10);
        }
    }
    for (args, needle) in [
        (
            vec!["--backend", "mps", "--readout", "local"],
            "--update tebd",
        ),
        (
            vec!["--backend", "dense", "--readout", "local"],
            "mps backend",
        ),
        (vec!["--update", "sideways"], "sideways"),
    ] {
        let mut all = vec!["run", path.as_str()];
        all.extend(args);
        let o = qfl(&all);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert_no_panic(&o);
    }
}

/// On a 14-qubit brick of 14 layers at max bond 128 (no truncation) the default run
/// (update auto) finishes on the chain's amplitudes and reads `<Z_i>` from the sites; without window
/// blocks it switches to TEBD and reads them locally, and `--readout exact` after the same
/// run reads the state held. Every one equals the centred update's exact values.
#[test]
fn auto_update_reads_locally_only_where_it_switched_to_tebd() {
    let n = 14;
    let mut qasm = format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\n");
    for layer in 0..14 {
        for q in 0..n {
            qasm += &format!("ry({}) q[{q}];\n", 0.3 + 0.1 * (layer * n + q) as f64);
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                qasm += &format!("cx q[{q}],q[{}];\n", q + 1);
            }
        }
    }
    let file = TempFile::new("auto-brick14.qasm", &qasm);
    let run = |extra: &[&str]| {
        // Max bond 128 = 2^(14/2): no truncation.
        let mut args = vec![
            "run",
            file.path(),
            "--backend",
            "mps",
            "--max-bond",
            "128",
            "--format",
            "json",
        ];
        args.extend(extra);
        let o = qfl(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        json(&o)
    };
    let auto = run(&[]);
    assert_eq!(auto["mps"]["update"], "auto");
    assert_eq!(auto["mps"]["readout"], "exact");
    let tebd = run(&["--no-window-blocks"]);
    assert_eq!(tebd["mps"]["readout"], "local");
    let held = run(&["--no-window-blocks", "--readout", "exact"]);
    assert_eq!(held["mps"]["readout"], "exact");
    let centre = run(&["--update", "centre"]);
    assert_eq!(centre["mps"]["readout"], "exact");
    let want = z_values(&centre);
    assert_eq!(want.len(), n);
    // The default cutoff (1e-16 of the weight per cut) lets the schemes differ by up to
    // about 1e-8 (measured: 3e-10).
    for got in [z_values(&auto), z_values(&tebd), z_values(&held)] {
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-8, "{a} against {b}");
        }
    }
}
