#!/usr/bin/env python3
"""Writes the peer-comparison workloads as OpenQASM 2.0 files (standard library only).

Every file has `include "qelib1.inc"`, one `qreg q[n]` and no measurement, so every simulator
reads the same gates. Angles come from `random.Random(seed)` and are written with `repr`
(shortest round-trip form, so parsing gives back the exact double). The same seed gives the
same files byte for byte.

Families (n = qubits, L = layers, G = gates):

- brick_n{n}_l{L}: per layer, `ry` and `rz` (random angles) on every qubit, then `cx` on the
  even pairs (0,1),(2,3),..., then on the odd pairs (1,2),(3,4),...
- longrange_n{n}_l{L}: the brick layer plus one `cx` between two random qubits at distance
  >= n/4 (random control/target order).
- qfl_n{n}_l{L}: QFL-shaped: per layer, data re-uploading `ry(x_q)` on every qubit (the same
  input features x every layer), trainable `rz`, `ry` on every qubit, then a `cz` brick (even
  then odd pairs).
- random_n{n}_g{G}: G gates; each is, with probability 1/2, a one-qubit gate (rx, ry, rz with
  a random angle, or h; uniformly) on a uniform random qubit, else a `cx` on a pair drawn
  uniformly from the pairs at distance >= n/4 (random order).
- qasmbench/{name}: the QASMBench circuits that tests/data/qasmbench-small/reference.json
  covers, with `measure` and `barrier` statements removed (they are all final measurements
  there, so <Z_i> before measurement is what every simulator reports); see strip_qasmbench.

The set `fidelity` holds 14-18-qubit circuits only (no QASMBench) for
`state_fidelity.py`; run.sh does not use it.

Usage: gen_workloads.py --set quick|full|fidelity --out DIR [--seed S] [--qasmbench DIR]
Writes DIR/*.qasm, DIR/qasmbench/*.qasm and DIR/manifest.json (one entry per workload:
name, family, file, n, gates, two_qubit_gates, layers, reference source).
"""

import argparse
import json
import math
import os
import random
import re
import sys

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'

# The sets. Each entry: (family, n, L or G). The quick set is small enough to smoke-test
# every simulator in a few minutes; the full set is the grid.
FULL = (
    [("brick", n, l) for l in (10, 20) for n in (20, 24, 50, 100, 200, 500, 1000) if not (n in (20, 24) and l != 10)]
    + [("longrange", n, l) for l in (10, 20) for n in (20, 24, 50, 100, 200, 500, 1000) if not (n in (20, 24) and l != 10)]
    + [("qfl", n, 8) for n in (20, 64, 256)]
    + [("random", 20, 1000), ("random", 50, 1000)]
)
QUICK = [
    ("brick", 20, 10),
    ("brick", 50, 10),
    ("brick", 100, 10),
    ("longrange", 20, 10),
    ("qfl", 20, 8),
    ("qfl", 64, 8),
    ("random", 20, 200),
]
# QASMBench circuits in the quick set (the full set takes every covered one).
QUICK_QASMBENCH = ["adder_n10.qasm", "ising_n10.qasm", "qft_n4.qasm", "hhl_n7.qasm", "sat_n7.qasm"]
# Small circuits that small max bonds truncate hard, for state_fidelity.py (no QASMBench;
# run.sh does not use this set).
FIDELITY = [
    ("brick", 16, 8),
    ("brick", 18, 8),
    ("longrange", 16, 6),
    ("longrange", 18, 8),
    ("qfl", 16, 8),
    ("random", 14, 150),
    ("random", 16, 300),
]


def angle(rng):
    return rng.uniform(-math.pi, math.pi)


def fmt(a):
    return repr(float(a))


def brick_pairs(n):
    return [(q, q + 1) for q in range(0, n - 1, 2)] + [(q, q + 1) for q in range(1, n - 1, 2)]


def far_pair(rng, n):
    """A uniformly random ordered pair at distance >= n/4 (at least 2)."""
    d_min = max(2, math.ceil(n / 4))
    while True:
        a, b = rng.randrange(n), rng.randrange(n)
        if abs(a - b) >= d_min:
            return a, b


def brick(n, layers, rng, long_range=False):
    lines = []
    for _ in range(layers):
        for q in range(n):
            lines.append(f"ry({fmt(angle(rng))}) q[{q}];")
            lines.append(f"rz({fmt(angle(rng))}) q[{q}];")
        for a, b in brick_pairs(n):
            lines.append(f"cx q[{a}],q[{b}];")
        if long_range:
            a, b = far_pair(rng, n)
            lines.append(f"cx q[{a}],q[{b}];")
    return lines


def qfl_shaped(n, layers, rng):
    x = [angle(rng) for _ in range(n)]
    lines = []
    for _ in range(layers):
        for q in range(n):
            lines.append(f"ry({fmt(x[q])}) q[{q}];")
        for q in range(n):
            lines.append(f"rz({fmt(angle(rng))}) q[{q}];")
            lines.append(f"ry({fmt(angle(rng))}) q[{q}];")
        for a, b in brick_pairs(n):
            lines.append(f"cz q[{a}],q[{b}];")
    return lines


def random_circuit(n, gates, rng):
    lines = []
    for _ in range(gates):
        if rng.random() < 0.5:
            q = rng.randrange(n)
            kind = rng.choice(("rx", "ry", "rz", "h"))
            if kind == "h":
                lines.append(f"h q[{q}];")
            else:
                lines.append(f"{kind}({fmt(angle(rng))}) q[{q}];")
        else:
            a, b = far_pair(rng, n)
            lines.append(f"cx q[{a}],q[{b}];")
    return lines


_DROP = re.compile(r"^\s*(measure|barrier)\b")


def strip_qasmbench(text):
    """Drops `measure` and `barrier` statements (one per line in QASMBench); keeps the rest."""
    out = []
    for line in text.splitlines():
        code = line.split("//", 1)[0]
        if _DROP.match(code):
            if code.count(";") != 1:
                raise ValueError(f"cannot strip a multi-statement line: {line!r}")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def count_gates(lines):
    gates = sum(1 for l in lines if not l.startswith(("OPENQASM", "include", "qreg")))
    two = sum(1 for l in lines if l.startswith(("cx ", "cz ")))
    return gates, two


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Write only when different, so reruns keep file times and are cheap.
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def workload_seed(seed, name):
    # A stable per-workload seed (not Python's salted hash), so adding a workload does not
    # change the others.
    h = 0
    for ch in f"{seed}:{name}":
        h = (h * 1000003 + ord(ch)) % (1 << 61)
    return h


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=("quick", "full", "fidelity"), default="quick")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--qasmbench", default=os.path.join(repo, "tests", "data", "qasmbench-small"))
    args = ap.parse_args(argv)

    spec = {"quick": QUICK, "full": FULL, "fidelity": FIDELITY}[args.set]
    manifest = []
    for family, n, size in spec:
        name = f"{family}_n{n}_{'g' if family == 'random' else 'l'}{size}"
        rng = random.Random(workload_seed(args.seed, name))
        if family == "brick":
            body = brick(n, size, rng)
        elif family == "longrange":
            body = brick(n, size, rng, long_range=True)
        elif family == "qfl":
            body = qfl_shaped(n, size, rng)
        else:
            body = random_circuit(n, size, rng)
        path = os.path.join(args.out, name + ".qasm")
        write(path, HEADER + f"qreg q[{n}];\n" + "\n".join(body) + "\n")
        gates, two = count_gates(body)
        manifest.append(
            {
                "name": name,
                "family": family,
                "file": os.path.relpath(path, args.out),
                "n": n,
                "layers": None if family == "random" else size,
                "gates": gates,
                "two_qubit_gates": two,
                "reference": "exact" if n <= 24 else "converged",
            }
        )

    with open(os.path.join(args.qasmbench, "reference.json")) as f:
        reference = json.load(f)
    names = sorted(reference["circuits"]) if args.set != "fidelity" else []
    if args.set == "quick":
        names = [m for m in names if m in QUICK_QASMBENCH]
    for fname in names:
        with open(os.path.join(args.qasmbench, fname)) as f:
            text = strip_qasmbench(f.read())
        path = os.path.join(args.out, "qasmbench", fname)
        write(path, text)
        entry = reference["circuits"][fname]
        manifest.append(
            {
                "name": "qasmbench/" + fname[: -len(".qasm")],
                "family": "qasmbench",
                "file": os.path.relpath(path, args.out),
                "source": os.path.relpath(os.path.join(args.qasmbench, fname), repo),
                "n": entry["n_qubits"],
                "layers": None,
                "gates": None,
                "two_qubit_gates": None,
                "reference": "qasmbench",
                "z_reference": entry["z"],
            }
        )

    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"set": args.set, "seed": args.seed, "workloads": manifest}, f, indent=1)
    print(f"{len(manifest)} workloads in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
