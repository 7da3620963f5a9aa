#!/usr/bin/env python3
"""Driver of qfl's peer comparison: references, runs, results.json, results.md and plots.

Normally started by run.sh (which builds the binaries and the venv first); see README.md.
Every (simulator, workload, max bond, repeat) is one subprocess with a wall-clock timeout;
each prints one JSON line `{"sim", "seconds", "z", "peak_bond", "fidelity", "version", ...}`
where `seconds` is the simulator's own measurement of simulation + all <Z_i> (start-up,
imports and file parsing excluded). Every runner first runs a small warm-up circuit, then
the workload up to `--in-process` times in the same process (within `--in-process-budget`
seconds): a process's time is its fastest run (steady state, as a user simulating many
circuits sees it), and its first run is kept as `first_times` (cold caches and first
allocations included). Failed, timed-out and skipped runs are recorded with the
reason, never dropped. results.json is rewritten after every run, so an interrupted run
keeps what it measured; `--report-only` rebuilds results.md and the plots from it.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
# qfl: qfl's defaults (`--update auto --readout auto`): centred updates (orthogonality centre
# moved to every gate) while the bonds are small, TEBD for the rest of the run on chains of
# more than 12 qubits once a bond reaches 8; <Z_i> read locally where the run ended in TEBD,
# in the state held otherwise.
# qfl-centre: `--update centre`: the centred update for the whole run, <Z_i> of the state held
# (what `qfl` was before the automatic scheme); not in the default list.
# qfl-tebd: `--update tebd --readout local`: TEBD in Hastings form, the gates of a layer in
# parallel, <Z_i> read locally the way Qiskit Aer reads them.
# qfl-steps: qfl with `--no-window-blocks`: every update factored on its own, as the peers do
# (window blocks apply a run of gates within a few small-bond sites at once, and on chains of
# up to five qubits the whole circuit); it shows what the blocks contribute.
# qfl-1t: qfl on one thread (`--threads 1`), for the cost or gain of its second thread; it is
# not a peer and not in the default list.
ALL_SIMS = ("qfl", "qfl-centre", "qfl-tebd", "qfl-steps", "qfl-1t", "aer", "aer-lapack", "quimb", "prism-q")
DEFAULT_SIMS = ("qfl", "qfl-tebd", "aer", "aer-lapack", "quimb", "prism-q")
QFL_SIMS = ("qfl", "qfl-centre", "qfl-tebd", "qfl-steps", "qfl-1t")
PEERS = ("aer", "aer-lapack", "quimb", "prism-q")
SETS = {
    # set: (max bonds, repeats, timeout in s, bond of the converged reference)
    "quick": ((16, 64), 1, 60, 256),
    "full": ((16, 64, 256), 3, 600, 512),
}
EXACT_MAX_QUBITS = 24


def env(name, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_args(argv):
    ap = argparse.ArgumentParser(description="qfl peer comparison driver")
    ap.add_argument("--set", choices=SETS, default=env("PEERS_SET", "quick"))
    ap.add_argument("--sims", default=env("PEERS_SIMS", ",".join(DEFAULT_SIMS)),
                    help=f"comma-separated subset of {','.join(ALL_SIMS)}")
    ap.add_argument("--bonds", default=env("PEERS_BONDS"), help="comma-separated max bonds (default: the set's)")
    ap.add_argument("--repeats", type=int, default=env("PEERS_REPEATS"))
    ap.add_argument("--timeout", type=float, default=env("PEERS_TIMEOUT"), help="seconds per run (whole subprocess)")
    ap.add_argument("--peer-timeout-factor", type=float, default=env("PEERS_PEER_TIMEOUT_FACTOR"),
                    help="a peer's timeout in a cell is this many times qfl's time in that cell (plus "
                         "--peer-startup), at most --timeout (warned when that caps it): a peer that "
                         "times out is then known to be that many times slower, and the report says "
                         "'> F x' (bounds the cost of rows where every peer takes far longer than qfl)")
    ap.add_argument("--peer-startup", type=float, default=float(env("PEERS_PEER_STARTUP", "30")),
                    help="seconds allowed on top of the factor for a peer's imports, JIT and warm-up")
    ap.add_argument("--repeat-budget", type=float, default=float(env("PEERS_REPEAT_BUDGET", "120")),
                    help="no further repeat once the measured seconds of a combination exceed this")
    ap.add_argument("--in-process", type=int, default=int(env("PEERS_IN_PROCESS", "5")),
                    help="timed runs of the workload inside each process (the process's time is the fastest)")
    ap.add_argument("--in-process-budget", type=float, default=float(env("PEERS_IN_PROCESS_BUDGET", "1")),
                    help="no further in-process run once a process's runs took this many seconds")
    ap.add_argument("--cutoff", type=float, default=float(env("PEERS_CUTOFF", "1e-16")))
    ap.add_argument("--threads", type=int, default=int(env("PEERS_THREADS", "2")))
    ap.add_argument("--ref-bond", type=int, default=env("PEERS_REF_BOND"))
    ap.add_argument("--ref-timeout", type=float, default=env("PEERS_REF_TIMEOUT"))
    ap.add_argument("--ref-min-fidelity", type=float, default=float(env("PEERS_REF_MIN_FIDELITY", "0.99")),
                    help="a high-bond reference whose fidelity estimate is below this is flagged as not converged")
    ap.add_argument("--filter", default=env("PEERS_FILTER"), help="regex on workload names")
    ap.add_argument("--out", default=env("PEERS_OUT"), help="results dir (default results/ for full, results/quick/ for quick)")
    ap.add_argument("--work", default=env("PEERS_WORK", os.path.join(HERE, ".work")), help="generated QASM and cached references")
    ap.add_argument("--python", default=env("PEERS_PYTHON", sys.executable))
    ap.add_argument("--qfl", default=env("PEERS_QFL", os.path.join(ROOT, "target", "release", "qfl")))
    ap.add_argument("--prism", default=env("PEERS_PRISM", os.path.join(HERE, "prism-runner", "target", "release", "prism-runner")))
    ap.add_argument("--prism-svd-epsilon", type=float, default=env("PEERS_PRISM_SVD_EPSILON"),
                    help="drive prism-q's MpsBackend by hand with this relative threshold (default: its public simulate() path, threshold 1e-12)")
    ap.add_argument("--dry-run", action="store_true", help="list the planned runs and exit")
    ap.add_argument("--report-only", action="store_true", help="rebuild results.md and plots from results.json")
    ap.add_argument("--merge", nargs="+", metavar="DIR",
                    help="with --report-only: combine the results.json of these runs into --out "
                         "(a later run's cell replaces an earlier one's) and report them together; "
                         "the report names every source run and the versions each used")
    a = ap.parse_args(argv)
    bonds, repeats, timeout, ref_bond = SETS[a.set]
    a.bonds = [int(b) for b in a.bonds.split(",")] if a.bonds else list(bonds)
    a.repeats = int(a.repeats) if a.repeats else repeats
    a.timeout = float(a.timeout) if a.timeout else timeout
    a.ref_bond = int(a.ref_bond) if a.ref_bond else ref_bond
    a.ref_timeout = float(a.ref_timeout) if a.ref_timeout else a.timeout
    a.peer_timeout_factor = float(a.peer_timeout_factor) if a.peer_timeout_factor else None
    if a.ref_bond <= max(a.bonds):
        # A reference at the max bond of a run would be that run itself.
        a.ref_bond = 2 * max(a.bonds)
        print(f"note: reference bond raised to {a.ref_bond} (twice the largest max bond)", file=sys.stderr)
    if a.in_process < 1 or not a.in_process_budget >= 0:
        ap.error("--in-process must be >= 1 and --in-process-budget >= 0")
    a.sims = [s.strip() for s in a.sims.split(",") if s.strip()]
    if a.peer_timeout_factor is not None and ("qfl" not in a.sims or a.peer_timeout_factor <= 1):
        ap.error("--peer-timeout-factor needs qfl among --sims (its time sets the peers' timeouts) and a factor > 1")
    for s in a.sims:
        if s not in ALL_SIMS:
            ap.error(f"unknown simulator {s!r} (known: {', '.join(ALL_SIMS)})")
    if a.out is None:
        a.out = os.path.join(HERE, "results") if a.set == "full" else os.path.join(HERE, "results", "quick")
    return a


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Subprocesses


def run_json(cmd, timeout, env_extra=None):
    """Runs `cmd`, returns (status, parsed last JSON line or None, message, wall seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env_extra or {})},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return "timeout", None, f"no answer within {timeout:g} s (whole process)", time.perf_counter() - start
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        lines = [l for l in err.strip().splitlines() if l.strip()]
        return "failed", None, f"exit {proc.returncode}: {lines[-1] if lines else '(no message)'}"[:500], wall
    # One JSON document (qfl prints it pretty over several lines) or, after other output,
    # one JSON line at the end.
    candidates = [out] + [l for l in reversed(out.strip().splitlines()) if l.strip().startswith("{")][:1]
    for text in candidates:
        try:
            return "ok", json.loads(text), "", wall
        except json.JSONDecodeError:
            continue
    return "failed", None, "no JSON on stdout: " + out.strip()[-200:], wall


def qfl_cmd(a, path, chi, backend="mps", threads=None, tebd=False, repeat=True, blocks=True,
            centre=False):
    threads = a.threads if threads is None else threads
    cmd = [a.qfl, "run", path, "--backend", backend, "--format", "json", "--quiet", "--threads", str(threads)]
    if backend == "mps":
        cmd += ["--max-bond", str(chi), "--cutoff", repr(a.cutoff)]
    if tebd:
        cmd += ["--update", "tebd", "--readout", "local"]
    if centre:
        cmd += ["--update", "centre"]
    if not blocks:
        cmd += ["--no-window-blocks"]
    return cmd + (repeat_args(a) if repeat else [])


def repeat_args(a):
    """The in-process repeat options every runner takes."""
    return ["--repeat", str(a.in_process), "--repeat-budget", repr(a.in_process_budget)]


def qfl_record(j, version, sim):
    mps = j.get("mps") or {}
    t = j["timings"]
    runs = [x / 1e3 for x in t.get("runs_ms") or [t["simulate_ms"]]]
    return {
        "sim": sim,
        "seconds": min(runs),
        "first_seconds": t["simulate_ms"] / 1e3,
        "runs": runs,
        "z": j["z"],
        "peak_bond": mps.get("peak_bond"),
        "fidelity": mps.get("fidelity_estimate"),
        "version": version,
    }


def prism_dialect(path):
    """prism-q's parser reads OpenQASM 3 with OpenQASM 2 compatibility but lacks qelib1's
    `cu1`; the same gate is `cp` in stdgates.inc. Returns a copy with that rename (the only
    one the QASMBench set needs), or `path` itself when nothing changes."""
    with open(path) as f:
        text = f.read()
    renamed = re.sub(r"\bcu1(\s*\()", r"cp\1", text)
    if renamed == text:
        return path
    out = path[: -len(".qasm")] + ".prism.qasm"
    if not os.path.exists(out) or open(out).read() != renamed:
        with open(out, "w") as f:
            f.write(renamed)
    return out


def sim_cmd(a, sim, path, chi):
    if sim == "qfl":
        return qfl_cmd(a, path, chi)
    if sim == "qfl-1t":
        return qfl_cmd(a, path, chi, threads=1)
    if sim == "qfl-tebd":
        return qfl_cmd(a, path, chi, tebd=True)
    if sim == "qfl-centre":
        return qfl_cmd(a, path, chi, centre=True)
    if sim == "qfl-steps":
        return qfl_cmd(a, path, chi, blocks=False)
    if sim in ("aer", "aer-lapack"):
        cmd = [a.python, os.path.join(HERE, "runners", "aer_runner.py"), path, "--max-bond", str(chi),
               "--cutoff", repr(a.cutoff), "--threads", str(a.threads)]
        return cmd + (["--lapack"] if sim == "aer-lapack" else []) + repeat_args(a)
    if sim == "quimb":
        return [a.python, os.path.join(HERE, "runners", "quimb_runner.py"), path, "--max-bond", str(chi),
                "--cutoff", repr(a.cutoff)] + repeat_args(a)
    if sim == "prism-q":
        cmd = [a.prism, prism_dialect(path), "--max-bond", str(chi), "--threads", str(a.threads)] + repeat_args(a)
        if a.prism_svd_epsilon is not None:
            cmd += ["--svd-epsilon", repr(a.prism_svd_epsilon)]
        return cmd
    raise ValueError(sim)


# ---------------------------------------------------------------------------------------------
# Provenance


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info():
    lscpu = sh(["lscpu"])
    fields = {}
    for line in lscpu.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    flags = fields.get("Flags", "").split()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": fields.get("Model name"),
        "cpus": fields.get("CPU(s)"),
        "threads_per_core": fields.get("Thread(s) per core"),
        "cores_per_socket": fields.get("Core(s) per socket"),
        "l2": fields.get("L2 cache"),
        "l3": fields.get("L3 cache"),
        "hypervisor": fields.get("Hypervisor vendor"),
        "simd": [f for f in ("avx2", "fma", "avx512f") if f in flags],
        "nproc": sh(["nproc"]),
        "memory": mem,
        "kernel": platform.release(),
        "rustc": sh(["rustc", "--version"]),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


def qfl_version(a):
    v = sh([a.qfl, "--version"])
    commit = sh(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"])
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    return f"{v} ({commit}{'-dirty' if dirty else ''})"


# ---------------------------------------------------------------------------------------------
# Workloads and references


def generate(a):
    qasm_dir = os.path.join(a.work, "qasm", a.set)
    subprocess.run([sys.executable, os.path.join(HERE, "gen_workloads.py"), "--set", a.set, "--out", qasm_dir], check=True)
    with open(os.path.join(qasm_dir, "manifest.json")) as f:
        manifest = json.load(f)
    workloads = manifest["workloads"]
    if a.filter:
        workloads = [w for w in workloads if re.search(a.filter, w["name"])]
    for w in workloads:
        w["path"] = os.path.join(qasm_dir, w["file"])
        if w["gates"] is None:
            status, j, msg, _ = run_json([a.qfl, "info", w["path"], "--format", "json"], 60)
            if status == "ok":
                w["gates"] = j["operations"]
                w["two_qubit_gates"] = j["multi_qubit_gates"]
    return manifest["seed"], workloads


def family_key(w):
    """Workloads of one family and depth, ordered by n, share a skip chain (each QASMBench
    circuit is a chain of its own)."""
    if w["family"] == "qasmbench":
        return ("qasmbench", w["name"])
    size = w["layers"] if w["layers"] is not None else w["gates"]
    return (w["family"], size)


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def reference(a, w, timed_out_refs, ref_times, qfl_ver):
    """The reference <Z_i> of a workload: {"kind", "z", ...} or {"kind": "none", "reason"}."""
    if w["family"] == "qasmbench":
        return {"kind": "exact (QASMBench reference.json, Qiskit statevector)", "z": w["z_reference"]}
    exact = w["n"] <= EXACT_MAX_QUBITS
    kind = "exact (qfl dense)" if exact else f"converged (qfl mps, centred update, max bond {a.ref_bond}, cutoff {a.cutoff:g})"
    # The high-bond reference is the centred update's state and its own <Z_i> (every
    # truncation optimal for the whole state), whatever qfl's default update is.
    cache = os.path.join(a.work, "refs", f"{w['name']}.{file_hash(w['path'])}.{'dense' if exact else f'mps{a.ref_bond}-{a.cutoff:g}-centre'}.json")
    if os.path.exists(cache):
        with open(cache) as f:
            ref = json.load(f)
        if "seconds" in ref and not exact:
            ref_times[family_key(w)] = (w["n"], w["gates"], ref["seconds"])
        return ref
    key = family_key(w)
    if not exact and key in timed_out_refs and timed_out_refs[key] <= w["n"]:
        return {"kind": "none", "reason": f"high-bond reference skipped: it timed out at n = {timed_out_refs[key]} in this family and depth"}
    if not exact and key in ref_times:
        n0, g0, t0 = ref_times[key]
        if w["gates"] and g0 and t0 * w["gates"] / g0 > a.ref_timeout:
            return {"kind": "none", "reason": f"high-bond reference skipped: {t0:.0f} s at n = {n0} scales linearly in gates to {t0 * w['gates'] / g0:.0f} s > {a.ref_timeout:g} s"}
    log(f"  reference {w['name']}: running {kind} (at most {a.ref_timeout:g} s)")
    status, j, msg, wall = run_json(qfl_cmd(a, w["path"], a.ref_bond, "dense" if exact else "mps", repeat=False,
                                            centre=not exact), a.ref_timeout)
    if status != "ok":
        if status == "timeout" and not exact:
            timed_out_refs[key] = min(timed_out_refs.get(key, w["n"]), w["n"])
        log(f"  reference {w['name']}: none ({status})")
        return {"kind": "none", "reason": f"reference run {status}: {msg}"}
    ref = {"kind": kind, "z": j["z"], "seconds": j["timings"]["simulate_ms"] / 1e3, "version": qfl_ver}
    if not exact:
        ref_times[key] = (w["n"], w["gates"], ref["seconds"])
    if not exact:
        ref["fidelity_estimate"], ref["peak_bond"] = j["mps"]["fidelity_estimate"], j["mps"]["peak_bond"]
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache, "w") as f:
        json.dump(ref, f)
    return ref


def flag_convergence(a, ref):
    """A high-bond reference counts as converged when its fidelity estimate is at least
    --ref-min-fidelity; otherwise it is kept, labelled NOT converged, and errors against it
    are marked as indicative."""
    if "fidelity_estimate" in ref:
        f = ref["fidelity_estimate"]
        ref["converged"] = f >= a.ref_min_fidelity
        if not ref["converged"]:
            ref["kind"] = f"NOT converged (qfl mps, max bond {a.ref_bond}, fidelity estimate {f:.3g} < {a.ref_min_fidelity:g})"
    else:
        ref["converged"] = "z" in ref
    return ref


def exact_bond(n):
    return 2 ** (n // 2)


def planned_bonds(a, w):
    """QASMBench circuits are tiny: a max bond at or above 2^(n/2) is exact, so only the
    smallest such bond is run (larger ones would repeat the same exact computation)."""
    if w["family"] != "qasmbench":
        return list(a.bonds)
    out = []
    for chi in sorted(a.bonds):
        out.append(chi)
        if chi >= exact_bond(w["n"]):
            break
    return out


# ---------------------------------------------------------------------------------------------
# Runs


def max_err(z, ref):
    if ref is None or "z" not in ref:
        return None
    if len(z) != len(ref["z"]):
        return float("nan")
    return max((abs(x - y) for x, y in zip(z, ref["z"])), default=0.0)


def run_all(a):
    os.makedirs(a.out, exist_ok=True)
    seed, workloads = generate(a)
    qfl_ver = qfl_version(a)
    info = {
        "set": a.set,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "benches/peers/run.sh " + " ".join(sys.argv[1:]),
        "seed": seed,
        "sims": a.sims,
        "bonds": a.bonds,
        "repeats": a.repeats,
        "repeat_budget_s": a.repeat_budget,
        "in_process": a.in_process,
        "in_process_budget_s": a.in_process_budget,
        "timeout_s": a.timeout,
        "peer_timeout_factor": a.peer_timeout_factor,
        "peer_startup_s": a.peer_startup,
        "cutoff": a.cutoff,
        "threads": a.threads,
        "reference_bond": a.ref_bond,
        "reference_timeout_s": a.ref_timeout,
        "reference_min_fidelity": a.ref_min_fidelity,
        "prism_svd_epsilon": a.prism_svd_epsilon,
        "machine": machine_info(),
        "versions": {"qfl": qfl_ver},
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS")},
    }
    workloads.sort(key=lambda w: (w["family"], str(family_key(w)[1]), w["n"], w["name"]))
    # qfl first in each cell: with --peer-timeout-factor its time sets the peers' timeouts.
    order = sorted(a.sims, key=lambda s: s != "qfl")
    plan = [(w, chi, sim) for w in workloads for chi in planned_bonds(a, w) for sim in order]
    if a.dry_run:
        for w, chi, sim in plan:
            print(f"{sim:10} {w['name']:32} n={w['n']:<5} gates={w['gates']!s:<6} chi={chi}")
        print(f"{len(plan)} (simulator, workload, max bond) combinations x {a.repeats} repeats")
        return
    out_json = os.path.join(a.out, "results.json")
    records, refs, timed_out_refs, ref_times = [], {}, {}, {}
    # (sim, family key, chi) -> smallest n that timed out; (sim, workload) -> smallest chi that did.
    timeout_by_n, timeout_by_chi = {}, {}
    # (sim, family key, chi) -> (n, gates, min seconds) of the last run that finished: a run
    # whose time, scaled linearly in gates from it, exceeds the timeout is skipped. At a
    # saturated bond the cost per gate does not fall with n, so this never skips a run that
    # would have finished in time by the linear model the issue asks for.
    last_ok = {}
    t_start = time.time()
    for i, (w, chi, sim) in enumerate(plan, 1):
        if w["name"] not in refs:
            refs[w["name"]] = flag_convergence(a, reference(a, w, timed_out_refs, ref_times, qfl_ver))
        ref = refs[w["name"]]
        rec = {
            "sim": sim, "workload": w["name"], "family": w["family"], "n": w["n"], "layers": w["layers"],
            "gates": w["gates"], "two_qubit_gates": w["two_qubit_gates"], "chi": chi, "cutoff": a.cutoff,
            "threads": a.threads, "status": "ok", "message": "", "times": [], "first_times": [], "min": None, "median": None,
            "max_err": None, "peak_bond": None, "fidelity": None, "version": None,
            "reference": ref["kind"], "reference_note": ref.get("reason"),
            "reference_converged": ref["converged"],
        }
        key_n, key_chi = (sim, family_key(w), chi), (sim, w["name"])
        timeout, bound = a.timeout, None
        if a.peer_timeout_factor and sim in PEERS:
            q = next((r for r in records if r["sim"] == "qfl" and r["workload"] == w["name"]
                      and r["chi"] == chi and r["min"] is not None), None)
            if q is not None:
                factor_s = a.peer_timeout_factor * q["min"]
                if factor_s + a.peer_startup < a.timeout:
                    bound, timeout = factor_s, factor_s + a.peer_startup
                else:
                    # --timeout caps every run: a peer that times out here is only known to be
                    # slower than (timeout - start-up) / qfl's time, below the factor asked for.
                    capped = (a.timeout - a.peer_startup) / q["min"]
                    rec["timeout_capped"] = True
                    log(f"  warning: {sim} on {w['name']} at max bond {chi}: {a.peer_timeout_factor:g} x qfl's "
                        f"{q['min']:.4g} s + {a.peer_startup:g} s is above --timeout {a.timeout:g} s; its timeout "
                        f"stays {a.timeout:g} s, so a timeout shows only > {capped:.2f}x "
                        f"(raise --timeout above {math.ceil(factor_s + a.peer_startup):d} s)")
        rec["timeout_s"] = timeout
        predicted = None
        if key_n in last_ok and w["gates"] and last_ok[key_n][1]:
            n0, g0, t0 = last_ok[key_n]
            predicted = t0 * w["gates"] / g0
        if bound is not None:
            # Timeouts relative to qfl differ from cell to cell: no skip predicted from another cell.
            predicted = None
        if key_n in timeout_by_n and timeout_by_n[key_n] < w["n"] and bound is None:
            rec["status"], rec["message"] = "skipped", f"predicted timeout: timed out at n = {timeout_by_n[key_n]} (same family, depth and max bond)"
        elif predicted is not None and predicted > a.timeout:
            rec["status"], rec["message"] = "skipped", (
                f"predicted timeout: {last_ok[key_n][2]:.0f} s at n = {last_ok[key_n][0]} scales linearly in gates to {predicted:.0f} s > {a.timeout:g} s")
        elif key_chi in timeout_by_chi and timeout_by_chi[key_chi] < chi and bound is None:
            rec["status"], rec["message"] = "skipped", f"predicted timeout: timed out at max bond {timeout_by_chi[key_chi]}"
        else:
            zs = []
            for r in range(a.repeats):
                # Long runs are not repeated past a budget: their spread is small relative to
                # their length, and three 10-minute repeats would triple the set's duration.
                if r > 0 and sum(rec["times"]) > a.repeat_budget:
                    rec["message"] = f"stopped after {r} repeat(s): {sum(rec['times']):.0f} s measured > repeat budget {a.repeat_budget:g} s"
                    break
                status, j, msg, wall = run_json(sim_cmd(a, sim, w["path"], chi), timeout)
                if status != "ok":
                    rec["status"], rec["message"] = status, msg if r == 0 else f"repeat {r + 1}: {msg}"
                    if status == "timeout" and rec.get("timeout_capped"):
                        rec["message"] += f": capped by --timeout, below {a.peer_timeout_factor:g} x qfl's time"
                    if status == "timeout" and bound is not None:
                        # Its simulation alone took longer than `bound` (start-up has its own allowance).
                        rec["lower_bound_s"] = bound
                        rec["message"] += f": {a.peer_timeout_factor:g} x qfl's {bound / a.peer_timeout_factor:.3g} s + {a.peer_startup:g} s start-up"
                    if status == "timeout":
                        timeout_by_n[key_n] = min(timeout_by_n.get(key_n, w["n"]), w["n"])
                        timeout_by_chi[key_chi] = min(timeout_by_chi.get(key_chi, chi), chi)
                    break
                if sim in QFL_SIMS:
                    j = qfl_record(j, qfl_ver, sim)
                rec["times"].append(j["seconds"])
                rec["first_times"].append(j.get("first_seconds", j["seconds"]))
                zs.append(j["z"])
                rec["peak_bond"], rec["fidelity"], rec["version"] = j.get("peak_bond"), j.get("fidelity"), j.get("version")
                info["versions"].setdefault(sim, j.get("version"))
            if rec["times"]:
                rec["min"], rec["median"] = min(rec["times"]), statistics.median(rec["times"])
                # Counted for the report's check of lost norms (see `mark_degenerate`).
                rec["z_zero"] = sum(1 for v in zs[0] if v == 0.0)
                rec["z_rms"] = math.sqrt(sum(v * v for v in zs[0]) / max(len(zs[0]), 1))
                last_ok[key_n] = (w["n"], w["gates"], rec["min"])
                errs = [max_err(z, ref) for z in zs]
                rec["max_err"] = None if errs[0] is None else max(errs)
                rec["repeat_spread"] = max((max(abs(x - y) for x, y in zip(z, zs[0])) for z in zs[1:] if len(z) == len(zs[0])), default=0.0)
                if sim == "quimb" and rec["fidelity"] and "z" in ref:
                    f = rec["fidelity"]
                    rec["max_err_normalised"] = max(abs(x / f - y) for x, y in zip(zs[0], ref["z"])) if len(zs[0]) == len(ref["z"]) else None
                if rec["status"] != "ok":
                    rec["status"] = "partial"
        records.append(rec)
        shown = f"{rec['min']:.3f} s" if rec["min"] is not None else rec["status"]
        err = f", err {rec['max_err']:.1e}" if isinstance(rec["max_err"], float) else ""
        log(f"[{i}/{len(plan)} {time.time() - t_start:.0f}s] {sim} {w['name']} chi={chi}: {shown}{err} {rec['message']}")
        info["machine"]["load_average_at_end"] = list(os.getloadavg())
        info["elapsed_s"] = round(time.time() - t_start, 1)
        write_json(out_json, {"info": info, "references": refs_summary(refs), "runs": records})
    report(a.out)


def refs_summary(refs):
    return {k: {kk: vv for kk, vv in v.items() if kk != "z"} | ({"z": v["z"]} if "z" in v else {}) for k, v in refs.items()}


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Report


def fmt_t(t):
    if t is None:
        return "–"
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def fmt_e(e):
    if e is None:
        return "no ref"
    if isinstance(e, float) and math.isnan(e):
        return "n/a"
    return f"{e:.1e}"


def cell(r):
    if r is None:
        return ""
    if r["status"] in ("ok", "partial"):
        dagger = "†" if r["max_err"] is not None and not r.get("reference_converged", True) else ""
        s = f"{fmt_t(r['min'])} / {fmt_t(r['median'])} ({fmt_e(r['max_err'])}{dagger})"
        if r.get("degenerate"):
            s += " ‡"
        return s + (" partial" if r["status"] == "partial" else "")
    return {"timeout": "timeout", "failed": "failed", "skipped": "skipped"}[r["status"]] + "¹"


def memory_gib(text):
    m = re.match(r"(\d+)\s*kB", text or "")
    return f"{int(m.group(1)) / 2**20:.0f} GiB memory" if m else (text or "")


def mark_degenerate(runs, references):
    """Marks `degenerate` the runs whose <Z_i> are all exactly 0 while the reference, or
    another simulator on the same workload and max bond, has non-zero values: a state that
    lost its norm (underflow) reads 0 everywhere, and its time is that of a broken run.
    (Circuits whose exact <Z_i> are all 0, such as a QFT of |0...0>, are not marked.)"""
    rows = {}
    for r in runs:
        rows.setdefault((r["workload"], r["chi"]), []).append(r)
    for (wl, _), rs in rows.items():
        ref = references.get(wl) or {}
        ref_nonzero = any(abs(v) > 1e-8 for v in ref.get("z") or [])
        for r in rs:
            all_zero = r.get("z_zero") is not None and r["z_zero"] == r["n"] and r["n"] > 1
            others = any((o.get("z_rms") or 0.0) > 1e-8 for o in rs if o is not r)
            r["degenerate"] = bool(all_zero and (ref_nonzero or others))
            if r["degenerate"] and "norm was lost" not in r["message"]:
                r["message"] = (r["message"] + "; " if r["message"] else "") + \
                    "every <Z_i> is exactly 0 where others are not: the state's norm was lost"


def report(out):
    with open(os.path.join(out, "results.json")) as f:
        data = json.load(f)
    info, runs = data["info"], data["runs"]
    mark_degenerate(runs, data.get("references", {}))
    sims = [s for s in ALL_SIMS if s in info["sims"]]
    speed_sims = [s for s in ("qfl", "qfl-centre", "qfl-tebd", "qfl-steps") if s in sims]
    by = {(r["workload"], r["chi"], r["sim"]): r for r in runs}
    rows = []
    for r in runs:
        k = (r["workload"], r["chi"])
        if k not in rows:
            rows.append(k)
    m = info["machine"]
    lines = [
        f"# Peer comparison: {info['set']} set",
        "",
        *(["**Smoke test of the harness (small workloads, 1 repeat, often on a busy machine): "
           "not benchmark figures.**", ""] if info["set"] == "quick" else []),
        f"Date {info['date']}; machine: {m.get('cpu')}, {m.get('nproc')} CPUs visible, {memory_gib(m.get('memory'))}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m.get('load_average_at_start', []))}, "
        f"at end {', '.join(f'{x:.2f}' for x in m.get('load_average_at_end', []))}.",
        f"Command: `{info['command']}`. Threads {info['threads']} everywhere; cutoff {info['cutoff']:g}; "
        f"{info['repeats']} repeat(s); timeout {info['timeout_s']:g} s per run"
        + (f"; a peer's timeout is {info['peer_timeout_factor']:g} x qfl's time in the cell + "
           f"{info['peer_startup_s']:g} s for start-up, if that is shorter." if info.get("peer_timeout_factor") else "."),
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in info["versions"].items()) + ".",
        "",
        "Each cell: min / median seconds of simulation + all <Z_i> (start-up, imports and parsing "
        "excluded) over the processes, where a process's time is its fastest of "
        + (f"up to {info['in_process']} runs of the workload (within {info['in_process_budget_s']:g} s) "
           "after a small warm-up circuit, the same for every simulator"
           if "in_process" in info else "one run (a run before in-process repeats existed)")
        + ", then in brackets the largest |<Z_i> - reference| over the qubits. "
        "Speed-up: fastest peer's min over that qfl variant's min (> 1 means qfl is faster); peers without a "
        "time (failed, timed out, skipped) are left out, and it is '–' when none has one; "
        "'> F x' where a peer timed out at F times qfl's time (`--peer-timeout-factor`) and no "
        "peer finished faster. "
        "Reference kinds are listed under the table; † marks an error against a reference that is "
        "itself truncated (not converged): indicative only; ‡ marks a run whose <Z_i> are all "
        "exactly 0 where the reference's or another simulator's are not (its state lost its norm): "
        "its time is not counted in any speed-up.",
        "",
        "| workload | n | gates | max bond | " + " | ".join(sims) + "".join(f" | {q} speed-up" for q in speed_sims) + " |",
        "|---|---|---|---|" + "---|" * (len(sims) + len(speed_sims)),
    ]
    notes = []
    for wl, chi in rows:
        any_r = next(by[(wl, chi, s)] for s in sims if (wl, chi, s) in by)
        cells = []
        for s in sims:
            r = by.get((wl, chi, s))
            cells.append(cell(r))
            if r and (r["status"] not in ("ok", "partial") or r.get("degenerate")):
                notes.append(f"{s}, {wl}, max bond {chi}: {r['status']}: {r['message']}")
        peers = [by[(wl, chi, s)]["min"] for s in sims if s in PEERS and (wl, chi, s) in by
                 and by[(wl, chi, s)]["min"] is not None and not by[(wl, chi, s)].get("degenerate")]
        bounds = [by[(wl, chi, s)]["lower_bound_s"] for s in sims if s in PEERS and (wl, chi, s) in by
                  and by[(wl, chi, s)].get("lower_bound_s") is not None]
        speeds = []
        for qs in speed_sims:
            q = by.get((wl, chi, qs))
            if not (q and q["min"]):
                speeds.append("–")
            elif bounds and (not peers or min(bounds) < min(peers)):
                # The fastest peer may be one that timed out: only a lower bound is known.
                speeds.append(f"> {min(bounds) / q['min']:.2f}x")
            else:
                speeds.append(f"{min(peers) / q['min']:.2f}x" if peers else "–")
        lines.append(f"| {wl} | {any_r['n']} | {any_r['gates']} | {chi} | " + " | ".join(cells + speeds) + " |")
    lines += speed_summary(rows, by, sims, speed_sims)
    lines += ["", "References:", ""]
    for wl, ref in data["references"].items():
        extra = ""
        if "fidelity_estimate" in ref:
            extra = f" (its fidelity estimate {ref['fidelity_estimate']:.6f}, peak bond {ref['peak_bond']})"
        lines.append(f"- {wl}: {ref['kind']}{extra}" + (f": {ref['reason']}" if ref.get("reason") else ""))
    if notes:
        lines += ["", "¹ Runs without a time, and ‡ runs that lost their norm:", ""] + [f"- {n}" for n in notes]
    if info.get("merged_from"):
        # A speed-up is a ratio within one run; say where a row mixes runs.
        mixed = []
        for wl, chi in rows:
            srcs = sorted({by[(wl, chi, s)].get("source") for s in sims if (wl, chi, s) in by})
            if len(srcs) > 1:
                mixed.append(f"- {wl}, max bond {chi}: cells from {', '.join(srcs)}")
        lines += ["", "Merged from " + ", ".join(info["merged_from"]) + " (each run's machine load, "
                  "date and qfl commit in its own results.md; the load averages above are the last run's). "
                  + ("Rows whose cells come from more than one run (their speed-ups compare runs):"
                     if mixed else "Every row's cells come from one run.")] + ([""] + mixed if mixed else [])
    quimb_norm = [r for r in runs if r["sim"] == "quimb" and r.get("max_err_normalised") is not None]
    if quimb_norm:
        lines += ["", "quimb does not renormalise after truncation; its <Z_i> divided by its own fidelity "
                  "estimate (squared norm) would have these errors instead:", ""]
        lines += [f"- {r['workload']}, max bond {r['chi']}: {fmt_e(r['max_err_normalised'])} (reported {fmt_e(r['max_err'])})" for r in quimb_norm]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plots(out, runs, sims, info.get("timeout_s"))


def speed_summary(rows, by, sims, speed_sims):
    """Median and range of each qfl variant's speed-up over the rows, on the steady-state
    times of the table and on the processes' first runs (cold caches included)."""
    out = []
    for qs in speed_sims:
        for label, key in (("steady state (table)", "times"), ("first run of each process", "first_times")):
            ratios = []
            for wl, chi in rows:
                q = by.get((wl, chi, qs))
                peers = [min(r[key]) for s in sims if s in PEERS and (r := by.get((wl, chi, s))) and r.get(key)
                         and not r.get("degenerate")]
                if q and q.get(key) and not q.get("degenerate") and peers:
                    ratios.append(min(peers) / min(q[key]))
            if ratios:
                out.append(f"- {qs}, {label}: fastest peer / {qs} median {statistics.median(ratios):.2f}x "
                           f"({min(ratios):.2f}x-{max(ratios):.2f}x) over {len(ratios)} rows; "
                           f"faster on {sum(x > 1 for x in ratios)}, >= 3x on {sum(x >= 3 for x in ratios)}")
    return ["", "Speed-ups:", ""] + out if out else []


def plots(out, runs, sims, timeout=None):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plots")
        return
    matplotlib.rcParams["svg.hashsalt"] = "qfl-peers"  # stable SVG ids across reruns

    def draw(pred, x, title, xlabel, fname, xlog_base):
        chosen = [r for r in runs if pred(r) and r["sim"] in sims]
        if not any(r["min"] is not None for r in chosen):
            return
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        xs = set()
        for i, s in enumerate(sims):
            pts = sorted((x(r), r["min"]) for r in chosen if r["sim"] == s and r["min"] is not None)
            # A timed-out run is drawn at its own timeout (per cell with --peer-timeout-factor).
            late = sorted((x(r), r.get("timeout_s") or timeout) for r in chosen
                          if r["sim"] == s and r["status"] == "timeout" and (r.get("timeout_s") or timeout))
            color = colors[i % len(colors)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, label=s)
            if late:
                ax.plot([p[0] for p in late], [p[1] for p in late], marker="x", linestyle="none", color=color,
                        markersize=9, label=f"{s}: timed out" if not pts else None)
            xs.update(p[0] for p in pts)
            xs.update(p[0] for p in late)
        timed_out = [r for r in chosen if r["status"] == "timeout"]
        if timeout and timed_out and all((r.get("timeout_s") or timeout) == timeout for r in timed_out):
            ax.axhline(timeout, color="grey", linewidth=0.8, linestyle=":")
            ax.annotate(f"timeout {timeout:g} s (x: timed out)", (0.01, 0.98), xycoords="axes fraction",
                        va="top", fontsize=8, color="grey")
        elif timed_out:
            ax.annotate("x: timed out at its cell's timeout (a lower bound)", (0.01, 0.98),
                        xycoords="axes fraction", va="top", fontsize=8, color="grey")
        ax.set_xscale("log", base=xlog_base)
        ax.set_yscale("log")
        ax.set_xticks(sorted(xs), [str(v) for v in sorted(xs)])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds (min of repeats): simulation + all <Z_i>")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, fname), metadata={"Date": None})
        plt.close(fig)

    draw(lambda r: r["family"] == "brick" and r["layers"] == 10 and r["chi"] == 64, lambda r: r["n"],
         "Brick circuit, 10 layers, max bond 64", "qubits", "time_vs_qubits.svg", 10)
    draw(lambda r: r["workload"] == "brick_n50_l10", lambda r: r["chi"],
         "Brick circuit, 50 qubits, 10 layers", "max bond", "time_vs_bond.svg", 2)


def merge(dirs, out):
    """Combines the results of several runs into `out`/results.json (for plots across runs)."""
    sources = []
    for d in dirs:
        with open(os.path.join(d, "results.json")) as f:
            sources.append((d, json.load(f)))
    cells, references, sims, versions = {}, {}, [], {}
    for d, data in sources:
        for r in data["runs"]:
            cells[(r["workload"], r["chi"], r["sim"])] = dict(r, source=d)
        references.update(data["references"])
        for s in data["info"]["sims"]:
            if s not in sims:
                sims.append(s)
        for k, v in data["info"]["versions"].items():
            versions.setdefault(k, [])
            if v not in versions[k]:
                versions[k].append(v)
    info = dict(sources[-1][1]["info"])
    info["sims"] = sims
    info["date"] = ", ".join(data["info"]["date"] for _, data in sources)
    # The report wraps the command in backquotes: "`merge`; the runs: `a`; `b`".
    info["command"] = ("harness.py --report-only --merge " + " ".join(dirs) + "`; the runs: `"
                       + "`; `".join(data["info"]["command"] for _, data in sources))
    info["versions"] = {k: " / ".join(v) for k, v in versions.items()}
    info["bonds"] = sorted({r["chi"] for r in cells.values()})
    info["merged_from"] = [d for d, _ in sources]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"info": info, "references": references, "runs": list(cells.values())}, f, indent=1)


def main(argv):
    a = parse_args(argv)
    if a.merge and not a.report_only:
        log("error: --merge goes with --report-only")
        return 2
    if a.report_only:
        if a.merge:
            merge(a.merge, a.out)
        report(a.out)
        return 0
    for path, what in ((a.qfl, "qfl (cargo build --release)"), (a.prism, "prism-runner")):
        # qfl is always needed (references, gate counts); the prism runner only when it runs.
        needed = what.startswith("qfl") or "prism-q" in a.sims
        if needed and not os.path.exists(path):
            log(f"error: {path} missing: build {what} first (run.sh does)")
            return 2
    run_all(a)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
