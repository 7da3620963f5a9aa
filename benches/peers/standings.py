#!/usr/bin/env python3
"""Where qfl stands on every workload of the full set: one table from every recorded run.

Each run of the harness (results/*/results.json) measures some rows. This script picks, for
every workload, max bond and peer, the latest run in which qfl's default and that peer ran
the row side by side, and takes the speed-up (the peer's time over qfl's) from that run
alone: every ratio is one measured in one run on one machine, never a time of one run over
a time of another. A row's speed-up is the smallest over the peers, a lower bound ("> x")
where that peer timed out. Where the reference is exact (n <= 24) it also sets qfl's
largest `<Z_i>` error against each peer's from the run that compared them, and shows the
pair least favourable to qfl. Rows no run measured side by side are listed as gaps, so the
table also says what is left to measure.

    python3 benches/peers/standings.py [--results benches/peers/results] [--bonds 64,256]
        [--since 2026-12-03T00:00] [--out standings.md]

Only the standard library. `--since` defaults to the first run of the automatic update
scheme, qfl's default since 2026-12-03 (before it, the harness's `qfl` column was the
centred update, now `qfl-centre`); only rows at the harness's shared cutoff 1e-16 count.
"""
import argparse
import glob
import json
import math
import os
import statistics
import sys

import gen_workloads
import harness

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_NAMES = {"aer": "Aer", "aer-lapack": "Aer", "quimb": "quimb", "prism-q": "prism-q"}
CUTOFF = 1e-16
# A peer error within this factor of qfl's counts as a tie (as in cutoff_sweep.py).
TIE = 1.05
# The target: at least this times faster than the fastest peer. A peer that timed
# out at `--peer-timeout-factor 3` gives a bound of 3x up to rounding, which meets it.
TARGET = 3.0
ROUNDING = 1e-6


def load_runs(results_dir, since):
    """[(run name, info, references, records)] of every run since `since`, oldest first."""
    out = []
    for path in glob.glob(os.path.join(results_dir, "*", "results.json")):
        name = os.path.basename(os.path.dirname(path))
        with open(path) as f:
            data = json.load(f)
        info = data["info"]
        # Merged directories repeat other runs' cells (and mix runs within a row).
        if info.get("merged_from") or info.get("set") != "full":
            continue
        if info["date"][:16] < since:
            continue
        harness.mark_degenerate(data["runs"], data.get("references", {}))
        out.append((name, info, data.get("references", {}), data["runs"]))
    return sorted(out, key=lambda r: r[1]["date"])


def peer_bound(rec, info):
    """A lower bound on a timed-out peer's simulation time, or None."""
    if rec.get("lower_bound_s") is not None:
        return rec["lower_bound_s"]
    timeout = rec.get("timeout_s") or info.get("timeout_s")
    if timeout and rec.get("timeout_capped") and info.get("peer_startup_s") is not None:
        # A peer timeout that --timeout capped below the factor: the run's own start-up allowance.
        return max(timeout - info["peer_startup_s"], 0.0)
    if timeout:
        # Runs without `--peer-timeout-factor` gave a whole-process timeout; allow 30 s of
        # start-up (imports, parsing), as the harness does with it.
        return max(timeout - 30.0, 0.0)
    return None


def comparisons(runs, bonds):
    """{(workload, chi): {peer: comparison}} from the latest run holding each pair."""
    table = {}
    for name, info, refs, records in runs:
        by = {}
        for r in records:
            if r.get("cutoff", CUTOFF) == CUTOFF and r["chi"] in bonds:
                by[(r["workload"], r["chi"], r["sim"])] = r
        for (wl, chi, sim), q in by.items():
            if sim != "qfl" or q["status"] != "ok" or not q["min"] or q.get("degenerate"):
                continue
            exact = (refs.get(wl) or {}).get("kind", "").startswith("exact")
            for peer in PEER_NAMES:
                p = by.get((wl, chi, peer))
                if p is None or p["status"] == "skipped":
                    continue
                c = {"run": name, "date": info["date"], "cpu": info["machine"]["cpu"], "qfl_s": q["min"], "n": q["n"],
                     "qfl_err": q["max_err"] if exact else None, "status": p["status"],
                     "peer_err": p["max_err"] if exact and p["status"] == "ok" else None,
                     # quimb's own <Z_i> renormalised (it does not renormalise a truncated chain).
                     "peer_err_normalised": p.get("max_err_normalised") if exact and p["status"] == "ok" else None,
                     # The error of answering 0 for every <Z_i>: an error at or above it says
                     # nothing about the state.
                     "zero_err": max(map(abs, refs[wl]["z"])) if exact and refs[wl].get("z") else None}
                c["degenerate"] = bool(p.get("degenerate"))
                if p["status"] == "ok" and p["min"] and not c["degenerate"]:
                    c["ratio"], c["bound"] = p["min"] / q["min"], False
                elif p["status"] == "timeout" and peer_bound(p, info) is not None:
                    c["ratio"], c["bound"] = peer_bound(p, info) / q["min"], True
                else:
                    c["ratio"], c["bound"] = None, False
                # Later runs replace earlier ones (the list is oldest first).
                table.setdefault((wl, chi), {})[peer] = c
    return table


def row_summary(peers):
    """The row's speed-up over its fastest peer, and the accuracy comparison."""
    timed = {p: c for p, c in peers.items() if c["ratio"] is not None}
    if not timed:
        return None
    slowest_gain = min(timed, key=lambda p: timed[p]["ratio"])
    c = timed[slowest_gain]

    def err_ratio(c):
        # qfl's error over the peer's, both from the run that compared them.
        if c["peer_err"] == 0:
            return 1.0 if c["qfl_err"] == 0 else math.inf
        return c["qfl_err"] / c["peer_err"]

    with_errs = {p: c for p, c in peers.items() if c["peer_err"] is not None and c["qfl_err"] is not None}
    closest = max(with_errs, key=lambda p: err_ratio(with_errs[p])) if with_errs else None
    return {
        "ratio": c["ratio"], "bound": c["bound"], "peer": slowest_gain, "run": c["run"], "cpu": c["cpu"],
        # qfl's time in the latest of the row's runs.
        "qfl_s": max(peers.values(), key=lambda c: c["date"])["qfl_s"],
        "runs": sorted({c["run"] for c in peers.values()}),
        # Per peer as named in the table (Aer: the faster of its two SVD paths).
        "degenerate": sorted({PEER_NAMES[p] for p, c in peers.items() if c["degenerate"]}),
        "per_peer": {name: min((c for p, c in timed.items() if PEER_NAMES[p] == name), key=lambda c: c["ratio"])
                     for name in sorted({PEER_NAMES[p] for p in timed})},
        "missing": sorted({PEER_NAMES[p] for p in PEER_NAMES} - {PEER_NAMES[p] for p in peers}),
        # The peer most accurate relative to qfl (each pair from one run), if any has an error.
        "acc_peer": closest,
        "qfl_err": with_errs[closest]["qfl_err"] if closest else None,
        "peer_err": with_errs[closest]["peer_err"] if closest else None,
        "err_ratio": err_ratio(with_errs[closest]) if closest else None,
        "peer_err_normalised": with_errs[closest]["peer_err_normalised"] if closest else None,
        "zero_err": with_errs[closest]["zero_err"] if closest else None,
    }


def fmt_ratio(s):
    return f"> {s['ratio']:.2f}x" if s["bound"] else f"{s['ratio']:.2f}x"


def fmt_row_ratio(s):
    """The row's speed-up: the smallest over the peers; where that is a timed-out peer's
    bound, also the smallest measured one (the bound alone would hide it)."""
    text = fmt_ratio(s)
    if s["bound"]:
        measured = [c["ratio"] for c in s["per_peer"].values() if not c["bound"]]
        if measured:
            text += f" (measured: {min(measured):.2f}x)"
    return text


def accuracy(s):
    if s["acc_peer"] is None:
        return "–"
    verdict = "lowest or tied" if s["err_ratio"] <= TIE else f"**{s['err_ratio']:.2g}x the peer's**"
    text = f"{s['qfl_err']:.1e} / {s['peer_err']:.1e} ({PEER_NAMES[s['acc_peer']]}): {verdict}"
    if s["peer_err_normalised"] is not None and s["err_ratio"] > TIE:
        text += f" (renormalised, the peer's is {s['peer_err_normalised']:.1e})"
    if s["zero_err"] is not None and s["err_ratio"] > TIE and s["peer_err"] * TIE >= s["zero_err"]:
        text += f"; answering 0 for every `<Z_i>` scores {s['zero_err']:.1e}"
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--bonds", default="64,256")
    ap.add_argument("--since", default="2026-12-03T00:00", help="ISO date and time (UTC) of the oldest run to use")
    ap.add_argument("--out", help="also write the Markdown here")
    a = ap.parse_args()
    try:
        bonds = [int(b) for b in a.bonds.split(",")]
    except ValueError:
        sys.exit(f"--bonds: expected integers separated by commas, got {a.bonds!r}")
    runs = load_runs(a.results, a.since)
    if not runs:
        sys.exit(f"no runs of the full set since {a.since} under {a.results}")
    table = comparisons(runs, bonds)
    workloads = [f"{fam}_n{n}_{'g' if fam == 'random' else 'l'}{size}" for fam, n, size in gen_workloads.FULL]

    lines = [
        "| workload | max bond | qfl (s), latest run | Aer | quimb | prism-q | speed-up | runs | "
        "`<Z_i>` error (exact reference): qfl / the peer closest to it, same run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    gaps, partial, misses, low, undecided = [], [], [], [], []
    for chi in bonds:
        for wl in workloads:
            peers = table.get((wl, chi))
            s = row_summary(peers) if peers else None
            if s is None:
                gaps.append(f"{wl} at {chi}")
                continue
            if s["missing"]:
                partial.append(f"{wl} at {chi} (no {', '.join(s['missing'])})")
            if s["ratio"] < TARGET - ROUNDING:
                # A bound below the target is not a miss: the peer's timeout was shorter than
                # TARGET x qfl's time (capped by --timeout, or a smaller factor), so the row is undecided.
                (undecided if s["bound"] else low).append(f"{wl} at {chi}: {fmt_ratio(s)} ({PEER_NAMES[s['peer']]}, {s['run']})")
            acc = accuracy(s)
            if s["acc_peer"] is not None and s["err_ratio"] > TIE:
                misses.append(f"{wl} at {chi}: {acc}")
            cells = [fmt_ratio(s["per_peer"][p]) if p in s["per_peer"] else "‡" if p in s["degenerate"] else "–"
                     for p in ("Aer", "quimb", "prism-q")]
            lines.append(f"| {wl} | {chi} | {s['qfl_s']:.3g} | {' | '.join(cells)} | {fmt_row_ratio(s)} | "
                         f"{', '.join(s['runs'])} | {acc} |")
        qb = [row_summary(p) for (wl, c), p in table.items() if c == chi and wl.startswith("qasmbench/")]
        qb = [s for s in qb if s]
        if qb:
            ratios = [s["ratio"] for s in qb]
            worst_err = max((s["qfl_err"] for s in qb if s["qfl_err"] is not None), default=None)
            qmisses = [s for s in qb if s["acc_peer"] is not None and s["err_ratio"] > TIE and s["qfl_err"] > 1e-12]
            acc = (f"qfl at most {worst_err:.1e}; above a peer's (and 1e-12) on {len(qmisses)}"
                   if worst_err is not None else "–")
            lines.append(f"| QASMBench, {len(qb)} circuits | {chi} | – | – | – | – | median {statistics.median(ratios):.2f}x, "
                         f"{min(ratios):.2f}-{max(ratios):.2f}x | "
                         f"{', '.join(sorted({r for s in qb for r in s['runs']}))} | {acc} |")
            low += [f"QASMBench at {chi}: {s['peer']} {fmt_ratio(s)}" for s in qb if s["ratio"] < TARGET - ROUNDING]
    machines = sorted({c["cpu"] for peers in table.values() for c in peers.values()})
    lines += [
        "",
        f"From {len(runs)} runs since {a.since} (cutoff {CUTOFF:g}, 2 threads each); machines: {'; '.join(machines)}. "
        "Each peer cell: its time over qfl's in the latest run that ran both, '> x' where it timed out "
        "at x times qfl's time; ‡ where its `<Z_i>` were all exactly 0 (its state lost its norm), a time "
        "not counted; – where no run compared them. Speed-up: the smallest of the row.",
        "",
        f"- Below {TARGET:g}x: {'; '.join(low) if low else 'none'}.",
        f"- Only a bound below {TARGET:g}x (the peer's timeout was shorter than {TARGET:g}x qfl's time): "
        f"{'; '.join(undecided) if undecided else 'none'}.",
        f"- qfl's error above a peer's (same run) by more than {TIE}x: {'; '.join(misses) if misses else 'none'}.",
        f"- Not every peer side by side: {'; '.join(partial) if partial else 'none'}.",
        f"- Never side by side with the default: {'; '.join(gaps) if gaps else 'none'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
