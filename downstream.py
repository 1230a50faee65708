"""What slots are for (GLASS §5.2–5.3), measured on the toy world: images decoded from slots (Tab. 7), scenes
edited by removing or adding one object's slot (Fig. 6), and object properties read off the slots (Tab. 8).

    from downstream import generate, compose, generation_quality, slot_decoder, compositional_edits, property_probe
    generate(model, cond, generator, num_steps=25)         # images decoded from slot tokens (B, K, D_ctx)
    compose(model, cond[:1], remove=[2], seed=0)           # the same noise with and without one slot
    generation_quality(slot_decoder(model), "val", 256)    # PSNR, SSIM, Fréchet distance of decoded scenes
    compositional_edits(model, "val", 100)                 # remove / add one object's slot: success rates
    property_probe(model, train_scenes=1024, val_scenes=256)   # linear probes on slots matched to objects

`python -m experiments tables --only tab7 compose tab8` runs them for GLASS and its baselines. The judge of every
edit and the feature extractor of the Fréchet distance is the toy eval classifier (toy_models/eval_classifier,
trained WITH the world's labels; GLASS never sees it). Its penultimate features stand in for Inception's, so the
distance is "FD over eval-classifier features", not the paper's FID, and its scale does not compare with it.
Shape legend: B batch, K slots, D slot width, S image side, M matched objects.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent



# ---------------------------------------------------------------------------------------------------------------
# decoding slots into images (§5.2): the slots are the diffusion model's prompt
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def unconditional(model, cond: torch.Tensor) -> torch.Tensor:
    """The context of classifier-free guidance's unconditional branch for cond (B, K, D_ctx): the text
    encoder's embedding of the empty prompt, (B, T, D_ctx) (the authors' choice, `uncond="empty_prompt"`),
    or K all-zero slot tokens (`uncond="zeros"`)."""
    if model.config.uncond == "zeros":
        return torch.zeros_like(cond)
    if getattr(model, "_empty_prompt", None) is None:
        from transformers import CLIPTextModel, CLIPTokenizer
        from infra.loading import quiet_loading
        try:
            with quiet_loading():
                tokenizer = CLIPTokenizer.from_pretrained(model.config.sd, subfolder="tokenizer")
                text = CLIPTextModel.from_pretrained(model.config.sd, subfolder="text_encoder",
                                                     dtype=torch.float32)
        except OSError as e:
            raise ValueError(f"{model.config.sd} has no text encoder for the empty-prompt unconditional branch; "
                             f"use uncond='zeros'") from e
        ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length,
                        return_tensors="pt").input_ids
        model._empty_prompt = text(ids.to(text.device)).last_hidden_state  # (1, T, D_text)
        if model._empty_prompt.shape[-1] != cond.shape[-1]:
            raise ValueError(f"the text encoder's width {model._empty_prompt.shape[-1]} is not the UNet's context "
                             f"width {cond.shape[-1]}; use uncond='zeros'")
    return model._empty_prompt.to(cond).expand(cond.shape[0], -1, -1)

@torch.no_grad()
def generate(model, cond: torch.Tensor, generator: Optional[torch.Generator] = None, num_steps: int = 25,
             guidance_scale: float = 1.0) -> torch.Tensor:
    """Images (B, 3, S, S) in [0, 1] that a GLASS `model` decodes from slot tokens cond (B, K, D_ctx): the slots
    are the prompt.
    DDIM sampling as diffusers' StableDiffusionPipeline does it (the same noise from the same generator);
    with guidance > 1, ε = ε_uncond + g·(ε_cond − ε_uncond) with `unconditional`'s context."""
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor
    s = model.config.decoder_size
    sched = DDIMScheduler.from_config(model.scheduler.config)
    sched.set_timesteps(num_steps, device=cond.device)
    down = 2 ** (len(model.vae.config.block_out_channels) - 1)
    shape = (cond.shape[0], model.unet.config.in_channels, s // down, s // down)
    latents = randn_tensor(shape, generator=generator, device=cond.device, dtype=cond.dtype)
    latents = latents * sched.init_noise_sigma  # (B, 4, S/8, S/8)
    uncond = unconditional(model, cond) if guidance_scale > 1.0 else None
    for t in sched.timesteps:
        x = sched.scale_model_input(latents, t)
        pred = model.unet(x, t, encoder_hidden_states=cond).sample
        if uncond is not None:
            base = model.unet(x, t, encoder_hidden_states=uncond).sample
            pred = base + guidance_scale * (pred - base)  # classifier-free guidance
        latents = sched.step(pred, t, latents).prev_sample
    images = model.vae.decode(latents / model.vae.config.scaling_factor).sample  # (B, 3, S, S) in [-1, 1]
    return (images / 2 + 0.5).clamp(0, 1)

@torch.no_grad()
def compose(model, cond: torch.Tensor, remove: Optional[list] = None, add: Optional[torch.Tensor] = None,
            seed: int = 0, num_steps: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Compositional generation of one image: drop the slot tokens `remove` (indices) and/or append the
    tokens `add` (M, D_ctx) from another image. cond: (1, K, D_ctx). The original and the edit start from
    the same initial noise (same seed). Returns (original, edited), each (1, 3, S, S)."""
    if cond.dim() != 3 or cond.shape[0] != 1:
        raise ValueError(f"cond must have shape (1, K, D_ctx), got {tuple(cond.shape)}")
    keep = [k for k in range(cond.shape[1]) if k not in set(remove or [])]
    edited = cond[:, keep]
    if add is not None:
        edited = torch.cat([edited, add.reshape(1, -1, cond.shape[-1])], dim=1)  # (1, K', D_ctx)
    original = generate(model, cond, torch.Generator().manual_seed(seed), num_steps)
    edit = generate(model, edited, torch.Generator().manual_seed(seed), num_steps)
    return original, edit


# ---------------------------------------------------------------------------------------------------------------
# the judge: the toy eval classifier and its features
# ---------------------------------------------------------------------------------------------------------------

def eval_classifier(folder: Path = ROOT / "toy_models"):
    from toy.models import load_classifier
    return load_classifier(folder).eval().requires_grad_(False)


class ClassifierFeatures(nn.Module):
    """The eval classifier's penultimate features (global max pool of its last conv block), the feature extractor
    of torchmetrics' Fréchet distance here: images (B, 3, S, S) in [0, 1] → (B, num_features)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.head.in_features

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images.float()).amax(dim=(2, 3))


def frechet_metric(features):
    """torchmetrics' Fréchet distance, images as floats in [0, 1], over `features`: a module with `num_features`,
    "classifier" (the toy eval classifier's) or "inception" (Inception v3's 2048, the paper's FID: needs
    torch-fidelity and its weights, which the first use downloads)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    if features == "classifier":
        features = ClassifierFeatures(eval_classifier())
    elif features == "inception":
        try:
            return FrechetInceptionDistance(feature=2048, normalize=True)
        except (ModuleNotFoundError, OSError, RuntimeError) as e:
            raise RuntimeError(f"FID over Inception features is not available here ({e}); use "
                               f"features='classifier'") from e
    return FrechetInceptionDistance(feature=features, normalize=True)


def perceptual_metric():
    """torchmetrics' LPIPS (AlexNet), images in [0, 1]: needs torchvision and its weights (downloaded on first use)."""
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    try:
        return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
    except (ModuleNotFoundError, OSError, RuntimeError) as e:
        raise RuntimeError(f"LPIPS is not available here ({e}); leave lpips=False") from e


# ---------------------------------------------------------------------------------------------------------------
# conditional generation (Tab. 7)
# ---------------------------------------------------------------------------------------------------------------

def _scenes(split: str, indices) -> dict:
    from toy.world import ToyScenes
    ds = ToyScenes(split, length=max(indices) + 1)
    items = [ds[i] for i in indices]
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "instance", "semantic")}


def _prior(model, batch: dict):
    """Ground-truth instance maps for the Tab. 5 baselines only; None for GLASS and the others."""
    return batch["instance"] if model.config.slot_prior != "none" else None


def slot_decoder(model, seed: int = 0, num_steps: int = 25) -> Callable:
    """decode(batch, b) → the batch's scenes regenerated from their slots (DDIM, `num_steps`). The initial noise of
    batch b comes from a generator seeded with seed + b: two models see the same noise."""
    @torch.no_grad()
    def decode(batch: dict, b: int) -> torch.Tensor:
        model.eval()
        cond = model.encode(batch["image"], instance=_prior(model, batch)).cond  # (B, K, D_ctx)
        return generate(model, cond, torch.Generator().manual_seed(seed + b), num_steps)
    return decode


def unrelated_scenes(split: str, offset: int) -> Callable:
    """The floor of Tab. 7: "decode" each scene i as the unrelated real scene offset + i."""
    def decode(batch: dict, b: int) -> torch.Tensor:
        return _scenes(split, [offset + int(i) for i in batch["index"]])["image"]
    return decode


def generation_quality(decode: Callable, split: str, n: int, batch_size: int = 32, features="classifier",
                       lpips: bool = False) -> dict:
    """PSNR and SSIM (torchmetrics, Gaussian window 11, σ 1.5; per image, then the mean) between the first n scenes
    of a split and decode(batch, b) → images (B, 3, S, S) in [0, 1], and the Fréchet distance between the two sets
    over `features` (see frechet_metric); LPIPS too when `lpips`. Scenes are resized to the decoded side when they
    differ. A feature extractor that is not available raises a RuntimeError that says so."""
    import metrics
    from torchmetrics.functional.image import structural_similarity_index_measure
    fd = frechet_metric(features)
    perceptual = perceptual_metric() if lpips else None
    psnr, ssim = [], []
    for b, s in enumerate(range(0, n, batch_size)):
        batch = _scenes(split, range(s, min(n, s + batch_size)))
        batch["index"] = torch.arange(s, min(n, s + batch_size))
        decoded = decode(batch, b).float().clamp(0, 1)  # (B, 3, S, S)
        real = batch["image"]
        if real.shape[-1] != decoded.shape[-1]:
            real = F.interpolate(real, size=decoded.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
        psnr.append(metrics.psnr(decoded, real))
        ssim.append(structural_similarity_index_measure(decoded, real, data_range=1.0, reduction="none"))
        fd.update(real, real=True)
        fd.update(decoded, real=False)
        if perceptual is not None:
            perceptual.update(decoded, real)
    out = {"psnr": float(torch.cat(psnr).mean()), "ssim": float(torch.cat(ssim).mean()), "fd": float(fd.compute()),
           "images": n, "fd_features": features if isinstance(features, str) else type(features).__name__}
    return {**out, "lpips": float(perceptual.compute())} if perceptual is not None else out


# ---------------------------------------------------------------------------------------------------------------
# objects ↔ slots
# ---------------------------------------------------------------------------------------------------------------

class ObjectSlots(NamedTuple):
    slots: torch.Tensor  # (M, D) the slot matched to each object
    slot_index: torch.Tensor  # (M,) which slot of its image
    image: torch.Tensor  # (M,) which image of the batch
    object_id: torch.Tensor  # (M,) its instance id
    classes: torch.Tensor  # (M,) its class, 0..C−1
    centres: torch.Tensor  # (M, 2) its box centre (x, y) in [0, 1]
    iou: torch.Tensor  # (M,) IoU of the slot's mask with the object's


def match_objects(slot_ids: torch.Tensor, instance: torch.Tensor, semantic: torch.Tensor, slots: torch.Tensor
                  ) -> ObjectSlots:
    """One-to-one matching of slots to ground-truth objects per image, maximising the total mask IoU (Hungarian).
    slot_ids (B, S, S) argmax slot per pixel, instance / semantic (B, S, S), slots (B, K, D)."""
    from experiments.slot_priors import mask_box
    from matching import hungarian_match
    out = {k: [] for k in ObjectSlots._fields}
    k = slots.shape[1]
    for i in range(slot_ids.shape[0]):
        objects = [int(v) for v in instance[i].unique() if v > 0]
        if not objects:
            continue
        pred = F.one_hot(slot_ids[i], k).permute(2, 0, 1).bool()  # (K, S, S)
        true = torch.stack([instance[i] == o for o in objects])  # (O, S, S)
        inter = (pred[:, None] & true[None]).flatten(2).sum(-1).float()
        union = (pred[:, None] | true[None]).flatten(2).sum(-1).float()
        iou = inter / union.clamp(min=1)  # (K, O)
        match = hungarian_match(iou)
        for s, o in zip(match.slot_idx.tolist(), match.segment_idx.tolist()):
            box = mask_box(true[o])  # (x0, y0, x1, y1)
            out["slots"].append(slots[i, s])
            out["slot_index"].append(s)
            out["image"].append(i)
            out["object_id"].append(objects[o])
            out["classes"].append(int(semantic[i][true[o]].mode().values) - 1)
            out["centres"].append((box[:2] + box[2:]) / 2)
            out["iou"].append(iou[s, o])
    if not out["slots"]:
        raise ValueError("no objects in these scenes")
    return ObjectSlots(slots=torch.stack(out["slots"]), centres=torch.stack(out["centres"]),
                       iou=torch.stack(out["iou"]),
                       **{f: torch.tensor(out[f]) for f in ("slot_index", "image", "object_id", "classes")})


@torch.no_grad()
def object_slots(model, split: str, n: int, batch_size: int = 32) -> ObjectSlots:
    """`match_objects` over the first n scenes of a split (image indices count across batches)."""
    from glass import slot_labels
    model.eval()
    parts = []
    for s in range(0, n, batch_size):
        batch = _scenes(split, range(s, min(n, s + batch_size)))
        enc = model.encode(batch["image"], instance=_prior(model, batch))
        m = match_objects(slot_labels(enc.masks, batch["image"].shape[-1]), batch["instance"], batch["semantic"],
                          enc.slots)
        parts.append(m._replace(image=m.image + s))
    return ObjectSlots(*(torch.cat(f) for f in zip(*parts)))


# ---------------------------------------------------------------------------------------------------------------
# property prediction (Tab. 8)
# ---------------------------------------------------------------------------------------------------------------

def fit_probes(x_train: np.ndarray, cls_train: np.ndarray, ctr_train: np.ndarray, x_val: np.ndarray,
               cls_val: np.ndarray, ctr_val: np.ndarray) -> dict:
    """Linear probes (scikit-learn, on standardised features): logistic regression for the class (top-1 accuracy)
    and ridge regression for the box centre (MSE over both coordinates), with the floors of a probe that ignores
    the features (the majority class, the mean centre)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, cls_train)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x_train, ctr_train)
    majority = np.bincount(cls_train).argmax()
    return {"class_acc": float((clf.predict(x_val) == cls_val).mean()),
            "centre_mse": float(((reg.predict(x_val) - ctr_val) ** 2).mean()),
            "class_acc_floor": float((cls_val == majority).mean()),
            "centre_mse_floor": float(((ctr_train.mean(0) - ctr_val) ** 2).mean()),
            "objects_train": len(x_train), "objects_val": len(x_val)}


def property_probe(model, train_scenes: int, val_scenes: int) -> dict:
    """Slots matched to ground-truth objects on train-split scenes train the probes; val scenes score them."""
    tr, va = object_slots(model, "train", train_scenes), object_slots(model, "val", val_scenes)
    out = fit_probes(tr.slots.numpy(), tr.classes.numpy(), tr.centres.numpy(), va.slots.numpy(), va.classes.numpy(),
                     va.centres.numpy())
    return {**out, "match_iou_val": float(va.iou.mean())}


# ---------------------------------------------------------------------------------------------------------------
# compositional generation (Fig. 6), measured
# ---------------------------------------------------------------------------------------------------------------

EDIT_KEYS = ("remove_success", "remove_kept", "remove_psnr_outside", "add_success", "add_kept", "slot_iou")


class Edits(NamedTuple):
    rates: dict  # the numbers (see compositional_edits)
    examples: list  # (kind, class name, scene (3, S, S), decoded original, decoded edit) for a figure


def _masked_psnr(a: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> float:
    """PSNR of images (3, S, S) in [0, 1] over the pixels where keep (S, S) is True."""
    mse = ((a - b) ** 2).mean(0)[keep].mean().clamp(min=1e-12)
    return float(10 * torch.log10(1 / mse))


@torch.no_grad()
def compositional_edits(model, split: str, n: int, seed: int = 0, num_steps: int = 25, choice: str = "matched",
                        threshold: float = 0.5, num_examples: int = 4) -> Edits:
    """n removals and n additions on scenes 0, 1, … of a split, judged by the eval classifier (a class is shown
    when its sigmoid exceeds `threshold`). Original and edit start from the same noise (seed + scene).

    Removal: the slot matched (by mask IoU) to the scene's first object whose class appears once in the scene is
    dropped. Success: the class was shown in the decoded original and is not in the edit; kept: every other class
    shown in the original still is; PSNR outside: original vs edit over the pixels outside that object.
    Addition: the slot matched to the first object of scene n + i whose class scene i lacks is appended. Success:
    the class was not shown in the original and is in the edit; kept as above. Rates count only the edits whose
    original qualifies (`*_qualified` of `*_edits`). `choice` "random" takes a random slot instead: the chance floor.
    """
    from glass import slot_labels
    from toy.world import CLASSES
    if choice not in ("matched", "random"):
        raise ValueError(f"choice must be 'matched' or 'random', got {choice!r}")
    model.eval()
    clf = eval_classifier()
    rng = torch.Generator().manual_seed(seed)

    def encode(idx: int):
        batch = _scenes(split, [idx])
        enc = model.encode(batch["image"], instance=_prior(model, batch))
        labels = slot_labels(enc.masks, batch["image"].shape[-1])
        return batch, enc, match_objects(labels, batch["instance"], batch["semantic"], enc.slots)

    def pick(m: ObjectSlots, j: int, k: int) -> int:
        return int(m.slot_index[j]) if choice == "matched" else int(torch.randint(k, (1,), generator=rng))

    def shown(images: torch.Tensor) -> set:
        return set(torch.nonzero(clf(images)[0].sigmoid() > threshold).flatten().tolist())

    counts = {k: [] for k in ("remove_success", "remove_kept", "remove_psnr_outside", "add_success", "add_kept",
                              "slot_iou")}
    made = {"remove": 0, "add": 0}
    examples = []
    i = 0
    while min(made.values()) < n:
        if i > 20 * n:
            raise ValueError(f"found only {made} qualifying scenes among {i} of {split}")
        batch, enc, m = encode(i)
        cond = enc.cond  # (1, K, D_ctx)
        k = cond.shape[1]
        original = generate(model, cond, torch.Generator().manual_seed(seed + i), num_steps)
        before = shown(original)
        classes = m.classes.tolist()
        unique = [j for j, c in enumerate(classes) if classes.count(c) == 1]
        if made["remove"] < n and unique:
            j = unique[0]
            s, c = pick(m, j, k), classes[j]
            keep = [t for t in range(k) if t != s]
            edit = generate(model, cond[:, keep], torch.Generator().manual_seed(seed + i), num_steps)
            after = shown(edit)
            made["remove"] += 1
            if c in before:
                counts["remove_success"].append(c not in after)
                counts["remove_kept"].append((before - {c}) <= after)
            outside = batch["instance"][0] != int(m.object_id[j])
            counts["remove_psnr_outside"].append(_masked_psnr(original[0], edit[0], outside))
            counts["slot_iou"].append(float(m.iou[j]))
            if len(examples) < num_examples:
                examples.append(("remove", CLASSES[c], batch["image"][0], original[0], edit[0]))
        if made["add"] < n:
            d_batch, d_enc, dm = encode(n + i)
            new = [j for j, c in enumerate(dm.classes.tolist()) if c not in classes]
            if new:
                j = new[0]
                s, c = pick(dm, j, k), int(dm.classes[j])
                edited = torch.cat([cond, d_enc.cond[:, s:s + 1]], dim=1)  # (1, K + 1, D_ctx)
                edit = generate(model, edited, torch.Generator().manual_seed(seed + i), num_steps)
                after = shown(edit)
                made["add"] += 1
                if c not in before:
                    counts["add_success"].append(c in after)
                    counts["add_kept"].append(before <= after)
                if len(examples) < 2 * num_examples and sum(e[0] == "add" for e in examples) < num_examples:
                    examples.append(("add", CLASSES[c], batch["image"][0], original[0], edit[0]))
        i += 1
    rates = {key: float(np.mean(v)) if v else float("nan") for key, v in counts.items()}
    rates.update(remove_edits=made["remove"], remove_qualified=len(counts["remove_success"]), add_edits=made["add"],
                 add_qualified=len(counts["add_success"]), scenes=i, choice=choice)
    return Edits(rates=rates, examples=examples)


def plot_edits(examples: list, path, title: str):
    """A column per edit: the scene, its decoding from all slots, the decoding after the edit. Saved to `path`, or
    returned as a figure when `path` is None (notebooks)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, len(examples), figsize=(1.7 * len(examples), 5.4), squeeze=False)
    for col, (kind, name, scene, original, edit) in enumerate(examples):
        for row, img in enumerate((scene, original, edit)):
            axes[row, col].imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            axes[row, col].axis("off")
        axes[0, col].set_title(f"{kind} {name}", fontsize=8)
    for row, label in enumerate(("scene", "from its slots", "edited slots")):
        axes[row, 0].text(-4, 32, label, fontsize=7, rotation=90, ha="right", va="center")
    fig.suptitle(title, fontsize=8)
    if path is None:
        return fig
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
