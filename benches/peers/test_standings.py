#!/usr/bin/env python3
"""Tests of standings.py on synthetic harness results (standard library only).

    python3 -m unittest discover -s benches/peers -p 'test_*.py'

Each test writes one or more `results.json` in a temporary directory, runs standings.py's
`main` on it and reads the Markdown it writes: the row's cells, and the lists under the
table (below 3x, only a bound below 3x, peers lost their norm).
"""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import standings  # noqa: E402

WL, N = "brick_n50_l10", 50


def rec(sim, status="ok", seconds=None, **extra):
    r = {"sim": sim, "workload": WL, "n": N, "chi": 64, "cutoff": 1e-16, "status": status,
         "min": seconds, "max_err": None, "message": "", "z_zero": 0, "z_rms": 0.1}
    r.update(extra)
    return r


def write_run(root, name, date, runs, references=None, **info):
    os.makedirs(os.path.join(root, name))
    data = {"info": {"set": "full", "date": date, "machine": {"cpu": "test CPU"}, "timeout_s": 900.0,
                     "peer_startup_s": 30.0, **info},
            "references": references or {}, "runs": runs}
    with open(os.path.join(root, name, "results.json"), "w") as f:
        json.dump(data, f)


class Standings(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def table(self):
        out = os.path.join(self.root, "standings.md")
        argv = sys.argv
        sys.argv = ["standings.py", "--results", self.root, "--bonds", "64", "--out", out]
        try:
            with redirect_stdout(io.StringIO()):
                standings.main()
        finally:
            sys.argv = argv
        with open(out) as f:
            text = f.read()
        row = next(line for line in text.splitlines() if line.startswith(f"| {WL} | 64 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        lists = {line.split(":")[0]: line for line in text.splitlines() if line.startswith("- ")}
        return cells, lists

    def test_measured_ratio_is_the_fastest_peer_over_qfl(self):
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0), rec("aer", seconds=5.0), rec("prism-q", seconds=4.0)])
        cells, lists = self.table()
        self.assertEqual(cells[3], "5.00x")  # Aer
        self.assertEqual(cells[5], "4.00x")  # prism-q
        self.assertEqual(cells[6], "4.00x")  # the row: its fastest peer
        self.assertTrue(lists["- Below 3x"].endswith("none."))

    def test_measured_ratio_below_target_is_listed(self):
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0), rec("prism-q", seconds=2.0)])
        cells, lists = self.table()
        self.assertEqual(cells[6], "2.00x")
        self.assertIn(f"{WL} at 64: 2.00x", lists["- Below 3x"])

    def test_factor_bound_meets_target(self):
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=10.0), rec("aer", status="timeout", lower_bound_s=30.0),
                   rec("prism-q", seconds=70.0)], peer_timeout_factor=3.0)
        cells, lists = self.table()
        self.assertEqual(cells[3], "> 3.00x")
        self.assertEqual(cells[6], "> 3.00x (measured: 7.00x)")
        self.assertTrue(lists["- Below 3x"].endswith("none."))
        self.assertTrue(lists["- Only a bound below 3x (the peer's timeout was shorter than 3x qfl's time)"]
                        .endswith("none."))

    def test_capped_timeout_is_undecided_not_below(self):
        # qfl 50 s; the peer's timeout was capped at 100 s by --timeout: bound (100 - 30) / 50.
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=50.0), rec("prism-q", status="timeout", timeout_s=100.0, timeout_capped=True)],
                  timeout_s=100.0, peer_timeout_factor=3.0)
        cells, lists = self.table()
        self.assertEqual(cells[5], "> 1.40x")
        self.assertTrue(lists["- Below 3x"].endswith("none."))
        self.assertIn(f"{WL} at 64: > 1.40x (prism-q, a)", lists["- Only a bound below 3x (the peer's timeout "
                                                                 "was shorter than 3x qfl's time)"])

    def test_latest_run_replaces_earlier_and_ratios_never_mix_runs(self):
        write_run(self.root, "old", "2026-12-04T10:00:00+00:00",
                  [rec("qfl", seconds=2.0), rec("prism-q", seconds=20.0)])
        write_run(self.root, "new", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0), rec("prism-q", seconds=5.0)])
        cells, _ = self.table()
        # 5 / 1 from the new run, not 20 / 1 or 5 / 2 across runs.
        self.assertEqual(cells[5], "5.00x")
        self.assertEqual(cells[2], "1")
        self.assertEqual(cells[7], "new")

    def test_peer_that_lost_its_norm_is_not_counted(self):
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0), rec("aer", seconds=6.0),
                   rec("prism-q", seconds=1.5, z_zero=N, z_rms=0.0)])
        cells, lists = self.table()
        self.assertEqual(cells[5], "‡")
        self.assertEqual(cells[6], "6.00x")
        self.assertTrue(lists["- Below 3x"].endswith("none."))

    def test_accuracy_miss_names_the_error_of_answering_zero(self):
        # Exact <Z_i> all within 1.26e-2 of 0: a peer whose state lost its norm lands there.
        refs = {WL: {"kind": "exact (qfl dense)", "z": [0.0126, -0.004, 0.001]}}
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0, max_err=0.051), rec("quimb", seconds=30.0, max_err=0.0126,
                                                              max_err_normalised=0.11)], references=refs)
        cells, lists = self.table()
        self.assertEqual(cells[8], "5.1e-02 / 1.3e-02 (quimb): **4x the peer's** (renormalised, the peer's is "
                                   "1.1e-01); answering 0 for every `<Z_i>` scores 1.3e-02")
        self.assertIn("answering 0", lists["- qfl's error above a peer's (same run) by more than 1.05x"])

    def test_accuracy_miss_below_the_zero_answer_has_no_such_note(self):
        refs = {WL: {"kind": "exact (qfl dense)", "z": [0.5, -0.2]}}
        write_run(self.root, "a", "2026-12-05T10:00:00+00:00",
                  [rec("qfl", seconds=1.0, max_err=2e-3), rec("aer", seconds=9.0, max_err=1e-3)], references=refs)
        cells, _ = self.table()
        self.assertEqual(cells[8], "2.0e-03 / 1.0e-03 (Aer): **2x the peer's**")


if __name__ == "__main__":
    unittest.main()
