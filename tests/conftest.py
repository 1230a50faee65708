import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny toy models (VAE, text encoder, UNet, Dinov2 encoder, classifier) trained one step by toy/pretrain.py."""
    from toy import pretrain
    out = tmp_path_factory.mktemp("tiny_models")
    pretrain.main(["--stage", "all", "--tiny", "--max-steps", "1", "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def tiny_pipe(tiny_models):
    import pseudo_gt
    return pseudo_gt.load_pipeline(str(tiny_models / "sd"))


@pytest.fixture(scope="session")
def tiny_dataset(tiny_models, tiny_pipe, tmp_path_factory):
    """16 pseudo-GT items written by pseudo_gt.py's writer with the tiny models (2 denoising steps)."""
    import pseudo_gt
    out = tmp_path_factory.mktemp("tiny_data")
    preset = pseudo_gt.Preset("toy", sd=str(tiny_models / "sd"), size=64, steps=2, guidance=3.0,
                              mask=pseudo_gt.MaskConfig(cross_res=(16, 8), self_res=16, refine=False))
    pseudo_gt.write_dataset(out, preset, 16, pipe=tiny_pipe, batch_size=8, use_nltk=False)
    return out


def tiny_glass_config(tiny_models, **kw):
    """The toy preset on the tiny models (4 slots of 16, Gaussian init unless `slots` says otherwise)."""
    import glass
    from slot_attention import GLASSSlotConfig
    args = dict(encoder=str(tiny_models / "encoder"), sd=str(tiny_models / "sd"),
                slots=GLASSSlotConfig(num_slots=4, iters=2, dim=16, mlp_hidden=16), decoder_hidden=32)
    args.update(kw)
    return glass.preset("toy", **args)


def tiny_args(tiny_models, tiny_dataset, out, *extra):
    """train.py flags of a tiny run on the tiny models and dataset."""
    return ["--encoder", str(tiny_models / "encoder"), "--sd", str(tiny_models / "sd"), "--data", str(tiny_dataset),
            "--out", str(out), "--slot-dim", "16", "--slot-mlp-hidden", "16", "--decoder-hidden", "32", "--num-slots", "4",
            "--batch-size", "4", "--log-every", "1", "--workers", "0", "--eval-images", "0", "--warmup", "2",
            *extra]
