#!/usr/bin/env python3
"""An independent textbook MPS, to check what a truncation *should* give.

The orthogonality centre is moved (by QR) onto every two-qubit gate, the pair is contracted
and factored by numpy's LAPACK SVD, and the spectrum is cut by one of qfl's three cutoff rules
(`both`, `weight`, `value`; see docs/conventions.md) and the max bond. No fusion, no Gram
matrix, no TEBD, no blocking: every cut is the optimal one for the state it sees. Run on a
circuit of at most about 24 qubits, it prints the largest `<Z_i>` error against a reference,
the peak bond and the summed discarded weight, so qfl's and the peers' errors at a given max
bond and cutoff can be set against the error of ideal truncations (docs/performance.md).

Gates: h, x, rx, ry, rz, cx, cz, swap. Two-qubit gates must act on neighbouring qubits (the
script does no routing, which would be a choice of its own); anything else is an error.

    benches/peers/.venv/bin/python benches/peers/ideal_mps.py CIRCUIT.qasm \\
        --reference REF.json --max-bond 256 --cutoff 1e-16 --rule both [--out Z.json]

REF.json is a JSON object with a "z" list, such as `qfl run --backend dense --format json`.
"""
import argparse
import json
import re
import sys

import numpy as np

SKIP = {"OPENQASM", "include", "qreg", "creg", "measure", "barrier"}


def parse(path):
    """The qubit count and the gate list [(name, angle or None, qubits)] of a flat QASM file."""
    n, ops = None, []
    for lineno, line in enumerate(open(path), 1):
        line = line.split("//")[0].strip()
        if not line:
            continue
        m = re.match(r"qreg\s+\w+\[(\d+)\];", line)
        if m:
            if n is not None:
                sys.exit(f"{path}:{lineno}: a second qreg (one register only)")
            n = int(m.group(1))
            continue
        m = re.match(r"(\w+)\s*(?:\(([^)]*)\))?\s*(.*);", line)
        if not m:
            sys.exit(f"{path}:{lineno}: cannot read `{line}`")
        name = m.group(1)
        if name in SKIP:
            continue
        angle = float(m.group(2)) if m.group(2) else None
        qubits = [int(q) for q in re.findall(r"\[(\d+)\]", m.group(3))]
        if name not in ONE and name not in TWO:
            sys.exit(f"{path}:{lineno}: gate `{name}` is not supported (h x rx ry rz cx cz swap)")
        if len(qubits) == 2 and abs(qubits[0] - qubits[1]) != 1:
            sys.exit(f"{path}:{lineno}: `{line}` acts on qubits that are not neighbours")
        ops.append((name, angle, qubits))
    if n is None:
        sys.exit(f"{path}: no qreg")
    return n, ops


def ry(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -s], [s, c]], complex)


def rx(t):
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -1j * s], [-1j * s, c]], complex)


ONE = {
    "h": lambda t: np.array([[1, 1], [1, -1]], complex) / np.sqrt(2),
    "x": lambda t: np.array([[0, 1], [1, 0]], complex),
    "rx": rx,
    "ry": ry,
    "rz": lambda t: np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)]),
}
# 4 x 4 in the basis |q_first q_second>, reshaped to (out1, out2, in1, in2).
TWO = {
    "cx": np.eye(4, dtype=complex)[[0, 1, 3, 2]].reshape(2, 2, 2, 2),
    "cz": np.diag([1, 1, 1, -1]).astype(complex).reshape(2, 2, 2, 2),
    "swap": np.eye(4, dtype=complex)[[0, 2, 1, 3]].reshape(2, 2, 2, 2),
}


def keep(s, max_bond, cutoff, rule):
    """How many of the non-increasing singular values `s` a cut keeps (docs/conventions.md)."""
    w = s**2
    tail = np.cumsum(w[::-1])
    by_weight = len(s) - int(np.sum(tail <= cutoff * w.sum()))
    by_value = int(np.sum(w > cutoff * w[0]))
    k = {"weight": by_weight, "value": by_value, "both": max(by_weight, by_value)}[rule]
    return max(1, min(k, max_bond))


def simulate(n, ops, max_bond, cutoff, rule):
    sites = [np.zeros((1, 2, 1), complex) for _ in range(n)]
    for a in sites:
        a[0, 0, 0] = 1
    centre, peak, discarded = 0, 1, 0.0

    def move_to(k):
        nonlocal centre
        while centre < k:
            l, d, r = sites[centre].shape
            q, rr = np.linalg.qr(sites[centre].reshape(l * d, r))
            sites[centre] = q.reshape(l, d, -1)
            sites[centre + 1] = np.einsum("ab,bdc->adc", rr, sites[centre + 1])
            centre += 1
        while centre > k:
            l, d, r = sites[centre].shape
            q, rr = np.linalg.qr(sites[centre].reshape(l, d * r).T)
            sites[centre] = q.T.reshape(-1, d, r)
            sites[centre - 1] = np.einsum("adb,cb->adc", sites[centre - 1], rr)
            centre -= 1

    for name, angle, qubits in ops:
        if len(qubits) == 1:
            q = qubits[0]
            sites[q] = np.einsum("ij,ajb->aib", ONE[name](angle), sites[q])
            continue
        lo = min(qubits)
        gate = TWO[name] if qubits[0] < qubits[1] else TWO[name].transpose(1, 0, 3, 2)
        move_to(lo)
        theta = np.einsum("aib,bjc->aijc", sites[lo], sites[lo + 1])
        theta = np.einsum("ijkl,aklc->aijc", gate, theta)
        l, r = theta.shape[0], theta.shape[3]
        u, s, vh = np.linalg.svd(theta.reshape(2 * l, 2 * r), full_matrices=False)
        k = keep(s, max_bond, cutoff, rule)
        discarded += float((s[k:] ** 2).sum() / (s**2).sum())
        s = s[:k] / np.linalg.norm(s[:k])
        sites[lo] = u[:, :k].reshape(l, 2, k)
        sites[lo + 1] = (s[:, None] * vh[:k]).reshape(k, 2, r)
        centre, peak = lo + 1, max(peak, k)

    psi = sites[0].reshape(2, -1)
    for a in sites[1:]:
        psi = np.einsum("xa,adb->xdb", psi, a).reshape(-1, a.shape[2])
    psi = psi.reshape([2] * n)
    psi /= np.linalg.norm(psi)
    return z_of(psi), peak, discarded, psi


def z_of(psi):
    """All `<Z_q>` of a state held as an array of shape (2,) * n, axis q = qubit q."""
    p = np.abs(psi) ** 2
    p /= p.sum()
    n = p.ndim
    return [float(m[0] - m[1]) for m in (p.sum(axis=tuple(x for x in range(n) if x != q)) for q in range(n))]


def dense(n, ops):
    """The exact state of the circuit, shape (2,) * n, axis q = qubit q (no truncation)."""
    psi = np.zeros([2] * n, complex)
    psi[(0,) * n] = 1
    for name, angle, qubits in ops:
        if len(qubits) == 1:
            psi = np.moveaxis(np.tensordot(ONE[name](angle), psi, axes=([1], [qubits[0]])), 0, qubits[0])
        else:
            psi = np.moveaxis(np.tensordot(TWO[name], psi, axes=([2, 3], qubits)), [0, 1], qubits)
    return psi


def infidelity(a, b):
    """1 - |<a|b>|^2 / (<a|a> <b|b>) of two states of the same shape.

    Computed from the distance d = ||a - e^{i phi} b||^2 of the normalised states with the
    phase phi that aligns them (1 - |<a|b>|^2 = d - d^2 / 4), not as 1 minus the overlap:
    near 1 the overlap's rounding (about 1e-16) would swamp infidelities below 1e-15, while
    the distance keeps them down to about 1e-30.
    """
    a = a.ravel() / np.linalg.norm(a)
    b = b.ravel() / np.linalg.norm(b)
    overlap = np.vdot(a, b)
    phase = overlap / abs(overlap) if abs(overlap) > 0 else 1.0
    d = float(np.sum(np.abs(a - np.conj(phase) * b) ** 2))
    return d - d * d / 4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("qasm")
    ap.add_argument("--reference", required=True, help='JSON with a "z" list (exact <Z_i>)')
    ap.add_argument("--max-bond", type=int, default=256)
    ap.add_argument("--cutoff", type=float, default=1e-16)
    ap.add_argument("--rule", choices=["both", "weight", "value"], default="both")
    ap.add_argument("--out", help="write the <Z_i> here as JSON")
    a = ap.parse_args()
    n, ops = parse(a.qasm)
    if n > 26:
        sys.exit(f"{a.qasm}: {n} qubits; the read-out holds 2^n amplitudes, so at most 26")
    ref = json.load(open(a.reference))["z"]
    if len(ref) != n:
        sys.exit(f"{a.reference}: {len(ref)} values of <Z>, the circuit has {n} qubits")
    z, peak, discarded, _ = simulate(n, ops, a.max_bond, a.cutoff, a.rule)
    err = max(abs(x - y) for x, y in zip(z, ref))
    if a.out:
        json.dump({"z": z, "peak_bond": peak, "discarded": discarded, "max_err": err}, open(a.out, "w"))
    print(f"max bond {a.max_bond}, cutoff {a.cutoff:g}, rule {a.rule}: max |<Z_i> error| {err:.2e}, "
          f"peak bond {peak}, summed discarded weight {discarded:.2e}")


if __name__ == "__main__":
    main()
