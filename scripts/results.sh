#!/usr/bin/env bash
# Reproduces docs/results.md: qfl compare on every bundled task at k = 5 and 10 over 10 seeds.
# Usage: bash scripts/results.sh [OUT_DIR]   (release build; tens of minutes on 2 cores, most
# of it TFN, whose fused tensor is exponential in the number of modalities)
# DATASETS="basic-motions" bash scripts/results.sh   runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results}"
cargo build --release --quiet
datasets="${DATASETS:-nutrimouse-genotype nutrimouse-diet basic-motions uci-mfeat}"
for data in $datasets; do
  for k in 5 10; do
    ./target/release/qfl compare --dataset "$data" --k "$k" --repeats 10 --seed 0 --out "$out" --quiet \
      || echo "($data, k = $k: not run, see the message above)"
  done
done
