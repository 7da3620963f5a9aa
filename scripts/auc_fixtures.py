#!/usr/bin/env python3
"""Writes tests/data/auc_fixtures.json: ROC AUC cases with scikit-learn's values.

The Rust metrics tests (tests/suite/metrics.rs) read the JSON and must match these values
to 1e-12. scikit-learn is needed only to regenerate the file, never by the crate or by
`cargo test`. The script makes its own virtual environment outside the repository:

    python3 scripts/auc_fixtures.py            # venv in /tmp/qfl-auc-venv
    QFL_AUC_VENV=/some/dir python3 scripts/auc_fixtures.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("QFL_AUC_VENV", "/tmp/qfl-auc-venv"))
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "auc_fixtures.json"


def ensure_venv():
    """Re-runs this script inside a venv that has scikit-learn and numpy."""
    if os.environ.get("QFL_AUC_IN_VENV") == "1":
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "scikit-learn", "numpy"],
            check=True,
        )
    env = dict(os.environ, QFL_AUC_IN_VENV="1")
    sys.exit(subprocess.run([str(python), __file__], env=env).returncode)


def main():
    import numpy as np
    import sklearn
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(20261124)
    binary = []

    def add_binary(name, labels, scores):
        labels = [int(l) for l in labels]
        scores = [float(s) for s in scores]
        auc = roc_auc_score(labels, scores)
        binary.append({"name": name, "labels": labels, "scores": scores, "auc": float(auc)})

    add_binary("small with a tie", [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.35, 0.35])
    add_binary("all tied", [0, 1, 0, 1, 1], [0.5] * 5)
    add_binary("perfectly separated", [0, 0, 0, 1, 1], [-3.0, -1.0, 0.0, 2.0, 5.0])
    add_binary("reversed", [1, 1, 1, 0, 0], [-3.0, -1.0, 0.0, 2.0, 5.0])
    add_binary("one positive", [0, 0, 0, 0, 1, 0], [0.2, 0.9, 0.1, 0.4, 0.5, 0.5])
    n = 200
    labels = rng.integers(0, 2, n)
    add_binary("random 200", labels, rng.normal(size=n) + 0.7 * labels)
    labels = rng.integers(0, 2, n)
    add_binary("random 200 heavy ties", labels, np.round(rng.normal(size=n) + 0.5 * labels, 1))
    labels = (rng.random(1000) < 0.1).astype(int)
    add_binary("random 1000 imbalanced", labels, rng.normal(size=1000) + labels)

    multiclass = []
    for n_classes, n_samples, ties in [(3, 30, False), (3, 60, True), (5, 100, True), (7, 150, False), (10, 300, True)]:
        # Every class present at least twice, then random labels.
        labels = np.concatenate([np.repeat(np.arange(n_classes), 2), rng.integers(0, n_classes, n_samples - 2 * n_classes)])
        rng.shuffle(labels)
        logits = rng.normal(size=(n_samples, n_classes))
        logits[np.arange(n_samples), labels] += 1.0
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        if ties:
            # Half of the rows copy one of 4 rows, so every column has exact ties across
            # samples of different classes.
            copies = rng.choice(n_samples, n_samples // 2, replace=False)
            probs[copies] = probs[rng.integers(0, 4, copies.size)]
        macro = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
        weighted = roc_auc_score(labels, probs, multi_class="ovr", average="weighted")
        per_class = [float(roc_auc_score(labels == c, probs[:, c])) for c in range(n_classes)]
        multiclass.append({
            "name": f"{n_classes} classes, {n_samples} samples{', ties' if ties else ''}",
            "n_classes": n_classes,
            "labels": [int(l) for l in labels],
            "scores": [float(v) for v in probs.reshape(-1)],
            "per_class": per_class,
            "macro": float(macro),
            "weighted": float(weighted),
        })

    doc = {
        "generator": "scripts/auc_fixtures.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "note": "multiclass scores are row-major n_samples x n_classes (softmax probabilities)",
        "binary": binary,
        "multiclass": multiclass,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line; json writes the shortest decimal that round-trips each float.
    lines = ["{"]
    for key in ["generator", "sklearn_version", "numpy_version", "note"]:
        lines.append(f" {json.dumps(key)}: {json.dumps(doc[key])},")
    for key in ["binary", "multiclass"]:
        cases = [f"  {json.dumps(c)}" for c in doc[key]]
        lines.append(f" {json.dumps(key)}: [\n" + ",\n".join(cases) + "\n ]" + ("," if key == "binary" else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == doc
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(binary)} binary, {len(multiclass)} multiclass cases; sklearn {sklearn.__version__})")


if __name__ == "__main__":
    ensure_venv()
    main()
