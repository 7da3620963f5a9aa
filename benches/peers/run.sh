#!/usr/bin/env bash
# qfl's peer comparison, one command: qfl against Qiskit Aer (MPS), quimb (CircuitMPS) and
# prism-q (MPS backend) on the same QASM files, 2 threads each. See benches/peers/README.md.
#
#   benches/peers/run.sh                      # the quick set: a few minutes, smoke test
#   benches/peers/run.sh --set full           # the full grid (hours; a quiet machine)
#   benches/peers/run.sh --set full --sims qfl,aer --bonds 64 --repeats 5 --timeout 900 \
#       --filter '^brick_' --out /tmp/peers
#
# Every option is also an environment variable: PEERS_SET, PEERS_SIMS, PEERS_BONDS,
# PEERS_REPEATS, PEERS_TIMEOUT, PEERS_OUT, PEERS_FILTER, PEERS_REF_BOND, PEERS_REF_TIMEOUT,
# PEERS_CUTOFF, PEERS_THREADS (flags win). `--dry-run` lists the runs; `--report-only`
# rebuilds results.md and the plots from results.json. PYTHON picks the interpreter that
# creates the venv (default python3.11).
#
# Steps: (1) a venv in benches/peers/.venv with requirements.txt (pinned), made or refreshed
# when that file changes; (2) cargo build --release of qfl (repo root) and of prism-runner;
# (3) harness.py: generates the workloads into benches/peers/.work/, computes references,
# runs everything, writes results.json, results.md, time_vs_qubits.svg, time_vs_bond.svg.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3.11}"

# Two threads for everything, whatever each library reads.
threads="${PEERS_THREADS:-2}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
    RAYON_NUM_THREADS="$threads" NUMBA_NUM_THREADS="$threads"
# Results must not depend on the caller's quimb/numba/qiskit settings.
unset QUIMB_NUM_PROCS NUMBA_DISABLE_JIT QISKIT_PARALLEL 2>/dev/null || true

report_only=0
for arg in "$@"; do
    [[ "$arg" == "--report-only" || "$arg" == "--dry-run" ]] && report_only=1
done

# (1) The venv, rebuilt when requirements.txt changes.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "== venv: $venv ($("$python" --version 2>&1))" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi

# (2) The binaries (incremental; the first build takes several minutes).
if [[ "$report_only" == 0 ]]; then
    echo "== cargo build --release (qfl)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin qfl
    echo "== cargo build --release (prism-runner)" >&2
    cargo build --release --quiet --locked --manifest-path "$here/prism-runner/Cargo.toml"
fi

# (3) Everything else.
exec "$venv/bin/python" "$here/harness.py" "$@"
