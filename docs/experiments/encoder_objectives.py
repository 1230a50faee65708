"""Which encoder stand-in poses DINOSAUR's problem? One toy encoder per pretraining objective, then the Tab. 2 rows
that depend on the encoder (GLASS, DINOSAUR, k-means on the tokens) at the quick start's budget, on val.

    python docs/experiments/encoder_objectives.py --objective part-neutral     # also: class-part, part (shipped)

For "part" the shipped encoder (toy_models/encoder) is used as it is; any other objective is pretrained like it
(`python -m toy.pretrain --stage encoder`, 1,000 steps, batch 32, lr 1e-3) into OUT/OBJECTIVE/models/encoder.
Then: the linear class probe on foreground tokens, the token spreads (`toy.pretrain.token_variance`: within image,
instance, (instance, part), and (class, part) of one image), and the rows as `experiments.py tables --budget quick`
trains them (GLASS on data/toy_pseudo, which the quick start writes; 256 val scenes). Every step keeps what it
finished in OUT/OBJECTIVE/, so a rerun continues. 2 threads.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import experiments  # noqa: E402
from toy import pretrain  # noqa: E402
from toy.report import linear_probe  # noqa: E402

ROWS = ("k-means, encoder tokens", "DINOSAUR", "GLASS")
KEYS = ("miou_i", "mbo_i", "fg_ari_multi", "so", "po", "go", "repeat_miou_i", "repeat_go")

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objective", required=True, choices=["part", "part-neutral", "class-part", "instance"])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "encoders")
    ap.add_argument("--steps", type=int, default=1000, help="encoder pretraining steps")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "toy_pseudo", help="GLASS's pseudo-GT dataset")
    ap.add_argument("--images", type=int, default=256, help="val scenes scored")
    ap.add_argument("--budget", choices=["quick", "fast"], default="quick", help="fast: a check of the script")
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = args.out / args.objective
    out.mkdir(parents=True, exist_ok=True)
    if args.objective == "part":
        encoder = ROOT / "toy_models" / "encoder"
    else:
        encoder = out / "models" / "encoder"
        if not (encoder / "model.safetensors").exists():
            pretrain.main(["--stage", "encoder", "--encoder-objective", args.objective, "--out", str(out / "models"),
                           "--max-steps", str(args.steps), "--minutes", "60", "--threads", "2"])
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {"objective": args.objective,
                                                                  "encoder": str(encoder)}
    if "variance" not in results:
        from transformers import Dinov2Model
        enc = Dinov2Model.from_pretrained(encoder, dtype=torch.float32).eval()
        results["probe_foreground"] = linear_probe(enc, n_val=args.images, foreground=True)
        with torch.no_grad():
            results["variance"] = pretrain.token_variance(enc, args.images)
        path.write_text(json.dumps(results, indent=2))
    budget = experiments.BUDGETS[args.budget]
    extra = ["--threads", "2", "--encoder", str(encoder)]
    for name in ROWS:
        if name not in results:
            results[name] = experiments.table_row(name, out / "tables", budget, args.data, extra,
                                               {"val": args.images})["val"]
            path.write_text(json.dumps(results, indent=2))
    v = results["variance"]
    print(f"{args.objective}: probe (foreground) {results['probe_foreground']:.3f}; token spread: image "
          f"{v['image']:.2f}, instance {v['instance']:.2f}, (instance, part) {v['part']:.2f}, (class, part) "
          f"{v['class_part']:.2f}")
    print("| row | " + " | ".join(KEYS) + " |\n|---|" + "---|" * len(KEYS))
    for name in ROWS:
        print(f"| {name} | " + " | ".join(f"{results[name].get(k, float('nan')):.3f}" for k in KEYS) + " |")
