#!/usr/bin/env python3
"""quimb CircuitMPS runner of qfl's peer comparison: one file, one JSON line on stdout.

    quimb_runner.py FILE.qasm --max-bond CHI --cutoff EPS [--repeat K] [--repeat-budget SECONDS]
                    [--save-state FILE]

Not timed: interpreter start-up, imports, `parse_openqasm2_file` (quimb's own parser, which
ignores creg/measure/barrier), and one warm-up of a 4-qubit circuit with the same options
(numba compiles quimb's kernels on first use). Timed: `CircuitMPS(n, max_bond=CHI,
cutoff=EPS, gate_opts={"cutoff_mode": "rsum2"})`, `apply_gates(gates)`, and every `<Z_q>`
by `local_expectation(Z, q)` for q = 0, 1, ..., n-1 (each moves the orthogonality centre one
site, so all of them cost one sweep).

Truncation: quimb's `gate_with_auto_swap` canonicalises around the two sites before the split,
and `cutoff_mode="rsum2"` drops the smallest singular values whose squares sum to at most
EPS times the sum of all squares (qfl's meaning of `--cutoff`); quimb's own default mode,
"rel", would compare each value to the largest instead. quimb does not renormalise after a
truncation, so the state's norm shrinks and `local_expectation(..., normalized=False)` (the
CircuitMPS default) returns `<psi|Z|psi>` of that unnormalised state: the values are reported
as they are. `fidelity` is quimb's `fidelity_estimate()` (the squared norm); `peak_bond` is
the largest bond of the final state.

With `--repeat K` the timed part runs up to K times in the process (stopping once the runs
took `--repeat-budget` seconds): `first_seconds` is the first run, `seconds` the fastest,
`runs` all of them; the results reported are the first run's.

`--save-state FILE` writes the first run's state vector after the timer stopped, as it is
(not renormalised), in the format of `qfl run --save-state`: raw little-endian complex128,
amplitude index bit q = qubit q (`benches/peers/state_fidelity.py` reads it).
"""

import argparse
import json
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--max-bond", type=int, required=True)
    ap.add_argument("--cutoff", type=float, required=True)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs in this process (first run's results are reported)")
    ap.add_argument("--repeat-budget", type=float, default=float("inf"), help="stop repeating once the runs took this many seconds")
    ap.add_argument("--save-state", metavar="FILE", help="write the first run's state vector here (untimed)")
    args = ap.parse_args(argv)
    if args.repeat < 1 or not args.repeat_budget >= 0:
        ap.error("--repeat must be >= 1 and --repeat-budget >= 0")

    import numpy as np
    import quimb
    import quimb.tensor as qtn
    from quimb.tensor.circuit.qasm import parse_openqasm2_file, parse_openqasm2_str

    info = parse_openqasm2_file(args.file)
    n, gates = info["n"], info["gates"]
    Z = quimb.pauli("Z")
    opts = dict(max_bond=args.max_bond, cutoff=args.cutoff, gate_opts={"cutoff_mode": "rsum2"})

    def simulate(n, gates):
        circ = qtn.CircuitMPS(n, **opts)
        circ.apply_gates(gates)
        z = [float(np.real(circ.local_expectation(Z, q))) for q in range(n)]
        return circ, z

    warm = parse_openqasm2_str(
        'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[4];\n'
        "h q[0];\nry(0.3) q[1];\nrz(0.2) q[2];\nrx(0.1) q[3];\ncx q[0],q[3];\ncz q[1],q[2];\ncx q[1],q[2];\n"
    )
    simulate(warm["n"], warm["gates"])

    def timed():
        start = time.perf_counter()
        out = simulate(n, gates)
        return out, time.perf_counter() - start

    (circ, z), first = timed()
    if args.save_state:
        # quimb's dense vector has qubit 0 as its most significant bit; the file has it least.
        psi = np.asarray(circ.psi.to_dense()).reshape([2] * n)
        psi.transpose(range(n - 1, -1, -1)).astype("<c16").tofile(args.save_state)
    runs = [first]
    while len(runs) < args.repeat and sum(runs) < args.repeat_budget:
        runs.append(timed()[1])
    print(
        json.dumps(
            {
                "sim": "quimb",
                "seconds": min(runs),
                "first_seconds": first,
                "runs": runs,
                "z": z,
                "peak_bond": int(circ.psi.max_bond()),
                "fidelity": float(circ.fidelity_estimate()),
                "version": f"quimb {quimb.__version__}",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
