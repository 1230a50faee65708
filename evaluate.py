"""Score a checkpoint (GLASS §5): object discovery on the toy world's splits, on COCO and on VOC, and the
classical floors every learned model must beat.

    python evaluate.py discovery --ckpt runs/toy/phase2                     # toy val and shift (256 scenes each)
    python evaluate.py discovery --ckpt runs/paper/phase2 --coco ANN.json --images DIR --protocol glass

Masks are the last-iteration slot attention resized bilinearly to the ground truth and argmaxed over slots. On the
toy world background is not a GT segment (DINOSAUR/SPOT protocol) unless `--background-segment`; on real data the
named protocol decides (infra/real_data.py). FG-ARI is reported over all scenes and over scenes with two or more objects
(single-object scenes score 0 for any mask upsampled from a token grid); `repeat_*` scores the scenes where a class
appears twice or more. Floors: k-means per image (K = slots) on encoder tokens and on pixel colour + position.

The paper's experiments (Tab. 2–9, the loss ablation) train rows: they live in experiments/tables.py (`python
experiments/tables.py tables|ablation ...`), the binding ladder in experiments/ladder.py (`python -m experiments.ladder`). This module does not
import train.py.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

import downstream
from slot_attention import build_grid
from toy import world

ROOT = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------------------------
# classical floors: k-means per image (docs/design.md §6)
# ---------------------------------------------------------------------------------------------------------------

def pixel_tokens(images: torch.Tensor, patch: int = 4, position_weight: float = 2.0) -> torch.Tensor:
    """Colour + position tokens on the encoder's grid: each patch×patch cell's pixels (3·patch² values in [0, 1])
    and its centre (x, y) in [0, 1] times `position_weight` (2: the strongest of 0.5 / 1 / 2 on 128 val scenes, so
    the floor is not a straw man). (B, 3, H, W) → (B, N, 3·patch² + 2)."""
    b, _, h, w = images.shape
    cells = images.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, 3, h', w', p, p)
    gh, gw = h // patch, w // patch
    colour = cells.permute(0, 2, 3, 1, 4, 5).reshape(b, gh * gw, -1)  # (B, N, 3p²)
    pos = build_grid(gh, gw)[None, :, :2].expand(b, -1, -1) * position_weight  # (B, N, 2): (x, y) of each cell
    return torch.cat([colour, pos], dim=-1)


def kmeans_labels(tokens: torch.Tensor, k: int, size: int, seed: int = 0) -> torch.Tensor:
    """k-means with K clusters on each image's tokens (B, N, D) on a square grid → label maps (B, size, size),
    nearest-neighbour upsampled (scikit-learn KMeans, 3 restarts)."""
    from sklearn.cluster import KMeans
    b, n, _ = tokens.shape
    side = int(round(n ** 0.5))
    labels = torch.stack([torch.from_numpy(KMeans(n_clusters=k, n_init=3, random_state=seed)
                                           .fit_predict(tokens[i].double().numpy())).long() for i in range(b)])
    grid = labels.reshape(b, 1, side, side).float()  # (B, 1, h, w)
    return F.interpolate(grid, size=(size, size), mode="nearest")[:, 0].long()


def kmeans_floor(kind: str, split: str, n: int, k: int, encoder=None) -> dict:
    """Discovery of the k-means floor on encoder tokens (`kind` "tokens", needs `encoder`: a FrozenEncoder) or
    on pixel colour + position (`kind` "pixels")."""
    def predict(batch):
        images = batch["image"]
        with torch.no_grad():
            tokens = encoder(images) if kind == "tokens" else pixel_tokens(images)
        return kmeans_labels(tokens, k, images.shape[-1])
    return discovery_of(predict, split, n)


# ---------------------------------------------------------------------------------------------------------------
# object discovery on the toy splits (§5)
# ---------------------------------------------------------------------------------------------------------------

def discovery_of(predict, split: str, n: int, background_segment: bool = False, batch_size: int = 32) -> dict:
    """mIoU_i, mBO_i, mIoU_c, mBO_c, FG-ARI (all scenes / multi-object scenes) and SO/PO/GO shares of the label
    maps `predict(batch) → (B, H, W)` on the first n scenes of a toy split; batch holds image (B, 3, H, W),
    instance, semantic and part (B, H, W). The `repeat_*` entries score the same metrics on the scenes where a class
    appears twice or more (where class-level masks merge instances: the paper's semantic drift)."""
    import metrics
    from toy.world import ToyScenes
    ds = ToyScenes(split, length=n)
    vals: dict = {}
    repeated = []
    for s in range(0, n, batch_size):
        items = [ds[i] for i in range(s, min(n, s + batch_size))]
        batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "instance", "semantic", "part")}
        pred = predict(batch).cpu()
        for k, v in metrics.score_masks(pred, batch["instance"], batch["semantic"], background_segment).items():
            vals.setdefault(k, []).append(v)
        repeated += [bool(it["repeated"]) for it in items]
    out = {k: metrics.summarize(torch.cat(v)).mean for k, v in vals.items()}
    rep = torch.tensor(repeated)
    if rep.any():
        out.update({f"repeat_{k}": metrics.summarize(torch.cat(vals[k])[rep]).mean
                    for k in ("miou_i", "mbo_i", "fg_ari_multi", "so", "go")})
    out.update(split=split, images=n, background_segment=background_segment)
    return out


@torch.no_grad()
def discovery(model, split: str, n: int, device, background_segment: bool = False, batch_size: int = 32,
              seed: int = 0) -> dict:
    """Object discovery of a GLASS model on a toy split: `model.slot_masks` scored by `discovery_of`."""
    torch.manual_seed(seed)
    model.eval()
    gt = model.config.slot_prior != "none"  # only the Tab. 5 baselines are told the objects' count or boxes
    return discovery_of(lambda batch: model.slot_masks(batch["image"].to(device), instance=batch["instance"].to(device)
                                                       if gt else None), split, n, background_segment, batch_size)


@torch.no_grad()
def decoder_mask_discovery(model, split: str, n: int, device, batch_size: int = 32, seed: int = 0) -> dict:
    """Object discovery with the MLP decoder's alpha masks (B, K, N) instead of the slot attention: the masks
    DINOSAUR's paper reports (its code scores the decoder's masks), for the DINOSAUR row beside its attention masks."""
    from glass import slot_labels
    torch.manual_seed(seed)
    model.eval()

    def predict(batch):
        images = batch["image"].to(device)
        enc = model.encode(images)
        _, alpha = model.mlp_decoder(enc.slots)  # (B, K, N), softmax over slots
        return slot_labels(alpha.reshape(enc.masks.shape), images.shape[-1])
    return discovery_of(predict, split, n, False, batch_size)


def log_val_curve(model, out: Path, phase: int, step: int, n: int, device) -> None:
    """--val-every: score n toy val scenes now, append a row to OUT/val_curve.csv and print it. The global RNG and
    train mode are restored after, so the run's weights are those of a run without it."""
    rng = torch.get_rng_state()
    vals = discovery(model, "val", n, device)
    model.train()
    torch.set_rng_state(rng)
    keys = [k for k, v in vals.items() if isinstance(v, float)]
    path = out / "val_curve.csv"
    with open(path, "a") as f:
        if f.tell() == 0:
            f.write("phase,step," + ",".join(keys) + "\n")
        f.write(f"{phase},{step}," + ",".join(f"{vals[k]:.4f}" for k in keys) + "\n")
    print(f"[val] phase {phase} step {step} | " + " ".join(f"{k} {vals[k]:.4f}" for k in keys), flush=True)


@torch.no_grad()
def save_val_figure(model, path: Path, device, n: int = 6, seed: int = 0) -> None:
    """Val scenes, their slot masks, and the image regenerated from the slots (25 DDIM steps)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from glass import slot_labels
    from toy.world import ToyScenes
    torch.manual_seed(seed)
    ds = ToyScenes("val", length=n)
    images, instance = (torch.stack([ds[i][k] for i in range(n)]).to(device) for k in ("image", "instance"))
    model.eval()
    enc = model.encode(images, instance=instance if model.config.slot_prior != "none" else None)
    pred = slot_labels(enc.masks, images.shape[-1]).cpu()
    recon = downstream.generate(model, enc.cond, torch.Generator().manual_seed(seed), num_steps=25).cpu()
    model.train()
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6))
    for i in range(n):
        axes[0, i].imshow(images[i].permute(1, 2, 0).cpu().numpy())
        axes[1, i].imshow(pred[i].numpy(), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axes[2, i].imshow(recon[i].permute(1, 2, 0).clamp(0, 1).numpy())
    for a in axes.flat:
        a.axis("off")
    for r, t in enumerate(("val scene", "slot masks", "decoded from slots")):
        axes[r, 0].set_title(t, fontsize=8, loc="left")
    fig.suptitle(f"python train.py  →  {path.name}", fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)



@torch.no_grad()
def decoder_mse(model, split: str, n: int, batch_size: int = 32) -> dict:
    """The instance term on n scenes of a toy split: the MLP decoder's feature MSE per element (`decoder`) beside
    two references, predicting every token by its image's mean token (`image_mean`: a decoder that learned
    nothing about objects) and by its ground-truth instance's mean token (`instance_mean`, background one
    instance: what slots that each hold one object's average could reach), and the share of the gap between the
    two that the decoder closes (`closed`). Evaluation only: the references read the ground truth."""
    from toy.tokens import group_spread, patch_majority
    ds = world.ToyScenes(split, length=n)
    model.eval()
    sums = {"decoder": 0.0, "image_mean": 0.0, "instance_mean": 0.0}
    elements = 0
    for s in range(0, n, batch_size):
        items = [ds[i] for i in range(s, min(n, s + batch_size))]
        images = torch.stack([it["image"] for it in items])
        features = model.encoder(images)  # (B, N, D)
        recon, _ = model.mlp_decoder(model.encode(images, features=features).slots)  # (B, N, D)
        side = model.encoder.grid
        inst = torch.stack([it["instance"] for it in items])
        ids = patch_majority(inst, inst.shape[-1] // side, world.MAX_OBJECTS + 1)  # (B, N) instance of each token
        sums["decoder"] += float((recon - features).pow(2).sum())
        sums["image_mean"] += group_spread(features, torch.zeros_like(ids))
        sums["instance_mean"] += group_spread(features, ids)
        elements += features.numel()
    out = {k: v / elements for k, v in sums.items()}
    out["closed"] = (out["image_mean"] - out["decoder"]) / max(out["image_mean"] - out["instance_mean"], 1e-12)
    return out


def real_discovery(model, args, device) -> dict:
    """`discovery --coco/--voc`: a named protocol on real data (infra/real_data.py), the model's own encoder size."""
    from infra import real_data
    enc_size = model.config.encoder_size
    if args.coco is not None:
        scenes = real_data.CocoScenes(args.coco, args.images, args.protocol, enc_size, args.num_images, args.size)
    else:
        scenes = real_data.VocScenes(args.voc, args.voc_split, args.protocol, enc_size, args.num_images, args.size)
    model.eval()
    with torch.no_grad():
        report = real_data.score_real(lambda x: model.slot_masks(x.to(device), size=scenes.size), scenes,
                                      args.batch_size)
    report["dataset"] = {"coco": str(args.coco), "images": str(args.images)} if args.coco is not None else \
        {"voc": str(args.voc), "split": args.voc_split}
    counts = {k: report[k] for k in ("protocol", "images", "images_scored", "no_objects", "bad_annotations",
                                     "warnings", "bad_images")}
    print(f"[discovery] {counts} (names in the report's 'problems')", flush=True)
    return report


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("discovery", help="object discovery metrics of a checkpoint: toy val and shift, or COCO / VOC")
    d.add_argument("--ckpt", required=True, help="checkpoint folder (e.g. runs/toy/phase2)")
    d.add_argument("--num-images", type=int, default=None, help="toy: scenes per split (default 256, as every "
                   "published number); COCO / VOC: at most this many images (default: all of them)")
    d.add_argument("--coco", type=Path, help="COCO annotations JSON (e.g. instances_val2017.json); needs --images")
    d.add_argument("--images", type=Path, help="the COCO split's image folder")
    d.add_argument("--voc", type=Path, help="the VOC2012 folder (ImageSets/, JPEGImages/, Segmentation*/)")
    d.add_argument("--voc-split", default="val", help="VOC image set (default: val)")
    d.add_argument("--protocol", choices=["glass", "oclf"], default="glass", help="real data: 'glass' scores as the "
                   "GLASS authors' released evaluation (256-px masks, background a segment, overlaps kept, empty "
                   "images scored); 'oclf' as DINOSAUR / SPOT (320 px, overlaps ignored, no background segment)")
    d.add_argument("--size", type=int, default=None, help="real data: side of the scored masks (default: the "
                   "protocol's)")
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    d.add_argument("--out", type=Path, help="also write the report (JSON) here")
    d.add_argument("--background-segment", action="store_true", help="toy: background is a GT segment (real data: "
                   "set by --protocol)")
    args = ap.parse_args(argv)
    from infra.checkpoint import load_checkpoint_model
    if not Path(args.ckpt).exists():
        ap.error(f"--ckpt {args.ckpt} does not exist")
    if (args.coco is None) != (args.images is None):
        ap.error("COCO needs both --coco ANNOTATIONS.json and --images DIR")
    if args.background_segment and (args.coco is not None or args.voc is not None):
        ap.error("--background-segment is for the toy world; on COCO / VOC --protocol decides it")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, info = load_checkpoint_model(args.ckpt, device)
    if args.coco is not None or args.voc is not None:
        report = real_discovery(model, args, device)
    else:
        report = {split: discovery(model, split, min(args.num_images or 256, len(world.ToyScenes(split))), device,
                                   args.background_segment) for split in ("val", "shift")}
    report["checkpoint"] = {"path": args.ckpt, "phase": info["phase"], "step": info["step"]}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "problems"}, indent=2))


if __name__ == "__main__":
    main()
