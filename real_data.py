"""Real evaluation data for object discovery (GLASS §5, Tab. 2–4): COCO 2017 and PASCAL VOC 2012.

    scenes = CocoScenes("annotations/instances_val2017.json", "val2017/")     # pycocotools
    scenes = VocScenes("VOCdevkit/VOC2012", split="val")                        # PNG masks
    report = score_real(predict, scenes)                                        # metrics.score_masks per image

The protocol is the one of the GLASS authors' released evaluation (repository visinf/glass, src/eval/), read for
its facts and written here anew:
- every image of the split is scored (val images are not filtered), except images without any object, which are
  counted and reported apart (no GT segment: mIoU and mBO are undefined);
- the image is cropped to its centre square and resized: to `size` (256) for the masks, with nearest-neighbour
  sampling, and to the encoder's input (448 for DINOv2 ViT-B/14) for the model, with antialiasing;
- COCO: crowd annotations (`iscrowd`) and ones marked `ignore` are not objects (their pixels stay background, as
  in the authors' loader); instance ids follow the annotation order, a later annotation painting over an earlier
  one; pixels covered by two or more objects are ignored (255) in both masks, as the OCL framework's
  `ignore_overlaps` does; the semantic mask holds category index + 1 in the sorted order of category ids;
- VOC: SegmentationObject gives the instances, SegmentationClass the classes; its 255 (object borders and
  "difficult" regions) is ignored;
- background is not a GT segment unless `background_segment` (the authors' script counts it: say which).

Bad data is named, counted and skipped, never fatal: an annotation with a malformed or empty segmentation, an image
file that is missing or unreadable. `score_real` returns the counts beside the metrics.

Shape legend: H = W = `size` label maps, S = encoder input side. Checked by tests/test_real_data.py on a tiny
COCO-format dataset and a tiny VOC-style folder that the tests write.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255


@dataclass
class Problems:
    """What was skipped and why: name → reason, per kind."""
    bad_annotations: dict = field(default_factory=dict)  # "image file / annotation id" → why
    bad_images: dict = field(default_factory=dict)  # image file → why (missing, unreadable)
    no_objects: list = field(default_factory=list)  # image files with no object left: reported apart

    def counts(self) -> dict:
        return {"bad_annotations": len(self.bad_annotations), "bad_images": len(self.bad_images),
                "no_objects": len(self.no_objects)}


# ---------------------------------------------------------------------------------------------------------------
# the paper's resize and crop
# ---------------------------------------------------------------------------------------------------------------

def centre_square(h: int, w: int) -> tuple[int, int, int]:
    """(top, left, side) of the centred square crop of an h×w image."""
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side


def prepare(image: np.ndarray, instance: np.ndarray, semantic: np.ndarray, size: int, encoder_size: int) -> dict:
    """Centre-square crop, then the image to encoder_size (bilinear, antialiased) and the masks to size (nearest).
    image (H, W, 3) uint8, masks (H, W) ints → image (3, S, S) float in [0, 1], instance and semantic (size, size)."""
    top, left, side = centre_square(*instance.shape)
    crop = lambda a: a[top:top + side, left:left + side]
    x = torch.from_numpy(np.ascontiguousarray(crop(image))).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, s, s)
    x = F.interpolate(x, size=(encoder_size, encoder_size), mode="bilinear", align_corners=False, antialias=True)
    masks = torch.from_numpy(np.stack([crop(instance), crop(semantic)]).astype(np.int64))[None].float()  # (1, 2, s, s)
    masks = F.interpolate(masks, size=(size, size), mode="nearest")[0].long()  # (2, size, size)
    return {"image": x[0].clamp(0, 1), "instance": masks[0], "semantic": masks[1]}


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8; raises OSError (missing) or PIL's errors (unreadable)."""
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).copy()


# ---------------------------------------------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------------------------------------------

def _segmentation_problem(seg, height: int, width: int) -> str | None:
    """Why a COCO segmentation cannot be decoded (None if it can): polygons need ≥ 3 points, RLE needs counts and
    the image's size."""
    if isinstance(seg, list):
        if not seg:
            return "empty polygon list"
        for poly in seg:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or \
                    not all(isinstance(v, (int, float)) for v in poly):
                return "malformed polygon (needs ≥ 3 (x, y) points)"
        return None
    if isinstance(seg, dict):
        if "counts" not in seg or "size" not in seg:
            return "malformed RLE (needs counts and size)"
        if list(seg["size"]) != [height, width]:
            return f"RLE size {seg['size']} is not the image's [{height}, {width}]"
        return None
    return f"segmentation of type {type(seg).__name__}"


class CocoScenes(torch.utils.data.Dataset):
    """A COCO-format split: items {"image", "instance", "semantic", "file"} or None for an unreadable image (the
    reason goes to `problems`). Annotations are checked when opened; images when read."""

    def __init__(self, annotations, images, size: int = 256, encoder_size: int = 448, limit: int | None = None):
        from pycocotools.coco import COCO
        self.images_dir, self.size, self.encoder_size = Path(images), size, encoder_size
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
        self.objects = {}  # image id → its usable annotations
        for i in self.image_ids:
            info = self.coco.imgs[i]
            keep = []
            for ann in self.coco.imgToAnns.get(i, []):
                if ann.get("iscrowd", 0) or ann.get("ignore", False):
                    continue  # crowds are not objects (the authors' loader drops them)
                why = _segmentation_problem(ann.get("segmentation"), info["height"], info["width"])
                if why is None and ann.get("category_id") not in self.category_index:
                    why = f"unknown category {ann.get('category_id')}"
                if why is None and not self.coco.annToMask(ann).any():
                    why = "empty segmentation (no pixel)"
                if why is not None:
                    self.problems.bad_annotations[f"{info['file_name']} / annotation {ann.get('id')}"] = why
                    continue
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
        instance = np.zeros((h, w), np.int64)
        semantic = np.zeros((h, w), np.int64)
        cover = np.zeros((h, w), np.int64)  # objects on each pixel
        for j, ann in enumerate(self.objects[self.image_ids[k]]):
            m = self.coco.annToMask(ann) > 0
            instance[m] = j + 1  # a later annotation paints over an earlier one
            semantic[m] = self.category_index[ann["category_id"]]
            cover += m
        instance[cover > 1] = IGNORE  # overlaps count nowhere
        semantic[cover > 1] = IGNORE
        return {**prepare(image, instance, semantic, self.size, self.encoder_size), "file": name}


# ---------------------------------------------------------------------------------------------------------------
# PASCAL VOC
# ---------------------------------------------------------------------------------------------------------------

class VocScenes(torch.utils.data.Dataset):
    """PASCAL VOC 2012 segmentation: ROOT/ImageSets/Segmentation/{split}.txt, JPEGImages/, SegmentationObject/,
    SegmentationClass/ (palette PNGs: the index is the id, 255 the ignored border). Items as CocoScenes'."""

    CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

    def __init__(self, root, split: str = "val", size: int = 256, encoder_size: int = 448, limit: int | None = None):
        self.root, self.size, self.encoder_size = Path(root), size, encoder_size
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
        return {**prepare(image, instance, semantic, self.size, self.encoder_size), "file": name}


# ---------------------------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------------------------

def score_real(predict: Callable, scenes, batch_size: int = 16, background_segment: bool = False,
               progress: bool = True) -> dict:
    """Object discovery on a real split: `predict(images (B, 3, S, S)) → label maps (B, size, size)`, scored per
    image by metrics.score_masks and averaged (NaN-free images). Images without objects after the crop are
    reported apart; unreadable images and bad annotations are counted and named in the result."""
    import metrics
    from tqdm import tqdm
    values: dict = {}
    batch: list = []

    def flush():
        images = torch.stack([it["image"] for it in batch])
        pred = predict(images).cpu()
        inst = torch.stack([it["instance"] for it in batch])
        sem = torch.stack([it["semantic"] for it in batch])
        for key, v in metrics.score_masks(pred, inst, sem, background_segment).items():
            values.setdefault(key, []).append(v)
        batch.clear()

    for k in tqdm(range(len(scenes)), desc="scoring", unit="img", disable=not progress, mininterval=10):
        item = scenes[k]
        if item is None:
            continue
        objects = item["instance"][(item["instance"] > 0) & (item["instance"] != IGNORE)]
        if objects.numel() == 0:
            scenes.problems.no_objects.append(item["file"])
            continue
        batch.append(item)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    out = {k: metrics.summarize(torch.cat(v)).mean for k, v in values.items()}
    out["images_scored"] = int(torch.cat(values["miou_i"]).numel()) if values else 0
    out.update(scenes.problems.counts(), background_segment=background_segment)
    out["problems"] = {"bad_annotations": scenes.problems.bad_annotations, "bad_images": scenes.problems.bad_images,
                       "no_objects": scenes.problems.no_objects}
    return out

