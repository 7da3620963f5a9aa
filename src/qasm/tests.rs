//! Unit tests of the importer: library definitions against native gates, semantics of
//! every statement, and located errors.

use num_complex::Complex64 as C64;

use super::parser::parse_without_natives;
use super::*;
use crate::circuit::{Gate, Operation, Param};
use crate::error::QasmErrorKind as Kind;
use crate::{DenseState, StateBackend};

const HEADER: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n";

fn parse(body: &str) -> Result<Program> {
    parse_str(&format!("{HEADER}{body}"), "t.qasm")
}

/// The error of `body` (after the two header lines): (kind, line, column, message).
fn error_of(body: &str) -> (Kind, usize, usize, String) {
    match parse(body) {
        Err(Error::Qasm {
            kind,
            line,
            column,
            message,
            ..
        }) => (kind, line, column, message),
        other => panic!("expected a QASM error for {body:?}, got {other:?}"),
    }
}

/// The unitary of a program without measurements, column by column (qubit 0 least
/// significant).
fn unitary(p: &Program) -> Vec<Vec<C64>> {
    let c = p.to_circuit().expect("unitary").circuit;
    let dim = 1usize << p.n_qubits();
    (0..dim)
        .map(|k| {
            let mut amps = vec![C64::new(0.0, 0.0); dim];
            amps[k] = C64::new(1.0, 0.0);
            let mut s = DenseState::from_amplitudes(amps).unwrap();
            s.run(&c, &[], &[]).unwrap();
            s.amplitudes().to_vec()
        })
        .collect()
}

/// Largest entry distance between `a` and `e^{i phi} b` for the best global phase.
fn distance_up_to_phase(a: &[Vec<C64>], b: &[Vec<C64>]) -> f64 {
    let (mut best, mut at) = (0.0, (0, 0));
    for (c, col) in b.iter().enumerate() {
        for (r, z) in col.iter().enumerate() {
            if z.norm() > best {
                best = z.norm();
                at = (c, r);
            }
        }
    }
    let phase = a[at.0][at.1] / b[at.0][at.1];
    let phase = phase / phase.norm();
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(move |(u, v)| (u - phase * v).norm()))
        .fold(0.0, f64::max)
}

fn exact_distance(a: &[Vec<C64>], b: &[Vec<C64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(u, v)| (u - v).norm()))
        .fold(0.0, f64::max)
}

/// The matrix of a classical permutation or phase map on basis states.
fn from_map(n: usize, f: impl Fn(usize) -> (usize, C64)) -> Vec<Vec<C64>> {
    let dim = 1usize << n;
    (0..dim)
        .map(|k| {
            let mut col = vec![C64::new(0.0, 0.0); dim];
            let (j, amp) = f(k);
            col[j] = amp;
            col
        })
        .collect()
}

/// Every library gate whose name has a native variant equals the expansion of its
/// qelib1 definition, up to a global phase.
#[test]
fn library_definitions_match_native_gates() {
    let angles = ["0.3", "-1.1", "2.4"];
    let sources = [QELIB1, QELIB1_EXTRAS];
    let mut checked = 0;
    for src in sources {
        for line in src.lines() {
            let Some(rest) = line.trim().strip_prefix("gate ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = &rest[name.len()..];
            let n_params = if after.trim_start().starts_with('(') {
                after[..after.find(')').unwrap()].split(',').count()
            } else {
                0
            };
            let sig_end = after.find('{').unwrap_or(after.len());
            let qubit_part = if n_params > 0 {
                &after[after.find(')').unwrap() + 1..sig_end]
            } else {
                &after[..sig_end]
            };
            let n_qubits = qubit_part.split(',').count();
            let params = if n_params > 0 {
                format!("({})", angles[..n_params.min(3)].join(","))
            } else {
                String::new()
            };
            // Four-parameter cu gets a fourth angle.
            let params = if n_params == 4 {
                "(0.3,-1.1,2.4,0.7)".to_string()
            } else {
                params
            };
            let qubits: Vec<String> = (0..n_qubits).map(|k| format!("q[{k}]")).collect();
            let body = format!(
                "qreg q[{n_qubits}];\n{name}{params} {};\n",
                qubits.join(",")
            );
            let native = parse(&body).unwrap();
            let expanded = parse_without_natives(&format!("{HEADER}{body}")).unwrap();
            let d = distance_up_to_phase(&unitary(&native), &unitary(&expanded));
            assert!(d < 1e-12, "{name}: native and definition differ by {d:e}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "checked {checked} definitions");
}

/// The gates without a native variant are exactly the multi-controlled gates they claim
/// to be (relative-phase ones up to phases on the diagonal).
#[test]
fn expanded_library_gates_are_exact() {
    let bit = |k: usize, q: usize| (k >> q) & 1 == 1;
    let one = C64::new(1.0, 0.0);
    // c3x a,b,c,d with a..d = q0..q3: flips q3 when q0, q1, q2 are set.
    let c3x = from_map(4, |k| {
        let flip = bit(k, 0) && bit(k, 1) && bit(k, 2);
        (if flip { k ^ 8 } else { k }, one)
    });
    let got = unitary(&parse("qreg q[4];\nc3x q[0],q[1],q[2],q[3];").unwrap());
    assert!(exact_distance(&got, &c3x) < 1e-12);
    let c4x = from_map(5, |k| {
        let flip = (0..4).all(|q| bit(k, q));
        (if flip { k ^ 16 } else { k }, one)
    });
    let got = unitary(&parse("qreg q[5];\nc4x q[0],q[1],q[2],q[3],q[4];").unwrap());
    assert!(exact_distance(&got, &c4x) < 1e-12);
    // c3sqrtx: sqrt(X) on q3 when q0..q2 are set; compare with three controls around sx.
    let sx = Gate::Sx.matrix(&[], &[]).unwrap();
    let dim = 16;
    let c3sx: Vec<Vec<C64>> = (0..dim)
        .map(|k| {
            let mut col = vec![C64::new(0.0, 0.0); dim];
            if bit(k, 0) && bit(k, 1) && bit(k, 2) {
                let t = usize::from(bit(k, 3));
                col[k & 7] = sx.get(0, t);
                col[(k & 7) | 8] = sx.get(1, t);
            } else {
                col[k] = one;
            }
            col
        })
        .collect();
    let got = unitary(&parse("qreg q[4];\nc3sqrtx q[0],q[1],q[2],q[3];").unwrap());
    assert!(exact_distance(&got, &c3sx) < 1e-12);
    // rccx and rc3x: Toffolis up to diagonal phases.
    for (n, src) in [
        (3, "qreg q[3];\nrccx q[0],q[1],q[2];"),
        (4, "qreg q[4];\nrc3x q[0],q[1],q[2],q[3];"),
    ] {
        let got = unitary(&parse(src).unwrap());
        let controls = (1usize << (n - 1)) - 1;
        for (k, col) in got.iter().enumerate() {
            let target = if k & controls == controls {
                k ^ (1 << (n - 1))
            } else {
                k
            };
            assert!(
                (col[target].norm() - 1.0).abs() < 1e-12,
                "{src}: column {k}"
            );
        }
    }
    // csx and cu: controlled versions, control q0 (least significant bit).
    let controlled = |m: &crate::GateMatrix, phase: C64| -> Vec<Vec<C64>> {
        (0..4)
            .map(|k| {
                let mut col = vec![C64::new(0.0, 0.0); 4];
                if k & 1 == 1 {
                    let t = k >> 1;
                    col[1] = phase * m.get(0, t);
                    col[3] = phase * m.get(1, t);
                } else {
                    col[k] = one;
                }
                col
            })
            .collect()
    };
    let got = unitary(&parse("qreg q[2];\ncsx q[0],q[1];").unwrap());
    assert!(exact_distance(&got, &controlled(&sx, one)) < 1e-12);
    let u = Gate::U3 {
        theta: Param::Fixed(0.3),
        phi: Param::Fixed(-1.1),
        lambda: Param::Fixed(2.4),
    }
    .matrix(&[], &[])
    .unwrap();
    let got = unitary(&parse("qreg q[2];\ncu(0.3,-1.1,2.4,0.7) q[0],q[1];").unwrap());
    assert!(exact_distance(&got, &controlled(&u, C64::from_polar(1.0, 0.7))) < 1e-12);
}

#[test]
fn registers_broadcast_and_expressions() {
    let p = parse(
        "qreg a[2];\nqreg b[2];\ncreg c[2];\nh a;\ncx a, b;\ncx a[0], b;\n\
         rz(-pi/2 + 2*3^2 - sqrt(4)/ln(exp(2))) b[1];\nU(pi, 0, pi) a[1];\nCX a[1], b[0];\n\
         measure b -> c;\nbarrier a, b[0];\n",
    )
    .unwrap();
    assert_eq!((p.n_qubits(), p.n_clbits()), (4, 2));
    let ops = p.operations();
    let gate = |k: usize| match &ops[k] {
        Operation::Gate(i) => (i.gate().clone(), i.qubits().to_vec()),
        other => panic!("{other:?}"),
    };
    assert_eq!(gate(0), (Gate::H, vec![0]));
    assert_eq!(gate(1), (Gate::H, vec![1]));
    assert_eq!(gate(2), (Gate::Cx, vec![0, 2]));
    assert_eq!(gate(3), (Gate::Cx, vec![1, 3]));
    assert_eq!(gate(4), (Gate::Cx, vec![0, 2]));
    assert_eq!(gate(5), (Gate::Cx, vec![0, 3]));
    let expected = -std::f64::consts::FRAC_PI_2 + 18.0 - 1.0;
    match gate(6) {
        (Gate::Rz(Param::Fixed(v)), q) => {
            assert!((v - expected).abs() < 1e-15);
            assert_eq!(q, vec![3]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(gate(7).0, Gate::U3 { .. }));
    assert_eq!(gate(8), (Gate::Cx, vec![1, 2]));
    assert_eq!(ops[9], Operation::Measure { qubit: 2, clbit: 0 });
    assert_eq!(ops[10], Operation::Measure { qubit: 3, clbit: 1 });
    assert_eq!(
        ops[11],
        Operation::Barrier {
            qubits: vec![0, 1, 2]
        }
    );
    assert_eq!(ops.len(), 12);
}

#[test]
fn power_and_unary_minus_precedence() {
    let angle = |e: &str| match parse(&format!("qreg q[1];\nrz({e}) q[0];"))
        .unwrap()
        .operations()[0]
        .clone()
    {
        Operation::Gate(i) => match i.gate() {
            Gate::Rz(Param::Fixed(v)) => *v,
            g => panic!("{g:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(angle("-2^2"), -4.0);
    assert_eq!(angle("2^3^2"), 512.0);
    assert_eq!(angle("2^-1"), 0.5);
    assert_eq!(angle("1-2-3"), -4.0);
    assert_eq!(angle("8/2/2"), 2.0);
    assert_eq!(angle("+1.5e1"), 15.0);
    assert_eq!(angle("--1"), 1.0);
}

#[test]
fn user_gates_nest_with_parameters() {
    let p = parse(
        "gate inner(t) a { rz(t/2) a; }\ngate outer(t, s) a, b { inner(t*s) b; cx a, b; barrier a, b; }\n\
         qreg q[2];\nouter(2, pi) q[0], q[1];\n",
    )
    .unwrap();
    assert_eq!(p.len(), 2);
    match &p.operations()[0] {
        Operation::Gate(i) => {
            assert_eq!(i.qubits(), &[1]);
            assert!(
                matches!(i.gate(), Gate::Rz(Param::Fixed(v)) if (v - std::f64::consts::PI).abs() < 1e-15)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_definitions_may_replace_qiskit_extras_not_the_standard_library() {
    let p =
        parse("gate rzz(t) a, b { cx a, b; rz(t) b; cx a, b; }\nqreg q[2];\nrzz(0.5) q[0], q[1];")
            .unwrap();
    assert_eq!(p.len(), 3, "the file's own rzz definition is used");
    let (kind, line, col, _) = error_of("gate h a { x a; }");
    assert_eq!((kind, line, col), (Kind::Redefinition, 3, 6));
    let (kind, ..) = error_of("gate g a { x a; }\ngate g a { y a; }");
    assert_eq!(kind, Kind::Redefinition);
}

#[test]
fn conditions_measure_and_reset() {
    let p = parse(
        "qreg q[2];\ncreg c[2];\ncreg d[1];\nmeasure q[0] -> c[1];\nif (c == 2) x q;\n\
         if(d==1) measure q[1] -> d[0];\nreset q;\nif (c==3) reset q[0];\n",
    )
    .unwrap();
    let ops = p.operations();
    assert_eq!(ops.len(), 7);
    assert!(
        matches!(&ops[1], Operation::If { creg: 0, value: 2, op } if matches!(**op, Operation::Gate(_)))
    );
    assert!(matches!(&ops[2], Operation::If { creg: 0, value: 2, op } if op.qubits() == [1]));
    assert!(
        matches!(&ops[3], Operation::If { creg: 1, value: 1, op } if matches!(**op, Operation::Measure { qubit: 1, clbit: 2 }))
    );
    assert_eq!(ops[4], Operation::Reset { qubit: 0 });
    assert_eq!(ops[5], Operation::Reset { qubit: 1 });
    assert!(
        matches!(&ops[6], Operation::If { op, .. } if matches!(**op, Operation::Reset { qubit: 0 }))
    );
}

#[test]
fn version_comments_and_no_header() {
    // The version statement is optional; qelib1 is not included without asking.
    let p = parse_str("qreg q[1]; U(0,0,0) q[0]; // done", "x.qasm").unwrap();
    assert_eq!(p.len(), 1);
    let e = parse_str("qreg q[1];\nh q[0];", "x.qasm").unwrap_err();
    assert_eq!(e.qasm_kind(), Some(Kind::UndeclaredGate));
    assert!(e.to_string().contains("include \"qelib1.inc\""), "{e}");
    let e = parse_str("OPENQASM 3.0;\nqreg q[1];", "x.qasm").unwrap_err();
    assert_eq!(e.qasm_kind(), Some(Kind::Unsupported));
    let e = parse_str("qreg q[1];\nOPENQASM 2.0;", "x.qasm").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.qasm:2:1: the OPENQASM version must be the first statement of the file"
    );
    // A second include of qelib1.inc is harmless.
    assert!(parse("include \"qelib1.inc\";\nqreg q[1];\nh q;").is_ok());
    let e = parse("include \"other.inc\";").unwrap_err();
    assert_eq!(e.qasm_kind(), Some(Kind::Include));
}

#[test]
fn errors_name_line_column_and_problem() {
    let cases: &[(&str, Kind, usize, usize, &str)] = &[
        (
            "qreg q[2];\nh r[0];",
            Kind::UndeclaredRegister,
            4,
            3,
            "register 'r' is not declared",
        ),
        (
            "qreg q[2];\nfoo q[0];",
            Kind::UndeclaredGate,
            4,
            1,
            "gate 'foo' is not defined",
        ),
        (
            "qreg q[2];\ncx q[0];",
            Kind::WrongArgumentCount,
            4,
            1,
            "gate 'cx' acts on 2 qubit(s) but 1 argument(s) were given",
        ),
        (
            "qreg q[2];\nrz q[0];",
            Kind::WrongParameterCount,
            4,
            1,
            "gate 'rz' takes 1 parameter(s) but 0 were given",
        ),
        (
            "qreg q[2];\nh q[2];",
            Kind::IndexOutOfRange,
            4,
            5,
            "index 2 is out of range for register 'q' of size 2",
        ),
        (
            "qreg q[2];\nqreg r[3];\ncx q, r;",
            Kind::SizeMismatch,
            5,
            7,
            "registers of different sizes (2 and 3) cannot be broadcast together",
        ),
        (
            "qreg q[2];\ncx q[1], q[1];",
            Kind::RepeatedQubit,
            4,
            10,
            "qubit q[1] appears twice in one call of 'cx'",
        ),
        (
            "qreg q[2];\nh q[0]",
            Kind::Syntax,
            4,
            7,
            "expected ';', found end of file",
        ),
        (
            "qreg q[2];\nrz(1 +) q[0];",
            Kind::Syntax,
            4,
            7,
            "expected a number, 'pi', a parameter or '(', found ')'",
        ),
        (
            "qreg q[2];\nrz(theta) q[0];",
            Kind::UndeclaredParameter,
            4,
            4,
            "unknown identifier 'theta' in an expression",
        ),
        (
            "qreg q[2];\nrz(1/0) q[0];",
            Kind::InvalidValue,
            4,
            4,
            "parameter evaluates to inf, which is not a finite angle",
        ),
        (
            "opaque magic(t) a;\nqreg q[1];\nmagic(1) q[0];",
            Kind::Opaque,
            5,
            1,
            "gate 'magic' is opaque (declared at t.qasm:3): it has no definition to simulate",
        ),
        (
            "qreg q[1];\nqreg q[2];",
            Kind::Redefinition,
            4,
            6,
            "register 'q' is already declared",
        ),
        (
            "qreg q[0];",
            Kind::InvalidValue,
            3,
            8,
            "register 'q' must have at least one bit",
        ),
        (
            "qreg q[99999999999999999999];",
            Kind::InvalidValue,
            3,
            8,
            "integer 99999999999999999999 is too large",
        ),
        (
            "qreg q[2];\ncreg c[1];\nmeasure q -> c;",
            Kind::SizeMismatch,
            5,
            14,
            "cannot measure a register of 2 qubits into a register of 1 bits",
        ),
        (
            "qreg q[2];\ncreg c[2];\nmeasure q[0] -> c;",
            Kind::SizeMismatch,
            5,
            17,
            "measure needs two whole registers or two single bits",
        ),
        (
            "qreg q[2];\nif (q == 1) x q[0];",
            Kind::UndeclaredRegister,
            4,
            5,
            "'q' is a quantum register, a classical one is needed here",
        ),
        (
            "qreg q[1];\ncreg c[1];\nif (c == 1) barrier q;",
            Kind::Syntax,
            5,
            13,
            "only a gate, measure or reset can follow if (...)",
        ),
        (
            "gate g a { h a[0]; }",
            Kind::Syntax,
            3,
            15,
            "qubit arguments cannot be indexed inside a gate body",
        ),
        (
            "gate g a { cx a, a; }",
            Kind::RepeatedQubit,
            3,
            18,
            "qubit argument 'a' appears twice in one gate call",
        ),
        (
            "gate g(t) a { rz(s) a; }",
            Kind::UndeclaredParameter,
            3,
            18,
            "'s' is not a parameter of this gate",
        ),
        (
            "gate g a { measure a; }",
            Kind::Syntax,
            3,
            12,
            "'measure' is not allowed inside a gate body",
        ),
        (
            "gate g(t, t) a { }",
            Kind::RepeatedQubit,
            3,
            11,
            "'t' appears twice in the gate signature",
        ),
        (
            "qreg q[1];\nh q[0]; @",
            Kind::Syntax,
            4,
            9,
            "unexpected character '@'",
        ),
        (
            "qreg q[1];\nh q[0];\n\"open",
            Kind::Syntax,
            5,
            1,
            "unterminated string literal",
        ),
    ];
    for &(body, kind, line, column, message) in cases {
        let got = error_of(body);
        assert_eq!(
            got,
            (kind, line, column, message.to_string()),
            "for {body:?}"
        );
    }
}

#[test]
fn limits_are_errors_not_crashes() {
    let deep = format!(
        "qreg q[1];\nrz({}1{}) q[0];",
        "(".repeat(500),
        ")".repeat(500)
    );
    assert_eq!(parse(&deep).unwrap_err().qasm_kind(), Some(Kind::Limit));
    let minus = format!("qreg q[1];\nrz({}1) q[0];", "-".repeat(500));
    assert_eq!(parse(&minus).unwrap_err().qasm_kind(), Some(Kind::Limit));
    let long = format!("qreg q[1];\nrz({}1) q[0];", "1+".repeat(10_000));
    assert_eq!(parse(&long).unwrap_err().qasm_kind(), Some(Kind::Limit));
    // Each gate doubles the previous one: 2^40 gates would be far beyond the limit.
    let mut src = String::from("qreg q[1];\ngate g0 a { x a; x a; }\n");
    for k in 1..40 {
        src.push_str(&format!("gate g{k} a {{ g{} a; g{} a; }}\n", k - 1, k - 1));
    }
    src.push_str("g39 q[0];\n");
    let e = parse(&src).unwrap_err();
    assert_eq!(e.qasm_kind(), Some(Kind::Limit), "{e}");
    // Nesting deeper than MAX_GATE_DEPTH is refused at the definition.
    let mut src = String::from("gate g0 a { x a; }\n");
    for k in 1..=MAX_GATE_DEPTH + 1 {
        src.push_str(&format!("gate g{k} a {{ g{} a; }}\n", k - 1));
    }
    assert_eq!(parse(&src).unwrap_err().qasm_kind(), Some(Kind::Limit));
}

#[test]
fn file_includes_resolve_relative_to_the_file() {
    let dir = std::env::temp_dir().join(format!("qfl-qasm-include-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mygates.inc"),
        "gate bell a, b { h a; cx a, b; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.qasm"),
        format!("{HEADER}include \"mygates.inc\";\nqreg q[2];\nbell q[0], q[1];\n"),
    )
    .unwrap();
    std::fs::write(dir.join("loop.qasm"), "include \"loop.qasm\";\n").unwrap();
    let p = parse_file(dir.join("main.qasm")).unwrap();
    assert_eq!(p.len(), 2);
    let e = parse_file(dir.join("loop.qasm")).unwrap_err();
    assert_eq!(e.qasm_kind(), Some(Kind::Limit));
    assert!(matches!(
        parse_file(dir.join("missing.qasm")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
