"""Classifier-free guidance from slots: the empty-prompt embedding (the authors' unconditional branch) against
all-zero slot tokens, on a trained toy checkpoint. Decodes val scenes from their slots at guidance 1 and 3 (same
noise) and reports PSNR to the input scene (metrics.psnr).

    python docs/experiments/fidelity_uncond.py --ckpt runs/toy/phase2 --images 64 --threads 2
"""
import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import downstream  # noqa: E402
import metrics  # noqa: E402
from infra.checkpoint import load_checkpoint_model  # noqa: E402
from toy.world import ToyScenes  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--ckpt", default="runs/toy/phase2")
ap.add_argument("--images", type=int, default=64)
ap.add_argument("--steps", type=int, default=25)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
torch.set_num_threads(args.threads)
model, _ = load_checkpoint_model(args.ckpt)
model.eval()
ds = ToyScenes("val", length=args.images)
images = torch.stack([ds[i]["image"] for i in range(args.images)])
torch.manual_seed(0)
with torch.no_grad():
    cond = model.encode(images).cond
report = {"threads": args.threads, "images": args.images, "steps": args.steps}
for uncond, g in (("zeros", 1.0), ("zeros", 3.0), ("empty_prompt", 3.0)):
    model.config = replace(model.config, uncond=uncond)
    out = downstream.generate(model, cond, torch.Generator().manual_seed(0), num_steps=args.steps, guidance_scale=g)
    report[f"{uncond} guidance {g:g}"] = round(float(metrics.psnr(out, images).mean()), 3)
    print(uncond, g, report[f"{uncond} guidance {g:g}"], flush=True)
print(json.dumps(report, indent=2))
