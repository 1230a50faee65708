"""Tests of infra/real_data.py on a tiny COCO-format dataset and a tiny VOC-style folder written here: masks by hand,
the crop, overlaps and crowds, bad data named and counted, and `evaluate.py discovery --coco / --voc` end to end."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from infra import checkpoint
from infra import real_data

H, W = 40, 60  # a wide image: the centre square is columns 10..49


def rle(m: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"counts": r["counts"].decode("ascii"), "size": list(r["size"])}


def box(y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture()
def tiny_coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(images / name)
    (images / "d.png").write_bytes(b"not a png")  # unreadable
    first, second, crowd = box(5, 20, 12, 30), box(15, 35, 25, 45), box(30, 38, 40, 48)
    polygon = [20.0, 2.0, 28.0, 2.0, 28.0, 4.0, 20.0, 4.0]  # a third object, as a polygon
    stray = [44.0, 20.0, 52.0, 20.0, 52.0, 30.0, 44.0, 30.0]  # a fourth, whose second part has only 2 points
    anns = [
        {"id": 1, "image_id": 1, "category_id": 18, "segmentation": rle(first), "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "segmentation": rle(second), "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 3, "segmentation": rle(crowd), "iscrowd": 1},
        {"id": 4, "image_id": 1, "category_id": 18, "segmentation": [[1.0, 1.0, 5.0, 5.0]], "iscrowd": 0},  # 2 points
        {"id": 5, "image_id": 1, "category_id": 18, "segmentation": [[50.0, 10.0, 50.0, 10.0, 50.0, 10.0]],
         "iscrowd": 0},  # a degenerate polygon: no pixel
        {"id": 6, "image_id": 1, "category_id": 3, "segmentation": [polygon], "iscrowd": 0},
        {"id": 9, "image_id": 1, "category_id": 18, "segmentation": [stray, [3.0, 3.0, 4.0, 4.0]], "iscrowd": 0},
        {"id": 7, "image_id": 3, "category_id": 3, "segmentation": rle(first), "iscrowd": 0},
        {"id": 8, "image_id": 4, "category_id": 3, "segmentation": rle(first), "iscrowd": 0},
    ]
    data = {"images": [{"id": i, "file_name": n, "height": H, "width": W}
                       for i, n in ((1, "a.png"), (2, "b.png"), (3, "c.png"), (4, "d.png"))],
            "annotations": anns,
            "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    def draw(seg):
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, H, W))).astype(bool)
    return path, images, (first, second, crowd, draw([polygon]), draw([stray]))


def expected_masks(first, second, poly, stray_poly, ignore_overlaps):
    """The instance and semantic maps of a.png painted by hand: usable annotations in order (1: dog, 2: car, 6: car
    polygon, 9: dog polygon with a stray part), crowd none, a later one over an earlier one. With overlaps ignored
    (oclf) an overlap pixel is 255 in the instance map and the higher class id of its objects in the semantic map."""
    inst, sem = np.zeros((H, W), np.int64), np.zeros((H, W), np.int64)
    objects = ((first, 2), (second, 1), (poly, 1), (stray_poly, 2))
    for j, (m, cls) in enumerate(objects):
        inst[m], sem[m] = j + 1, cls
    if ignore_overlaps:
        overlap = (first.astype(int) + second + poly + stray_poly) > 1
        inst[overlap] = 255
        sem[overlap] = np.max([np.where(m, cls, 0) for m, cls in objects], axis=0)[overlap]
    return inst, sem


@pytest.mark.parametrize("protocol", ["glass", "oclf"])
def test_coco_masks_by_hand(tiny_coco, protocol):
    path, images, (first, second, _crowd, poly, stray_poly) = tiny_coco
    scenes = real_data.CocoScenes(path, images, protocol, encoder_size=40, size=40)
    assert scenes.classes == ["car", "dog"]  # sorted category ids 3, 18 → semantic ids 1, 2
    item = scenes[0]
    expect_inst, expect_sem = expected_masks(first, second, poly, stray_poly, protocol == "oclf")
    assert ((first.astype(int) + second) > 1).any()  # the case has an overlap
    crop = (slice(0, 40), slice(10, 50))  # the centre square; size = side, so no resampling
    assert torch.equal(item["instance"], torch.from_numpy(expect_inst[crop]))
    assert torch.equal(item["semantic"], torch.from_numpy(expect_sem[crop]))
    pixels = np.asarray(Image.open(images / "a.png"))[crop].transpose(2, 0, 1) / 255.0
    torch.testing.assert_close(item["image"], torch.from_numpy(pixels).float(), atol=1e-6, rtol=0)


def test_bad_annotations_dropped_only_when_pycocotools_cannot_draw_them(tiny_coco):
    path, images, _ = tiny_coco
    scenes = real_data.CocoScenes(path, images, encoder_size=40, size=40)
    bad = scenes.problems.bad_annotations
    assert set(bad) == {"a.png / annotation 4", "a.png / annotation 5"}
    assert "cannot decode" in bad["a.png / annotation 4"]  # a lone 2-point polygon: pycocotools takes it for a box
    assert "no pixel" in bad["a.png / annotation 5"]
    assert set(scenes.problems.warnings) == {"a.png / annotation 9"}  # a stray 2-point part: kept, named
    assert "[1]" in scenes.problems.warnings["a.png / annotation 9"]
    assert [a["id"] for a in scenes.objects[1]] == [1, 2, 6, 9]


def test_rle_of_another_size_than_its_image_is_a_bad_annotation_not_a_crash(tmp_path):
    """An RLE whose `size` is not the image's decodes to a mask of another shape; painting it used to end the
    evaluation with an IndexError. It is named and counted, and the image is scored with its other objects."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(images / "a.png")
    good, wrong = box(5, 20, 12, 30), np.ones((H + 8, W - 4), bool)  # a 56×48 RLE on a 60×40 image
    data = {"images": [{"id": 1, "file_name": "a.png", "height": H, "width": W}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "segmentation": rle(wrong), "iscrowd": 0},
                            {"id": 2, "image_id": 1, "category_id": 3, "segmentation": rle(good), "iscrowd": 0}],
            "categories": [{"id": 3, "name": "car"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    scenes = real_data.CocoScenes(path, images, encoder_size=40, size=40)
    assert list(scenes.problems.bad_annotations) == ["a.png / annotation 1"]
    assert "56×48" in scenes.problems.bad_annotations["a.png / annotation 1"]
    item = scenes[0]
    assert item is not None and int(item["instance"].max()) == 1  # the good object, id 1
    assert torch.equal(item["instance"] > 0, real_data.prepare_mask(good.astype(np.int64), 40) > 0)


def test_oclf_masks_shrink_as_torch_nearest_exact_with_the_long_side_truncated():
    """The framework resizes masks with F.interpolate(mode="nearest-exact") to torchvision's size (the long side
    int(size · long / short)): 427×640 → 320×479, where the authors' rounding gives 480."""
    assert real_data.resized_shape(427, 640, 320, truncate=True) == (320, 479)
    assert real_data.resized_shape(427, 640, 320) == (320, 480)
    rng = np.random.default_rng(1)
    for h, w in ((427, 640, ), (640, 383), (375, 500), (50, 37)):
        m = rng.integers(0, 7, (h, w))
        h2, w2 = real_data.resized_shape(h, w, 320, truncate=True)
        ref = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=(h2, w2),
                                              mode="nearest-exact")[0, 0].long()
        top, left = (h2 - 320) // 2, (w2 - 320) // 2
        assert torch.equal(real_data.prepare_mask(m, 320, "nearest-exact"), ref[top:top + 320, left:left + 320])


def test_crop_side_differs_from_mask_size_as_opencv():
    """A 480×640 mask with an edge at column 321: the shorter side goes to 256 (width round(640·256/480) = 341),
    then columns 42..297 are kept. OpenCV's nearest puts the edge at resized column ⌈321 / (640/341)⌉ = 172, so at
    output column 130 (cropping first would give 129)."""
    import cv2  # the library the authors resize with (requirements.txt pins it for this test)
    mask = np.zeros((480, 640), np.int64)
    mask[:, 321:] = 1
    out = real_data.prepare_mask(mask, 256)
    assert out.shape == (256, 256) and int(out[0].argmax()) == 130
    rng = np.random.default_rng(0)
    for h, w, size in ((480, 640, 256), (427, 640, 320), (640, 383, 256), (375, 500, 448), (50, 37, 256)):
        m = rng.integers(0, 7, (h, w)).astype(np.int32)
        h2, w2 = real_data.resized_shape(h, w, size)
        ref = cv2.resize(m, (w2, h2), interpolation=cv2.INTER_NEAREST)  # the authors' call
        top, left = (h2 - size) // 2, (w2 - size) // 2
        assert torch.equal(real_data.prepare_mask(m, size), torch.from_numpy(ref[top:top + size, left:left + size])
                           .long())
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = cv2.resize(img, (w2, h2), interpolation=cv2.INTER_LINEAR)[top:top + size, left:left + size]
        ours = (real_data.prepare_image(img, size) * 255).round().permute(1, 2, 0).numpy()
        assert np.abs(ours - ref).max() <= 1  # OpenCV's 11-bit fixed-point weights: at most one 8-bit level


def test_image_input_is_bilinear_without_antialiasing_by_hand():
    """Upsampling 2 → 4 with half-pixel centres: output x samples source (x + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75,
    1.25 → clamped weights give a, 0.75a + 0.25b, 0.25a + 0.75b, b. Downsampling 4 → 2 samples source 0.5 and 2.5:
    the mean of two neighbours (no wider low-pass)."""
    img = np.zeros((2, 2, 3), np.uint8)
    img[:, 1] = 200
    out = real_data.prepare_image(np.repeat(img, 1, 0), 4)  # (3, 4, 4)
    assert (out[0, 0] * 255).round().tolist() == [0, 50, 150, 200]
    stripes = np.zeros((4, 4, 3), np.uint8)
    stripes[:, [1, 2]] = 100
    stripes[:, 3] = 40
    out = real_data.prepare_image(stripes, 2)
    assert (out[0, 0] * 255).round().tolist() == [50, 70]


class FakeScenes:
    """Two prepared items under a protocol: one image with an object, one without."""

    def __init__(self, protocol):
        self.protocol, self.size, self.problems = real_data.get_protocol(protocol), 4, real_data.Problems()
        inst = torch.zeros(4, 4, dtype=torch.long)
        inst[:2, :2] = 1
        self.items = [{"image": torch.zeros(3, 4, 4), "instance": inst, "semantic": inst, "file": "one"},
                      {"image": torch.ones(3, 4, 4), "instance": torch.zeros(4, 4, dtype=torch.long),
                       "semantic": torch.zeros(4, 4, dtype=torch.long), "file": "empty"}]

    def __len__(self):
        return 2

    def __getitem__(self, k):
        return self.items[k]


def one_slot(images):  # every pixel in slot 0
    return torch.zeros(images.shape[0], 4, 4, dtype=torch.long)


def test_glass_protocol_rules_by_hand():
    """One slot over a 4×4 image whose object is the top-left 2×2. Background is a segment: image 1 has segments
    {background 12 px, object 4 px}; Hungarian gives the one slot to background (IoU 12/16) and the object 0, so
    mIoU 0.375, mBO (12/16 + 4/16)/2 = 0.5. The empty image is scored: its background segment is the whole image
    (IoU 1), FG-ARI 1 by the zero-denominator rule; image 1's FG-ARI is 1 too (its object's pixels share a slot)."""
    report = real_data.score_real(one_slot, FakeScenes("glass"), progress=False)
    assert report["protocol"] == "glass" and report["images_scored"] == 2 and report["no_objects"] == 1
    assert report["miou_i"] == pytest.approx((0.375 + 1.0) / 2)
    assert report["mbo_i"] == pytest.approx((0.5 + 1.0) / 2)
    assert report["fg_ari"] == pytest.approx(1.0)


def test_oclf_protocol_rules_by_hand():
    """The same case without a background segment: image 1's only segment is the object, IoU 4/16 with the slot;
    the empty image is left out and counted."""
    report = real_data.score_real(one_slot, FakeScenes("oclf"), progress=False)
    assert report["protocol"] == "oclf" and report["images_scored"] == 1 and report["no_objects"] == 1
    assert report["miou_i"] == pytest.approx(0.25) and report["mbo_i"] == pytest.approx(0.25)
    assert report["problems"]["no_objects"] == ["empty"]


def test_score_real_names_and_counts_bad_data_and_is_idempotent(tiny_coco):
    path, images, _ = tiny_coco
    scenes = real_data.CocoScenes(path, images, "oclf", encoder_size=40, size=40)
    truth = {}

    def perfect(x):  # the ground truth itself (ignored pixels anywhere): every metric 1
        return torch.stack([truth["inst"].clamp(max=10)] * x.shape[0])

    item = scenes[0]
    truth["inst"] = torch.where(item["instance"] == 255, 0, item["instance"])
    report = real_data.score_real(perfect, scenes, batch_size=4, progress=False)
    assert report["images_scored"] == 1 and report["miou_i"] == 1.0 and report["mbo_i"] == 1.0
    assert report["no_objects"] == 1 and report["problems"]["no_objects"] == ["b.png"]
    assert set(report["problems"]["bad_images"]) == {"c.png", "d.png"}  # missing, unreadable
    assert report["bad_annotations"] == 2 and report["warnings"] == 1
    again = real_data.score_real(perfect, scenes, batch_size=4, progress=False)
    assert again == report  # scoring twice counts nothing twice


@pytest.fixture()
def tiny_voc(tmp_path):
    root = tmp_path / "VOC2012"
    for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationObject", "SegmentationClass"):
        (root / sub).mkdir(parents=True)
    inst = np.zeros((30, 20), np.uint8)
    inst[2:12, 3:15], inst[15:28, 5:18] = 1, 2
    inst[12, 3:15] = 255  # a border
    cls = np.where(inst == 1, 12, np.where(inst == 2, 15, inst)).astype(np.uint8)
    palette = list(np.random.default_rng(1).integers(0, 255, 768))
    for sub, m in (("SegmentationObject", inst), ("SegmentationClass", cls)):
        im = Image.fromarray(m, mode="P")
        im.putpalette(palette)
        im.save(root / sub / "x.png")
    Image.fromarray(np.full((30, 20, 3), 128, np.uint8)).save(root / "JPEGImages" / "x.jpg")
    (root / "ImageSets/Segmentation/val.txt").write_text("x\nmissing\n")
    return root, inst, cls


def test_voc_masks_crop_and_missing_files(tiny_voc):
    root, inst, cls = tiny_voc
    scenes = real_data.VocScenes(root, "val", encoder_size=20, size=20)
    item = scenes[0]
    assert torch.equal(item["instance"], torch.from_numpy(inst[5:25].astype(np.int64)))  # rows 5..24: the centre
    assert torch.equal(item["semantic"], torch.from_numpy(cls[5:25].astype(np.int64)))
    assert scenes[1] is None and "missing" in scenes.problems.bad_images
    with pytest.raises(FileNotFoundError, match="ImageSets"):
        real_data.VocScenes(root / "nowhere")


def test_evaluate_discovery_on_coco_and_voc(tiny_models, tiny_coco, tiny_voc, tmp_path):
    import argparse
    import evaluate
    from glass import GLASS
    from tests.conftest import tiny_glass_config
    model = GLASS(tiny_glass_config(tiny_models))  # a checkpoint of the tiny model through train.py's own writer
    opt = torch.optim.AdamW(model.param_groups(1, 1e-4, 1e-4))
    checkpoint.save_checkpoint(tmp_path / "ckpt", model, opt, 1, 0, argparse.Namespace(), checkpoint.rng_state(torch.Generator()))
    path, images, _ = tiny_coco
    out = tmp_path / "coco.json"
    evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--coco", str(path), "--images", str(images),
                   "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["protocol"] == "glass" and report["mask_size"] == 256  # the default: the authors' scoring
    assert report["images_scored"] == 2 and report["no_objects"] == 1 and report["bad_images"] == 2  # b.png scored
    evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--coco", str(path), "--images", str(images),
                   "--protocol", "oclf", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["protocol"] == "oclf" and report["mask_size"] == 320
    assert report["images_scored"] == 1 and report["no_objects"] == 1  # b.png left out
    root, _, _ = tiny_voc
    evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--voc", str(root), "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["images_scored"] == 1 and report["bad_images"] == 1
    with pytest.raises(SystemExit):
        evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--coco", str(path)])
    with pytest.raises(SystemExit):  # the protocol decides background on real data
        evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--voc", str(root), "--background-segment"])
