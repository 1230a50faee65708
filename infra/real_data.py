"""Real evaluation data for object discovery (GLASS §5, Tab. 2–4): COCO 2017 and PASCAL VOC 2012, scored under a
named protocol.

    scenes = CocoScenes("annotations/instances_val2017.json", "val2017/")            # protocol "glass"
    scenes = VocScenes("VOCdevkit/VOC2012", split="val", protocol="oclf")
    report = score_real(predict, scenes)                                               # metrics per image, averaged

Two protocols, both exact (docs/metrics.md says which paper numbers use which):

    glass  the GLASS authors' released evaluation (repository visinf/glass, src/eval/, read for its facts and written
           here anew). Masks: the shorter side resized to 256 with OpenCV's nearest-neighbour indices, the other side
           rounded, then the centred 256² square cut. Instances painted densely in annotation order (a later one
           over an earlier one; overlaps are therefore kept, not ignored); crowds and `ignore` dropped; background
           IS a GT segment; FG-ARI over foreground pixels; images with no object are scored (FG-ARI 1 by the
           zero-denominator rule, mIoU / mBO from the background segment); per-image means.
    oclf   the DINOSAUR / SPOT convention (the object-centric-learning framework, ocl/preprocessing.py, read for its
           facts): resize-then-crop to 320² masks with torch's nearest-exact and the long side truncated (its
           ResizeNearestExact on torchvision's sizes); pixels covered by two or more instances ignored (255) in the
           instance mask and given the higher class id in the semantic mask (its
           AddSegmentationMaskFromInstanceMask); background NOT a segment; images with no object left out of
           mIoU / mBO and counted apart; per-image means.

Under both, the model's own input is prepared the same way: the shorter side resized to the encoder's input size
(448 for DINOv2 ViT-B/14) bilinearly without antialiasing (OpenCV's INTER_LINEAR, rounded to 8 bits as OpenCV
returns it), then the centred square. The authors have no VOC loader; under `glass` VOC follows the same rules, its
255 pixels (object borders, "difficult") ignored.

Bad data is named, counted and never fatal: an annotation is dropped only when pycocotools cannot decode it or it
decodes to no pixel; a polygon with a stray part of fewer than three points is kept (pycocotools draws the valid
parts, as the authors' loader does) and named as a warning; an image file that is missing or unreadable is skipped.

Shape legend: H = W = the protocol's mask side, S = encoder input side. Checked by tests/test_real_data.py against
OpenCV's resize, pycocotools and hand-computed cases on tiny datasets the tests write.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255


@dataclass(frozen=True)
class Protocol:
    """How ground truth is prepared and scored."""
    name: str
    mask_size: int  # side of the scored masks
    background_segment: bool  # background is a GT segment in mIoU / mBO
    ignore_overlaps: bool  # pixels of two or more instances count nowhere (else: the later annotation's)
    score_empty: bool  # images without any object are scored (else: counted and left out)
    # how masks shrink: "opencv" (INTER_NEAREST, the long side rounded: the authors') or "nearest-exact" (torch's
    # half-pixel nearest, the long side truncated: the framework's ResizeNearestExact on torchvision's sizes)
    mask_resize: str = "opencv"
    # a semantic pixel of two instances: "ignore" (255) or "higher" (the higher class id: the framework's
    # AddSegmentationMaskFromInstanceMask); only where overlaps are ignored in the instance mask
    semantic_overlap: str = "ignore"


PROTOCOLS = {
    "glass": Protocol("glass", 256, background_segment=True, ignore_overlaps=False, score_empty=True),
    "oclf": Protocol("oclf", 320, background_segment=False, ignore_overlaps=True, score_empty=False,
                     mask_resize="nearest-exact", semantic_overlap="higher"),
}


def get_protocol(protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


@dataclass
class Problems:
    """What was dropped or skipped and why: name → reason, per kind."""
    bad_annotations: dict = field(default_factory=dict)  # "image file / annotation id" → why it was dropped
    warnings: dict = field(default_factory=dict)  # "image file / annotation id" → what is odd (kept)
    bad_images: dict = field(default_factory=dict)  # image file → why (missing, unreadable)

    def counts(self) -> dict:
        return {"bad_annotations": len(self.bad_annotations), "warnings": len(self.warnings),
                "bad_images": len(self.bad_images)}


# ---------------------------------------------------------------------------------------------------------------
# resize the shorter side, then cut the centred square (the authors' order)
# ---------------------------------------------------------------------------------------------------------------

def resized_shape(h: int, w: int, size: int, truncate: bool = False) -> tuple[int, int]:
    """(h', w') with the shorter side at `size` and the other side rounded (Python's round, as the authors') or
    truncated (`truncate`: int(size · long / short), as torchvision's resize)."""
    if truncate:
        return (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    factor = max(size / h, size / w)
    return int(round(h * factor)), int(round(w * factor))


def nearest_indices(src: int, dst: int) -> np.ndarray:
    """Source index of each of dst output pixels under OpenCV's INTER_NEAREST: floor(x · (1 / (dst / src))) in
    double precision, clipped to src − 1 (no half-pixel offset, unlike torch's 'nearest-exact')."""
    step = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * step).astype(np.int64), src - 1)


def nearest_exact_indices(src: int, dst: int) -> np.ndarray:
    """Source index of each of dst output pixels under torch's 'nearest-exact': floor((x + 0.5) · src / dst) in
    single precision, clipped to src − 1 (pixel centres, unlike OpenCV's nearest)."""
    scale = np.float32(src) / np.float32(dst)
    return np.minimum(np.floor((np.arange(dst, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.int64), src - 1)


def centre_crop(a, size: int):
    """The centred size×size square of an array whose last two axes are (h, w), one of them equal to size."""
    h, w = a.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return a[..., top:top + size, left:left + size]


def prepare_mask(mask: np.ndarray, size: int, resize: str = "opencv") -> torch.Tensor:
    """A label map (H, W) → (size, size) long: shorter side to size by OpenCV's nearest (the long side rounded) or
    by torch's nearest-exact (`resize="nearest-exact"`, the long side truncated), then the centred square."""
    if resize not in ("opencv", "nearest-exact"):
        raise ValueError(f"mask resize must be 'opencv' or 'nearest-exact', got {resize!r}")
    exact = resize == "nearest-exact"
    h2, w2 = resized_shape(*mask.shape, size, truncate=exact)
    index = nearest_exact_indices if exact else nearest_indices
    resized = mask[np.ix_(index(mask.shape[0], h2), index(mask.shape[1], w2))]
    return torch.from_numpy(np.ascontiguousarray(centre_crop(resized, size)).astype(np.int64))


def prepare_image(image: np.ndarray, size: int) -> torch.Tensor:
    """An image (H, W, 3) uint8 → (3, size, size) float in [0, 1]: shorter side to size bilinearly (half-pixel
    centres, no antialiasing, as OpenCV's INTER_LINEAR), rounded to 8 bits, then the centred square."""
    h2, w2 = resized_shape(*image.shape[:2], size)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()  # (1, 3, H, W)
    x = F.interpolate(x, size=(h2, w2), mode="bilinear", align_corners=False, antialias=False)  # (1, 3, h', w')
    x = x.round().clamp(0, 255)[0] / 255.0
    return centre_crop(x, size).float().contiguous()


def prepare(image: np.ndarray, instance: np.ndarray, semantic: np.ndarray, size: int, encoder_size: int,
            mask_resize: str = "opencv") -> dict:
    """image (H, W, 3) uint8, masks (H, W) ints → image (3, S, S) in [0, 1], instance and semantic (size, size)."""
    return {"image": prepare_image(image, encoder_size), "instance": prepare_mask(instance, size, mask_resize),
            "semantic": prepare_mask(semantic, size, mask_resize)}


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8; raises OSError (missing) or PIL's errors (unreadable)."""
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


# ---------------------------------------------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------------------------------------------

def stray_parts(seg) -> list:
    """Indices of the polygon parts of a COCO segmentation with fewer than three (x, y) points (pycocotools draws
    nothing for them); [] for RLE or clean polygons."""
    if not isinstance(seg, list):
        return []
    return [j for j, poly in enumerate(seg) if not isinstance(poly, list) or len(poly) < 6]


def ann_to_mask(coco, ann) -> np.ndarray:
    """pycocotools' annToMask (H, W) uint8, without the DeprecationWarning its RLE decoder raises under numpy 2
    (an `__array__` without a `copy` argument: harmless, and nothing a caller can fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning, module="pycocotools")
        return coco.annToMask(ann)


class CocoScenes(torch.utils.data.Dataset):
    """A COCO-format split: items {"image", "instance", "semantic", "file"} or None for an unreadable image (the
    reason goes to `problems`). Annotations are decoded with pycocotools when opened; images when read."""

    def __init__(self, annotations, images, protocol="glass", encoder_size: int = 448, limit: int | None = None,
                 size: int | None = None):
        from pycocotools.coco import COCO
        self.protocol = get_protocol(protocol)
        self.size = size or self.protocol.mask_size
        self.images_dir, self.encoder_size = Path(images), encoder_size
        if not Path(annotations).is_file():
            raise FileNotFoundError(f"COCO annotations {annotations} do not exist")
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"image folder {images} does not exist")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its loading times
            self.coco = COCO(str(annotations))
        cats = sorted(self.coco.getCatIds())
        self.category_index = {c: i + 1 for i, c in enumerate(cats)}  # semantic id = index + 1, 0 = background
        self.classes = [self.coco.cats[c]["name"] for c in cats]
        self.problems = Problems()
        self.image_ids = sorted(self.coco.getImgIds())[:limit]
        self.objects = {}  # image id → its usable annotations, in annotation order
        for i in self.image_ids:
            name = self.coco.imgs[i]["file_name"]
            keep = []
            for ann in self.coco.imgToAnns.get(i, []):
                if ann.get("iscrowd", 0) or ann.get("ignore", False):
                    continue  # crowds and `ignore` are not objects (the authors' loader drops them)
                key = f"{name} / annotation {ann.get('id')}"
                if ann.get("category_id") not in self.category_index:
                    self.problems.bad_annotations[key] = f"unknown category {ann.get('category_id')}"
                    continue
                try:
                    decoded = ann_to_mask(self.coco, ann)  # (h, w) at the size the RLE states, not the image's
                except Exception as e:  # what pycocotools cannot decode is dropped, by name
                    self.problems.bad_annotations[key] = f"pycocotools cannot decode it ({type(e).__name__}: {e})"
                    continue
                image_hw = (self.coco.imgs[i].get("height"), self.coco.imgs[i].get("width"))
                if decoded.shape != image_hw:
                    self.problems.bad_annotations[key] = f"its mask is {decoded.shape[1]}×{decoded.shape[0]}, the " \
                                                         f"image {image_hw[1]}×{image_hw[0]}"
                    continue
                pixels = int(decoded.sum())
                if pixels == 0:
                    self.problems.bad_annotations[key] = "empty segmentation (decodes to no pixel)"
                    continue
                stray = stray_parts(ann.get("segmentation"))
                if stray:
                    self.problems.warnings[key] = f"polygon parts {stray} have fewer than 3 points (kept: " \
                                                  f"the other parts make the mask)"
                keep.append(ann)
            self.objects[i] = keep

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, k: int) -> dict | None:
        info = self.coco.imgs[self.image_ids[k]]
        name = info["file_name"]
        try:
            image = read_rgb(self.images_dir / name)
        except Exception as e:  # missing or undecodable: named, counted, skipped
            self.problems.bad_images[name] = f"{type(e).__name__}: {e}"
            return None
        h, w = image.shape[:2]
        if (h, w) != (info["height"], info["width"]):
            self.problems.bad_images[name] = f"file is {w}×{h}, annotations say {info['width']}×{info['height']}"
            return None
        objects = self.objects[self.image_ids[k]]
        if len(objects) >= IGNORE:
            raise ValueError(f"{name} has {len(objects)} objects; instance ids must stay below {IGNORE}")
        instance = np.zeros((h, w), np.int64)
        semantic = np.zeros((h, w), np.int64)
        cover = np.zeros((h, w), np.int64)  # objects on each pixel
        highest = np.zeros((h, w), np.int64)  # the highest class id on each pixel
        for j, ann in enumerate(objects):
            m = ann_to_mask(self.coco, ann) > 0
            instance[m] = j + 1  # dense painting: a later annotation paints over an earlier one
            semantic[m] = self.category_index[ann["category_id"]]
            highest[m] = np.maximum(highest[m], self.category_index[ann["category_id"]])
            cover += m
        if self.protocol.ignore_overlaps:  # oclf: overlapping instances count nowhere ...
            instance[cover > 1] = IGNORE
            # ... and in the semantic mask the higher class id wins (the framework's), or they count nowhere
            semantic[cover > 1] = highest[cover > 1] if self.protocol.semantic_overlap == "higher" else IGNORE
        return {**prepare(image, instance, semantic, self.size, self.encoder_size, self.protocol.mask_resize),
                "file": name}


# ---------------------------------------------------------------------------------------------------------------
# PASCAL VOC
# ---------------------------------------------------------------------------------------------------------------

class VocScenes(torch.utils.data.Dataset):
    """PASCAL VOC 2012 segmentation: ROOT/ImageSets/Segmentation/{split}.txt, JPEGImages/, SegmentationObject/,
    SegmentationClass/ (palette PNGs: the index is the id, 255 the ignored border). Items as CocoScenes'."""

    CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

    def __init__(self, root, split: str = "val", protocol="glass", encoder_size: int = 448, limit: int | None = None,
                 size: int | None = None):
        self.protocol = get_protocol(protocol)
        self.root, self.size, self.encoder_size = Path(root), size or self.protocol.mask_size, encoder_size
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing} does not exist: --voc takes the VOC2012 folder (with ImageSets/, "
                                    f"JPEGImages/, SegmentationObject/, SegmentationClass/)")
        self.names = [n.strip() for n in listing.read_text().splitlines() if n.strip()][:limit]
        self.classes = list(self.CLASSES)
        self.problems = Problems()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, k: int) -> dict | None:
        from PIL import Image
        name = self.names[k]
        try:
            image = read_rgb(self.root / "JPEGImages" / f"{name}.jpg")
            masks = []
            for sub in ("SegmentationObject", "SegmentationClass"):
                with Image.open(self.root / sub / f"{name}.png") as im:  # palette PNG: the index is the id
                    masks.append(np.asarray(im).astype(np.int64))
        except Exception as e:
            self.problems.bad_images[name] = f"{type(e).__name__}: {e}"
            return None
        instance, semantic = masks
        if instance.shape != image.shape[:2] or semantic.shape != image.shape[:2]:
            self.problems.bad_images[name] = f"masks {instance.shape} / {semantic.shape} ≠ image {image.shape[:2]}"
            return None
        return {**prepare(image, instance, semantic, self.size, self.encoder_size, self.protocol.mask_resize),
                "file": name}


# ---------------------------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------------------------

def score_real(predict: Callable, scenes, batch_size: int = 16, progress: bool = True) -> dict:
    """Object discovery on a real split under its scenes' protocol: `predict(images (B, 3, S, S)) → label maps (B,
    size, size)`, scored per image by metrics.score_masks and averaged. Returns the metrics, the protocol, the
    counts (images, scored, left out and why) and the names behind them. Calling it twice gives the same report."""
    import metrics
    from tqdm import tqdm
    protocol = scenes.protocol
    values: dict = {}
    batch: list = []
    no_objects: list = []  # this call's own list: scoring again does not add to it

    def flush():
        images = torch.stack([it["image"] for it in batch])
        pred = predict(images).cpu()
        inst = torch.stack([it["instance"] for it in batch])
        sem = torch.stack([it["semantic"] for it in batch])
        for key, v in metrics.score_masks(pred, inst, sem, protocol.background_segment).items():
            values.setdefault(key, []).append(v)
        batch.clear()

    for k in tqdm(range(len(scenes)), desc=f"scoring ({protocol.name})", unit="img", disable=not progress,
                  mininterval=10):
        item = scenes[k]
        if item is None:
            continue
        objects = item["instance"][(item["instance"] > 0) & (item["instance"] != IGNORE)]
        if objects.numel() == 0:
            no_objects.append(item["file"])
            if not protocol.score_empty:
                continue
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    out = {k: metrics.summarize(torch.cat(v)).mean for k, v in values.items()}
    out["protocol"] = protocol.name
    out["images"] = len(scenes)
    out["images_scored"] = int(torch.cat(values["fg_ari"]).numel()) if values else 0
    out.update(scenes.problems.counts(), no_objects=len(no_objects),
               no_objects_scored=protocol.score_empty, background_segment=protocol.background_segment,
               ignore_overlaps=protocol.ignore_overlaps, mask_size=scenes.size)
    out["problems"] = {"bad_annotations": dict(scenes.problems.bad_annotations),
                       "warnings": dict(scenes.problems.warnings), "bad_images": dict(scenes.problems.bad_images),
                       "no_objects": no_objects}
    return out
