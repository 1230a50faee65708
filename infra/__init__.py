"""What every run needs and the method does not: crash-safe checkpoints and exact resume (checkpoint.py), dataset
files, loaders and the frozen-output cache (data.py), logs and progress (progress.py), the config flags of the
command lines (flags.py), quiet model loading (loading.py) and the COCO / VOC evaluation loaders (real_data.py)."""
