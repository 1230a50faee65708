"""Tests of glass.py on tiny models: loss terms, what trains in each phase, generate / compose."""
import math

import pytest
import torch
import torch.nn.functional as F

import downstream
from conftest import tiny_glass_config
from glass import GLASS

ROOT = __import__('pathlib').Path(__file__).resolve().parent.parent


def batch(b=3, has_classes=(True, True, False), seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, 5, (b, 64, 64), generator=g)
    mask[0, :4] = 255  # some ignore pixels
    return {"image": torch.rand(b, 3, 64, 64, generator=g), "mask": mask, "has_classes": torch.tensor(has_classes)}


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


@pytest.mark.parametrize("phase", [1, 2])
def test_one_step_trains_only_what_the_phase_trains(tiny_models, phase):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models))
    assert model.slot_module.slot_attention.folded and model.mlp_decoder.factorised  # the fast forms train
    groups = model.param_groups(phase, 1e-2, 1e-2)
    opt = torch.optim.AdamW(groups)
    before = {name: snapshot(getattr(model, name)) for name in ("encoder", "vae", "unet", "slot_module", "mlp_decoder")}
    out = model.losses(batch(), torch.Generator().manual_seed(1))
    for term in ("total", "recon", "semantic", "instance"):
        assert torch.isfinite(getattr(out, term)), term
    assert out.recon > 0 and out.semantic > 0 and out.instance > 0
    out.total.backward()
    if phase == 1:
        assert all(p.grad is None for p in model.unet.parameters()), "frozen UNet gets no gradient"
    # slots receive gradient from the recon loss through the frozen UNet (phase 1 too)
    opt.step()
    assert changed(before["encoder"], model.encoder) == []
    assert changed(before["vae"], model.vae) == []
    assert len(changed(before["slot_module"], model.slot_module)) == len(before["slot_module"])
    assert len(changed(before["mlp_decoder"], model.mlp_decoder)) == len(before["mlp_decoder"])
    unet_changed = changed(before["unet"], model.unet)
    assert (unet_changed == []) if phase == 1 else (len(unet_changed) > 0)


def test_recon_loss_reaches_the_slots_through_the_frozen_unet(tiny_models):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models, semantic=False, instance=False))
    model.param_groups(1, 1e-3, 1e-3)
    out = model.losses(batch(), torch.Generator().manual_seed(1))
    out.total.backward()
    assert model.slot_module.out_proj.weight.grad.abs().sum() > 0
    assert model.slot_module.slot_attention.to_q.weight.grad.abs().sum() > 0
    assert model.mlp_decoder.mlp[0].weight.grad is None  # instance term off: the MLP decoder is unused


def test_semantic_term_absent_for_samples_without_classes(tiny_models):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models))
    out = model.losses(batch(has_classes=(True, False, False)), torch.Generator().manual_seed(1))
    assert out.semantic_present.tolist() == [True, False, False]
    out = model.losses(batch(has_classes=(False, False, False)), torch.Generator().manual_seed(1))
    assert not out.semantic_present.any() and out.semantic.item() == 0.0
    # images without classes contribute nothing: the loss equals that of the first image alone
    model.config.recon = model.config.instance = False
    b = batch(has_classes=(True, False, False))
    torch.manual_seed(3)
    full = model.losses(b).semantic
    torch.manual_seed(3)  # the same slot-init noise for image 0 (its K·D values come first)
    alone = model.losses({k: v[:1] for k, v in b.items()}).semantic
    assert full.item() > 0
    torch.testing.assert_close(full, alone)


def test_ablation_switches_zero_their_terms(tiny_models):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models, recon=False, semantic=False))
    out = model.losses(batch())
    assert float(out.recon.detach()) == 0 and float(out.semantic.detach()) == 0 and out.instance > 0
    torch.testing.assert_close(out.total, 0.9 * out.instance)


def test_generate_and_compose_share_the_initial_noise(tiny_models):
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models)).eval()
    enc = model.encode(batch()["image"])
    assert enc.cond.shape == (3, 4, model.unet.config.cross_attention_dim)
    original, same = downstream.compose(model, enc.cond[:1], remove=[], num_steps=3, seed=5)
    assert original.shape == (1, 3, 64, 64)
    assert torch.equal(original, same), "no edit + same noise = the same image"
    _, removed = downstream.compose(model, enc.cond[:1], remove=[0], num_steps=3, seed=5)
    _, added = downstream.compose(model, enc.cond[:1], add=enc.cond[1, :2], num_steps=3, seed=5)
    assert not torch.equal(original, removed) and not torch.equal(original, added)
    a = downstream.generate(model, enc.cond[:1], torch.Generator().manual_seed(5), num_steps=3)
    torch.testing.assert_close(a, original)
    with pytest.raises(ValueError, match=r"\(1, K, D_ctx\)"):
        downstream.compose(model, enc.cond, remove=[0])


def test_bad_images_raise(tiny_models):
    model = GLASS(tiny_glass_config(tiny_models))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.encode(torch.rand(3, 64, 64))


def test_model_loading_is_quiet_and_leaves_progress_bars_as_they_were(tiny_models):
    """Building a model prints no progress bar per loaded model; run in a fresh process with bars switched on (the
    test session switches tqdm off)."""
    import os
    import subprocess
    import sys
    code = f"""
import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
from pathlib import Path
from diffusers.utils import logging as d
from transformers.utils import logging as t
from conftest import tiny_glass_config
import glass, infra.loading
glass.GLASS(tiny_glass_config(Path({str(tiny_models)!r})))
assert t.is_progress_bar_enabled() and d.is_progress_bar_enabled()
with infra.loading.quiet_loading():
    from transformers import Dinov2Model
print("CONTROL", file=sys.stderr, flush=True)
Dinov2Model.from_pretrained({str(tiny_models / 'encoder')!r})  # the control: a plain load shows its bar
"""
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    quiet, control = out.stderr.split("CONTROL")
    assert "Loading" not in quiet and "requires torchvision" not in quiet, quiet
    assert "Loading weights" in control  # bars are on in this process: the check above could fail


def test_the_model_does_not_write_into_the_config_it_was_given(tiny_models):
    cfg = tiny_glass_config(tiny_models)
    before = cfg.to_json()
    model = GLASS(cfg)
    assert cfg.to_json() == before
    assert model.config.slots.input_dim == model.encoder.model.config.hidden_size != cfg.slots.input_dim


def diffusers_pipeline(model):
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline(vae=model.vae, text_encoder=None, tokenizer=None, unet=model.unet,
                                   scheduler=DDIMScheduler.from_config(model.scheduler.config), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_generate_matches_diffusers_pipeline_with_and_without_guidance(tiny_models):
    """Parity with diffusers' own StableDiffusionPipeline driven by prompt_embeds: the same images without
    guidance, and with guidance when the unconditional branch is zero tokens (diffusers' negative_prompt_embeds)."""
    model = GLASS(tiny_glass_config(tiny_models, uncond="zeros")).eval()
    cond = model.encode(torch.rand(2, 3, 64, 64)).cond
    pipe = diffusers_pipeline(model)
    for g in (1.0, 3.0):
        ours = downstream.generate(model, cond, torch.Generator().manual_seed(1), num_steps=3, guidance_scale=g)
        kw = {"negative_prompt_embeds": torch.zeros_like(cond)} if g > 1 else {}
        ref = pipe(prompt_embeds=cond, height=64, width=64, num_inference_steps=3, guidance_scale=g,
                   generator=torch.Generator().manual_seed(1), output_type="pt", **kw).images
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_unconditional_branch_is_the_empty_prompt_embedding(tiny_models):
    from transformers import CLIPTextModel, CLIPTokenizer
    model = GLASS(tiny_glass_config(tiny_models)).eval()  # uncond="empty_prompt", the authors' choice
    cond = model.encode(torch.rand(2, 3, 64, 64)).cond
    tok = CLIPTokenizer.from_pretrained(tiny_models / "sd" / "tokenizer")
    text = CLIPTextModel.from_pretrained(tiny_models / "sd" / "text_encoder")
    ids = tok([""], padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
    expected = text(ids).last_hidden_state.expand(2, -1, -1)  # (2, 77, D)
    torch.testing.assert_close(downstream.unconditional(model, cond), expected)
    with_prompt = downstream.generate(model, cond, torch.Generator().manual_seed(1), num_steps=3, guidance_scale=3.0)
    model.config = model.config.__class__(**{**model.config.__dict__, "uncond": "zeros"})
    with_zeros = downstream.generate(model, cond, torch.Generator().manual_seed(1), num_steps=3, guidance_scale=3.0)
    assert not torch.allclose(with_prompt, with_zeros)


def test_slot_prior_by_hand():
    from experiments.slot_priors import slot_prior
    inst = torch.zeros(2, 8, 8, dtype=torch.long)
    inst[0, 1:3, 2:6] = 4  # rows 1–2, columns 2–5
    inst[0, 6:, 0:1] = 2  # rows 6–7, column 0
    inst[1, 0, 0] = 1  # one pixel
    boxes, active = slot_prior(inst, num_slots=4)
    assert active.tolist() == [[True, True, True, False], [True, True, False, False]]
    assert boxes[0].tolist() == [[0, 0, 1, 1], [0, 6 / 8, 1 / 8, 1], [2 / 8, 1 / 8, 6 / 8, 3 / 8], [0, 0, 0, 0]]
    assert boxes[1, 1].tolist() == [0, 0, 1 / 8, 1 / 8]
    _, few = slot_prior(inst, num_slots=2)  # more objects than K − 1: the smallest ids are kept
    assert few.tolist() == [[True, True], [True, True]]


def test_slot_priors_start_slots_from_boxes_and_switch_slots_off(tiny_models):
    from experiments.slot_priors import slot_prior
    from infra.checkpoint import build_model
    torch.manual_seed(0)
    inst = torch.zeros(2, 64, 64, dtype=torch.long)
    inst[0, 10:30, 10:30], inst[0, 40:60, 5:20], inst[1, 0:20, 30:60] = 1, 2, 1
    images = torch.rand(2, 3, 64, 64)
    slots = {"num_slots": 4, "iters": 2, "dim": 16, "mlp_hidden": 16}
    for prior in ("count", "boxes"):
        with pytest.raises(ValueError, match="build_model"):  # GLASS itself is never told the objects
            GLASS(tiny_glass_config(tiny_models, slots=slots, slot_prior=prior))
        model = build_model(tiny_glass_config(tiny_models, slots=slots, slot_prior=prior))
        assert type(model).__name__ == "SlotPriorGLASS"
        with pytest.raises(ValueError, match="instance maps"):
            model.encode(images)
        enc = model.encode(images, instance=inst)
        # inactive slots (objects + 1 .. K) win no token
        assert enc.attn[0, 3].abs().max() == 0 and enc.attn[1, 2:].abs().max() == 0
        assert torch.allclose(enc.attn.sum(1), torch.ones(2, enc.attn.shape[-1]))
        if prior == "boxes":  # the initial slots are the MLP of the boxes, and the box MLP trains with the slots
            feats = model.encoder(images)
            boxes, mask = slot_prior(inst, 4)
            out = model.slot_module(feats, slots=model.box_init(boxes), slot_mask=mask)
            assert torch.allclose(out.init, model.box_init.mlp(boxes))
            assert torch.allclose(out.attn, enc.attn)
            trained = {id(p) for g in model.param_groups(1, 1e-3, 1e-3) for p in g["params"]}
            assert all(id(p) in trained for p in model.box_init.parameters())
            state = model.trainable_state(1)
            assert any(k.startswith("box_init.") for k in state)
            with pytest.raises(ValueError, match="box_init"):  # a BBox checkpoint into a model without the prior
                GLASS(tiny_glass_config(tiny_models, slots=slots)).load_trainable_state(state)
    with pytest.raises(ValueError, match="slot_prior"):
        tiny_glass_config(tiny_models, slot_prior="gt")


def test_the_textbook_forms_are_config_fields_with_the_same_losses(tiny_models):
    """GLASSConfig.decoder_factorised and GLASSSlotConfig.folded switch the model to the textbook forms; the same
    weights then give the same loss terms (the forms differ only in float summation order)."""
    torch.manual_seed(0)
    slots = {"num_slots": 4, "iters": 2, "dim": 16, "mlp_hidden": 16}  # the toy preset's learned init: no sampling
    fast = GLASS(tiny_glass_config(tiny_models, slots=slots))
    plain = GLASS(tiny_glass_config(tiny_models, decoder_factorised=False, slots={**slots, "folded": False}))
    assert not plain.mlp_decoder.factorised and not plain.slot_module.slot_attention.folded
    plain.load_trainable_state(fast.trainable_state(1))
    a = fast.losses(batch(), torch.Generator().manual_seed(1))
    b = plain.losses(batch(), torch.Generator().manual_seed(1))
    for term in ("recon", "semantic", "instance"):
        assert torch.allclose(getattr(a, term), getattr(b, term), atol=1e-5), term


def test_mlp_decoder_textbook_and_factorised_forms_agree():
    """The factorised first layer GLASS trains with gives the textbook decoder's outputs and gradients (1e-5), and
    the textbook form is the DINOSAUR formula written out by hand here: MLP of slot + position, alpha softmaxed
    over slots, alpha-weighted sum of the features."""
    from glass import MLPDecoder
    torch.manual_seed(0)
    plain = MLPDecoder(slot_dim=8, out_dim=6, num_tokens=9, hidden=16, layers=3, pos_std=1.0, factorised=False)
    fast = MLPDecoder(slot_dim=8, out_dim=6, num_tokens=9, hidden=16, layers=3, pos_std=1.0, factorised=True)
    fast.load_state_dict(plain.state_dict())
    slots = torch.randn(2, 4, 8)
    h = slots[:, :, None, :] + plain.pos  # (2, 4, 9, 8)
    for i in range(0, len(plain.mlp) - 1, 2):
        h = torch.relu(h @ plain.mlp[i].weight.T + plain.mlp[i].bias)
    out = h @ plain.mlp[-1].weight.T + plain.mlp[-1].bias  # (2, 4, 9, 7)
    ref_alpha = torch.exp(out[..., -1]) / torch.exp(out[..., -1]).sum(dim=1, keepdim=True)
    ref_recon = (ref_alpha[..., None] * out[..., :-1]).sum(dim=1)
    weight = torch.randn(2, 9, 6)
    grads = []
    for dec in (plain, fast):
        s = slots.clone().requires_grad_(True)
        recon, alpha = dec(s)
        torch.testing.assert_close(alpha, ref_alpha, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(recon, ref_recon, atol=1e-5, rtol=1e-5)
        ((recon * weight).sum() + alpha[:, 0].sum()).backward()
        grads.append([s.grad] + [p.grad for p in dec.parameters()])
    for g_fast, g_plain in zip(*grads):
        assert g_plain.abs().sum() > 0
        torch.testing.assert_close(g_fast, g_plain, atol=1e-5, rtol=1e-5)


def test_larger_images_are_shrunk_with_antialiasing_for_the_encoder_and_the_vae(tiny_models):
    """A 768-px generated image reaches the 448-px encoder and the 256-px VAE low-pass filtered: on two-pixel
    stripes, plain resampling keeps black and white columns while an antialiased one greys them."""
    import torch.nn.functional as F
    model = GLASS(tiny_glass_config(tiny_models)).eval()
    images = torch.zeros(1, 3, 128, 128)
    images[..., (torch.arange(128) // 2) % 2 == 0] = 1.0  # two-pixel stripes at twice the model's 64 px
    smooth = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(model.latent_moments(images), model.vae.encode(smooth * 2 - 1).latent_dist.parameters)
    bicubic = F.interpolate(images, size=(64, 64), mode="bicubic", align_corners=False, antialias=True)
    torch.testing.assert_close(model.encoder(images), model.encoder(bicubic))
    aliased = F.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
    assert set(aliased.unique().tolist()) == {0.0, 1.0}  # without a low-pass the stripes survive at full contrast
    interior = smooth[..., 1:-1]
    assert (interior > 0.2).all() and (interior < 0.8).all()  # with it they are filtered towards grey


def cubic_resample_1d(values: torch.Tensor, scale: float, n_out: int) -> torch.Tensor:
    """Keys cubic convolution (a = −0.75, PyTorch's) of a 1-D signal, written out: output j samples source
    coordinate (j + 0.5) / scale − 0.5 from its four neighbours, indices clamped at the border."""
    def w(x):
        x, a = abs(x), -0.75
        return ((a + 2) * x - (a + 3)) * x * x + 1 if x <= 1 else ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    out = []
    for j in range(n_out):
        src = (j + 0.5) / scale - 0.5
        i0 = math.floor(src)
        t = src - i0
        out.append(sum(w(t - k) * float(values[min(max(i0 + k, 0), len(values) - 1)]) for k in (-1, 0, 1, 2)))
    return torch.tensor(out)


def test_hub_position_interpolation_samples_where_torch_hub_dinov2_does():
    """A 37×37 position embedding whose first channel varies along columns, resized for 448 px (32×32 tokens of
    14 px): the torch-hub rule samples source column (j + 0.5)·37/32.1 − 0.5 (scale factor (32 + 0.1) / 37),
    transformers' (j + 0.5)·37/32 − 0.5 (size 32); both checked against cubic convolution written out."""
    from transformers import Dinov2Config, Dinov2Model
    from glass import hub_pos_encoding
    model = Dinov2Model(Dinov2Config(image_size=518, patch_size=14, hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, mlp_ratio=1))
    profile = torch.randn(37)
    grid = torch.zeros(1, 1 + 37 * 37, 8)
    grid[0, 1:, 0] = profile.repeat(37)  # row-major: every row the same profile along the columns
    model.embeddings.position_embeddings.data.copy_(grid)
    tokens = torch.zeros(1, 1 + 32 * 32, 8)
    hub = hub_pos_encoding(model.embeddings, tokens, 448, 448)[0, 1:, 0].view(32, 32)
    hf = model.embeddings.interpolate_pos_encoding(tokens, 448, 448)[0, 1:, 0].view(32, 32)
    torch.testing.assert_close(hub[5], cubic_resample_1d(profile, 32.1 / 37, 32), atol=1e-5, rtol=0)
    torch.testing.assert_close(hf[5], cubic_resample_1d(profile, 32 / 37, 32), atol=1e-5, rtol=0)
    assert (hub - hf).abs().max() > 0.05  # the two rules sample other points
    assert torch.equal(hub_pos_encoding(model.embeddings, torch.zeros(1, 1 + 37 * 37, 8), 518, 518),
                       model.embeddings.position_embeddings)  # the pretrained grid is used as it is


@pytest.mark.parametrize("factorised", [False, True])
def test_instance_term_at_a_subset_of_positions_is_the_full_term_there(factorised):
    """The MLP decoder at M of N positions gives the full output's values at them (alpha normalises over slots, not
    positions), and the subset MSEs of a partition of the N positions average to the full MSE: the estimate is
    unbiased for a uniformly drawn subset."""
    from glass import MLPDecoder
    torch.manual_seed(0)
    dec = MLPDecoder(8, 6, 16, 32, 2, pos_std=1.0, factorised=factorised)
    slots, target = torch.randn(3, 4, 8), torch.randn(3, 16, 6)
    full, alpha = dec(slots)
    where = torch.tensor([3, 0, 11, 7])
    part, part_alpha = dec(slots, where)
    torch.testing.assert_close(part, full[:, where], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(part_alpha, alpha[:, :, where], atol=1e-6, rtol=1e-5)
    perm = torch.randperm(16).view(4, 4)  # a partition into four subsets of four positions
    estimates = torch.stack([F.mse_loss(dec(slots, p)[0], target[:, p]) for p in perm])
    torch.testing.assert_close(estimates.mean(), F.mse_loss(full, target), atol=1e-6, rtol=1e-5)
