"""Can the instance term's MLP decoder learn within the quick start's phase-1 budget? (docs/lab_notes/binding.md §6)

    python docs/experiments/instance_term.py --steps 900 --out runs/instance_term [--only NAME ...]

Each variant is the DINOSAUR-like rung of the ladder (real toy scenes, L_instance alone, train.py's loop, toy
preset, seed 0) with some of the fair-game knobs of the instance-guidance issue changed: the decoder's learning
rate, its position embedding's scale at init, its width. Scored on 256 val scenes: discovery metrics and the
decoder's feature MSE against its two references (evaluate.decoder_mse). Resumable: finished variants are read back.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from experiments import baseline_data  # noqa: E402
from experiments import tables as experiments  # noqa: E402
from experiments import ladder  # noqa: E402

VARIANTS = {  # name → train.py flags
    "DINOSAUR recipe (pos std 0.02, decoder lr = slots lr)": [],
    "decoder lr 4e-3": ["--lr-decoder", "4e-3"],
    "position embedding std 1": ["--decoder-pos-std", "1.0"],
    "position embedding std 1, decoder lr 4e-3": ["--decoder-pos-std", "1.0", "--lr-decoder", "4e-3"],
    "position embedding std 1, decoder width 1024": ["--decoder-pos-std", "1.0", "--decoder-hidden", "1024"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--images", type=int, default=512, help="real training scenes")
    ap.add_argument("--eval-images", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("runs/instance_term"))
    ap.add_argument("--only", nargs="+", help="variant numbers (1-based)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = baseline_data.write_oracle_dataset(args.out / "data_gt_semantic", args.images, "semantic")
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for i, (name, flags) in enumerate(VARIANTS.items(), start=1):
        if name in results or (args.only and str(i) not in args.only):
            continue
        row = experiments.trained_row(args.out / f"variant{i}", flags + ["--threads", str(args.threads)],
                                   {"val": args.eval_images}, steps=args.steps, data=str(data), recon=False,
                                   semantic=False)
        results[name] = row["val"]
        path.write_text(json.dumps(results, indent=2))
        print(f"[instance term] {name}: " + ladder._fmt(row["val"]) + experiments.decoder_line(row["val"]), flush=True)
    lines = ["| variant | mIoU_i | FG-ARI multi | SO | GO | decoder MSE | image-mean ref | instance-mean ref | closed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        d = r["decoder"]
        lines.append(f"| {name} | {r['miou_i']:.3f} | {r['fg_ari_multi']:.3f} | {r['so']:.2f} | {r['go']:.2f} | "
                     f"{d['decoder']:.4f} | {d['image_mean']:.4f} | {d['instance_mean']:.4f} | {d['closed']:.0%} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
