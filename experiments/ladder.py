"""The binding ladder: where object binding is won or lost on the toy world (this project's diagnostic, not a table
of the paper; its reading is in docs/lab_notes/binding.md and its table in docs/results.md).

    python -m experiments.ladder --steps 900 --out runs/ladder -- --threads 2      # after --: train.py flags for every rung

The same slot model and budget on every rung: k-means floors, the ground-truth semantic mask scored as if it were
slot masks (the ceiling of perfect semantic guidance), and phase-1 runs of train.py on the quick start's pseudo-GT
data and on oracle datasets of real scenes with ground-truth semantic or instance masks (experiments/baseline_data.py).
Resumable: finished rungs are read back from OUT/ladder.json. Checked by tests/test_evaluate.py.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import train
from experiments.baseline_data import write_oracle_dataset
from evaluate import discovery_of, kmeans_floor
from experiments.tables import decoder_line, trained_row
from toy import world

# (rung name, training data, train.options overrides): the same slot model and budget on every rung
LADDER = [
    ("generated + pseudo semantic masks (GLASS), all three", "pseudo", dict()),
    ("generated images, recon + instance (no semantic guidance)", "pseudo", dict(semantic=False)),
    ("real + GT semantic masks, all three", "semantic", dict()),
    ("real + GT semantic masks, semantic only", "semantic", dict(recon=False, instance=False)),
    ("real + GT instance masks, semantic only", "instance", dict(recon=False, instance=False)),
    ("real + GT instance masks, all three", "instance", dict()),
    ("real scenes, instance term only (DINOSAUR-like)", "semantic", dict(recon=False, semantic=False)),
]
LADDER_KEYS = ("miou_i", "mbo_i", "fg_ari", "fg_ari_multi", "so", "go")


def run_ladder(out: Path, steps: int, images: int, eval_images: int, pseudo_data: Path, extra: list,
               only: Optional[list] = None) -> dict:
    """Train every rung of LADDER for `steps` phase-1 steps (resumable: finished runs are read back) and score
    them, with the k-means floors, on val and shift. Returns {rung: {split: metrics}}."""
    from glass import FrozenEncoder
    from infra.loading import quiet_loading
    args = train.options(extra, phase=1)
    results_path = out / "ladder.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    splits = {"val": eval_images, "shift": min(eval_images, len(world.ToyScenes("shift")))}

    def save():
        results_path.write_text(json.dumps(results, indent=2))

    cfg = args.model
    k = cfg.slots.num_slots
    encoder = None
    if only is None or "tokens" in only:
        with quiet_loading():  # no loading bar in the middle of the ladder's output
            encoder = FrozenEncoder(cfg)
    floors = [  # (row, --only key, scorer of one split)
        (f"k-means on encoder tokens (K = {k})", "tokens", lambda s, n: kmeans_floor("tokens", s, n, k, encoder)),
        (f"k-means on pixel colour + position (K = {k})", "pixels", lambda s, n: kmeans_floor("pixels", s, n, k)),
        ("ground-truth semantic mask as slots (perfect semantic guidance)", "ceiling",
         lambda s, n: discovery_of(lambda batch: batch["semantic"], s, n)),
    ]
    for name, key, score in floors:
        if name not in results and (only is None or key in only):
            results[name] = {s: score(s, n) for s, n in splits.items()}
            save()
            print(f"[ladder] {name}: " + _fmt(results[name]["val"]), flush=True)
    for r, (name, data, flags) in enumerate(LADDER):
        if name in results or (only is not None and str(r + 1) not in only):
            continue
        if data == "pseudo":
            data_dir = pseudo_data
        else:
            data_dir = write_oracle_dataset(out / f"data_gt_{data}", images, data)
        results[name] = trained_row(out / f"rung{r + 1}", extra, splits, steps=steps, data=str(data_dir), **flags)
        save()
        print(f"[ladder] {name}: " + _fmt(results[name]["val"]) + decoder_line(results[name]["val"]), flush=True)
    return results


def _fmt(r: dict) -> str:
    return " ".join(f"{k} {r[k]:.3f}" for k in LADDER_KEYS)


def ladder_table(results: dict) -> str:
    head = ["mIoU_i", "mBO_i", "FG-ARI all", "FG-ARI multi", "SO", "GO"]
    lines = ["| rung | " + " | ".join(head) + " | shift mIoU_i | shift FG-ARI multi |",
             "|---|" + "---|" * (len(head) + 2)]
    for name, r in results.items():
        v, s = r["val"], r["shift"]
        lines.append(f"| {name} | " + " | ".join(f"{v[k]:.3f}" for k in LADDER_KEYS)
                     + f" | {s['miou_i']:.3f} | {s['fg_ari_multi']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=900, help="phase-1 steps of every trained rung (the published 900)")
    ap.add_argument("--images", type=int, default=512, help="training scenes of the oracle datasets")
    ap.add_argument("--eval-images", type=int, default=256, help="val and shift scenes scored")
    ap.add_argument("--data", type=Path, default=Path("data/toy_pseudo"), help="the GLASS rung's pseudo-GT dataset")
    ap.add_argument("--out", type=Path, default=Path("runs/ladder"))
    ap.add_argument("--only", nargs="+", help="a subset: tokens, pixels, ceiling, or rung numbers 1..7")
    ap.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags (every rung)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    extra = [f for f in args.train_flags if f != "--"]
    results = run_ladder(args.out, args.steps, args.images, args.eval_images, args.data, extra, args.only)
    table = ladder_table(results)
    (args.out / "ladder.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
