"""How good the toy world's stand-in models are (no paper section; docs/design.md §7): the README's quality numbers.

    python -m toy.report world                  # the world's properties, each against its bound
                                                # (→ toy_models/world_report.json)
    python -m toy.report models                 # VAE PSNR, encoder probe, prompt fidelity, classifier
                                                # (→ toy_models/quality_report.json)
    python -m toy.report pseudo-masks           # localisation of the UNet's class attention; generated pseudo masks
    python -m toy.report probe-ceiling --max-steps 2500 --minutes 40
                                                # diagnostic: the encoder shape trained WITH the patch labels,
                                                # probed as it learns

Checked by tests/test_toy_pretrain.py (the report on tiny models) and tests/test_pseudo_gt.py (localisation).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from typing import Optional
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

import prompts as pr
import pseudo_gt as pg
from infra.loading import quiet_loading

from toy.models import (DEFAULT_OUT, ModelSizes, build_encoder, folder_size_mb, load_classifier,
                        load_vae, patch_features, sizes_of)
from toy.pretrain import TrainConfig, scene_batches
from toy.tokens import linear_probe, patch_labels
from toy.world_report import world_report, world_table
from toy.world import CLASSES, ToyScenes, make_scene

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------------------------
# the quality report
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def check_vae(out: Path, n: int) -> float:
    vae = load_vae(out).eval()
    ds = ToyScenes("val")
    psnrs = []
    for s in range(0, n, 64):
        x = torch.stack([ds[i]["image"] for i in range(s, min(n, s + 64))])
        r = (vae.decode(vae.encode(x * 2 - 1).latent_dist.mean).sample.clamp(-1, 1) + 1) / 2
        mse = (r - x).pow(2).flatten(1).mean(1)
        psnrs.append(10 * torch.log10(1.0 / mse))
    return float(torch.cat(psnrs).mean())


def class_set_counts(pred: torch.Tensor, items: list) -> torch.Tensor:
    """(true positives, false positives, false negatives, exactly right images) of predicted class sets (b, C) bool
    against the classes present in each scene."""
    truth = torch.zeros_like(pred)
    for i, it in enumerate(items):
        truth[i, it["classes"][it["classes"] >= 0]] = True
    return torch.tensor([int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum()),
                         int((pred == truth).all(1).sum())])


def f1_of(counts: torch.Tensor) -> float:
    tp, fp, fn = counts[:3].tolist()
    return 2 * tp / max(2 * tp + fp + fn, 1)


@torch.no_grad()
def prompt_fidelity(out: Path, n: int, guidance: float, steps: int, seed: int = 0) -> dict:
    """Class-set F1 (micro over images × classes) of images generated from val prompts "caption; names", judged by
    the evaluation classifier; the Fréchet distance between them and the val scenes of the same prompts over the
    classifier's features; and the images for the grid."""
    with quiet_loading():
        pipe = pg.load_pipeline(str(out / "sd"))
    from downstream import ClassifierFeatures, frechet_metric
    clf = load_classifier(out)
    fd = frechet_metric(ClassifierFeatures(clf))
    ds = ToyScenes("val")
    counts = torch.zeros(4, dtype=torch.long)
    shown = []
    for s in tqdm(range(0, n, 16), desc="generating", mininterval=5):
        items = [ds[i] for i in range(s, min(n, s + 16))]
        prompts = [f"{it['caption']} ; {it['labels']}" for it in items]
        g = torch.Generator().manual_seed(seed + s)
        imgs = pipe(prompts, height=64, width=64, num_inference_steps=steps, guidance_scale=guidance, generator=g,
                    output_type="pt").images  # (b, 3, 64, 64) in [0, 1]
        counts += class_set_counts(clf(imgs).sigmoid() > 0.5, items)
        fd.update(imgs, real=False)
        fd.update(torch.stack([it["image"] for it in items]), real=True)  # the val scenes of the same prompts
        shown += list(zip(prompts, imgs))
    return {"f1": f1_of(counts), "frechet": float(fd.compute()), "samples": shown}


@torch.no_grad()
def classifier_scores(out: Path, n: int = 512) -> dict:
    """The evaluation classifier on real val scenes (its own sanity check): class-set F1 and exact accuracy."""
    clf = load_classifier(out)
    ds = ToyScenes("val")
    counts = torch.zeros(4, dtype=torch.long)
    for s in range(0, n, 64):
        items = [ds[i] for i in range(s, min(n, s + 64))]
        counts += class_set_counts(clf(torch.stack([it["image"] for it in items])).sigmoid() > 0.5, items)
    return {"f1": f1_of(counts), "exact": int(counts[3]) / n}


def save_grids(out: Path, samples: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ds = ToyScenes("val")
    fig, axes = plt.subplots(2, 8, figsize=(16, 4.4))
    for i in range(8):
        it = ds[i]
        axes[0, i].imshow(it["image"].permute(1, 2, 0).numpy())
        axes[1, i].imshow(it["instance"].numpy(), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axes[0, i].set_title(it["caption"][:34], fontsize=6)
    for a in axes.flat:
        a.axis("off")
    fig.suptitle("toy world val scenes and instance masks (python -m toy.report models)")
    fig.savefig(path / "toy_scenes.png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    k = min(16, len(samples))
    if k:
        fig, axes = plt.subplots(2, 8, figsize=(16, 4.8))
        for a, (prompt, img) in zip(axes.flat, samples[:k]):
            a.imshow(img.permute(1, 2, 0).numpy())
            a.set_title(prompt[:40], fontsize=5.5)
        for a in axes.flat:
            a.axis("off")
        fig.suptitle("generated from val prompts, 25 DDIM steps (python -m toy.report models)")
        fig.savefig(path / "toy_generated.png", dpi=80, bbox_inches="tight")
        plt.close(fig)


def check(out: Path, n_fid: int, guidance: float, steps: int, figures: Path) -> dict:
    from transformers import Dinov2Model
    report = {}
    t = time.time()
    report["vae_psnr_db"] = round(check_vae(out, 512), 2)
    with quiet_loading():
        enc = Dinov2Model.from_pretrained(out / "encoder", dtype=torch.float32).eval()
    report["encoder_probe_acc"] = round(linear_probe(enc), 4)
    torch.manual_seed(0)
    report["random_encoder_probe_acc"] = round(linear_probe(build_encoder(sizes_of(enc)).eval()), 4)
    judge = classifier_scores(out)
    report["classifier_f1_real_val"] = round(judge["f1"], 4)
    report["classifier_exact_acc_real_val"] = round(judge["exact"], 4)
    fid = prompt_fidelity(out, n_fid, guidance, steps)
    report["prompt_fidelity_f1"] = round(fid["f1"], 4)
    report["frechet_classifier_features"] = round(fid["frechet"], 3)
    report["fidelity_settings"] = {"images": n_fid, "ddim_steps": steps, "guidance": guidance}
    figures.mkdir(parents=True, exist_ok=True)
    save_grids(out, fid["samples"], figures)
    report["seconds"] = round(time.time() - t, 1)
    return report




def probe_ceiling(sizes: ModelSizes, cfg: TrainConfig, every: int = 500, probe_images: int = 512) -> list:
    """Diagnostic, never saved: an encoder of the shipped shape trained *with* the per-patch class labels, through
    a linear head on its tokens (the probe's own form), and probed every `every` steps. The labels are what the
    self-supervised encoder must not see; this run only measures how much of the probe target the architecture
    learns at all in a CPU budget. Returns [{"step", "seconds", "probe_acc"}, ...]."""
    torch.manual_seed(cfg.seed)
    enc = build_encoder(sizes)
    head = nn.Linear(sizes.enc_hidden, len(CLASSES) + 1)
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.05)
    data = scene_batches(cfg.batch_size, cfg.seed + 7, workers=1 if cfg.max_steps > 100 else 0)
    t0, step, points = time.time(), 0, []

    def probe() -> None:
        enc.eval()
        acc = linear_probe(enc, n_train=probe_images, n_val=probe_images)
        enc.train()
        points.append({"step": step, "seconds": round(time.time() - t0), "probe_acc": round(acc, 4)})
        print(f"ceiling step {step}: probe {acc:.4f}", flush=True)

    bar = tqdm(desc="ceiling", unit="step", mininterval=5)
    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        batch = next(data)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / 100)
        logits = head(patch_features(enc, batch["image"]))  # (B, N, C+1)
        loss = F.cross_entropy(logits.flatten(0, 1), patch_labels(batch["semantic"], sizes.patch).flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % every == 0:
            probe()
    bar.close()
    if not points or points[-1]["step"] != step:
        probe()
    return points




# ---------------------------------------------------------------------------------------------------------------
# pseudo masks: localisation of the UNet's class attention, generated masks
# ---------------------------------------------------------------------------------------------------------------

def semantic_miou(labels: torch.Tensor, truth: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
    """Per image (B,): mean over the image's classes of IoU(pred == c, truth == c); ignore pixels predict no class."""
    out = torch.zeros(labels.shape[0], dtype=torch.float64)
    for i in range(labels.shape[0]):
        ids = [int(c) for c in class_ids[i] if c > 0]
        ious = []
        for c in ids:
            p, t = labels[i] == c, truth[i] == c
            union = (p | t).sum()
            ious.append(float((p & t).sum()) / float(union) if union > 0 else 1.0)
        out[i] = float(np.mean(ious)) if ious else float("nan")
    return out


@torch.no_grad()
def localisation(pipe, cfg: "pg.MaskConfig", n: int = 128, timesteps=(200, 400, 600), batch_size: int = 16,
                 seed: int = 0) -> dict:
    """Noise real val scenes to fixed steps, run the UNet on "caption; names" while recording, build masks, and
    score them against the scenes' ground-truth semantic masks (mIoU over the classes of each image)."""
    vocab = pr.toy_vocabulary()
    ds = ToyScenes("val", length=n)
    per_t = {}
    for t in timesteps:
        scores = []
        for s in range(0, n, batch_size):
            items = [ds[i] for i in range(s, min(n, s + batch_size))]
            class_lists = [pr.find_classes(it["caption"], vocab, use_nltk=False).classes for it in items]
            prompts = [pr.build_prompt(it["caption"], cl) for it, cl in zip(items, class_lists)]
            class_ids = pr.class_id_matrix(class_lists, vocab)
            x = torch.stack([it["image"] for it in items]) * 2 - 1
            z0 = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
            g = torch.Generator().manual_seed(seed + s + t)
            noise = torch.randn(z0.shape, generator=g)
            tt = torch.full((len(items),), t, dtype=torch.long)
            zt = pipe.scheduler.add_noise(z0, noise, tt)
            rec = pg.make_recorder(pipe, class_lists, cfg, cfg_batch=False)
            previous = pg.attach_recorder(pipe.unet, rec)
            try:
                pipe.unet(zt, tt, encoder_hidden_states=pg.encode_text(pipe, prompts))
            finally:
                pipe.unet.set_attn_processor(previous)
            labels = pg.masks_from_recorder(rec, class_ids, 64, cfg)["labels"]
            truth = torch.stack([it["semantic"] for it in items])
            scores.append(semantic_miou(labels, truth, class_ids))
        per_t[t] = float(torch.cat(scores).mean())
    return {"miou": float(np.mean(list(per_t.values()))), "per_t": per_t}


def generation_report(pipe, preset: "pg.Preset", n: int, batch_size: int, figure: Optional[Path],
                      seed: int = 0) -> dict:
    """Generate from train captions with recording: complete-mask share, ignore share, timing against no recording."""
    vocab = pr.toy_vocabulary()
    complete, ignore, shown = [], [], []
    t_rec = t_plain = 0.0
    for s in range(0, n, batch_size):
        idx = list(range(s, min(n, s + batch_size)))
        captions = [make_scene("train", 5_000_000 + i).caption for i in idx]
        class_lists = [pr.find_classes(c, vocab, use_nltk=False).classes for c in captions]
        prompts = [pr.build_prompt(c, cl) for c, cl in zip(captions, class_lists)]
        class_ids = pr.class_id_matrix(class_lists, vocab)
        t0 = time.perf_counter()
        g = [torch.Generator().manual_seed(seed + i) for i in idx]
        pipe(prompts, height=preset.size, width=preset.size, num_inference_steps=preset.steps,
             guidance_scale=preset.guidance, generator=g, output_type="pt")
        t_plain += time.perf_counter() - t0
        t0 = time.perf_counter()
        g = [torch.Generator().manual_seed(seed + i) for i in idx]
        out = pg.generate_with_masks(pipe, prompts, class_lists, class_ids, preset.size, g, preset.mask,
                                  steps=preset.steps, guidance=preset.guidance)
        t_rec += time.perf_counter() - t0
        for r in range(len(idx)):
            present = set(out.labels[r].unique().tolist())
            complete.append(all(int(c) in present for c in class_ids[r] if c > 0))
            ignore.append(float((out.labels[r] == 255).float().mean()))
            shown.append((prompts[r], out.images[r], out.labels[r]))
    if figure is not None:
        _plot_generated(shown[:12], figure)
    return {"complete_share": float(np.mean(complete)), "ignore_share": float(np.mean(ignore)),
            "time_ratio": t_rec / t_plain, "seconds_per_image_recording": t_rec / n,
            "seconds_per_image_plain": t_plain / n}


def _plot_generated(shown: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    colours = ["#222222", "#2ca02c", "#8c564b", "#d62728", "#e377c2", "#1f77b4", "#ff7f0e", "#ffffff"]
    cmap = ListedColormap(colours)  # background, one colour per class, ignore
    ignore = len(CLASSES) + 1
    k = len(shown)
    fig, axes = plt.subplots(2, k, figsize=(1.6 * k, 3.6))
    for j, (prompt, img, lab) in enumerate(shown):
        axes[0, j].imshow(img.permute(1, 2, 0).numpy())
        axes[0, j].set_title(prompt.split(";")[-1].strip()[:22], fontsize=6)
        show = lab.clone()
        show[show == 255] = ignore
        axes[1, j].imshow(show.numpy(), cmap=cmap, vmin=0, vmax=ignore, interpolation="nearest")
    for a in axes.flat:
        a.axis("off")
    legend = ", ".join(f"{c} {n}" for c, n in zip(("green", "brown", "red", "pink", "blue", "orange"), CLASSES))
    fig.suptitle(f"generated images and pseudo masks (black background, {legend}, white ignore)\n"
                 "python -m toy.report pseudo-masks", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)




# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------

def pseudo_mask_report(preset: "pg.Preset", eval_images: int, figure: Optional[Path]) -> dict:
    """Localisation with cross-attention alone and with the self-attention refinement, then generation with
    recording (complete-mask share, ignore share, time against plain generation)."""
    with quiet_loading():
        pipe = pg.load_pipeline(preset.sd)
    report = {}
    for refine_on in (False, True):
        cfg = pg.MaskConfig(**{**asdict(preset.mask), "refine": refine_on})
        key = "with_refinement" if refine_on else "cross_attention_only"
        report[key] = localisation(pipe, cfg, n=eval_images)
        print(key, json.dumps(report[key]), flush=True)
    report["generation"] = generation_report(pipe, preset, n=32, batch_size=8, figure=figure)
    report["settings"] = {"mask": asdict(preset.mask), "steps": preset.steps, "guidance": preset.guidance,
                          "eval_images": eval_images}
    return report


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("world", help="the world's properties, each against its bound (writes world_report.json)")
    w.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models folder (default: toy_models/)")
    w.add_argument("--scenes", type=int, default=256, help="val scenes measured")
    m = sub.add_parser("models", help="VAE PSNR, encoder probe, prompt fidelity, classifier "
                                      "(writes quality_report.json)")
    m.add_argument("--out", type=Path, default=DEFAULT_OUT, help="models folder (default: toy_models/)")
    m.add_argument("--check-images", type=int, default=128, help="generated images for prompt fidelity")
    m.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance scale")
    m.add_argument("--steps", type=int, default=25, help="DDIM steps")
    m.add_argument("--figures", type=Path, default=ROOT / "figures", help="where the PNG grids go")
    p = sub.add_parser("pseudo-masks", help="localisation of the UNet's class attention and generated pseudo masks")
    p.add_argument("--sd", default=None, help="pipeline folder (default: the toy preset's)")
    p.add_argument("--eval-images", type=int, default=128, help="val scenes scored")
    p.add_argument("--steps", type=int, default=None, help="denoising steps of the generation (default: the preset's)")
    p.add_argument("--figure", type=Path, default=None,
                   help="PNG of generated masks (default: figures/pseudo_gt_samples.png for the preset's pipeline)")
    c = sub.add_parser("probe-ceiling", help="diagnostic: the encoder shape trained WITH the patch labels, probed "
                                             "every --probe-every steps (nothing is saved)")
    c.add_argument("--max-steps", type=int, default=2500)
    c.add_argument("--minutes", type=float, default=40.0)
    c.add_argument("--probe-every", type=int, default=500)
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--tiny", action="store_true", help="tiny model sizes (tests)")
    for s in (w, m, p, c):
        s.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cmd == "world":
        report = world_report(args.out, args.scenes)
        print(world_table(report))
        (args.out / "world_report.json").write_text(json.dumps(report, indent=2))
        if not all(r["passed"] for r in report["rows"]):
            raise SystemExit("some properties miss their bound (✗ above)")
    elif args.cmd == "models":
        report = check(args.out, args.check_images, args.guidance, args.steps, args.figures)
        report["shipped_mb"] = round(folder_size_mb(args.out), 2)
        print(json.dumps(report, indent=2))
        (args.out / "quality_report.json").write_text(json.dumps(report, indent=2))
    elif args.cmd == "pseudo-masks":
        preset = pg.PRESETS["toy"]
        preset = replace(preset, sd=args.sd or preset.sd, steps=args.steps or preset.steps)
        figure = args.figure or (ROOT / "figures" / "pseudo_gt_samples.png" if args.sd is None else None)
        print(json.dumps(pseudo_mask_report(preset, args.eval_images, figure), indent=2))
    else:
        sizes = ModelSizes.tiny() if args.tiny else ModelSizes()
        cfg = TrainConfig(batch_size=args.batch_size, lr=args.lr, minutes=args.minutes, max_steps=args.max_steps)
        points = probe_ceiling(sizes, cfg, args.probe_every, probe_images=16 if args.tiny else 512)
        print(json.dumps({"probe_ceiling": points, "lr": cfg.lr, "batch_size": cfg.batch_size}, indent=2))


if __name__ == "__main__":
    main()
