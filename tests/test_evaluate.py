"""Tests of the experiments (experiments/tables.py, experiments/ladder.py, experiments/baseline_data.py): oracle datasets hold the ground truth,
the k-means floor against scikit-learn on a hand-made case, FG-ARI on multi-object scenes, one small ladder run end
to end, and every table of the fast budget."""
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from experiments import baseline_data
import evaluate
from experiments import tables as experiments
from experiments import ladder
import metrics
from infra.data import PseudoGTDataset
from toy import world


@pytest.mark.parametrize("kind", ["semantic", "instance"])
def test_oracle_dataset_holds_the_ground_truth(tmp_path, kind):
    out = baseline_data.write_oracle_dataset(tmp_path / kind, 6, kind)
    ds = PseudoGTDataset(out)
    # semantic: one id per class; instance: one id per object slot of a scene ("object 1" … "object 3")
    assert len(ds) == 6 and ds.num_classes == (len(world.CLASSES) if kind == "semantic" else world.SPLITS["train"].max_objects)
    for i in range(6):
        scene = world.make_scene("train", baseline_data.ORACLE_OFFSET + i)
        truth = scene.semantic if kind == "semantic" else scene.instance
        item = ds[i]
        assert torch.equal(item["mask"], torch.from_numpy(truth.astype(np.int64))), i
        assert torch.equal((item["image"] * 255).round().to(torch.uint8).permute(1, 2, 0),
                           torch.from_numpy(scene.image)), i
    # resumable: a second call keeps the items and writes nothing twice
    baseline_data.write_oracle_dataset(out, 8, kind)
    lines = (out / "items-rank0.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in lines) == list(range(8))


def test_oracle_dataset_rejects_unknown_masks(tmp_path):
    with pytest.raises(ValueError, match="semantic"):
        baseline_data.write_oracle_dataset(tmp_path, 2, "panoptic")


def test_kmeans_recovers_separated_regions():
    # three regions on a 16×16 grid; tokens are far-apart region codes plus small noise
    regions = torch.zeros(16, 16, dtype=torch.long)
    regions[:, 8:] = 1
    regions[10:, :5] = 2
    codes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    g = torch.Generator().manual_seed(0)
    tokens = (codes[regions.flatten()] + 0.1 * torch.randn(256, 2, generator=g))[None]  # (1, 256, 2)
    labels = evaluate.kmeans_labels(tokens, k=3, size=64)
    assert labels.shape == (1, 64, 64)
    truth = regions.repeat_interleave(4, 0).repeat_interleave(4, 1)  # nearest upsampling by hand
    assert adjusted_rand_score(truth.flatten().numpy(), labels[0].flatten().numpy()) == pytest.approx(1.0)


def test_pixel_tokens_by_hand():
    img = torch.zeros(1, 3, 8, 8)
    img[0, 0, 4:, :4] = 1.0  # red bottom-left quarter
    tok = evaluate.pixel_tokens(img, patch=4, position_weight=2.0)  # 2×2 grid
    assert tok.shape == (1, 4, 3 * 16 + 2)
    assert tok[0, 2, :16].eq(1).all() and tok[0, 2, 16:48].eq(0).all()  # token 2 = row 1, col 0: red only
    assert tok[0, :, 48:].tolist() == [[0.5, 0.5], [1.5, 0.5], [0.5, 1.5], [1.5, 1.5]]  # cell centres (¼, ¾) × 2


def test_fg_ari_multi_leaves_single_object_scenes_out():
    inst = torch.zeros(2, 8, 8, dtype=torch.long)
    inst[0, :4, :4] = 1  # one object
    inst[1, :4, :4], inst[1, 4:, 4:] = 1, 2  # two objects
    pred = inst.clone()
    pred[0, 0, 0] = 3  # one pixel of the single object elsewhere: its FG-ARI drops to 0
    out = metrics.score_masks(pred, inst, (inst > 0).long())
    assert out["fg_ari"][0] == pytest.approx(0.0) and out["fg_ari"][1] == pytest.approx(1.0)
    assert torch.isnan(out["fg_ari_multi"][0]) and out["fg_ari_multi"][1] == pytest.approx(1.0)


def test_ladder_runs_and_resumes(tiny_models, tiny_dataset, tmp_path):
    extra = ["--encoder", str(tiny_models / "encoder"), "--sd", str(tiny_models / "sd"), "--slot-dim", "16",
             "--slot-mlp-hidden", "16", "--decoder-hidden", "32", "--num-slots", "4", "--batch-size", "4", "--workers", "0",
             "--log-every", "1", "--warmup", "1"]
    res = ladder.run_ladder(tmp_path, steps=2, images=8, eval_images=4, pseudo_data=tiny_dataset, extra=extra,
                              only=["pixels", "ceiling", "1", "5"])
    assert set(res) == {"k-means on pixel colour + position (K = 4)", ladder.LADDER[0][0], ladder.LADDER[4][0],
                        "ground-truth semantic mask as slots (perfect semantic guidance)"}
    for r in res.values():
        assert r["val"]["images"] == 4 and r["shift"]["images"] == 4
        assert 0.0 <= r["val"]["mbo_i"] <= 1.0
    ceiling = res["ground-truth semantic mask as slots (perfect semantic guidance)"]["val"]
    assert ceiling["miou_c"] == ceiling["mbo_c"] == 1.0  # the semantic mask scored against itself
    assert "| rung |" in ladder.ladder_table(res)
    again = ladder.run_ladder(tmp_path, steps=2, images=8, eval_images=4, pseudo_data=tiny_dataset, extra=extra,
                                only=["pixels", "ceiling", "1", "5"])
    same = lambda a: json.dumps(a, sort_keys=True)  # NaN-safe: JSON writes every NaN alike
    assert same(again) == same(json.loads((tmp_path / "ladder.json").read_text())) == same(res)  # nothing retrained


BASELINE_INDEX = {r: i for i, r in enumerate(experiments.BASELINES)}


def test_tables_fast_budget_builds_every_table_from_configurations_and_resumes(tiny_models, tiny_dataset, tmp_path):
    extra = ["--encoder", str(tiny_models / "encoder"), "--sd", str(tiny_models / "sd"), "--slot-dim", "16",
             "--slot-mlp-hidden", "16", "--decoder-hidden", "32", "--num-slots", "4", "--batch-size", "4", "--workers", "0",
             "--log-every", "1", "--warmup", "1"]
    tables = experiments.run_tables(tmp_path, "fast", tiny_dataset, extra)
    assert list(tables) == ["tab2", "tab3", "tab4", "tab5", "tab6a", "tab6b", "tab6c", "glass_dagger", "tab7",
                            "compose", "tab8", "tab9"]
    for t, (split, keys, members) in experiments.TABLES.items():
        assert [r["row"] for r in tables[t]] == members, t
        for r in tables[t]:
            assert all(isinstance(r[k], float) for k in keys), (t, r)
            assert t == "compose" or all(np.isfinite(r[k]) for k in keys), (t, r)  # an edit may not qualify
        assert (tmp_path / f"{t}.png").exists()
    assert all(r["seeds"] == 1 and r["miou_i_std"] == 0.0 for r in tables["tab6a"])  # one seed in the fast budget
    # the shared row is trained once: "all three, seed 0" is GLASS
    assert tables["tab6a"][-1]["miou_i"] == tables["tab2"][0]["miou_i"]
    written = json.loads((tmp_path / "tables.json").read_text())
    assert written["tab4"] == tables["tab4"] and written["settings"]["budget"] == "fast"

    def config(row):
        return json.loads((tmp_path / experiments.slug(row) / "phase1" / "config.json").read_text())
    # each row trained the configuration its name says
    lsd = config("StableLSD")
    assert (lsd["model"]["recon"], lsd["model"]["semantic"], lsd["model"]["instance"]) == (True, False, False)
    assert lsd["args"]["data"] == str(tmp_path / "data_real")
    dino = config("DINOSAUR")["model"]
    assert (dino["recon"], dino["semantic"], dino["instance"]) == (False, False, True)
    # "DINOSAUR, decoder masks" is the DINOSAUR run scored by the argmax of its MLP decoder's alpha masks
    from glass import slot_labels
    from infra.checkpoint import load_checkpoint_model
    model, _ = load_checkpoint_model(tmp_path / "dinosaur" / "phase1")
    scenes = [world.ToyScenes("val")[i] for i in range(8)]
    images = torch.stack([s["image"] for s in scenes])
    with torch.no_grad():
        torch.manual_seed(0)
        enc = model.eval().encode(images)
        alpha = model.mlp_decoder(enc.slots)[1].reshape(enc.masks.shape)  # (B, K, h, w)
    by_hand = metrics.score_masks(slot_labels(alpha, 64), torch.stack([s["instance"] for s in scenes]),
                                  torch.stack([s["semantic"] for s in scenes]))
    decoder_row = tables["tab2"][BASELINE_INDEX["DINOSAUR, decoder masks"]]
    assert decoder_row["mbo_i"] == pytest.approx(metrics.summarize(by_hand["mbo_i"]).mean)
    assert config("StableLSD-BBox")["model"]["slot_prior"] == "boxes"
    assert config("StableLSD-Dynamic")["model"]["slot_prior"] == "count"
    assert config("GLASS")["model"]["slot_prior"] == "none"
    assert config("+ semantic, seed 0")["model"]["instance"] is False
    assert config("GLASS, MAE encoder")["model"]["encoder"] == str(tmp_path / "encoders" / "mae" / "encoder")
    assert json.loads((tmp_path / "encoders" / "mae" / "done.json").read_text())["steps"] == 2
    assert config("StableLSD, random encoder")["model"]["encoder"] == str(tmp_path / "encoders" / "random" / "encoder")
    assert config("GLASS, λi 0.1")["model"]["lambda_instance"] == 0.1
    assert (tmp_path / "compose_examples.png").exists()
    measures = json.loads((tmp_path / "measures.json").read_text())
    assert measures["compose: GLASS"]["remove_edits"] == measures["compose: GLASS"]["add_edits"] == 2
    assert measures["compose: GLASS, random slot"]["choice"] == "random"
    probe = measures["tab8: no features"]
    assert (probe["class_acc"], probe["centre_mse"]) == (probe["class_acc_floor"], probe["centre_mse_floor"])
    felz = config("GLASS, Felzenszwalb masks")
    assert felz["model"]["instance"] is False and felz["model"]["lambda_semantic"] == 1.0
    # GLASS† prompts are the scenes' ground-truth class names; GLASS's are captions
    from toy.world import class_names_prompt, make_scene
    dagger = [json.loads(line) for line in (tmp_path / "data_dagger" / "items-rank0.jsonl").read_text().splitlines()]
    for rec in dagger:
        names_ = class_names_prompt(make_scene("train", rec["index"]).classes)
        assert rec["caption"] == names_ and rec["prompt"] == f"{names_} ; {' '.join(rec['classes'])}"
    # Tab. 6c's masks are scikit-image's Felzenszwalb segments of GLASS's own generated images
    from skimage.segmentation import felzenszwalb
    source, segmented = PseudoGTDataset(tiny_dataset), PseudoGTDataset(tmp_path / "data_felzenszwalb")
    for i in (0, 5):
        assert torch.equal(segmented[i]["image"], source[i]["image"])
        image = (source[i]["image"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        expected = baseline_data.largest_segments(felzenszwalb(image, **baseline_data.FELZENSZWALB), source.num_classes)
        assert torch.equal(segmented[i]["mask"], torch.from_numpy(expected).long())
    rows = (tmp_path / "rows.json").read_text()
    same = lambda a: json.dumps(a, sort_keys=True)  # NaN-safe: JSON writes every NaN alike
    assert same(experiments.run_tables(tmp_path, "fast", tiny_dataset, extra)) == same(tables)  # read back, no retraining
    assert (tmp_path / "rows.json").read_text() == rows
    # --only adds to the tables already written with the same settings
    again = experiments.run_tables(tmp_path, "fast", tiny_dataset, extra, only=["tab9"])
    assert same(again) == same(tables)
    assert list(json.loads((tmp_path / "tables.json").read_text())) == ["settings", *tables]
    with pytest.raises(ValueError, match="unknown tables"):
        experiments.run_tables(tmp_path, "fast", tiny_dataset, extra, only=["tab11"])
    # --seeds repeats the trained rows of Tab. 2–4 (mean and population std over the seeds' runs); the floors stay
    seeded = {r["row"]: r for r in experiments.run_tables(tmp_path, "fast", tiny_dataset, extra, only=["tab2"],
                                                        seeds=[0, 1])["tab2"]}
    runs = json.loads((tmp_path / "rows.json").read_text())
    for row, other in (("GLASS", "all three, seed 1"), ("DINOSAUR", "DINOSAUR, seed 1")):
        a, b = runs[row]["val"]["miou_i"], runs[other]["val"]["miou_i"]
        assert seeded[row]["seeds"] == 2
        assert seeded[row]["miou_i"] == pytest.approx((a + b) / 2)
        assert seeded[row]["miou_i_std"] == pytest.approx(abs(a - b) / 2)
    dino1 = config("DINOSAUR, seed 1")
    assert (dino1["args"]["seed"], dino1["model"]["semantic"], dino1["model"]["instance"]) == (1, False, True)
    assert config("all three, seed 1")["args"]["seed"] == 1  # GLASS's seed 1 is Tab. 6a's "all three, seed 1"
    assert "miou_i_std" not in seeded["k-means, pixels"]
    assert seeded["k-means, pixels"]["miou_i"] == tables["tab2"][-1]["miou_i"]
    assert json.loads((tmp_path / "tables.json").read_text())["settings"]["row_seeds"] == [0, 1]
    assert "±" in (tmp_path / "tables.md").read_text()
    with pytest.raises(ValueError, match="--seeds"):
        experiments.run_tables(tmp_path, "fast", tiny_dataset, extra + ["--seed", "1"], only=["tab2"], seeds=[0, 1])
    with pytest.raises(ValueError, match="--seeds"):
        experiments.run_tables(tmp_path, "fast", tiny_dataset, extra + ["--seed=1"], only=["tab2"], seeds=[0, 1])


def test_largest_segments_by_hand():
    seg = np.array([[7, 7, 7, 2],
                    [7, 7, 3, 2],
                    [9, 9, 3, 5]])  # areas: 7 → 5, 2 → 2, 3 → 2, 9 → 2, 5 → 1
    mask = baseline_data.largest_segments(seg, 2)
    assert mask.tolist() == [[0, 0, 0, 1],
                             [0, 0, 2, 1],
                             [255, 255, 2, 255]]  # ties by id: 2 before 3 before 9; 9 and 5 left out


def test_slug_names_run_folders():
    assert [experiments.slug(n) for n in ("GLASS†", "+ semantic, seed 1", "GLASS, MAE encoder")] == \
        ["glass_dagger", "semantic_seed_1", "glass_mae_encoder"]
