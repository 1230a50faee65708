"""Train GLASS in two phases (GLASS §4), in one plain loop.

    python train.py --phase 2                        # toy preset: makes the dataset, runs phase 1, then phase 2
    python train.py --phase 1 --no-semantic          # an ablation is a flag
    torchrun --nproc_per_node 8 train.py --preset paper --phase 1 --data data/coco_pseudo --amp bf16

Phase 1 trains the slot module and the MLP decoder; the encoder, VAE and UNet stay frozen, and L_recon still
back-propagates through the frozen UNet into the slots. Phase 2 starts from the phase-1 checkpoint and trains the
slot module and MLP decoder with a small learning rate and the UNet with a larger one.

Every knob is a field of a config dataclass, and its flag is the field's name: RunConfig here (data, budget,
optimiser, logging), glass.GLASSConfig (the model and its losses) and slot_attention.GLASSSlotConfig (the slot
module; its flags carry a `slot-` prefix unless the name already says "slot": --num-slots, --slot-dim,
--slot-mlp-hidden). The help text of a flag is the comment on its field. A preset (`--preset toy|paper`: PRESETS
here, glass.PRESETS for the model) fills in every field the flags leave unset. `python train.py --help` lists them.

`run_phase` is the loop, on one screen: lr → forward (the losses) → backward → clip → step → log → checkpoint.
infra/progress.py prints and plots what it logs; infra/checkpoint.py writes checkpoints a crash cannot break (model.safetensors,
config.json, train_state.pt in OUT/phase{1,2}/) and resumes exactly (--resume). At the end of a toy run, val
metrics (evaluate.discovery) go to OUT/val_phase{N}.json with a figure of val scenes. Other modules call
`run(options(...))`, never `main(argv)`.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch

import evaluate
import glass
from glass import GLASSConfig
from infra.checkpoint import (build_model, check_ranks_in_sync, check_shared_out, complete, rank_device,
                              read_checkpoint_info, recover_checkpoint, resume_or_init, rng_states, save_checkpoint)
from infra.data import FrozenCache, PseudoGTDataset, batch_to_device, check_dataset, ensure_dataset, make_loader
from infra import flags
from infra.progress import PhaseLog, term_grad_norms
from slot_attention import GLASSSlotConfig
from toy.dataset import write_toy_dataset

ROOT = Path(__file__).resolve().parent


# --- the run's knobs and presets (the model's: glass.GLASSConfig, glass.PRESETS) -----------------------------------

@dataclass
class RunConfig:
    """One training run: data, budget, optimiser, logging, devices. Defaults: the paper preset."""
    preset: str = "paper"  # toy or paper: fills in every field the flags leave unset, the model's too
    phase: int = 2  # 1: slot module + MLP decoder; 2: also the UNet (phase 1 runs first when OUT/phase1 is short)
    data: Optional[str] = None  # pseudo-GT dataset folder (pseudo_gt.py); the toy preset writes it when missing
    out: str = "runs/paper"  # run folder: checkpoints, logs, figures
    num_images: Optional[int] = None  # toy: images to write when --data does not exist (None: 512)
    extend_data: bool = False  # toy: grow an existing --data to --num-images items
    check_data: bool = False  # list the dataset's bad items (undecodable, wrong size) and stop
    repair_data: bool = False  # with --check-data: rewrite the bad items from their seeds (toy)
    batch_size: int = 32  # images per process and forward pass (a micro-batch when --global-batch asks for more)
    # images per optimiser step over all processes, whatever their number: accumulation = this / (batch_size ×
    # WORLD_SIZE) forward passes per step (None: batch_size × WORLD_SIZE); the rates are the preset's for this batch
    global_batch: Optional[int] = None
    steps: Optional[int] = None  # optimiser steps of this phase (None: steps1 or steps2)
    steps1: int = 200000  # phase-1 steps, also when phase 2 has to run phase 1 first
    steps2: int = 50000  # phase-2 steps
    # learning rates: Stable-LSD's recipe (AdamW at a constant rate, docs/fidelity.md); the paper gives none of its own
    lr_slots1: float = 2e-5  # phase 1: slot module and MLP decoder
    lr_slots2: float = 1e-5  # phase 2: the same, small
    lr_unet: float = 2e-5  # phase 2: the UNet
    lr_decoder: Optional[float] = None  # the MLP decoder's own rate in both phases (None: the slots')
    warmup: int = 0  # linear warm-up steps, then constant (Stable-LSD: none)
    weight_decay: float = 0.01  # AdamW weight decay
    clip: float = 1.0  # the global gradient norm is clipped to this
    hflip: bool = False  # flip half of the images (and their masks) left-right, a coin per (seed, step, item)
    seed: int = 0  # initial weights, data order, diffusion noise
    log_every: int = 100  # steps per log line
    ckpt_every: int = 5000  # steps per checkpoint
    eval_images: int = 0  # toy: val scenes scored at the end (0: none)
    val_every: int = 0  # toy: also score val scenes every N steps into OUT/val_curve.csv (training unchanged)
    init: Optional[str] = None  # phase 2: the phase-1 checkpoint folder (None: OUT/phase1)
    resume: bool = False  # continue this phase from OUT/phase{N}
    workers: int = 8  # data loader processes per training process
    cache_frozen: bool = False  # keep each item's frozen encoder tokens and VAE moments in memory (toy: 140 KB each)
    device: Optional[str] = None  # cpu or cuda (None: cuda when available)
    amp: str = "none"  # autocast: none, bf16, fp16, or auto (bf16 on a GPU or CPU with native bf16, else none)
    threads: Optional[int] = None  # CPU threads per process
    model: Optional[GLASSConfig] = None  # options() sets it: glass.PRESETS[preset] with the model's flags

    def __post_init__(self):
        for name in ("batch_size", "global_batch", "steps1", "steps2", "lr_slots1", "lr_slots2", "lr_unet", "clip",
                     "log_every", "ckpt_every", "lr_decoder", "num_images", "threads"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"RunConfig.{name} must be positive, got {getattr(self, name)}")
        for name in ("steps", "warmup", "weight_decay", "eval_images", "val_every", "workers"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"RunConfig.{name} must not be negative, got {getattr(self, name)}")
        if self.phase not in (1, 2) or self.amp not in ("none", "bf16", "fp16", "auto"):
            raise ValueError(f"RunConfig: phase must be 1 or 2 and amp none, bf16, fp16 or auto; got {self.phase}, "
                             f"{self.amp!r}")


PRESETS = {
    # Stable-LSD's COCO recipe (configs/coco/train.sh): 4 processes × 32 images, a constant 2e-5, horizontal flips
    "paper": RunConfig(global_batch=128, hflip=True),
    # lr_decoder: a flagged deviation, the MLP decoder at 10× the slots' rate (docs/lab_notes/binding.md §7)
    "toy": RunConfig(preset="toy", data="data/toy_pseudo", out="runs/toy", batch_size=16, steps1=900, steps2=300,
                     lr_slots1=4e-4, lr_slots2=1e-4, lr_unet=1e-4, lr_decoder=4e-3, warmup=100, log_every=50,
                     ckpt_every=300, eval_images=256, workers=1, cache_frozen=True, amp="auto"),
}
TOY_DATASET_IMAGES = 512  # what the toy preset writes when --data does not exist yet
CONFIGS = (RunConfig, GLASSConfig, GLASSSlotConfig)  # the dataclasses whose fields are the flags, in --help's order


# --- flags: one per field of CONFIGS (infra/flags.py turns field comments into help texts) -----------------------

def preset_value(preset: str, cls, name: str):
    """A preset's value of field `name` of `cls` (for the help text), paths inside the repository relative."""
    model = glass.PRESETS[preset]
    obj = {RunConfig: PRESETS[preset], GLASSConfig: model, GLASSSlotConfig: model.slots}[cls]
    value = getattr(obj, name)
    return os.path.relpath(value, ROOT) if isinstance(value, str) and value.startswith(str(ROOT)) else value


def flag_fields() -> dict:
    """flag dest → (config class, field name, type) of every flag; slot fields take the prefix slot_ unless their
    name says "slot", and input_dim / out_dim follow from the loaded models."""
    return flags.flag_fields(CONFIGS, prefixes={GLASSSlotConfig: "slot_"}, skip=("input_dim", "out_dim"))


def build_parser() -> argparse.ArgumentParser:
    return flags.build_parser(__doc__, CONFIGS, flag_fields(), preset_value, presets=("toy", "paper"))


def options(argv=(), **overrides) -> RunConfig:
    """The one config path of a run: the preset's values, replaced by the flags (`argv`, as on the command line),
    then by keyword overrides named like the flags (`options(phase=1, steps=400, semantic=False)`). Values are
    checked with clear errors. What `python train.py ...`, experiments/tables.py and the notebooks all use."""
    ap = build_parser()
    fields_ = flag_fields()
    unknown = sorted(set(overrides) - set(fields_))
    if unknown:
        raise TypeError(f"train.py has no option {unknown[0]!r}")
    given = {k: v for k, v in vars(ap.parse_args(list(argv))).items() if v is not None}
    given.update(overrides)
    name = given.pop("preset", "toy")
    if name not in PRESETS:
        ap.error(f"--preset must be one of {sorted(PRESETS)}, got {name!r}")
    sets = {cls: {fields_[d][1]: v for d, v in given.items() if fields_[d][0] is cls} for cls in CONFIGS}
    try:
        model = glass.preset(name, slots=sets[GLASSSlotConfig], **sets[GLASSConfig])
        args = replace(PRESETS[name], model=model, **sets[RunConfig])
    except ValueError as e:
        ap.error(str(e))
    if args.cache_frozen and name == "paper":
        ap.error("--cache-frozen keeps every item's DINOv2 tokens and VAE moments in memory: about 3.4 MB an item "
                 "under the paper preset (1,024 tokens × 768 floats + 2 × 4 × 96² latents), 400 GB for 118k COCO "
                 "images; it is for the toy world (140 KB an item)")
    if args.cache_frozen and args.hflip:
        ap.error("--cache-frozen caches each item once, unflipped: it cannot be used with --hflip")
    if args.data is None:
        ap.error("the paper preset needs --data: a folder written by `python pseudo_gt.py --preset paper "
                 "--images DIR --out DIR`")
    for key in ("encoder", "sd"):
        path = getattr(model, key)
        if path.startswith(("/", ".")) and not Path(path).exists():
            ap.error(f"--{key} {path} does not exist (toy models ship in toy_models/; rebuild them with "
                     f"python -m toy.pretrain)")
    if args.init and not Path(args.init).exists():
        ap.error(f"--init {args.init} does not exist")
    return args


# --- one phase: the loop, then the helpers it calls in the order it calls them (infra/progress.py: PhaseLog) -------------

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
        # a parameter no loss reaches (the MLP decoder without L_instance, ...) must be declared; with all three
        # terms on, every trained parameter gets a gradient and DDP skips the per-step search for unused ones
        unused = not (args.model.recon and args.model.semantic and args.model.instance) or args.model.slot_prior != "none"
        train_model = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=unused)
    accumulate = accumulation(args, world)
    pin = device.type == "cuda"  # page-locked host batches: the copy overlaps the step (non_blocking)
    dataset = PseudoGTDataset(args.data, raw=True)  # rank 0 validated it in `run`: here the manifest is read
    if world > 1:
        # every rank prints this line: one write, so that unbuffered ranks (PYTHONUNBUFFERED) cannot interleave it
        print(f"[data] rank {rank}: {len(dataset)} items, {dataset.decoded} files decoded by this rank\n", end="",
              flush=True)
    loader = iter(make_loader(dataset, args, start, num_steps - start, rank, world, accumulate, pin_memory=pin))
    cache = FrozenCache(model.frozen_outputs) if args.cache_frozen else None
    log = PhaseLog(out, phase, start, num_steps, args.log_every, args.batch_size, world, is_main, accumulate)
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")
    params = [p for g in opt.param_groups for p in g["params"]]  # what clipping sees, once, not every step
    step = start
    model.train()
    while step < num_steps:
        for g in opt.param_groups:  # lr: linear warm-up over --warmup steps, then constant (Stable-LSD's schedule)
            g["lr"] = g["base_lr"] * min(1.0, (step + 1) / max(args.warmup, 1))
        opt.zero_grad(set_to_none=True)
        for micro in range(accumulate):  # forward → backward per micro-batch; DDP averages on the last one
            batch = batch_to_device(next(loader), device, non_blocking=pin)
            if args.hflip:
                batch = flip_half(batch, args.seed, step)
            if cache is not None:
                batch = cache.fill(batch)  # + features, moments of the frozen encoder and VAE
            sync = contextlib.nullcontext() if micro == accumulate - 1 or train_model is model else train_model.no_sync()
            with sync:
                losses = forward(train_model, batch, gen, args.amp, device, phase, step, ckpt)
                if micro == 0:  # per-term gradient norms, before backward frees the graph
                    grads = term_grad_norms(model, losses) if log.wants_grads(step) else {}
                scaler.scale(losses.total / accumulate).backward()  # the loss scaled under fp16 only
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, args.clip)  # clip the global gradient norm
        scaler.step(opt)  # AdamW step
        scaler.update()
        step += 1
        log.step(step, losses, batch["image"].shape[0] * accumulate, opt.param_groups[0]["lr"], grads)
        if step % args.ckpt_every == 0 or step == num_steps:
            rng = rng_states(gen, device)  # every rank's streams (a collective: all ranks take part)
            if is_main:
                save_checkpoint(ckpt, model, opt, phase, step, args, rng)
        if args.val_every and step % args.val_every == 0 and is_main and args.preset == "toy":
            evaluate.log_val_curve(model, out, phase, step, args.eval_images or 256, device)
    log.close()
    if torch.distributed.is_initialized():
        check_ranks_in_sync(model, phase)
    return ckpt


def accumulation(args, world: int) -> int:
    """Forward passes per optimiser step: --global-batch / (--batch-size × processes), which must divide."""
    if args.global_batch is None:
        return 1
    per_pass = args.batch_size * world
    if args.global_batch % per_pass:
        raise SystemExit(f"--global-batch {args.global_batch} is not a multiple of --batch-size {args.batch_size} × "
                         f"{world} processes; choose a --batch-size that divides {args.global_batch // world}")
    return args.global_batch // per_pass


def flip_half(batch: dict, seed: int, step: int) -> dict:
    """Flip each image and its masks left-right on a coin of (seed, step, item index): the same items flip whatever
    the number of ranks, and a resumed run flips as the uninterrupted one (Stable-LSD's horizontal flips)."""
    index = batch["index"].to(torch.int64)
    coin = ((seed * 1_000_003 + step * 7_919 + index * 104_729) * 2_654_435_761) % 4_294_967_296 >= 2 ** 31  # (B,)
    coin = coin.to(batch["image"].device)
    out = dict(batch)
    for k in ("image", "mask", "instance"):
        if k in batch:
            v = batch[k]
            out[k] = torch.where(coin.view(-1, *([1] * (v.dim() - 1))), v.flip(-1), v)
    return out


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 runs in hardware here: a GPU that supports it, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux: no way to tell, stay in fp32
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_amp(amp: str, device: torch.device) -> str:
    """--amp auto → bf16 where it runs in hardware, else none; the others as given."""
    return ("bf16" if native_bf16(device) else "none") if amp == "auto" else amp


def build(args, phase: int, device, rank: int):
    """The model (identical initial weights on every rank), AdamW over the phase's groups (§4) and the generator
    of diffusion noise and timesteps. A checkpoint a crash left half-swapped is recovered first."""
    if rank == 0:
        recover_checkpoint(Path(args.out) / f"phase{phase}")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # no rank reads the checkpoint before rank 0 has recovered it
    torch.manual_seed(args.seed)
    model = build_model(args.model).to(device)  # the same initial weights on every rank
    if rank > 0:  # ... but each rank its own slot-initialisation noise (the global RNG; rank 0 keeps the seed's)
        torch.manual_seed(args.seed * 1000003 + 7919 * rank)  # not gen's seed (seed · 1000 + rank)
    lr_main = args.lr_slots1 if phase == 1 else args.lr_slots2
    groups = model.param_groups(phase, lr_main, args.lr_unet, args.lr_decoder)
    opt = torch.optim.AdamW(groups, weight_decay=args.weight_decay, fused=True)  # one kernel for all tensors
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]  # the rate after warm-up; the loop's warm-up scales it
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)
    return model, opt, gen


def forward(train_model, batch: dict, gen, amp: str, device, phase: int, step: int, ckpt: Path):
    """The three losses of one batch (glass.GLASS.losses), under autocast with --amp. A non-finite term stops the
    run with a pointer to the last intact checkpoint."""
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    try:
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            losses = train_model(batch, gen)
        if not bool(torch.isfinite(torch.stack([losses.recon, losses.semantic, losses.instance])).all()):  # one sync
            raise FloatingPointError(f"recon {losses.recon.item()} semantic {losses.semantic.item()} "
                                     f"instance {losses.instance.item()}")
    except FloatingPointError as e:
        last = (f"the last checkpoint, {ckpt} (step {read_checkpoint_info(ckpt)['step']}), is intact: continue "
                f"with --resume and a lower --lr-*") if complete(ckpt) else "no checkpoint of this phase exists yet"
        raise SystemExit(f"[phase {phase}] non-finite values at step {step} ({e}); {last}")
    return losses


# --- entry point ---------------------------------------------------------------------------------------------------

def start_process(args: RunConfig):
    """This process's device, rank and world size; under torchrun the process group is joined here (nccl on
    GPUs, gloo on the CPU). Sets the thread count and resolves --amp auto."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = rank_device(args.device)  # before anything loads: under torchrun each process on cuda:LOCAL_RANK
    if "LOCAL_RANK" in os.environ and not torch.distributed.is_initialized():  # launched by torchrun
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.amp == "auto":
        args.amp = resolve_amp("auto", device)
        if rank == 0:
            print(f"[amp] auto: {args.amp} on {device.type} ({'native bf16' if args.amp == 'bf16' else 'no native bf16'})",
                  flush=True)
    if rank == 0:
        print(f"[run] {torch.get_num_threads()} threads, device {device}, amp {args.amp}", flush=True)
    return device, rank, world


def toy_writer(args: RunConfig):
    """What writes a missing toy dataset (pseudo_gt.write_dataset with the toy UNet), or None under the paper
    preset, whose datasets come from `python pseudo_gt.py`."""
    if args.preset != "toy":
        return None
    return lambda folder, n: write_toy_dataset(folder, n, args.model.sd, extend=args.extend_data)


def prepare_data(args: RunConfig, rank: int, world: int) -> None:
    """Rank 0 writes the dataset if it is missing and validates it once; the others wait at a barrier and then
    read only its manifest."""
    if rank == 0:
        ensure_dataset(args.data, args.num_images, args.extend_data, toy_writer(args), default=TOY_DATASET_IMAGES)
        checked = PseudoGTDataset(args.data)  # validated once, here: the manifest lets the other ranks only stat files
        if world > 1:
            print(f"[data] rank 0 validated {args.data}: {checked.decoded} files decoded", flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # no rank reads the dataset before rank 0 has written and validated it


def ensure_phase1(args: RunConfig, out: Path, device, rank: int, world: int) -> None:
    """Phase 2 without --init starts from OUT/phase1: run (or continue) phase 1 first if it is short of --steps1."""
    p1 = out / "phase1" / "config.json"
    p1_step = read_checkpoint_info(out / "phase1")["step"] if p1.exists() else 0
    if p1_step < args.steps1:
        if rank == 0:
            print(f"[phase 2] phase 1 is {'at step ' + str(p1_step) if p1.exists() else 'missing'} "
                  f"(needs {args.steps1}): running phase 1 first", flush=True)
        resume, args.resume = args.resume, True  # continue whatever phase 1 left
        run_phase(args, 1, args.steps1, device, rank, world)
        args.resume = resume


def validate(ckpt: Path, args: RunConfig, out: Path, device) -> dict:
    """Val metrics of the toy world's val split (evaluate.discovery), its figure, OUT/val_phase{p}.json."""
    from infra.checkpoint import load_checkpoint_model
    model, _ = load_checkpoint_model(ckpt, device)
    val = evaluate.discovery(model, "val", args.eval_images, device)
    evaluate.save_val_figure(model, out / f"val_phase{args.phase}.png", device)
    print("[val] " + " ".join(f"{k} {v:.4f}" for k, v in val.items() if isinstance(v, float)), flush=True)
    return val


def check_data(args: RunConfig) -> dict:
    """--check-data: the dataset's report; with --repair-data, a toy dataset's bad items written again."""
    write = toy_writer(args)
    if args.repair_data and write is None:
        raise SystemExit("--repair-data rewrites toy datasets; remove the bad items' files and rerun the "
                         f"pseudo_gt.py command that wrote {args.data}")
    report = check_dataset(args.data, write if args.repair_data else None)
    print(json.dumps(report, indent=2))
    return report


def run(args: RunConfig) -> dict:
    """One run as `options` describes it: data if missing, phase 1 if phase 2 needs it, the phase, val metrics."""
    device, rank, world = start_process(args)
    if args.check_data:
        return check_data(args)
    out = Path(args.out)
    t0 = time.time()
    if torch.distributed.is_initialized():
        check_shared_out(out)  # before any training: every rank must see rank 0's checkpoints
    prepare_data(args, rank, world)
    if args.phase == 2 and not args.init:
        ensure_phase1(args, out, device, rank, world)
    steps = args.steps if args.steps is not None else (args.steps1 if args.phase == 1 else args.steps2)
    ckpt = run_phase(args, args.phase, steps, device, rank, world)
    result = {"checkpoint": str(ckpt), "minutes": round((time.time() - t0) / 60, 2)}
    if rank == 0 and args.eval_images and args.preset == "toy":
        result["val"] = validate(ckpt, args, out, device)
        (out / f"val_phase{args.phase}.json").write_text(json.dumps(result, indent=2))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


def main(argv=None) -> dict:
    return run(options(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
