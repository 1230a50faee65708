"""Training GLASS in two phases (GLASS §4).

Not built yet: issue 5 builds it (`python train.py --phase 2`, presets `toy` and `paper`, checkpoints, torchrun).
"""
import sys

if __name__ == "__main__":
    sys.exit("train.py is not built yet (issue 5); see README.md")
