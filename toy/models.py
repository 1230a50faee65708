"""The toy world's stand-in models: builders, saving and loading (no paper section; docs/design.md §7).

GLASS loads Stable Diffusion and DINOv2 from the hub; the toy preset loads small models of the same classes from
`toy_models/`, so only the path differs:

    toy_models/sd/        a diffusers Stable Diffusion pipeline folder (StableDiffusionPipeline.from_pretrained):
                          vae/ AutoencoderKL 64 px → 16×16×4 latents, text_encoder/ CLIPTextModel (frozen random
                          init), tokenizer/ CLIPTokenizer over the world's words, unet/ UNet2DConditionModel with
                          cross-attention at 16×16 and 8×8, scheduler/ DDPM (scaled-linear betas, ε-prediction)
    toy_models/encoder/   a transformers Dinov2Model (patch 4 → 16×16 tokens at 64 px)
    toy_models/eval_classifier/   an evaluation-only multi-label CNN (which classes are in an image)

`toy/pretrain.py` trains them; `toy/report.py` measures them. Checked by tests/test_toy_pretrain.py.
"""
from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from glass import PRESETS as GLASS_PRESETS
from toy import world
from toy.world import CLASSES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "toy_models"


# ---------------------------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class ModelSizes:
    """Sizes of the toy models. `tiny()` gives the sizes the tests use."""
    vae_channels: tuple = (32, 64, 64)  # three blocks: 64 px → 16×16 latents
    vae_groups: int = 32
    text_hidden: int = 128
    text_layers: int = 3
    text_heads: int = 4
    max_tokens: int = 64  # longest prompt, in tokens, including BOS/EOS (the longest toy prompt has 47)
    unet_channels: tuple = (64, 128)  # cross-attention blocks at 16×16 and 8×8
    unet_layers: int = 1
    unet_heads: int = 4
    unet_groups: int = 32
    enc_hidden: int = 128
    enc_layers: int = 4
    enc_heads: int = 4
    patch: int = 4  # 64 px / 4 = 16×16 tokens

    @staticmethod
    def tiny() -> "ModelSizes":
        return ModelSizes(vae_channels=(8, 8, 8), vae_groups=4, text_hidden=16, text_layers=1, text_heads=2,
                          unet_channels=(16, 16), unet_layers=1, unet_heads=2, unet_groups=8, enc_hidden=16,
                          enc_layers=1, enc_heads=2)



# ---------------------------------------------------------------------------------------------------------------
# tokenizer and model builders
# ---------------------------------------------------------------------------------------------------------------

def _bytes_alphabet() -> list:
    """The 256 printable stand-ins of byte-level BPE (the GPT-2 / CLIP byte-to-unicode table)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def world_words() -> list:
    """Every word the world's captions and prompts use (one whole-word token each)."""
    return world.caption_words()


def _bpe(symbols: list, ranks: dict) -> list:
    """CLIP's byte-pair encoding of one word: merge the lowest-ranked adjacent pair (every occurrence) until no pair
    has a rank."""
    while len(symbols) > 1:
        pair = min(zip(symbols, symbols[1:]), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        merged, i = [], 0
        while i < len(symbols):
            if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == pair:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def build_tokenizer(max_tokens: int):
    """A CLIPTokenizer whose byte-level BPE has one merged token per world word (other text falls back to bytes).

    Each word's merges are added after running BPE on it with the merges so far: its pieces are joined left to
    right by new, higher-ranked merges. So a word never stops half-way on another word's merge, and words added
    earlier stay whole (their own merges always rank lower than the new ones)."""
    from transformers import CLIPTokenizer

    alphabet = _bytes_alphabet()
    vocab: dict = {}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    ranks: dict = {}  # (left, right) → rank
    for word in world_words():
        pieces = _bpe(list(word[:-1]) + [word[-1] + "</w>"], ranks)
        cur = pieces[0]
        for p in pieces[1:]:
            ranks.setdefault((cur, p), len(ranks))
            cur = cur + p
            vocab.setdefault(cur, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    merges = sorted(ranks, key=ranks.get)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens)


def build_vae(s: ModelSizes):
    from diffusers import AutoencoderKL
    n = len(s.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=s.vae_channels,
                         layers_per_block=1, latent_channels=4, norm_num_groups=s.vae_groups, sample_size=64)


def build_text_encoder(s: ModelSizes, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=s.text_hidden, intermediate_size=4 * s.text_hidden,
                         num_hidden_layers=s.text_layers, num_attention_heads=s.text_heads,
                         max_position_embeddings=s.max_tokens, bos_token_id=vocab_size - 2,
                         eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1)
    return CLIPTextModel(cfg)


def build_unet(s: ModelSizes):
    from diffusers import UNet2DConditionModel
    n = len(s.unet_channels)
    return UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=s.unet_layers,
                                block_out_channels=s.unet_channels, down_block_types=("CrossAttnDownBlock2D",) * n,
                                up_block_types=("CrossAttnUpBlock2D",) * n, cross_attention_dim=s.text_hidden,
                                attention_head_dim=s.unet_heads, norm_num_groups=s.unet_groups)


def build_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                         beta_end=0.012, prediction_type="epsilon", clip_sample=False, steps_offset=1)


def build_encoder(s: ModelSizes):
    from transformers import Dinov2Config, Dinov2Model
    cfg = Dinov2Config(image_size=64, patch_size=s.patch, hidden_size=s.enc_hidden, num_hidden_layers=s.enc_layers,
                       num_attention_heads=s.enc_heads, mlp_ratio=4)
    return Dinov2Model(cfg)


class EvalClassifier(nn.Module):
    """Evaluation-only multi-label CNN: image (B, 3, 64, 64) in [0, 1] → logits (B, C), one per class present."""

    def __init__(self, num_classes: int = len(CLASSES), width: int = 32):
        super().__init__()
        layers, c_in = [], 3
        for c in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax(dim=(2, 3)))  # global max pool: "is there one anywhere"


# ---------------------------------------------------------------------------------------------------------------
# saving and loading
# ---------------------------------------------------------------------------------------------------------------

def save_atomic(model, folder: Path) -> None:
    """save_pretrained into a temporary folder, then swap it in, so a crash never leaves a half-written model.

    diffusers models (VAE, UNet) are stored in float16 and diffusers loads them as float32 by default; transformers
    models are stored in float32, because transformers 5 loads a checkpoint in its stored dtype, and a float16 text
    encoder or Dinov2Model would break `StableDiffusionPipeline.from_pretrained(folder)` and float32 pixels."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    is_diffusers = type(model).__module__.startswith("diffusers")
    model = copy.deepcopy(model).to(torch.float16 if is_diffusers else torch.float32)
    # shards of at most 5 MB keep every committed file small; both libraries load sharded folders
    model.save_pretrained(tmp, safe_serialization=True, max_shard_size="5MB")
    config = tmp / "config.json"
    meta = json.loads(config.read_text())
    if meta.pop("_name_or_path", None) is not None:  # where it was loaded from on this machine: not part of a model
        config.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if folder.exists():
        old = folder.with_name(folder.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old)
    else:
        tmp.rename(folder)


def write_pipeline_index(sd_folder: Path) -> None:
    """model_index.json of a StableDiffusionPipeline without safety checker and feature extractor."""
    import diffusers
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
             "feature_extractor": [None, None], "safety_checker": [None, None], "requires_safety_checker": False,
             "scheduler": ["diffusers", "DDPMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "image_encoder": [None, None]}
    (sd_folder / "model_index.json").write_text(json.dumps(index, indent=2))


def load_vae(out: Path):
    from diffusers import AutoencoderKL
    return AutoencoderKL.from_pretrained(out / "sd" / "vae", dtype=torch.float32)


def load_classifier(out: Path) -> EvalClassifier:
    from safetensors.torch import load_file
    cfg = json.loads((out / "eval_classifier" / "config.json").read_text())
    model = EvalClassifier(cfg["num_classes"], cfg["width"])
    model.load_state_dict({k: v.float() for k, v in load_file(out / "eval_classifier" / "model.safetensors").items()})
    return model.eval()


class ToyCaptioner:
    """The toy world's stand-in for BLIP-2. A toy scene comes with its own caption (toy.world.make_caption), or with
    `labels=True` its ground-truth class names (GLASS†); an image without either (`pseudo_gt.py --images DIR`) is
    described from the classes the eval classifier sees in it."""

    def __init__(self, models: Path = DEFAULT_OUT, labels: bool = False):
        self.models, self.labels, self.classifier = models, labels, None

    @torch.no_grad()
    def __call__(self, items: list) -> list:
        captions = []
        for it in items:
            if "caption" in it:
                captions.append(it["labels"] if self.labels else it["caption"])
                continue
            if self.classifier is None:
                self.classifier = load_classifier(self.models)
            x = torch.from_numpy(np.array(it["image"].convert("RGB").resize((64, 64)))).permute(2, 0, 1)
            present = self.classifier(x[None].float() / 255.0)[0].sigmoid() > 0.5  # (C,) classes seen
            names = [c for c, yes in zip(CLASSES, present.tolist()) if yes]
            captions.append("a picture of " + " and ".join(f"a {n}" for n in names) if names else "a picture")
        return captions


def encoder_pixels(images: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] normalised as the toy preset feeds them to the encoder (glass.PRESETS["toy"],
    the one source of the toy encoder's normalisation)."""
    cfg = GLASS_PRESETS["toy"]
    mean = torch.tensor(cfg.encoder_mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.encoder_std, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def patch_features(enc, images: torch.Tensor) -> torch.Tensor:
    """Encoder patch tokens (B, N, D) of images (B, 3, 64, 64) in [0, 1] (CLS dropped)."""
    return enc(pixel_values=encoder_pixels(images)).last_hidden_state[:, 1:]


def sizes_of(enc) -> ModelSizes:
    c = enc.config
    return ModelSizes(enc_hidden=c.hidden_size, enc_layers=c.num_hidden_layers, enc_heads=c.num_attention_heads,
                      patch=c.patch_size)


def folder_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20
