"""Tests of toy/world.py: determinism, masks consistent with images, captions naming exactly the classes present."""
import re

import numpy as np
import pytest
import torch

from toy import world
from toy.world import CLASSES, SYNONYMS, ToyScenes, make_scene


def test_scenes_are_deterministic_and_splits_differ():
    a, b = make_scene("train", 17), make_scene("train", 17)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.instance, b.instance) and a.caption == b.caption
    assert not np.array_equal(make_scene("val", 17).image, a.image)
    assert not np.array_equal(make_scene("train", 18).image, a.image)


@pytest.mark.parametrize("split", ["train", "val", "shift"])
def test_masks_consistent_with_images(split):
    for i in range(40):
        s = make_scene(split, i)
        n = len(s.classes)
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert set(np.unique(s.instance)) <= set(range(n + 1))
        for k in range(n):
            m = s.instance == k + 1
            assert m.sum() > 0, "every object keeps visible pixels"
            assert (s.image[m] == np.array(s.rgb[k], np.uint8)).all(), "instance pixels have the object's colour"
            assert (s.semantic[m] == CLASSES.index(s.classes[k]) + 1).all(), "semantic = class of instance"
            ys, xs = np.nonzero(m)
            assert tuple(s.boxes[k]) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert (s.semantic[s.instance == 0] == 0).all()


def test_world_statistics_match_the_spec():
    scenes = [make_scene("train", i) for i in range(300)]
    counts = np.array([len(s.classes) for s in scenes])
    assert counts.min() >= 1 and counts.max() <= 4
    repeats = np.mean([len(set(s.classes)) < len(s.classes) for s in scenes])
    assert repeats >= 1 / 3, f"only {repeats:.2f} of scenes repeat a class"
    assert {s.background for s in scenes} == set(world.BACKGROUNDS_TRAIN)
    assert {c for s in scenes for c in s.classes} == set(CLASSES)
    shift = [make_scene("shift", i) for i in range(50)]
    assert min(len(s.classes) for s in shift) >= 3
    assert {s.background for s in shift}.isdisjoint(world.BACKGROUNDS_TRAIN)
    palette = {tuple(v) for v in world.COLOURS.values()}
    assert any(tuple(c) not in palette for s in shift for c in s.rgb), "the shift split has unseen colour shades"


def caption_classes(caption):
    """Classes a caption names, from the world's own word lists (an oracle independent of pseudo_gt.py)."""
    text = caption.lower()
    found = set()
    for word, cls in list(SYNONYMS.items()) + [(c, c) for c in CLASSES]:
        forms = {word, world.PLURALS.get(word, ""), world.SYNONYM_PLURALS.get(word, "")} - {""}
        if any(re.search(rf"\b{re.escape(f)}\b", text) for f in forms):
            found.add(cls)
    return found


def test_captions_name_exactly_the_classes_present():
    synonyms_seen, non_class_words = set(), 0
    for i in range(300):
        s = make_scene("train", i)
        assert caption_classes(s.caption) == set(s.classes), s.caption
        synonyms_seen |= {w for w in SYNONYMS if re.search(rf"\b{w}", s.caption)}
        non_class_words += any(w in s.caption for w in ("floor", "picture", "wall", "photo", "image"))
    assert synonyms_seen == set(SYNONYMS), "every synonym is used"
    assert non_class_words > 100


def test_dataset_items():
    ds = ToyScenes("val")
    assert len(ds) == world.VAL_SIZE
    item = ds[3]
    assert item["image"].shape == (3, 64, 64) and 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["instance"].shape == (64, 64) and item["instance"].dtype == torch.long
    n = int(item["num_objects"])
    assert (item["classes"][:n] >= 0).all() and (item["classes"][n:] == -1).all()
    assert item["labels"] == world.class_names_prompt(make_scene("val", 3).classes)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 64) and len(batch["caption"]) == 4
    with pytest.raises(ValueError, match="length"):
        ToyScenes("train")
    with pytest.raises(ValueError, match="split"):
        ToyScenes("test")
