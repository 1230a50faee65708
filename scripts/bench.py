"""Speed, measured side by side in one process: ratios against a peer implementation and against floors.

    python scripts/bench.py                                  # everything; writes bench.json
    python scripts/bench.py --only slots step --repeats 9    # a subset
    pip install --no-deps --target .bench_lib slot-attention==1.4.0   # the peer: lucidrains' slot-attention

Every comparison alternates its contenders run by run and reports medians over `--repeats` runs, so that a busy
machine slows both sides alike and the ratio stays stable. The thread count is recorded with the results.

    slots   SlotAttention forward + backward against lucidrains' `slot-attention` 1.4.0 (same shapes, same work)
            and against the floor every implementation pays: LayerNorm + key/value projections, forward + backward.
            GLASS shapes (B 8, N 1024, D 768, K 7, T 5) and the toy preset's (B 16, N 256, D 128, K 5, T 3).
    record  toy pseudo-GT generation with attention recording against the same generation without it.
    step    one toy training step (phase 2, frozen encoder tokens and VAE moments cached as in training) broken
            into its parts: slot module, MLP decoder, matching + semantic loss, UNet forward, backward, optimiser;
            the frozen parts' cost at an item's first visit beside it. Then the GLASS-specific overhead of each
            phase, measured: the whole step (forward, backward, optimiser) against the same step without the two
            guidance losses (λs = λi = 0, i.e. StableLSD), alternating; overhead = 1 − without / with.
    stages  the quick start's stages at a small size: dataset images/s, phase-1 and phase-2 milliseconds per step
            (K 7, batch 16) before the speed levers and with the toy preset's, side by side, and val scenes/s
            (times in a temporary folder; the quick start is 512 images, 900 + 300 steps, 256 scenes).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from statistics import median
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as python scripts/bench.py: the project's modules
PEER = ROOT / ".bench_lib"  # pip install --no-deps --target .bench_lib slot-attention==1.4.0


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternate(contenders: dict, repeats: int, warmup: int = 1) -> dict:
    """Seconds of each contender in every round, run in turn (a, b, c, a, b, c, …) after `warmup` rounds:
    {name: [round 1, round 2, …]}. Read them with `median` and `ratio`."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio(times: dict, a: str, b: str) -> float:
    """Median over rounds of a's time / b's time in the same round: a machine that slows down between rounds
    slows both sides of each quotient alike."""
    return statistics.median(ta / tb for ta, tb in zip(times[a], times[b]))


def load_peer():
    """lucidrains' SlotAttention from .bench_lib, under its own module name (ours is also `slot_attention`)."""
    path = PEER / "slot_attention" / "slot_attention.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("lucidrains_slot_attention", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SlotAttention


# ---------------------------------------------------------------------------------------------------------------
# slots: ours against the peer and the floor
# ---------------------------------------------------------------------------------------------------------------

def bench_slots(repeats: int) -> dict:
    from slot_attention import SlotAttention
    peer_cls = load_peer()
    out = {}
    for name, (b, n, d, k, t) in {"glass": (8, 1024, 768, 7, 5), "toy": (16, 256, 128, 5, 3)}.items():
        torch.manual_seed(0)
        x = torch.randn(b, n, d, requires_grad=True)
        ours = SlotAttention(num_slots=k, dim=d, iters=t, mlp_hidden=d)
        norm, to_k, to_v = ours.norm_inputs, ours.to_k, ours.to_v

        def run_ours():
            ours(x).slots.sum().backward()

        def run_floor():  # what every implementation must pay at these shapes
            h = norm(x)
            (to_k(h).sum() + to_v(h).sum()).backward()

        contenders = {"ours": run_ours, "floor (LayerNorm + k/v projections)": run_floor}
        if peer_cls is not None:
            peer = peer_cls(num_slots=k, dim=d, iters=t, hidden_dim=d)
            contenders["lucidrains slot-attention 1.4.0"] = lambda: peer(x).sum().backward()
        times = alternate(contenders, repeats)
        row = {f"{c} (ms)": round(1000 * median(s), 1) for c, s in times.items()}
        row["ours / floor"] = round(ratio(times, "ours", "floor (LayerNorm + k/v projections)"), 2)
        if peer_cls is not None:
            row["ours / lucidrains"] = round(ratio(times, "ours", "lucidrains slot-attention 1.4.0"), 2)
        out[f"{name} (B {b}, N {n}, D {d}, K {k}, T {t})"] = row
        print(name, row, flush=True)
    if peer_cls is None:
        out["note"] = f"peer not installed: pip install --no-deps --target {PEER.name} slot-attention==1.4.0"
    return out


# ---------------------------------------------------------------------------------------------------------------
# record: attention recording during generation
# ---------------------------------------------------------------------------------------------------------------

def bench_record(repeats: int) -> dict:
    import pseudo_gt as pg
    from infra.loading import quiet_loading
    from toy.world import make_scene
    preset = pg.PRESETS["toy"]
    with quiet_loading():
        pipe = pg.load_pipeline(preset.sd)
    vocab = pg.toy_vocabulary()
    captions = [make_scene("train", i).caption for i in range(8)]
    lists = [pg.find_classes(c, vocab, use_nltk=False).classes for c in captions]
    prompts = [pg.build_prompt(c, cl) for c, cl in zip(captions, lists)]
    ids = pg.class_id_matrix(lists, vocab)

    def gens():
        return [torch.Generator().manual_seed(i) for i in range(8)]

    times = alternate({
        "plain": lambda: pipe(prompts, height=preset.size, width=preset.size, num_inference_steps=preset.steps,
                              guidance_scale=preset.guidance, generator=gens(), output_type="pt"),
        "recording": lambda: pg.generate_with_masks(pipe, prompts, lists, ids, preset.size, gens(), preset.mask,
                                                    steps=preset.steps, guidance=preset.guidance),
    }, repeats)
    row = {"batch": 8, "steps": preset.steps, "plain (s)": round(median(times["plain"]), 3),
           "recording (s)": round(median(times["recording"]), 3),
           "recording / plain": round(ratio(times, "recording", "plain"), 3)}
    print("record", row, flush=True)
    return row


# ---------------------------------------------------------------------------------------------------------------
# step: one training step, part by part
# ---------------------------------------------------------------------------------------------------------------

def toy_batch(n: int = 16) -> tuple:
    """The toy preset's batch: images (n, 3, 64, 64) and their ground-truth semantic maps (n, 64, 64)."""
    from toy.world import ToyScenes
    ds = ToyScenes("train", length=n)
    return torch.stack([ds[i]["image"] for i in range(n)]), torch.stack([ds[i]["semantic"] for i in range(n)])


def toy_model(phase: int, guided: bool = True) -> tuple:
    """The toy preset's model in train mode and its optimiser as train.py builds them for `phase`; `guided=False`
    drops both guidance losses."""
    import glass
    torch.manual_seed(0)
    model = glass.GLASS(glass.preset("toy", semantic=guided, instance=guided)).train()
    params = [p for g in model.param_groups(phase, 1e-4, 1e-4) for p in g["params"]]
    return model, torch.optim.AdamW(params, lr=1e-4, fused=True)


def training_step(phase: int, guided: bool, images: torch.Tensor, masks: torch.Tensor):
    """A closure running one whole toy training step as train.py does (frozen outputs cached), with or without the
    two guidance losses."""
    model, opt = toy_model(phase, guided)
    batch = {"image": images, "mask": masks, "has_classes": torch.ones(len(images), dtype=torch.bool),
             **model.frozen_outputs(images)}
    gen = torch.Generator().manual_seed(0)

    def step():
        out = model(batch, gen)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()
    return step


def bench_step(repeats: int) -> dict:
    import torch.nn.functional as F
    import glass
    from matching import segments_from_semantic, semantic_loss_batched
    model, opt = toy_model(2)
    cfg = model.config
    images, masks = toy_batch()
    gen = torch.Generator().manual_seed(0)
    parts: dict = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        result = fn()
        parts.setdefault(name, []).append(time.perf_counter() - t0)
        return result

    first_visit = {"encoder (frozen)": median_time(lambda: model.encoder(images), repeats),
                   "VAE encode (frozen)": median_time(lambda: model.latent_moments(images), repeats)}
    frozen = model.frozen_outputs(images)  # what data.FrozenCache holds
    feats, moments = frozen["features"], frozen["moments"]

    def step():  # as train.py runs it with the toy preset's --cache-frozen: frozen outputs come cached
        out = timed("slot module", lambda: model.slot_module(feats))
        rec = timed("MLP decoder + instance loss", lambda: F.mse_loss(model.mlp_decoder(out.slots)[0], feats))

        def semantic():
            soft = glass.upsample_masks(out.attn.reshape(16, -1, 16, 16), cfg.match_size)
            seg = segments_from_semantic(masks, cfg.num_classes, True)
            return semantic_loss_batched(soft, seg.masks, seg.present, seg.valid).loss

        sem = timed("matching + semantic loss", semantic)
        latents = timed("latent sample", lambda: model.latents(images, gen, moments))
        recon = timed("UNet forward (recon loss)", lambda: model.recon_loss(latents, out.cond, gen))
        total = recon + cfg.lambda_semantic * sem + cfg.lambda_instance * rec
        opt.zero_grad(set_to_none=True)
        timed("backward (all)", total.backward)
        timed("optimiser", opt.step)

    step()  # warm-up
    parts.clear()
    for _ in range(repeats):
        step()
    med = {k: statistics.median(v) for k, v in parts.items()}
    whole = sum(med.values())
    row = {k: {"ms": round(1000 * v, 1), "share": round(v / whole, 3)} for k, v in med.items()}
    row["first visit of an item, not in the step (ms)"] = {k: round(1000 * v, 1) for k, v in first_visit.items()}
    for phase in (1, 2):  # the guidance's whole cost: forward, its share of the backward, the optimiser
        times = alternate({"with": training_step(phase, True, images, masks),
                           "without": training_step(phase, False, images, masks)}, repeats)
        row[f"phase {phase} step, with / without guidance (ms)"] = [round(1000 * median(times["with"]), 1),
                                                                    round(1000 * median(times["without"]), 1)]
        row[f"phase {phase} GLASS-specific overhead"] = round(1 - ratio(times, "without", "with"), 3)
    print("step", json.dumps(row, indent=1), flush=True)
    return row


STAGE_CONFIGS = {  # bench_stages runs each, side by side: the step before the speed levers and the toy preset's
    "before (K 7, L_instance at all positions, fp32)": dict(instance_positions=0, amp="none"),
    "toy preset": {},
}


def bench_stages(repeats: int, images: int = 32, steps: int = 40, scenes: int = 64) -> dict:
    """The quick start's stages (toy preset, batch 16) at a small size, once per STAGE_CONFIGS entry: dataset
    images/s, then each phase's milliseconds per step from two fresh runs of `steps` and steps // 4 steps (their
    difference cancels model loading), and val scenes/s. `repeats` unused."""
    import tempfile
    import evaluate
    import train
    from toy.dataset import write_toy_dataset
    from infra.checkpoint import load_checkpoint_model
    out = {"images": images, "steps": steps, "scenes": scenes}
    with tempfile.TemporaryDirectory() as tmp:
        device = torch.device("cpu")
        for name, overrides in STAGE_CONFIGS.items():
            rates = {}
            for n in (steps // 4, steps):
                args = train.options(data=f"{tmp}/data", out=f"{tmp}/{len(out)}_{n}", num_images=images, steps1=n,
                                     steps2=n, eval_images=0, log_every=n, ckpt_every=n, num_slots=7, **overrides)
                args.amp = train.resolve_amp(args.amp, device)
                if not Path(args.data, "meta.json").exists():
                    t0 = time.perf_counter()
                    write_toy_dataset(args.data, images, args.model.sd)
                    out["dataset (images/s, with pipeline loading)"] = round(images / (time.perf_counter() - t0), 2)
                for phase in (1, 2):
                    t0 = time.perf_counter()
                    train.run_phase(args, phase, n, device, rank=0, world=1)
                    rates.setdefault(phase, {})[n] = time.perf_counter() - t0
            row = {f"phase {p} (ms/step)": round(1000 * (t[steps] - t[steps // 4]) / (steps - steps // 4), 1)
                   for p, t in rates.items()}
            row["amp"] = args.amp
            model, _ = load_checkpoint_model(f"{args.out}/phase2")
            t0 = time.perf_counter()
            evaluate.discovery(model, "val", scenes, device)
            row["val (scenes/s)"] = round(scenes / (time.perf_counter() - t0), 1)
            out[name] = row
            print("stages", name, row, flush=True)
    return out


BENCHES = {"slots": bench_slots, "record": bench_record, "step": bench_step, "stages": bench_stages}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="a subset")
    ap.add_argument("--repeats", type=int, default=7, help="runs per contender (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (recorded)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench.json")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    import platform
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
              "python": sys.version.split()[0], "repeats": args.repeats}
    for name in args.only or BENCHES:
        report[name] = BENCHES[name](args.repeats)
    args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
