"""scripts/released.py: folders written here in the GLASS authors' layout (random weights, their parameter names) convert
into a checkpoint that loads, and the converted slot module computes what a hand-written forward of the released
module's equations computes on the same weights. A tensor mapped to the wrong role changes the output."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from scripts import released

D, K, SIDE = 12, 4, 4  # slot width = input width, slots, token grid side


def released_config(**kw):
    cfg = {"_class_name": "MultiHeadSTEVESA", "num_iterations": 3, "num_slots": K, "num_heads": 1, "input_size": D,
           "out_size": 10, "slot_size": D, "mlp_hidden_size": 20, "input_resolution": SIDE, "epsilon": 1e-8,
           "learnable_slot_init": False, "bi_level": False, "init_mlp": False}
    cfg.update(kw)
    return cfg


def random_weights(cfg, gen):
    side = cfg["input_resolution"]
    """Every tensor of the released slot module by its released name, random (so each role is distinct)."""
    d, h, o, k = cfg["slot_size"], cfg["mlp_hidden_size"], cfg["out_size"], cfg["num_slots"]
    r = lambda *s: torch.randn(*s, generator=gen) * 0.3  # noqa: E731
    c = (torch.arange(side) + 0.5) / side
    grid_y, grid_x = torch.meshgrid(c, c, indexing="xy")  # the released grid, built as the authors build it
    w = {"pos.projection.weight": r(d, 4, 1, 1), "pos.projection.bias": r(d),
         "pos.pe": torch.stack((grid_x, grid_y, 1 - grid_x, 1 - grid_y))[None],
         "in_layer_norm.weight": 1 + r(d), "in_layer_norm.bias": r(d),
         "in_mlp.0.weight": r(d, d), "in_mlp.0.bias": r(d), "in_mlp.2.weight": r(d, d), "in_mlp.2.bias": r(d),
         "norm_inputs.weight": 1 + r(d), "norm_inputs.bias": r(d), "norm_slots.weight": 1 + r(d),
         "norm_slots.bias": r(d), "norm_mlp.weight": 1 + r(d), "norm_mlp.bias": r(d),
         "project_q.weight": r(d, d), "project_k.weight": r(d, d), "project_v.weight": r(d, d),
         "gru.weight_ih": r(3 * d, d), "gru.weight_hh": r(3 * d, d), "gru.bias_ih": r(3 * d), "gru.bias_hh": r(3 * d),
         "mlp.0.weight": r(h, d), "mlp.0.bias": r(h), "mlp.2.weight": r(d, h), "mlp.2.bias": r(d),
         "out_layer_norm.weight": 1 + r(d), "out_layer_norm.bias": r(d), "out_linear.weight": r(o, d),
         "out_linear.bias": r(o)}
    if cfg["learnable_slot_init"]:
        w["slot_mu"] = r(1, k, d)
    else:
        w["slot_mu"], w["slot_log_sigma"] = r(1, 1, d), r(1, 1, d)
    return w


def write_stage1(folder, cfg, weights):
    sub = folder / released.SLOT_FOLDER
    sub.mkdir(parents=True)
    (sub / "config.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in weights.items()}, sub / "diffusion_pytorch_model.safetensors")


def hand_forward(w, cfg, feats, slots):
    """The released module's equations written out: features (B, C, h, w) + 1×1 conv of the grid, flatten, LN, MLP,
    LN, k·(D^−½), T iterations of softmax over slots, +ε, mean over inputs, GRU, residual MLP; LN, Linear."""
    ln = lambda x, p: F.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"])  # noqa: E731
    lin = lambda x, p: F.linear(x, w[p + ".weight"], w.get(p + ".bias"))  # noqa: E731
    x = feats + F.conv2d(w["pos.pe"], w["pos.projection.weight"], w["pos.projection.bias"])  # (B, C, h, w)
    x = x.flatten(2).transpose(1, 2)  # (B, h·w, C), rows first
    x = lin(torch.relu(lin(ln(x, "in_layer_norm"), "in_mlp.0")), "in_mlp.2")
    x = ln(x, "norm_inputs")
    k = F.linear(x, w["project_k.weight"]) * cfg["slot_size"] ** -0.5
    v = F.linear(x, w["project_v.weight"])
    gru = torch.nn.GRUCell(cfg["slot_size"], cfg["slot_size"])
    gru.load_state_dict({p: w["gru." + p] for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    for _ in range(cfg["num_iterations"]):
        prev = slots
        q = F.linear(ln(slots, "norm_slots"), w["project_q.weight"])
        attn = torch.einsum("bid,bsd->bis", k, q).softmax(-1)  # (B, N, K): over slots
        a = attn + cfg["epsilon"]
        a = a / a.sum(dim=-2, keepdim=True)
        updates = torch.einsum("bis,bid->bsd", a, v)
        slots = gru(updates.reshape(-1, cfg["slot_size"]), prev.reshape(-1, cfg["slot_size"])).view_as(prev)
        slots = slots + lin(torch.relu(lin(ln(slots, "norm_mlp"), "mlp.0")), "mlp.2")
    return lin(ln(slots, "out_layer_norm"), "out_linear"), attn


def converted_module(out):
    from safetensors.torch import load_file
    from slot_attention import GLASSSlotConfig, GLASSSlotModule
    info = json.loads((out / "config.json").read_text())
    module = GLASSSlotModule(GLASSSlotConfig(**info["model"]["slots"]))
    state = load_file(out / "model.safetensors")
    module.load_state_dict({k[len("slot_module."):]: v for k, v in state.items() if k.startswith("slot_module.")})
    return module.eval(), info


@pytest.mark.parametrize("learned", [False, True])
def test_converted_slot_module_equals_released_equations(tmp_path, learned):
    cfg = released_config(learnable_slot_init=learned)
    gen = torch.Generator().manual_seed(0)
    w = random_weights(cfg, gen)
    write_stage1(tmp_path / "st1", cfg, w)
    released.convert(tmp_path / "st1", tmp_path / "out")
    module, info = converted_module(tmp_path / "out")
    assert info["phase"] == 1 and info["model"]["slots"]["num_slots"] == K
    feats = torch.randn(2, D, SIDE, SIDE, generator=gen)
    init = w["slot_mu"].expand(2, K, D) if learned else torch.randn(2, K, D, generator=gen)
    with torch.no_grad():
        ref_cond, ref_attn = hand_forward(w, cfg, feats, init)
        out = module(feats.flatten(2).transpose(1, 2), slots=None if learned else init)
    torch.testing.assert_close(out.cond, ref_cond, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.attn, ref_attn.transpose(1, 2), atol=1e-5, rtol=1e-4)


def test_a_wrong_role_changes_the_output(tmp_path, monkeypatch):
    """If the grid's columns were not reordered (or two projections swapped), the forward would differ."""
    cfg = released_config()
    gen = torch.Generator().manual_seed(1)
    w = random_weights(cfg, gen)
    write_stage1(tmp_path / "st1", cfg, w)
    feats = torch.randn(1, D, SIDE, SIDE, generator=gen)
    init = torch.randn(1, K, D, generator=gen)
    ref, _ = hand_forward(w, cfg, feats, init)
    for patch in (("GRID_COLUMNS", [0, 1, 2, 3]),
                  ("RENAMES", {**released.RENAMES, "project_q.weight": "slot_attention.to_k.weight",
                               "project_k.weight": "slot_attention.to_q.weight"})):
        monkeypatch.setattr(released, *patch)
        out_dir = tmp_path / patch[0]
        released.convert(tmp_path / "st1", out_dir)
        module, _ = converted_module(out_dir)
        with torch.no_grad():
            cond = module(feats.flatten(2).transpose(1, 2), slots=init).cond
        assert not torch.allclose(cond, ref, atol=1e-3)
        monkeypatch.undo()


def test_mismatches_are_refused_by_name(tmp_path):
    cfg = released_config()
    w = random_weights(cfg, torch.Generator().manual_seed(2))
    cases = {"extra": ({**w, "slot_extra.weight": torch.zeros(3)}, cfg, "slot_extra.weight"),
             "shape": ({**w, "mlp.0.weight": torch.zeros(7, D)}, cfg, "mlp.0.weight"),
             "missing": ({k: v for k, v in w.items() if k != "gru.bias_hh"}, cfg, "gru.bias_hh"),
             "heads": (w, released_config(num_heads=2), "num_heads")}
    for name, (weights, c, needle) in cases.items():
        write_stage1(tmp_path / name, c, weights)
        with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
            released.convert(tmp_path / name, tmp_path / f"{name}_out")
    with pytest.raises(FileNotFoundError, match=released.SLOT_FOLDER):
        released.convert(tmp_path / "nowhere", tmp_path / "x")


def test_stage2_checkpoint_loads_with_every_released_tensor(tiny_models, tmp_path):
    """A stage-1 and stage-2 folder sized for the tiny models: glass.load_checkpoint_model rebuilds a phase-2 model
    whose slot module and UNet hold exactly the released tensors."""
    from diffusers import UNet2DConditionModel
    from infra.checkpoint import load_checkpoint_model
    from tests.conftest import tiny_glass_config
    enc = json.loads((tiny_models / "encoder" / "config.json").read_text())
    unet = UNet2DConditionModel.from_pretrained(tiny_models / "sd" / "unet")
    side = enc["image_size"] // enc["patch_size"]
    cfg = released_config(input_size=enc["hidden_size"], slot_size=enc["hidden_size"],
                          out_size=unet.config.cross_attention_dim, input_resolution=side)
    w = random_weights(cfg, torch.Generator().manual_seed(3))
    write_stage1(tmp_path / "st1", cfg, w)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)  # "fine-tuned" weights, unlike the base UNet's
    unet.save_pretrained(tmp_path / "st2" / released.UNET_FOLDER)
    base = tiny_glass_config(tiny_models)
    released.convert(tmp_path / "st1", tmp_path / "out", tmp_path / "st2", base=base)
    model, info = load_checkpoint_model(tmp_path / "out")
    assert info["phase"] == 2 and model.slot_module.config.dim == enc["hidden_size"]
    for name, t in unet.state_dict().items():
        assert torch.equal(model.unet.state_dict()[name], t), name
    assert torch.equal(model.slot_module.slot_attention.to_q.weight, w["project_q.weight"])
    assert torch.equal(model.slot_module.pos_proj.weight, w["pos.projection.weight"].reshape(-1, 4)[:, [1, 0, 3, 2]])
