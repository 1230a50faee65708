"""Checkpoints that survive a crash, and the state that makes a resumed run continue exactly (GLASS §4, training).

A checkpoint folder (out/phase{1,2}/) holds model.safetensors (trainable weights), config.json (model config,
phase, step, versions, arguments) and train_state.pt (optimiser, RNG; loaded with weights_only=True). It is written
into folder.tmp and swapped in by two renames, so a crash at any point leaves either the old or the new checkpoint
whole; `recover_checkpoint` finishes or undoes an interrupted swap. `check_ranks_in_sync` verifies that DDP
replicas stayed identical. `resume_or_init` starts a phase: from its own checkpoint (--resume), from phase 1's
weights (phase 2), or from scratch. Checked by tests/test_reliability.py (crashes at every point of the swap, exact
resume).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch


def versions() -> dict:
    import diffusers
    import transformers
    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0], "threads": torch.get_num_threads()}  # results differ across threads


def complete(folder: Path) -> bool:
    names = ("model.safetensors", "config.json", "train_state.pt")
    return folder.is_dir() and all((folder / n).exists() for n in names)


def recover_checkpoint(folder: Path) -> None:
    """Finish or undo a swap that a crash interrupted (see save_checkpoint): folder.tmp is the new checkpoint
    being written, folder.old the previous one while the new one is renamed into place."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    if not folder.exists() and old.exists():
        if complete(tmp):
            tmp.rename(folder)  # crashed between the two renames: the new checkpoint was whole
        else:
            old.rename(folder)
    for leftover in (tmp, old):
        if leftover.exists() and complete(folder):
            shutil.rmtree(leftover)


def save_checkpoint(folder: Path, model, opt, phase: int, step: int, args, rng: dict) -> None:
    """Write weights, config and train state into folder.tmp, then swap it in (atomic on one filesystem; a crash at
    any point leaves a state that `recover_checkpoint` resolves)."""
    from safetensors.torch import save_file
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(model.trainable_state(phase), tmp / "model.safetensors")
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    info = {"model": json.loads(model.config.to_json()), "phase": phase, "step": step, "versions": versions(),
            "world": world, "args": {k: v for k, v in vars(args).items() if k != "model"}}
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


def rng_state(gen: torch.Generator, device: torch.device = torch.device("cpu")) -> dict:
    """The only randomness of a step: slot-init noise (the global RNG of the model's device: CPU, or the current
    CUDA device's) and diffusion noise/timesteps (gen). The data order is a function of (seed, step), see
    data.StepSampler."""
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def rng_states(gen: torch.Generator, device: torch.device = torch.device("cpu")) -> dict:
    """Every rank's `rng_state`, gathered (a collective under torchrun: every rank calls it): {"ranks": [...]}, so
    that a resumed multi-process run continues each rank's own streams."""
    state = rng_state(gen, device)
    if not torch.distributed.is_initialized():
        return {"ranks": [state]}
    gathered = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, state)
    return {"ranks": gathered}


def rank_rng_state(saved: dict, rank: int, world: int) -> dict:
    """This rank's streams from a checkpoint's {"ranks": [...]}."""
    ranks = saved["ranks"]
    if len(ranks) != world:
        raise SystemExit(f"the checkpoint holds the random streams of {len(ranks)} processes, this run has {world}")
    return ranks[rank]


def set_rng_state(state: dict, gen: torch.Generator, device: torch.device = torch.device("cpu")) -> None:
    torch.set_rng_state(state["torch"].cpu())
    gen.set_state(state["gen"].cpu())
    if device.type == "cuda":
        if "cuda" not in state:
            raise SystemExit("this checkpoint was written without CUDA: its slot noise cannot be continued exactly "
                             "on a GPU; resume it on the CPU, or start a new --out")
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def read_checkpoint_info(folder: Path) -> dict:
    if not (folder / "config.json").exists():
        raise SystemExit(f"{folder} is not a GLASS checkpoint (no config.json)")
    return json.loads((folder / "config.json").read_text())


def check_ranks_in_sync(model, phase: int) -> None:
    """DDP keeps replicas identical; verify it: every rank's checksum of the trainable weights must agree."""
    import torch.distributed as dist
    device = next(model.parameters()).device  # NCCL gathers CUDA tensors only; gloo takes CPU ones
    total = torch.zeros(1, dtype=torch.float64, device=device)
    for v in model.trainable_state(phase).values():
        total += v.double().sum().to(device)
    gathered = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, total)
    in_sync = all(torch.equal(g, gathered[0]) for g in gathered)
    if dist.get_rank() == 0:
        print(f"[ddp] ranks in sync after phase {phase}: {in_sync} (checksums {[float(g) for g in gathered]})",
              flush=True)
    if not in_sync:
        raise SystemExit("DDP ranks diverged")


def check_shared_out(out: Path) -> None:
    """Under torchrun, before any training: every rank must see the run folder rank 0 writes, since only rank 0
    saves checkpoints and every rank reads them (phase 2's start, --resume). Rank 0 writes a random token into
    OUT; every rank reads it back; if any rank does not see it (nodes with their own local disks), every rank stops
    with the same message instead of dying after phase 1 or hanging in a resume at the wrong step."""
    import uuid
    import torch.distributed as dist
    rank = dist.get_rank()
    token_file = Path(out) / ".shared-out-check"
    token = [uuid.uuid4().hex if rank == 0 else None]
    if rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        token_file.write_text(token[0])
    dist.broadcast_object_list(token, src=0)
    dist.barrier()
    try:
        seen = token_file.read_text() == token[0]
    except OSError:
        seen = False
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    missing = torch.tensor([0.0 if seen else 1.0], device=device)
    dist.all_reduce(missing)  # how many ranks do not see it
    if missing.item() > 0:
        raise SystemExit(f"--out {out}: {int(missing.item())} of {dist.get_world_size()} processes do not see the "
                         f"folder that rank 0 writes (run folders on node-local disks?). Only rank 0 saves "
                         f"checkpoints and every rank reads them: give --out a folder on a filesystem all nodes "
                         f"share")


def rank_device(device: str) -> torch.device:
    """The device of this process: "cuda" becomes cuda:LOCAL_RANK (torchrun sets it; 0 otherwise) and is made the
    current CUDA device, so sharded writers never all load their models onto GPU 0."""
    if device != "cuda":
        return torch.device(device)
    local = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


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
               ("seed", args.seed), ("world", world), ("global_batch", args.global_batch), ("hflip", args.hflip))
               if saved.get(k) != v]
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
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    set_rng_state(rank_rng_state(state["rng"], rank, world), gen, device)
    if is_main:
        print(f"[phase {phase}] resuming at step {state['step']}", flush=True)
    return state["step"]


# ---------------------------------------------------------------------------------------------------------------
# a model from its config or its checkpoint folder
# ---------------------------------------------------------------------------------------------------------------

def build_model(config):
    """GLASS of `config` (glass.GLASSConfig); the Tab. 5 baselines' subclass when the config has a slot prior."""
    if config.slot_prior != "none":
        from experiments.prior_model import SlotPriorGLASS
        return SlotPriorGLASS(config)
    from glass import GLASS
    return GLASS(config)


def load_checkpoint_model(folder, device="cpu") -> tuple:
    """Rebuild a model from a checkpoint folder alone (config.json + model.safetensors): (model, config.json's
    contents)."""
    from safetensors.torch import load_file
    from glass import GLASSConfig
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} is not a GLASS checkpoint (config.json missing)")
    info = json.loads((folder / "config.json").read_text())
    model = build_model(GLASSConfig.from_dict(info["model"]))
    model.load_trainable_state(load_file(folder / "model.safetensors"))
    return model.to(device), info
