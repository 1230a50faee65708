"""Train the toy world's pretrained models: the stand-ins for Stable Diffusion and DINOv2 (docs/design.md §7).

The models and their folders are described in toy/models.py; the shipped encoder is pretrained WITH the
world's labels to stand in for DINOv2's instance-aware tokens (GLASS itself never sees the labels).

Objectives:
    VAE       MSE reconstruction + 1e-6·KL (the SD recipe without the GAN and perceptual terms)
    encoder   `--encoder-objective part` (the default, the shipped encoder): supervised contrast of the tokens
              within each image over (instance, part) ids (SupCon: tokens of the same part of the same object are
              positives; other parts, other objects and the background are negatives; cosine, τ 0.1) plus
              per-token class cross-entropy through a linear head. It uses the world's instance, part and class
              labels, as a stand-in for what DINOv2 gives GLASS: tokens that know their class and their part and
              differ between instances. `mae`: masked-patch prediction with block masks (Tab. 6b's other encoder).
              Unshipped objectives: docs/lab_notes/binding.md §2, §9 (code at c4acab3). Token pieces: toy/tokens.py.
    UNet      ε-prediction denoising with 10 % empty prompts (classifier-free guidance), EMA weights, plus an
              auxiliary *alignment loss* (`--align-weight`, docs/design.md §7): at t < 800 the head-averaged
              cross-attention of each class-name token is pulled (MSE) towards that class's region at the layer's
              resolution. It stands in for what web-scale pretraining gives SD: class words that localise. The
              GLASS pipeline downstream is unchanged; `python -m toy.report pseudo-masks` measures localisation.
Prompts during UNet training: "caption; class names" (the Dataset Diffusion format GLASS generates with),
the class names alone (the probe prompt of pseudo_gt.py), the caption alone, or empty.

Commands (each stage saves as it goes and `--resume` continues from the saved weights):
    python -m toy.pretrain --stage vae --minutes 25
    python -m toy.pretrain --stage encoder --max-steps 1057 --minutes 30
    python -m toy.pretrain --stage unet --minutes 60          # needs the VAE
    python -m toy.pretrain --stage classifier --minutes 3
Their quality report: `python -m toy.report models`. Checked by tests/test_toy_pretrain.py.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from toy.models import (DEFAULT_OUT, EvalClassifier, ModelSizes, build_encoder, build_scheduler, build_text_encoder,
                        build_tokenizer, build_unet, build_vae, encoder_pixels, load_vae, patch_features, save_atomic,
                        write_pipeline_index)
from toy.tokens import MAEDecoder, block_mask, instance_contrast, part_ids, patch_labels, patchify
from toy.world import CLASSES, MAX_OBJECTS, ToyScenes


# ---------------------------------------------------------------------------------------------------------------
# config and logs
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    batch_size: int = 32
    lr: float = 5e-4
    minutes: float = 20.0  # wall-clock budget of one stage
    max_steps: int = 10 ** 9  # or a step budget (tests)
    save_every_s: float = 300.0
    log_every: int = 50
    align_weight: float = 1.0  # weight of the cross-attention alignment loss (0 = plain denoising)
    align_max_t: int = 800  # alignment only at timesteps below this
    empty_prompt_prob: float = 0.1
    ema_decay: float = 0.998
    latent_pool: int = 12000  # training scenes whose VAE latents are cached for UNet training
    seed: int = 0


def log_info(out: Path, key: str, info: dict) -> None:
    """Write `info` into out/training_log.json under `key` (what each stage ran, for the README)."""
    path = out / "training_log.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = info
    path.write_text(json.dumps(data, indent=2))


def log_run(out: Path, key: str, resume: bool, run: dict) -> None:
    """Record one training run of a stage: a resumed stage appends to the runs before it, and the totals add up.
    `run` must carry its start time ("started"): a run logged again (periodic saves) replaces its own entry."""
    path = out / "training_log.json"
    before = json.loads(path.read_text()).get(key, {}) if resume and path.exists() else {}
    runs = [r for r in before.get("runs", []) if r.get("started") != run["started"]] + [run]
    log_info(out, key, {"steps": sum(r["steps"] for r in runs), "seconds": round(sum(r["seconds"] for r in runs)),
                        "runs": runs})


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------

def scene_batches(batch_size: int, seed: int, workers: int = 0):
    """An endless stream of training-scene batches, in a worker process so rendering overlaps training."""
    start = seed * 10_000_000
    loader = torch.utils.data.DataLoader(ToyScenes("train", length=10_000_000, offset=start), batch_size=batch_size,
                                         shuffle=False, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    while True:
        yield from loader


def make_prompt(kind: str, caption: str, labels: str) -> tuple[str, str]:
    """Returns (prompt, prefix before the class names) for one of the training prompt kinds."""
    if kind == "full":
        prefix = caption + " ;"
        return f"{prefix} {labels}", prefix
    if kind == "labels":
        return labels, ""
    if kind == "caption":
        return caption, None
    return "", None


def class_token_positions(tokenizer, prefix: str, names: list) -> list:
    """Token positions (after BOS) of each class name that follows `prefix` in a prompt; a name split into several
    tokens gives several positions (callers average them)."""
    pos = 1 + len(tokenizer(prefix, add_special_tokens=False).input_ids) if prefix else 1
    out = []
    for name in names:
        n = len(tokenizer(name, add_special_tokens=False).input_ids)
        out.append(list(range(pos, pos + n)))
        pos += n
    return out


# ---------------------------------------------------------------------------------------------------------------
# stage: VAE
# ---------------------------------------------------------------------------------------------------------------

def train_vae(out: Path, sizes: ModelSizes, cfg: TrainConfig, resume: bool) -> None:
    torch.manual_seed(cfg.seed)
    folder = out / "sd" / "vae"
    vae = load_vae(out) if resume and folder.exists() else build_vae(sizes)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    data = scene_batches(cfg.batch_size, cfg.seed + (1 if resume else 0), workers=1 if cfg.max_steps > 100 else 0)
    t0 = last_save = time.time()
    step, ema_psnr = 0, 0.0
    bar = tqdm(desc="vae", unit="step", mininterval=5)
    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        x = next(data)["image"] * 2 - 1  # (B, 3, 64, 64) in [-1, 1]
        lr = cfg.lr * min(1.0, (step + 1) / 100)  # warm-up, then constant
        for g in opt.param_groups:
            g["lr"] = lr
        post = vae.encode(x).latent_dist
        recon = vae.decode(post.sample()).sample
        mse = F.mse_loss(recon, x)
        kl = post.kl().mean() / (4 * 16 * 16)
        loss = mse + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))  # range 2 in [-1, 1]
        ema_psnr = psnr if step == 1 else 0.98 * ema_psnr + 0.02 * psnr
        if step % cfg.log_every == 0:
            print(f"vae step {step} mse {mse.item():.5f} psnr~{ema_psnr:.2f} dB kl {kl.item():.1f} "
                  f"{time.time() - t0:.0f}s", flush=True)
        if time.time() - last_save > cfg.save_every_s:
            _finish_vae(vae, out, sizes, step, time.time() - t0, resume)
            last_save = time.time()
    bar.close()
    _finish_vae(vae, out, sizes, step, time.time() - t0, resume)


@torch.no_grad()
def _finish_vae(vae, out: Path, sizes: ModelSizes, step: int, seconds: float, resume: bool) -> None:
    vae.eval()
    x = torch.stack([ToyScenes("train", length=256, offset=9_000_000)[i]["image"] for i in range(256)]) * 2 - 1
    z = torch.cat([vae.encode(x[i:i + 64]).latent_dist.mean for i in range(0, 256, 64)])
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))  # unit-variance latents, as SD's 0.18215
    vae.train()
    (out / "sd").mkdir(parents=True, exist_ok=True)
    save_atomic(vae, out / "sd" / "vae")
    log_info(out, "vae", {"steps": step, "seconds": round(seconds), "resumed": resume,
                          "channels": list(sizes.vae_channels)})


# ---------------------------------------------------------------------------------------------------------------
# stage: encoder (its objectives' pieces: toy/tokens.py)
# ---------------------------------------------------------------------------------------------------------------

def train_encoder(out: Path, sizes: ModelSizes, cfg: TrainConfig, resume: bool, objective: str = "part",
                  mask_ratio: float = 0.6) -> None:
    """objective "part": labelled within-image token contrast over (instance, part) ids + class head (the default,
    the shipped stand-in); "mae": masked-patch prediction (Tab. 6b's other encoder)."""
    if objective not in ("part", "mae"):
        raise ValueError(f"encoder objective must be 'part' or 'mae', got {objective!r}")
    from transformers import Dinov2Model
    torch.manual_seed(cfg.seed)
    folder = out / "encoder"
    enc = Dinov2Model.from_pretrained(folder, dtype=torch.float32) if resume and folder.exists() \
        else build_encoder(sizes)
    p = enc.config.patch_size
    side = 64 // p
    if objective == "part":
        head = nn.Linear(enc.config.hidden_size, len(CLASSES) + 1)  # per-token class, beside the contrast
    else:
        head = MAEDecoder(enc.config.hidden_size, side * side, 3 * p * p)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.05)
    data = scene_batches(cfg.batch_size, cfg.seed + 7, workers=1 if cfg.max_steps > 100 else 0)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = last_save = time.time()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    step = 0
    bar = tqdm(desc="encoder", unit="step", mininterval=5)
    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        lr = cfg.lr * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        if objective == "part":
            batch = next(data)
            x, inst, sem, part = batch["image"], batch["instance"], batch["semantic"], batch["part"]
            if torch.rand((), generator=gen) < 0.5:
                x, inst, sem, part = x.flip(-1), inst.flip(-1), sem.flip(-1), part.flip(-1)
            tokens = patch_features(enc, x)  # (B, N, D)
            ids = part_ids(inst, part, p, MAX_OBJECTS)  # (B, N) (instance, part) id of each patch
            cls = patch_labels(sem, p)  # (B, N) class of each patch
            loss = instance_contrast(tokens, ids) \
                + F.cross_entropy(head(tokens).flatten(0, 1), cls.flatten())
        else:
            x = next(data)["image"]
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
            masked = block_mask(x.shape[0], side, mask_ratio, gen)  # (B, N)
            tokens = enc(pixel_values=encoder_pixels(x), bool_masked_pos=masked).last_hidden_state[:, 1:]  # (B, N, D)
            target = patchify(x, p)  # (B, N, 3p²)
            target = (target - target.mean(-1, keepdim=True)) / (target.std(-1, keepdim=True) + 1e-3)  # per patch
            loss = F.mse_loss(head(tokens, masked)[masked], target[masked])  # only the hidden patches
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            print(f"encoder step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if time.time() - last_save > cfg.save_every_s:
            save_atomic(enc, folder)
            last_save = time.time()
    bar.close()
    save_atomic(enc, folder)
    about = {"mae": f"masked-patch prediction, MAE decoder, block masks {mask_ratio}",
             "part": "WITH the world's labels (a stand-in for DINOv2's tokens that know class and part and differ "
                     "between instances): supervised contrast of the tokens within each image over (instance, part) "
                     "ids (same part of the same instance positive, τ 0.1) + per-token class cross-entropy through a "
                     "linear head"}[objective]
    log_run(out, "encoder", resume, {"started": started, "steps": step, "seconds": round(time.time() - t0),
                                     "lr": cfg.lr, "objective": about})


# ---------------------------------------------------------------------------------------------------------------
# stage: UNet (text-conditioned denoiser with the alignment loss)
# ---------------------------------------------------------------------------------------------------------------

class CrossAttnProbe:
    """An attention processor for cross-attention layers that keeps the (differentiable) attention probabilities
    of the current forward pass: `store[name]` = (B, heads, HW, T)."""

    def __init__(self, name: str, store: dict):
        self.name, self.store = name, store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        b = hidden_states.shape[0]
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B·heads, HW, d)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        key = attn.head_to_batch_dim(attn.to_k(context))  # (B·heads, T, d)
        value = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(query, key, attention_mask)  # (B·heads, HW, T), softmax over tokens
        self.store[self.name] = probs.reshape(b, attn.heads, *probs.shape[1:])
        out = attn.batch_to_head_dim(torch.bmm(probs, value))  # (B, HW, heads·d)
        out = attn.to_out[1](attn.to_out[0](out))
        return out


def install_probes(unet) -> dict:
    from diffusers.models.attention_processor import AttnProcessor2_0
    store: dict = {}
    procs = {}
    for name in unet.attn_processors:
        procs[name] = CrossAttnProbe(name, store) if name.endswith("attn2.processor") else AttnProcessor2_0()
    unet.set_attn_processor(procs)
    return store


def alignment_loss(store: dict, positions: list, class_masks: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """MSE between each named class token's head-averaged cross-attention and the class's region.

    positions: per sample a list of (class index, [token positions]); class_masks: (B, C, 16, 16) area fractions;
    use: (B,) bool, which samples take part (t below the threshold and a prompt with class names).
    """
    terms = []
    for probs in store.values():
        b, _, hw, _ = probs.shape
        side = int(math.isqrt(hw))
        target = F.adaptive_avg_pool2d(class_masks, side).flatten(2)  # (B, C, HW)
        attn = probs.mean(dim=1)  # (B, HW, T), heads averaged
        for i in range(b):
            if not use[i]:
                continue
            for c, pos in positions[i]:
                pos = [p for p in pos if p < attn.shape[-1]]  # a truncated prompt loses its last names
                if pos:
                    terms.append(F.mse_loss(attn[i, :, pos].mean(-1), target[i, c]))
    if not terms:
        return next(iter(store.values())).sum() * 0.0
    return torch.stack(terms).mean()


@torch.no_grad()
def cache_latents(vae, n: int, batch: int = 64, offset: int = 0) -> dict:
    """VAE latents (posterior means × scaling factor) and 16×16 class-area maps of `n` training scenes."""
    ds = ToyScenes("train", length=n, offset=offset)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=0)
    lat, masks, captions, labels = [], [], [], []
    for item in tqdm(loader, desc="caching latents", mininterval=5):
        lat.append(vae.encode(item["image"] * 2 - 1).latent_dist.mean * vae.config.scaling_factor)  # (b, 4, 16, 16)
        onehot = F.one_hot(item["semantic"], len(CLASSES) + 1)[..., 1:].permute(0, 3, 1, 2).float()  # (b, C, 64, 64)
        masks.append(F.avg_pool2d(onehot, 4).half())  # (b, C, 16, 16) share of each latent cell per class
        captions += item["caption"]
        labels += item["labels"]
    return {"latents": torch.cat(lat), "masks": torch.cat(masks), "captions": captions, "labels": labels}


def train_unet(out: Path, sizes: ModelSizes, cfg: TrainConfig, resume: bool) -> None:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    torch.manual_seed(cfg.seed)
    sd = out / "sd"
    vae = load_vae(out).eval()
    if (sd / "tokenizer").exists() and (sd / "text_encoder").exists():
        tokenizer = CLIPTokenizer.from_pretrained(sd / "tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(sd / "text_encoder", dtype=torch.float32)
    else:  # the text encoder is a frozen random init (docs/design.md §7: a trained one behaved the same)
        tokenizer = build_tokenizer(sizes.max_tokens)
        text_encoder = build_text_encoder(sizes, len(tokenizer))
        tokenizer.save_pretrained(sd / "tokenizer")
        save_atomic(text_encoder, sd / "text_encoder")
    text_encoder.requires_grad_(False).eval()
    unet = UNet2DConditionModel.from_pretrained(sd / "unet", dtype=torch.float32) \
        if resume and (sd / "unet").exists() else build_unet(sizes)
    scheduler = build_scheduler()
    scheduler.save_pretrained(sd / "scheduler")
    write_pipeline_index(sd)
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    store = install_probes(unet)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.01)
    pool = cache_latents(vae, cfg.latent_pool)
    n_pool = pool["latents"].shape[0]
    gen = torch.Generator().manual_seed(cfg.seed)
    alphas = scheduler.alphas_cumprod
    t0 = last_save = time.time()
    step = 0
    started = time.strftime("%Y-%m-%d %H:%M:%S")

    def log() -> None:
        log_run(out, "unet", resume, {"started": started, "steps": step, "seconds": round(time.time() - t0),
                                      "lr": cfg.lr, "batch_size": cfg.batch_size, "align_weight": cfg.align_weight})

    bar = tqdm(desc="unet", unit="step", mininterval=5)
    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        idx = torch.randint(0, n_pool, (cfg.batch_size,), generator=gen)
        z0 = pool["latents"][idx]  # (B, 4, 16, 16)
        masks = pool["masks"][idx].float()  # (B, C, 16, 16)
        prompts, positions = [], []
        for i in idx.tolist():
            r = float(torch.rand((), generator=gen))
            kind = "empty" if r < cfg.empty_prompt_prob else ("full" if r < 0.55 else ("labels" if r < 0.8 else "caption"))
            prompt, prefix = make_prompt(kind, pool["captions"][i], pool["labels"][i])
            names = pool["labels"][i].split()
            prompts.append(prompt)
            positions.append([] if prefix is None else
                             list(zip([CLASSES.index(c) for c in names], class_token_positions(tokenizer, prefix, names))))
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        with torch.no_grad():
            context = text_encoder(ids).last_hidden_state  # (B, T, D_text)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise  # forward diffusion q(z_t | z_0)
        lr = cfg.lr * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        pred = unet(zt, t, encoder_hidden_states=context).sample
        denoise = F.mse_loss(pred, noise)
        use = t < cfg.align_max_t
        align = alignment_loss(store, positions, masks, use) if cfg.align_weight > 0 else denoise * 0.0
        loss = denoise + cfg.align_weight * align
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for k, v in unet.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0:
            print(f"unet step {step} denoise {denoise.item():.4f} align {align.item():.4f} "
                  f"{time.time() - t0:.0f}s", flush=True)
        if time.time() - last_save > cfg.save_every_s:
            _save_unet(unet, ema, sd)
            log()
            last_save = time.time()
    bar.close()
    _save_unet(unet, ema, sd)
    log()


def _save_unet(unet, ema: dict, sd: Path) -> None:
    """Save the EMA weights with the default attention processors (the folder must not depend on this file)."""
    from diffusers import UNet2DConditionModel
    shadow = UNet2DConditionModel.from_config(unet.config)  # default processors, no probes
    shadow.load_state_dict(ema)
    save_atomic(shadow, sd / "unet")


# ---------------------------------------------------------------------------------------------------------------
# stage: evaluation classifier
# ---------------------------------------------------------------------------------------------------------------

def train_classifier(out: Path, cfg: TrainConfig) -> None:
    from safetensors.torch import save_file
    torch.manual_seed(cfg.seed)
    model = EvalClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    data = scene_batches(64, cfg.seed + 13, workers=1 if cfg.max_steps > 100 else 0)
    t0, step = time.time(), 0
    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        item = next(data)
        target = torch.zeros(item["image"].shape[0], len(CLASSES))
        for i, cls in enumerate(item["classes"]):
            target[i, cls[cls >= 0]] = 1.0
        loss = F.binary_cross_entropy_with_logits(model(item["image"]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.log_every == 0:
            print(f"classifier step {step} loss {loss.item():.4f}", flush=True)
    folder = out / "eval_classifier"
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"num_classes": len(CLASSES), "width": 32, "classes": CLASSES}))
    log_info(out, "classifier", {"steps": step, "seconds": time.time() - t0})


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["vae", "encoder", "unet", "classifier", "all"], required=True,
                    help="what to train")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models folder (default: toy_models/)")
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of the stage")
    ap.add_argument("--max-steps", type=int, default=10 ** 9, help="step budget of the stage")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 16 (vae), 32 (encoder, unet)")
    ap.add_argument("--lr", type=float, default=None, help="default: 1e-3 (vae), 5e-4 (unet), 1e-3 (encoder)")
    ap.add_argument("--encoder-objective", choices=["part", "mae"], default="part",
                    help="encoder pretraining: labelled (instance, part) contrast + class head (part, the shipped "
                         "stand-in) or masked-patch prediction (mae, Tab. 6b)")
    ap.add_argument("--align-weight", type=float, default=1.0, help="UNet cross-attention alignment loss weight")
    ap.add_argument("--latent-pool", type=int, default=12000, help="training scenes cached as latents (unet)")
    ap.add_argument("--resume", action="store_true", help="continue from the weights in --out")
    ap.add_argument("--tiny", action="store_true", help="tiny model sizes (tests)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = ModelSizes.tiny() if args.tiny else ModelSizes()
    args.out.mkdir(parents=True, exist_ok=True)
    stages = ["vae", "encoder", "unet", "classifier"] if args.stage == "all" else [args.stage]
    defaults = {"vae": (16, 1e-3), "encoder": (32, 1e-3), "unet": (32, 5e-4), "classifier": (64, 2e-3)}
    for stage in stages:
        bs, lr = defaults[stage]
        cfg = TrainConfig(batch_size=args.batch_size or bs, lr=args.lr or lr, minutes=args.minutes,
                          max_steps=args.max_steps, align_weight=args.align_weight,
                          latent_pool=args.latent_pool if not args.tiny else 64,
                          log_every=1 if args.tiny else 50)
        print(f"== {stage}: {asdict(cfg)}", flush=True)
        if stage == "vae":
            train_vae(args.out, sizes, cfg, args.resume)
        elif stage == "encoder":
            train_encoder(args.out, sizes, cfg, args.resume, args.encoder_objective)
        elif stage == "unet":
            train_unet(args.out, sizes, cfg, args.resume)
        else:
            train_classifier(args.out, cfg)

if __name__ == "__main__":
    main()
