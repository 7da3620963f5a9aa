#!/usr/bin/env python3
"""qfl, prism-q and ideal truncations (ideal_mps.py) at many cutoffs on one small circuit.

The largest `<Z_i>` error of a truncated MPS is a step function of the cutoff: it moves
whenever a singular value crosses the threshold at some cut. One cutoff can therefore make
one simulator look more accurate than another by chance. This script runs, at log-spaced
cutoffs, qfl's default (`--cutoff-rule both`), the textbook MPS of ideal_mps.py with the
rules `both` and `value`, and prism-q (driven with `--svd-epsilon sqrt(cutoff)`, its reading
of the same cutoff, as the harness does), all on one thread, against qfl's dense simulator,
and counts on how many cutoffs prism-q's error is below or above qfl's.

With `--fidelity` it also gives each truncated state's true infidelity `1 - |<exact|psi>|^2`
against the exact state of a numpy state-vector simulation (itself checked against qfl's
dense `<Z_i>`): the ideal MPS's from its contracted chain, prism-q's from the state vector
its backend exports (`prism-runner --save-state`), qfl's from the state `qfl run
--save-state` writes, and qfl's own estimate beside it (one minus the product of what every
cut kept, from the logarithm it sums). This asks whether a simulator with the lower `<Z_i>`
error holds the closer state or only lands nearer the exact `<Z_i>`.

    benches/peers/.venv/bin/python benches/peers/cutoff_sweep.py CIRCUIT.qasm \\
        [--max-bond 256] [--from 1e-14] [--to 1e-18] [--points 25] [--fidelity] [--out sweep.json]

Needs target/release/qfl and prism-runner built (benches/peers/run.sh builds both).
"""
import argparse
import atexit
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

import ideal_mps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
QFL = os.path.join(ROOT, "target", "release", "qfl")
PRISM = os.path.join(HERE, "prism-runner", "target", "release", "prism-runner")
# A ratio within this factor of 1 counts as a tie.
TIE = 1.05


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def max_err(z, ref):
    return max(abs(a - b) for a, b in zip(z, ref))


def load_state(path, n):
    """A state vector written by `prism-runner --save-state` or `qfl run --save-state`
    (little-endian complex128, amplitude index bit q = qubit q) as an n-axis array with
    qubit q on axis q: C order puts qubit n-1 first, hence the transpose."""
    return np.fromfile(path, dtype="<c16").reshape([2] * n).transpose(range(n - 1, -1, -1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("qasm")
    ap.add_argument("--max-bond", type=int, default=256)
    ap.add_argument("--from", dest="hi", type=float, default=1e-14, help="largest cutoff")
    ap.add_argument("--to", dest="lo", type=float, default=1e-18, help="smallest cutoff")
    ap.add_argument("--points", type=int, default=25)
    ap.add_argument("--fidelity", action="store_true",
                    help="also each state's true infidelity against the exact state (2^n amplitudes in memory, several times)")
    ap.add_argument("--out", help="write every row as JSON here")
    a = ap.parse_args()
    if not (0 < a.lo < a.hi) or a.points < 2:
        sys.exit("need 0 < --to < --from and --points >= 2")
    for exe in (QFL, PRISM):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} missing: run benches/peers/run.sh --dry-run after building, or cargo build --release")
    n, ops = ideal_mps.parse(a.qasm)
    if n > 26:
        sys.exit(f"{a.qasm}: {n} qubits; the dense reference and ideal_mps.py hold 2^n amplitudes, so at most 26")
    ref = run_json([QFL, "run", a.qasm, "--backend", "dense", "--format", "json", "--quiet", "--threads", "1"])["z"]
    exact = None
    if a.fidelity:
        exact = ideal_mps.dense(n, ops)
        gap = max_err(ideal_mps.z_of(exact), ref)
        if gap > 1e-12:
            sys.exit(f"the numpy state vector's <Z_i> differ from qfl's dense simulator by {gap:.2e}: not exact")
        state_file = tempfile.NamedTemporaryFile(suffix=".c16", delete=False).name
        atexit.register(os.unlink, state_file)
        qfl_state_file = tempfile.NamedTemporaryFile(suffix=".c16", delete=False).name
        atexit.register(os.unlink, qfl_state_file)

    rows = []
    head = "| cutoff | qfl | ideal both | ideal value | prism-q | peak bond qfl / ideal both / ideal value / prism-q |"
    if a.fidelity:
        head += " 1 - F: qfl (its estimate) / ideal both / ideal value / prism-q |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for i in range(a.points):
        c = float(f"{a.hi * (a.lo / a.hi) ** (i / (a.points - 1)):.4g}")
        q = run_json([QFL, "run", a.qasm, "--backend", "mps", "--max-bond", str(a.max_bond), "--cutoff", repr(c),
                      "--format", "json", "--quiet", "--threads", "1"]
                     + (["--save-state", qfl_state_file] if a.fidelity else []))
        p = run_json([PRISM, a.qasm, "--max-bond", str(a.max_bond), "--threads", "1",
                      "--svd-epsilon", repr(math.sqrt(c))] + (["--save-state", state_file] if a.fidelity else []))
        ib = ideal_mps.simulate(n, ops, a.max_bond, c, "both")
        iv = ideal_mps.simulate(n, ops, a.max_bond, c, "value")
        row = {
            "cutoff": c,
            "qfl": max_err(q["z"], ref), "qfl_peak": q["mps"]["peak_bond"],
            "ideal_both": max_err(ib[0], ref), "ideal_both_peak": ib[1],
            "ideal_value": max_err(iv[0], ref), "ideal_value_peak": iv[1],
            "prism": max_err(p["z"], ref), "prism_peak": p["peak_bond"],
        }
        line = (f"| {c:.3g} | {row['qfl']:.2e} | {row['ideal_both']:.2e} | {row['ideal_value']:.2e} | "
                f"{row['prism']:.2e} | {row['qfl_peak']} / {ib[1]} / {iv[1]} / {p['peak_bond']} |")
        if a.fidelity:
            ps, qs = load_state(state_file, n), load_state(qfl_state_file, n)
            for who, st, z in (("prism-q", ps, p["z"]), ("qfl", qs, q["z"])):
                gap = max_err(ideal_mps.z_of(st), z)
                # qfl's `<Z_i>` may be the local read-out (--readout auto), which differs from
                # the state's own by about the error itself; prism-q's are the state's.
                if gap > (1e-9 if who == "prism-q" else 10 * max_err(z, ref) + 1e-9):
                    sys.exit(f"cutoff {c}: {who}'s exported state gives <Z_i> {gap:.2e} away from its own: wrong qubit order?")
            # From the logarithm qfl sums over its cuts: 1 - fidelity_estimate would round
            # anything below about 1e-16 to 0.
            row["qfl_infidelity_estimate"] = -math.expm1(q["mps"]["log10_fidelity_estimate"] * math.log(10))
            row["qfl_infidelity"] = ideal_mps.infidelity(exact, qs)
            row["ideal_both_infidelity"] = ideal_mps.infidelity(exact, ib[3])
            row["ideal_value_infidelity"] = ideal_mps.infidelity(exact, iv[3])
            row["prism_infidelity"] = ideal_mps.infidelity(exact, ps)
            line += (f" {row['qfl_infidelity']:.2e} ({row['qfl_infidelity_estimate']:.2e}) / {row['ideal_both_infidelity']:.2e} / "
                     f"{row['ideal_value_infidelity']:.2e} / {row['prism_infidelity']:.2e} |")
        rows.append(row)
        print(line, flush=True)

    def tally(x, y):
        below = sum(r[x] < r[y] / TIE for r in rows)
        above = sum(r[x] > r[y] * TIE for r in rows)
        # An exact run (0, or a rounding error below it) has no ratio.
        gm = (math.exp(sum(math.log(r[x] / r[y]) for r in rows) / len(rows))
              if all(r[x] > 0 and r[y] > 0 for r in rows) else float("nan"))
        return below, above, len(rows) - below - above, gm

    summary = {}
    pairs = [("prism", "qfl"), ("prism", "ideal_value"), ("qfl", "ideal_both")]
    if a.fidelity:
        pairs += [("prism_infidelity", "qfl_infidelity"), ("prism_infidelity", "ideal_value_infidelity"),
                  ("qfl_infidelity", "ideal_both_infidelity"), ("qfl_infidelity_estimate", "qfl_infidelity")]
    for x, y in pairs:
        below, above, ties, gm = tally(x, y)
        summary[f"{x}_vs_{y}"] = {"below": below, "above": above, "ties": ties, "geometric_mean_ratio": None if math.isnan(gm) else gm}
        print(f"{x} against {y}: below on {below}, above on {above}, within {TIE}x on {ties} of {len(rows)} "
              f"cutoffs; geometric mean of the ratio {gm:.3f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"circuit": a.qasm, "max_bond": a.max_bond, "rows": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
