"""What the paper preset costs to train: parameters, peak memory and time of one phase-1 step, one phase-2 step and
one pseudo-GT image, measured with this project's own code on models of the paper's real sizes.

Nothing is downloaded: the models are built from their configs (written below from the public config.json files of
SD 2.1 768-v, DINOv2 ViT-B/14 and OpenCLIP ViT-H's text tower) with random weights into a temporary folder, and the
paper preset is pointed at it. Random weights cost the same time and memory as trained ones.

    python scripts/paper_compute.py                          # CPU: batch 2, a few steps; writes paper_compute.json
    python scripts/paper_compute.py --device cuda --batch-size 32 --gen-steps 100 --dtype bf16   # a GPU

A training step is measured as train.py runs it on one process (`measure_step`): its loader over 768-px PNGs, its
optimiser, the host-to-device copy, the model's own resizing to 448 px (DINOv2) and 256 px (the VAE). Each
measurement runs in its own process, so that its peak memory is its own (CUDA: max_memory_allocated; CPU: the
process's peak resident set). Times are medians over --repeats steps after one warm-up step. On a GPU the script
also prints the GPU-hours of the preset's schedule (train.PRESETS["paper"]: 200,000 phase-1 and 50,000 phase-2
steps at the global batch of 128) on 1, 4 and 8 GPUs (`gpu_hours`, which says what it leaves out: the all-reduce
and multi-process input stalls). Not measured: BLIP-2 captioning (one caption per real image; 3.9 B parameters).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the public configs of the paper's models (only what differs from the classes' defaults)
SD21_UNET = dict(sample_size=96, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
                 cross_attention_dim=1024, use_linear_projection=True, upcast_attention=True,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=768,
              block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4)
SD21_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
OPENCLIP_H_TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                       num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512)
DINOV2_B14 = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4, patch_size=14,
                  image_size=518)


def write_models(folder: Path) -> None:
    """An SD 2.1-shaped pipeline folder (sd/) and a DINOv2 ViT-B/14 folder (encoder/), random weights."""
    import shutil
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, Dinov2Config, Dinov2Model
    torch.manual_seed(0)
    sd = folder / "sd"
    UNet2DConditionModel(**SD21_UNET).save_pretrained(sd / "unet")
    AutoencoderKL(**SD_VAE).save_pretrained(sd / "vae")
    DDPMScheduler.from_config(SD21_SCHEDULER).save_pretrained(sd / "scheduler")  # extra DDIM keys are kept in the file
    CLIPTextModel(CLIPTextConfig(**OPENCLIP_H_TEXT)).save_pretrained(sd / "text_encoder")
    shutil.copytree(ROOT / "toy_models" / "sd" / "tokenizer", sd / "tokenizer")  # its cost is nil; its ids fit
    shutil.copy(ROOT / "toy_models" / "sd" / "model_index.json", sd / "model_index.json")
    Dinov2Model(Dinov2Config(**DINOV2_B14)).save_pretrained(folder / "encoder")


def peak_memory(device: torch.device) -> float:
    """GiB: CUDA max allocated, or the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_dataset(folder: Path, n: int, size: int = 768) -> Path:
    """A pseudo-GT dataset folder of n random 768-px images and masks in the writer's layout (pseudo_gt.py), for the
    loader to read as in training: PNG decoding, uint8 batches, the host-to-device copy."""
    import numpy as np
    from infra.data import ItemWriter
    out = folder / "data"
    writer = ItemWriter(out)
    rng = np.random.default_rng(0)
    for i in range(n):
        writer.write(i, {"image": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                         "mask": rng.integers(0, 4, (size, size), dtype=np.uint8)},
                     {"has_classes": True, "prompt": "a person walking a dog; person dog"})
    (out / "meta.json").write_text(json.dumps({"size": size, "num_images": n, "classes": [f"c{i}" for i in range(80)]}))
    return out


def measure_step(folder: str, phase: int, batch: int, repeats: int, device: str, dtype: str, workers: int,
                 out) -> None:
    """One optimiser step of `phase` as train.py runs it on one process: its options (the paper preset), its
    `build` (fused AdamW over the phase's groups), its loader over 768-px PNGs (uint8, pinned on a GPU), its
    host-to-device copy and conversion, its `forward` (autocast, the finiteness check), backward, clip, step."""
    import train
    from infra.data import PseudoGTDataset, batch_to_device, make_loader
    dev = torch.device(device)
    flags = ["--preset", "paper", "--encoder", f"{folder}/encoder", "--sd", f"{folder}/sd", "--data",
             f"{folder}/data", "--out", f"{folder}/run", "--batch-size", str(batch), "--global-batch", str(batch),
             "--workers", str(workers), "--amp", "bf16" if dtype == "bf16" else "none", "--device", device]
    args = train.options(flags)
    model, opt, gen = train.build(args, phase, dev, 0)
    pin = dev.type == "cuda"
    loader = iter(make_loader(PseudoGTDataset(args.data, raw=True, quiet=True), args, 0, repeats + 1, 0, 1,
                              pin_memory=pin))
    params = [q for g in opt.param_groups for q in g["params"]]
    state = {"step": 0}

    def step():
        batch_in = batch_to_device(next(loader), dev, non_blocking=pin)
        if args.hflip:
            batch_in = train.flip_half(batch_in, args.seed, state["step"])
        losses = train.forward(model, batch_in, gen, args.amp, dev, phase, state["step"], Path(args.out))
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        state["step"] += 1

    seconds = timed(step, repeats, dev)
    count = lambda m: sum(q.numel() for q in m.parameters())  # noqa: E731
    out.put({"what": f"phase {phase} step", "batch": batch, "seconds": seconds, "peak_gib": peak_memory(dev),
             "params": {"unet": count(model.unet), "vae": count(model.vae), "encoder": count(model.encoder.model),
                        "slot_module": count(model.slot_module), "mlp_decoder": count(model.mlp_decoder)},
             "trained_params": sum(q.numel() for q in params)})


def gpu_hours(results: list, batch: int) -> dict:
    """GPU-hours of the paper preset's schedule at its global batch (train.PRESETS["paper"]) on 1, 4 and 8 GPUs,
    from the step time measured at `batch` images per GPU: a global step is global_batch / (batch × GPUs) passes,
    each as long as the measured one. Left out: the gradient all-reduce between GPUs and input stalls of several
    processes on one host (so 4 and 8 GPUs are lower bounds), BLIP-2 captioning and the pseudo-GT images."""
    from train import PRESETS
    paper = PRESETS["paper"]
    out = {}
    for phase, steps in ((1, paper.steps1), (2, paper.steps2)):
        r = next((r for r in results if r["what"] == f"phase {phase} step"), None)
        if r is None:
            continue
        for gpus in (1, 4, 8):
            passes = paper.global_batch / (batch * gpus)
            if passes >= 1 and passes == int(passes):
                out[f"phase {phase}, {gpus} GPU(s)"] = round(r["seconds"] * passes * steps * gpus / 3600, 1)
    return out


def measure_pseudo_gt(folder: str, steps: int, device: str, out) -> None:
    """One pseudo-GT image at the paper preset (768 px, guidance 7.5, attention recorded, masks refined), timed with
    `steps` denoising steps and with one: the difference gives the cost of a step, the rest the fixed cost (text
    encoding, VAE decoding, refinement), and together the preset's steps (100, as Dataset Diffusion)."""
    import pseudo_gt
    from infra.loading import quiet_loading
    dev = torch.device(device)
    preset = pseudo_gt.PRESETS["paper"]
    with quiet_loading():
        pipe = pseudo_gt.load_pipeline(f"{folder}/sd", device=dev, scheduler=preset.scheduler)
    classes = [["person", "dog"]]
    ids = torch.tensor([[1, 18]])

    def one(n):
        pseudo_gt.generate_with_masks(pipe, ["a person walking a dog; person dog"], classes, ids, preset.size,
                                      torch.Generator().manual_seed(0), preset.mask, steps=n,
                                      guidance=preset.guidance, negative_prompt=preset.negative_prompt)

    seconds = timed(lambda: one(steps), 1, dev)
    single = timed(lambda: one(1), 1, dev)
    per_step = (seconds - single) / max(steps - 1, 1)  # the marginal cost of a denoising step
    fixed = single - per_step  # text encoding, VAE decoding, mask refinement
    out.put({"what": "pseudo-GT image", "batch": 1, "seconds": seconds, "steps": steps, "seconds_per_step": per_step,
             "seconds_fixed": fixed, "seconds_at_preset_steps": fixed + per_step * preset.steps,
             "preset_steps": preset.steps, "peak_gib": peak_memory(dev)})


def run_isolated(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"{target.__name__}{args} failed (exit code {p.exitcode})")
    return q.get()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=2, help="images per GPU and pass (the paper preset's global "
                                                                 "batch is 128: 32 on 4 GPUs, 16 on 8)")
    ap.add_argument("--workers", type=int, default=2, help="loader processes, as train.py --workers")
    ap.add_argument("--repeats", type=int, default=2, help="timed steps after one warm-up")
    ap.add_argument("--gen-steps", type=int, default=2, help="denoising steps timed for the pseudo-GT image")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="training steps under bf16 autocast")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", nargs="+", choices=["phase1", "phase2", "pseudo_gt"],
                    default=["phase1", "phase2", "pseudo_gt"])
    ap.add_argument("--out", type=Path, default=Path("paper_compute.json"))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_models(Path(tmp))
        write_dataset(Path(tmp), args.batch_size * (args.repeats + 1))
        print(f"models and {args.batch_size * (args.repeats + 1)} 768-px images written in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for what in args.only:
            if what == "pseudo_gt":
                r = run_isolated(measure_pseudo_gt, tmp, args.gen_steps, args.device)
            else:
                r = run_isolated(measure_step, tmp, int(what[-1]), args.batch_size, args.repeats, args.device,
                                 args.dtype, args.workers)
            print(json.dumps(r), flush=True)
            results.append(r)
    device = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"CPU, {threads} threads"
    report = {"device": device, "dtype": args.dtype, "results": results}
    if args.device.startswith("cuda"):
        report["gpu_hours"] = gpu_hours(results, args.batch_size)
    if args.out.exists() and set(args.only) != {"phase1", "phase2", "pseudo_gt"}:  # a partial rerun keeps the rest
        old = json.loads(args.out.read_text())
        if old.get("device") == device:
            report["results"] = [r for r in old["results"] if r["what"] not in {x["what"] for x in results}] + results
    args.out.write_text(json.dumps(report, indent=2))
    print("| what | batch | s / step | peak memory (GiB) |\n|---|---|---|---|")
    for r in report["results"]:
        print(f"| {r['what']} | {r['batch']} | {r['seconds']:.2f} | {r['peak_gib']:.1f} |")
    for k, v in report.get("gpu_hours", {}).items():
        print(f"GPU-hours, {k}: {v} (a lower bound: no all-reduce, no multi-process input stalls)")
    print(f"device: {device}, {args.dtype}; wrote {args.out}")


if __name__ == "__main__":
    main()
