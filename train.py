"""Train GLASS in two phases (GLASS §4), in one plain loop.

    python train.py --phase 2                        # toy preset: makes the dataset, runs phase 1, then phase 2
    python train.py --phase 1 --no-semantic          # an ablation is a flag
    torchrun --nproc_per_node 8 train.py --preset paper --phase 1 --data data/coco_pseudo --amp bf16

Phase 1 trains the slot module and the MLP decoder; the encoder, VAE and UNet stay frozen, and L_recon still
back-propagates through the frozen UNet into the slots. Phase 2 starts from the phase-1 checkpoint and trains the
slot module and MLP decoder with a small learning rate and the UNet with a larger one.

`run_phase` is the loop, on one screen: lr → forward (the losses) → backward → clip → step → log → checkpoint. One log line per interval with every loss term and the rate; a CSV and a PNG of the curves; at
the end, val metrics (mIoU_i, mBO_i, mBO_c, FG-ARI, from `discovery` below) as JSON and a PNG of val scenes with
slot masks and reconstructions.

Here too: checkpoints and object discovery on the toy splits; the dataset reader and the deterministic step
sampler live in data.py. The model's preset lives in glass.PRESETS; this file's PRESETS hold only the
training knobs. Other modules call `run(options(...))`, never `main(argv)`.

Checkpoints (out/phase{1,2}/): model.safetensors (trainable weights), config.json (model config, phase, step,
versions, arguments), train_state.pt (optimiser, RNG and data position; loaded with weights_only=True), written to a
temporary folder and renamed, so a crash never leaves a broken checkpoint. `--resume` continues exactly.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from checkpoint import (check_ranks_in_sync, complete, read_checkpoint_info, recover_checkpoint, rng_state, save_checkpoint,
                        set_rng_state)
from data import FrozenCache, PseudoGTDataset, make_loader, read_done
import evaluate

ROOT = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------------------------
# presets: they fill in whatever the flags leave unset (`options`)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainPreset:
    """A preset's training knobs; every flag of the same name overrides one. The model's preset (slots, encoder,
    decoder, λs) is glass.PRESETS[name]."""
    data: str | None  # pseudo-GT dataset folder (pseudo_gt.py)
    out: str  # run folder
    batch_size: int  # images per process and step
    steps1: int  # phase-1 optimiser steps
    steps2: int  # phase-2 optimiser steps
    lr_slots1: float  # phase 1: slot module and MLP decoder
    lr_slots2: float  # phase 2: the same, small
    lr_unet: float  # phase 2: the UNet
    lr_decoder: float | None  # the MLP decoder, both phases (None: the slots' rate)
    warmup: int  # linear warm-up steps, then constant
    log_every: int
    ckpt_every: int
    eval_images: int  # toy val scenes scored at the end
    cache_frozen: str  # "yes": keep each item's frozen encoder tokens and VAE moments in memory
    workers: int  # data loader processes per training process


PRESETS = {
    # toy lr_decoder: a flagged deviation, the MLP decoder at 10× the slots' phase-1 rate (docs/lab_notes/binding.md §7)
    "toy": TrainPreset(data="data/toy_pseudo", out="runs/toy", batch_size=16, steps1=900, steps2=300,
                       lr_slots1=4e-4, lr_slots2=1e-4, lr_unet=1e-4, lr_decoder=4e-3, warmup=100, log_every=50,
                       ckpt_every=300, eval_images=256, cache_frozen="yes", workers=1),
    # Stable-LSD's recipe (AdamW 2e-5, constant after warm-up, batch 32): the paper gives no schedule of its own
    "paper": TrainPreset(data=None, out="runs/paper", batch_size=32, steps1=200000, steps2=50000, lr_slots1=2e-5,
                         lr_slots2=1e-5, lr_unet=2e-5, lr_decoder=None, warmup=2500, log_every=100,
                         ckpt_every=5000, eval_images=0, cache_frozen="no", workers=8),
}

TOY_DATASET_IMAGES = 512  # what the toy preset writes when --data does not exist yet


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a("--phase", type=int, choices=[1, 2], default=2, help="1: slots + MLP decoder; 2: also the UNet")
    a("--preset", choices=sorted(PRESETS), default="toy",
      help="toy world (default) or the paper's models: training knobs here, the model's in glass.PRESETS")
    a("--out", help="run folder (checkpoints, logs, figures)")
    a("--data", help="pseudo-GT dataset folder written by pseudo_gt.py")
    a("--num-images", type=int, help=f"toy: images to write when --data does not exist (default "
      f"{TOY_DATASET_IMAGES}); an existing dataset is used as it is")
    a("--extend-data", action="store_true", help="toy: grow an existing --data to --num-images items")
    a("--check-data", action="store_true", help="list the dataset's bad items (undecodable, wrong size) and stop")
    a("--repair-data", action="store_true", help="with --check-data: rewrite bad items from their seeds (toy)")
    a("--encoder", help="Dinov2Model folder or hub ID")
    a("--sd", help="Stable Diffusion folder or hub ID (vae/, unet/, scheduler/)")
    a("--encoder-size", type=int, help="encoder input size (px)")
    a("--decoder-size", type=int, help="VAE input size (px)")
    a("--num-slots", type=int, help="K")
    a("--iters", type=int, help="slot attention iterations T")
    a("--slot-dim", type=int, help="slot width D")
    a("--slot-mlp", type=int, help="slot MLP hidden width")
    a("--mlp-hidden", type=int, help="MLP decoder hidden width")
    a("--decoder-pos-std", type=float, help="std of the MLP decoder's position embedding at init (DINOSAUR: 0.02)")
    a("--slot-init", choices=["gaussian", "learned"], help="initial slots: sampled from one learned Gaussian (the "
      "authors' release, paper preset) or one learned vector per slot (toy preset)")
    a("--gaussian-init", choices=["xavier", "small"], help="start of the shared Gaussian's μ, log σ: Xavier-uniform "
      "(σ ≈ 1, the authors' code, default) or small (σ = D^-½)")
    a("--grid", choices=["centres", "edges"], help="positional grid at cell centres (authors' code, default) or edges")
    a("--bilevel", choices=["yes", "no"], help="detach the last slot iteration's input, straight-through to the init "
      "(toy preset: yes)")
    a("--slot-prior", choices=["none", "count", "boxes"], help="Tab. 5 baselines only: ground-truth object count "
      "(K = objects + 1 active slots) or boxes (initial slots from them); needs a dataset with instance maps")
    a("--match-size", type=int, help="resolution where slot masks meet pseudo masks")
    a("--num-classes", type=int, help="classes of the pseudo masks")
    a("--batch-size", type=int, help="images per process and step: the global batch is this × the number of "
      "processes (torchrun's WORLD_SIZE); learning rates are never rescaled with it")
    a("--steps", type=int, help="optimiser steps of this phase (default: the preset's steps1 / steps2)")
    a("--steps1", type=int, help="phase-1 steps when phase 2 has to run phase 1 first")
    a("--steps2", type=int, help="phase-2 steps")
    a("--lr-slots1", type=float, help="phase-1 learning rate of slot module and MLP decoder")
    a("--lr-slots2", type=float, help="phase-2 (small) learning rate of slot module and MLP decoder")
    a("--lr-unet", type=float, help="phase-2 learning rate of the UNet")
    a("--lr-decoder", type=float, help="the MLP decoder's own learning rate, both phases (default: the slots')")
    a("--warmup", type=int, help="linear warm-up steps, then constant")
    a("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    a("--clip", type=float, default=1.0, help="gradient-norm clipping")
    a("--lambda-semantic", type=float, help="λs (paper: 0.7)")
    a("--lambda-instance", type=float, help="λi (paper: 0.9)")
    a("--no-recon", action="store_true", help="ablation: drop L_recon")
    a("--no-semantic", action="store_true", help="ablation: drop L_semantic")
    a("--no-instance", action="store_true", help="ablation: drop L_instance")
    a("--background-segment", choices=["yes", "no"], help="background as a pseudo-mask segment (preset: yes)")
    a("--seed", type=int, default=0)
    a("--log-every", type=int)
    a("--ckpt-every", type=int)
    a("--eval-images", type=int, help="toy val scenes scored at the end (0: skip)")
    a("--val-every", type=int, default=0, help="toy: also score the val scenes every N steps, into "
      "OUT/val_curve.csv (training goes on exactly as without it)")
    a("--init", help="phase 2: phase-1 checkpoint folder (default: OUT/phase1)")
    a("--resume", action="store_true", help="continue this phase from OUT/phase{N}")
    a("--workers", type=int, help="data loader worker processes per training process (toy preset 1: the CPU "
      "trains; paper preset 8: decoding 768-px PNGs)")
    a("--device", default=None, help="cpu / cuda (default: cuda when available)")
    a("--amp", choices=["none", "bf16", "fp16"], default="none",
      help="autocast: GPUs, or bf16 on CPUs with native bf16")
    a("--cache-frozen", choices=["yes", "no"], help="keep each item's frozen encoder tokens and VAE moments in "
      "memory after its first visit (toy preset: yes; about 140 KB per toy item, 3 MB per paper-preset item)")
    a("--grad-checkpointing", action="store_true", help="UNet gradient checkpointing")
    a("--threads", type=int, default=None, help="CPU threads per process")
    return ap


def options(argv=(), **overrides) -> argparse.Namespace:
    """The one config path of a run, in this order: the flags (`argv`, as on the command line), then keyword
    overrides by flag name (`options(phase=1, steps=400, no_semantic=True)`), then the preset for whatever is still
    unset: its training knobs (PRESETS, a TrainPreset) and its model (glass.PRESETS, a GLASSConfig, with the model
    flags that were given), which becomes `args.model`. Values are checked with clear errors. What `python
    train.py ...` and experiments.py both use."""
    import glass
    ap = build_parser()
    args = ap.parse_args(list(argv))
    for k, v in overrides.items():
        if not hasattr(args, k) or k == "model":
            raise TypeError(f"train.py has no option {k!r}")
        setattr(args, k, v)
    preset = PRESETS[args.preset]
    for f in fields(TrainPreset):
        if getattr(args, f.name) is None:
            setattr(args, f.name, getattr(preset, f.name))
    if args.data is None:
        ap.error("the paper preset needs --data: a folder written by `python pseudo_gt.py --preset paper "
                 "--images DIR --out DIR`")

    def yes(flag: str | None, value: str = "yes") -> bool | None:
        return None if flag is None else flag == value

    slot_fields = {"num_slots": args.num_slots, "iters": args.iters, "dim": args.slot_dim,
                   "mlp_hidden": args.slot_mlp, "prior": args.slot_prior, "gaussian_init": args.gaussian_init,
                   "learned_init": yes(args.slot_init, "learned"), "bilevel": yes(args.bilevel),
                   "grid_centres": yes(args.grid, "centres")}  # GLASSSlotConfig field ← flag
    model_fields = {"encoder": args.encoder, "sd": args.sd, "encoder_size": args.encoder_size,
                    "decoder_size": args.decoder_size, "mlp_hidden": args.mlp_hidden, "match_size": args.match_size,
                    "num_classes": args.num_classes, "lambda_semantic": args.lambda_semantic,
                    "lambda_instance": args.lambda_instance, "decoder_pos_std": args.decoder_pos_std,
                    "background_segment": yes(args.background_segment),
                    "gradient_checkpointing": args.grad_checkpointing or None}  # GLASSConfig field ← flag
    args.model = glass.preset(args.preset, slots={k: v for k, v in slot_fields.items() if v is not None},
                              use_recon=not args.no_recon, use_semantic=not args.no_semantic,
                              use_instance=not args.no_instance,
                              **{k: v for k, v in model_fields.items() if v is not None})
    for name in ("encoder", "sd"):
        path = getattr(args.model, name)
        if path.startswith(("/", ".")) and not Path(path).exists():
            ap.error(f"--{name} {path} does not exist (toy models ship in toy_models/; rebuild them with "
                     f"python -m toy.pretrain)")
    if args.init and not Path(args.init).exists():
        ap.error(f"--init {args.init} does not exist")
    if args.no_recon and args.no_semantic and args.no_instance:
        ap.error("all three loss terms are switched off")
    positive = ["num_slots", "iters", "slot_dim", "slot_mlp", "mlp_hidden", "batch_size", "steps1", "steps2",
                "log_every", "ckpt_every", "encoder_size", "decoder_size", "match_size", "num_classes", "num_images"]
    for k in positive + ["lr_slots1", "lr_slots2", "lr_unet", "lr_decoder", "clip"]:
        v = getattr(args, k)
        if v is not None and not v > 0:
            ap.error(f"--{k.replace('_', '-')} must be positive, got {v}")
    for k in ("steps", "warmup", "eval_images", "val_every", "workers", "weight_decay", "lambda_semantic",
              "lambda_instance"):
        v = getattr(args, k)
        if v is not None and v < 0:
            ap.error(f"--{k.replace('_', '-')} must not be negative, got {v}")
    return args


# ---------------------------------------------------------------------------------------------------------------
# data: the toy dataset a run needs, and its check
# ---------------------------------------------------------------------------------------------------------------

def ensure_dataset(args, rank: int) -> None:
    """Use --data as it is. A missing toy dataset is written first (progress bar included), and one a crashed
    writer left short is finished; growing a dataset needs --extend-data, and the writer refuses other settings."""
    folder = Path(args.data)
    if (folder / "meta.json").exists():
        meta = json.loads((folder / "meta.json").read_text())
        done = len(read_done(folder))
        target = meta.get("num_images", done)
        if args.num_images is not None and args.num_images != target and not args.extend_data:
            raise SystemExit(f"--data {folder} holds a dataset of {target} images; --num-images {args.num_images} "
                             f"would change it: pass --extend-data to grow it, or choose another --data")
        n = max(target, args.num_images or 0)
        if done >= n:
            return
    else:
        n = args.num_images or TOY_DATASET_IMAGES
    if args.preset != "toy":
        raise SystemExit(f"--data {folder} holds no complete pseudo-GT dataset; write one with pseudo_gt.py "
                         f"--preset paper")
    if rank == 0:
        write_toy_dataset(args, folder, n, extend=args.extend_data)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def write_toy_dataset(args, folder: Path, n: int, extend: bool = False, captioner: str = "toy") -> None:
    """The toy preset's writer with this run's model; "toy-labels" (GLASS†'s prompts) is a dataset of its own name."""
    import pseudo_gt
    from glass import quiet_loading
    sd = args.model.sd
    print(f"[data] writing the toy pseudo-GT dataset: {n} images → {folder} (python pseudo_gt.py --preset toy "
          f"--num-images {n} --out {folder}{'' if captioner == 'toy' else ' --captioner ' + captioner})", flush=True)
    t0 = time.time()
    with quiet_loading():
        pipe = pseudo_gt.load_pipeline(sd)
    preset = replace(pseudo_gt.PRESETS["toy"], sd=sd, name=captioner, captioner=captioner)
    try:
        pseudo_gt.write_dataset(folder, preset, n, pipe=pipe, batch_size=16, extend=extend)
    except (ValueError, RuntimeError) as e:  # other settings, or another writer on the folder
        raise SystemExit(f"[data] {e}")
    print(f"[data] done in {time.time() - t0:.0f}s", flush=True)


def check_data(args) -> dict:
    """--check-data: the reader's validation as a report; with --repair-data the bad items' files are removed and
    the toy writer rewrites them from their seeds (item i is always seeded by seed + i)."""
    ds = PseudoGTDataset(args.data, quiet=True)
    report = {"items": len(ds) + len(ds.bad), "bad": ds.bad, "unreadable_lines": ds.unreadable_lines}
    print(json.dumps(report, indent=2))
    if args.repair_data and ds.bad:
        if ds.meta.get("preset") != "toy":
            raise SystemExit(f"remove the bad items' files and rerun the pseudo_gt.py command that wrote {args.data}")
        for rec in ds.bad_records:
            for key in ("image", "mask"):
                (ds.folder / rec[key]).unlink(missing_ok=True)
        write_toy_dataset(args, ds.folder, ds.meta.get("num_images", len(ds) + len(ds.bad)))
        report["repaired"] = len(PseudoGTDataset(args.data, quiet=True).bad) == 0
    return report


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
# one phase: the loop, then the helpers it calls in the order it calls them
# ---------------------------------------------------------------------------------------------------------------

def run_phase(args, phase: int, num_steps: int, device, rank: int, world: int) -> Path:
    """Train one phase (§4) up to `num_steps`, resuming from OUT/phase{phase} with --resume. Returns that folder."""
    out, is_main = Path(args.out), rank == 0
    ckpt = out / f"phase{phase}"
    model, opt, gen = build(args, phase, device, rank)
    start = resume_or_init(args, phase, ckpt, model, opt, gen, device, world, is_main)
    if start >= num_steps:
        if is_main:
            print(f"[phase {phase}] already at step {start} ≥ {num_steps}", flush=True)
        return ckpt
    train_model = model  # under torchrun (even with one process) DDP averages the gradients
    if torch.distributed.is_initialized():
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    loader = make_loader(PseudoGTDataset(args.data), args, start, num_steps - start, rank, world)
    cache = FrozenCache(model.frozen_outputs) if args.cache_frozen == "yes" else None
    log = PhaseLog(out, phase, start, num_steps, args.log_every, args.batch_size, world, is_main)
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")
    params = [p for g in opt.param_groups for p in g["params"]]  # what clipping sees, once, not every step
    step = start
    model.train()
    for batch in loader:
        for g in opt.param_groups:  # lr: linear warm-up over --warmup steps, then constant (Stable-LSD's schedule)
            g["lr"] = g["base_lr"] * min(1.0, (step + 1) / max(args.warmup, 1))
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        if cache is not None:
            batch = cache.fill(batch)  # + features, moments of the frozen encoder and VAE
        losses = forward(train_model, batch, gen, args.amp, device, phase, step, ckpt)
        grads = term_grad_norms(model, losses) if log.wants_grads(step) else {}  # before backward frees the graph
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses.total).backward()  # backward (the loss scaled under fp16 only)
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, args.clip)  # clip the global gradient norm
        scaler.step(opt)  # AdamW step
        scaler.update()
        step += 1
        log.step(step, losses, batch["image"].shape[0], opt.param_groups[0]["lr"], grads)
        if (step % args.ckpt_every == 0 or step == num_steps) and is_main:
            save_checkpoint(ckpt, model, opt, phase, step, args, rng_state(gen, device))
        if args.val_every and step % args.val_every == 0 and is_main and args.preset == "toy":
            evaluate.log_val_curve(model, out, phase, step, args.eval_images or 256, device)
        if step >= num_steps:
            break
    log.close()
    if torch.distributed.is_initialized():
        check_ranks_in_sync(model, phase)
    return ckpt


def build(args, phase: int, device, rank: int):
    """The model (identical initial weights on every rank), AdamW over the phase's groups (§4) and the generator
    of diffusion noise and timesteps. A checkpoint a crash left half-swapped is recovered first."""
    from glass import GLASS
    if rank == 0:
        recover_checkpoint(Path(args.out) / f"phase{phase}")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # no rank reads the checkpoint before rank 0 has recovered it
    torch.manual_seed(args.seed)
    model = GLASS(args.model).to(device)
    lr_main = args.lr_slots1 if phase == 1 else args.lr_slots2
    groups = model.param_groups(phase, lr_main, args.lr_unet, args.lr_decoder)
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay, fused=True)  # one kernel for all tensors
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]  # the rate after warm-up; the loop's warm-up scales it
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)
    return model, opt, gen


def resume_or_init(args, phase: int, ckpt: Path, model, opt, gen, device, world: int, is_main: bool) -> int:
    """--resume with a checkpoint: weights, optimiser, RNG and step from it (refused when settings that change the
    data order changed). Otherwise phase 2 starts from phase 1's weights (--init or OUT/phase1). Returns the step."""
    from safetensors.torch import load_file
    if not (args.resume and (ckpt / "config.json").exists()):
        if phase == 2:
            init = Path(args.init) if args.init else Path(args.out) / "phase1"
            info = read_checkpoint_info(init)
            if info["phase"] != 1:
                raise SystemExit(f"--init {init} is a phase-{info['phase']} checkpoint; phase 2 starts from phase 1")
            model.load_trainable_state(load_file(init / "model.safetensors"))
            if is_main:
                print(f"[phase 2] starting from {init} (phase 1, step {info['step']})", flush=True)
        return 0
    info = read_checkpoint_info(ckpt)
    if info["phase"] != phase:
        raise SystemExit(f"{ckpt} is a phase-{info['phase']} checkpoint, not phase {phase}")
    saved = {**info["args"], "world": info.get("world", 1)}
    changed = [f"{k} {saved.get(k)!r} → {v!r}" for k, v in (("batch_size", args.batch_size), ("data", args.data),
               ("seed", args.seed), ("world", world)) if saved.get(k) != v]
    if changed:
        raise SystemExit(f"--resume cannot continue {ckpt} exactly with changed settings ({'; '.join(changed)}); "
                         f"start a new --out, or resume with the saved ones")
    model.load_trainable_state(load_file(ckpt / "model.safetensors"))
    # map_location: each rank's optimiser state goes to its own device (the saved tensors name cuda:0)
    state = torch.load(ckpt / "train_state.pt", weights_only=True, map_location=device)
    base = [g["base_lr"] for g in opt.param_groups]
    opt.load_state_dict(state["optimizer"])
    for g, lr in zip(opt.param_groups, base):  # this run's rates: a lower --lr-* after a NaN takes effect
        g["base_lr"] = lr
    set_rng_state(state["rng"], gen, device)
    if is_main:
        print(f"[phase {phase}] resuming at step {state['step']}", flush=True)
    return state["step"]


def forward(train_model, batch: dict, gen, amp: str, device, phase: int, step: int, ckpt: Path):
    """The three losses of one batch (glass.GLASS.losses), under autocast with --amp. A non-finite term stops the
    run with a pointer to the last intact checkpoint."""
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    try:
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            losses = train_model(batch, gen)
        if not all(torch.isfinite(t) for t in (losses.recon, losses.semantic, losses.instance)):
            raise FloatingPointError(f"recon {losses.recon.item()} semantic {losses.semantic.item()} "
                                     f"instance {losses.instance.item()}")
    except FloatingPointError as e:
        last = (f"the last checkpoint, {ckpt} (step {read_checkpoint_info(ckpt)['step']}), is intact: continue "
                f"with --resume and a lower --lr-*") if complete(ckpt) else "no checkpoint of this phase exists yet"
        raise SystemExit(f"[phase {phase}] non-finite values at step {step} ({e}); {last}")
    return losses


class PhaseLog:
    """Progress bar, one line per `every` steps with the mean of every loss term, the gradient norm each term sends
    into the slot module, the rate and the lr; the same as OUT/log_phase{phase}.csv, and its PNG at the end."""

    COLUMNS = ("step,total,recon,semantic,instance,semantic_share,grad_recon,grad_semantic,grad_instance,"
               "images_per_s,lr")

    def __init__(self, out: Path, phase: int, start: int, num_steps: int, every: int, batch_size: int, world: int,
                 is_main: bool):
        from tqdm import tqdm
        self.phase, self.num_steps, self.every, self.world, self.is_main = phase, num_steps, every, world, is_main
        if is_main and world > 1:
            print(f"[phase {phase}] global batch {batch_size * world} = --batch-size {batch_size} × {world} "
                  f"processes; learning rates as given", flush=True)
        self.csv_path = out / f"log_phase{phase}.csv"
        self.png_path = out / f"loss_phase{phase}.png"
        if is_main:
            out.mkdir(parents=True, exist_ok=True)
            if start == 0 or not self.csv_path.exists():
                self.csv_path.write_text(self.COLUMNS + "\n")
        self.bar = tqdm(total=num_steps, initial=start, desc=f"phase {phase}", disable=not is_main, mininterval=10)
        self.sums, self.t_last, self.n_last = None, time.time(), 0

    def wants_grads(self, step: int) -> bool:
        """Per-term gradient norms cost one extra backward each: only at log steps, only on one process."""
        return (step + 1) % self.every == 0 and self.is_main and not torch.distributed.is_initialized()

    def step(self, step: int, losses, batch_size: int, lr: float, grads: dict) -> None:
        self.bar.update(1)
        terms = torch.stack([losses.total, losses.recon, losses.semantic, losses.instance,
                             losses.semantic_present.float().mean()]).detach()
        self.sums = terms if self.sums is None else self.sums + terms
        self.n_last += batch_size * self.world
        if step % self.every != 0 and step != self.num_steps:
            return
        k = self.every if step % self.every == 0 else step % self.every
        avg = (self.sums / k).tolist()
        rate = self.n_last / (time.time() - self.t_last)
        if self.is_main:
            g = [grads.get(t, float("nan")) for t in ("recon", "semantic", "instance")]
            print(f"phase {self.phase} step {step} | total {avg[0]:.4f} recon {avg[1]:.4f} semantic {avg[2]:.4f} "
                  f"instance {avg[3]:.4f} | sem-target share {avg[4]:.2f} | |∇slots| recon {g[0]:.2e} "
                  f"semantic {g[1]:.2e} instance {g[2]:.2e} | {rate:.1f} img/s | lr {lr:.2e}", flush=True)
            with open(self.csv_path, "a") as f:
                f.write(f"{step},{avg[0]:.6f},{avg[1]:.6f},{avg[2]:.6f},{avg[3]:.6f},{avg[4]:.4f},"
                        f"{g[0]:.4e},{g[1]:.4e},{g[2]:.4e},{rate:.3f},{lr:.3e}\n")
        self.sums, self.t_last, self.n_last = None, time.time(), 0

    def close(self) -> None:
        self.bar.close()
        if self.is_main:
            plot_curves(self.csv_path, self.png_path)


def term_grad_norms(model, losses) -> dict:
    """The gradient norm that each weighted loss term (λ·L) sends into the slot-attention parameters, one
    autograd pass per term at log steps (the training step's own backward is unchanged): which term drives the
    slots, and whether λs and λi balance them."""
    params = [p for p in model.slot_module.parameters() if p.requires_grad]
    c = model.config
    weighted = {"recon": losses.recon, "semantic": c.lambda_semantic * losses.semantic,
                "instance": c.lambda_instance * losses.instance}
    out = {}
    for name, term in weighted.items():
        if term.requires_grad:
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            out[name] = float(sum(float((g.float() ** 2).sum()) for g in grads if g is not None)) ** 0.5
    return out


# ---------------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict:
    """One run as `options` describes it: data if missing, phase 1 if phase 2 needs it, the phase, val metrics."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if "LOCAL_RANK" in os.environ and not torch.distributed.is_initialized():  # launched by torchrun
        if args.device == "cuda":  # each process on its own GPU before anything is loaded
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.distributed.init_process_group("nccl" if args.device == "cuda" else "gloo")
    device = torch.device(args.device if args.device != "cuda" else f"cuda:{torch.cuda.current_device()}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    t0 = time.time()
    if args.check_data:
        return check_data(args)
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
        result["val"] = evaluate.discovery(model, "val", args.eval_images, device)
        evaluate.save_val_figure(model, out / f"val_phase{args.phase}.png", device)
        (out / f"val_phase{args.phase}.json").write_text(json.dumps(result, indent=2))
        print("[val] " + " ".join(f"{k} {v:.4f}" for k, v in result["val"].items() if isinstance(v, float)),
              flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


def main(argv=None) -> dict:
    return run(options(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
