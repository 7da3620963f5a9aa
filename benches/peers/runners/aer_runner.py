#!/usr/bin/env python3
"""Qiskit Aer MPS runner of qfl's peer comparison: one file, one JSON line on stdout.

    aer_runner.py FILE.qasm --max-bond CHI --cutoff EPS [--threads 2] [--lapack]
                  [--repeat K] [--repeat-budget SECONDS] [--save-state FILE]

Not timed: interpreter start-up, imports, `qiskit.qasm2.load` (with Qiskit's legacy qelib1
gates), removal of final measurements, `transpile(optimization_level=0)` to the
simulator's own gate names (it only unrolls user-defined gates; no coupling map), the `save_expectation_value`
instructions being appended, and one warm-up run of a 4-qubit circuit (Aer's first run pays
one-off set-up). Timed: `simulator.run(circuit).result()`, which simulates and evaluates
every `<Z_q>` (one `save_expectation_value(Pauli("Z"), [q])` per qubit, at the end of the
circuit, inside the same run).

Settings: `AerSimulator(method="matrix_product_state",
matrix_product_state_max_bond_dimension=CHI, matrix_product_state_truncation_threshold=EPS,
max_parallel_threads=T, mps_omp_threads=T, mps_lapack=...)`. Aer first keeps at most CHI
Schmidt values, then drops the smallest ones whose squares sum to less than EPS (the state is
normalised, so that is a fraction of the weight, like qfl's cutoff), and renormalises.
`mps_lapack` (default off in Aer) switches its SVD from its own Golub-Kahan code to LAPACK.
Aer reports neither a peak bond nor a fidelity estimate without extra work, so both are null.

With `--repeat K` the timed part runs up to K times in the process (stopping once the runs
took `--repeat-budget` seconds): `first_seconds` is the first run, `seconds` the fastest,
`runs` all of them; the results reported are the first run's.

`--save-state FILE` runs the circuit once more after the timed runs, untimed, with
`save_statevector()` at the end, and writes that vector in the format of `qfl run
--save-state`: raw little-endian complex128, amplitude index bit q = qubit q, which is
Qiskit's own order (`benches/peers/state_fidelity.py` reads it). Caution: for a gate on
far-apart qubits Aer moves them next to each other and leaves them there; its export first
sorts them back with swaps that truncate at the max bond, so on such circuits the vector
written is not the state the `<Z_i>` came from (state_fidelity.py checks this). Nor are the
`<Z_i>` the expectations in the state held once a cut was truncated: Aer reads each from its
local site tensors (the estimate qfl's `--readout local` also gives).
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
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lapack", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs in this process (first run's results are reported)")
    ap.add_argument("--repeat-budget", type=float, default=float("inf"), help="stop repeating once the runs took this many seconds")
    ap.add_argument("--save-state", metavar="FILE", help="write the final state vector here (one more, untimed run)")
    args = ap.parse_args(argv)
    if args.repeat < 1 or not args.repeat_budget >= 0:
        ap.error("--repeat must be >= 1 and --repeat-budget >= 0")

    import qiskit
    import qiskit_aer
    from qiskit import QuantumCircuit, qasm2, transpile
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.quantum_info import Pauli
    from qiskit_aer import AerSimulator
    import qiskit_aer.library  # noqa: F401  (adds save_expectation_value to QuantumCircuit)

    sim = AerSimulator(
        method="matrix_product_state",
        matrix_product_state_max_bond_dimension=args.max_bond,
        matrix_product_state_truncation_threshold=args.cutoff,
        max_parallel_threads=args.threads,
        mps_omp_threads=args.threads,
        mps_lapack=args.lapack,
    )

    # The simulator's own gate names, without its target: the target caps circuits at the
    # qubit count a state vector would fit (63 here), which does not apply to the MPS method.
    standard = get_standard_gate_name_mapping()
    basis = sorted(name for name in sim.target.operation_names if name in standard)

    def lower(qc):
        qc = qc.remove_final_measurements(inplace=False)
        return transpile(qc, basis_gates=basis, optimization_level=0)

    def prepare(qc):
        qc = lower(qc)
        for q in range(qc.num_qubits):
            qc.save_expectation_value(Pauli("Z"), [q], label=f"z{q}")
        return qc

    loaded = qasm2.load(args.file, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    n = loaded.num_qubits
    qc = prepare(loaded)

    warm = QuantumCircuit(4)
    warm.h(0)
    warm.ry(0.3, 1)
    warm.rz(0.2, 2)
    warm.cx(0, 3)
    warm.cz(1, 2)
    sim.run(prepare(warm)).result()

    def timed():
        start = time.perf_counter()
        result = sim.run(qc).result()
        return result, time.perf_counter() - start

    result, first = timed()
    runs = [first]
    while len(runs) < args.repeat and sum(runs) < args.repeat_budget:
        runs.append(timed()[1])
    if not result.success:
        print(f"error: Aer failed: {result.status}", file=sys.stderr)
        return 1
    if args.save_state:
        import numpy as np

        sv = lower(loaded)
        sv.save_statevector(label="psi")
        out = sim.run(sv).result()
        if not out.success:
            print(f"error: Aer failed on the --save-state run: {out.status}", file=sys.stderr)
            return 1
        np.asarray(out.data(0)["psi"], dtype="<c16").tofile(args.save_state)
    data = result.data(0)
    z = [float(data[f"z{q}"].real) if hasattr(data[f"z{q}"], "real") else float(data[f"z{q}"]) for q in range(n)]
    print(
        json.dumps(
            {
                "sim": "aer-lapack" if args.lapack else "aer",
                "seconds": min(runs),
                "first_seconds": first,
                "runs": runs,
                "z": z,
                "peak_bond": None,
                "fidelity": None,
                "version": f"qiskit-aer {qiskit_aer.__version__}, qiskit {qiskit.__version__}",
                "threads": args.threads,
                "aer_time_taken": getattr(result.results[0], "time_taken", None),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
