"""The toy world: the built-in default data of this project (no paper section; docs/design.md §7).

GLASS stands on web-scale pretrained models. So that every part of the method is real and measurable on a laptop,
this project ships a small world of 64×64 scenes with exact ground truth, and trains its own small diffusion model
and encoder on it (toy/pretrain.py).

A scene: a textured background (stripes, checker, blobs or gradient) and 1–4 flat-coloured objects of 4 shape
classes (circle, square, triangle, cross) in 4 colours, radius 12–20 px, placed with partial occlusion (every object
keeps at least `min_visible` of its area visible). In at least a third of the scenes one class appears twice or
more, so that instances and classes differ. Ground truth: instance mask (0 = background, 1..n in paint order),
semantic mask (0 = background, class index + 1), class names, colours, boxes (x0, y0, x1, y1) of the visible part.

The caption generator plays the captioner's role: varied phrasing, counts, colours, synonyms ("ball", "box",
"plus sign") and words that are not classes ("floor", "picture"), so noun extraction has real work.

Splits (scene i of a split is always the same image, seeded by (split, i)):
    train  an endless stream by index
    val    512 fixed scenes from the same distribution
    shift  a zero-shot split: 3–5 objects, colour shades never seen, and a background kind ("rings") never seen

Shape legend: H = W = 64 pixels, n objects. Checked by tests/test_toy_world.py. `python -m toy.world` times the renderer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

CLASSES = ("circle", "square", "triangle", "cross")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "cross": "crosses"}
# synonyms the captioner may use; each maps to its class name
SYNONYMS = {"ball": "circle", "disc": "circle", "box": "square", "block": "square", "plus sign": "cross",
            "wedge": "triangle"}
SYNONYM_PLURALS = {"ball": "balls", "disc": "discs", "box": "boxes", "block": "blocks", "plus sign": "plus signs",
                   "wedge": "wedges"}
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 230), "yellow": (235, 210, 40)}
BACKGROUNDS_TRAIN = ("stripes", "checker", "blobs", "gradient")
BACKGROUNDS_SHIFT = ("rings",)
BACKGROUND_WORDS = {"stripes": "striped", "checker": "checkered", "blobs": "spotted", "gradient": "shaded",
                    "rings": "ringed"}
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}
SPLIT_IDS = {"train": 0, "val": 1, "shift": 2}
SIZE = 64


@dataclass
class WorldConfig:
    """What scenes look like. The defaults are the world the shipped models were trained on."""
    size: int = SIZE
    min_objects: int = 1
    max_objects: int = 4
    object_weights: tuple = (0.3, 0.35, 0.25, 0.1)  # P(1), P(2), P(3), P(4) objects
    min_radius: float = 12.0  # objects span 6–10 latent cells of a 16×16 latent grid
    max_radius: float = 20.0
    min_visible: float = 0.5  # every object keeps at least this share of its area visible
    repeat_prob: float = 0.45  # chance that a scene with ≥ 2 objects repeats one class
    backgrounds: tuple = BACKGROUNDS_TRAIN
    colour_jitter: float = 0.0  # std of per-object colour shade noise (0–255 scale); the shift split uses 30


SPLITS = {
    "train": WorldConfig(),
    "val": WorldConfig(),
    "shift": WorldConfig(min_objects=3, max_objects=5, object_weights=(0.4, 0.4, 0.2), backgrounds=BACKGROUNDS_SHIFT,
                         colour_jitter=30.0),
}
VAL_SIZE = 512
SHIFT_SIZE = 256


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    instance: np.ndarray  # (H, W) uint8, 0 = background, 1..n
    semantic: np.ndarray  # (H, W) uint8, 0 = background, class index + 1
    classes: list  # n class names, in instance order
    colours: list  # n colour names
    rgb: list  # n (r, g, b) tuples actually painted
    boxes: np.ndarray  # (n, 4) float32 (x0, y0, x1, y1) of the visible part, pixels, x1/y1 exclusive
    background: str
    caption: str = ""
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# shapes and backgrounds
# ---------------------------------------------------------------------------------------------------------------

def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # pixel centres
    return xs, ys


def shape_mask(kind: str, cx: float, cy: float, r: float, angle: float, size: int = SIZE) -> np.ndarray:
    """Boolean (H, W) mask of one shape of 'radius' r (half its extent) centred at (cx, cy), rotated by angle."""
    xs, ys = _grid(size)
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # coordinates in the shape's frame
    if kind == "circle":
        return dx * dx + dy * dy <= r * r
    if kind == "square":
        h = r * 0.85  # a square of half-side 0.85 r has about the area of the other shapes
        return (np.abs(u) <= h) & (np.abs(v) <= h)
    if kind == "cross":
        arm = r * 0.38
        return ((np.abs(u) <= r) & (np.abs(v) <= arm)) | ((np.abs(v) <= r) & (np.abs(u) <= arm))
    if kind == "triangle":
        # equilateral triangle with circumradius r, pointing "up" in its own frame
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = angle + math.pi / 2 + k * 2 * math.pi / 3 + math.pi / 3  # outward normal of edge k
            nx, ny = math.cos(a), -math.sin(a)
            inside &= dx * nx + dy * ny <= r * 0.5
        return inside
    raise ValueError(f"unknown shape {kind!r}; expected one of {CLASSES}")


def background(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A muted textured background (H, W, 3) float32 in 0..255, kept less saturated than the objects."""
    xs, ys = _grid(size)
    base = rng.uniform(70, 160, size=3)
    other = np.clip(base + rng.uniform(-45, 45, size=3), 40, 190)
    if kind == "stripes":
        period, a = rng.uniform(6, 14), rng.uniform(0, math.pi)
        t = (np.sin((xs * math.cos(a) + ys * math.sin(a)) * 2 * math.pi / period) > 0).astype(np.float32)
    elif kind == "checker":
        cell = rng.integers(6, 13)
        t = (((xs // cell) + (ys // cell)) % 2).astype(np.float32)
    elif kind == "blobs":
        t = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(5, 10)):
            bx, by, br = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, 9)
            t = np.maximum(t, ((xs - bx) ** 2 + (ys - by) ** 2 <= br * br).astype(np.float32))
    elif kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = (xs * math.cos(a) + ys * math.sin(a)) / size
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "rings":
        cx, cy, period = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(6, 12)
        t = (np.sin(np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) * 2 * math.pi / period) > 0).astype(np.float32)
    else:
        raise ValueError(f"unknown background {kind!r}")
    grey = base.mean()
    base, other = 0.5 * base + 0.5 * grey, 0.5 * other + 0.5 * grey  # desaturate
    return base[None, None] * (1 - t[..., None]) + other[None, None] * t[..., None]


# ---------------------------------------------------------------------------------------------------------------
# captions
# ---------------------------------------------------------------------------------------------------------------

def _noun(cls: str, count: int, rng: np.random.Generator) -> str:
    synonyms = [w for w, c in SYNONYMS.items() if c == cls]
    word = cls if rng.random() < 0.6 else synonyms[rng.integers(len(synonyms))]
    if count == 1:
        return word
    return PLURALS.get(word) or SYNONYM_PLURALS[word]


def make_caption(classes: list, colours: list, bg: str, rng: np.random.Generator) -> str:
    """A captioner-like sentence naming every object's class (maybe by a synonym), with counts and colours."""
    groups: dict = {}
    for cls, col in zip(classes, colours):
        groups.setdefault(cls, []).append(col)
    phrases = []
    for cls, cols in groups.items():
        n = len(cols)
        if n == 1:
            noun = _noun(cls, 1, rng)
            phrase = f"{cols[0]} {noun}" if rng.random() < 0.7 else noun
            article = "an" if phrase[0] in "aeiou" else "a"
            phrases.append(f"{article} {phrase}")
        elif len(set(cols)) == 1 and rng.random() < 0.7:
            phrases.append(f"{NUMBER_WORDS[n]} {cols[0]} {_noun(cls, n, rng)}")
        else:
            phrases.append(f"{NUMBER_WORDS[n]} {_noun(cls, n, rng)}")
    order = rng.permutation(len(phrases))
    phrases = [phrases[i] for i in order]
    objects = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    floor = BACKGROUND_WORDS[bg]
    templates = (
        "a picture of {o} on a {f} floor",
        "{o} lying on a {f} background",
        "there is {o} in this image",
        "this scene shows {o} on a {f} wall",
        "a photo with {o}",
        "{o} in front of a {f} pattern",
    )
    return templates[rng.integers(len(templates))].format(o=objects, f=floor)


# ---------------------------------------------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------------------------------------------

def _scene_rng(split: str, index: int) -> np.random.Generator:
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_IDS)}")
    if index < 0:
        raise ValueError(f"scene index must be ≥ 0, got {index}")
    return np.random.default_rng([SPLIT_IDS[split], index, 20250611])


def make_scene(split: str, index: int, config: WorldConfig | None = None) -> Scene:
    """Scene `index` of `split`: always the same image for the same (split, index, config)."""
    cfg = SPLITS[split] if config is None else config
    rng = _scene_rng(split, index)
    size = cfg.size
    counts = np.arange(cfg.min_objects, cfg.min_objects + len(cfg.object_weights))
    n = int(rng.choice(counts, p=np.asarray(cfg.object_weights) / np.sum(cfg.object_weights)))
    classes = [CLASSES[i] for i in rng.integers(len(CLASSES), size=n)]
    if n >= 2 and rng.random() < cfg.repeat_prob and len(set(classes)) == n:
        classes[1] = classes[0]  # make one class appear twice
    colour_names = [list(COLOURS)[i] for i in rng.integers(len(COLOURS), size=n)]
    bg_kind = cfg.backgrounds[rng.integers(len(cfg.backgrounds))]
    image = background(bg_kind, rng, size)
    instance = np.zeros((size, size), np.uint8)
    placed: list = []  # full masks of placed objects
    for k in range(n):
        for _attempt in range(50):
            r = rng.uniform(cfg.min_radius, cfg.max_radius)
            cx, cy = rng.uniform(r * 0.6, size - r * 0.6, size=2)
            m = shape_mask(classes[k], cx, cy, r, rng.uniform(0, 2 * math.pi) if classes[k] != "circle" else 0.0, size)
            area = m.sum()
            if area < 40 or (m[:, 0].any() + m[:, -1].any() + m[0].any() + m[-1].any()) > 1:
                continue  # keep most of the object inside the image
            trial = instance.copy()
            trial[m] = k + 1
            ok = all((trial == j + 1).sum() >= cfg.min_visible * pm.sum() for j, pm in enumerate(placed + [m]))
            if ok:
                instance = trial
                placed.append(m)
                break
        else:
            break  # no room for another object: keep the scene with fewer
    n = len(placed)
    classes, colour_names = classes[:n], colour_names[:n]
    rgbs = []
    for k in range(n):
        rgb = np.asarray(COLOURS[colour_names[k]], np.float32)
        if cfg.colour_jitter > 0:
            rgb = np.clip(rgb + rng.normal(0, cfg.colour_jitter, size=3), 0, 255)
        rgb = np.round(rgb).astype(np.uint8)
        rgbs.append(tuple(int(c) for c in rgb))
        image[instance == k + 1] = rgb
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    semantic = np.zeros_like(instance)
    boxes = np.zeros((n, 4), np.float32)
    for k in range(n):
        m = instance == k + 1
        semantic[m] = CLASSES.index(classes[k]) + 1
        ys, xs = np.nonzero(m)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    caption = make_caption(classes, colour_names, bg_kind, rng)
    return Scene(image=image, instance=instance, semantic=semantic, classes=classes, colours=colour_names, rgb=rgbs,
                 boxes=boxes, background=bg_kind, caption=caption)


def class_names_prompt(classes: list) -> str:
    """The GLASS† labels of a scene: its distinct class names, in a fixed order (e.g. "circle square")."""
    return " ".join(c for c in CLASSES if c in classes)


# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------

MAX_OBJECTS = 5  # padding length of per-object fields (the shift split has up to 5)


class ToyScenes(Dataset):
    """Scenes of one split as dicts of tensors.

    Keys: image (3, H, W) float in [0, 1]; instance, semantic (H, W) long; classes (MAX_OBJECTS,) long class index
    or −1; boxes (MAX_OBJECTS, 4) float; num_objects () long; caption, labels (str); index () long.
    `train` has no natural length: pass `length` (and `offset` to continue a stream elsewhere).
    """

    def __init__(self, split: str = "train", length: int | None = None, offset: int = 0):
        if split not in SPLIT_IDS:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_IDS)}")
        default = {"train": None, "val": VAL_SIZE, "shift": SHIFT_SIZE}[split]
        if length is None and default is None:
            raise ValueError("the train split is an endless stream: pass length=")
        self.split, self.length, self.offset = split, default if length is None else length, offset

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.length:
            raise IndexError(i)
        s = make_scene(self.split, self.offset + i)
        n = len(s.classes)
        classes = torch.full((MAX_OBJECTS,), -1, dtype=torch.long)
        classes[:n] = torch.tensor([CLASSES.index(c) for c in s.classes], dtype=torch.long)
        boxes = torch.zeros(MAX_OBJECTS, 4)
        boxes[:n] = torch.from_numpy(s.boxes)
        return {
            "image": torch.from_numpy(s.image).permute(2, 0, 1).float() / 255.0,  # (3, H, W)
            "instance": torch.from_numpy(s.instance).long(),  # (H, W)
            "semantic": torch.from_numpy(s.semantic).long(),  # (H, W)
            "classes": classes,
            "boxes": boxes,
            "num_objects": torch.tensor(n),
            "caption": s.caption,
            "labels": class_names_prompt(s.classes),
            "index": torch.tensor(self.offset + i),
        }


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    scenes = [make_scene("train", i) for i in range(500)]
    dt = time.perf_counter() - t0
    print(f"{500 / dt:.0f} scenes/s on this machine (one process)")
    for s in scenes[:5]:
        print(s.caption, "|", s.classes)
