"""The toy world: the built-in default data of this project (no paper section; docs/design.md §7).

GLASS stands on web-scale pretrained models. So that every part of the method is real and measurable on a laptop,
this project ships a small world of 64×64 scenes with exact ground truth, and trains its own small diffusion model
and encoder on it (toy/pretrain.py).

The world poses the two problems GLASS's guidance exists for (docs/lab_notes/binding.md §4 measures why the first world,
docs/history/, did not):
- **a class is visible in every patch**, as a dog is a dog in any patch of a photo: each class has its own palette
  and texture, so a 4×4 patch tells the class;
- **objects are made of parts** of different appearance (a tree is a green crown on a brown trunk): grouping by
  appearance splits objects into parts, the part-whole ambiguity of DINOSAUR's slots;
- **several instances of one class** in about half of the multi-object scenes: class-level masks merge them (the
  paper's semantic drift), and instances differ in size, aspect, rotation, mirroring and shade.

A scene: a textured background (stripes, checker, blobs or gradient) and 1–4 objects of 6 two-part classes,
half-extent 10–17 px, rotation ±20°, placed with partial occlusion (every object keeps half its area visible and
every part a third of its own). Ground truth: instance mask (0 = background, 1..n in paint order), semantic mask
(0 = background, class index + 1), part mask (0 = background, 1 = first part, 2 = second part of the object seen
there), class names, boxes (x0, y0, x1, y1) of the visible part.

    class      part 1                          part 2
    tree       green crown, leaf speckles      brown trunk, bark lines
    house      tan wall, brick lines           red roof, tile lines
    mushroom   red cap, white dots             cream stem
    flower     yellow centre, orange checks    magenta petals, pink rays
    car        blue body, light windows        dark wheels, grey hubs
    fish       orange body, scales             purple tail, stripes

The caption generator plays the captioner's role: varied phrasing, counts, synonyms ("cottage", "toadstool",
"automobile"), attributes (size, shade, colour) and words that are not classes ("floor", "picture").

Splits (scene i of a split is always the same image, seeded by (split, i)):
    train  an endless stream by index
    val    512 fixed scenes from the same distribution
    shift  a zero-shot split: 3–5 objects, shades further from the palette (std 30 against 18), and a background
           kind ("rings") never seen

Shape legend: H = W = 64 pixels, n objects. Checked by tests/test_toy_world.py; `python -m toy.report world`
measures the properties above.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

CLASSES = ("tree", "house", "mushroom", "flower", "car", "fish")
PARTS = {"tree": ("crown", "trunk"), "house": ("wall", "roof"), "mushroom": ("cap", "stem"),
         "flower": ("centre", "petals"), "car": ("body", "wheels"), "fish": ("body", "tail")}
PLURALS = {"tree": "trees", "house": "houses", "mushroom": "mushrooms", "flower": "flowers", "car": "cars",
           "fish": "fish"}
# synonyms the captioner may use; each maps to its class name
SYNONYMS = {"oak": "tree", "cottage": "house", "home": "house", "toadstool": "mushroom", "blossom": "flower",
            "daisy": "flower", "automobile": "car", "goldfish": "fish"}
SYNONYM_PLURALS = {"oak": "oaks", "cottage": "cottages", "home": "homes", "toadstool": "toadstools",
                   "blossom": "blossoms", "daisy": "daisies", "automobile": "automobiles", "goldfish": "goldfish"}
COLOUR_WORDS = {"tree": "green", "house": "beige", "mushroom": "red", "flower": "pink", "car": "blue",
                "fish": "orange"}
SIZE_WORDS = ("small", "big")
SHADE_WORDS = ("dark", "light")
# (first colour, second colour, texture) of each part, 0–255; the texture decides where the second colour goes
PALETTE = {
    "tree": (((50, 150, 55), (25, 95, 35), "speckle"), ((115, 70, 35), (80, 45, 20), "vstripes")),
    "house": (((215, 185, 130), (150, 120, 80), "bricks"), ((185, 60, 45), (120, 35, 30), "tiles")),
    "mushroom": (((215, 35, 40), (250, 250, 250), "dots"), ((245, 238, 215), (245, 238, 215), "plain")),
    "flower": (((245, 205, 30), (215, 130, 20), "checker"), ((205, 60, 175), (235, 140, 215), "rays")),
    "car": (((40, 85, 205), (150, 200, 240), "window"), ((35, 35, 40), (130, 130, 135), "hub")),
    "fish": (((245, 135, 25), (200, 90, 15), "scales"), ((125, 55, 175), (80, 30, 120), "hstripes")),
}
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
    object_weights: tuple = (0.25, 0.35, 0.25, 0.15)  # P(1), P(2), P(3), P(4) objects
    min_extent: float = 10.0  # half-extent in pixels: objects span 5–9 latent cells of the 16×16 latent grid
    max_extent: float = 17.0
    max_aspect: float = 0.15  # each axis scaled by exp(U(−a, a))
    max_rotation: float = 20.0  # degrees
    min_visible: float = 0.5  # every object keeps at least this share of its area visible ...
    min_part_visible: float = 0.34  # ... and every part this share of its own
    repeat_prob: float = 0.3  # chance that a scene of ≥ 2 distinct classes is made to repeat one
    backgrounds: tuple = BACKGROUNDS_TRAIN
    shade_std: float = 18.0  # std of each instance's shade offset (0–255 scale, per channel)


SPLITS = {
    "train": WorldConfig(),
    "val": WorldConfig(),
    "shift": WorldConfig(min_objects=3, max_objects=5, object_weights=(0.4, 0.4, 0.2), backgrounds=BACKGROUNDS_SHIFT,
                         shade_std=30.0),
}
VAL_SIZE = 512
SHIFT_SIZE = 256


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    instance: np.ndarray  # (H, W) uint8, 0 = background, 1..n
    semantic: np.ndarray  # (H, W) uint8, 0 = background, class index + 1
    part: np.ndarray  # (H, W) uint8, 0 = background, 1 or 2 = first or second part of the instance seen there
    classes: list  # n class names, in instance order
    attributes: list  # n lists of caption words (size, shade, colour) that describe each instance
    shades: list  # n (r, g, b) offsets added to the object's palette
    boxes: np.ndarray  # (n, 4) float32 (x0, y0, x1, y1) of the visible part, pixels, x1/y1 exclusive
    background: str
    caption: str = ""
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# objects: two parts each, drawn in the object's own frame
# ---------------------------------------------------------------------------------------------------------------

def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # pixel centres
    return xs, ys


@dataclass
class Pose:
    """Where an object sits: centre (cx, cy) in pixels, half-extent r, axis scales (sx, sy), rotation (radians),
    mirrored left-right or not."""
    cx: float
    cy: float
    r: float
    sx: float = 1.0
    sy: float = 1.0
    angle: float = 0.0
    mirror: bool = False


def object_frame(pose: Pose, size: int = SIZE) -> tuple:
    """Frame coordinates of every pixel: (U, V) normalised so that the object fills [−1, 1]², V pointing down, and
    (u, v) the same axes in pixels (textures are drawn in pixels, so they turn with the object). Each (H, W)."""
    xs, ys = _grid(size)
    dx, dy = xs - pose.cx, ys - pose.cy
    c, s = math.cos(pose.angle), math.sin(pose.angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotate into the object's frame
    if pose.mirror:
        u = -u
    return u / (pose.r * pose.sx), v / (pose.r * pose.sy), u, v


def part_masks(kind: str, pose: Pose, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (H, W) masks of an object's first and second part; they never overlap."""
    U, V, _, _ = object_frame(pose, size)
    if kind == "tree":
        first = (U / 0.85) ** 2 + ((V + 0.3) / 0.65) ** 2 <= 1  # crown
        second = (np.abs(U) <= 0.2) & (V >= 0.2) & (V <= 1.0)  # trunk
    elif kind == "house":
        first = (np.abs(U) <= 0.78) & (V > -0.1) & (V <= 1.0)  # wall
        second = (V >= -1.0) & (V <= -0.1) & (np.abs(U) <= (V + 1.0) / 0.9)  # roof, apex at the top
    elif kind == "mushroom":
        first = (U ** 2 + ((V - 0.1) / 0.95) ** 2 <= 1) & (V <= 0.1)  # cap: upper half-ellipse
        second = (np.abs(U) <= 0.3) & (V > 0.1) & (V <= 1.0)  # stem
    elif kind == "flower":
        rho, theta = np.sqrt(U ** 2 + V ** 2), np.arctan2(V, U)
        first = rho <= 0.33  # centre
        second = rho <= 0.5 + 0.5 * np.abs(np.cos(2.5 * theta))  # five petals
    elif kind == "car":
        first = ((np.abs(U) <= 1.0) & (V >= -0.35) & (V <= 0.5)) | ((np.abs(U) <= 0.55) & (V >= -0.85) & (V < -0.35))
        second = ((U - 0.55) ** 2 + (V - 0.5) ** 2 <= 0.09) | ((U + 0.55) ** 2 + (V - 0.5) ** 2 <= 0.09)  # wheels
    elif kind == "fish":
        first = ((U + 0.2) / 0.8) ** 2 + (V / 0.55) ** 2 <= 1  # body
        second = (U >= 0.45) & (U <= 1.0) & (np.abs(V) <= (U - 0.45) / 0.55 * 0.65)  # tail
    else:
        raise ValueError(f"unknown class {kind!r}; expected one of {CLASSES}")
    if kind in ("car",):
        first = first & ~second  # wheels are drawn over the body
    else:
        second = second & ~first
    return first, second


def texture(name: str, kind: str, pose: Pose, size: int = SIZE) -> np.ndarray:
    """Boolean (H, W): where a part shows its second colour."""
    U, V, u, v = object_frame(pose, size)
    if name == "plain":
        return np.zeros((size, size), bool)
    if name == "speckle":  # leaves
        return np.sin(u * 1.9) + np.sin(v * 2.3 + u * 0.7) > 1.0
    if name == "vstripes":  # bark
        return np.floor(u) % 3 == 0
    if name == "hstripes":
        return np.floor(v) % 3 == 0
    if name == "bricks":  # mortar rows every 4 px, joints every 6 px, shifted on alternate rows
        row = np.floor(v / 4)
        return (np.floor(v) % 4 == 0) | (np.floor(u + 3 * (row % 2)) % 6 == 0)
    if name == "tiles":  # diagonal lines
        return (u + v) % 4 < 1.2
    if name == "dots":  # white dots on a 6-px grid
        return (u % 6 - 3) ** 2 + (v % 6 - 3) ** 2 < 2.3
    if name == "checker":
        return (np.floor(u / 2) + np.floor(v / 2)) % 2 == 0
    if name == "rays":
        return np.cos(12 * np.arctan2(V, U)) > 0.6
    if name == "window":  # the cabin's glass
        return (np.abs(U) <= 0.42) & (V >= -0.75) & (V <= -0.42)
    if name == "hub":
        return ((np.abs(U) - 0.55) ** 2 + (V - 0.5) ** 2) <= 0.012
    if name == "scales":
        return np.sin(u * 1.6) * np.sin(v * 1.6) > 0.3
    raise ValueError(f"unknown texture {name!r} (class {kind})")


def paint_object(image: np.ndarray, kind: str, pose: Pose, shade: np.ndarray, where: list) -> None:
    """Paint an object's parts into image (H, W, 3) float, only at the pixels `where[j]` (H, W) of part j."""
    size = image.shape[0]
    for (first, second, tex), mask in zip(PALETTE[kind], where):
        second_here = texture(tex, kind, pose, size)
        colour = np.where(second_here[..., None], np.float32(second), np.float32(first)) + shade  # (H, W, 3)
        image[mask] = np.clip(colour[mask], 0, 255)


# ---------------------------------------------------------------------------------------------------------------
# backgrounds
# ---------------------------------------------------------------------------------------------------------------

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


def describe(cls: str, extent: float, shade: np.ndarray, cfg: WorldConfig) -> list:
    """The attribute words that fit one instance: its size (from the half-extent), its shade (from the mean shade
    offset) and its class colour, in caption order."""
    words = []
    third = (cfg.max_extent - cfg.min_extent) / 3
    if extent < cfg.min_extent + third:
        words.append("small")
    elif extent > cfg.max_extent - third:
        words.append("big")
    if shade.mean() < -12:
        words.append("dark")
    elif shade.mean() > 12:
        words.append("light")
    return words + [COLOUR_WORDS[cls]]


def make_caption(classes: list, attributes: list, bg: str, rng: np.random.Generator) -> str:
    """A captioner-like sentence naming every object's class (maybe by a synonym), with counts and some of each
    object's attribute words."""
    groups: dict = {}
    for cls, words in zip(classes, attributes):
        groups.setdefault(cls, []).append(words)
    phrases = []
    for cls, described in groups.items():
        n = len(described)
        if n == 1:
            words = [w for w in described[0] if rng.random() < 0.5]  # a captioner mentions some attributes
            phrase = " ".join(words + [_noun(cls, 1, rng)])
            article = "an" if phrase[0] in "aeiou" else "a"
            phrases.append(f"{article} {phrase}")
        else:
            shared = [w for w in described[0] if all(w in d for d in described[1:]) and rng.random() < 0.5]
            phrases.append(" ".join([NUMBER_WORDS[n]] + shared + [_noun(cls, n, rng)]))
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


def caption_words() -> list:
    """Every word the world's captions and prompts use (the toy tokenizer gives each one whole-word token)."""
    words = set(CLASSES) | set(PLURALS.values()) | set(SYNONYMS) | set(SYNONYM_PLURALS.values())
    words |= set(COLOUR_WORDS.values()) | set(SIZE_WORDS) | set(SHADE_WORDS)
    words |= set(BACKGROUND_WORDS.values()) | set(NUMBER_WORDS.values())
    words |= set("a an and of on in with there is this image scene shows picture photo lying background wall "
                 "floor front pattern".split())
    words |= {",", ";", "."}
    return sorted(words)


# ---------------------------------------------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------------------------------------------

def _scene_rng(split: str, index: int) -> np.random.Generator:
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_IDS)}")
    if index < 0:
        raise ValueError(f"scene index must be ≥ 0, got {index}")
    return np.random.default_rng([SPLIT_IDS[split], index, 20261202])


def _random_pose(rng: np.random.Generator, cfg: WorldConfig) -> Pose:
    r = rng.uniform(cfg.min_extent, cfg.max_extent)
    cx, cy = rng.uniform(r * 0.6, cfg.size - r * 0.6, size=2)
    sx, sy = np.exp(rng.uniform(-cfg.max_aspect, cfg.max_aspect, size=2))
    angle = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    return Pose(float(cx), float(cy), float(r), float(sx), float(sy), angle, bool(rng.random() < 0.5))


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
    bg_kind = cfg.backgrounds[rng.integers(len(cfg.backgrounds))]
    image = background(bg_kind, rng, size)
    owner = np.zeros((size, size), np.int32)  # which object is seen at each pixel, 0 = none
    which = np.zeros((size, size), np.uint8)  # which of its parts, 1 or 2
    placed: list = []  # (pose, first, second) of placed objects, full (unoccluded) part masks
    for k in range(n):
        for _attempt in range(50):
            pose = _random_pose(rng, cfg)
            first, second = part_masks(classes[k], pose, size)
            m = first | second
            if m.sum() < 60 or (m[:, 0].any() + m[:, -1].any() + m[0].any() + m[-1].any()) > 1:
                continue  # keep most of the object inside the image
            trial = np.where(m, k + 1, owner)
            ok = all((trial == j + 1).sum() >= cfg.min_visible * (a | b).sum()
                     and ((trial == j + 1) & a).sum() >= cfg.min_part_visible * a.sum()
                     and ((trial == j + 1) & b).sum() >= cfg.min_part_visible * b.sum()
                     for j, (_, a, b) in enumerate(placed + [(pose, first, second)]))
            if ok:
                owner = trial
                which = np.where(first, 1, np.where(second, 2, which)).astype(np.uint8)
                placed.append((pose, first, second))
                break
        else:
            break  # no room for another object: keep the scene with fewer
    n = len(placed)
    classes = classes[:n]
    shades, attributes = [], []
    for k, (pose, first, second) in enumerate(placed):
        shade = rng.normal(0.0, cfg.shade_std, size=3).astype(np.float32)
        visible = owner == k + 1
        paint_object(image, classes[k], pose, shade, [visible & first, visible & second])
        shades.append(tuple(float(c) for c in shade))
        attributes.append(describe(classes[k], pose.r, shade, cfg))
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    instance = owner.astype(np.uint8)
    part = np.where(instance > 0, which, 0).astype(np.uint8)
    semantic = np.zeros_like(instance)
    boxes = np.zeros((n, 4), np.float32)
    for k in range(n):
        m = instance == k + 1
        semantic[m] = CLASSES.index(classes[k]) + 1
        ys, xs = np.nonzero(m)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    caption = make_caption(classes, attributes, bg_kind, rng)
    return Scene(image=image, instance=instance, semantic=semantic, part=part, classes=classes,
                 attributes=attributes, shades=shades, boxes=boxes, background=bg_kind, caption=caption)


def class_names_prompt(classes: list) -> str:
    """The GLASS† labels of a scene: its distinct class names, in a fixed order (e.g. "tree car")."""
    return " ".join(c for c in CLASSES if c in classes)


def repeats_a_class(classes: list) -> bool:
    """True if a scene shows two or more instances of one class (where class-level masks merge instances)."""
    return len(set(classes)) < len(classes)


# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------

MAX_OBJECTS = 5  # padding length of per-object fields (the shift split has up to 5)


class ToyScenes(Dataset):
    """Scenes of one split as dicts of tensors.

    Keys: image (3, H, W) float in [0, 1]; instance, semantic, part (H, W) long; classes (MAX_OBJECTS,) long class
    index or −1; boxes (MAX_OBJECTS, 4) float; num_objects () long; repeated () bool (a class appears twice or
    more); caption, labels (str); index () long.
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
            "part": torch.from_numpy(s.part).long(),  # (H, W)
            "classes": classes,
            "boxes": boxes,
            "num_objects": torch.tensor(n),
            "repeated": torch.tensor(repeats_a_class(s.classes)),
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
