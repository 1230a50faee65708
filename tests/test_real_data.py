"""Tests of real_data.py on a tiny COCO-format dataset and a tiny VOC-style folder written here: masks by hand,
the crop, overlaps and crowds, bad data named and counted, and `evaluate.py discovery --coco / --voc` end to end."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

import real_data

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
    anns = [
        {"id": 1, "image_id": 1, "category_id": 18, "segmentation": rle(first), "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 3, "segmentation": rle(second), "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 3, "segmentation": rle(crowd), "iscrowd": 1},
        {"id": 4, "image_id": 1, "category_id": 18, "segmentation": [[1.0, 1.0, 5.0, 5.0]], "iscrowd": 0},  # 2 points
        {"id": 5, "image_id": 1, "category_id": 18, "segmentation": [[50.0, 10.0, 50.0, 10.0, 50.0, 10.0]],
         "iscrowd": 0},  # a degenerate polygon: no pixel
        {"id": 6, "image_id": 1, "category_id": 3, "segmentation": [polygon], "iscrowd": 0},
        {"id": 7, "image_id": 3, "category_id": 3, "segmentation": rle(first), "iscrowd": 0},
        {"id": 8, "image_id": 4, "category_id": 3, "segmentation": rle(first), "iscrowd": 0},
    ]
    data = {"images": [{"id": i, "file_name": n, "height": H, "width": W}
                       for i, n in ((1, "a.png"), (2, "b.png"), (3, "c.png"), (4, "d.png"))],
            "annotations": anns,
            "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    poly_mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([polygon], H, W))).astype(bool)
    return path, images, (first, second, crowd, poly_mask)


def test_coco_masks_by_hand(tiny_coco):
    path, images, (first, second, _crowd, poly) = tiny_coco
    scenes = real_data.CocoScenes(path, images, size=40, encoder_size=40)
    assert scenes.classes == ["car", "dog"]  # sorted category ids 3, 18 → semantic ids 1, 2
    item = scenes[0]
    expect_inst = np.zeros((H, W), np.int64)
    expect_inst[first], expect_inst[second], expect_inst[poly] = 1, 2, 3  # usable annotations in order; crowd: none
    expect_sem = np.zeros((H, W), np.int64)
    expect_sem[first], expect_sem[second], expect_sem[poly] = 2, 1, 1
    overlap = (first.astype(int) + second + poly) > 1
    expect_inst[overlap] = expect_sem[overlap] = 255
    assert overlap.any()
    crop = (slice(0, 40), slice(10, 50))  # the centre square; size = side, so no resampling
    assert torch.equal(item["instance"], torch.from_numpy(expect_inst[crop]))
    assert torch.equal(item["semantic"], torch.from_numpy(expect_sem[crop]))
    pixels = np.asarray(Image.open(images / "a.png"))[crop].transpose(2, 0, 1) / 255.0
    torch.testing.assert_close(item["image"], torch.from_numpy(pixels).float(), atol=1e-6, rtol=0)
    assert set(scenes.problems.bad_annotations) == {"a.png / annotation 4", "a.png / annotation 5"}
    assert "polygon" in scenes.problems.bad_annotations["a.png / annotation 4"]
    assert "empty" in scenes.problems.bad_annotations["a.png / annotation 5"]


def test_resize_is_nearest_for_masks_and_antialiased_for_images():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, (np.arange(8) // 2) % 2 == 0] = 255  # stripes two pixels wide: halving without a low-pass keeps
    inst = np.arange(64).reshape(8, 8) % 3       # them as full black and white columns (aliasing)
    out = real_data.prepare(image, inst, inst, size=4, encoder_size=4)
    aliased = torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, size=4,
                                              mode="bilinear", align_corners=False)[0]
    assert set(aliased[0, 0].tolist()) == {0.0, 1.0}
    interior = out["image"][:, :, 1:3]
    assert (interior > 0.2).all() and (interior < 0.8).all()
    assert set(out["instance"].unique().tolist()) <= {0, 1, 2}  # nearest: no blended ids


def test_score_real_names_and_counts_bad_data(tiny_coco):
    path, images, _ = tiny_coco
    scenes = real_data.CocoScenes(path, images, size=40, encoder_size=40)
    truth = {}

    def perfect(x):  # the ground truth itself (ignored pixels anywhere): every metric 1
        return torch.stack([truth["inst"].clamp(max=10)] * x.shape[0])

    item = scenes[0]
    truth["inst"] = torch.where(item["instance"] == 255, 0, item["instance"])
    report = real_data.score_real(perfect, scenes, batch_size=4, progress=False)
    assert report["images_scored"] == 1 and report["miou_i"] == 1.0 and report["mbo_i"] == 1.0
    assert report["no_objects"] == 1 and report["problems"]["no_objects"] == ["b.png"]
    assert set(report["problems"]["bad_images"]) == {"c.png", "d.png"}  # missing, unreadable
    assert report["bad_annotations"] == 2


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
    scenes = real_data.VocScenes(root, "val", size=20, encoder_size=20)
    item = scenes[0]
    assert torch.equal(item["instance"], torch.from_numpy(inst[5:25].astype(np.int64)))  # rows 5..24: the centre
    assert torch.equal(item["semantic"], torch.from_numpy(cls[5:25].astype(np.int64)))
    assert scenes[1] is None and "missing" in scenes.problems.bad_images
    with pytest.raises(FileNotFoundError, match="ImageSets"):
        real_data.VocScenes(root / "nowhere")


def test_evaluate_discovery_on_coco_and_voc(tiny_models, tiny_coco, tiny_voc, tmp_path):
    import argparse
    import evaluate
    import train
    from glass import GLASS
    from tests.conftest import tiny_glass_config
    model = GLASS(tiny_glass_config(tiny_models))  # a checkpoint of the tiny model through train.py's own writer
    opt = torch.optim.AdamW(model.param_groups(1, 1e-4, 1e-4))
    train.save_checkpoint(tmp_path / "ckpt", model, opt, 1, 0, argparse.Namespace(), train.rng_state(torch.Generator()))
    path, images, _ = tiny_coco
    out = tmp_path / "coco.json"
    evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--coco", str(path), "--images", str(images),
                   "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["images_scored"] == 1 and report["bad_images"] == 2 and 0 <= report["miou_i"] <= 1
    root, _, _ = tiny_voc
    evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--voc", str(root), "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["images_scored"] == 1 and report["bad_images"] == 1
    with pytest.raises(SystemExit):
        evaluate.main(["discovery", "--ckpt", str(tmp_path / "ckpt"), "--coco", str(path)])
