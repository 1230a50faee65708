"""The GLASS authors' released checkpoints → this project's checkpoint (paper §5: evaluate the published models).

The authors (repository visinf/glass) release two diffusers-style folders per model, read here for their layout
and written anew:
    stage 1   <folder>/multiheadstevesa/   config.json + weights of their slot module (`MultiHeadSTEVESA`)
    stage 2   <folder>/unet2dconditionmodel/   the fine-tuned SD 2.1 UNet (diffusers `UNet2DConditionModel`)
Their MLP decoder is not released (evaluation does not use it); the converted checkpoint carries a freshly
initialised one (seed 0) so that it loads like any other, and config.json says so.

    python scripts/released.py --stage1 glass_st1/checkpoint --out runs/released/phase1
    python scripts/released.py --stage1 glass_st1/checkpoint --stage2 glass_st2/checkpoint --out runs/released/phase2
    python evaluate.py discovery --ckpt runs/released/phase1 --coco coco/annotations/instances_val2017.json \
        --images coco/val2017 --protocol glass

Every released tensor is mapped by name to one parameter of `slot_attention.GLASSSlotModule` and checked for shape;
a released tensor with no role, a parameter left without a tensor, or a shape that differs stops the conversion
with the parameter's name. One mapping is not a rename: the authors' positional grid is built with
`meshgrid(..., indexing="xy")`, so its channels are (row, column, 1 − row, 1 − column), where this project's
`build_grid` gives (x = column, y = row, 1 − x, 1 − y); the 1×1 projection's input columns are swapped to match.
Checked by tests/test_released.py against a hand-written forward of the released module's equations.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as python scripts/released.py: the project's modules
from slot_attention import GLASSSlotConfig, GLASSSlotModule

SLOT_FOLDER, UNET_FOLDER = "multiheadstevesa", "unet2dconditionmodel"
# the authors' name → this project's name inside GLASSSlotModule (the grid projection and slot init are special)
RENAMES = {
    "pos.projection.bias": "pos_proj.bias",
    "in_layer_norm.weight": "input_norm.weight", "in_layer_norm.bias": "input_norm.bias",
    "in_mlp.0.weight": "input_mlp.0.weight", "in_mlp.0.bias": "input_mlp.0.bias",
    "in_mlp.2.weight": "input_mlp.2.weight", "in_mlp.2.bias": "input_mlp.2.bias",
    "out_layer_norm.weight": "out_norm.weight", "out_layer_norm.bias": "out_norm.bias",
    "out_linear.weight": "out_proj.weight", "out_linear.bias": "out_proj.bias",
    **{f"{a}.{p}": f"slot_attention.{b}.{p}" for a, b in (("norm_inputs", "norm_inputs"), ("norm_slots", "norm_slots"),
                                                         ("norm_mlp", "norm_mlp")) for p in ("weight", "bias")},
    "project_q.weight": "slot_attention.to_q.weight", "project_k.weight": "slot_attention.to_k.weight",
    "project_v.weight": "slot_attention.to_v.weight",
    **{f"gru.{p}": f"slot_attention.gru.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    **{f"mlp.{i}.{p}": f"slot_attention.mlp.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")},
}
GRID_COLUMNS = [1, 0, 3, 2]  # ours (x, y, 1−x, 1−y) ← theirs (row, col, 1−row, 1−col)


def read_weights(folder: Path) -> dict:
    """A diffusers model folder's weights: safetensors, or a .bin through torch.load(weights_only=True)."""
    from safetensors.torch import load_file
    st = sorted(folder.glob("*.safetensors"))
    if st:
        state = {}
        for f in st:
            state.update(load_file(f))
        return state
    bins = sorted(folder.glob("*.bin"))
    if bins:
        state = {}
        for f in bins:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
        return state
    raise FileNotFoundError(f"{folder} holds no *.safetensors or *.bin weights")


def slot_config(released: dict) -> GLASSSlotConfig:
    """The released module's config.json → GLASSSlotConfig; refuses what this module cannot express."""
    if released.get("num_heads", 1) != 1:
        raise ValueError(f"num_heads = {released['num_heads']}: this slot module has one head (as the released "
                         f"GLASS config)")
    if released["input_size"] != released["slot_size"]:
        raise ValueError(f"input_size {released['input_size']} ≠ slot_size {released['slot_size']}: the released "
                         f"input MLP keeps input_size, this module's maps to the slot width; they agree only if equal")
    if released.get("init_mlp", False):
        raise ValueError("init_mlp (the StableLSD-BBox prior): its box MLP (4 → 2D → D) has another shape than this "
                         "project's (4 → D → D); convert a GLASS model, not a Tab. 5 baseline")
    return GLASSSlotConfig(input_dim=released["input_size"], num_slots=released["num_slots"],
                           iters=released["num_iterations"], dim=released["slot_size"],
                           mlp_hidden=released["mlp_hidden_size"], eps=released.get("epsilon", 1e-8),
                           out_dim=released["out_size"], learned_init=released.get("learnable_slot_init", False),
                           bilevel=released.get("bi_level", False), grid_centres=True)


def authors_grid(side: int) -> torch.Tensor:
    """The released positional grid (4, side, side), as their meshgrid(..., indexing="xy") lays it out."""
    c = (torch.arange(side, dtype=torch.float64) + 0.5) / side
    row = c[:, None].expand(side, side)  # what they call grid_x: varies down the rows
    col = c[None, :].expand(side, side)
    return torch.stack([row, col, 1 - row, 1 - col])


def convert_slot_module(state: dict, released: dict) -> tuple[GLASSSlotConfig, dict]:
    """Released slot-module tensors → (config, GLASSSlotModule state dict), every tensor placed and shape-checked."""
    cfg = slot_config(released)
    target = GLASSSlotModule(cfg).state_dict()
    out, unused = {}, []
    for name, t in state.items():
        if name == "pos.pe":  # a buffer: the grid itself, checked rather than copied
            side = released["input_resolution"]
            if not torch.allclose(t.double().reshape(4, side, side), authors_grid(side), atol=1e-6):
                raise ValueError("pos.pe is not the released (row, column, 1 − row, 1 − column) grid at cell centres")
            continue
        if name == "pos.projection.weight":  # (D, 4, 1, 1) conv → (D, 4) linear, grid columns reordered
            ours, value = "pos_proj.weight", t.reshape(t.shape[0], 4)[:, GRID_COLUMNS]
        elif name == "slot_mu":
            ours, value = ("slot_attention.slots_init" if cfg.learned_init else "slot_attention.slots_mu"), t
        elif name == "slot_log_sigma":
            ours, value = "slot_attention.slots_log_sigma", t
        elif name in RENAMES:
            ours, value = RENAMES[name], t
        else:
            unused.append(name)
            continue
        if ours not in target:
            raise ValueError(f"released {name} maps to {ours}, which this slot module does not have")
        if tuple(value.shape) != tuple(target[ours].shape):
            raise ValueError(f"released {name} has shape {tuple(t.shape)}; {ours} needs {tuple(target[ours].shape)}")
        out[ours] = value.float().contiguous()
    if unused:
        raise ValueError(f"released tensors with no role here: {sorted(unused)}")
    missing = sorted(set(target) - set(out))
    if missing:
        raise ValueError(f"parameters the released folder does not give: {missing}")
    return cfg, out


def convert(stage1: Path, out: Path, stage2: Path | None = None, preset: str = "paper", base=None) -> dict:
    """Write out/ (model.safetensors + config.json) from the released folders; returns the config.json dict.
    The encoder, SD folder and decoder settings come from `base` (a GLASSConfig; default glass.PRESETS[preset])."""
    from safetensors.torch import save_file
    import glass
    slot_dir = Path(stage1) / SLOT_FOLDER
    if not (slot_dir / "config.json").is_file():
        raise FileNotFoundError(f"{slot_dir}/config.json does not exist: --stage1 takes the folder that holds "
                                f"{SLOT_FOLDER}/")
    released = json.loads((slot_dir / "config.json").read_text())
    slot_cfg, slot_state = convert_slot_module(read_weights(slot_dir), released)
    base = glass.PRESETS[preset] if base is None else base
    config = replace(base, slots=replace(base.slots, **{k: getattr(slot_cfg, k) for k in (
        "input_dim", "num_slots", "iters", "dim", "mlp_hidden", "eps", "out_dim", "learned_init", "bilevel",
        "grid_centres")}))
    state = {f"slot_module.{k}": v for k, v in slot_state.items()}
    torch.manual_seed(0)  # the decoder the authors did not release: initialised, as GLASS builds it
    decoder = glass.MLPDecoder(slot_cfg.dim, slot_cfg.input_dim, released["input_resolution"] ** 2,
                               config.decoder_hidden, config.decoder_layers, config.decoder_pos_std,
                               config.decoder_factorised)
    state.update({f"mlp_decoder.{k}": v.detach().contiguous() for k, v in decoder.state_dict().items()})
    phase = 1
    if stage2 is not None:
        unet_dir = Path(stage2) / UNET_FOLDER
        if not (unet_dir / "config.json").is_file():
            raise FileNotFoundError(f"{unet_dir}/config.json does not exist: --stage2 takes the folder that holds "
                                    f"{UNET_FOLDER}/")
        unet_cfg = json.loads((unet_dir / "config.json").read_text())
        if unet_cfg.get("cross_attention_dim") != slot_cfg.out_dim:
            raise ValueError(f"the UNet's cross_attention_dim {unet_cfg.get('cross_attention_dim')} is not the slot "
                             f"module's out_size {slot_cfg.out_dim}")
        from diffusers import UNet2DConditionModel
        expected = UNet2DConditionModel.from_config(unet_cfg).state_dict()
        unet = read_weights(unet_dir)
        for name in sorted(set(expected) | set(unet)):
            if name not in unet or name not in expected:
                raise ValueError(f"UNet parameter {name} is {'missing from the release' if name not in unet else 'unknown to diffusers'}")
            if unet[name].shape != expected[name].shape:
                raise ValueError(f"UNet parameter {name}: released {tuple(unet[name].shape)}, expected "
                                 f"{tuple(expected[name].shape)}")
        state.update({f"unet.{k}": v.float().contiguous() for k, v in unet.items()})
        phase = 2
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, out / "model.safetensors")
    import diffusers
    info = {"model": json.loads(config.to_json()), "phase": phase, "step": 0,
            "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
            "source": {"stage1": str(stage1), "stage2": None if stage2 is None else str(stage2),
                       "released_slot_config": released,
                       "mlp_decoder": "not released by the authors: initialised with seed 0 (not used to evaluate)"}}
    (out / "config.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage1", type=Path, required=True, help=f"folder holding {SLOT_FOLDER}/")
    ap.add_argument("--stage2", type=Path, help=f"folder holding {UNET_FOLDER}/ (phase-2 model)")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    ap.add_argument("--preset", default="paper", help="glass.PRESETS entry giving encoder, SD and decoder settings")
    args = ap.parse_args(argv)
    try:
        info = convert(args.stage1, args.out, args.stage2, args.preset)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"scripts/released.py: {e}")
    print(f"wrote {args.out} (phase {info['phase']}): {json.dumps(asdict(GLASSSlotConfig(**info['model']['slots'])))}")


if __name__ == "__main__":
    main()
