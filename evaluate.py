"""The paper's experiments (GLASS §5) as commands, on the toy world.

    python evaluate.py discovery --ckpt runs/toy/phase2          # object discovery on val and shift (+ SO/PO/GO)
    python evaluate.py ablation --seeds 0 1 2 --steps 400        # loss ablation (paper Tab. 6a) on phase 1
    python evaluate.py ladder --steps 400                        # where binding is won or lost (docs/binding.md)
    python evaluate.py tables --budget full --out runs/tables    # Tab. 2–4 and GLASS†: StableLSD, DINOSAUR, k-means

Masks are the last-iteration slot attention resized bilinearly to the ground truth and argmaxed over slots;
background is not a GT segment (DINOSAUR/SPOT protocol) unless `--background-segment`.
The ladder scores k-means floors (per image, K = slots, on encoder tokens and on pixel colour + position), the
ground-truth semantic mask as if it were slot masks, and phase-1 runs on the quick start's data and on oracle
datasets of real scenes with ground-truth semantic or instance masks. FG-ARI is reported over all scenes and over
scenes with two or more objects (single-object scenes score 0 for any mask upsampled from a token grid).
Built so far: discovery, the loss ablation, the ladder, and tables 2–4 (StableLSD and DINOSAUR as configurations:
the same slot module trained on real toy scenes with the diffusion decoder alone, or the MLP feature decoder alone).
GLASS† (prompts from ground-truth class names) is built too; tables 5, 6a (as `ablation` for now), 6b, 6c and the
generation, property-prediction and semantic-level tables are still to come.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

import pseudo_gt
import train
from slot_attention import build_grid
from toy import world
from train import discovery, discovery_of

ROOT = Path(__file__).resolve().parent

ABLATIONS = {  # name → train.options overrides (paper Tab. 6a)
    "recon only": dict(no_semantic=True, no_instance=True),
    "+ semantic": dict(no_instance=True),
    "+ instance": dict(no_semantic=True),
    "all three": dict(),
}


# ---------------------------------------------------------------------------------------------------------------
# classical floors: k-means per image (docs/design.md §6)
# ---------------------------------------------------------------------------------------------------------------

def pixel_tokens(images: torch.Tensor, patch: int = 4, position_weight: float = 2.0) -> torch.Tensor:
    """Colour + position tokens on the encoder's grid: each patch×patch cell's pixels (3·patch² values in [0, 1])
    and its centre (x, y) in [0, 1] times `position_weight` (2: the strongest of 0.5 / 1 / 2 on 128 val scenes, so
    the floor is not a straw man). (B, 3, H, W) → (B, N, 3·patch² + 2)."""
    b, _, h, w = images.shape
    cells = images.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, 3, h', w', p, p)
    gh, gw = h // patch, w // patch
    colour = cells.permute(0, 2, 3, 1, 4, 5).reshape(b, gh * gw, -1)  # (B, N, 3p²)
    pos = build_grid(gh, gw)[None, :, :2].expand(b, -1, -1) * position_weight  # (B, N, 2): (x, y) of each cell
    return torch.cat([colour, pos], dim=-1)


def kmeans_labels(tokens: torch.Tensor, k: int, size: int, seed: int = 0) -> torch.Tensor:
    """k-means with K clusters on each image's tokens (B, N, D) on a square grid → label maps (B, size, size),
    nearest-neighbour upsampled (scikit-learn KMeans, 3 restarts)."""
    from sklearn.cluster import KMeans
    b, n, _ = tokens.shape
    side = int(round(n ** 0.5))
    labels = torch.stack([torch.from_numpy(KMeans(n_clusters=k, n_init=3, random_state=seed)
                                           .fit_predict(tokens[i].double().numpy())).long() for i in range(b)])
    grid = labels.reshape(b, 1, side, side).float()  # (B, 1, h, w)
    return F.interpolate(grid, size=(size, size), mode="nearest")[:, 0].long()


def kmeans_floor(kind: str, split: str, n: int, k: int, encoder=None) -> dict:
    """Discovery of the k-means floor on encoder tokens (`kind` "tokens", needs `encoder`: a FrozenEncoder) or
    on pixel colour + position (`kind` "pixels")."""
    def predict(batch):
        images = batch["image"]
        with torch.no_grad():
            tokens = encoder(images) if kind == "tokens" else pixel_tokens(images)
        return kmeans_labels(tokens, k, images.shape[-1])
    return discovery_of(predict, split, n)


# ---------------------------------------------------------------------------------------------------------------
# the binding ladder: where object binding is won or lost
# ---------------------------------------------------------------------------------------------------------------

ORACLE_OFFSET = 5_000_000  # train-stream scenes of the oracle datasets (the pseudo-GT writer uses 0, 1, …)


def write_oracle_dataset(out: Path, num_images: int, masks: str) -> Path:
    """Real toy train scenes with their ground-truth masks, in the pseudo-GT dataset format (PseudoGTDataset reads
    it): `masks` "semantic" (class id per pixel, as a perfect pseudo mask would be) or "instance" (each object
    its own segment id 1..n, so the "semantic" guidance becomes instance guidance). Only the ladder's oracle
    rungs use these; GLASS itself never sees ground truth. Resumable: existing items are kept."""
    if masks not in ("semantic", "instance"):
        raise ValueError(f"masks must be 'semantic' or 'instance', got {masks!r}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    classes = list(world.CLASSES) if masks == "semantic" else \
        [f"object {i}" for i in range(1, world.SPLITS["train"].max_objects + 1)]
    meta = {"preset": f"toy-oracle-{masks}", "classes": classes, "source": f"toy:train:{ORACLE_OFFSET}+i"}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    done = pseudo_gt.read_done(out)
    jsonl = out / "items-rank0.jsonl"
    for i in range(num_images):
        if i in done:
            continue
        scene = world.make_scene("train", ORACLE_OFFSET + i)
        mask = scene.semantic if masks == "semantic" else scene.instance
        pseudo_gt.save_png_atomic(scene.image, out / "images" / f"{i:07d}.png")
        pseudo_gt.save_png_atomic(mask.astype(np.uint8), out / "masks" / f"{i:07d}.png")
        pseudo_gt.append_jsonl(jsonl, {"index": i, "image": f"images/{i:07d}.png", "mask": f"masks/{i:07d}.png",
                                        "caption": scene.caption, "prompt": scene.caption, "classes": scene.classes,
                                        "has_classes": True, "source": f"toy:train:{ORACLE_OFFSET + i}"})
    return out


def trained_row(run: Path, extra: list, splits: dict, **overrides) -> dict:
    """Train (or finish, or read back) a phase-1 run in `run` with `extra` flags and `overrides`, then score its
    checkpoint on each split ({split: scenes}). Returns {split: metrics, "minutes": training and scoring time}."""
    from glass import load_checkpoint_model
    t0 = time.time()
    train.run(train.options(extra, phase=1, out=str(run), eval_images=0, resume=True, **overrides))
    model, _ = load_checkpoint_model(run / "phase1")
    scores = {s: discovery(model, s, n, torch.device("cpu")) for s, n in splits.items()}
    return {**scores, "minutes": round((time.time() - t0) / 60, 2)}


# (rung name, training data, train.options overrides): the same slot model and budget on every rung
LADDER = [
    ("generated + pseudo semantic masks (GLASS), all three", "pseudo", dict()),
    ("generated images, recon + instance (no semantic guidance)", "pseudo", dict(no_semantic=True)),
    ("real + GT semantic masks, all three", "semantic", dict()),
    ("real + GT semantic masks, semantic only", "semantic", dict(no_recon=True, no_instance=True)),
    ("real + GT instance masks, semantic only", "instance", dict(no_recon=True, no_instance=True)),
    ("real + GT instance masks, all three", "instance", dict()),
]
LADDER_KEYS = ("miou_i", "mbo_i", "fg_ari", "fg_ari_multi", "so", "go")


def run_ladder(out: Path, steps: int, images: int, eval_images: int, pseudo_data: Path, extra: list,
               only: Optional[list] = None) -> dict:
    """Train every rung of LADDER for `steps` phase-1 steps (resumable: finished runs are read back) and score
    them, with the k-means floors, on val and shift. Returns {rung: {split: metrics}}."""
    from glass import FrozenEncoder
    args = train.options(extra, phase=1)
    results_path = out / "ladder.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    splits = {"val": eval_images, "shift": min(eval_images, len(world.ToyScenes("shift")))}

    def save():
        results_path.write_text(json.dumps(results, indent=2))

    cfg = train.model_config(args)
    k = cfg.slots.num_slots
    encoder = FrozenEncoder(cfg.encoder, cfg.encoder_size, cfg.encoder_mean, cfg.encoder_std) \
        if only is None or "tokens" in only else None
    floors = [  # (row, --only key, scorer of one split)
        (f"k-means on encoder tokens (K = {k})", "tokens", lambda s, n: kmeans_floor("tokens", s, n, k, encoder)),
        (f"k-means on pixel colour + position (K = {k})", "pixels", lambda s, n: kmeans_floor("pixels", s, n, k)),
        ("ground-truth semantic mask as slots (perfect semantic guidance)", "ceiling",
         lambda s, n: discovery_of(lambda batch: batch["semantic"], s, n)),
    ]
    for name, key, score in floors:
        if name not in results and (only is None or key in only):
            results[name] = {s: score(s, n) for s, n in splits.items()}
            save()
            print(f"[ladder] {name}: " + _fmt(results[name]["val"]), flush=True)
    for r, (name, data, flags) in enumerate(LADDER):
        if name in results or (only is not None and str(r + 1) not in only):
            continue
        if data == "pseudo":
            data_dir = pseudo_data
        else:
            data_dir = write_oracle_dataset(out / f"data_gt_{data}", images, data)
        results[name] = trained_row(out / f"rung{r + 1}", extra, splits, steps=steps, data=str(data_dir), **flags)
        save()
        print(f"[ladder] {name}: " + _fmt(results[name]["val"]), flush=True)
    return results


def _fmt(r: dict) -> str:
    return " ".join(f"{k} {r[k]:.3f}" for k in LADDER_KEYS)


def ladder_table(results: dict) -> str:
    head = ["mIoU_i", "mBO_i", "FG-ARI all", "FG-ARI multi", "SO", "GO"]
    lines = ["| rung | " + " | ".join(head) + " | shift mIoU_i | shift FG-ARI multi |",
             "|---|" + "---|" * (len(head) + 2)]
    for name, r in results.items():
        v, s = r["val"], r["shift"]
        lines.append(f"| {name} | " + " | ".join(f"{v[k]:.3f}" for k in LADDER_KEYS)
                     + f" | {s['miou_i']:.3f} | {s['fg_ari_multi']:.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# the paper's tables as configurations of the same modules (Tab. 2–4 and GLASS† so far)
# ---------------------------------------------------------------------------------------------------------------

BUDGETS = {  # phase-1 steps of every trained row, real training scenes, scored scenes of val and shift
    "fast": dict(steps=2, images=16, eval_images=8),  # every code path, for CI (one batch of real scenes)
    "full": dict(steps=400, images=512, eval_images=256),  # the README's numbers: seed 0, about 20 min on 2 cores
}
# (row, training data, train.options overrides): GLASS and the baselines it is compared with (paper Tab. 2)
TABLE_ROWS = [
    ("GLASS (generated images, pseudo masks, all three losses)", "pseudo", dict()),
    ("GLASS† (prompts from ground-truth class names instead of captions)", "dagger", dict()),
    ("StableLSD (real images, diffusion decoder only)", "real", dict(no_semantic=True, no_instance=True)),
    ("DINOSAUR (real images, MLP feature decoder only)", "real", dict(no_semantic=True, no_recon=True)),
]
TABLE_COLUMNS = {  # table → (split, metric keys)
    "tab2": ("val", ("miou_i", "mbo_i", "mbo_c", "miou_c", "fg_ari", "fg_ari_multi")),
    "tab3": ("val", ("so", "po", "go")),
    "tab4": ("shift", ("miou_i", "mbo_i", "mbo_c", "miou_c", "fg_ari", "fg_ari_multi")),
    "glass_dagger": ("val", ("miou_i", "mbo_i", "mbo_c", "miou_c", "fg_ari", "fg_ari_multi")),
}
TABLE_ONLY = {"glass_dagger": ("GLASS (", "GLASS† (")}  # tables that show some rows only (by name prefix)
NOT_BUILT = ("tab5", "tab6a", "tab6b", "tab6c")


def table_rows(out: Path, budget: str, pseudo_data: Path, extra: list) -> dict:
    """Train and score every row of TABLE_ROWS plus the k-means floors, once per output folder (resumable: rows
    already in out/rows.json are read back, trained runs continue). Returns {row: {"val": …, "shift": …}}."""
    from glass import FrozenEncoder
    b = BUDGETS[budget]
    path = out / "rows.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    splits = {"val": b["eval_images"], "shift": min(b["eval_images"], len(world.ToyScenes("shift")))}
    for name, data, flags in TABLE_ROWS:
        if name in rows:
            continue
        if data == "pseudo":
            data_dir = pseudo_data
        elif data == "dagger":
            data_dir = out / "data_dagger"  # GLASS†: the writer with ground-truth class names as captions
            if len(pseudo_gt.read_done(data_dir)) < b["images"]:
                train.write_toy_dataset(train.options(extra), data_dir, b["images"], captioner="toy-labels")
        else:
            data_dir = write_oracle_dataset(out / "data_real", b["images"], "semantic")
        size = {} if (Path(data_dir) / "meta.json").exists() else {"num_images": b["images"]}  # a new toy dataset
        rows[name] = trained_row(out / name.split(" ")[0].lower().replace("†", "_dagger"), extra, splits,
                                 steps=b["steps"], data=str(data_dir), **size, **flags)
        path.write_text(json.dumps(rows, indent=2))
    cfg = train.model_config(train.options(extra, phase=1))
    k = cfg.slots.num_slots
    for name, kind in ((f"k-means on encoder tokens (K = {k})", "tokens"),
                       (f"k-means on pixel colour + position (K = {k})", "pixels")):
        if name not in rows:
            encoder = FrozenEncoder(cfg.encoder, cfg.encoder_size, cfg.encoder_mean, cfg.encoder_std) \
                if kind == "tokens" else None
            rows[name] = {s: kmeans_floor(kind, s, n, k, encoder) for s, n in splits.items()}
            path.write_text(json.dumps(rows, indent=2))
    return rows


def run_tables(out: Path, budget: str, pseudo_data: Path, extra: list, only: Optional[list] = None) -> dict:
    """The paper's tables built so far (TABLE_COLUMNS) from `table_rows`: out/tables.json ({table: [rows]}, each row
    its name and numbers), out/tables.md and a bar chart per table (out/tab2.png, …)."""
    only = only or sorted(TABLE_COLUMNS)
    missing = [t for t in only if t not in TABLE_COLUMNS]
    if missing:
        raise ValueError(f"tables not built yet: {missing} (built: {sorted(TABLE_COLUMNS)})")
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(out, budget, pseudo_data, extra)
    tables = {t: [{"row": name, **{k: rows[name][TABLE_COLUMNS[t][0]][k] for k in TABLE_COLUMNS[t][1]}}
                  for name in rows if name.startswith(TABLE_ONLY.get(t, ""))] for t in only}
    for t in set(only) - set(TABLE_ONLY):  # GLASS† appears in its own table only
        tables[t] = [r for r in tables[t] if not r["row"].startswith("GLASS†")]
    meta = {"budget": budget, **BUDGETS[budget], "threads": torch.get_num_threads(), "train_flags": extra}
    (out / "tables.json").write_text(json.dumps({"settings": meta, **tables}, indent=2))
    lines = []
    for t, table in tables.items():
        split, keys = TABLE_COLUMNS[t]
        lines += [f"### {t} ({split}, {budget} budget)", "", "| row | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]
        lines += [f"| {r['row']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |" for r in table] + [""]
        plot_table(t, table, keys, out / f"{t}.png", budget)
    (out / "tables.md").write_text("\n".join(lines))
    return tables


def plot_table(name: str, table: list, keys: tuple, path: Path, budget: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1.6 * len(keys) + 3, 3.2))
    width = 0.8 / len(table)
    for j, row in enumerate(table):
        ax.bar(np.arange(len(keys)) + j * width, [row[k] for k in keys], width, label=row["row"][:40])
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys)
    ax.legend(fontsize=6)
    ax.set_title(f"{name}: python evaluate.py tables --budget {budget}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fast_mode() -> bool:
    """GLASS_FAST=1: the small setting CI runs notebooks in (every code path, tiny budgets)."""
    import os
    return os.environ.get("GLASS_FAST", "0") == "1"


def demo_checkpoint(phase: int = 2) -> Path:
    """The checkpoint notebooks show: runs/toy/phase{phase} from `python train.py --phase 2` when it exists and
    GLASS_FAST is off; otherwise a short run is trained into runs/notebook_fast (a minute on a laptop)."""
    ckpt = ROOT / "runs" / "toy" / f"phase{phase}"
    if (ckpt / "config.json").exists() and not fast_mode():
        return ckpt
    out = ROOT / "runs" / "notebook_fast"
    if not (out / f"phase{phase}" / "config.json").exists():
        train.run(train.options(phase=phase, out=str(out), data=str(ROOT / "data" / "notebook_fast"), num_images=32,
                                steps1=20, steps2=10, batch_size=8, eval_images=0, workers=0, log_every=10))
    return out / f"phase{phase}"


def run_ablation(seeds: list, steps: int, out: Path, eval_images: int, extra: list) -> dict:
    results: dict = {}
    for name, flags in ABLATIONS.items():
        for seed in seeds:
            run = out / f"{name.replace(' ', '_').replace('+', 'plus')}_seed{seed}"
            scored = trained_row(run, extra, {"val": eval_images}, steps=steps, seed=seed, **flags)
            r = {**scored["val"], "minutes": scored["minutes"]}
            results.setdefault(name, []).append(r)
            print(f"[ablation] {name} seed {seed}: " + " ".join(f"{k} {r[k]:.4f}" for k in ABLATION_KEYS), flush=True)
            (out / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


ABLATION_KEYS = ("miou_i", "mbo_i", "mbo_c", "fg_ari", "fg_ari_multi")


def ablation_table(results: dict) -> str:
    keys = ABLATION_KEYS
    lines = ["| losses | mIoU_i | mBO_i | mBO_c | FG-ARI all | FG-ARI multi |", "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        cells = []
        for k in keys:
            v = np.array([r[k] for r in runs])
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_ablation(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ABLATION_KEYS
    fig, ax = plt.subplots(figsize=(9, 3))
    width = 0.2
    for j, (name, runs) in enumerate(results.items()):
        means = [np.mean([r[k] for r in runs]) for k in keys]
        stds = [np.std([r[k] for r in runs]) for k in keys]
        ax.bar(np.arange(len(keys)) + j * width, means, width, yerr=stds, label=name)
    ax.set_xticks(np.arange(len(keys)) + 1.5 * width, keys)
    ax.legend(fontsize=7)
    ax.set_title("loss ablation on the toy val split (python evaluate.py ablation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("discovery", help="object discovery metrics of a checkpoint")
    d.add_argument("--ckpt", required=True, help="checkpoint folder (e.g. runs/toy/phase2)")
    d.add_argument("--images", type=int, default=512)
    d.add_argument("--background-segment", action="store_true")
    a = sub.add_parser("ablation", help="loss ablation (paper Tab. 6a) on phase 1")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    a.add_argument("--steps", type=int, default=600)
    a.add_argument("--out", type=Path, default=Path("runs/ablation"))
    a.add_argument("--images", type=int, default=256)
    a.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags")
    lad = sub.add_parser("ladder", help="where binding is won or lost: k-means floors and oracle-guided rungs")
    lad.add_argument("--steps", type=int, default=400, help="phase-1 steps of every trained rung")
    lad.add_argument("--images", type=int, default=512, help="training scenes of the oracle datasets")
    lad.add_argument("--eval-images", type=int, default=256, help="val and shift scenes scored")
    lad.add_argument("--data", type=Path, default=Path("data/toy_pseudo"), help="the GLASS rung's pseudo-GT dataset")
    lad.add_argument("--out", type=Path, default=Path("runs/ladder"))
    lad.add_argument("--only", nargs="+", help="a subset: tokens, pixels, ceiling, or rung numbers 1..6")
    lad.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags (every rung)")
    tab = sub.add_parser("tables", help="the paper's tables as configurations of the same modules "
                                        "(Tab. 2–4 and GLASS† so far)")
    tab.add_argument("--budget", choices=sorted(BUDGETS), default="fast")
    tab.add_argument("--out", type=Path, default=Path("runs/tables"))
    tab.add_argument("--data", type=Path, default=Path("data/toy_pseudo"), help="GLASS's pseudo-GT dataset")
    tab.add_argument("--only", nargs="+", help=f"a subset of {sorted(TABLE_COLUMNS)}")
    tab.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags (every row)")
    args = ap.parse_args(argv)
    if args.cmd == "tables":
        bad = [t for t in (args.only or []) if t not in TABLE_COLUMNS]
        if bad:
            ap.error(f"{bad} not built yet; built: {sorted(TABLE_COLUMNS)} (still to come: {list(NOT_BUILT)})")
        run_tables(args.out, args.budget, args.data, [f for f in args.train_flags if f != "--"], args.only)
        print((args.out / "tables.md").read_text())
        return
    if args.cmd == "discovery":
        from glass import load_checkpoint_model
        if not Path(args.ckpt).exists():
            ap.error(f"--ckpt {args.ckpt} does not exist")
        model, info = load_checkpoint_model(args.ckpt)
        report = {split: discovery(model, split, min(args.images, len(world.ToyScenes(split))),
                                   torch.device("cpu"), args.background_segment) for split in ("val", "shift")}
        report["checkpoint"] = {"path": args.ckpt, "phase": info["phase"], "step": info["step"]}
        print(json.dumps(report, indent=2))
    elif args.cmd == "ladder":
        args.out.mkdir(parents=True, exist_ok=True)
        extra = [f for f in args.train_flags if f != "--"]
        results = run_ladder(args.out, args.steps, args.images, args.eval_images, args.data, extra, args.only)
        table = ladder_table(results)
        (args.out / "ladder.md").write_text(table + "\n")
        print(table)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        extra = [f for f in args.train_flags if f != "--"]
        results = run_ablation(args.seeds, args.steps, args.out, args.images, extra)
        table = ablation_table(results)
        (args.out / "ablation.md").write_text(table + "\n")
        plot_ablation(results, args.out / "ablation.png")
        print(table)


if __name__ == "__main__":
    main()
