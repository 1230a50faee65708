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
# **Question:** the pseudo mask has one segment per class; the model has K slots. Which slot learns from which
# segment?
#
# GLASS matches them. Each slot's hard mask (argmax over slots) is compared with each segment by IoU, and the
# Hungarian algorithm picks the one-to-one assignment with the largest total IoU (`matching.hungarian_match`).
# Matched slots get a binary cross-entropy toward their segment; unmatched slots get no target (Eq. 2).
#
# **What you will see:** one generated training image whose prompt names a class twice, its slot masks next to its
# segments, the IoU matrix with the assignment, and the loss of each slot. The scene is chosen on purpose: it
# shows the weakness the instance term exists for.

# %%
import os, sys
from preamble import setup                         # notebooks/preamble.py: project root on the path, offline, 2 threads
FAST = setup()                                     # CI runs every notebook in a small setting (GLASS_FAST=1)
import torch, numpy as np, matplotlib.pyplot as plt

# %%
from demo_checkpoint import notebook_checkpoint   # notebooks/demo_checkpoint.py: the quick start's model, or a demo one (it says which)
from glass import upsample_masks
from infra.checkpoint import load_checkpoint_model
from infra.data import PseudoGTDataset
from matching import iou_matrix, hungarian_match, segments_from_semantic, semantic_loss
import torch.nn.functional as F
ckpt = notebook_checkpoint(phase=1)
model, info = load_checkpoint_model(ckpt); model.eval()
from pathlib import Path
data_dir = Path(info["args"]["data"])
data = PseudoGTDataset(data_dir if data_dir.is_absolute() else Path("..").resolve() / data_dir)
from toy.world import make_scene, repeats_a_class
def repeated(i):                                    # its caption came from a toy scene showing a class twice or more
    return repeats_a_class(make_scene("train", int(data.records[i]["source"].split(":")[-1])).classes)
pick = next((i for i in range(len(data)) if repeated(i)), 0)
item = data[pick]
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
print("item", pick, "prompt:", item["prompt"]); print("segments:", [names[i] for i in present.tolist()])

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
# Red boxes mark the assignment with the largest total IoU; each segment gets at most one slot and each slot at
# most one segment. Matching happens anew for every image and every step. A slot is not tied to a class, only to
# whatever segment it overlaps best right now.

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
# The loss pulls each matched slot's soft mask toward its whole segment. Where a class appears twice, its segment
# covers both instances, so the slot matched to it is pulled to cover both. That is the *semantic drift* the paper
# names: class-level guidance merges instances. In this image the generator did not draw the prompt's count
# (two houses and one oak came out as one house and two trees), so the tree segment holds two crowns. Slot 1
# already covers both (IoU 0.71 with the tree segment): after 900 steps of class-level targets, one slot holds two
# instances. The house has no slot of its own: slot 4 holds a faint part of it (IoU 0.07), and the assignment
# still gives it the house segment, so the loss pulls slot 4 over the whole house. Slot 0 sits on the flower the
# generator added, a class the prompt does not name; it is left unmatched and gets no target. The per-slot BCE
# below is the mean over the segment's valid pixels (ignored pixels, 255 in the mask, are left out).

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

# %% [markdown]
# ## What this showed
# Semantic guidance is a per-image assignment of slots to class segments, and its target is as coarse as the pseudo
# mask: one segment per class. It fixes the part-whole problem (a segment covers the whole object, so one slot does
# too) but rewards one slot per class, not per object. Notebook 04 shows the instance term, which reconstructs the
# encoder's features from the slots, splitting what this loss merges.
