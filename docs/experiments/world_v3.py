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
from toy.world import Pose, background, object_frame  # noqa: E402

CLASSES = ("house", "tree", "car", "flower", "fish", "robot")
PARTS = {"house": ("wall", "roof", "door", "window"), "tree": ("crown", "trunk", "mound"),
         "car": ("body", "cabin", "wheels"), "flower": ("centre", "petals", "stem"),
         "fish": ("head", "body", "tail"), "robot": ("head", "torso", "tread")}
MAX_PARTS = 4
# per part: palette options (first colour, second colour, texture); option 0 is the one a non-independent world uses.
# Options of one part stay within its class's hue family, so a patch still tells its class.
PALETTES = {
    "house": ([((215, 185, 130), (150, 120, 80), "bricks"), ((235, 225, 200), (170, 160, 140), "bricks")],
              [((185, 60, 45), (120, 35, 30), "tiles"), ((120, 40, 40), (70, 25, 25), "tiles")],
              [((110, 70, 40), (70, 45, 25), "vstripes"), ((60, 110, 60), (35, 70, 35), "vstripes")],
              [((150, 200, 240), (250, 250, 250), "cross"), ((240, 230, 140), (250, 250, 250), "cross")]),
    "tree": ([((50, 150, 55), (25, 95, 35), "speckle"), ((150, 175, 40), (95, 120, 25), "speckle")],
             [((115, 70, 35), (80, 45, 20), "vstripes"), ((150, 130, 110), (100, 85, 70), "vstripes")],
             [((95, 65, 40), (60, 130, 50), "grass"), ((140, 120, 80), (60, 130, 50), "grass")]),
    "car": ([((40, 85, 205), (20, 45, 130), "hstripes"), ((205, 40, 60), (130, 20, 35), "hstripes")],
            [((150, 200, 240), (60, 60, 70), "window"), ((200, 230, 200), (60, 60, 70), "window")],
            [((35, 35, 40), (130, 130, 135), "hub"), ((70, 55, 45), (180, 170, 150), "hub")]),
    "flower": ([((245, 205, 30), (215, 130, 20), "checker"), ((120, 60, 30), (70, 35, 15), "checker")],
               [((205, 60, 175), (235, 140, 215), "rays"), ((240, 240, 250), (200, 200, 230), "rays")],
               [((60, 170, 70), (30, 110, 40), "hstripes"), ((110, 190, 90), (60, 130, 50), "hstripes")]),
    "fish": ([((245, 135, 25), (60, 30, 10), "eye"), ((240, 200, 60), (60, 30, 10), "eye")],
             [((245, 135, 25), (200, 90, 15), "scales"), ((90, 170, 210), (50, 110, 160), "scales")],
             [((125, 55, 175), (80, 30, 120), "hstripes"), ((60, 180, 170), (30, 120, 110), "hstripes")]),
    "robot": ([((170, 175, 185), (230, 60, 40), "eyes"), ((200, 170, 80), (230, 60, 40), "eyes")],
              [((90, 100, 120), (180, 190, 200), "panel"), ((60, 140, 130), (180, 190, 200), "panel")],
              [((45, 45, 50), (110, 110, 115), "vstripes"), ((90, 70, 45), (150, 130, 100), "vstripes")]),
}


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


def _ellipse(U, V, cu, cv, ru, rv):
    return ((U - cu) / ru) ** 2 + ((V - cv) / rv) ** 2 <= 1


def _box(U, V, u0, u1, v0, v1):
    return (U >= u0) & (U <= u1) & (V >= v0) & (V <= v1)


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


ANCHORS = {"house": ((0, 0.45), (0, -0.55), (0.35, 0.65), (-0.35, 0.3)), "tree": ((0, -0.35), (0, 0.45), (0, 0.85)),
           "car": ((0, 0.1), (0, -0.55), (0, 0.55)), "flower": ((0, -0.4), (0, -0.4), (0, 0.55)),
           "fish": ((-0.6, 0), (0, 0), (0.72, 0)), "robot": ((0, -0.72), (0, 0.0), (0, 0.75))}


def _shape(kind: str, j: int, U, V):
    if kind == "house":
        return [_box(U, V, -0.8, 0.8, -0.1, 1.0),  # wall
                (V >= -1.0) & (V <= -0.1) & (np.abs(U) <= (V + 1.0) / 0.95),  # roof
                _box(U, V, 0.12, 0.58, 0.3, 1.0),  # door
                _box(U, V, -0.62, -0.08, 0.05, 0.55)][j]  # window
    if kind == "tree":
        return [_ellipse(U, V, 0, -0.35, 0.85, 0.62),  # crown
                _box(U, V, -0.22, 0.22, 0.1, 0.8),  # trunk
                _ellipse(U, V, 0, 1.0, 0.95, 0.32) & (V <= 1.0)][j]  # mound
    if kind == "car":
        return [_box(U, V, -1.0, 1.0, -0.3, 0.45),  # body
                _box(U, V, -0.55, 0.55, -0.85, -0.3),  # cabin
                _ellipse(U, V, 0.55, 0.55, 0.33, 0.33) | _ellipse(U, V, -0.55, 0.55, 0.33, 0.33)][j]  # wheels
    if kind == "flower":
        rho, theta = np.sqrt(U ** 2 + (V + 0.4) ** 2), np.arctan2(V + 0.4, U)
        return [rho <= 0.25,  # centre
                rho <= 0.35 + 0.3 * np.abs(np.cos(2.5 * theta)),  # petals
                _box(U, V, -0.12, 0.12, 0.0, 1.0) | _ellipse(U, V, 0.32, 0.55, 0.3, 0.13)
                | _ellipse(U, V, -0.32, 0.75, 0.3, 0.13)][j]  # stem with leaves
    if kind == "fish":
        body = _ellipse(U, V, -0.15, 0, 0.85, 0.6)
        return [body & (U < -0.45),  # head
                body & (U >= -0.45),  # body
                (U >= 0.45) & (U <= 1.0) & (np.abs(V) <= (U - 0.45) / 0.55 * 0.7)][j]  # tail
    if kind == "robot":
        return [_box(U, V, -0.38, 0.38, -1.0, -0.45),  # head
                _box(U, V, -0.62, 0.62, -0.42, 0.45),  # torso
                _box(U, V, -0.8, 0.8, 0.5, 1.0)][j]  # tread
    raise ValueError(kind)


# paint order (later parts over earlier ones): details over the large part they sit on
ORDER = {"house": (0, 1, 2, 3), "tree": (2, 1, 0), "car": (0, 1, 2), "flower": (2, 1, 0), "fish": (2, 1, 0),
         "robot": (2, 1, 0)}


def _texture(name: str, U, V, u, v):
    if name == "plain":
        return np.zeros(U.shape, bool)
    if name == "speckle":
        return np.sin(u * 1.9) + np.sin(v * 2.3 + u * 0.7) > 1.0
    if name == "vstripes":
        return np.floor(u) % 3 == 0
    if name == "hstripes":
        return np.floor(v) % 3 == 0
    if name == "bricks":
        row = np.floor(v / 4)
        return (np.floor(v) % 4 == 0) | (np.floor(u + 3 * (row % 2)) % 6 == 0)
    if name == "tiles":
        return (u + v) % 4 < 1.2
    if name == "checker":
        return (np.floor(u / 2) + np.floor(v / 2)) % 2 == 0
    if name == "rays":
        return np.cos(12 * np.arctan2(V + 0.4, U)) > 0.6
    if name == "scales":
        return np.sin(u * 1.6) * np.sin(v * 1.6) > 0.3
    if name == "cross":  # window bars
        return (np.abs(u - np.round(u / 5) * 5) < 0.6) | (np.abs(v - np.round(v / 5) * 5) < 0.6)
    if name == "grass":
        return np.sin(u * 2.5) * 0.5 + 0.5 > (V - 0.7) * 3
    if name == "window":
        return _box(U, V, -0.05, 0.05, -0.85, -0.3)
    if name == "hub":
        return ((np.abs(U) - 0.55) ** 2 + (V - 0.55) ** 2) <= 0.015
    if name == "eye":
        return _ellipse(U, V, -0.72, -0.12, 0.08, 0.08)
    if name == "eyes":
        return _ellipse(U, V, -0.15, -0.75, 0.08, 0.08) | _ellipse(U, V, 0.15, -0.75, 0.08, 0.08)
    if name == "panel":
        return _box(U, V, -0.3, 0.3, -0.2, 0.2) & ((np.floor(v) % 3) == 0)
    raise ValueError(name)


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
