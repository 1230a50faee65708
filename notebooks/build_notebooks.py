"""Writes the five notebooks from the cell sources below (so they review as code); run them with
`python notebooks/build_notebooks.py --execute` to store real outputs (GLASS_FAST=1 for the small setting)."""
import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """import os, sys
sys.path.insert(0, os.path.abspath(".."))          # the project root: notebooks import its modules
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch, numpy as np, matplotlib.pyplot as plt
torch.set_num_threads(2)
FAST = os.environ.get("GLASS_FAST", "0") == "1"    # CI runs every notebook in a small setting
print("fast mode" if FAST else "full mode")"""

NOTEBOOKS = {
    "01_slot_attention.ipynb": [
        "# 01 · Slot attention, step by step (GLASS §3, Eq. 1)\n"
        "How do slots compete for the toy encoder's 16×16 patch tokens, iteration after iteration? We take the "
        "slot module of a trained GLASS checkpoint, fix the initial slots, and run it with T = 1, 2, … iterations: "
        "the attention of the last iteration of a T-iteration run *is* iteration T's attention.",
        SETUP,
        """import toyworld, evaluate
from glass import load_checkpoint_model
ckpt = evaluate.demo_checkpoint(phase=1)
model, info = load_checkpoint_model(ckpt)
model.eval()
print(ckpt, "phase", info["phase"], "step", info["step"])
scene = toyworld.ToyScenes("val")[5]
image = scene["image"][None]                        # (1, 3, 64, 64)
with torch.no_grad():
    feats = model.encoder(image)                    # (1, N=256, D_enc)
sm, sa = model.slot_module, model.slot_module.slot_attention
torch.manual_seed(0)
init = sa.sample_init(1)                            # (1, K, D): fixed initial slots
print("features", tuple(feats.shape), "initial slots", tuple(init.shape))""",
        "## The attention of every iteration\nRows: iterations. Columns: slots. Each map is the softmax **over "
        "slots**, so the K maps of a row sum to one at every token.",
        """T = sa.iters
g = model.encoder.grid
maps = []
with torch.no_grad():
    for t in range(1, T + 1):
        sa.iters = t
        maps.append(sm(feats, slots=init).attn[0].reshape(-1, g, g))   # (K, h, w)
sa.iters = T
K = maps[0].shape[0]
fig, axes = plt.subplots(T, K + 1, figsize=(1.6 * (K + 1), 1.6 * T))
for t in range(T):
    axes[t, 0].imshow(image[0].permute(1, 2, 0)); axes[t, 0].set_ylabel(f"iter {t + 1}")
    for k in range(K):
        axes[t, k + 1].imshow(maps[t][k], vmin=0, vmax=1, cmap="magma")
        if t == 0: axes[t, k + 1].set_title(f"slot {k}", fontsize=8)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
fig.suptitle("slot attention per iteration (softmax over slots)"); plt.tight_layout(); plt.show()
print("sum over slots at every token:", torch.stack([m.sum(0) for m in maps]).min().item(), "…",
      torch.stack([m.sum(0) for m in maps]).max().item())""",
        "## How slots compete: the share of tokens each slot wins\nThe hard assignment (argmax over slots) per iteration.",
        """wins = torch.stack([m.flatten(1).argmax(0).bincount(minlength=K) for m in maps]).float() / (g * g)
plt.figure(figsize=(6, 3))
for k in range(K):
    plt.plot(range(1, T + 1), wins[:, k], marker="o", label=f"slot {k}")
plt.xlabel("iteration"); plt.ylabel("share of tokens won"); plt.legend(fontsize=7, ncol=2)
plt.title("competition between slots over iterations"); plt.show()""",
        "## Fewer slots, more or fewer iterations\nThe same trained module with K slots and T iterations. A shared "
        "Gaussian init can be sampled for any K; the toy preset's learned per-slot queries can only be dropped, so "
        "K ≤ the trained number here.",
        """from matplotlib.colors import ListedColormap
cmap = plt.get_cmap("tab10")
def initial_slots(k):                               # (1, k, D)
    return sa.sample_init(1)[:, :k] if sa.learned_init else sa.sample_init(1, num_slots=k)
settings = [(2, T), (3, T), (K, T), (K, 1), (K, 3), (K, 8)]
fig, axes = plt.subplots(1, len(settings) + 1, figsize=(2 * (len(settings) + 1), 2.3))
axes[0].imshow(image[0].permute(1, 2, 0)); axes[0].set_title("scene", fontsize=8)
with torch.no_grad():
    for a, (k_slots, iters) in zip(axes[1:], settings):
        torch.manual_seed(1)
        sa.iters = iters
        attn = sm(feats, slots=initial_slots(k_slots)).attn[0].reshape(-1, g, g)
        a.imshow(attn.argmax(0), cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
        a.set_title(f"K={k_slots}, T={iters}", fontsize=8)
sa.iters = T
for a in axes: a.axis("off")
plt.suptitle("argmax masks (one colour per slot)"); plt.tight_layout(); plt.show()""",
    ],
    "02_pseudo_gt.ipynb": [
        "# 02 · Pseudo ground truth from the diffusion model's attention (GLASS §4)\n"
        "One prompt through generation: the probe cross-attention of each class over steps and layers, the "
        "self-attention refinement for several τ, the thresholds, and the final mask against the image.",
        SETUP,
        """import toyworld, pseudo_gt as pg
pipe = pg.load_pipeline(pg.PRESETS["toy"].sd)
vocab = pg.toy_vocabulary()
caption = toyworld.make_scene("train", 12).caption
mention = pg.find_classes(caption, vocab, use_nltk=False)
prompt = pg.build_prompt(caption, mention.classes)
ids = torch.tensor([[vocab.classes.index(c) + 1 for c in mention.classes]])
cfg = pg.MaskConfig(cross_res=(16, 8), self_res=16, tau=4, refine=True)
steps = 10 if FAST else 25
out = pg.generate_with_masks(pipe, [prompt], [mention.classes], ids, 64, torch.Generator().manual_seed(3), cfg,
                             steps=steps, guidance=5.0, keep_history=True)
rec = out.recorder
print("caption:", caption); print("prompt :", prompt); print("classes:", mention.classes, "named by", mention.words)
plt.figure(figsize=(2.5, 2.5)); plt.imshow(out.images[0].permute(1, 2, 0)); plt.axis("off"); plt.title("generated"); plt.show()""",
        "## Cross-attention of each class over the denoising steps\nHeads and the 16×16 layers averaged, one map per step.",
        """C = len(mention.classes)
layers16 = [n for n, s in rec.resolution.items() if s == 16 and n in rec.sums_cross]
shown = list(range(0, len(rec.history), max(1, len(rec.history) // 6)))
fig, axes = plt.subplots(C, len(shown), figsize=(1.7 * len(shown), 1.8 * C), squeeze=False)
for j, s in enumerate(shown):
    m = sum(rec.history[s][n] for n in layers16) / len(layers16)       # (1, 256, C)
    for c in range(C):
        axes[c, j].imshow(m[0, :, c].reshape(16, 16), cmap="magma")
        axes[c, j].set_title(f"step {s}", fontsize=7); axes[c, j].set_ylabel(mention.classes[c])
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.suptitle("probe cross-attention per step"); plt.tight_layout(); plt.show()""",
        "## … and over layers\nEvery cross-attention layer, averaged over steps (8×8 layers shown at their own resolution).",
        """names = sorted(rec.sums_cross)
fig, axes = plt.subplots(C, len(names), figsize=(1.5 * len(names), 1.7 * C), squeeze=False)
for j, n in enumerate(names):
    side = rec.resolution[n]
    m = rec.sums_cross[n][0] / rec.counts[n]                          # (HW, C)
    for c in range(C):
        axes[c, j].imshow(m[:, c].reshape(side, side), cmap="magma")
        axes[c, j].set_title(n.split(".attentions")[0].replace("_blocks", "") + f"\\n{side}×{side}", fontsize=6)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()""",
        "## Self-attention refinement for several τ\n$r_c = (A_{SA})^\\tau \\cdot \\mathrm{vec}(A_{CA,c})$, min-max normalised. "
        "τ = 0 is the cross-attention alone.",
        """res = pg.masks_from_recorder(rec, ids, 64, cfg)
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
plt.tight_layout(); plt.show()""",
        "## Thresholds and the final mask\nmax ≥ 0.6 → class, 0.5 ≤ max < 0.6 → ignore (white), below → background (black).",
        """from matplotlib.colors import ListedColormap
cm = ListedColormap(["#222222", "#e41a1c", "#377eb8", "#4daf4a", "#ff7f00", "#ffffff"])
def show(lab): l = lab.clone(); l[l == 255] = 5; return l
fig, axes = plt.subplots(1, 5, figsize=(11, 2.5))
axes[0].imshow(out.images[0].permute(1, 2, 0)); axes[0].set_title("image")
for a, (tau, fg, low) in zip(axes[1:], [(0, 0.6, 0.5), (4, 0.6, 0.5), (0, 0.4, 0.3), (0, 0.8, 0.7)]):
    lab = pg.label_mask(pg.refine(cross, self_attn, tau), ids, 64, fg=fg, low=low)[0]
    a.imshow(show(lab), cmap=cm, vmin=0, vmax=5, interpolation="nearest"); a.set_title(f"τ={tau} fg≥{fg} ign≥{low}", fontsize=8)
for a in axes: a.axis("off")
plt.suptitle("classes: red circle, blue square, green triangle, orange cross"); plt.tight_layout(); plt.show()""",
    ],
    "03_matching.ipynb": [
        "# 03 · Slot matching and the semantic loss (GLASS §4, Eq. 2)\n"
        "Slot masks beside the pseudo-mask segments, the IoU matrix, the Hungarian assignment, and the BCE of matched "
        "versus unmatched slots.",
        SETUP,
        """import evaluate, pseudo_gt as pg
from glass import load_checkpoint_model
from matching import iou_matrix, hungarian_match, segments_from_semantic, semantic_loss
import torch.nn.functional as F
ckpt = evaluate.demo_checkpoint(phase=1)
model, info = load_checkpoint_model(ckpt); model.eval()
from pathlib import Path
data_dir = Path(info["args"]["data"])
data = pg.PseudoGTDataset(data_dir if data_dir.is_absolute() else Path("..").resolve() / data_dir)
item = data[3]
torch.manual_seed(0)
with torch.no_grad():
    enc = model.encode(item["image"][None])
soft = F.interpolate(enc.masks, size=(64, 64), mode="bilinear", align_corners=False)   # (1, K, 64, 64)
seg = segments_from_semantic(item["mask"][None], model.config.num_classes, background_segment=True)
present = seg.present[0].nonzero().flatten()
hard = F.one_hot(soft.argmax(1), soft.shape[1]).permute(0, 3, 1, 2).bool()
iou = iou_matrix(hard, seg.masks, seg.valid)[0][:, present]                               # (K, F_present)
match = hungarian_match(iou)
names = ["background"] + list(data.meta["classes"])
print("prompt:", item["prompt"]); print("segments:", [names[i] for i in present.tolist()])""",
        """K = soft.shape[1]
fig, axes = plt.subplots(2, max(K, len(present)) + 1, figsize=(1.7 * (max(K, len(present)) + 1), 3.6))
axes[0, 0].imshow(item["image"].permute(1, 2, 0)); axes[0, 0].set_title("generated", fontsize=8)
axes[1, 0].imshow(item["mask"].clamp(max=5), cmap="tab10", vmin=0, vmax=9, interpolation="nearest"); axes[1, 0].set_title("pseudo mask", fontsize=8)
for k in range(K):
    axes[0, k + 1].imshow(soft[0, k], vmin=0, vmax=1, cmap="magma"); axes[0, k + 1].set_title(f"slot {k}", fontsize=8)
for j, f in enumerate(present.tolist()):
    axes[1, j + 1].imshow(seg.masks[0, f], cmap="gray"); axes[1, j + 1].set_title(names[f], fontsize=8)
for a in axes.flat: a.axis("off")
plt.tight_layout(); plt.show()""",
        "## The IoU matrix and the Hungarian assignment\nBoxes mark the assignment that maximises the total IoU "
        "(each segment gets at most one slot).",
        """fig, ax = plt.subplots(figsize=(1 + 0.9 * len(present), 0.5 + 0.6 * K))
im = ax.imshow(iou, vmin=0, vmax=1, cmap="viridis")
for k in range(K):
    for j in range(len(present)):
        ax.text(j, k, f"{iou[k, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
for k, j in zip(match.slot_idx.tolist(), match.segment_idx.tolist()):
    ax.add_patch(plt.Rectangle((j - 0.5, k - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
ax.set_xticks(range(len(present)), [names[i] for i in present.tolist()], rotation=30); ax.set_ylabel("slot")
plt.colorbar(im); plt.title("IoU(slot argmax mask, segment)"); plt.show()""",
        "## The semantic loss: matched slots get a target, unmatched slots none",
        """out = semantic_loss(soft, seg.masks, seg.present, seg.valid)
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
print("L_semantic of this image:", round(out.loss.item(), 4), "(the mean over matched slots)")""",
    ],
    "04_loss_ablations.ipynb": [
        "# 04 · Loss ablations (paper Tab. 6a, on the toy world)\n"
        "recon only, + semantic, + instance, all three: training curves, val metrics, and the masks each produces. "
        "Reads the results of `python evaluate.py ablation` when they exist; in fast mode it runs a tiny ablation.",
        SETUP,
        """import json, csv
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
print(evaluate.ablation_table(results))""",
        """fig, axes = plt.subplots(1, 3, figsize=(13, 3))
for run in sorted(abl.glob("*_seed0")):
    rows = list(csv.DictReader(open(run / "log_phase1.csv")))
    steps = [int(r["step"]) for r in rows]
    for a, key in zip(axes, ("recon", "semantic", "instance")):
        a.plot(steps, [float(r[key]) for r in rows], label=run.name.replace("_seed0", ""))
        a.set_title(key); a.set_xlabel("step")
axes[0].legend(fontsize=7); plt.suptitle("loss terms per ablation (seed 0); a switched-off term stays 0"); plt.tight_layout(); plt.show()""",
        "## Masks of each ablation on the same val scenes",
        """import toyworld, train
from glass import load_checkpoint_model
ds = toyworld.ToyScenes("val")
imgs = torch.stack([ds[i]["image"] for i in range(6)])
runs = sorted(abl.glob("*_seed0"))
fig, axes = plt.subplots(len(runs) + 1, 6, figsize=(10, 1.8 * (len(runs) + 1)))
for j in range(6):
    axes[0, j].imshow(imgs[j].permute(1, 2, 0))
    axes[0, j].set_title(ds[j]["labels"], fontsize=7)
for r, run in enumerate(runs):
    model, _ = load_checkpoint_model(run / "phase1"); model.eval()
    torch.manual_seed(0)
    pred = train.predict_masks(model, imgs, 64)
    for j in range(6):
        axes[r + 1, j].imshow(pred[j], cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[r + 1, 0].set_ylabel(run.name.replace("_seed0", ""), fontsize=7)
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()""",
        "## What the toy world shows\nThe README's ablation section gives the measured table (three seeds) and the reading of it; its ladder says why the semantic term groups objects in this world.",
    ],
    "05_generation.ipynb": [
        "# 05 · Generation from slots (GLASS §5: conditional and compositional generation)\n"
        "Reconstruction from slots next to the input; removing a slot and adding a slot from another scene, with the "
        "same initial noise as the original.",
        SETUP,
        """import toyworld, evaluate, train
from glass import load_checkpoint_model
import torch.nn.functional as F
ckpt = evaluate.demo_checkpoint(phase=2)
model, info = load_checkpoint_model(ckpt); model.eval()
ds = toyworld.ToyScenes("val")
imgs = torch.stack([ds[i]["image"] for i in range(6)])
steps = 10 if FAST else 25
torch.manual_seed(0)
with torch.no_grad():
    enc = model.encode(imgs)
    recon = model.generate(enc.cond, torch.Generator().manual_seed(0), num_steps=steps)
fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
for j in range(6):
    axes[0, j].imshow(imgs[j].permute(1, 2, 0)); axes[1, j].imshow(recon[j].permute(1, 2, 0).clamp(0, 1))
axes[0, 0].set_ylabel("input"); axes[1, 0].set_ylabel("from slots")
for a in axes.flat: a.set_xticks([]); a.set_yticks([])
plt.tight_layout(); plt.show()""",
        "## What the committed run shows\nAfter the quick start's 300 phase-2 CPU steps the UNet decodes colours and "
        "rough layout from the slots, not crisp shapes, and a single slot changes the image only a little (below): the "
        "decoder leans on the slot set as a whole. Longer phase-2 training is where this improves.",
        "## Remove a slot, add a slot\nThe slot removed is the one whose mask covers the most foreground; the slot "
        "added is the largest-object slot of another scene. Original and edit start from the same noise (same seed).",
        """def object_slot(i):
    masks = F.interpolate(enc.masks[i:i + 1], size=(64, 64), mode="bilinear").argmax(1)[0]
    fg = ds[i]["instance"] > 0
    return int(torch.bincount(masks[fg], minlength=enc.masks.shape[1]).argmax())
pairs = [(0, 1), (2, 3), (4, 5)]
fig, axes = plt.subplots(len(pairs), 4, figsize=(7, 1.9 * len(pairs)))
for r, (i, j) in enumerate(pairs):
    k, k2 = object_slot(i), object_slot(j)
    orig, removed = model.compose(enc.cond[i:i + 1], remove=[k], seed=r, num_steps=steps)
    _, added = model.compose(enc.cond[i:i + 1], add=enc.cond[j, k2:k2 + 1], seed=r, num_steps=steps)
    for a, im, t in zip(axes[r], [imgs[i], orig[0], removed[0], added[0]],
                        ["input", "from slots", f"slot {k} removed", f"+ slot {k2} of scene {j}"]):
        a.imshow(im.permute(1, 2, 0).clamp(0, 1)); a.set_title(t, fontsize=7); a.axis("off")
plt.tight_layout(); plt.show()""",
    ],
}


def build(only=None) -> list:
    """Write the notebooks (all, or those named in `only`) from their cell sources, without outputs."""
    paths = []
    for name, cells in NOTEBOOKS.items():
        if only and name not in only:
            continue
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        for src in cells:
            nb.cells.append(new_markdown_cell(src) if src.startswith("#") else new_code_cell(src))  # markdown = heading
        path = HERE / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def execute(path: Path, timeout: int = 1200) -> None:
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    ap.add_argument("--only", nargs="*", default=None, help="notebook names to (re)build")
    args = ap.parse_args()
    for p in build(args.only):
        print("built", p.name)
        if args.execute:
            execute(p)
            print("executed", p.name)
