"""The paper's experiments (GLASS §5) as commands, on the toy world.

    python evaluate.py discovery --ckpt runs/toy/phase2          # object discovery on val and shift (+ SO/PO/GO)
    python evaluate.py ablation --seeds 0 1 --steps 600          # loss ablation (paper Tab. 6a) on phase 1

Masks are the last-iteration slot attention resized bilinearly to the ground truth and argmaxed over slots;
background is not a GT segment (DINOSAUR/SPOT protocol) unless `--background-segment`.
Built so far: discovery and the loss ablation. Conditional/compositional generation metrics, property prediction and
semantic-level discovery are still to come (see the README's status list).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import metrics
import toyworld

ROOT = Path(__file__).resolve().parent

ABLATIONS = {  # name → train.py flags (paper Tab. 6a)
    "recon only": ["--no-semantic", "--no-instance"],
    "+ semantic": ["--no-instance"],
    "+ instance": ["--no-semantic"],
    "all three": [],
}


@torch.no_grad()
def discovery(model, split: str, n: int, device, background_segment: bool = False, batch_size: int = 32,
              seed: int = 0) -> dict:
    """mIoU_i, mBO_i, mIoU_c, mBO_c, FG-ARI and SO/PO/GO shares on the first n scenes of a split."""
    torch.manual_seed(seed)
    ds = toyworld.ToyScenes(split, length=n)
    vals = {k: [] for k in ("miou_i", "mbo_i", "miou_c", "mbo_c", "fg_ari", "so", "po", "go", "bg")}
    model.eval()
    for s in range(0, n, batch_size):
        items = [ds[i] for i in range(s, min(n, s + batch_size))]
        images = torch.stack([it["image"] for it in items]).to(device)
        inst = torch.stack([it["instance"] for it in items])
        sem = torch.stack([it["semantic"] for it in items])
        masks = model.encode(images).masks  # (B, K, h, w)
        pred = F.interpolate(masks, size=inst.shape[-2:], mode="bilinear", align_corners=False).argmax(1).cpu()
        kw = {"background_segment": background_segment}
        vals["miou_i"].append(metrics.miou(pred, inst, **kw))
        vals["mbo_i"].append(metrics.mbo(pred, inst, **kw))
        vals["miou_c"].append(metrics.miou(pred, sem, **kw))
        vals["mbo_c"].append(metrics.mbo(pred, sem, **kw))
        vals["fg_ari"].append(metrics.fg_ari(pred, inst))
        b = metrics.so_po_go(pred, inst)
        for k in ("so", "po", "go", "bg"):
            vals[k].append(getattr(b, k))
    out = {k: metrics.summarize(torch.cat(v)).mean for k, v in vals.items()}
    out.update(split=split, images=n, background_segment=background_segment)
    return out


def fast_mode() -> bool:
    """GLASS_FAST=1: the small setting CI runs notebooks in (every code path, tiny budgets)."""
    import os
    return os.environ.get("GLASS_FAST", "0") == "1"


def demo_checkpoint(phase: int = 2) -> Path:
    """The checkpoint notebooks show: runs/toy/phase{phase} from `python train.py --phase 2` when it exists and
    GLASS_FAST is off; otherwise a short run is trained into runs/notebook_fast (a minute on a laptop)."""
    import train
    ckpt = ROOT / "runs" / "toy" / f"phase{phase}"
    if (ckpt / "config.json").exists() and not fast_mode():
        return ckpt
    out = ROOT / "runs" / "notebook_fast"
    if not (out / f"phase{phase}" / "config.json").exists():
        train.main(["--phase", str(phase), "--out", str(out), "--data", str(ROOT / "data" / "notebook_fast"),
                    "--num-images", "32", "--steps1", "20", "--steps2", "10", "--batch-size", "8",
                    "--eval-images", "0", "--workers", "0", "--log-every", "10"])
    return out / f"phase{phase}"


def run_ablation(seeds: list, steps: int, out: Path, eval_images: int, extra: list) -> dict:
    import train
    from glass import load_checkpoint_model
    results: dict = {}
    for name, flags in ABLATIONS.items():
        for seed in seeds:
            run = out / f"{name.replace(' ', '_').replace('+', 'plus')}_seed{seed}"
            t0 = time.time()
            train.main(["--phase", "1", "--steps", str(steps), "--seed", str(seed), "--out", str(run),
                        "--eval-images", "0", "--resume", *flags, *extra])
            model, _ = load_checkpoint_model(run / "phase1")
            r = discovery(model, "val", eval_images, torch.device("cpu"))
            r["minutes"] = round((time.time() - t0) / 60, 2)
            results.setdefault(name, []).append(r)
            print(f"[ablation] {name} seed {seed}: " + " ".join(f"{k} {r[k]:.4f}" for k in
                                                                ("miou_i", "mbo_i", "mbo_c", "fg_ari")), flush=True)
            (out / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


def ablation_table(results: dict) -> str:
    keys = ("miou_i", "mbo_i", "mbo_c", "fg_ari")
    lines = ["| losses | mIoU_i | mBO_i | mBO_c | FG-ARI |", "|---|---|---|---|---|"]
    for name, runs in results.items():
        cells = []
        for k in keys:
            v = np.array([r[k] for r in runs])
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_ablation(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ("miou_i", "mbo_i", "mbo_c", "fg_ari")
    fig, ax = plt.subplots(figsize=(8, 3))
    width = 0.2
    for j, (name, runs) in enumerate(results.items()):
        means = [np.mean([r[k] for r in runs]) for k in keys]
        stds = [np.std([r[k] for r in runs]) for k in keys]
        ax.bar(np.arange(4) + j * width, means, width, yerr=stds, label=name)
    ax.set_xticks(np.arange(4) + 1.5 * width, keys)
    ax.legend(fontsize=7)
    ax.set_title("loss ablation on the toy val split (python evaluate.py ablation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("discovery", help="object discovery metrics of a checkpoint")
    d.add_argument("--ckpt", required=True, help="checkpoint folder (e.g. runs/toy/phase2)")
    d.add_argument("--images", type=int, default=512)
    d.add_argument("--background-segment", action="store_true")
    a = sub.add_parser("ablation", help="loss ablation (paper Tab. 6a) on phase 1")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    a.add_argument("--steps", type=int, default=600)
    a.add_argument("--out", type=Path, default=Path("runs/ablation"))
    a.add_argument("--images", type=int, default=256)
    a.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags")
    args = ap.parse_args(argv)
    if args.cmd == "discovery":
        from glass import load_checkpoint_model
        if not Path(args.ckpt).exists():
            ap.error(f"--ckpt {args.ckpt} does not exist")
        model, info = load_checkpoint_model(args.ckpt)
        report = {split: discovery(model, split, min(args.images, len(toyworld.ToyScenes(split))),
                                   torch.device("cpu"), args.background_segment) for split in ("val", "shift")}
        report["checkpoint"] = {"path": args.ckpt, "phase": info["phase"], "step": info["step"]}
        print(json.dumps(report, indent=2))
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        extra = [f for f in args.train_flags if f != "--"]
        results = run_ablation(args.seeds, args.steps, args.out, args.images, extra)
        table = ablation_table(results)
        (args.out / "ablation.md").write_text(table + "\n")
        plot_ablation(results, args.out / "ablation.png")
        print(table)


if __name__ == "__main__":
    main()
