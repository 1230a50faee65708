"""The toy world: the built-in default data of this project (no paper section; docs/design.md §7).

GLASS stands on web-scale pretrained models. So that every part of the method is real and measurable on a laptop,
this project ships a small world of 64×64 scenes with exact ground truth, and trains its own small diffusion model
and encoder on it (toy/pretrain.py).

The world poses the problems GLASS's guidance exists for (docs/lab_notes/binding.md §12 calibrated it; the earlier
worlds are in docs/history/):
- **a class is visible in every patch**, as a dog is a dog in any patch of a photo: each part of a class has a
  palette and texture of its own class's family, so a 4×4 patch tells the class;
- **objects are made of three or four parts that vary on their own**, as the parts of a photographed object do:
  each part draws its own palette (of two per part), its own shade, its own size and a small offset within the
  object, so one part says little about its siblings and reconstructing features can split parts (DINOSAUR's
  part-whole problem, paper Tab. 3);
- **few, large objects on a flat background** (1–3 objects): with the paper's K = 7 slots there are spare slots,
  and a background that one slot codes cheaply leaves them nowhere to go but objects;
- **several instances of one class** in about half of the multi-object scenes: class-level masks merge them (the
  paper's semantic drift), and instances differ in size, aspect, rotation, mirroring and look.

A scene: one muted flat colour and 1–3 objects of 6 classes, half-extent 14–21 px, rotation ±20°, placed with partial
occlusion (every object keeps half its area visible and every part a third of its own). Ground truth: instance mask
(0 = background, 1..n in paint order), semantic mask (0 = background, class index + 1), part mask (0 = background,
j + 1 = part j of the object seen there), class names, boxes (x0, y0, x1, y1) of the visible part.

    class    parts (each with two palettes of its class's family)
    house    wall, roof, door, window
    tree     crown, trunk, mound
    car      body, cabin, wheels
    flower   centre, petals, stem with leaves
    fish     head, body, tail
    robot    head, torso, tread

The caption generator plays the captioner's role: varied phrasing, counts, synonyms ("cottage", "automobile",
"android"), attributes (size, shade, colour) and words that are not classes ("floor", "picture").

Splits (scene i of a split is always the same image, seeded by (split, i)):
    train  an endless stream by index
    val    512 fixed scenes from the same distribution
    shift  a zero-shot split: 3 objects (smaller, half-extent 11–17 px), shades further from the palette (std 30
           against 18), and a background kind (a two-colour gradient) never seen

Shape legend: H = W = 64 pixels, n objects. Checked by tests/test_toy_world.py; `python -m toy.report world`
measures the properties above.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from toy.objects import (CLASSES, MAX_PARTS, PALETTES, PARTS, SIZE, Pose, background,  # noqa: F401
                         object_frame, paint_object, part_masks)

PLURALS = {"house": "houses", "tree": "trees", "car": "cars", "flower": "flowers", "fish": "fish", "robot": "robots"}
# synonyms the captioner may use; each maps to its class name
SYNONYMS = {"cottage": "house", "home": "house", "oak": "tree", "automobile": "car", "blossom": "flower",
            "daisy": "flower", "goldfish": "fish", "android": "robot"}
SYNONYM_PLURALS = {"cottage": "cottages", "home": "homes", "oak": "oaks", "automobile": "automobiles",
                   "blossom": "blossoms", "daisy": "daisies", "goldfish": "goldfish", "android": "androids"}
# the part whose look the caption's colour word names, and the word for each of its two palettes
MAIN_PART = {"house": 0, "tree": 0, "car": 0, "flower": 1, "fish": 1, "robot": 1}
COLOUR_WORDS = {"house": ("beige", "cream"), "tree": ("green", "olive"), "car": ("blue", "red"),
                "flower": ("pink", "white"), "fish": ("orange", "turquoise"), "robot": ("grey", "teal")}
SIZE_WORDS = ("small", "big")
SHADE_WORDS = ("dark", "light")
BACKGROUNDS_TRAIN = ("flat",)
BACKGROUNDS_SHIFT = ("gradient",)
BACKGROUND_WORDS = {"flat": "plain", "stripes": "striped", "checker": "checkered", "blobs": "spotted",
                    "gradient": "shaded", "rings": "ringed"}
NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}
SPLIT_IDS = {"train": 0, "val": 1, "shift": 2}


@dataclass
class WorldConfig:
    """What scenes look like. The defaults are the world the shipped models were trained on."""
    size: int = SIZE
    min_objects: int = 1
    max_objects: int = 3
    object_weights: tuple = (0.3, 0.4, 0.3)  # P(1), P(2), P(3) objects
    min_extent: float = 14.0  # half-extent in pixels: objects span 7–10 latent cells of the 16×16 latent grid
    max_extent: float = 21.0
    max_aspect: float = 0.15  # each axis scaled by exp(U(−a, a))
    max_rotation: float = 20.0  # degrees
    min_visible: float = 0.5  # every object keeps at least this share of its area visible ...
    min_part_visible: float = 0.34  # ... and every part this share of its own
    repeat_prob: float = 0.3  # chance that a scene of ≥ 2 distinct classes is made to repeat one
    backgrounds: tuple = BACKGROUNDS_TRAIN
    shade_std: float = 18.0  # std of each part's shade offset (0–255 scale, per channel)
    articulation: float = 0.12  # each part moves by U(−a, a)² in object units (the object fills [−1, 1]²) ...
    part_scale: float = 0.15  # ... and is scaled about its anchor by exp(U(−s, s))


SPLITS = {
    "train": WorldConfig(),
    "val": WorldConfig(),
    "shift": WorldConfig(min_objects=3, max_objects=3, object_weights=(1.0,), min_extent=11.0, max_extent=17.0,
                         backgrounds=BACKGROUNDS_SHIFT, shade_std=30.0),
}
VAL_SIZE = 512
SHIFT_SIZE = 256
SEED = 20261206  # the world's own seed, mixed into every scene's random stream


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    instance: np.ndarray  # (H, W) uint8, 0 = background, 1..n
    semantic: np.ndarray  # (H, W) uint8, 0 = background, class index + 1
    part: np.ndarray  # (H, W) uint8, 0 = background, j + 1 = part j of the instance seen there
    classes: list  # n class names, in instance order
    attributes: list  # n lists of caption words (size, shade, colour) that describe each instance
    looks: list  # n lists, one (palette option, (r, g, b) shade offset) per part
    boxes: np.ndarray  # (n, 4) float32 (x0, y0, x1, y1) of the visible part, pixels, x1/y1 exclusive
    background: str
    caption: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def shades(self) -> list:
        """Every part's shade offset, n lists of (r, g, b)."""
        return [[shade for _, shade in parts] for parts in self.looks]


# ---------------------------------------------------------------------------------------------------------------
# captions
# ---------------------------------------------------------------------------------------------------------------

def _noun(cls: str, count: int, rng: np.random.Generator) -> str:
    synonyms = [w for w, c in SYNONYMS.items() if c == cls]
    word = cls if rng.random() < 0.6 else synonyms[rng.integers(len(synonyms))]
    if count == 1:
        return word
    return PLURALS.get(word) or SYNONYM_PLURALS[word]


def describe(cls: str, extent: float, looks: list, cfg: WorldConfig) -> list:
    """The attribute words that fit one instance: its size (from the half-extent), its shade (from the mean shade
    offset over its parts) and the colour of its main part's palette, in caption order."""
    shade = np.mean([s for _, s in looks], axis=0)
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
    return words + [COLOUR_WORDS[cls][looks[MAIN_PART[cls]][0]]]


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
    """Every word the world's captions and prompts use, and every part name (the toy tokenizer gives each one whole-word
    token)."""
    words = set(CLASSES) | set(PLURALS.values()) | set(SYNONYMS) | set(SYNONYM_PLURALS.values())
    words |= {p for parts in PARTS.values() for p in parts}
    words |= {w for pair in COLOUR_WORDS.values() for w in pair} | set(SIZE_WORDS) | set(SHADE_WORDS)
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
    return np.random.default_rng([SPLIT_IDS[split], index, SEED])


def _random_pose(rng: np.random.Generator, cfg: WorldConfig) -> Pose:
    r = rng.uniform(cfg.min_extent, cfg.max_extent)
    cx, cy = rng.uniform(r * 0.6, cfg.size - r * 0.6, size=2)
    sx, sy = np.exp(rng.uniform(-cfg.max_aspect, cfg.max_aspect, size=2))
    angle = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    return Pose(float(cx), float(cy), float(r), float(sx), float(sy), angle, bool(rng.random() < 0.5))


def _random_looks(kind: str, rng: np.random.Generator, cfg: WorldConfig) -> list:
    """One (palette option, (r, g, b) shade) per part: each part looks its own way."""
    return [(int(rng.integers(len(PALETTES[kind][j]))), rng.normal(0.0, cfg.shade_std, 3))
            for j in range(len(PARTS[kind]))]


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
    which = np.zeros((size, size), np.uint8)  # which of its parts, 1..4
    placed: list = []  # (pose, full part masks before occlusion by other objects, looks) of placed objects
    for k in range(n):
        m_parts = len(PARTS[classes[k]])
        for _attempt in range(50):
            pose = _random_pose(rng, cfg)
            shifts = [tuple(rng.uniform(-cfg.articulation, cfg.articulation, size=2)) for _ in range(m_parts)]
            scales = list(np.exp(rng.uniform(-cfg.part_scale, cfg.part_scale, size=m_parts)))
            masks = part_masks(classes[k], pose, shifts, scales, size)
            whole = np.any(masks, axis=0)
            if whole.sum() < 60 or (whole[:, 0].any() + whole[:, -1].any() + whole[0].any() + whole[-1].any()) > 1:
                continue  # keep most of the object inside the image
            trial = np.where(whole, k + 1, owner)
            ok = all((trial == i + 1).sum() >= cfg.min_visible * sum(pm.sum() for pm in ms)
                     and all(((trial == i + 1) & pm).sum() >= cfg.min_part_visible * pm.sum() for pm in ms)
                     for i, (_, ms, _) in enumerate(placed + [(pose, masks, None)]))
            if ok:
                owner = trial
                for j in range(m_parts):
                    which = np.where(masks[j], j + 1, which).astype(np.uint8)
                placed.append((pose, masks, _random_looks(classes[k], rng, cfg)))
                break
        else:
            break  # no room for another object: keep the scene with fewer
    n = len(placed)
    classes = classes[:n]
    attributes = []
    for k, (pose, masks, looks) in enumerate(placed):
        visible = owner == k + 1
        paint_object(image, classes[k], pose, looks, [visible & m for m in masks])
        attributes.append(describe(classes[k], pose.r, looks, cfg))
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
    looks = [[(opt, tuple(float(c) for c in shade)) for opt, shade in lk] for _, _, lk in placed]
    return Scene(image=image, instance=instance, semantic=semantic, part=part, classes=classes,
                 attributes=attributes, looks=looks, boxes=boxes, background=bg_kind, caption=caption)


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
