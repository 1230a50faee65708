"""The toy world's properties, each measured against its bound: `python -m toy.report world` writes them to
toy_models/world_report.json (docs/toy_world.md reads them). No paper section: these are the conditions under which
the toy world poses the problem GLASS solves (classes visible locally, objects of parts, repeated instances,
captions that name the classes, a shifted split), with the k-means floors and the encoder's token statistics.
Checked by tests/test_toy_pretrain.py (the report on tiny models).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import prompts as pr
from infra.loading import quiet_loading
from toy.tokens import linear_probe, token_variance
from toy.world import MAX_PARTS, make_scene


def caption_share(split: str, n: int) -> dict:
    """Share of captions whose extracted classes are exactly the scene's classes, through prompts.find_classes
    (the lexicon path, and NLTK's tagger when its data is installed), and the share that use a synonym."""
    from toy.world import SYNONYMS
    vocab = pr.toy_vocabulary()
    scenes = [make_scene(split, i) for i in range(n)]
    out = {"lexicon": float(np.mean([set(pr.find_classes(s.caption, vocab, use_nltk=False).classes) == set(s.classes)
                                     for s in scenes]))}
    if pr._nltk_tagger() is not None:
        out["nltk"] = float(np.mean([set(pr.find_classes(s.caption, vocab, use_nltk=True).classes) == set(s.classes)
                                     for s in scenes]))
    out["with_synonym"] = float(np.mean([any(w in s.caption.split() for w in SYNONYMS) for s in scenes]))
    return out


def scene_statistics(split: str, n: int) -> dict:
    """Objects per scene, the share of multi-object scenes that repeat a class, and how instances vary."""
    from toy.world import repeats_a_class
    scenes = [make_scene(split, i) for i in range(n)]
    multi = [s for s in scenes if len(s.classes) > 1]
    extents = [float(max(b[2] - b[0], b[3] - b[1])) / 2 for s in scenes for b in s.boxes]
    return {"scenes": n, "objects_mean": float(np.mean([len(s.classes) for s in scenes])),
            "objects_max": max(len(s.classes) for s in scenes),
            "repeat_share_multi": float(np.mean([repeats_a_class(s.classes) for s in multi])),
            "visible_half_extent_px": [round(float(np.percentile(extents, q)), 1) for q in (5, 50, 95)],
            "shade_std": float(np.std([c for s in scenes for sh in s.shades for c in sh])),
            "backgrounds": sorted({s.background for s in scenes}),
            "parts_per_object": float(np.mean([len(np.unique(s.part[s.instance == k + 1]))
                                               for s in scenes for k in range(len(s.classes))]))}


def part_independence(split: str, n: int) -> float:
    """How little a part's look says about its sibling's: the residual variance of the first part's mean colour
    given its class and its second part's mean colour (a least-squares fit per class), over its variance given the
    class alone (binding.md §12). Near 1: parts vary on their own; near 0: one number codes the whole object."""
    firsts, seconds, classes = [], [], []
    for s in (make_scene(split, i) for i in range(n)):
        image = s.image.astype(np.float64)
        for k, cls in enumerate(s.classes):
            m = s.instance == k + 1
            a, b = m & (s.part == 1), m & (s.part == 2)
            if a.sum() >= 4 and b.sum() >= 4:
                firsts.append(image[a].mean(0))
                seconds.append(image[b].mean(0))
                classes.append(cls)
    y, x, c = np.asarray(firsts), np.asarray(seconds), np.asarray(classes)
    given_class = given_both = 0.0
    for cls in np.unique(c):
        yc, xc = y[c == cls] - y[c == cls].mean(0), x[c == cls] - x[c == cls].mean(0)  # (M, 3) each
        beta = np.linalg.lstsq(xc, yc, rcond=None)[0]  # (3, 3): the sibling's colour predicting this part's
        given_class += float((yc ** 2).sum())
        given_both += float(((yc - xc @ beta) ** 2).sum())
    return given_both / given_class


def world_report(out: Path, n: int) -> dict:
    """The properties the world must have, each measured: class visible locally (probe on foreground tokens), parts
    (pixel k-means splits them, far below the ceiling of class guidance), instances (repeat share, variation),
    captions (noun extraction finds the classes), ground truth and splits, and the encoder's token statistics with
    the k-means floors. Returns the report; `rows` holds (property, measured, bound, passed)."""
    from transformers import Dinov2Model
    import evaluate
    import glass
    from evaluate import discovery_of
    with quiet_loading():
        enc = Dinov2Model.from_pretrained(out / "encoder", dtype=torch.float32).eval()
    k = glass.PRESETS["toy"].slots.num_slots
    report = {"probe_all": linear_probe(enc, n_val=n), "probe_foreground": linear_probe(enc, n_val=n, foreground=True)}
    report["variance"] = token_variance(enc, n)
    report["pixel_kmeans"] = evaluate.kmeans_floor("pixels", "val", n, k)
    with quiet_loading():
        frozen = glass.FrozenEncoder(glass.preset("toy", encoder=str(out / "encoder")))
    report["token_kmeans"] = evaluate.kmeans_floor("tokens", "val", n, k, frozen)
    report["gt_semantic_as_slots"] = discovery_of(lambda batch: batch["semantic"], "val", n)
    parts = MAX_PARTS  # every (instance, part) pair its own segment
    report["gt_parts_as_slots"] = discovery_of(
        lambda batch: torch.where(batch["instance"] > 0, parts * (batch["instance"] - 1) + batch["part"], 0), "val", n)
    report["part_independence"] = part_independence("val", n)
    report["stats"] = {split: scene_statistics(split, n) for split in ("train", "val", "shift")}
    report["captions"] = caption_share("val", n)
    px, ceiling = report["pixel_kmeans"], report["gt_semantic_as_slots"]
    repeat = report["stats"]["val"]["repeat_share_multi"]
    shift, val = report["stats"]["shift"], report["stats"]["val"]
    unseen = not set(shift["backgrounds"]) & set(val["backgrounds"])
    rows = [
        ("class visible locally: linear probe on foreground tokens", report["probe_foreground"], "≥ 0.95",
         report["probe_foreground"] >= 0.95),
        ("parts: visible parts per object (three or four each)", val["parts_per_object"], "≥ 2.9",
         val["parts_per_object"] >= 2.9),
        ("parts vary on their own: part independence (residual variance share)", report["part_independence"],
         "≥ 0.8", report["part_independence"] >= 0.8),
        ("parts: pixel k-means PO (slots binding part of an object)", px["po"], "reported", True),
        ("parts: token k-means PO", report["token_kmeans"]["po"], "reported", True),
        ("parts: GT parts scored as slots, PO (the rule sees parts)", report["gt_parts_as_slots"]["po"], "≥ 0.5",
         report["gt_parts_as_slots"]["po"] >= 0.5),
        ("parts: GT-semantic ceiling − pixel k-means, mIoU_i", ceiling["miou_i"] - px["miou_i"], "≥ 0.15",
         ceiling["miou_i"] - px["miou_i"] >= 0.15),
        ("instances: multi-object val scenes repeating a class", repeat, "0.35–0.55", 0.35 <= repeat <= 0.55),
        ("captions: noun extraction finds exactly the classes (lexicon)", report["captions"]["lexicon"], "= 1.0",
         report["captions"]["lexicon"] == 1.0),
        ("shift split: more objects (mean per scene, val → shift)", shift["objects_mean"] - val["objects_mean"],
         "> 0.5", shift["objects_mean"] - val["objects_mean"] > 0.5),
        ("shift split: unseen backgrounds, wider shades (shade std)", shift["shade_std"], "> val's",
         unseen and shift["shade_std"] > val["shade_std"]),
    ]
    if "nltk" in report["captions"]:
        rows.insert(6, ("captions: noun extraction finds exactly the classes (NLTK)", report["captions"]["nltk"],
                        "≥ 0.95", report["captions"]["nltk"] >= 0.95))
    report["rows"] = [{"property": r[0], "measured": round(float(r[1]), 4), "bound": r[2], "passed": bool(r[3])}
                      for r in rows]
    return report


def world_table(report: dict) -> str:
    """The report as a Markdown table: the bounds first, then the floors and the encoder's token statistics."""
    lines = ["| property | measured | bound | |", "|---|---|---|---|"]
    lines += [f"| {r['property']} | {r['measured']:.3f} | {r['bound']} | {'✓' if r['passed'] else '✗'} |"
              for r in report["rows"]]
    lines += ["", "| val, K = slots | mIoU_i | mBO_i | FG-ARI multi | SO | PO | GO |", "|---|---|---|---|---|---|---|"]
    for name, key in (("pixel k-means", "pixel_kmeans"), ("k-means on encoder tokens", "token_kmeans"),
                      ("GT semantic mask as slots", "gt_semantic_as_slots"), ("GT parts as slots", "gt_parts_as_slots")):
        r = report[key]
        lines.append(f"| {name} | {r['miou_i']:.3f} | {r['mbo_i']:.3f} | {r['fg_ari_multi']:.3f} | {r['so']:.2f} | "
                     f"{r['po']:.2f} | {r['go']:.2f} |")
    v = report["variance"]
    lines += ["", f"encoder tokens: class probe {report['probe_all']:.3f} on all tokens, "
                  f"{report['probe_foreground']:.3f} on foreground; squared spread around the image / instance / "
                  f"(instance, part) mean: {v['image']:.2f} / {v['instance']:.2f} / {v['part']:.2f} "
                  f"(shares of the image's: 1 / {v['instance'] / v['image']:.3f} / {v['part'] / v['image']:.3f})"]
    return "\n".join(lines)
