"""The paper's experiments (GLASS §5) as configurations of the same modules, on the toy world.

    python -m experiments ablation                                  # loss ablation (Tab. 6a): seeds 0 1 2, 900 steps
    python -m experiments tables --only tab2 tab3 tab4 --seeds 0 1 2   # the published Tab. 2–4: mean ± std over seeds
    python -m experiments tables --out runs/tables                   # Tab. 2–9 and GLASS†, with their baselines

Each trained row is a phase-1 run of train.py (`train.run(train.options(...))`) scored by evaluate.py; the
baselines' training data and encoders come from experiments/baseline_data.py. This project's own diagnostic, the binding
ladder, is experiments/ladder.py.
`tables` builds every object-discovery table of the paper (ROWS below): StableLSD and DINOSAUR (the slot module
trained on real toy scenes with the diffusion decoder alone, or the MLP feature decoder alone), the
weakly-supervised StableLSD-BBox / -Dynamic (Tab. 5), the loss ablation (Tab. 6a), other encoders (6b) and another
guidance source (6c), GLASS† (prompts from ground-truth class names), and what slots are for (downstream.py): images
decoded from slots (7), measured slot edits (compose), property probes (8), and the semantic-level variant with
λi 0.1 (9).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import downstream
import train
from experiments.baseline_data import encoder_variant, write_oracle_dataset, write_segmenter_dataset
from infra.data import read_done
from evaluate import decoder_mask_discovery, decoder_mse, discovery, kmeans_floor
from toy import world
from toy.dataset import write_toy_dataset

ABLATIONS = {  # name → train.options overrides (paper Tab. 6a)
    "recon only": dict(semantic=False, instance=False),
    "+ semantic": dict(instance=False),
    "+ instance": dict(semantic=False),
    "all three": dict(),
}
ABLATION_KEYS = ("miou_i", "mbo_i", "mbo_c", "fg_ari", "fg_ari_multi")
REPEAT_KEYS = ("repeat_fg_ari_multi", "repeat_go")  # scenes where a class repeats (evaluate.discovery_of)


# ---------------------------------------------------------------------------------------------------------------
# one trained row: a phase-1 run of train.py, scored
# ---------------------------------------------------------------------------------------------------------------

def trained_row(run: Path, extra: list, splits: dict, **overrides) -> dict:
    """Train (or finish, or read back) a phase-1 run in `run` with `extra` flags and `overrides`, then score its
    checkpoint on each split ({split: scenes}). Returns {split: metrics, "minutes": training and scoring time}."""
    from infra.checkpoint import load_checkpoint_model
    t0 = time.time()
    train.run(train.options(extra, phase=1, out=str(run), eval_images=0, resume=True, **overrides))
    model, _ = load_checkpoint_model(run / "phase1")
    scores = {s: discovery(model, s, n, torch.device("cpu")) for s, n in splits.items()}
    if feature_reconstruction_only(model.config):  # DINOSAUR: its decoder's masks too, as its paper scores it
        scores.update({f"{s}{DECODER_MASKS}": decoder_mask_discovery(model, s, n, torch.device("cpu"))
                       for s, n in splits.items()})
    if "val" in splits and model.config.instance:  # the instance term against its references
        scores["val"]["decoder"] = decoder_mse(model, "val", splits["val"])
        scores["val"]["instance_curve"] = instance_curve(run / "log_phase1.csv")
    return {**scores, "minutes": round((time.time() - t0) / 60, 2)}


DECODER_MASKS = "_decoder_masks"  # a split's key suffix: the same run scored with the MLP decoder's alpha masks


def feature_reconstruction_only(cfg) -> bool:
    """The DINOSAUR configuration: the instance term alone."""
    return cfg.instance and not cfg.semantic and not cfg.recon


def instance_curve(csv_path: Path, points: int = 6) -> list:
    """(step, training L_instance) at about `points` evenly spaced log lines of a run: the decoder's MSE curve."""
    import csv
    rows = list(csv.DictReader(open(csv_path))) if csv_path.exists() else []
    if not rows:
        return []
    pick = sorted({round(i * (len(rows) - 1) / max(points - 1, 1)) for i in range(points)})
    return [[int(rows[i]["step"]), float(rows[i]["instance"])] for i in pick]


# ---------------------------------------------------------------------------------------------------------------
# the paper's tables as configurations of the same modules (Tab. 2–9, compose and GLASS†)
# ---------------------------------------------------------------------------------------------------------------

BUDGETS = {  # phase-1 steps of every trained row, training scenes, scored scenes of val and shift, seeds of
    # Tab. 6a, pretraining steps of Tab. 6b's MAE encoder; edits of each kind, probe training scenes and DDIM steps
    # of the generation tables
    "fast": dict(steps=2, images=16, eval_images=8, seeds=(0,), encoder_steps=2, edits=2, probe_scenes=16,
                 ddim_steps=2),  # every code path, for CI
    # the quick start's phase-1 budget (train.PRESETS["toy"]: 900 steps), the default: every published table
    # (docs/results.md) was made with it. Its GLASS row is the quick start's own phase 1 when runs/toy is linked in
    # as OUT/glass
    "quick": dict(steps=900, images=512, eval_images=256, seeds=(0,), encoder_steps=600, edits=100,
                  probe_scenes=1024, ddim_steps=25),
    # world v3's tables' budget (issue 39): DINOSAUR's spare slots need 1,500–1,800 phase-1 steps to leave the
    # background (docs/lab_notes/binding.md §12); every trained row gets it, three seeds each
    "settled": dict(steps=1800, images=512, eval_images=256, seeds=(0, 1, 2), encoder_steps=600, edits=100,
                    probe_scenes=1024, ddim_steps=25),
}
LSD = dict(semantic=False, instance=False)  # StableLSD: the slot module with the diffusion decoder alone
# row → (what it is, training data, train.options overrides). Data: "pseudo" GLASS's pseudo-GT dataset; "dagger"
# the same writer with ground-truth class names as prompts; "real" real toy train scenes (their masks unused by
# the rows trained on them; their instance maps read by the slot priors only); "felzenszwalb" GLASS's generated
# images with segments of a classical segmenter as masks. Encoders "@mae" / "@random": Tab. 6b's, made here.
ROWS = {
    "GLASS": ("generated images, pseudo masks from the UNet's attention, all three losses", "pseudo", {}),
    "GLASS†": ("GLASS with prompts from ground-truth class names instead of captions", "dagger", {}),
    "StableLSD": ("real images, diffusion decoder only, no guidance", "real", LSD),
    "DINOSAUR": ("real images, MLP feature decoder only", "real", dict(semantic=False, recon=False)),
    "StableLSD-BBox": ("StableLSD told each object's ground-truth box: initial slots from the boxes through an MLP "
                       "(SAVi), K = objects + 1", "real", dict(LSD, slot_prior="boxes")),
    "StableLSD-Dynamic": ("StableLSD told the object count: K = objects + 1 active slots", "real",
                          dict(LSD, slot_prior="count")),
    "GLASS, MAE encoder": ("GLASS on an encoder pretrained by masked-patch prediction", "pseudo",
                           dict(encoder="@mae")),
    "StableLSD, MAE encoder": ("StableLSD on the same MAE encoder", "real", dict(LSD, encoder="@mae")),
    "GLASS, random encoder": ("GLASS on a random-init encoder of the same shape", "pseudo", dict(encoder="@random")),
    "StableLSD, random encoder": ("StableLSD on the same random encoder", "real", dict(LSD, encoder="@random")),
    "GLASS, Felzenszwalb masks": ("GLASS guided by Felzenszwalb segments of its generated images instead of the "
                                  "attention masks (the SAMv2 stand-in), λi 0, λs 1", "felzenszwalb",
                                  dict(instance=False, lambda_semantic=1.0)),
    "GLASS, λi 0.1": ("GLASS with λi 0.1 instead of 0.9, the paper's semantic-level variant", "pseudo",
                      dict(lambda_instance=0.1)),
    **{name: ("Tab. 6a loss ablation", "pseudo", flags) for name, flags in ABLATIONS.items()},  # run as "…, seed 0"
}
SEEDED = ("tab2", "tab3", "tab4")  # tables whose trained rows `--seeds` repeats (Tab. 6a always has seeds)
FLOORS = {"k-means, encoder tokens": "tokens", "k-means, pixels": "pixels"}  # k-means per image, K = slots
DISCOVERY_KEYS = ("miou_i", "mbo_i", "mbo_c", "miou_c", "fg_ari", "fg_ari_multi")
# rows that are another row's runs scored another way: DINOSAUR's own paper reports its decoder's masks
DERIVED = {"DINOSAUR, decoder masks": "DINOSAUR"}
BASELINES = ["GLASS", "StableLSD", "DINOSAUR", "DINOSAUR, decoder masks", *FLOORS]
MEASURES = {  # rows of the generation tables that are not trained runs: what they are
    "unrelated real scene": "the floor: each val scene \"decoded\" as another, unrelated real val scene",
    "GLASS, random slot": "the chance floor: GLASS's edits with a random slot instead of the object's",
    "no features": "the floor of a probe that ignores the slots: the majority class, the mean centre",
}
GENERATION = ("psnr", "ssim", "fd")
TABLES = {  # table → (split of the discovery metrics, or the measure of the generation tables; metric keys; rows)
    "tab2": ("val", DISCOVERY_KEYS, BASELINES),
    "tab3": ("val", ("so", "po", "go"), BASELINES),
    "tab4": ("shift", DISCOVERY_KEYS, BASELINES),
    "tab5": ("val", DISCOVERY_KEYS, ["GLASS", "StableLSD", "StableLSD-BBox", "StableLSD-Dynamic"]),
    "tab6a": ("val", ABLATION_KEYS, list(ABLATIONS)),  # each row: mean and std over the budget's seeds
    "tab6b": ("val", DISCOVERY_KEYS, ["GLASS", "StableLSD", "GLASS, MAE encoder", "StableLSD, MAE encoder",
                                      "GLASS, random encoder", "StableLSD, random encoder"]),
    "tab6c": ("val", DISCOVERY_KEYS, ["GLASS", "GLASS, Felzenszwalb masks"]),
    "glass_dagger": ("val", DISCOVERY_KEYS, ["GLASS", "GLASS†"]),
    "tab7": ("generation", GENERATION, ["GLASS", "StableLSD", "unrelated real scene"]),
    "compose": ("edits", downstream.EDIT_KEYS, ["GLASS", "StableLSD", "GLASS, random slot"]),
    "tab8": ("probe", ("class_acc", "centre_mse"), ["GLASS", "StableLSD", "DINOSAUR", "no features"]),
    "tab9": ("val", ("miou_c", "mbo_c", "miou_i", "mbo_i"), ["GLASS", "GLASS, λi 0.1"]),
}
def slug(name: str) -> str:
    """A row's run folder: "GLASS†" → glass_dagger, "+ semantic, seed 1" → semantic_seed_1."""
    s = "".join(ch if ch.isalnum() else "_" for ch in name.lower().replace("†", "_dagger"))
    return "_".join(part for part in s.split("_") if part)


def seeded(row: str, seed: int) -> str:
    """The name of a trained row's run with another seed: seed 0 is the row itself, "DINOSAUR, seed 1" the next."""
    return row if seed == 0 else f"{row}, seed {seed}"


def alias(name: str) -> str:
    """The run a row reads: the same configuration, data and seed is trained once, so Tab. 6a's "all three, seed 0"
    is GLASS and "GLASS, seed 1" is "all three, seed 1"."""
    base, sep, seed = name.rpartition(", seed ")
    if name == "all three, seed 0":
        return "GLASS"
    return f"all three, seed {seed}" if sep and base == "GLASS" else name


def row_spec(name: str) -> tuple:
    """(what it is, training data, train.options overrides) of a row of ROWS or of a `seeded` copy of one."""
    if name in ROWS:
        return ROWS[name]
    base, sep, seed = name.rpartition(", seed ")
    if sep and base in ROWS and seed.isdigit():
        what, data, flags = ROWS[base]
        return f"{what}, seed {seed}", data, dict(flags, seed=int(seed))
    raise ValueError(f"unknown row {name!r}")


def mean_over_seeds(row: str, runs: list, keys: tuple) -> dict:
    """One table row from the same configuration trained with several seeds: each key's mean and (population)
    standard deviation over `runs` ({key: value} each)."""
    return {"row": row, "seeds": len(runs), **{k: float(np.mean([r[k] for r in runs])) for k in keys},
            **{f"{k}_std": float(np.std([r[k] for r in runs])) for k in keys}}


def table_row(name: str, out: Path, budget: dict, pseudo_data: Path, extra: list, splits: dict) -> dict:
    """Train (or read back) and score one row of ROWS (or a `seeded` copy) or FLOORS: {split: metrics,
    "minutes": …}."""
    cfg = train.options(extra, phase=1).model
    if name in FLOORS:
        from glass import FrozenEncoder
        from infra.loading import quiet_loading
        with quiet_loading():
            encoder = FrozenEncoder(cfg)
        return {s: kmeans_floor(FLOORS[name], s, n, cfg.slots.num_slots, encoder) for s, n in splits.items()}
    _, data, flags = row_spec(name)
    flags = dict(flags)
    if flags.get("encoder", "").startswith("@"):
        flags["encoder"] = str(encoder_variant(flags["encoder"][1:], cfg.encoder, out / "encoders",
                                               budget["encoder_steps"]))
    if data == "pseudo":
        data_dir = pseudo_data
    elif data == "dagger":
        data_dir = out / "data_dagger"  # GLASS†: the writer with ground-truth class names as captions
        if len(read_done(data_dir)) < budget["images"]:
            write_toy_dataset(data_dir, budget["images"], cfg.sd, captioner="toy-labels")
    elif data == "felzenszwalb":
        if not (Path(pseudo_data) / "meta.json").exists():  # GLASS's dataset first, written as GLASS's row would
            write_toy_dataset(pseudo_data, budget["images"], cfg.sd)
        data_dir = write_segmenter_dataset(pseudo_data, out / "data_felzenszwalb", budget["images"])
    else:
        data_dir = write_oracle_dataset(out / "data_real", budget["images"], "semantic")
    size = {} if (Path(data_dir) / "meta.json").exists() else {"num_images": budget["images"]}  # a new toy dataset
    return trained_row(out / slug(name), extra, splits, steps=budget["steps"], data=str(data_dir), **size, **flags)


def table_rows(out: Path, budget: str, pseudo_data: Path, extra: list, names: list) -> dict:
    """Every row in `names`, once per output folder (resumable: rows already in out/rows.json are read back,
    trained runs continue). Returns {row: {"val": …, "shift": …}}."""
    b = BUDGETS[budget]
    path = out / "rows.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    splits = {"val": b["eval_images"], "shift": min(b["eval_images"], len(world.ToyScenes("shift")))}
    for name in names:
        key = alias(name)
        if key not in rows:
            rows[key] = table_row(key, out, b, pseudo_data, extra, splits)
            path.write_text(json.dumps(rows, indent=2))
            print(f"[tables] {key}: " + " ".join(f"{k} {rows[key]['val'][k]:.3f}" for k in DISCOVERY_KEYS),
                  flush=True)
    return {name: rows[alias(name)] for name in names}


def run_tables(out: Path, budget: str, pseudo_data: Path, extra: list, only: Optional[list] = None,
               seeds: Optional[list] = None) -> dict:
    """The tables of TABLES from `table_rows`: out/tables.json ({table: [rows]}, each row its name and numbers),
    out/tables.md and a bar chart per table (out/tab2.png, …). Tab. 6a's rows are the mean and std over `seeds`
    (default: the budget's); with `seeds`, so are the trained rows of Tab. 2–4 (SEEDED; default seed 0 alone),
    whose k-means floors have no seed. Tables of an earlier run in `out` with the same budget, flags and seeds are
    kept beside the new ones."""
    only = only or list(TABLES)
    missing = [t for t in only if t not in TABLES]
    if missing:
        raise ValueError(f"unknown tables {missing} (built: {list(TABLES)})")
    if seeds and any(f == "--seed" or f.startswith("--seed=") for f in extra):
        raise ValueError("give the seeds with --seeds, not --seed among the train.py flags")
    out.mkdir(parents=True, exist_ok=True)
    ablation_seeds = list(seeds or BUDGETS[budget]["seeds"])
    row_seeds = list(seeds or [0])
    names = runs_of(only, ablation_seeds, row_seeds)
    rows = table_rows(out, budget, pseudo_data, extra, [n for n in names if n not in MEASURES])

    def scores(r: str, split: str, seed: int = 0) -> dict:
        """Row r's metrics on `split` (a derived row: its source run's decoder-mask scores, computed here if an
        earlier rows.json lacks them)."""
        if r not in DERIVED:
            return rows[seeded(r, seed) if r in ROWS else r][split]
        source = seeded(DERIVED[r], seed)
        key = split + DECODER_MASKS
        if key not in rows[source]:
            from infra.checkpoint import load_checkpoint_model
            model, _ = load_checkpoint_model(out / slug(source) / "phase1")
            n = BUDGETS[budget]["eval_images"] if split == "val" else min(BUDGETS[budget]["eval_images"],
                                                                            len(world.ToyScenes("shift")))
            rows[source][key] = decoder_mask_discovery(model, split, n, torch.device("cpu"))
            (out / "rows.json").write_text(json.dumps(rows, indent=2))
        return rows[source][key]
    tables = {}
    for t in only:
        split, keys, members = TABLES[t]
        if split in ("generation", "edits", "probe"):
            measured = measure_rows(t, out, budget)
            tables[t] = [{"row": r, **{k: measured[r][k] for k in keys}} for r in members]
        elif t == "tab6a":
            tables[t] = [mean_over_seeds(r, [rows[f"{r}, seed {s}"][split] for s in ablation_seeds], keys)
                         for r in members]
        elif t in SEEDED and len(row_seeds) > 1:
            tables[t] = [mean_over_seeds(r, [scores(r, split, s) for s in row_seeds], keys)
                         if r in ROWS or r in DERIVED else {"row": r, **{k: scores(r, split)[k] for k in keys}}
                         for r in members]
        else:
            tables[t] = [{"row": r, **{k: scores(r, split)[k] for k in keys}} for r in members]
    meta = {"budget": budget, **BUDGETS[budget], "seeds": ablation_seeds, "row_seeds": row_seeds,
            "threads": torch.get_num_threads(), "train_flags": extra}
    return write_tables(out, tables, meta)


def runs_of(tables: list, ablation_seeds: list, row_seeds: list) -> list:
    """The runs `tables` need, each once: Tab. 6a's per ablation seed, SEEDED rows per row seed, derived via source."""
    names = []
    for t in tables:
        for r in TABLES[t][2]:
            r = DERIVED.get(r, r)  # a derived row needs its source row's runs
            if t == "tab6a":
                names += [f"{r}, seed {s}" for s in ablation_seeds]
            elif t in SEEDED and r in ROWS:
                names += [seeded(r, s) for s in row_seeds]
            else:
                names += [r]
    return list(dict.fromkeys(names))


def write_tables(out: Path, tables: dict, meta: dict) -> dict:
    """out/tables.json, tables.md and a chart per table, keeping an earlier run's tables with the same settings."""
    budget = meta["budget"]
    path = out / "tables.json"
    before = json.loads(path.read_text()) if path.exists() else {}
    same = ("budget", "train_flags", "seeds", "row_seeds")
    if {k: before.get("settings", {}).get(k) for k in same} == {k: meta[k] for k in same}:
        tables = {t: tables[t] if t in tables else before[t] for t in TABLES if t in tables or t in before}
    only = list(tables)  # --only adds its tables to those of an earlier run with the same settings
    path.write_text(json.dumps({"settings": meta, **tables}, indent=2))
    lines = []
    for t, table in tables.items():
        split, keys, _ = TABLES[t]
        lines += [f"### {t} ({split}, {budget} budget)", "", "| row | " + " | ".join(keys) + " |",
                  "|---|" + "---|" * len(keys)]
        cell = lambda r, k: f"{r[k]:.3f} ± {r[k + '_std']:.3f}" if f"{k}_std" in r else f"{r[k]:.3f}"
        lines += [f"| {r['row']} | " + " | ".join(cell(r, k) for k in keys) + " |" for r in table] + [""]
        plot_table(t, table, keys, out / f"{t}.png", budget)
    shown = dict.fromkeys(n for t in only for n in TABLES[t][2])
    lines += ["Rows:", ""] + [f"- {r}: {ROWS[r][0]}" for r in shown if r in ROWS] + \
        [f"- {r}: the {DERIVED[r]} runs scored with their MLP decoder's alpha masks (as DINOSAUR's paper does)"
         for r in shown if r in DERIVED] + \
        [f"- {r}: {MEASURES[r]}" for r in shown if r in MEASURES] + [f"- {r}: per image, K = slots" for r in FLOORS
                                                                        if r in shown]
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    return tables


def plot_table(name: str, table: list, keys: tuple, path: Path, budget: str) -> None:
    """One panel per metric (their scales differ), a bar per row; error bars where the row has `{key}_std`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(keys), figsize=(2.0 * len(keys) + 1.5, 3.0), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, k in zip(axes[0], keys):
        err = [r.get(k + "_std", 0.0) for r in table]
        ax.bar(range(len(table)), [r[k] for r in table], yerr=err, color=colours[:len(table)])
        ax.set_title(k, fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    fig.legend([plt.Rectangle((0, 0), 1, 1, color=colours[j % len(colours)]) for j in range(len(table))],
               [r["row"][:45] for r in table], fontsize=6, loc="lower center", ncol=min(3, len(table)))
    fig.suptitle(f"{name}: python -m experiments tables --budget {budget}", fontsize=9)
    fig.tight_layout(rect=(0, 0.12 + 0.04 * (len(table) // 3), 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def measure_rows(table: str, out: Path, budget: str) -> dict:
    """The rows of a generation table (tab7, compose, tab8) on the trained rows' phase-1 checkpoints, once per
    output folder (out/measures.json). Same noise for every model; the floors of MEASURES beside them."""
    from infra.checkpoint import load_checkpoint_model
    b = BUDGETS[budget]
    path = out / "measures.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    n = b["eval_images"]
    for row in TABLES[table][2]:
        key = f"{table}: {row}"
        if key in done:
            continue
        t0 = time.time()
        if row == "no features":  # the floors GLASS's probe already computed (same objects for every model)
            glass_probe = done["tab8: GLASS"]
            done[key] = {**glass_probe, "class_acc": glass_probe["class_acc_floor"],
                         "centre_mse": glass_probe["centre_mse_floor"], "minutes": 0.0}
            path.write_text(json.dumps(done, indent=2))
            continue
        trained = "GLASS" if row == "GLASS, random slot" else row  # whose checkpoint
        model = None if row == "unrelated real scene" else load_checkpoint_model(out / slug(trained) / "phase1")[0]
        if table == "tab7":
            decode = downstream.unrelated_scenes("val", offset=n) if model is None else \
                downstream.slot_decoder(model, seed=0, num_steps=b["ddim_steps"])
            result = downstream.generation_quality(decode, "val", n)
        elif table == "compose":
            edits = downstream.compositional_edits(model, "val", b["edits"], num_steps=b["ddim_steps"],
                                                   choice="random" if row.endswith("random slot") else "matched")
            result = edits.rates
            if row == "GLASS":
                downstream.plot_edits(edits.examples, out / "compose_examples.png",
                                      f"GLASS edits (python -m experiments tables --only compose --budget {budget})")
        else:
            result = downstream.property_probe(model, b["probe_scenes"], n)
        done[key] = {**result, "minutes": round((time.time() - t0) / 60, 2)}
        path.write_text(json.dumps(done, indent=2))
        print(f"[tables] {key}: " + " ".join(f"{k} {done[key][k]:.3f}" for k in TABLES[table][1]), flush=True)
    return {row: done[f"{table}: {row}"] for row in TABLES[table][2]}


def run_ablation(seeds: list, steps: int, out: Path, eval_images: int, extra: list) -> dict:
    results: dict = {}
    for name, flags in ABLATIONS.items():
        for seed in seeds:
            run = out / slug(seeded(name, seed))  # the folder `tables` gives the same row and seed
            scored = trained_row(run, extra, {"val": eval_images}, steps=steps, seed=seed, **flags)
            r = {**scored["val"], "minutes": scored["minutes"], "run": run.name}  # run: its folder in `out`
            results.setdefault(name, []).append(r)
            print(f"[ablation] {name} seed {seed}: " + " ".join(f"{k} {r[k]:.4f}" for k in ABLATION_KEYS
                                                                  + REPEAT_KEYS) + decoder_line(r), flush=True)
            (out / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


def decoder_line(r: dict) -> str:
    """The instance term of a scored run against its references (evaluate.decoder_mse), for the log."""
    if "decoder" not in r:
        return ""
    d = r["decoder"]
    curve = " → ".join(f"{v:.3f}" for _, v in r.get("instance_curve", []))
    return (f" | decoder MSE {d['decoder']:.4f} (image mean {d['image_mean']:.4f}, instance mean "
            f"{d['instance_mean']:.4f}: {d['closed']:.0%} of the gap closed; training curve {curve})")


def ablation_table(results: dict) -> str:
    """Mean ± spread over seeds of each loss set: the paper's Tab. 6a columns, the repeated-class subset (where
    semantic drift shows) and the share of the decoder's reference gap closed (instance term on)."""
    keys = ABLATION_KEYS + REPEAT_KEYS
    lines = ["| losses | mIoU_i | mBO_i | mBO_c | FG-ARI all | FG-ARI multi | repeated: FG-ARI multi | repeated: GO "
             "| decoder: gap closed |", "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        cells = []
        for k in keys:
            v = np.array([r.get(k, np.nan) for r in runs])
            cells.append(f"{v.mean():.3f} ± {v.std():.3f}")
        closed = [r["decoder"]["closed"] for r in runs if "decoder" in r]
        cells.append(f"{np.mean(closed):.0%}" if closed else "—")
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
    ax.set_title("loss ablation on the toy val split (python -m experiments ablation)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ablation", help="loss ablation (paper Tab. 6a) on phase 1")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the published table: 0 1 2")
    a.add_argument("--steps", type=int, default=900, help="phase-1 steps (the quick start's: the published table)")
    a.add_argument("--out", type=Path, default=Path("runs/ablation"))
    a.add_argument("--images", type=int, default=256)
    a.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags")
    tab = sub.add_parser("tables", help="the paper's tables as configurations of the same modules "
                                        "(Tab. 2–9, compose and GLASS†)")
    tab.add_argument("--budget", choices=sorted(BUDGETS), default="quick",
                     help="quick: the published tables' budget; fast: every code path in seconds (CI)")
    tab.add_argument("--out", type=Path, default=Path("runs/tables"))
    tab.add_argument("--data", type=Path, default=Path("data/toy_pseudo"), help="GLASS's pseudo-GT dataset")
    tab.add_argument("--only", nargs="+", choices=list(TABLES), metavar="TABLE",
                     help=f"a subset of {list(TABLES)}")
    tab.add_argument("--seeds", type=int, nargs="+", help="train every row of Tab. 2–4 and 6a with each seed and "
                     "report mean ± std (default: Tab. 6a the budget's seeds, the others seed 0)")
    tab.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags (every row)")
    args = ap.parse_args(argv)
    if args.cmd == "tables":
        try:
            run_tables(args.out, args.budget, args.data, [f for f in args.train_flags if f != "--"], args.only,
                       args.seeds)
        except ValueError as e:
            ap.error(str(e))
        print((args.out / "tables.md").read_text())
        return
    args.out.mkdir(parents=True, exist_ok=True)
    extra = [f for f in args.train_flags if f != "--"]
    results = run_ablation(args.seeds, args.steps, args.out, args.images, extra)
    table = ablation_table(results)
    (args.out / "ablation.md").write_text(table + "\n")
    plot_ablation(results, args.out / "ablation.png")
    print(table)


if __name__ == "__main__":
    main()
