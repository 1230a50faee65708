"""Tests of train.py on tiny models: resume equivalence, DDP sync, the paper preset's code path, CLI errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import evaluate
import train
from conftest import tiny_args

ROOT = Path(__file__).resolve().parent.parent


def test_resume_is_exact(tiny_models, tiny_dataset, tmp_path):
    # 5 steps in one go ...
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "a", "--phase", "1", "--steps", "5",
                         "--ckpt-every", "100"))
    # ... equals 2 steps, a resume, and 3 more; scoring val scenes along the way (--val-every) changes nothing
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "b", "--phase", "1", "--steps", "2",
                         "--ckpt-every", "100", "--val-every", "2", "--eval-images", "4"))
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "b", "--phase", "1", "--steps", "5",
                         "--ckpt-every", "100", "--resume", "--val-every", "2", "--eval-images", "4"))
    curve = (tmp_path / "b" / "val_curve.csv").read_text().splitlines()
    assert curve[0].startswith("phase,step,miou_i") and [r.split(",")[:2] for r in curve[1:]] == [["1", "2"],
                                                                                                ["1", "4"]]
    a = load_file(tmp_path / "a" / "phase1" / "model.safetensors")
    b = load_file(tmp_path / "b" / "phase1" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    info = json.loads((tmp_path / "b" / "phase1" / "config.json").read_text())
    assert info["phase"] == 1 and info["step"] == 5 and "torch" in info["versions"]
    rows = (tmp_path / "b" / "log_phase1.csv").read_text().splitlines()
    assert rows[0].startswith("step,total,recon,semantic,instance") and len(rows) == 6
    # a different seed gives different weights (the comparison above can fail)
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "c", "--phase", "1", "--steps", "5", "--seed", "1"))
    c = load_file(tmp_path / "c" / "phase1" / "model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_run_phase_equals_a_plain_training_loop(tiny_models, tiny_dataset, tmp_path):
    """train.run_phase and its helpers compute exactly the textbook loop written out here: same seed, same model,
    AdamW over the phase's groups, linear warm-up, forward, backward, clip, step. Identical weights, bit for bit
    (per-term gradient norms at log steps included, which must not change the step)."""
    from infra.data import PseudoGTDataset, make_loader
    from glass import GLASS
    steps = 4
    args = train.options(tiny_args(tiny_models, tiny_dataset, tmp_path / "run", "--phase", "1", "--steps",
                                   str(steps), "--no-cache-frozen", "--lr-decoder", "3e-3", "--amp", "none"))
    ours = load_file(train.run(args)["checkpoint"] + "/model.safetensors")

    torch.manual_seed(args.seed)
    model = GLASS(args.model)
    opt = torch.optim.AdamW(model.param_groups(1, args.lr_slots1, args.lr_unet, args.lr_decoder),
                            weight_decay=args.weight_decay, fused=True)
    base = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(args.seed * 1000)
    model.train()
    for step, batch in enumerate(make_loader(PseudoGTDataset(args.data), args, 0, steps, 0, 1)):
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * min(1.0, (step + 1) / args.warmup)
        loss = model(batch, gen).total
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], args.clip)
        opt.step()
    reference = model.trainable_state(1)
    assert ours.keys() == reference.keys()
    for k in ours:
        assert torch.equal(ours[k], reference[k]), k


def test_phase2_runs_phase1_first_and_checkpoints_describe_themselves(tiny_models, tiny_dataset, tmp_path, capsys):
    result = train.main(tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "2", "--steps1", "2",
                                  "--steps2", "2", "--eval-images", "4"))
    text = capsys.readouterr().out
    assert "running phase 1 first" in text and "[val] miou_i" in text
    p1 = load_file(tmp_path / "phase1" / "model.safetensors")
    p2 = load_file(tmp_path / "phase2" / "model.safetensors")
    assert not any(k.startswith("unet.") for k in p1) and any(k.startswith("unet.") for k in p2)
    val = json.loads((tmp_path / "val_phase2.json").read_text())["val"]
    assert result["val"] == val, "the returned metrics are the ones written to JSON"
    assert (tmp_path / "val_phase2.png").exists() and (tmp_path / "loss_phase2.png").exists()
    from infra.checkpoint import load_checkpoint_model
    model, info = load_checkpoint_model(tmp_path / "phase2")
    assert info["phase"] == 2 and torch.equal(model.unet.state_dict()["conv_in.weight"], p2["unet.conv_in.weight"])
    # the printed val numbers are the checkpoint's: scored again from the folder alone they agree exactly
    assert evaluate.discovery(model, "val", 4, torch.device("cpu")) == val


def test_bf16_autocast_trains(tiny_models, tiny_dataset, tmp_path):
    """--amp bf16 (GPUs, or CPUs with bf16 units) runs both phases: every loss term survives autocast."""
    result = train.main(tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "2", "--steps1", "2",
                                  "--steps", "2", "--amp", "bf16"))
    rows = (tmp_path / "log_phase2.csv").read_text().splitlines()
    assert len(rows) == 3 and all(float(v) == float(v) for v in rows[-1].split(",")[1:5])  # no NaN
    assert Path(result["checkpoint"]).name == "phase2"


def test_cli_errors(tiny_models, tiny_dataset, tmp_path):
    with pytest.raises(SystemExit) as e:
        train.main(["--no-such-flag"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        train.main(tiny_args(tiny_models, tiny_dataset, tmp_path, "--sd", "/no/such/folder"))
    with pytest.raises(SystemExit):
        train.main(["--preset", "paper"])  # needs --data
    with pytest.raises(SystemExit) as e:
        train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "x", "--phase", "1", "--steps", "1"))
        train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "y", "--phase", "2", "--steps", "1",
                             "--init", str(tmp_path / "x" / "phase1")))
        train.main(tiny_args(tiny_models, tiny_dataset, tmp_path / "z", "--phase", "2", "--steps", "1",
                             "--init", str(tmp_path / "y" / "phase2")))
    assert "phase-2 checkpoint" in str(e.value.code)


def test_ddp_two_processes_stay_in_sync(tiny_models, tiny_dataset, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(ROOT / "train.py"), *tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "1", "--steps", "3",
                                              "--threads", "1")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ranks in sync after phase 1: True" in r.stdout
    assert (tmp_path / "phase1" / "model.safetensors").exists()


def torchrun(script, args, tmp_path, port, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(port),
           str(script), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)


def test_each_rank_draws_its_own_slot_and_diffusion_noise(tiny_models, tiny_dataset, tmp_path):
    """Identical initial weights on every rank, but rank r's slot-initialisation noise (the global RNG) and
    diffusion noise (gen) are its own from step 0; rank 0 keeps the single-process streams."""
    args = train.options(tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "1"))
    draws = []
    for rank in (0, 1):
        model, _, gen = train.build(args, 1, torch.device("cpu"), rank)
        draws.append((model.trainable_state(1), torch.randn(8), torch.randn(8, generator=gen)))
    (w0, slot0, diff0), (w1, slot1, diff1) = draws
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert not torch.equal(slot0, slot1) and not torch.equal(diff0, diff1)
    torch.manual_seed(args.seed)
    from glass import GLASS
    GLASS(args.model)
    assert torch.equal(torch.randn(8), slot0), "rank 0's stream is the one a single process draws"


def test_two_rank_resume_continues_each_ranks_streams_exactly(tiny_models, tiny_dataset, tmp_path):
    """Two gloo ranks with gradient accumulation (global batch 8 = 2 ranks × 2 × 2 passes): 4 steps in one go equal
    2 steps, a resume and 2 more, bit for bit; the checkpoint keeps each rank's streams, and they differ."""
    import shutil
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, ignore=shutil.ignore_patterns("manifest.json"))  # validated afresh
    flags = lambda out, steps, *extra: tiny_args(tiny_models, data, out, "--phase", "1", "--steps", str(steps),
                                                 "--batch-size", "2", "--global-batch", "8", "--threads", "1", *extra)
    r = torchrun(ROOT / "train.py", flags(tmp_path / "a", 4), tmp_path, 29541)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "global batch 8 = --batch-size 2 × 2 processes × 2 accumulated" in r.stdout
    assert "[data] rank 1: 16 items, 0 files decoded by this rank" in r.stdout, r.stdout  # rank 1 reads the manifest
    assert "32 files decoded" in r.stdout, "rank 0 validated the 16 images and 16 masks once"
    for steps, extra in ((2, ()), (4, ("--resume",))):
        r = torchrun(ROOT / "train.py", flags(tmp_path / "b", steps, *extra), tmp_path, 29542)
        assert r.returncode == 0, r.stderr[-3000:]
    a = load_file(tmp_path / "a" / "phase1" / "model.safetensors")
    b = load_file(tmp_path / "b" / "phase1" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ranks = torch.load(tmp_path / "b" / "phase1" / "train_state.pt", weights_only=True)["rng"]["ranks"]
    assert len(ranks) == 2
    assert not torch.equal(ranks[0]["gen"], ranks[1]["gen"]) and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])


def test_global_batch_is_the_same_items_on_one_and_two_ranks():
    """--global-batch 8 at --batch-size 2: one rank accumulates 4 passes, two ranks 2 each, four ranks 1; every
    step's items are the same set, each item once. The paper preset's 128 on 1, 4 and 8 GPUs."""
    from infra.data import StepSampler
    for step in (0, 1, 5, 13):
        sets = []
        for world in (1, 2, 4):
            items = [i for r in range(world)
                     for i in StepSampler(40, 2, 3, 0, r, world, accumulate=8 // (2 * world)).indices_of_step(step)]
            assert len(items) == len(set(items)) == 8
            sets.append(set(items))
        assert sets[0] == sets[1] == sets[2]
    args = train.options(["--preset", "paper", "--data", "x", "--batch-size", "32"])
    assert args.global_batch == 128 and (train.accumulation(args, 1), train.accumulation(args, 4)) == (4, 1)
    assert train.accumulation(train.options(["--preset", "paper", "--data", "x", "--batch-size", "16"]), 8) == 1
    with pytest.raises(SystemExit, match="not a multiple"):
        train.accumulation(args, 8)  # 8 × 32 = 256 > 128: choose --batch-size 16


def test_ranks_without_a_shared_out_are_refused_before_training(tiny_models, tiny_dataset, tmp_path):
    """Each rank with its own run folder (as node-local disks give): refused with the reason, no step trained."""
    wrapper = tmp_path / "per_rank_out.py"
    wrapper.write_text("import os, sys\n"
                       f"sys.path.insert(0, {str(ROOT)!r})\n"
                       "import train\n"
                       "args = train.options(sys.argv[1:])\n"
                       "args.out = os.path.join(args.out, 'rank' + os.environ['RANK'])\n"
                       "train.run(args)\n")
    r = torchrun(wrapper, tiny_args(tiny_models, tiny_dataset, tmp_path / "run", "--phase", "1", "--steps", "2",
                                    "--threads", "1"), tmp_path, 29543)
    assert r.returncode != 0
    assert "do not see the folder that rank 0 writes" in r.stdout + r.stderr
    assert not list((tmp_path / "run").glob("rank*/phase1"))


def test_paper_preset_refuses_the_frozen_cache_and_zeroes_decoder_biases():
    with pytest.raises(SystemExit):
        train.options(["--preset", "paper", "--data", "x", "--cache-frozen"])
    from glass import PRESETS, MLPDecoder
    assert PRESETS["paper"].decoder_zero_bias and not PRESETS["toy"].decoder_zero_bias
    zero = MLPDecoder(8, 6, 4, 16, 3, zero_bias=True)
    default = MLPDecoder(8, 6, 4, 16, 3)
    biases = lambda m: [l.bias for l in m.mlp if isinstance(l, torch.nn.Linear)]
    assert len(biases(zero)) == 4 and all(bool((b == 0).all()) for b in biases(zero))
    assert all(bool((b != 0).any()) for b in biases(default))


def test_hflip_flips_items_by_their_index_and_step_only():
    batch = {"image": torch.arange(2 * 3 * 2 * 4).float().view(2, 3, 2, 4), "mask": torch.arange(16).view(2, 2, 4),
             "index": torch.tensor([5, 9])}
    flips = [train.flip_half(batch, 0, s) for s in range(16)]
    flipped = [[bool(torch.equal(f["image"][j], batch["image"][j].flip(-1))) for j in range(2)] for f in flips]
    for f, fl in zip(flips, flipped):
        for j in range(2):
            assert torch.equal(f["mask"][j], batch["mask"][j].flip(-1) if fl[j] else batch["mask"][j])
    assert 4 <= sum(sum(fl) for fl in flipped) <= 28, "about half of 32 coins"
    alone = train.flip_half({k: v[1:] for k, v in batch.items()}, 0, 3)  # the same item in another batch
    assert torch.equal(alone["image"][0], flips[3]["image"][1])


def make_paper_like_models(folder: Path):
    """Tiny models of the paper preset's classes: a patch-14 Dinov2Model, an SD folder whose UNet cross-attention
    width (24) differs from the text encoder's and whose scheduler predicts v."""
    from toy import models
    from transformers import Dinov2Config, Dinov2Model
    sizes = models.ModelSizes.tiny()
    enc = Dinov2Model(Dinov2Config(image_size=56, patch_size=14, hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, mlp_ratio=2))
    enc.save_pretrained(folder / "encoder")
    sd = folder / "sd"
    models.build_vae(sizes).save_pretrained(sd / "vae")
    from diffusers import UNet2DConditionModel, DDPMScheduler
    UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 16),
                         down_block_types=("CrossAttnDownBlock2D",) * 2, up_block_types=("CrossAttnUpBlock2D",) * 2,
                         cross_attention_dim=24, attention_head_dim=2, norm_num_groups=8).save_pretrained(sd / "unet")
    DDPMScheduler(prediction_type="v_prediction").save_pretrained(sd / "scheduler")
    return folder


def test_paper_preset_code_path_on_tiny_models(tiny_dataset, tmp_path):
    models = make_paper_like_models(tmp_path / "models")
    args = ["--preset", "paper", "--encoder", str(models / "encoder"), "--sd", str(models / "sd"),
            "--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--encoder-size", "56",
            "--decoder-size", "64", "--num-classes", "4", "--batch-size", "2", "--steps", "1", "--phase", "1",
            "--workers", "0", "--slot-dim", "32", "--slot-mlp-hidden", "32", "--decoder-hidden", "64", "--match-size", "32",
            "--global-batch", "2"]
    train.main(args)
    from infra.checkpoint import load_checkpoint_model
    model, info = load_checkpoint_model(tmp_path / "run" / "phase1")
    assert info["model"]["slots"]["num_slots"] == 7 and info["model"]["slots"]["iters"] == 5
    assert info["model"]["encoder_mean"] == [0.485, 0.456, 0.406]
    assert model.scheduler.config.prediction_type == "v_prediction"
    assert model.encoder.grid == 4  # 56 px / patch 14
    enc = model.encode(torch.rand(2, 3, 64, 64))
    assert enc.cond.shape == (2, 7, 24), "slot projection width = UNet cross-attention width"
    assert enc.masks.shape == (2, 7, 4, 4)


def test_model_flags_override_the_glass_preset_without_changing_it():
    import glass
    before = glass.PRESETS["toy"].to_json()
    cfg = train.options(num_slots=3, slot_learned_init=False, lambda_instance=0.1, recon=False).model
    assert (cfg.slots.num_slots, cfg.slots.learned_init, cfg.slots.bilevel) == (3, False, True)
    assert (cfg.lambda_instance, cfg.lambda_semantic, cfg.recon) == (0.1, 0.7, False)
    flags = train.options(["--no-semantic", "--slot-mlp-hidden", "64", "--decoder-hidden", "32",
                           "--no-slot-grid-centres", "--slot-prior", "count"]).model
    assert (flags.semantic, flags.instance, flags.slots.mlp_hidden, flags.decoder_hidden) == (False, True, 64, 32)
    assert (flags.slots.grid_centres, flags.slot_prior) == (False, "count")
    default = train.options().model
    assert default.to_json() == before  # no flag given: exactly the preset
    assert glass.PRESETS["toy"].to_json() == before
    with pytest.raises(TypeError, match="no option"):
        train.options(num_slot=3)
    with pytest.raises(SystemExit):  # the configs' own checks, as command-line errors
        train.options(["--no-recon", "--no-semantic", "--no-instance"])
    with pytest.raises(SystemExit):
        train.options(["--slot-gaussian-init", "wide"])


def test_one_flag_per_field_named_after_it_with_the_fields_comment_as_help():
    from dataclasses import fields
    import glass
    from slot_attention import GLASSSlotConfig
    ap = train.build_parser()
    by_dest = {a.dest: a for a in ap._actions if a.dest != "help"}
    expected = {f.name for f in fields(train.RunConfig) if f.name != "model"}
    expected |= {f.name for f in fields(glass.GLASSConfig) if f.name not in ("slots", "encoder_mean", "encoder_std")}
    expected |= {f.name if "slot" in f.name else "slot_" + f.name for f in fields(GLASSSlotConfig)
                 if f.name not in ("input_dim", "out_dim")}
    assert set(by_dest) == expected
    for dest, action in by_dest.items():
        assert action.option_strings[0] == "--" + dest.replace("_", "-")
        assert action.help and not action.help.startswith("["), f"--{dest} has no help of its own"
    assert by_dest["lambda_semantic"].help.startswith("λs, the weight of L_semantic")  # the comment on the field
    assert by_dest["sd"].help.startswith("Stable Diffusion folder")  # the comment on its line, not the one above
    assert by_dest["slot_prior"].help.startswith("ground truth the weakly-supervised baselines")  # the lines above
    assert "[default 7]" in by_dest["num_slots"].help and "[toy 3, paper 5]" in by_dest["slot_iters"].help
    titles = [g.title for g in ap._action_groups]
    assert titles[-3:] == ["RunConfig (train.py)", "GLASSConfig (glass.py)", "GLASSSlotConfig (slot_attention.py)"]


def test_training_flags_override_the_train_preset_field_by_field():
    toy, paper = train.PRESETS["toy"], train.PRESETS["paper"]
    args = train.options(["--batch-size", "4"], steps1=10)
    assert (args.batch_size, args.steps1, args.steps2, args.lr_decoder) == (4, 10, toy.steps2, toy.lr_decoder)
    args = train.options(preset="paper", data="x", lr_unet=1e-3)
    assert (args.lr_unet, args.lr_slots1, args.lr_decoder, args.model.encoder) == \
        (1e-3, paper.lr_slots1, None, "facebook/dinov2-base")


def test_frozen_cache_gives_the_losses_of_the_uncached_step(tiny_models, tiny_dataset):
    from conftest import tiny_glass_config
    from infra.data import FrozenCache, PseudoGTDataset
    from glass import GLASS
    model = GLASS(tiny_glass_config(tiny_models, slots={"num_slots": 4, "iters": 2, "dim": 16, "mlp_hidden": 16,
                                                        "learned_init": True}))
    ds = PseudoGTDataset(tiny_dataset)
    batch = {k: torch.stack([ds[i][k] for i in (3, 1, 3, 0)]) for k in ("image", "mask", "has_classes", "index")}
    calls = []
    cache = FrozenCache(lambda images: calls.append(len(images)) or model.frozen_outputs(images))
    cached = cache.fill(batch)
    assert calls == [1, 1, 1]  # three distinct items, each computed once and alone
    assert torch.equal(cached["features"][0], cached["features"][2])  # item 3 twice: one stored value
    assert torch.allclose(cached["features"], model.encoder(batch["image"]), atol=1e-5)
    assert torch.allclose(cached["moments"], model.latent_moments(batch["image"]), atol=1e-5)
    cache.fill(batch)
    assert calls == [1, 1, 1]  # a later visit computes nothing
    plain = model.losses(batch, torch.Generator().manual_seed(0))
    fast = model.losses(cached, torch.Generator().manual_seed(0))  # the same latent noise and timesteps
    for term in ("recon", "semantic", "instance"):
        assert torch.allclose(getattr(plain, term), getattr(fast, term), rtol=1e-4, atol=1e-6), term


def test_term_grad_norms_match_one_backward_per_term(tiny_models, tiny_dataset):
    from conftest import tiny_glass_config
    from infra.data import PseudoGTDataset
    from glass import GLASS
    torch.manual_seed(0)
    model = GLASS(tiny_glass_config(tiny_models))
    ds = PseudoGTDataset(tiny_dataset)
    batch = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("image", "mask", "has_classes", "index")}
    losses = model.losses(batch, torch.Generator().manual_seed(0))
    got = train.term_grad_norms(model, losses)
    c = model.config
    for name, weight in (("recon", 1.0), ("semantic", c.lambda_semantic), ("instance", c.lambda_instance)):
        model.zero_grad(set_to_none=True)
        (weight * getattr(losses, name)).backward(retain_graph=True)
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.slot_module.parameters() if p.grad is not None))
        assert got[name] == pytest.approx(float(norm), rel=1e-4), name
        assert got[name] > 0, name


def test_prefetch_fits_half_the_free_shared_memory(monkeypatch):
    """8 workers × 75 MB batches (32 images of 768 px, uint8, with masks) in a container's 64 MB /dev/shm: one
    batch each, not the default 4; with room to spare, at most 4."""
    import shutil
    from infra.data import prefetch_batches
    usage = type("Usage", (), {"free": 64 * 2 ** 20})
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    assert prefetch_batches(75 * 2 ** 20, 8) == 1
    usage.free = 16 * 2 ** 30
    assert prefetch_batches(75 * 2 ** 20, 8) == 4
    usage.free = 2 * 8 * 75 * 2 ** 20 * 2  # room for two batches per worker
    assert prefetch_batches(75 * 2 ** 20, 8) == 2
