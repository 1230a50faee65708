"""Train GLASS in two phases (GLASS §4), in one plain loop.

    python train.py --phase 2                        # toy preset: makes the dataset, runs phase 1, then phase 2
    python train.py --phase 1 --no-semantic          # an ablation is a flag
    torchrun --nproc_per_node 8 train.py --preset paper --phase 1 --data data/coco_pseudo --amp bf16

Phase 1 trains the slot module and the MLP decoder; the encoder, VAE and UNet stay frozen, and L_recon still
back-propagates through the frozen UNet into the slots. Phase 2 starts from the phase-1 checkpoint and trains the
slot module and MLP decoder with a small learning rate and the UNet with a larger one.

Loop order: lr → forward → losses → backward → clip → step → log → checkpoint. One log line per interval with
every loss term and the rate; a CSV and a PNG of the curves; at the end, val metrics (mIoU_i, mBO_i, mBO_c,
FG-ARI, from evaluate.discovery) as JSON and a PNG of val scenes with slot masks and reconstructions.

Checkpoints (out/phase{1,2}/): model.safetensors (trainable weights), config.json (model config, phase, step,
versions, arguments), train_state.pt (optimiser, RNG and data position; loaded with weights_only=True), written to a
temporary folder and renamed, so a crash never leaves a broken checkpoint. `--resume` continues exactly.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------------------
# presets: applied before the command line's own flags
# ---------------------------------------------------------------------------------------------------------------

PRESETS = {
    "toy": dict(encoder=str(ROOT / "toy_models" / "encoder"), sd=str(ROOT / "toy_models" / "sd"),
                encoder_size=64, decoder_size=64, num_slots=5, iters=3, slot_dim=128, slot_mlp=256,
                mlp_hidden=256, match_size=64, num_classes=4, data="data/toy_pseudo", num_images=512,
                # one learned vector per slot + the bi-level detach: slots bind within the CPU budget
                # (docs/binding.md); the paper preset keeps the authors' Gaussian init
                slot_init="learned", bilevel="yes",
                batch_size=16, steps1=900, steps2=300, lr_slots1=4e-4, lr_slots2=1e-4, lr_unet=1e-4,
                warmup=100, log_every=50, ckpt_every=300, out="runs/toy", eval_images=256),
    # DESIGN.md §4/§5: DINOv2 ViT-B/14 at 448 px, SD 2.1 at 256 px (v-prediction), Stable-LSD's AdamW 2e-5
    "paper": dict(encoder="facebook/dinov2-base", sd="stabilityai/stable-diffusion-2-1", encoder_size=448,
                  decoder_size=256, num_slots=7, iters=5, slot_dim=768, slot_mlp=768, mlp_hidden=2048,
                  match_size=128, num_classes=80, slot_init="gaussian", bilevel="no", data=None, num_images=None, batch_size=32, steps1=200000,
                  steps2=50000, lr_slots1=2e-5, lr_slots2=1e-5, lr_unet=2e-5, warmup=2500, log_every=100,
                  ckpt_every=5000, out="runs/paper", eval_images=0),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a("--phase", type=int, choices=[1, 2], default=2, help="1: slots + MLP decoder; 2: also the UNet")
    a("--preset", choices=sorted(PRESETS), default="toy", help="toy world (default) or the paper's models")
    a("--out", help="run folder (checkpoints, logs, figures)")
    a("--data", help="pseudo-GT dataset folder written by pseudo_gt.py")
    a("--num-images", type=int, help="toy: images to generate when --data does not exist")
    a("--encoder", help="Dinov2Model folder or hub ID")
    a("--sd", help="Stable Diffusion folder or hub ID (vae/, unet/, scheduler/)")
    a("--encoder-size", type=int, help="encoder input size (px)")
    a("--decoder-size", type=int, help="VAE input size (px)")
    a("--num-slots", type=int, help="K")
    a("--iters", type=int, help="slot attention iterations T")
    a("--slot-dim", type=int, help="slot width D")
    a("--slot-mlp", type=int, help="slot MLP hidden width")
    a("--mlp-hidden", type=int, help="MLP decoder hidden width")
    a("--slot-init", choices=["gaussian", "learned"],
      help="initial slots: sampled from one learned Gaussian (the authors' release) or one learned vector per slot")
    a("--bilevel", choices=["yes", "no"], help="detach the last slot iteration's input, straight-through to the init")
    a("--match-size", type=int, help="resolution where slot masks meet pseudo masks")
    a("--num-classes", type=int, help="classes of the pseudo masks")
    a("--batch-size", type=int, help="per process")
    a("--steps", type=int, help="optimiser steps of this phase (default: the preset's steps1 / steps2)")
    a("--steps1", type=int, help="phase-1 steps when phase 2 has to run phase 1 first")
    a("--steps2", type=int, help="phase-2 steps")
    a("--lr-slots1", type=float, help="phase-1 learning rate of slot module and MLP decoder")
    a("--lr-slots2", type=float, help="phase-2 (small) learning rate of slot module and MLP decoder")
    a("--lr-unet", type=float, help="phase-2 learning rate of the UNet")
    a("--warmup", type=int, help="linear warm-up steps, then constant")
    a("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    a("--clip", type=float, default=1.0, help="gradient-norm clipping")
    a("--lambda-semantic", type=float, default=0.7, help="λs")
    a("--lambda-instance", type=float, default=0.9, help="λi")
    a("--no-recon", action="store_true", help="ablation: drop L_recon")
    a("--no-semantic", action="store_true", help="ablation: drop L_semantic")
    a("--no-instance", action="store_true", help="ablation: drop L_instance")
    a("--background-segment", choices=["yes", "no"], default="yes", help="background as a pseudo-mask segment")
    a("--seed", type=int, default=0)
    a("--log-every", type=int)
    a("--ckpt-every", type=int)
    a("--eval-images", type=int, help="toy val scenes scored at the end (0: skip)")
    a("--init", help="phase 2: phase-1 checkpoint folder (default: OUT/phase1)")
    a("--resume", action="store_true", help="continue this phase from OUT/phase{N}")
    a("--workers", type=int, default=1, help="data loader worker processes")
    a("--device", default=None, help="cpu / cuda (default: cuda when available)")
    a("--amp", choices=["none", "bf16", "fp16"], default="none", help="autocast on GPUs")
    a("--grad-checkpointing", action="store_true", help="UNet gradient checkpointing")
    a("--threads", type=int, default=None, help="CPU threads per process")
    return ap


def resolve_args(argv=None) -> argparse.Namespace:
    """Parse flags, fill the unset ones from the preset, and check paths with clear errors."""
    ap = build_parser()
    args = ap.parse_args(argv)
    for k, v in PRESETS[args.preset].items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    if args.data is None:
        ap.error("the paper preset needs --data: a folder written by `python pseudo_gt.py --preset paper "
                 "--images DIR --out DIR`")
    for name in ("encoder", "sd"):
        path = getattr(args, name)
        if path.startswith(("/", ".")) and not Path(path).exists():
            ap.error(f"--{name} {path} does not exist (toy models ship in toy_models/; rebuild them with "
                     f"pretrain_toy.py)")
    if args.init and not Path(args.init).exists():
        ap.error(f"--init {args.init} does not exist")
    if args.no_recon and args.no_semantic and args.no_instance:
        ap.error("all three loss terms are switched off")
    return args


# ---------------------------------------------------------------------------------------------------------------
# data: a deterministic, resumable, sharded stream of batches
# ---------------------------------------------------------------------------------------------------------------

class StepSampler(torch.utils.data.Sampler):
    """Yields the dataset indices of global steps start, start+1, …: each epoch is a permutation seeded by
    (seed, epoch); step s takes the global batch s of that stream and this rank takes its share. So a resumed
    run (start = saved step) and a fresh run see the same batches at the same steps."""

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, rank: int = 0, world: int = 1,
                 num_steps: int = 10 ** 9):
        self.n, self.b, self.seed, self.start, self.rank, self.world = n, batch_size, seed, start_step, rank, world
        self.num_steps = num_steps
        if n < batch_size * world:
            raise ValueError(f"dataset of {n} items is smaller than one global batch ({batch_size}×{world})")

    def indices_of_step(self, step: int) -> list:
        global_b = self.b * self.world
        per_epoch = self.n // global_b
        epoch, k = divmod(step, per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
        batch = perm[k * global_b:(k + 1) * global_b]
        return batch[self.rank * self.b:(self.rank + 1) * self.b].tolist()

    def __iter__(self):
        for s in range(self.start, self.start + self.num_steps):
            yield from self.indices_of_step(s)

    def __len__(self):
        return self.num_steps * self.b


def make_loader(dataset, args, start_step: int, num_steps: int, rank: int, world: int):
    sampler = StepSampler(len(dataset), args.batch_size, args.seed, start_step, rank, world, num_steps)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=sampler,
                                       num_workers=args.workers, drop_last=True, pin_memory=False,
                                       generator=torch.Generator().manual_seed(args.seed),  # not the global RNG
                                       persistent_workers=False, prefetch_factor=4 if args.workers > 0 else None)


def ensure_dataset(args, rank: int) -> None:
    """A missing toy dataset is written first with the pseudo_gt.py writer (progress bar included)."""
    import pseudo_gt
    folder = Path(args.data)
    if (folder / "meta.json").exists():
        done = len(pseudo_gt.read_done(folder))
        if args.preset != "toy" or done >= (args.num_images or 0):
            return
    if args.preset != "toy":
        raise SystemExit(f"--data {folder} holds no pseudo-GT dataset; write one with pseudo_gt.py --preset paper")
    if rank == 0:
        print(f"[data] writing the toy pseudo-GT dataset: {args.num_images} images → {folder} "
              f"(python pseudo_gt.py --preset toy --num-images {args.num_images} --out {folder})", flush=True)
        t0 = time.time()
        pseudo_gt.main(["--preset", "toy", "--num-images", str(args.num_images), "--out", str(folder),
                        "--sd", args.sd, "--device", "cpu", "--batch-size", "16"])
        print(f"[data] done in {time.time() - t0:.0f}s", flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


# ---------------------------------------------------------------------------------------------------------------
# model, checkpoints
# ---------------------------------------------------------------------------------------------------------------

def model_config(args):
    from glass import GLASSConfig
    from slot_attention import GLASSSlotConfig
    return GLASSConfig(encoder=args.encoder, encoder_size=args.encoder_size,
                       encoder_mean=(0.5,) * 3 if args.preset == "toy" else (0.485, 0.456, 0.406),
                       encoder_std=(0.25,) * 3 if args.preset == "toy" else (0.229, 0.224, 0.225),
                       sd=args.sd, decoder_size=args.decoder_size,
                       slots=GLASSSlotConfig(num_slots=args.num_slots, iters=args.iters, dim=args.slot_dim,
                                             mlp_hidden=args.slot_mlp, learned_init=args.slot_init == "learned",
                                             bilevel=args.bilevel == "yes"),
                       num_classes=args.num_classes, mlp_hidden=args.mlp_hidden,
                       lambda_semantic=args.lambda_semantic, lambda_instance=args.lambda_instance,
                       use_recon=not args.no_recon, use_semantic=not args.no_semantic,
                       use_instance=not args.no_instance, background_segment=args.background_segment == "yes",
                       match_size=args.match_size, gradient_checkpointing=args.grad_checkpointing)


def versions() -> dict:
    import diffusers
    import transformers
    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0]}


def save_checkpoint(folder: Path, model, opt, phase: int, step: int, args, rng: dict) -> None:
    """Write weights, config and train state into folder.tmp, then swap it in (atomic on one filesystem)."""
    from safetensors.torch import save_file
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(model.trainable_state(phase), tmp / "model.safetensors")
    info = {"model": json.loads(model.config.to_json()), "phase": phase, "step": step, "versions": versions(),
            "args": {k: v for k, v in vars(args).items()}}
    (tmp / "config.json").write_text(json.dumps(info, indent=2))
    torch.save({"optimizer": opt.state_dict(), "rng": rng, "step": step}, tmp / "train_state.pt")
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def rng_state(gen: torch.Generator) -> dict:
    """The only randomness of a step: slot-init noise (global torch RNG) and diffusion noise/timesteps (gen).
    The data order is a function of (seed, step), see StepSampler."""
    return {"torch": torch.get_rng_state(), "gen": gen.get_state()}


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])


def read_checkpoint_info(folder: Path) -> dict:
    if not (folder / "config.json").exists():
        raise SystemExit(f"{folder} is not a GLASS checkpoint (no config.json)")
    return json.loads((folder / "config.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# evaluation on the toy val split
# ---------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def predict_masks(model, images: torch.Tensor, size: int) -> torch.Tensor:
    """Slot ids (B, size, size): last-iteration attention resized bilinearly, argmax over slots (§5)."""
    masks = model.encode(images).masks  # (B, K, h, w)
    up = F.interpolate(masks, size=(size, size), mode="bilinear", align_corners=False)
    return up.argmax(dim=1)


@torch.no_grad()
def save_val_figure(model, path: Path, device, n: int = 6, seed: int = 0) -> None:
    """Val scenes, their slot masks, and the image regenerated from the slots (25 DDIM steps)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import toyworld
    torch.manual_seed(seed)
    ds = toyworld.ToyScenes("val", length=n)
    images = torch.stack([ds[i]["image"] for i in range(n)]).to(device)
    model.eval()
    enc = model.encode(images)
    pred = F.interpolate(enc.masks, size=images.shape[-2:], mode="bilinear", align_corners=False).argmax(1).cpu()
    recon = model.generate(enc.cond, torch.Generator().manual_seed(seed), num_steps=25).cpu()
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


def plot_curves(csv_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(1, 4, figsize=(14, 3))
    for a, key in zip(ax, ("total", "recon", "semantic", "instance")):
        a.plot(steps, [float(r[key]) for r in rows])
        a.set_title(key)
        a.set_xlabel("step")
    fig.suptitle(f"{csv_path.name} (python train.py)", fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# one phase
# ---------------------------------------------------------------------------------------------------------------

def run_phase(args, phase: int, num_steps: int, device, rank: int, world: int) -> Path:
    from glass import GLASS
    import pseudo_gt
    out = Path(args.out)
    ckpt = out / f"phase{phase}"
    is_main = rank == 0
    torch.manual_seed(args.seed)  # identical initial weights on every rank
    model = GLASS(model_config(args)).to(device)
    start = 0
    resuming = args.resume and (ckpt / "config.json").exists()
    if phase == 2 and not resuming:
        init = Path(args.init) if args.init else out / "phase1"
        info = read_checkpoint_info(init)
        if info["phase"] != 1:
            raise SystemExit(f"--init {init} is a phase-{info['phase']} checkpoint; phase 2 starts from phase 1")
        from safetensors.torch import load_file
        model.load_trainable_state(load_file(init / "model.safetensors"))
        if is_main:
            print(f"[phase 2] starting from {init} (phase 1, step {info['step']})", flush=True)
    lr_main = args.lr_slots1 if phase == 1 else args.lr_slots2
    groups = model.param_groups(phase, lr_main, args.lr_unet)
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)  # diffusion noise and timesteps
    if resuming:
        info = read_checkpoint_info(ckpt)
        if info["phase"] != phase:
            raise SystemExit(f"{ckpt} is a phase-{info['phase']} checkpoint, not phase {phase}")
        from safetensors.torch import load_file
        model.load_trainable_state(load_file(ckpt / "model.safetensors"))
        state = torch.load(ckpt / "train_state.pt", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"], gen)
        start = state["step"]
        if is_main:
            print(f"[phase {phase}] resuming at step {start}", flush=True)
    if start >= num_steps:
        if is_main:
            print(f"[phase {phase}] already at step {start} ≥ {num_steps}", flush=True)
        return ckpt

    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    dataset = pseudo_gt.PseudoGTDataset(args.data)
    loader = make_loader(dataset, args, start, num_steps - start, rank, world)
    trainable = [p for g in groups for p in g["params"]]
    csv_path = out / f"log_phase{phase}.csv"
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        if start == 0 or not csv_path.exists():
            with open(csv_path, "w") as f:
                f.write("step,total,recon,semantic,instance,semantic_share,images_per_s,lr\n")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")
    from tqdm import tqdm
    bar = tqdm(total=num_steps, initial=start, desc=f"phase {phase}", disable=not is_main, mininterval=10)
    sums, t_last, n_last = None, time.time(), 0
    step = start
    model.train()
    for batch in loader:
        # lr: linear warm-up, then constant (Stable-LSD)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * min(1.0, (step + 1) / max(args.warmup, 1))
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            losses = train_model(batch, gen)
        if not torch.isfinite(losses.total):
            raise SystemExit(f"[phase {phase}] non-finite loss at step {step}: "
                             f"recon {losses.recon.item()} semantic {losses.semantic.item()} "
                             f"instance {losses.instance.item()}; the last good checkpoint in {ckpt} is intact")
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses.total).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(trainable, args.clip)
        scaler.step(opt)
        scaler.update()
        step += 1
        bar.update(1)
        terms = torch.stack([losses.total, losses.recon, losses.semantic, losses.instance,
                             losses.semantic_present.float().mean()]).detach()
        sums = terms if sums is None else sums + terms
        n_last += batch["image"].shape[0] * world
        if step % args.log_every == 0 or step == num_steps:
            k = args.log_every if step % args.log_every == 0 else step % args.log_every
            avg = (sums / k).tolist()
            rate = n_last / (time.time() - t_last)
            lr = opt.param_groups[0]["lr"]
            if is_main:
                print(f"phase {phase} step {step} | total {avg[0]:.4f} recon {avg[1]:.4f} semantic {avg[2]:.4f} "
                      f"instance {avg[3]:.4f} | sem-target share {avg[4]:.2f} | {rate:.1f} img/s | lr {lr:.2e}",
                      flush=True)
                with open(csv_path, "a") as f:
                    f.write(f"{step},{avg[0]:.6f},{avg[1]:.6f},{avg[2]:.6f},{avg[3]:.6f},{avg[4]:.4f},"
                            f"{rate:.3f},{lr:.3e}\n")
            sums, t_last, n_last = None, time.time(), 0
        if (step % args.ckpt_every == 0 or step == num_steps) and is_main:
            save_checkpoint(ckpt, model, opt, phase, step, args, rng_state(gen))
        if step >= num_steps:
            break
    bar.close()
    if world > 1:
        check_ranks_in_sync(model, phase)
    if is_main:
        plot_curves(csv_path, out / f"loss_phase{phase}.png")
    return ckpt


def check_ranks_in_sync(model, phase: int) -> None:
    """DDP keeps replicas identical; verify it: every rank's checksum of the trainable weights must agree."""
    import torch.distributed as dist
    total = torch.zeros(1, dtype=torch.float64)
    for v in model.trainable_state(phase).values():
        total += v.double().sum().cpu()
    gathered = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, total)
    in_sync = all(torch.equal(g, gathered[0]) for g in gathered)
    if dist.get_rank() == 0:
        print(f"[ddp] ranks in sync after phase {phase}: {in_sync} (checksums {[float(g) for g in gathered]})",
              flush=True)
    if not in_sync:
        raise SystemExit("DDP ranks diverged")


# ---------------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------------

def main(argv=None) -> dict:
    args = resolve_args(argv)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        if args.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    device = torch.device(args.device if args.device != "cuda" else f"cuda:{torch.cuda.current_device()}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    ensure_dataset(args, rank)
    if args.phase == 2 and not args.init:
        p1 = out / "phase1" / "config.json"
        p1_step = read_checkpoint_info(out / "phase1")["step"] if p1.exists() else 0
        if p1_step < args.steps1:
            if rank == 0:
                print(f"[phase 2] phase 1 is {'at step ' + str(p1_step) if p1.exists() else 'missing'} "
                      f"(needs {args.steps1}): running phase 1 first", flush=True)
            resume, args.resume = args.resume, True  # continue whatever phase 1 left
            run_phase(args, 1, args.steps1, device, rank, world)
            args.resume = resume
    steps = args.steps if args.steps is not None else (args.steps1 if args.phase == 1 else args.steps2)
    ckpt = run_phase(args, args.phase, steps, device, rank, world)
    result = {"checkpoint": str(ckpt), "minutes": round((time.time() - t0) / 60, 2)}
    if rank == 0 and args.eval_images and args.preset == "toy":
        from glass import load_checkpoint_model
        model, _ = load_checkpoint_model(ckpt, device)
        from evaluate import discovery
        result["val"] = discovery(model, "val", args.eval_images, device)
        save_val_figure(model, out / f"val_phase{args.phase}.png", device)
        (out / f"val_phase{args.phase}.json").write_text(json.dumps(result, indent=2))
        print("[val] " + " ".join(f"{k} {v:.4f}" for k, v in result["val"].items() if isinstance(v, float)),
              flush=True)
    if world > 1:
        import torch.distributed as dist
        dist.destroy_process_group()
    return result


if __name__ == "__main__":
    main()
