"""Does the synergy of the three losses appear with a longer phase 1? Val metrics of "+ instance" (recon +
instance) and "all three" at 900, 1350 and 1800 steps, seed 0, drawn to figures/budget_curve.png.

The 900-step points are the loss ablation's seed-0 runs; the same runs are continued exactly to 1800 steps (the
learning rate is constant after warm-up, so a continued run is the longer run):

    python -m experiments ablation --seeds 0 1 2 --steps 900 --out runs/ablation -- --threads 2
    for r in plus_instance_seed0 all_three_seed0; do
      cp -r runs/ablation/$r runs/budget/$r
      python train.py --phase 1 --out runs/budget/$r --steps 1800 --resume --val-every 450 --eval-images 256 \\
          --threads 2 $( [ $r = plus_instance_seed0 ] && echo --no-semantic )
    done
    python docs/experiments/budget_curve.py
"""
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ROWS = {"+ instance": "plus_instance_seed0", "all three": "all_three_seed0"}
KEYS = ("miou_i", "fg_ari_multi", "repeat_go")


def curve(name: str, run: str) -> dict:
    """{step: metrics}: the ablation's 900-step score, then the continued run's val curve."""
    first = json.loads((ROOT / "runs" / "ablation" / "ablation.json").read_text())[name][0]
    points = {900: {k: first[k] for k in KEYS}}
    for row in csv.DictReader(open(ROOT / "runs" / "budget" / run / "val_curve.csv")):
        points[int(row["step"])] = {k: float(row[k]) for k in KEYS}
    return dict(sorted(points.items()))


def main() -> None:
    curves = {name: curve(name, run) for name, run in ROWS.items()}
    for name, pts in curves.items():
        for step, m in pts.items():
            print(f"{name:12s} step {step:5d}: " + " ".join(f"{k} {m[k]:.3f}" for k in KEYS))
    fig, axes = plt.subplots(1, len(KEYS), figsize=(11, 3))
    for a, k in zip(axes, KEYS):
        for name, pts in curves.items():
            a.plot(list(pts), [m[k] for m in pts.values()], marker="o", label=name)
        a.set_title(k)
        a.set_xlabel("phase-1 steps")
    axes[0].legend(fontsize=8)
    fig.suptitle("python docs/experiments/budget_curve.py (seed 0, 256 val scenes)", fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "figures" / "budget_curve.png", dpi=90)
    print("wrote figures/budget_curve.png")


if __name__ == "__main__":
    main()
