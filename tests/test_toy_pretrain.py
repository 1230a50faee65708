"""The toy models: the tiny-budget pretraining writes folders the libraries' own loaders open, offline; the shipped
folders in toy_models/ load the same way and are small."""
from pathlib import Path

import pytest
import torch

from toy import models, pretrain, report, tokens, world

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "toy_models"


def load_with_library_loaders(folder: Path):
    """The plain calls every diffusers / transformers user makes: no dtype argument, float32 inputs."""
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer, Dinov2Model
    pipe = StableDiffusionPipeline.from_pretrained(folder / "sd", safety_checker=None, requires_safety_checker=False)
    enc = Dinov2Model.from_pretrained(folder / "encoder")
    tok = CLIPTokenizer.from_pretrained(folder / "sd" / "tokenizer")
    return pipe, enc, tok


def check_models(folder: Path, whole_words: bool = True):
    pipe, enc, tok = load_with_library_loaders(folder)
    # the tokenizer has one token per world word (whole_words; the shipped one, built before the builder's fix,
    # splits 11 of them, "tree" included: docs/toy_world.md); every word round-trips; other words fall back to bytes
    for word in world.caption_words():
        ids = tok(word, add_special_tokens=False).input_ids
        assert tok.decode(ids).strip() == word, word
        assert len(ids) == 1 or not whole_words, word
    assert len(tok("zebra", add_special_tokens=False).input_ids) > 1
    # the UNet cross-attends at 16×16 and 8×8 latents of a 64-px image
    assert pipe.unet.config.sample_size == 16 and pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    img = pipe("a teal android ; robot", height=64, width=64, num_inference_steps=2, output_type="pt",
               generator=torch.Generator().manual_seed(0)).images
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()
    lat = pipe.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert lat.shape == (1, 4, 16, 16)
    out = enc(pixel_values=torch.zeros(1, 3, 64, 64)).last_hidden_state
    assert out.shape[1] == 1 + 16 * 16, "16×16 patch tokens plus CLS at 64 px"
    assert models.load_classifier(folder)(torch.zeros(2, 3, 64, 64)).shape == (2, len(models.CLASSES))


def test_tiny_budget_pretraining_writes_loadable_folders(tiny_models):
    check_models(tiny_models)
    log = (tiny_models / "training_log.json").read_text()
    assert '"unet"' in log and '"encoder"' in log and '"vae"' in log


def test_shipped_models_load_offline_and_are_small():
    if not (SHIPPED / "sd" / "unet").exists():
        pytest.fail("toy_models/ is missing: the shipped models must be committed (python -m toy.pretrain ...)")
    check_models(SHIPPED, whole_words=False)
    assert models.folder_size_mb(SHIPPED) <= 30.0


@pytest.mark.parametrize("folder", ["shipped", "tiny"])
def test_each_model_loads_alone_in_float32_without_a_dtype_argument(folder, tiny_models):
    """transformers keeps a checkpoint's stored dtype, diffusers loads float32: both must end up float32, so that
    each model takes float32 inputs, alone, as in the README's snippets."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, Dinov2Model
    root = SHIPPED if folder == "shipped" else tiny_models
    vae = AutoencoderKL.from_pretrained(root / "sd" / "vae")
    unet = UNet2DConditionModel.from_pretrained(root / "sd" / "unet")
    text = CLIPTextModel.from_pretrained(root / "sd" / "text_encoder")
    enc = Dinov2Model.from_pretrained(root / "encoder")
    for m in (vae, unet, text, enc):
        assert m.dtype == torch.float32, type(m).__name__
    z = vae.encode(torch.rand(1, 3, 64, 64) * 2 - 1).latent_dist.mean  # (1, 4, 16, 16)
    states = text(torch.tensor([[0, 1, 2]])).last_hidden_state  # (1, 3, D_text)
    eps = unet(z, torch.tensor([10]), encoder_hidden_states=states).sample
    assert eps.shape == z.shape == (1, 4, 16, 16) and torch.isfinite(eps).all()
    assert enc(pixel_values=torch.rand(1, 3, 64, 64)).last_hidden_state.shape[1] == 1 + 16 * 16


def test_patchify_order_matches_vit_tokens():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    p = tokens.patchify(x, 4)
    assert p.shape == (2, 4, 48)
    assert torch.equal(p[0, 1].reshape(3, 4, 4), x[0, :, 0:4, 4:8])  # token 1 = row 0, column 1
    assert torch.equal(p[1, 2].reshape(3, 4, 4), x[1, :, 4:8, 0:4])


def test_class_token_positions():
    tok = models.build_tokenizer(40)
    prompt, prefix = pretrain.make_prompt("full", "a teal android and a cottage", "house robot")
    ids = tok(prompt).input_ids
    pos = pretrain.class_token_positions(tok, prefix, ["house", "robot"])
    assert [tok.convert_ids_to_tokens(ids[p[0]]) for p in pos] == ["house</w>", "robot</w>"]


def test_instance_contrast_against_a_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=g)
    ids = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 1, 0, 1, 0, 3]])  # id 2 / 3: a single-token instance, no positives
    tau = 0.5
    per_token = []
    for b in range(2):
        z = torch.nn.functional.normalize(x[b], dim=-1)
        for i in range(6):
            others = [j for j in range(6) if j != i]
            pos = [j for j in others if ids[b, j] == ids[b, i]]
            if not pos:
                continue
            denom = torch.logsumexp(torch.stack([z[i] @ z[j] / tau for j in others]), 0)
            per_token.append(-sum(z[i] @ z[j] / tau - denom for j in pos) / len(pos))
    expected = torch.stack(per_token).mean()
    got = tokens.instance_contrast(x, ids, tau=tau)
    assert torch.allclose(got, expected, atol=1e-6)
    # tokens that are exactly their instance's code beat shuffled ones
    codes = torch.eye(4)[ids] * 5  # (2, 6, 4)
    assert tokens.instance_contrast(codes, ids) < tokens.instance_contrast(codes.flip(1), ids)


def test_patch_majority_by_hand():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2, :2] = 2  # top-left patch all 2
    labels[0, 2:, 2:] = 1
    labels[0, 3, 3] = 0  # bottom-right: three 1s, one 0
    assert tokens.patch_majority(labels, 2, 3).tolist() == [[2, 0, 0, 1]]


def test_labelled_objective_trains(tmp_path):
    pretrain.main(["--stage", "encoder", "--encoder-objective", "part", "--tiny", "--max-steps", "2", "--out",
                   str(tmp_path)])
    from transformers import Dinov2Model
    assert Dinov2Model.from_pretrained(tmp_path / "encoder").config.hidden_size == 16
    assert "(instance, part)" in (tmp_path / "training_log.json").read_text()


def test_class_set_counts_by_hand():
    items = [{"classes": torch.tensor([0, 2, -1])}, {"classes": torch.tensor([1, -1, -1])}]
    pred = torch.tensor([[True, False, False, True], [False, True, False, False]])
    counts = report.class_set_counts(pred, items)
    assert counts.tolist() == [2, 1, 1, 1]  # tp: house, tree; fp: car; fn: flower (classes 0–3); image 2 exactly right
    assert report.f1_of(counts) == 2 * 2 / (2 * 2 + 1 + 1)


def test_mae_objective_still_trains(tmp_path):
    pretrain.main(["--stage", "encoder", "--encoder-objective", "mae", "--tiny", "--max-steps", "2", "--out", str(tmp_path)])
    from transformers import Dinov2Model
    assert Dinov2Model.from_pretrained(tmp_path / "encoder").config.hidden_size == 16
    assert "masked-patch" in (tmp_path / "training_log.json").read_text()


def test_log_run_adds_up_resumed_runs(tmp_path):
    pretrain.log_run(tmp_path, "unet", False, {"started": "a", "steps": 10, "seconds": 5})
    pretrain.log_run(tmp_path, "unet", True, {"started": "b", "steps": 3, "seconds": 2})
    pretrain.log_run(tmp_path, "unet", True, {"started": "b", "steps": 7, "seconds": 4})  # a later save of run b
    import json
    log = json.loads((tmp_path / "training_log.json").read_text())["unet"]
    assert (log["steps"], log["seconds"], len(log["runs"])) == (17, 9, 2)
    pretrain.log_run(tmp_path, "unet", False, {"started": "c", "steps": 1, "seconds": 1})  # a fresh start forgets the past
    assert json.loads((tmp_path / "training_log.json").read_text())["unet"]["steps"] == 1


class _LookupEncoder:
    """A stand-in encoder whose 'patch tokens' are a fixed function of each patch's true class: one-hot (oracle) or
    constant (blind). The probe must read 1.0 off the first and the background share off the second."""

    def __init__(self, scenes, oracle: bool):
        self.config = type("Cfg", (), {"patch_size": 4})()
        self.table = {self.key(it["image"]): it["semantic"] for it in scenes}
        self.oracle = oracle

    @staticmethod
    def key(image: torch.Tensor) -> bytes:  # toy images are 8-bit colours: exact after rounding
        return (image * 255).round().to(torch.uint8).numpy().tobytes()

    def __call__(self, pixel_values):
        images = pixel_values * 0.25 + 0.5  # undo patch_features' normalisation
        rows = []
        for img in images:
            sem = self.table[self.key(img)]
            labels = tokens.patch_labels(sem[None], 4)[0]  # (N,)
            onehot = torch.nn.functional.one_hot(labels, len(models.CLASSES) + 1).float()
            rows.append(onehot if self.oracle else torch.ones_like(onehot))
        out = torch.stack(rows)
        return type("Out", (), {"last_hidden_state": torch.cat([out[:, :1], out], 1)})()


def test_linear_probe_against_an_oracle_and_a_blind_encoder():
    n = 24
    scenes = [world.ToyScenes("train", length=n, offset=8_000_000)[i] for i in range(n)]
    scenes += [world.ToyScenes("val", length=n)[i] for i in range(n)]
    assert tokens.linear_probe(_LookupEncoder(scenes, oracle=True), n_train=n, n_val=n, steps=200) == 1.0
    # blind: the probe can only answer the majority class; count each patch's majority label by brute force
    background = total = 0
    for it in scenes[n:]:
        sem = it["semantic"]
        for y in range(0, 64, 4):
            for x0 in range(0, 64, 4):
                counts = torch.bincount(sem[y:y + 4, x0:x0 + 4].flatten(), minlength=len(models.CLASSES) + 1)
                background += int(counts.argmax() == 0)
                total += 1
    blind = tokens.linear_probe(_LookupEncoder(scenes, oracle=False), n_train=n, n_val=n, steps=200)
    assert blind == pytest.approx(background / total, abs=1e-6)


def test_probe_ceiling_probes_on_schedule_and_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = pretrain.TrainConfig(batch_size=4, lr=1e-3, max_steps=5)
    seen = []

    def fake_probe(enc, n_train, n_val):  # what the probe is shown: the encoder as it is at that step, in eval mode
        seen.append(enc.training)
        return float(sum(p.detach().double().sum() for p in enc.parameters())) % 1.0

    monkeypatch.setattr(report, "linear_probe", fake_probe)
    points = report.probe_ceiling(models.ModelSizes.tiny(), cfg, every=2, probe_images=8)
    assert [p["step"] for p in points] == [2, 4, 5] and seen == [False, False, False]
    assert len({p["probe_acc"] for p in points}) == 3, "the encoder trains between probes"
    assert list(tmp_path.iterdir()) == []


class _PartEncoder(_LookupEncoder):
    """Tokens (instance id, 10 or 20 by part, 1) of each patch's majority instance and part: almost no spread
    within a part, more within an instance, most within an image."""

    def __init__(self, scenes):
        self.config = type("Cfg", (), {"patch_size": 4})()
        self.table = {self.key(it["image"]): (it["instance"], it["part"]) for it in scenes}

    def __call__(self, pixel_values):
        rows = []
        for img in pixel_values * 0.25 + 0.5:
            inst, part = self.table[self.key(img)]
            i = tokens.patch_majority(inst[None], 4, world.MAX_OBJECTS + 1)[0].float()
            both = torch.where(inst > 0, world.MAX_PARTS * (inst - 1) + part, 0)
            p = tokens.patch_majority(both[None], 4, world.MAX_PARTS * world.MAX_OBJECTS + 1)[0]
            rows.append(torch.stack([i, 10.0 * ((p + 1) % 2 + 1) * (p > 0), torch.ones_like(i)], -1))
        out = torch.stack(rows)
        return type("Out", (), {"last_hidden_state": torch.cat([out[:, :1], out], 1)})()


def test_token_variance_against_a_loop():
    n = 6
    scenes = [world.ToyScenes("val", length=n)[i] for i in range(n)]
    enc = _PartEncoder(scenes)
    got = tokens.token_variance(enc, n)
    sums = {"image": 0.0, "instance": 0.0, "part": 0.0, "class_part": 0.0}
    for it in scenes:  # brute force: majority labels by counting, spreads by explicit means
        x = enc(((it["image"][None] - 0.5) / 0.25)).last_hidden_state[0, 1:]  # (N, 3)
        inst, part, class_part = [], [], []
        for y in range(0, 64, 4):
            for x0 in range(0, 64, 4):
                i_cnt = torch.bincount(it["instance"][y:y + 4, x0:x0 + 4].flatten(), minlength=6)
                four = world.MAX_PARTS  # (instance, part) and (class, part) ids: four parts per group at most
                both = torch.where(it["instance"] > 0, four * (it["instance"] - 1) + it["part"], 0)
                p_cnt = torch.bincount(both[y:y + 4, x0:x0 + 4].flatten(), minlength=four * world.MAX_OBJECTS + 1)
                cp = torch.where(it["semantic"] > 0, four * (it["semantic"] - 1) + it["part"], 0)
                cp_cnt = torch.bincount(cp[y:y + 4, x0:x0 + 4].flatten(), minlength=four * len(world.CLASSES) + 1)
                inst.append(int(i_cnt.argmax()))
                part.append(int(p_cnt.argmax()))
                class_part.append(int(cp_cnt.argmax()))
        for key, ids in (("image", [0] * len(inst)), ("instance", inst), ("part", part), ("class_part", class_part)):
            for g in set(ids):
                rows = x[[j for j, v in enumerate(ids) if v == g]]
                sums[key] += float((rows - rows.mean(0)).pow(2).sum())
    expect = {k: v / (n * 256) for k, v in sums.items()}
    assert got == pytest.approx(expect, rel=1e-5)
    # (a patch whose majority part belongs to another instance than its majority instance adds a little spread)
    assert got["part"] < 0.05 * got["instance"] and got["instance"] < got["image"]
    assert got["class_part"] > got["part"]  # the fake tokens carry the instance id: instances of a class differ
