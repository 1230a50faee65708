import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny toy models (VAE, text encoder, UNet, Dinov2 encoder, classifier) trained one step by pretrain_toy.py."""
    import pretrain_toy
    out = tmp_path_factory.mktemp("tiny_models")
    pretrain_toy.main(["--stage", "all", "--tiny", "--max-steps", "1", "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def tiny_pipe(tiny_models):
    import pseudo_gt
    return pseudo_gt.load_pipeline(str(tiny_models / "sd"))
