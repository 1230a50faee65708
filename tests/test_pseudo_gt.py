"""Tests of pseudo_gt.py on tiny random models: prompts, recording, refinement, thresholds, the writer."""
import json

import numpy as np
import pytest
import torch

from infra.data import PseudoGTDataset
from infra import data
import prompts
import pseudo_gt as pg
from toy import report as toy_report
from prompts import build_prompt, find_classes, token_groups
from pseudo_gt import MaskConfig, label_mask, refine

TOY_CFG = MaskConfig(cross_res=(16, 8), self_res=16, tau=4, refine=True)


# ---------------------------------------------------------------- prompts

def test_find_classes_toy_synonyms_plurals_compounds():
    v = prompts.toy_vocabulary()
    m = find_classes("a picture of two goldfish, a small teal android and three cottages on a plain floor", v,
                     use_nltk=False)
    assert m.classes == ["fish", "robot", "house"] and m.has_classes and m.tagger == "lexicon"
    assert m.words == ["goldfish", "android", "cottages"]
    assert find_classes("there are daisies in this image", v, use_nltk=False).classes == ["flower"]


def test_find_classes_coco():
    v = prompts.coco_vocabulary()
    m = find_classes("Two men riding bikes past a traffic light and a hot dog stand.", v, use_nltk=False)
    assert m.classes == ["person", "bicycle", "traffic light", "hot dog"]
    m = find_classes("people with knives and wine glasses near the sofa", v, use_nltk=False)
    assert m.classes == ["person", "knife", "wine glass", "couch"]


def test_caption_without_classes_is_flagged_not_an_error():
    m = find_classes("a blurry photo of the sky", prompts.coco_vocabulary(), use_nltk=False)
    assert m.classes == [] and not m.has_classes
    assert build_prompt("a blurry photo of the sky.", m.classes) == "a blurry photo of the sky"
    assert build_prompt("a teal android", ["robot"]) == "a teal android ; robot"


def test_nltk_required_but_missing_is_a_clear_error():
    if prompts._nltk_tagger() is not None:
        pytest.skip("NLTK tagger data is installed here; the error path cannot occur")
    with pytest.raises(RuntimeError, match="averaged_perceptron_tagger_eng"):
        find_classes("a dog", prompts.coco_vocabulary(), use_nltk=True)


def test_plural_rules():
    assert [prompts.plural(w) for w in ("box", "cross", "person", "knife", "traffic light", "plus sign", "pony")] == \
        ["boxes", "crosses", "people", "knives", "traffic lights", "plus signs", "ponies"]


# ---------------------------------------------------------------- token indices

def test_token_groups_for_names_split_into_several_tokens(tiny_pipe):
    tok = tiny_pipe.tokenizer
    zebra = tok("zebra", add_special_tokens=False).input_ids
    assert len(zebra) > 1, "an out-of-world word falls back to byte tokens"
    groups = token_groups(tok, ["tree", "zebra", "house"])
    assert groups[0] == [1]
    assert groups[1] == list(range(2, 2 + len(zebra)))
    assert groups[2] == [2 + len(zebra)]
    ids = tok("tree zebra house").input_ids
    assert [ids[p] for p in groups[1]] == zebra and ids[groups[2][0]] == tok("house", add_special_tokens=False).input_ids[0]


def test_recorder_averages_sub_token_columns():
    probe = torch.zeros(1, 6, 4)
    rec = pg.AttentionRecorder(probe, [[[1], [2, 3, 4]]], cfg_batch=False)
    w = rec.token_weights[0]
    assert torch.allclose(w[0], torch.tensor([0, 1.0, 0, 0, 0, 0]))
    assert torch.allclose(w[1], torch.tensor([0, 0, 1 / 3, 1 / 3, 1 / 3, 0]))


# ---------------------------------------------------------------- masks

def test_refine_hand_computed():
    # 1×1 cross map upsampled to a 2×2 grid is constant; use a 2×2 cross map on a 2×2 self-attention grid instead.
    cross = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # (B=1, C=1, 2, 2)
    a = torch.tensor([[0.5, 0.5, 0.0, 0.0],
                      [0.0, 1.0, 0.0, 0.0],
                      [0.0, 0.0, 1.0, 0.0],
                      [0.25, 0.25, 0.25, 0.25]])[None]
    # A² · [1, 0, 0, 0]ᵀ: A·e0 = [0.5, 0, 0, 0.25]; A·that = [0.25, 0, 0, 0.1875]; min-max → [1, 0, 0, 0.75]
    out = refine(cross, a, tau=2)
    torch.testing.assert_close(out, torch.tensor([[[[1.0, 0.0], [0.0, 0.75]]]]))
    torch.testing.assert_close(refine(cross, None), cross)  # no refinement: only normalisation


def test_label_mask_thresholds():
    scores = torch.tensor([0.7, 0.55, 0.3, 0.6, 0.5, 0.49]).reshape(1, 1, 1, 6)
    scores = torch.cat([scores, torch.full_like(scores, 0.2)], dim=1)  # a second, weaker class
    # a size-6 output of a 1×6 map needs 6 rows; use size 1 on each row by interpolating a 6×6 constant-row map
    scores = scores.expand(1, 2, 6, 6).transpose(2, 3).contiguous()  # rows differ, columns equal
    labels = label_mask(scores, torch.tensor([[3, 1]]), size=6)
    assert labels[0, :, 0].tolist() == [3, 255, 0, 3, 255, 0]
    # padding channels (id 0) are never chosen even with the highest score
    labels = label_mask(torch.stack([torch.zeros(6, 6), torch.ones(6, 6)])[None], torch.tensor([[2, 0]]), size=6)
    assert (labels == 0).all()


def test_aggregate_averages_layers_of_one_resolution():
    sums = {"a": torch.full((1, 4, 2), 6.0), "b": torch.full((1, 4, 2), 2.0), "c": torch.full((1, 16, 2), 9.0)}
    counts = {"a": 3, "b": 1, "c": 1}
    res = {"a": 2, "b": 2, "c": 4}
    torch.testing.assert_close(pg.aggregate(sums, counts, res, 2), torch.full((1, 4, 2), 2.0))
    assert pg.aggregate(sums, counts, res, 8) is None


# ---------------------------------------------------------------- recording

def test_recorded_shapes_and_identical_images(tiny_pipe):
    prompts = ["a teal android ; robot", "two cottages and a car ; house car"]
    classes = [["robot"], ["house", "car"]]
    ids = torch.tensor([[6, 0], [1, 3]])
    gen = lambda: [torch.Generator().manual_seed(7 + i) for i in range(2)]
    plain = tiny_pipe(prompts, height=64, width=64, num_inference_steps=3, guidance_scale=4.0, generator=gen(),
                      output_type="pt").images
    out = pg.generate_with_masks(tiny_pipe, prompts, classes, ids, 64, gen(), TOY_CFG, steps=3, guidance=4.0)
    assert torch.equal(out.images, plain), "recording must not change the image"
    rec = out.recorder
    assert set(rec.resolution.values()) == {16, 8}
    for name, s in rec.sums_cross.items():
        side = rec.resolution[name]
        assert s.shape == (2, side * side, 2)
        assert rec.counts[name] == 3  # one call per step, conditional half only
    for s in rec.sums_self.values():
        assert s.shape == (2, 256, 256)
        torch.testing.assert_close(s.sum(-1), torch.full((2, 256), 3.0))  # rows of probabilities, 3 steps
    assert out.labels.shape == (2, 64, 64) and out.scores.shape == (2, 2, 16, 16)
    # labels are the image's own class ids (ids row, padding 0 excluded), background 0 or ignore 255
    assert set(out.labels[0].unique().tolist()) <= {0, 6, 255}
    assert set(out.labels[1].unique().tolist()) <= {0, 1, 3, 255}
    assert tiny_pipe.unet.attn_processors[next(iter(tiny_pipe.unet.attn_processors))].__class__.__name__ != \
        "RecordingAttnProcessor", "the default processors are restored"


# ---------------------------------------------------------------- the writer

class FixedCaptioner:
    def __init__(self, captions):
        self.captions = captions

    def __call__(self, items):
        return [self.captions[hash(it["source"]) % len(self.captions)] for it in items]


def toy_preset(tiny_models):
    return pg.Preset("toy", sd=str(tiny_models / "sd"), size=64, steps=2, guidance=3.0,
                     mask=MaskConfig(cross_res=(16, 8), self_res=16, refine=False))


def test_writer_resumes_after_a_crash(tiny_models, tiny_pipe, tmp_path):
    preset = toy_preset(tiny_models)
    full = tmp_path / "full"
    pg.write_dataset(full, preset, 5, pipe=tiny_pipe, batch_size=2, use_nltk=False)
    crashed = tmp_path / "crashed"
    pg.write_dataset(crashed, preset, 5, pipe=tiny_pipe, batch_size=2, use_nltk=False, stop_after=1)
    assert len(data.read_done(crashed)) == 2
    # simulate a crash mid-item: a torn JSONL line, a half-written temporary PNG
    with open(crashed / "items-rank0.jsonl", "a") as f:
        f.write('{"index": 2, "image": "images/00')
    (crashed / "images" / "0000002.png.tmp").write_bytes(b"\x89PNG garbage")
    stats = pg.write_dataset(crashed, preset, 5, pipe=tiny_pipe, batch_size=2, use_nltk=False)
    assert stats["written"] == 3 and stats["already_done"] == 2
    ds_full, ds_crashed = PseudoGTDataset(full), PseudoGTDataset(crashed)
    assert len(ds_crashed) == 5
    for i in range(5):
        a, b = ds_full[i], ds_crashed[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"]) and a["prompt"] == b["prompt"]
    lines = (crashed / "items-rank0.jsonl").read_text().splitlines()
    assert sorted(json.loads(l)["index"] for l in lines) == [0, 1, 2, 3, 4]
    rec = json.loads(lines[0])
    assert {"prompt", "caption", "classes", "seed", "has_classes"} <= set(rec)
    assert rec["prompt"].endswith("; " + " ".join(rec["classes"]))


def test_writer_shards_by_rank(tiny_models, tiny_pipe, tmp_path):
    preset = toy_preset(tiny_models)
    for rank in (0, 1):
        pg.write_dataset(tmp_path, preset, 5, pipe=tiny_pipe, batch_size=4, rank=rank, world_size=2, use_nltk=False)
    idx0 = [json.loads(l)["index"] for l in (tmp_path / "items-rank0.jsonl").read_text().splitlines()]
    idx1 = [json.loads(l)["index"] for l in (tmp_path / "items-rank1.jsonl").read_text().splitlines()]
    assert idx0 == [0, 2, 4] and idx1 == [1, 3]
    assert len(PseudoGTDataset(tmp_path)) == 5


def test_writer_skips_unreadable_images_and_flags_captions_without_classes(tiny_models, tiny_pipe, tmp_path):
    from PIL import Image
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / "a.png")
    (src / "b.jpg").write_bytes(b"not an image")
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(src / "c.png")
    preset = pg.Preset("paper-like", sd=str(tiny_models / "sd"), size=64, steps=2, guidance=3.0, vocabulary="coco",
                       mask=MaskConfig(cross_res=(16, 8), self_res=16, refine=True))
    captioner = FixedCaptioner(["a dog on a couch", "an empty blue sky"])
    with pytest.warns(UserWarning, match="b.jpg"):
        stats = pg.write_dataset(tmp_path / "out", preset, None, pipe=tiny_pipe, captioner=captioner,
                                 images_dir=src, batch_size=2, use_nltk=False)
    assert stats["skipped_images"] == 1 and stats["written"] == 2
    ds = PseudoGTDataset(tmp_path / "out")
    recs = {r["source"]: r for r in ds.records}
    assert set(recs) == {"a.png", "c.png"}
    for i, r in enumerate(ds.records):
        item = ds[i]
        if r["has_classes"]:
            assert r["classes"] == ["dog", "couch"] and r["prompt"] == "a dog on a couch ; dog couch"
        else:
            assert r["classes"] == [] and (item["mask"] == 0).all() and not item["has_classes"]
    assert stats["no_classes"] == sum(not r["has_classes"] for r in ds.records)


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="pseudo_gt.py --preset toy"):
        PseudoGTDataset(tmp_path / "nothing")


def test_localisation_report_of_another_pipeline_leaves_the_readme_figure_alone(tiny_models, tmp_path, capsys):
    shipped = pg.ROOT / "figures" / "pseudo_gt_samples.png"
    before = shipped.read_bytes() if shipped.exists() else None
    toy_report.main(["pseudo-masks", "--sd", str(tiny_models / "sd"), "--eval-images", "4", "--steps", "2"])
    report = json.loads(capsys.readouterr().out.split("\n", 2)[-1])  # after the two per-setting lines
    assert set(report) == {"cross_attention_only", "with_refinement", "generation", "settings"}
    assert (shipped.read_bytes() if shipped.exists() else None) == before
    toy_report.main(["pseudo-masks", "--sd", str(tiny_models / "sd"), "--eval-images", "4", "--steps", "2",
                     "--figure", str(tmp_path / "masks.png")])
    assert (tmp_path / "masks.png").stat().st_size > 0


def test_localisation_scores_an_oracle_mask_exactly(tiny_pipe, monkeypatch):
    """Masks with a known answer: image 1's predicted tree is its true tree (IoU 1), image 2's lies beside it
    (IoU 0), so localisation is 0.5."""
    from toy.world import CLASSES
    tree = CLASSES.index("tree") + 1  # the tree's class id
    left, right = torch.zeros(64, 64, dtype=torch.long), torch.zeros(64, 64, dtype=torch.long)
    left[:, :32], right[:, 32:] = tree, tree
    items = [{"caption": "a green tree", "image": torch.rand(3, 64, 64), "semantic": m} for m in (left, right)]

    class Scenes:
        def __init__(self, split, length):
            pass

        def __getitem__(self, i):
            return items[i]

    monkeypatch.setattr(toy_report, "ToyScenes", Scenes)
    monkeypatch.setattr(pg, "masks_from_recorder",
                        lambda rec, ids, size, cfg: {"labels": left.expand(len(ids), -1, -1)})
    cfg = pg.MaskConfig(cross_res=(16,), self_res=16, refine=False)
    out = toy_report.localisation(tiny_pipe, cfg, n=2, timesteps=(200,), batch_size=2)
    assert out["miou"] == 0.5 and out["per_t"] == {200: 0.5}


def test_generation_report_counts_complete_masks_and_ignore_pixels(tiny_pipe, monkeypatch):
    """Even images get a mask holding every prompted class and a quarter of ignore pixels, odd ones nothing:
    complete share 1/2, ignore share 1/8."""
    def fake(pipe, prompts, class_lists, class_ids, size, generator, cfg, steps, guidance):
        labels = torch.zeros(len(prompts), size, size, dtype=torch.long)
        for r in range(0, len(prompts), 2):
            ids = [int(c) for c in class_ids[r] if c > 0]
            for j, c in enumerate(ids):
                labels[r, j::len(ids) + 1] = c
            labels[r, :, : size // 4] = 255  # the classes stay present in the other columns
        return pg.Generated(images=torch.zeros(len(prompts), 3, size, size), labels=labels, scores=None,
                            recorder=None)

    monkeypatch.setattr(pg, "generate_with_masks", fake)
    preset = pg.Preset("toy", sd="unused", size=64, steps=2, guidance=1.0, mask=pg.MaskConfig(cross_res=(16,)))
    out = toy_report.generation_report(tiny_pipe, preset, n=4, batch_size=4, figure=None)
    assert out["complete_share"] == 0.5
    assert out["ignore_share"] == 0.125


def test_paper_preset_samples_as_dataset_diffusion_and_the_negative_prompt_reaches_the_pipeline(tiny_pipe):
    """Dataset Diffusion's gen_data.py: 100 steps of the model's own scheduler, guidance 7.5, their negative prompt,
    bicubic upsampling. The negative prompt is the unconditional branch: the image equals the pipeline's own with
    that negative prompt, and differs from the empty prompt's."""
    paper = pg.PRESETS["paper"]
    assert (paper.steps, paper.guidance, paper.scheduler, paper.mask.upsample) == (100, 7.5, "own", "bicubic")
    assert paper.negative_prompt.startswith("ugly, tiling") and paper.negative_prompt.endswith("distorted face")
    prompts, classes, ids = ["a teal android ; robot"], [["robot"]], torch.tensor([[6]])
    gen = lambda: [torch.Generator().manual_seed(3)]
    neg = pg.generate_with_masks(tiny_pipe, prompts, classes, ids, 64, gen(), TOY_CFG, steps=2, guidance=4.0,
                                 negative_prompt="blurry").images
    ref = tiny_pipe(prompts, height=64, width=64, num_inference_steps=2, guidance_scale=4.0, generator=gen(),
                    negative_prompt=["blurry"], output_type="pt").images
    plain = pg.generate_with_masks(tiny_pipe, prompts, classes, ids, 64, gen(), TOY_CFG, steps=2,
                                   guidance=4.0).images
    assert torch.equal(neg, ref) and not torch.equal(neg, plain)


def test_bicubic_refinement_upsamples_bicubically():
    cross = torch.rand(1, 2, 4, 4)
    eye = torch.eye(64)[None]  # identity self-attention: refinement is the upsampling alone, then min-max
    up = torch.nn.functional.interpolate(cross, size=(8, 8), mode="bicubic", align_corners=False)
    torch.testing.assert_close(refine(cross, eye, tau=4, mode="bicubic"), pg.normalise(up))
    assert not torch.allclose(refine(cross, eye, tau=4, mode="bicubic"), refine(cross, eye, tau=4))
