#!/usr/bin/env bash
# The fidelity issue's measurements on the toy world: phase 1, 400 steps, seed 0, 2 threads, the quick start's
# dataset (data/toy_pseudo), val scored on 256 scenes at the end of each run. One seed: the effects are small.
#   bash docs/experiments/fidelity_runs.sh        # about 25 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
run() { python train.py --phase 1 --steps 400 --eval-images 256 --threads 2 --out "runs/fidelity/$1" "${@:2}"; }
run learned_centres                                   # toy preset, authors' grid (cell centres)
run learned_edges --no-slot-grid-centres             # toy preset, the earlier grid
run gaussian_xavier --no-slot-learned-init           # authors' initialisation of μ, log σ
run gaussian_small --no-slot-learned-init --slot-gaussian-init small
for r in learned_centres learned_edges gaussian_xavier gaussian_small; do
  echo "$r $(python -c "import json; v = json.load(open('runs/fidelity/$r/val_phase1.json'))['val']; \
print(' '.join(f'{k} {v[k]:.3f}' for k in ('miou_i', 'mbo_i', 'mbo_c', 'fg_ari', 'fg_ari_multi', 'so', 'go')))")"
done
