"""python -m experiments tables|ablation ...: the paper's tables and the loss ablation (experiments/tables.py)."""
from experiments.tables import main

main()
