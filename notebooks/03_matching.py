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
# # 03 · Slot matching and the semantic loss (GLASS §4, Eq. 2)
# Slot masks beside the pseudo-mask segments, the IoU matrix, the Hungarian assignment, and the BCE of matched versus unmatched slots.

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
import evaluate
from glass import load_checkpoint_model, upsample_masks
from train import PseudoGTDataset
from matching import iou_matrix, hungarian_match, segments_from_semantic, semantic_loss
import torch.nn.functional as F
ckpt = evaluate.demo_checkpoint(phase=1)
model, info = load_checkpoint_model(ckpt); model.eval()
from pathlib import Path
data_dir = Path(info["args"]["data"])
data = PseudoGTDataset(data_dir if data_dir.is_absolute() else Path("..").resolve() / data_dir)
item = data[3]
torch.manual_seed(0)
with torch.no_grad():
    enc = model.encode(item["image"][None])
soft = upsample_masks(enc.masks, 64)                                                  # (1, K, 64, 64)
seg = segments_from_semantic(item["mask"][None], model.config.num_classes, background_segment=True)
present = seg.present[0].nonzero().flatten()
hard = F.one_hot(soft.argmax(1), soft.shape[1]).permute(0, 3, 1, 2).bool()
iou = iou_matrix(hard, seg.masks, seg.valid)[0][:, present]                               # (K, F_present)
match = hungarian_match(iou)
names = ["background"] + list(data.meta["classes"])
print("prompt:", item["prompt"]); print("segments:", [names[i] for i in present.tolist()])

# %%
K = soft.shape[1]
fig, axes = plt.subplots(2, max(K, len(present)) + 1, figsize=(1.7 * (max(K, len(present)) + 1), 3.6))
axes[0, 0].imshow(item["image"].permute(1, 2, 0)); axes[0, 0].set_title("generated", fontsize=8)
axes[1, 0].imshow(item["mask"].clamp(max=5), cmap="tab10", vmin=0, vmax=9, interpolation="nearest"); axes[1, 0].set_title("pseudo mask", fontsize=8)
for k in range(K):
    axes[0, k + 1].imshow(soft[0, k], vmin=0, vmax=1, cmap="magma"); axes[0, k + 1].set_title(f"slot {k}", fontsize=8)
for j, f in enumerate(present.tolist()):
    axes[1, j + 1].imshow(seg.masks[0, f], cmap="gray"); axes[1, j + 1].set_title(names[f], fontsize=8)
for a in axes.flat: a.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The IoU matrix and the Hungarian assignment
# Boxes mark the assignment that maximises the total IoU (each segment gets at most one slot).

# %%
fig, ax = plt.subplots(figsize=(1 + 0.9 * len(present), 0.5 + 0.6 * K))
im = ax.imshow(iou, vmin=0, vmax=1, cmap="viridis")
for k in range(K):
    for j in range(len(present)):
        ax.text(j, k, f"{iou[k, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
for k, j in zip(match.slot_idx.tolist(), match.segment_idx.tolist()):
    ax.add_patch(plt.Rectangle((j - 0.5, k - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
ax.set_xticks(range(len(present)), [names[i] for i in present.tolist()], rotation=30); ax.set_ylabel("slot")
plt.colorbar(im); plt.title("IoU(slot argmax mask, segment)"); plt.show()

# %% [markdown]
# ## The semantic loss: matched slots get a target, unmatched slots none

# %%
out = semantic_loss(soft, seg.masks, seg.present, seg.valid)
matched = dict(zip(out.matches[0].slot_idx.tolist(), out.matches[0].segment_idx.tolist()))
rows = []
for k in range(K):
    if k in matched:
        p = soft[0, k].clamp(1e-6, 1 - 1e-6); t = seg.masks[0, matched[k]].float()
        bce = F.binary_cross_entropy(p[seg.valid[0]], t[seg.valid[0]]).item()
        rows.append((k, names[matched[k]], f"{bce:.3f}"))
    else:
        rows.append((k, "unmatched", "no target"))
for r in rows: print("slot %d  %-12s BCE %s" % r)
print("L_semantic of this image:", round(out.loss.item(), 4), "(the mean over matched slots)")
