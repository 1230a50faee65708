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
# # 01 · Slot attention, step by step (GLASS §3, Eq. 1)
# **Question:** how do K slots divide an image's 16×16 encoder tokens among themselves, and how quickly do they
# settle?
#
# Slot attention normalises its attention logits with a softmax over the *slots*, not over the tokens. Every token
# hands out one unit of attention, and the slots compete for it. Each slot is then updated with the weighted mean
# of the tokens it won (Eq. 1), through a GRU and an MLP, T times. The code is `slot_attention.SlotAttention.step`,
# one line per equation.
#
# **What you will see:** the attention of every iteration for one val scene, the share of tokens each slot wins per
# iteration, and the same trained module run with fewer slots or more iterations than it was trained with.
# The cell below names the checkpoint: the quick start's phase 1 (`python train.py --phase 2`) when it exists,
# otherwise a demo model of 20 steps, whose maps show only the mechanics.

# %%
import os, sys
from preamble import setup                         # notebooks/preamble.py: project root on the path, offline, 2 threads
FAST = setup()                                     # CI runs every notebook in a small setting (GLASS_FAST=1)
import torch, numpy as np, matplotlib.pyplot as plt

# %%
from demo_checkpoint import notebook_checkpoint   # notebooks/demo_checkpoint.py: the quick start's model, or a demo one (it says which)
from toy.world import ToyScenes
from infra.checkpoint import load_checkpoint_model
ckpt = notebook_checkpoint(phase=1)
model, info = load_checkpoint_model(ckpt)
model.eval()
print(ckpt, "phase", info["phase"], "step", info["step"])
scene = ToyScenes("val")[5]
image = scene["image"][None]                        # (1, 3, 64, 64)
with torch.no_grad():
    feats = model.encoder(image)                    # (1, N=256, D_enc)
sm, sa = model.slot_module, model.slot_module.slot_attention
torch.manual_seed(0)
init = sa.sample_init(1)                            # (1, K, D): fixed initial slots
print("features", tuple(feats.shape), "initial slots", tuple(init.shape))

# %% [markdown]
# ## Eq. 1 by hand
# One iteration written out line by line on random inputs: keys, values and queries; the softmax **over slots** (the
# slots compete for each token); ε and the normalisation over tokens (a weighted mean); the GRU and the residual MLP.
# It gives what `SlotAttention.step` gives.

# %%
from slot_attention import SlotAttention       # Eq. 1 written out, checked against the module's textbook step
rng = torch.get_rng_state()                                   # this cell leaves the notebook's random stream as is
torch.manual_seed(0)
B, N, K, D = 2, 10, 4, 8
m = SlotAttention(num_slots=K, dim=D, iters=1, folded=False)
x = m.norm_inputs(torch.randn(B, N, D))                       # (B, N, D) inputs, LayerNorm over features
s = torch.randn(B, K, D)                                      # (B, K, D) slots
k, v = m.to_k(x), m.to_v(x)                                   # keys and values, (B, N, D)
q = m.to_q(m.norm_slots(s))                                   # queries, (B, K, D)
attn = torch.softmax(q @ k.transpose(1, 2) / D ** 0.5, dim=1) # (B, K, N): softmax over SLOTS, slots compete
w = (attn + m.eps) / (attn + m.eps).sum(dim=-1, keepdim=True) # each slot's weights sum to 1 over the N tokens
updates = w @ v                                               # (B, K, D): the weighted mean of the values
new = m.gru(updates.reshape(B * K, D), s.reshape(B * K, D)).reshape(B, K, D)   # GRU(updates, previous slots)
new = new + m.mlp(m.norm_mlp(new))                            # residual MLP
ref, ref_attn = m.step(k, v, s, None)
print("slots agree:", torch.allclose(new, ref, atol=1e-6), "| attention agrees:", torch.allclose(attn, ref_attn),
      "| attention sums to 1 over slots:", torch.allclose(attn.sum(dim=1), torch.ones(B, N)))
torch.set_rng_state(rng)

# %% [markdown]
# ## The attention of every iteration
# Rows are iterations and columns are slots. Each map is the softmax **over slots**, so the K maps of a row add up
# to one at every token (the printed check below). In the quick start's model, one slot (the background slot)
# wins most tokens in the first iteration, and the other slots start from claims on objects: the fish's body is
# slot 2's from the start. The house's wall moves to a slot of its own in the second iteration, the car only in
# the third, and the house's roof stays with the background slot. This model (val mIoU_i 0.63 after phase 1)
# binds most of each object, not all of it.

# %%
T = sa.iters
g = model.encoder.grid
with torch.no_grad():
    per_iter = sm(feats, slots=init).attn_per_iter      # (T, 1, K, N)
maps = per_iter[:, 0].reshape(T, -1, g, g)              # (T, K, h, w)
K = maps.shape[1]
fig, axes = plt.subplots(T, K + 1, figsize=(1.6 * (K + 1), 1.6 * T))
for t in range(T):
    axes[t, 0].imshow(image[0].permute(1, 2, 0)); axes[t, 0].set_ylabel(f"iter {t + 1}")
    for k in range(K):
        axes[t, k + 1].imshow(maps[t][k], vmin=0, vmax=1, cmap="magma")
        if t == 0: axes[t, k + 1].set_title(f"slot {k}", fontsize=8)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
fig.suptitle("slot attention per iteration (softmax over slots)"); plt.tight_layout(); plt.show()
print("sum over slots at every token:", maps.sum(1).min().item(), "…", maps.sum(1).max().item())

# %% [markdown]
# ## How slots compete: the share of tokens each slot wins
# Each token goes to the slot with its largest attention (argmax over slots), and we count the tokens per slot. A
# flat line means a slot has settled. Here the fish's and the house's slots hold their share from the first
# iteration; in the third the car's slot grows, and the background slot's share falls from 88 % to 82 %.

# %%
wins = torch.stack([m.flatten(1).argmax(0).bincount(minlength=K) for m in maps]).float() / (g * g)
plt.figure(figsize=(6, 3))
for k in range(K):
    plt.plot(range(1, T + 1), wins[:, k], marker="o", label=f"slot {k}")
plt.xlabel("iteration"); plt.ylabel("share of tokens won"); plt.legend(fontsize=7, ncol=2)
plt.title("competition between slots over iterations"); plt.show()

# %% [markdown]
# ## Fewer slots, more or fewer iterations
# The same trained module with K slots and T iterations. A shared Gaussian init (the paper preset) can be sampled
# for any K. The toy preset's learned per-slot queries can only be dropped, so here K is at most the trained number.
# With two slots, the fish keeps one and everything else goes to the other. With three, the car gets the third
# and the house stays with the background. With a single iteration the car has no slot yet. With eight
# iterations, more than trained, the house's slot grows towards its roof, the background passes to another slot
# (its colour changes) and the car loses its slot to it. The trained T is a budget, not convergence: more
# iterations move tokens between slots, for better and for worse.

# %%
from matplotlib.colors import ListedColormap
cmap = plt.get_cmap("tab10")
def initial_slots(k):                               # (1, k, D)
    return sa.sample_init(1)[:, :k] if sa.learned_init else sa.sample_init(1, num_slots=k)
settings = [(2, T), (3, T), (K, T), (K, 1), (K, 3), (K, 8)]
fig, axes = plt.subplots(1, len(settings) + 1, figsize=(2 * (len(settings) + 1), 2.3))
axes[0].imshow(image[0].permute(1, 2, 0)); axes[0].set_title("scene", fontsize=8)
with torch.no_grad():
    for a, (k_slots, iters) in zip(axes[1:], settings):
        torch.manual_seed(1)
        attn = sm(feats, slots=initial_slots(k_slots), iters=iters).attn[0].reshape(-1, g, g)
        a.imshow(attn.argmax(0), cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
        a.set_title(f"K={k_slots}, T={iters}", fontsize=8)
for a in axes: a.axis("off")
plt.suptitle("argmax masks (one colour per slot)"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## What this showed
# Slot attention is a competition for tokens. The softmax over slots makes the masks a partition (they sum to one),
# and each iteration of "win tokens, average them, update" lets slots take over groups of similar tokens. How many
# objects end with a slot of their own depends on the trained model, on K and on T. Nothing here knows what an
# object is: the slots follow whatever the encoder's tokens make similar.
# Notebook 03 shows how GLASS's semantic guidance pushes the masks toward whole objects, and notebook 04 what each
# loss term adds.
