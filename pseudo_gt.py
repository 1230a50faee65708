"""Pseudo ground truth from the diffusion model's own attention (GLASS §4 "Conditional image generation",
"Pseudo ground-truth generation").

Not built yet: issue 4 builds it. It will hold prompt building (caption → class nouns → "caption; c1 c2"), the
attention-recording diffusers processors, the self-attention refinement (τ = 4) and thresholds, and the dataset
writer CLI (`python pseudo_gt.py --preset toy --num-images N --out DIR`).
"""
