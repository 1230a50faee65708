"""Tests of downstream.py against independent references: SSIM against scikit-image, the Fréchet distance against
its closed form, the probes on a planted linear property, object matching by hand, and the edits end to end."""
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn as nn

import downstream
from conftest import tiny_glass_config
from glass import GLASS


class Identity(nn.Module):
    """Features = the input vector itself (so the Fréchet distance is over known samples)."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def frechet(x, y):
    fd = downstream.frechet_metric(Identity(x.shape[1]))
    fd.update(x, real=True)
    fd.update(y, real=False)
    return float(fd.compute())


def test_frechet_distance_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g, dtype=torch.float64)
    y = torch.randn(300, 3, generator=g, dtype=torch.float64) @ torch.tensor([[1.0, 0.3, 0], [0, 0.5, 0], [0, 0, 2.0]],
                                                                              dtype=torch.float64) + 0.7
    assert frechet(x, x) == pytest.approx(0.0, abs=1e-6)
    delta = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert frechet(x, x + delta) == pytest.approx(float(delta @ delta), rel=1e-6)  # same covariance: ‖δ‖²
    mx, my = x.mean(0).numpy(), y.mean(0).numpy()
    cx, cy = np.cov(x.numpy(), rowvar=False), np.cov(y.numpy(), rowvar=False)
    closed = ((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * scipy.linalg.sqrtm(cx @ cy).real)
    assert frechet(x, y) == pytest.approx(closed, rel=1e-5)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 48, 48, generator=g, dtype=torch.float64)
    b = (a + 0.15 * torch.randn(1, 3, 48, 48, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(ssim(a, a, data_range=1.0)) == pytest.approx(1.0)
    ref = structural_similarity(a[0].numpy(), b[0].numpy(), data_range=1.0, channel_axis=0, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    # the per-pixel SSIM maps agree wherever the 11×11 window fits; torchmetrics' mean keeps a wider border
    ssim_map = ssim(a, b, data_range=1.0, return_full_image=True)[1]
    assert float(ssim_map[..., 5:-5, 5:-5].mean()) == pytest.approx(ref, abs=1e-10)
    assert float(ssim(a, b, data_range=1.0)) == pytest.approx(ref, abs=2e-3)


def test_probes_recover_a_planted_linear_property():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8))
    w = rng.normal(size=(8, 3))
    cls = (x @ w).argmax(1)
    ctr = x[:, :2] @ np.array([[0.2, -0.1], [0.05, 0.3]]) + 0.5
    out = downstream.fit_probes(x[:500], cls[:500], ctr[:500], x[500:], cls[500:], ctr[500:])
    assert out["class_acc"] > 0.9 and out["class_acc_floor"] < 0.6
    assert out["centre_mse"] < 1e-4 < out["centre_mse_floor"]
    noise = rng.normal(size=(600, 8))  # features that say nothing: the probe falls to its floor
    out = downstream.fit_probes(noise[:500], cls[:500], ctr[:500], noise[500:], cls[500:], ctr[500:])
    assert out["centre_mse"] >= 0.9 * out["centre_mse_floor"]


def test_match_objects_by_hand():
    inst = torch.zeros(1, 8, 8, dtype=torch.long)
    inst[0, 0:4, 0:4] = 1  # object 1: rows 0–3, columns 0–3, class 2 (id 3)
    inst[0, 6:8, 2:8] = 2  # object 2: rows 6–7, columns 2–7, class 0 (id 1)
    sem = torch.zeros_like(inst)
    sem[inst == 1], sem[inst == 2] = 3, 1
    slot_ids = torch.zeros(1, 8, 8, dtype=torch.long)  # slot 0 background
    slot_ids[0, 0:4, 0:3] = 2  # slot 2 covers 12 of object 1's 16 pixels
    slot_ids[0, 5:8, 2:8] = 1  # slot 1 covers object 2 and one more row
    slots = torch.arange(3.0)[None, :, None].expand(1, 3, 2)  # slot k's vector is (k, k)
    m = downstream.match_objects(slot_ids, inst, sem, slots)
    assert m.object_id.tolist() == [2, 1] and m.slot_index.tolist() == [1, 2]  # sorted by slot
    assert m.classes.tolist() == [0, 2]
    assert m.slots[:, 0].tolist() == [1.0, 2.0]
    assert torch.allclose(m.iou, torch.tensor([12 / 18, 12 / 16]))
    assert torch.allclose(m.centres, torch.tensor([[5 / 8, 7 / 8], [2 / 8, 2 / 8]]))  # box centres (x, y)


def test_generation_quality_of_the_scenes_themselves_and_of_unrelated_ones():
    same = downstream.generation_quality(lambda batch, b: batch["image"], "val", 8, batch_size=4)
    # SSIM's variances are E[x²] − E[x]² in float32: over the world's flat backgrounds they cancel to ~1e-4, not 0
    assert same["ssim"] == pytest.approx(1.0, abs=1e-3) and same["fd"] == pytest.approx(0.0, abs=1e-3) and same["psnr"] > 100
    other = downstream.generation_quality(downstream.unrelated_scenes("val", offset=8), "val", 8, batch_size=4)
    assert other["psnr"] < 30 and other["ssim"] < 0.9 and other["fd"] > 0


def test_edits_run_on_a_tiny_model_with_the_same_noise(tiny_models):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models, slots={"num_slots": 4, "iters": 2, "dim": 16, "mlp_hidden": 16,
                                                        "learned_init": True}))  # deterministic slots
    edits = downstream.compositional_edits(model, "val", 2, num_steps=2, num_examples=1)
    r = edits.rates
    assert r["remove_edits"] == 2 and r["add_edits"] == 2 and 0 <= r["slot_iou"] <= 1
    assert [e[0] for e in edits.examples] == ["remove", "add"]
    # the original of an edit is the plain decoding with the scene's seed
    batch = downstream._scenes("val", [0])
    cond = model.encode(batch["image"]).cond
    plain = downstream.generate(model, cond, torch.Generator().manual_seed(0), 2)
    assert torch.allclose(edits.examples[0][3], plain[0])
    with pytest.raises(ValueError, match="choice"):
        downstream.compositional_edits(model, "val", 1, choice="best")


def test_missing_inception_or_lpips_weights_say_so():
    import importlib.util
    if importlib.util.find_spec("torch_fidelity") is None:
        with pytest.raises(RuntimeError, match="FID over Inception features is not available here"):
            downstream.frechet_metric("inception")
    if importlib.util.find_spec("torchvision") is None:
        with pytest.raises(RuntimeError, match="LPIPS is not available here"):
            downstream.perceptual_metric()
