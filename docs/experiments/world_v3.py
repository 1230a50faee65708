"""Candidate worlds for toy world v3 (issue 35, part A): objects of three or four large parts, with knobs for how
independently the parts look and how many spare slots the scenes leave. An experiment, not a product path: the
calibration (docs/experiments/calibrate_world.py) decides whether any of these replaces toy/world.py.

Knobs (`Candidate`):
    independent  False: one shade per object and every part in its class's first palette (a part's look follows
                 from the class and one number, as in world v2). True: each part draws its own shade, its own
                 palette from a small class-specific set (a patch still tells its class) and its own size and
                 offset within the object (articulation), so one part says little about its siblings.
    counts       P(1), P(2), ... objects; extents the half-extent range in pixels; repeat_prob the chance that a
                 scene of ≥ 2 objects repeats a class.

Ground truth as toy/world.py: instance (0 = background, 1..n), semantic (class index + 1), part (1..4 within the
instance seen there). Scene i of a split is always the same image for the same candidate.

    class    parts (first palette / second palette)
    house    wall, roof, door, window
    tree     crown, trunk, mound
    car      body, cabin, wheels
    flower   head (centre and petals as one ring of colour), petals, stem with leaves
    fish     head, body, tail
    robot    head, torso, tread
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# the parts, palettes, shapes and textures are the ones toy/world.py draws (toy/objects.py), so that the candidate
# `indep_few_flat` below and the shipped world are the same scenes
from toy.objects import (ANCHORS, CLASSES, MAX_PARTS, ORDER, PALETTES, PARTS, Pose, background,  # noqa: E402,F401
                         object_frame, part_shape as _shape, texture as _texture)


@dataclass(frozen=True)
class Candidate:
    name: str = "parts"
    independent: bool = False
    counts: tuple = (0.25, 0.35, 0.25, 0.15)  # P(1), P(2), P(3), P(4) objects
    min_extent: float = 12.0
    max_extent: float = 19.0
    repeat_prob: float = 0.3  # gives a repeat in 45–50 % of multi-object scenes
    shade_std: float = 18.0
    articulation: float = 0.12  # independent parts: offset of each part, in object units (the object fills [−1, 1]²)
    part_scale: float = 0.15  # independent parts: each part's size scaled by exp(U(−a, a))
    max_rotation: float = 20.0
    min_visible: float = 0.5
    min_part_visible: float = 0.34
    backgrounds: tuple = ("stripes", "checker", "blobs", "gradient")  # toy/world.py's kinds, or "flat"
    world: str = "v3"  # "v2": today's toy/world.py itself (the harness's check against the project's own numbers)


CANDIDATES = {
    "v2": Candidate("v2", world="v2"),  # today's world, the shipped encoder: the harness against known numbers
    "parts": Candidate("parts"),  # 1: three or four large parts, one look per object (the prototype)
    "indep": Candidate("indep", independent=True),  # 2: parts that vary on their own
    # 3: + fewer, larger objects (spare slots at K = 7)
    "indep_few": Candidate("indep_few", independent=True, counts=(0.3, 0.4, 0.3), min_extent=14.0, max_extent=21.0),
    # 5: a background one slot codes cheaply, so that spare slots have nowhere to go but objects (with 1 and 2+3)
    "parts_flat": Candidate("parts_flat", backgrounds=("flat",)),
    "indep_few_flat": Candidate("indep_few_flat", independent=True, counts=(0.3, 0.4, 0.3), min_extent=14.0,
                                max_extent=21.0, backgrounds=("flat",)),
}


def part_shapes(kind: str, U: np.ndarray, V: np.ndarray, shifts: list, scales: list) -> list:
    """Boolean (H, W) masks of the parts of one object in its frame (U, V); part j is moved by shifts[j] (du, dv)
    and scaled by scales[j] about its own anchor. Later parts are drawn over earlier ones by the caller."""
    out = []
    for j in range(len(PARTS[kind])):
        (du, dv), s = shifts[j], scales[j]
        a = ANCHORS[kind][j]
        u, v = (U - a[0] - du) / s + a[0], (V - a[1] - dv) / s + a[1]  # the part's own frame
        out.append(_shape(kind, j, u, v))
    return out


def make_scene(split: str, index: int, cand: Candidate, size: int = 64) -> dict:
    """One scene as numpy arrays: image (H, W, 3) uint8, instance / semantic / part (H, W) uint8, classes list."""
    rng = np.random.default_rng([{"train": 0, "val": 1, "shift": 2}[split], index, 20261206])
    counts = np.arange(1, 1 + len(cand.counts))
    n = int(rng.choice(counts, p=np.asarray(cand.counts) / np.sum(cand.counts)))
    classes = [CLASSES[i] for i in rng.integers(len(CLASSES), size=n)]
    if n >= 2 and rng.random() < cand.repeat_prob and len(set(classes)) == n:
        classes[1] = classes[0]
    kind = cand.backgrounds[rng.integers(len(cand.backgrounds))]
    if kind == "flat":  # one muted colour
        base = rng.uniform(70, 160, size=3)
        image = np.broadcast_to(0.5 * base + 0.5 * base.mean(), (size, size, 3)).astype(np.float64).copy()
    else:
        image = background(kind, rng, size)
    owner = np.zeros((size, size), np.int32)
    which = np.zeros((size, size), np.uint8)
    placed = []  # (kind, pose, part masks, part looks)
    for k in range(n):
        kind = classes[k]
        for _ in range(50):
            r = rng.uniform(cand.min_extent, cand.max_extent)
            cx, cy = rng.uniform(r * 0.6, size - r * 0.6, size=2)
            sx, sy = np.exp(rng.uniform(-0.15, 0.15, size=2))
            pose = Pose(float(cx), float(cy), float(r), float(sx), float(sy),
                        math.radians(rng.uniform(-cand.max_rotation, cand.max_rotation)), bool(rng.random() < 0.5))
            m_parts = len(PARTS[kind])
            if cand.independent:
                shifts = [tuple(rng.uniform(-cand.articulation, cand.articulation, size=2)) for _ in range(m_parts)]
                scales = list(np.exp(rng.uniform(-cand.part_scale, cand.part_scale, size=m_parts)))
            else:
                shifts, scales = [(0.0, 0.0)] * m_parts, [1.0] * m_parts
            U, V, u, v = object_frame(pose, size)
            raw = part_shapes(kind, U, V, shifts, scales)
            masks = [None] * m_parts
            covered = np.zeros((size, size), bool)
            for j in reversed(ORDER[kind]):  # the part painted last owns its pixels
                masks[j] = raw[j] & ~covered
                covered |= raw[j]
            whole = covered
            if whole.sum() < 60 or (whole[:, 0].any() + whole[:, -1].any() + whole[0].any() + whole[-1].any()) > 1:
                continue
            trial = np.where(whole, k + 1, owner)
            ok = all((trial == i + 1).sum() >= cand.min_visible * sum(pm.sum() for pm in ms)
                     and all(((trial == i + 1) & pm).sum() >= cand.min_part_visible * pm.sum() for pm in ms)
                     for i, (_, _, ms, _) in enumerate(placed + [(kind, pose, masks, None)]))
            if not ok:
                continue
            if cand.independent:
                looks = [(int(rng.integers(len(PALETTES[kind][j]))), rng.normal(0, cand.shade_std, 3))
                         for j in range(m_parts)]
            else:
                shade = rng.normal(0, cand.shade_std, 3)
                looks = [(0, shade) for _ in range(m_parts)]
            owner = trial
            for j in range(m_parts):
                which = np.where(masks[j], j + 1, which).astype(np.uint8)
            placed.append((kind, pose, masks, looks))
            break
        else:
            break
    classes = [p[0] for p in placed]
    for k, (kind, pose, masks, looks) in enumerate(placed):
        U, V, u, v = object_frame(pose, size)
        vis = owner == k + 1
        for j, (opt, shade) in enumerate(looks):
            first, second, tex = PALETTES[kind][j][opt]
            t = _texture(tex, U, V, u, v)
            colour = np.where(t[..., None], np.float32(second), np.float32(first)) + shade
            m = vis & masks[j]
            image[m] = np.clip(colour[m], 0, 255)
    instance = owner.astype(np.uint8)
    part = np.where(instance > 0, which, 0).astype(np.uint8)
    semantic = np.zeros_like(instance)
    for k, kind in enumerate(classes):
        semantic[instance == k + 1] = CLASSES.index(kind) + 1
    return {"image": np.clip(np.round(image), 0, 255).astype(np.uint8), "instance": instance, "semantic": semantic,
            "part": part, "classes": classes}


def scenes(split: str, n: int, cand: Candidate, offset: int = 0) -> dict:
    """n scenes as stacked tensors: image (n, 3, 64, 64) float in [0, 1]; instance, semantic, part (n, 64, 64) long;
    repeated (n,) bool; num_objects (n,) long."""
    if cand.world == "v2":
        from toy import world
        items = []
        for i in range(n):
            sc = world.make_scene(split, offset + i)
            items.append({"image": sc.image, "instance": sc.instance, "semantic": sc.semantic, "part": sc.part,
                          "classes": sc.classes})
    else:
        items = [make_scene(split, offset + i, cand) for i in range(n)]
    return {"image": torch.from_numpy(np.stack([s["image"] for s in items])).permute(0, 3, 1, 2).float() / 255.0,
            "instance": torch.from_numpy(np.stack([s["instance"] for s in items])).long(),
            "semantic": torch.from_numpy(np.stack([s["semantic"] for s in items])).long(),
            "part": torch.from_numpy(np.stack([s["part"] for s in items])).long(),
            "repeated": torch.tensor([len(set(s["classes"])) < len(s["classes"]) for s in items]),
            "num_objects": torch.tensor([len(s["classes"]) for s in items])}


if __name__ == "__main__":  # a contact sheet of each candidate: python docs/experiments/world_v3.py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for name, cand in CANDIDATES.items():
        fig, axes = plt.subplots(3, 8, figsize=(16, 6))
        for i, ax in enumerate(axes.flat):
            s = make_scene("val", i, cand)
            ax.imshow(s["image"] if i < 16 else s["part"] * 60 + s["instance"] * 10)
            ax.set_title(" ".join(s["classes"]), fontsize=6)
            ax.axis("off")
        fig.suptitle(f"candidate {name}: {cand}", fontsize=7)
        fig.savefig(f"/tmp/world_v3_{name}.png", dpi=80)
