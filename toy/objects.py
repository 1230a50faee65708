"""The toy world's objects and backgrounds (no paper section; docs/design.md §7): six classes of three or four parts,
each part drawn in its object's own frame with a palette and texture of its class's hue family, and the muted
backgrounds behind them. toy/world.py places them into scenes, with ground truth and captions.

Shape legend: H = W = 64 pixels. Checked by tests/test_toy_world.py (parts never overlap and all show; pixels come
from the palette plus the part's shade).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASSES = ("house", "tree", "car", "flower", "fish", "robot")
PARTS = {"house": ("wall", "roof", "door", "window"), "tree": ("crown", "trunk", "mound"),
         "car": ("body", "cabin", "wheels"), "flower": ("centre", "petals", "stem"),
         "fish": ("head", "body", "tail"), "robot": ("head", "torso", "tread")}
MAX_PARTS = 4
# per part: palette options (first colour, second colour, texture), 0–255; the texture decides where the second
# colour goes. The options of a part stay within its class's hue family, so a patch still tells its class.
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
SIZE = 64


# ---------------------------------------------------------------------------------------------------------------
# objects: three or four parts each, drawn in the object's own frame
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


def _ellipse(U, V, cu, cv, ru, rv):
    return ((U - cu) / ru) ** 2 + ((V - cv) / rv) ** 2 <= 1


def _box(U, V, u0, u1, v0, v1):
    return (U >= u0) & (U <= u1) & (V >= v0) & (V <= v1)


# each part's anchor (u, v) in the object frame: a part is scaled about it
ANCHORS = {"house": ((0, 0.45), (0, -0.55), (0.35, 0.65), (-0.35, 0.3)), "tree": ((0, -0.35), (0, 0.45), (0, 0.85)),
           "car": ((0, 0.1), (0, -0.55), (0, 0.55)), "flower": ((0, -0.4), (0, -0.4), (0, 0.55)),
           "fish": ((-0.6, 0), (0, 0), (0.72, 0)), "robot": ((0, -0.72), (0, 0.0), (0, 0.75))}
# paint order (later parts over earlier ones): details over the large part they sit on
ORDER = {"house": (0, 1, 2, 3), "tree": (2, 1, 0), "car": (0, 1, 2), "flower": (2, 1, 0), "fish": (2, 1, 0),
         "robot": (2, 1, 0)}


def part_shape(kind: str, j: int, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Boolean (H, W): part j of a `kind` in its own frame, before occlusion by its siblings."""
    if kind == "house":
        return [_box(U, V, -0.8, 0.8, -0.1, 1.0),  # wall
                (V >= -1.0) & (V <= -0.1) & (np.abs(U) <= (V + 1.0) / 0.95),  # roof, apex at the top
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
                rho <= 0.35 + 0.3 * np.abs(np.cos(2.5 * theta)),  # five petals
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
    raise ValueError(f"unknown class {kind!r}; expected one of {CLASSES}")


def part_masks(kind: str, pose: Pose, shifts: list | None = None, scales: list | None = None,
               size: int = SIZE) -> list:
    """Boolean (H, W) masks of an object's parts; part j is moved by shifts[j] = (du, dv) and scaled by scales[j]
    about its anchor (both in object units; default: none). They never overlap: the part painted last (ORDER) owns
    its pixels."""
    if kind not in PARTS:
        raise ValueError(f"unknown class {kind!r}; expected one of {CLASSES}")
    m = len(PARTS[kind])
    shifts = [(0.0, 0.0)] * m if shifts is None else shifts
    scales = [1.0] * m if scales is None else scales
    U, V, _, _ = object_frame(pose, size)
    raw = []
    for j in range(m):
        (du, dv), s, (au, av) = shifts[j], scales[j], ANCHORS[kind][j]
        raw.append(part_shape(kind, j, (U - au - du) / s + au, (V - av - dv) / s + av))  # the part's own frame
    masks, covered = [None] * m, np.zeros((size, size), bool)
    for j in reversed(ORDER[kind]):
        masks[j] = raw[j] & ~covered
        covered |= raw[j]
    return masks


def texture(name: str, U: np.ndarray, V: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean (H, W): where a part shows its second colour, from the object frame (U, V normalised, u, v pixels)."""
    if name == "speckle":  # leaves
        return np.sin(u * 1.9) + np.sin(v * 2.3 + u * 0.7) > 1.0
    if name == "vstripes":  # bark, a door's planks, a tread
        return np.floor(u) % 3 == 0
    if name == "hstripes":
        return np.floor(v) % 3 == 0
    if name == "bricks":  # mortar rows every 4 px, joints every 6 px, shifted on alternate rows
        row = np.floor(v / 4)
        return (np.floor(v) % 4 == 0) | (np.floor(u + 3 * (row % 2)) % 6 == 0)
    if name == "tiles":  # diagonal lines
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
    if name == "window":  # the cabin's middle pillar
        return _box(U, V, -0.05, 0.05, -0.85, -0.3)
    if name == "hub":
        return ((np.abs(U) - 0.55) ** 2 + (V - 0.55) ** 2) <= 0.015
    if name == "eye":
        return _ellipse(U, V, -0.72, -0.12, 0.08, 0.08)
    if name == "eyes":
        return _ellipse(U, V, -0.15, -0.75, 0.08, 0.08) | _ellipse(U, V, 0.15, -0.75, 0.08, 0.08)
    if name == "panel":
        return _box(U, V, -0.3, 0.3, -0.2, 0.2) & ((np.floor(v) % 3) == 0)
    raise ValueError(f"unknown texture {name!r}")


def paint_object(image: np.ndarray, kind: str, pose: Pose, looks: list, where: list) -> None:
    """Paint an object's parts into image (H, W, 3) float, only at the pixels `where[j]` (H, W) of part j, each part
    with its own look (palette option, (r, g, b) shade)."""
    U, V, u, v = object_frame(pose, image.shape[0])
    for j, ((option, shade), mask) in enumerate(zip(looks, where)):
        first, second, tex = PALETTES[kind][j][option]
        second_here = texture(tex, U, V, u, v)
        colour = np.where(second_here[..., None], np.float32(second), np.float32(first)) + shade  # (H, W, 3)
        image[mask] = np.clip(colour[mask], 0, 255)


# ---------------------------------------------------------------------------------------------------------------
# backgrounds
# ---------------------------------------------------------------------------------------------------------------

def background(kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A muted background (H, W, 3) float in 0..255, kept less saturated than the objects: one flat colour (the
    world's own) or two colours in a pattern (the shift split's gradient; the earlier worlds' kinds)."""
    xs, ys = _grid(size)
    base = rng.uniform(70, 160, size=3)
    if kind == "flat":
        return np.broadcast_to(0.5 * base + 0.5 * base.mean(), (size, size, 3)).astype(np.float64).copy()
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
