"""scripts/paper_compute.py builds the paper's models from configs written in the script: built on the meta device
(no memory, no time), they have the published parameter counts of the real checkpoints, so the compute it measures
is the compute of the paper's models."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import paper_compute  # noqa: E402


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_configs_give_the_published_model_sizes():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, Dinov2Config, Dinov2Model
    with torch.device("meta"):
        assert count(UNet2DConditionModel(**paper_compute.SD21_UNET)) == 865_910_724  # SD 2.x UNet
        assert count(AutoencoderKL(**paper_compute.SD_VAE)) == 83_653_863  # the SD VAE
        assert count(Dinov2Model(Dinov2Config(**paper_compute.DINOV2_B14))) == 86_580_480  # facebook/dinov2-base
        assert count(CLIPTextModel(CLIPTextConfig(**paper_compute.OPENCLIP_H_TEXT))) == 340_387_840  # SD 2 text


class _Queue:
    def __init__(self):
        self.items = []

    def put(self, item):
        self.items.append(item)


def test_the_step_is_measured_as_train_py_runs_it(tmp_path):
    """measure_step on tiny models of the paper's classes: train.py's options and build, its loader over the PNGs
    write_dataset leaves, one warm-up and one timed step; the trained parameters are the phase's."""
    from test_train import make_paper_like_models
    folder = make_paper_like_models(tmp_path)
    paper_compute.write_dataset(tmp_path, 2, size=96)
    q = _Queue()
    paper_compute.measure_step(str(folder), 1, 1, 1, "cpu", "fp32", 0, q)
    r = q.items[0]
    assert r["what"] == "phase 1 step" and r["batch"] == 1 and r["seconds"] > 0
    assert r["trained_params"] == r["params"]["slot_module"] + r["params"]["mlp_decoder"]


def test_gpu_hours_follow_the_global_batch_by_hand():
    """2 s a pass at 32 images per GPU: 1 GPU needs 4 passes a step (128 / 32), 4 GPUs one; 200,000 phase-1
    steps → 2 · 4 · 200,000 / 3600 = 444.4 GPU-hours on one GPU, the same on four; 8 GPUs need batch 16."""
    hours = paper_compute.gpu_hours([{"what": "phase 1 step", "seconds": 2.0}], 32)
    assert hours == {"phase 1, 1 GPU(s)": 444.4, "phase 1, 4 GPU(s)": 444.4}
    assert paper_compute.gpu_hours([{"what": "phase 1 step", "seconds": 1.0}], 16)["phase 1, 8 GPU(s)"] == 444.4
