"""Quiet model loading: no progress bar per model and no torchvision notice while transformers and diffusers load.
Used by glass.py (FrozenEncoder, GLASS), pseudo_gt.py and every script that loads models."""
from __future__ import annotations

import contextlib
import logging


def _no_torchvision_notice(record: logging.LogRecord) -> bool:
    return "requires torchvision" not in record.getMessage()  # image processors are never used here


@contextlib.contextmanager
def quiet_loading():
    """Load models without a progress bar per model (transformers' weights, diffusers' shards) and without
    transformers' notice that its image processors fall back from torchvision to PIL. Restores both after."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging
    bars = [(lib, lib.is_progress_bar_enabled()) for lib in (transformers_logging, diffusers_logging)]
    for lib, _ in bars:
        lib.disable_progress_bar()
    notice = logging.getLogger("transformers.utils.import_utils")
    notice.addFilter(_no_torchvision_notice)
    try:
        yield
    finally:
        notice.removeFilter(_no_torchvision_notice)
        for lib, was_on in bars:
            if was_on:
                lib.enable_progress_bar()
