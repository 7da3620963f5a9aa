#!/usr/bin/env python3
"""qfl, prism-q and ideal truncations (ideal_mps.py) at many cutoffs on one small circuit.

The largest `<Z_i>` error of a truncated MPS is a step function of the cutoff: it moves
whenever a singular value crosses the threshold at some cut. One cutoff can therefore make
one simulator look more accurate than another by chance. This script runs, at log-spaced
cutoffs, qfl's default (`--cutoff-rule both`), the textbook MPS of ideal_mps.py with the
rules `both` and `value`, and prism-q (driven with `--svd-epsilon sqrt(cutoff)`, its reading
of the same cutoff, as the harness does), all on one thread, against qfl's dense simulator,
and counts on how many cutoffs prism-q's error is below or above qfl's.

    benches/peers/.venv/bin/python benches/peers/cutoff_sweep.py CIRCUIT.qasm \\
        [--max-bond 256] [--from 1e-14] [--to 1e-18] [--points 25] [--out sweep.json]

Needs target/release/qfl and prism-runner built (benches/peers/run.sh builds both).
"""
import argparse
import json
import math
import os
import subprocess
import sys

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("qasm")
    ap.add_argument("--max-bond", type=int, default=256)
    ap.add_argument("--from", dest="hi", type=float, default=1e-14, help="largest cutoff")
    ap.add_argument("--to", dest="lo", type=float, default=1e-18, help="smallest cutoff")
    ap.add_argument("--points", type=int, default=25)
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

    rows = []
    print("| cutoff | qfl | ideal both | ideal value | prism-q | peak bond qfl / ideal both / ideal value / prism-q |")
    print("|---|---|---|---|---|---|")
    for i in range(a.points):
        c = float(f"{a.hi * (a.lo / a.hi) ** (i / (a.points - 1)):.4g}")
        q = run_json([QFL, "run", a.qasm, "--backend", "mps", "--max-bond", str(a.max_bond), "--cutoff", repr(c),
                      "--format", "json", "--quiet", "--threads", "1"])
        p = run_json([PRISM, a.qasm, "--max-bond", str(a.max_bond), "--threads", "1",
                      "--svd-epsilon", repr(math.sqrt(c))])
        ib = ideal_mps.simulate(n, ops, a.max_bond, c, "both")
        iv = ideal_mps.simulate(n, ops, a.max_bond, c, "value")
        row = {
            "cutoff": c,
            "qfl": max_err(q["z"], ref), "qfl_peak": q["mps"]["peak_bond"],
            "ideal_both": max_err(ib[0], ref), "ideal_both_peak": ib[1],
            "ideal_value": max_err(iv[0], ref), "ideal_value_peak": iv[1],
            "prism": max_err(p["z"], ref), "prism_peak": p["peak_bond"],
        }
        rows.append(row)
        print(f"| {c:.3g} | {row['qfl']:.2e} | {row['ideal_both']:.2e} | {row['ideal_value']:.2e} | "
              f"{row['prism']:.2e} | {row['qfl_peak']} / {ib[1]} / {iv[1]} / {p['peak_bond']} |", flush=True)

    def tally(x, y):
        below = sum(r[x] < r[y] / TIE for r in rows)
        above = sum(r[x] > r[y] * TIE for r in rows)
        gm = math.exp(sum(math.log(r[x] / r[y]) for r in rows) / len(rows))
        return below, above, len(rows) - below - above, gm

    summary = {}
    for x, y in (("prism", "qfl"), ("prism", "ideal_value"), ("qfl", "ideal_both")):
        below, above, ties, gm = tally(x, y)
        summary[f"{x}_vs_{y}"] = {"below": below, "above": above, "ties": ties, "geometric_mean_ratio": gm}
        print(f"{x} against {y}: below on {below}, above on {above}, within {TIE}x on {ties} of {len(rows)} "
              f"cutoffs; geometric mean of the ratio {gm:.3f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"circuit": a.qasm, "max_bond": a.max_bond, "rows": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
