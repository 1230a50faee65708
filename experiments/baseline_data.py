"""The training data and encoders of the baseline rows, made on the toy world; GLASS itself never trains on them.

    write_oracle_dataset      real toy train scenes with their ground-truth masks, semantic or instance, in the
                              pseudo-GT format: StableLSD's and DINOSAUR's training images (Tab. 2–5; their masks
                              unused), the Tab. 5 priors' instance maps, and the binding ladder's oracle rungs
    write_segmenter_dataset   GLASS's generated images with a classical segmenter's masks (Felzenszwalb, the
                              stand-in for SAMv2): Tab. 6c's other guidance source
    encoder_variant           Tab. 6b's other encoders: masked-patch pretraining (MAE) or a random initialisation

Every writer is resumable (finished items are kept). experiments/tables.py and experiments/ladder.py call them; tests/test_evaluate.py
checks them against the world's own scenes and scikit-image.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from infra.data import ItemWriter, PseudoGTDataset
from toy import world

ORACLE_OFFSET = 5_000_000  # train-stream scenes of the oracle datasets (the pseudo-GT writer uses 0, 1, …)


def write_oracle_dataset(out: Path, num_images: int, masks: str) -> Path:
    """Real toy train scenes with their ground-truth masks, in the pseudo-GT dataset format (PseudoGTDataset reads
    it): `masks` "semantic" (class id per pixel, as a perfect pseudo mask would be) or "instance" (each object
    its own segment id 1..n, so the "semantic" guidance becomes instance guidance). Every item also carries its
    instance map (`instance`), which only the Tab. 5 baselines read. Only the ladder's oracle rungs and the tables'
    real-scene baselines use these; GLASS itself never sees ground truth. Resumable: finished items are kept."""
    if masks not in ("semantic", "instance"):
        raise ValueError(f"masks must be 'semantic' or 'instance', got {masks!r}")
    out.mkdir(parents=True, exist_ok=True)
    classes = list(world.CLASSES) if masks == "semantic" else \
        [f"object {i}" for i in range(1, world.SPLITS["train"].max_objects + 1)]
    meta = {"preset": f"toy-oracle-{masks}", "classes": classes, "source": f"toy:train:{ORACLE_OFFSET}+i"}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    writer = ItemWriter(out, keys=("image", "mask", "instance"))  # items of older sets lack `instance`: redone
    for i in range(num_images):
        if i in writer.done:
            continue
        scene = world.make_scene("train", ORACLE_OFFSET + i)
        mask = scene.semantic if masks == "semantic" else scene.instance
        arrays = {"image": scene.image, "mask": mask.astype(np.uint8), "instance": scene.instance.astype(np.uint8)}
        writer.write(i, arrays,
                     {"caption": scene.caption, "prompt": scene.caption, "classes": scene.classes, "has_classes": True,
                      "source": f"toy:train:{ORACLE_OFFSET + i}"})
    return out


FELZENSZWALB = dict(scale=400, sigma=0.8, min_size=20)  # picked on 64 toy train scenes (seeds 7,000,000 on): its
# five largest segments score mIoU_i 0.65 there, against 0.48–0.56 at scale 50–200


def largest_segments(segments: np.ndarray, num_ids: int) -> np.ndarray:
    """A class-agnostic segmentation (H, W) of arbitrary ids → a pseudo mask: the largest segment 0 (background),
    the next `num_ids` largest 1..num_ids (largest first, ties by id), the rest 255 (ignored)."""
    ids, area = np.unique(segments, return_counts=True)
    order = ids[np.lexsort((ids, -area))]  # by area, descending; then by id
    mask = np.full(segments.shape, 255, dtype=np.uint8)
    for new, old in enumerate(order[:num_ids + 1]):
        mask[segments == old] = new
    return mask


def write_segmenter_dataset(src: Path, out: Path, num_images: int) -> Path:
    """Tab. 6c's guidance source: the images of GLASS's pseudo-GT dataset `src` with masks from an unprompted,
    class-agnostic segmenter (Felzenszwalb's graph-based method from scikit-image, the stand-in for SAMv2) instead
    of the diffusion model's attention, as `largest_segments` with as many ids as `src` has classes. Resumable."""
    from PIL import Image
    from skimage.segmentation import felzenszwalb
    source = PseudoGTDataset(src, quiet=True)
    c = source.num_classes
    out.mkdir(parents=True, exist_ok=True)
    meta = {"preset": "felzenszwalb", "classes": [f"segment {i}" for i in range(1, c + 1)], "source": str(src),
            "felzenszwalb": FELZENSZWALB, "size": source.meta.get("size"), "num_images": num_images}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    writer = ItemWriter(out)
    for rec in source.records[:num_images]:
        i = rec["index"]
        if i in writer.done:
            continue
        image = np.asarray(Image.open(Path(src) / rec["image"]).convert("RGB"))  # (H, W, 3) uint8
        mask = largest_segments(felzenszwalb(image, **FELZENSZWALB), c)
        writer.write(i, {"image": image, "mask": mask},
                     {"caption": rec.get("caption", rec["prompt"]), "prompt": rec["prompt"],
                      "classes": [f"segment {j}" for j in range(1, c + 1) if (mask == j).any()], "has_classes": True,
                      "source": f"{src}:{i}"})
    return out


def encoder_variant(kind: str, base: str, folder: Path, steps: int) -> Path:
    """Tab. 6b's encoders, shaped like the Dinov2Model folder `base`: "mae" pretrained for `steps` steps by
    toy/pretrain.py's masked-patch objective on toy train scenes, "random" left at its initialisation (seed 0).
    Made once per folder (done.json marks a finished one). Returns the encoder's folder."""
    from transformers import Dinov2Config, Dinov2Model
    from toy import models, pretrain
    out = folder / kind
    if (out / "done.json").exists():
        return out / "encoder"
    out.mkdir(parents=True, exist_ok=True)
    cfg = Dinov2Config.from_pretrained(base)
    if kind == "random":
        torch.manual_seed(0)
        models.save_atomic(Dinov2Model(cfg), out / "encoder")
    elif kind == "mae":
        sizes = replace(models.ModelSizes(), patch=cfg.patch_size, enc_hidden=cfg.hidden_size,
                        enc_layers=cfg.num_hidden_layers, enc_heads=cfg.num_attention_heads)
        print(f"[tables] MAE encoder: {steps} steps (python -m toy.pretrain --stage encoder --encoder-objective mae "
              f"--max-steps {steps} --out {out})", flush=True)
        pretrain.train_encoder(out, sizes, pretrain.TrainConfig(batch_size=32, lr=1e-3, max_steps=steps,
                                                                minutes=10 ** 6), resume=False, objective="mae")
    else:
        raise ValueError(f"encoder kind must be 'mae' or 'random', got {kind!r}")
    (out / "done.json").write_text(json.dumps({"kind": kind, "steps": steps if kind == "mae" else 0, "base": base}))
    return out / "encoder"
