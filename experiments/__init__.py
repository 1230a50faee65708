"""The paper's experiments around GLASS, on the toy world: what trains and scores the rows of the tables.

    tables.py         Tab. 2–9, compose, GLASS† and the loss ablation (python -m experiments tables|ablation)
    baseline_data.py  the baselines' training data: real scenes, oracle masks, segmenter masks, encoder variants
    slot_priors.py    what the Tab. 5 baselines are told (object counts, boxes): copyable alone
    prior_model.py    those baselines as a subclass of GLASS
    ladder.py         the binding ladder, this project's diagnostic (python -m experiments.ladder)
"""
