"""The GLASS model (GLASS §4 and "Loss function").

Not built yet: issue 5 builds it. It will hold the frozen DINOv2 encoder wrapper, the slot module from
slot_attention.py, the MLP patch decoder (instance guidance), the slot-conditioned diffusion decoder, the three
losses (recon, semantic via matching.py, instance), and generate / compose.
"""
