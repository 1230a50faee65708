"""Smoke test of the paper preset's machinery on a GPU machine, in a few minutes and without any download.

    python scripts/gpu_smoke.py                 # cuda when available: NCCL, bf16 autocast, bf16 generation
    python scripts/gpu_smoke.py --device cpu    # the same on CPU (gloo, float32): what CI runs

Tiny models of the real classes (toy/pretrain.py --tiny: a diffusers Stable Diffusion folder, a transformers
Dinov2Model, the toy captioner) go through every step a multi-GPU user meets, each a separate process as a user
would start it:
1. the models, built from configs;
2. the pseudo-GT writer under torchrun on 2 images (the rank's own device, --dtype);
3. phase 1 under `torchrun --nproc_per_node 1` (NCCL on a GPU, gloo on CPU), with autocast on a GPU;
4. the same phase resumed from its checkpoint to more steps;
5. phase 2 from that checkpoint;
6. `evaluate.py discovery --coco` on a tiny COCO-format dataset written here.
On a GPU (or with `--real-sizes`), then the paper preset at the paper's real sizes with random weights
(scripts/paper_compute.py's models: SD 2.1 UNet, VAE and text encoder, DINOv2 ViT-B/14) on 768-px PNGs:
7. phase 1 for 2 steps under bf16 (torchrun, 1 process), 8. resumed to 3 steps, 9. phase 2 for 2 steps,
10. the compute measurement (scripts/paper_compute.py: both training steps, one pseudo-GT image).
Each step prints its wall time, and the end one table; the script fails on the first step that fails.

    python scripts/gpu_smoke.py --device cuda   # about 8 minutes on one H100 (budget; not yet run on a GPU)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_tiny_coco(folder: Path, n: int = 2, size: int = 80) -> tuple[Path, Path]:
    """n random images with two box-shaped objects each, as COCO-format annotations (RLE) and PNG files."""
    from PIL import Image
    from pycocotools import mask as mask_utils
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "car"}]}
    for i in range(n):
        name = f"{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (size, size + 20, 3), dtype=np.uint8)).save(images / name)
        data["images"].append({"id": i + 1, "file_name": name, "height": size, "width": size + 20})
        for j, (y, x) in enumerate(((10, 20), (40, 50))):
            m = np.zeros((size, size + 20), np.uint8, order="F")
            m[y:y + 25, x:x + 25] = 1
            r = mask_utils.encode(m)
            data["annotations"].append({"id": 10 * i + j + 1, "image_id": i + 1, "category_id": j + 1, "iscrowd": 0,
                                        "segmentation": {"counts": r["counts"].decode("ascii"), "size": [size, size + 20]}})
    path = folder / "annotations.json"
    path.write_text(json.dumps(data))
    return path, images


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--real-sizes", action="store_true", help="also the paper's real model sizes (default on a GPU)")
    args = ap.parse_args(argv)
    import torch
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    gpu = device == "cuda"
    work = args.work or Path(tempfile.mkdtemp(prefix="glass_smoke_"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": os.environ.get(
        "OMP_NUM_THREADS", "2")}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29561"]
    models, data, run = work / "models", work / "data", work / "run"
    tiny = ["--encoder", str(models / "encoder"), "--sd", str(models / "sd"), "--data", str(data), "--out", str(run),
            "--slot-dim", "16", "--slot-mlp-hidden", "16", "--decoder-hidden", "32", "--num-slots", "4",
            "--batch-size", "2", "--log-every", "1", "--workers", "0", "--eval-images", "0", "--warmup", "1", "--device", device,
            "--amp", "bf16" if gpu else "none"]
    coco, images = write_tiny_coco(work / "coco")
    steps = [
        ("tiny models from configs", [sys.executable, "-m", "toy.pretrain", "--stage", "all", "--tiny", "--max-steps",
                                      "1", "--out", str(models)]),
        ("pseudo-GT writer, torchrun, 2 images", [*torchrun, str(ROOT / "pseudo_gt.py"), "--preset", "toy", "--sd",
                                                 str(models / "sd"), "--num-images", "2", "--out", str(data),
                                                 "--steps", "2", "--batch-size", "2", "--device", device,
                                                 "--dtype", "bfloat16" if gpu else "float32", "--nltk", "no"]),
        (f"phase 1, torchrun ({'nccl' if gpu else 'gloo'}), 2 steps", [*torchrun, str(ROOT / "train.py"), *tiny,
                                                                      "--phase", "1", "--steps", "2"]),
        ("phase 1 resumed to 4 steps", [*torchrun, str(ROOT / "train.py"), *tiny, "--phase", "1", "--steps", "4",
                                        "--resume"]),
        ("phase 2, 2 steps", [*torchrun, str(ROOT / "train.py"), *tiny, "--phase", "2", "--steps", "2"]),
        ("evaluate.py discovery --coco", [sys.executable, str(ROOT / "evaluate.py"), "discovery", "--ckpt",
                                          str(run / "phase2"), "--coco", str(coco), "--images", str(images),
                                          "--device", device, "--out", str(work / "coco_report.json")]),
    ]
    if gpu or args.real_sizes:
        steps += real_size_steps(work, device, torchrun)
    print(f"[smoke] device {device}, torch {torch.__version__}, work folder {work}", flush=True)
    total, table = time.time(), []
    for name, cmd in steps:
        t0 = time.time()
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-5000:], sep="\n")
            raise SystemExit(f"[smoke] FAILED: {name} (exit {r.returncode}): {' '.join(cmd)}")
        print(f"[smoke] {name}: {time.time() - t0:.1f} s", flush=True)
        table.append((name, time.time() - t0))
        if "resumed" in name and "resuming at step 2" not in r.stdout:
            raise SystemExit(f"[smoke] FAILED: {name} did not resume from step 2:\n{r.stdout[-2000:]}")
        if "torchrun" in name and "train.py" in " ".join(cmd) and "ranks in sync after phase 1: True" not in r.stdout:
            raise SystemExit(f"[smoke] FAILED: {name}: no rank check after the phase:\n{r.stdout[-2000:]}")
    report = json.loads((work / "coco_report.json").read_text())
    print(f"[smoke] tiny COCO: {report['images_scored']} images scored, mIoU_i {report['miou_i']:.3f} (untrained)")
    name = torch.cuda.get_device_name(0) if gpu else "CPU"
    print(f"\n| step ({name}) | seconds |\n|---|---|")
    for step, seconds in table:
        print(f"| {step} | {seconds:.1f} |")
    if (work / "compute.json").exists():
        compute = json.loads((work / "compute.json").read_text())
        for r in compute["results"]:
            print(f"| compute: {r['what']}, batch {r['batch']} | {r['seconds']:.2f} (peak {r['peak_gib']:.1f} GiB) |")
        for k, v in compute.get("gpu_hours", {}).items():
            print(f"| GPU-hours, {k} | {v} |")
    print(f"[smoke] all steps passed in {time.time() - total:.1f} s on {device}", flush=True)


def real_size_steps(work: Path, device: str, torchrun: list) -> list:
    """The paper preset at its real model sizes (random weights) on 768-px images: two phases, a resume and the
    compute measurement, as commands. The models and images are written here by scripts/paper_compute.py's code."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import paper_compute
    folder = work / "paper"
    t0 = time.time()
    paper_compute.write_models(folder)
    paper_compute.write_dataset(folder, 8)
    print(f"[smoke] paper-size models and 8 768-px images written: {time.time() - t0:.1f} s", flush=True)
    amp = "bf16" if device == "cuda" else "none"
    flags = ["--preset", "paper", "--encoder", str(folder / "encoder"), "--sd", str(folder / "sd"), "--data",
             str(folder / "data"), "--out", str(folder / "run"), "--batch-size", "2", "--global-batch", "2",
             "--workers", "2", "--log-every", "1", "--amp", amp, "--device", device]
    train = [*torchrun, str(ROOT / "train.py"), *flags]
    return [
        ("paper sizes: phase 1, 2 steps", [*train, "--phase", "1", "--steps", "2", "--ckpt-every", "2"]),
        ("paper sizes: phase 1 resumed to 3 steps", [*train, "--phase", "1", "--steps", "3", "--resume"]),
        ("paper sizes: phase 2, 2 steps", [*train, "--phase", "2", "--steps", "2", "--steps1", "3"]),
        ("paper sizes: compute measurement", [sys.executable, str(ROOT / "scripts" / "paper_compute.py"), "--device",
                                              device, "--batch-size", "16" if device == "cuda" else "1",
                                              "--repeats", "2", "--gen-steps", "3", "--dtype",
                                              "bf16" if device == "cuda" else "fp32", "--out",
                                              str(work / "compute.json")]),
    ]


if __name__ == "__main__":
    main()
