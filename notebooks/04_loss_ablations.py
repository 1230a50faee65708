# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Loss ablations (paper Tab. 6a, on the toy world)
# recon only, + semantic, + instance, all three: training curves, val metrics, and the masks each produces. Reads the results of `python evaluate.py ablation` when they exist; in fast mode it runs a tiny ablation.

# %%
import os, sys
sys.path.insert(0, os.path.abspath(".."))          # the project root: notebooks import its modules
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import warnings; warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets: text bars
import torch, numpy as np, matplotlib.pyplot as plt
torch.set_num_threads(2)
FAST = os.environ.get("GLASS_FAST", "0") == "1"    # CI runs every notebook in a small setting
print("fast mode" if FAST else "full mode")

# %%
import json, csv
from pathlib import Path
import evaluate
root = Path("..").resolve()
abl = root / "runs" / "ablation"
if FAST or not (abl / "ablation.json").exists():
    abl = root / "runs" / "notebook_fast_ablation"
    if not (abl / "ablation.json").exists():
        data = evaluate.demo_checkpoint(phase=1).parent  # makes the small dataset too
        results = evaluate.run_ablation([0], 5, abl, 16, ["--data", str(root / "data" / "notebook_fast"),
                                        "--batch-size", "8", "--workers", "0", "--log-every", "1"])
        (abl / "ablation.json").write_text(json.dumps(results))
results = json.loads((abl / "ablation.json").read_text())
print(evaluate.ablation_table(results))

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
for run in sorted(abl.glob("*_seed0")):
    rows = list(csv.DictReader(open(run / "log_phase1.csv")))
    steps = [int(r["step"]) for r in rows]
    for a, key in zip(axes, ("recon", "semantic", "instance")):
        a.plot(steps, [float(r[key]) for r in rows], label=run.name.replace("_seed0", ""))
        a.set_title(key); a.set_xlabel("step")
axes[0].legend(fontsize=7); plt.suptitle("loss terms per ablation (seed 0); a switched-off term stays 0"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## Masks of each ablation on the same val scenes

# %%
from glass import load_checkpoint_model
from toy.world import ToyScenes
ds = ToyScenes("val")
imgs = torch.stack([ds[i]["image"] for i in range(6)])
runs = sorted(abl.glob("*_seed0"))
fig, axes = plt.subplots(len(runs) + 1, 6, figsize=(10, 1.8 * (len(runs) + 1)))
for j in range(6):
    axes[0, j].imshow(imgs[j].permute(1, 2, 0))
    axes[0, j].set_title(ds[j]["labels"], fontsize=7)
for r, run in enumerate(runs):
    model, _ = load_checkpoint_model(run / "phase1"); model.eval()
    torch.manual_seed(0)
    pred = model.slot_masks(imgs, 64)
    for j in range(6):
        axes[r + 1, j].imshow(pred[j], cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[r + 1, 0].set_ylabel(run.name.replace("_seed0", ""), fontsize=7)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()

# %% [markdown]
# ## What the toy world shows
# The README's ablation section gives the measured table (three seeds) and the reading of it; its ladder says why the semantic term groups objects in this world.
