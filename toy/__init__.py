"""The built-in toy world (`world.py`), its stand-in pretrained models (`models.py`, trained by `pretrain.py`) and
their quality reports (`report.py`). No paper section: it replaces web-scale data and weights so that every part of
GLASS runs and is measured on a laptop CPU (docs/design.md §7)."""
