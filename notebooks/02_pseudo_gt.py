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
# # 02 · Pseudo ground truth from the diffusion model's attention (GLASS §4)
# **Question:** GLASS never sees a labelled pixel. Where do its semantic masks come from?
#
# From the diffusion model itself. A caption of a real image gives a prompt, "caption; class names". While Stable
# Diffusion generates a new image from it, the cross-attention between the image and each class name says where
# that class is drawn. Self-attention sharpens the maps, and thresholds turn them into a mask. GLASS then trains
# on the generated image with that mask (Dataset Diffusion's recipe). In code, `pseudo_gt.pseudo_ground_truth`
# does caption → nouns → prompt → generate → record → mask for a batch.
#
# **What you will see:** one toy prompt through generation. The probe cross-attention of each class over the
# denoising steps and over the layers, the refinement for several τ, and the thresholds that make the final mask.

# %%
import os, sys
from preamble import setup                         # notebooks/preamble.py: project root on the path, offline, 2 threads
FAST = setup()                                     # CI runs every notebook in a small setting (GLASS_FAST=1)
import torch, numpy as np, matplotlib.pyplot as plt

# %%
import pseudo_gt as pg
from toy.world import make_scene
from infra.loading import quiet_loading
with quiet_loading():                               # no progress bar per loaded component
    pipe = pg.load_pipeline(pg.PRESETS["toy"].sd)
vocab = pg.toy_vocabulary()
caption = make_scene("train", 12).caption
mention = pg.find_classes(caption, vocab, use_nltk=False)
prompt = pg.build_prompt(caption, mention.classes)
ids = torch.tensor([[vocab.classes.index(c) + 1 for c in mention.classes]])
cfg = pg.MaskConfig(cross_res=(16, 8), self_res=16, tau=4, refine=True)
steps = 10 if FAST else 25
out = pg.generate_with_masks(pipe, [prompt], [mention.classes], ids, 64, torch.Generator().manual_seed(3), cfg,
                             steps=steps, guidance=5.0, keep_history=True)
rec = out.recorder
print("caption:", caption); print("prompt :", prompt); print("classes:", mention.classes, "named by", mention.words)
plt.figure(figsize=(2.5, 2.5)); plt.imshow(out.images[0].permute(1, 2, 0)); plt.axis("off"); plt.title("generated"); plt.show()

# %% [markdown]
# ## Cross-attention of each class over the denoising steps
# One map per step: heads and the 16×16 layers averaged. The first steps denoise pure noise, so their maps are
# diffuse. The class's place appears after a few steps and then stays put. This is why the recorder averages
# over steps instead of taking the last one.

# %%
C = len(mention.classes)
layers16 = [n for n, s in rec.resolution.items() if s == 16 and n in rec.sums_cross]
shown = list(range(0, len(rec.history), max(1, len(rec.history) // 6)))
fig, axes = plt.subplots(C, len(shown), figsize=(1.7 * len(shown), 1.8 * C), squeeze=False)
for j, s in enumerate(shown):
    m = sum(rec.history[s][n] for n in layers16) / len(layers16)       # (1, 256, C)
    for c in range(C):
        axes[c, j].imshow(m[0, :, c].reshape(16, 16), cmap="magma")
        axes[c, j].set_title(f"step {s}", fontsize=7); axes[c, j].set_ylabel(mention.classes[c])
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.suptitle("probe cross-attention per step"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## … and over layers
# Every cross-attention layer, averaged over steps, each at its own resolution. Here the layers agree on where each
# class is: the 8×8 layers are coarse, the 16×16 ones sharper. The toy preset averages only the 16×16 layers,
# which localised best when measured (`python -m toy.report pseudo-masks`).

# %%
names = sorted(rec.sums_cross)
fig, axes = plt.subplots(C, len(names), figsize=(1.5 * len(names), 1.7 * C), squeeze=False)
for j, n in enumerate(names):
    side = rec.resolution[n]
    m = rec.sums_cross[n][0] / rec.counts[n]                          # (HW, C)
    for c in range(C):
        axes[c, j].imshow(m[:, c].reshape(side, side), cmap="magma")
        axes[c, j].set_title(n.split(".attentions")[0].replace("_blocks", "") + f"\n{side}×{side}", fontsize=6)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Self-attention refinement for several τ
# $r_c = (A_{SA})^\tau \cdot \mathrm{vec}(A_{CA,c})$, min-max normalised; τ = 0 is the cross-attention alone.
# Each multiplication by the self-attention matrix spreads a class's score to the pixels that attend to it. With
# SD 2.1 this fills the object and makes its boundary follow the image, and the paper preset uses τ = 4. The toy
# UNet's self-attention links different objects: already at τ = 1 the flower's map leaks onto the mushroom. So
# the toy preset does not refine (τ = 0).

# %%
res = pg.masks_from_recorder(rec, ids, 64, cfg)
cross = res["cross"]                                                 # (1, C, 16, 16)
self_attn = pg.aggregate(rec.sums_self, rec.counts, rec.resolution, 16)  # (1, 256, 256)
taus = [0, 1, 2, 4, 8]
fig, axes = plt.subplots(C, len(taus), figsize=(1.8 * len(taus), 1.9 * C), squeeze=False)
for j, tau in enumerate(taus):
    r = pg.refine(cross, self_attn, tau)
    for c in range(C):
        axes[c, j].imshow(r[0, c], vmin=0, vmax=1, cmap="magma"); axes[c, j].set_title(f"τ={tau}", fontsize=8)
        axes[c, j].set_ylabel(mention.classes[c])
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Thresholds and the final mask
# At each pixel the class with the largest score wins when it reaches 0.6, the pixel is ignored (white: no loss)
# between 0.5 and 0.6, and below 0.5 it is background (black). The band of ignored pixels keeps the uncertain
# boundary out of the loss. Lower thresholds grow the masks into the background; higher ones shrink them. The last
# panel is the mask the toy preset writes into its dataset and trains with: the 16×16 layers alone, no refinement.

# %%
from matplotlib.colors import ListedColormap
from toy.world import CLASSES
cm = ListedColormap(["#222222", "#2ca02c", "#8c564b", "#d62728", "#e377c2", "#1f77b4", "#ff7f0e", "#ffffff"])
IGN = len(CLASSES) + 1
def show(lab): l = lab.clone(); l[l == 255] = IGN; return l
fig, axes = plt.subplots(1, 6, figsize=(13, 2.5))
axes[0].imshow(out.images[0].permute(1, 2, 0)); axes[0].set_title("image")
for a, (tau, fg, low) in zip(axes[1:], [(0, 0.6, 0.5), (4, 0.6, 0.5), (0, 0.4, 0.3), (0, 0.8, 0.7)]):
    lab = pg.label_mask(pg.refine(cross, self_attn, tau), ids, 64, fg=fg, low=low)[0]
    a.imshow(show(lab), cmap=cm, vmin=0, vmax=IGN, interpolation="nearest"); a.set_title(f"τ={tau} fg≥{fg} ign≥{low}", fontsize=8)
trained = pg.masks_from_recorder(rec, ids, 64, pg.PRESETS["toy"].mask)["labels"][0]   # what the toy preset trains on
axes[5].imshow(show(trained), cmap=cm, vmin=0, vmax=IGN, interpolation="nearest")
axes[5].set_title("the toy preset's mask\n(16×16 layers, τ 0): training's", fontsize=8)
for a in axes: a.axis("off")
plt.suptitle("classes: green tree, brown house, red mushroom, pink flower, blue car, orange fish; white ignore")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## What this showed
# The pseudo mask is semantic: it says "fish here", not "this fish". Two fish of one prompt get one id, and the
# mask is only as good as the generator's attention (`python -m toy.report pseudo-masks` scores it against the toy
# world's ground truth). Notebook 03 shows how GLASS matches these segments to slots, and why the instance term is
# needed where a class repeats.
