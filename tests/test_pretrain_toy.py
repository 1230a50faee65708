"""The toy models: the tiny-budget pretraining writes folders the libraries' own loaders open, offline; the shipped
folders in toy_models/ load the same way and are small."""
from pathlib import Path

import pytest
import torch

import pretrain_toy as pt

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "toy_models"


def load_with_library_loaders(folder: Path):
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer, Dinov2Model
    # weights are stored in fp16; dtype=float32 loads them for the CPU, as for SD's fp16 variants
    pipe = StableDiffusionPipeline.from_pretrained(folder / "sd", safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False, dtype=torch.float32)
    enc = Dinov2Model.from_pretrained(folder / "encoder", dtype=torch.float32)
    tok = CLIPTokenizer.from_pretrained(folder / "sd" / "tokenizer")
    return pipe, enc, tok


def check_models(folder: Path):
    pipe, enc, tok = load_with_library_loaders(folder)
    # the tokenizer has one token per world word; other words fall back to byte tokens
    for word in ("circle", "crosses", "plus", "checkered", ";"):
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word
    assert len(tok("zebra", add_special_tokens=False).input_ids) > 1
    # the UNet cross-attends at 16×16 and 8×8 latents of a 64-px image
    assert pipe.unet.config.sample_size == 16 and pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    img = pipe("a red ball ; circle", height=64, width=64, num_inference_steps=2, output_type="pt",
               generator=torch.Generator().manual_seed(0)).images
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()
    lat = pipe.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert lat.shape == (1, 4, 16, 16)
    out = enc(pixel_values=torch.zeros(1, 3, 64, 64)).last_hidden_state
    assert out.shape[1] == 1 + 16 * 16, "16×16 patch tokens plus CLS at 64 px"
    assert pt.load_classifier(folder)(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_tiny_budget_pretraining_writes_loadable_folders(tiny_models):
    check_models(tiny_models)
    log = (tiny_models / "training_log.json").read_text()
    assert '"unet"' in log and '"encoder"' in log and '"vae"' in log


def test_shipped_models_load_offline_and_are_small():
    if not (SHIPPED / "sd" / "unet").exists():
        pytest.fail("toy_models/ is missing: the shipped models must be committed (python pretrain_toy.py ...)")
    check_models(SHIPPED)
    assert pt.folder_size_mb(SHIPPED) <= 30.0


def test_patchify_order_matches_vit_tokens():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    p = pt.patchify(x, 4)
    assert p.shape == (2, 4, 48)
    assert torch.equal(p[0, 1].reshape(3, 4, 4), x[0, :, 0:4, 4:8])  # token 1 = row 0, column 1
    assert torch.equal(p[1, 2].reshape(3, 4, 4), x[1, :, 4:8, 0:4])


def test_class_token_positions():
    tok = pt.build_tokenizer(40)
    prompt, prefix = pt.make_prompt("full", "a red ball and a box", "circle square")
    ids = tok(prompt).input_ids
    pos = pt.class_token_positions(tok, prefix, ["circle", "square"])
    assert [tok.convert_ids_to_tokens(ids[p[0]]) for p in pos] == ["circle</w>", "square</w>"]
