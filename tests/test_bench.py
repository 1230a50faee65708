"""scripts/bench.py's measuring: contenders alternate run by run, and a missing peer is reported, not fatal."""
from scripts import bench


def test_contenders_alternate_and_each_keeps_its_rounds():
    calls = []
    times = bench.alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three alternating rounds
    assert set(times) == {"a", "b"} and len(times["a"]) == len(times["b"]) == 3


def test_ratio_is_the_median_of_per_round_quotients():
    """ratio pairs the two runs of each round (quotients 1, 5, 0.5 → 1); the quotient of the medians would be 5."""
    times = {"a": [1.0, 10.0, 100.0], "b": [1.0, 2.0, 200.0]}
    assert bench.ratio(times, "a", "b") == 1.0
    assert bench.median(times["a"]) / bench.median(times["b"]) == 5.0


def test_the_step_breakdown_names_every_part_and_shares_add_up(monkeypatch):
    row = bench.bench_step(repeats=1)
    parts = {k: v for k, v in row.items() if isinstance(v, dict) and "share" in v}
    assert set(parts) == {"slot module", "MLP decoder + instance loss", "matching + semantic loss", "latent sample",
                          "UNet forward (recon loss)", "backward (all)", "optimiser"}
    assert abs(sum(v["share"] for v in parts.values()) - 1.0) < 0.01
    # the frozen parts run at an item's first visit only (data.FrozenCache), beside the step
    assert set(row["first visit of an item, not in the step (ms)"]) == {"encoder (frozen)", "VAE encode (frozen)"}
    for phase in (1, 2):  # the overhead is read off two whole steps, with and without the guidance
        with_ms, without_ms = row[f"phase {phase} step, with / without guidance (ms)"]
        assert isinstance(row[f"phase {phase} GLASS-specific overhead"], float)
