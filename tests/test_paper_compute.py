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
