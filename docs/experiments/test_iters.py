"""Slot-attention iterations at test time: the quick start's checkpoint scored on 256 val scenes with T = 3 (as
trained), 5 and 8 iterations. Evaluation only; nothing is retrained.

    python docs/experiments/test_iters.py [--ckpt runs/toy/phase2] [--iters 3 5 8]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from infra.checkpoint import load_checkpoint_model  # noqa: E402
from evaluate import discovery  # noqa: E402

KEYS = ("miou_i", "mbo_i", "fg_ari_multi", "so", "po", "go", "repeat_go")

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="runs/toy/phase2")
    ap.add_argument("--iters", type=int, nargs="+", default=[3, 5, 8])
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, _ = load_checkpoint_model(args.ckpt)
    for t in args.iters:
        model.slot_module.slot_attention.iters = t
        r = discovery(model, "val", args.images, torch.device("cpu"))
        print(f"T = {t}: " + " ".join(f"{k} {r[k]:.3f}" for k in KEYS), flush=True)
