"""The paper preset on real machines, checked on the CPU: collectives on the model's device, the rank's device set
before anything loads, resume onto the run's device with the CUDA RNG, a barrier after checkpoint recovery, the
writer's settings (models, tagger, dtype) recorded and enforced, and dataset validation done once."""
import json
import types

import pytest
import torch

import pseudo_gt
from infra import checkpoint
import train
from conftest import tiny_args
from infra.data import PseudoGTDataset


class Gathered(Exception):
    pass


def test_rank_check_gathers_tensors_on_the_models_device(monkeypatch):
    """NCCL gathers CUDA tensors only: the checksum must live where the model does (here the meta device, which
    stands for a GPU: a CPU tensor would fail the check as it fails NCCL)."""
    import torch.distributed as dist
    seen = {}

    def all_gather(out, tensor):
        seen["devices"] = {tensor.device.type} | {o.device.type for o in out}
        raise Gathered

    monkeypatch.setattr(dist, "all_gather", all_gather)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    model = torch.nn.Linear(3, 2, device="meta")
    model.trainable_state = lambda phase: {"w": torch.ones(3)}  # weights read back on the CPU
    with pytest.raises(Gathered):
        checkpoint.check_ranks_in_sync(model, 1)
    assert seen["devices"] == {"meta"}


def test_barrier_follows_checkpoint_recovery(monkeypatch, tmp_path):
    order = []
    monkeypatch.setattr(train, "recover_checkpoint", lambda folder: order.append("recover"))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "barrier", lambda: order.append("barrier"))

    def stop(seed):
        order.append("build")
        raise Gathered

    monkeypatch.setattr(torch, "manual_seed", stop)
    args = types.SimpleNamespace(out=str(tmp_path), seed=0)
    with pytest.raises(Gathered):
        train.run_phase(args, 1, 1, torch.device("cpu"), rank=0, world=2)
    assert order == ["recover", "barrier", "build"]


def test_resume_maps_the_train_state_to_the_run_device(tiny_models, tiny_dataset, tmp_path, monkeypatch):
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "1", "--steps", "1"))
    calls, load = [], torch.load

    def recording_load(*a, **kw):
        calls.append(kw)
        return load(*a, **kw)

    monkeypatch.setattr(torch, "load", recording_load)
    train.main(tiny_args(tiny_models, tiny_dataset, tmp_path, "--phase", "1", "--steps", "2", "--resume"))
    assert calls and all(kw.get("map_location") == torch.device("cpu") and kw.get("weights_only") for kw in calls)


def test_cuda_rng_state_is_saved_and_required_on_a_gpu(monkeypatch):
    saved = torch.tensor([7], dtype=torch.uint8)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: saved)
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append(state))
    gen, cuda = torch.Generator().manual_seed(1), torch.device("cuda", 0)
    state = checkpoint.rng_state(gen, cuda)
    assert torch.equal(state["cuda"], saved) and "cuda" not in checkpoint.rng_state(gen)
    checkpoint.set_rng_state(state, gen, cuda)
    assert torch.equal(restored[0], saved)
    with pytest.raises(SystemExit, match="without CUDA"):
        checkpoint.set_rng_state(checkpoint.rng_state(gen), gen, cuda)


def test_writer_rank_device_comes_from_local_rank(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert checkpoint.rank_device("cuda") == torch.device("cuda", 3) and chosen == [3]
    assert checkpoint.rank_device("cpu") == torch.device("cpu") and chosen == [3]


def test_writer_records_models_tagger_and_dtype_and_refuses_a_mismatch(tiny_pipe, tiny_dataset, tmp_path):
    import shutil
    data = shutil.copytree(tiny_dataset, tmp_path / "data")
    meta = json.loads((data / "meta.json").read_text())
    assert meta["tagger"] == "lexicon" and meta["dtype"] == "float32" and meta["captioner"] == "toy"
    assert meta["sd"].endswith("sd")
    preset = pseudo_gt.Preset("toy", sd=meta["sd"], size=64, steps=2, guidance=3.0,
                              mask=pseudo_gt.MaskConfig(cross_res=(16, 8), self_res=16, refine=False))
    bf16 = types.SimpleNamespace(unet=types.SimpleNamespace(dtype=torch.bfloat16))  # checked before generating
    with pytest.raises(ValueError, match="dtype: dataset 'float32', asked 'bfloat16'"):
        pseudo_gt.write_dataset(data, preset, 16, pipe=bf16, use_nltk=False)
    with pytest.raises(ValueError, match="sd: dataset '.*sd', asked 'elsewhere/sd'"):
        pseudo_gt.write_dataset(data, pseudo_gt.replace(preset, sd="elsewhere/sd"), 16, pipe=tiny_pipe,
                                use_nltk=False)


def test_dataset_validation_is_cached_in_a_manifest(tiny_dataset, tmp_path, monkeypatch):
    import shutil
    from PIL import Image
    data = shutil.copytree(tiny_dataset, tmp_path / "data")
    (data / "manifest.json").unlink(missing_ok=True)
    first = PseudoGTDataset(data)
    manifest = json.loads((data / "manifest.json").read_text())
    assert len(manifest) == 2 * len(first) and all(e["shape"] == [64, 64] for e in manifest.values())
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    again = PseudoGTDataset(data)
    assert len(again) == len(first) and opened == [], "a second open decodes nothing"
    bad = data / "images" / "0000004.png"
    bad.write_bytes(bad.read_bytes()[:60])  # a changed file is decoded again and named
    third = PseudoGTDataset(data, quiet=True)
    assert list(third.bad) == [4] and "images/0000004.png" in third.bad[4] and len(opened) == 1
