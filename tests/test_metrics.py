"""Tests of metrics.py: hand-computed cases and random cases against direct scipy computations."""
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import comb

from metrics import ari, fg_ari, has_segments, mbo, miou, psnr, so_po_go, summarize


def scipy_ari(a, b):
    """ARI from the pair-counting definition, with scipy's comb, over explicit label lists."""
    a, b = np.asarray(a), np.asarray(b)
    la, lb = np.unique(a), np.unique(b)
    table = np.array([[np.sum((a == i) & (b == j)) for j in lb] for i in la])
    index = comb(table, 2).sum()
    sa, sb = comb(table.sum(1), 2).sum(), comb(table.sum(0), 2).sum()
    expected = sa * sb / comb(len(a), 2)
    return (index - expected) / (0.5 * (sa + sb) - expected)


def iou_table(pred, true, bg):
    gts = [g for g in np.unique(true) if g != 255 and (bg or g != 0)]
    keep = true != 255
    slots = np.unique(pred[keep])
    return np.array([[np.sum((pred == s) & (true == g) & keep) / np.sum(((pred == s) | (true == g)) & keep)
                      for s in slots] for g in gts]).reshape(len(gts), len(slots))


def test_ari_hand_case():
    assert ari(torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 1])) == pytest.approx(0.2424242424)
    assert ari(torch.tensor([3, 3, 5, 5]), torch.tensor([1, 1, 2, 2])) == pytest.approx(1.0)  # label names do not matter


def test_fg_ari_single_cluster_and_undefined():
    true = torch.tensor([[[0, 1, 1, 1]]])
    assert fg_ari(torch.tensor([[[2, 4, 4, 4]]]), true).item() == 1.0  # one fg cluster, one slot on it
    assert fg_ari(torch.tensor([[[2, 4, 4, 4]]]), torch.zeros(1, 1, 4, dtype=torch.long)).item() == 1.0
    assert not torch.isnan(fg_ari(torch.tensor([[[0, 0, 0, 0]]]), torch.tensor([[[0, 0, 0, 1]]]))).any()


def test_fg_ari_ignores_background_and_ignore_pixels():
    true = torch.tensor([[[0, 0, 1, 1, 2, 2, 255]]])
    pred = torch.tensor([[[5, 6, 1, 1, 2, 2, 3]]])  # background and ignore pixels split arbitrarily
    assert fg_ari(pred, true).item() == pytest.approx(1.0)


def test_fg_ari_random_against_scipy():
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 4, (5, 8, 8), generator=g)
    pred = torch.randint(0, 5, (5, 8, 8), generator=g)
    got = fg_ari(pred, true)
    for i in range(5):
        fg = (true[i] != 0).numpy()
        assert got[i].item() == pytest.approx(scipy_ari(true[i].numpy()[fg], pred[i].numpy()[fg]), abs=1e-9)


def test_mbo_reuses_a_slot_where_hungarian_cannot():
    # one slot covers two GT objects: mBO gives it to both, Hungarian mIoU to one only.
    true = torch.tensor([[[1, 1, 2, 2]]])
    pred = torch.tensor([[[0, 0, 0, 0]]])
    assert mbo(pred, true).item() == pytest.approx(0.5)
    assert miou(pred, true).item() == pytest.approx(0.25)  # (0.5 + 0) / 2


def test_background_flag_and_ignore():
    true = torch.tensor([[[0, 0, 1, 1, 255]]])
    pred = torch.tensor([[[0, 0, 1, 1, 0]]])
    assert miou(pred, true).item() == pytest.approx(1.0)
    assert miou(pred, true, background_segment=True).item() == pytest.approx(1.0)  # ignore pixel counts nowhere
    pred = torch.tensor([[[0, 1, 1, 1, 0]]])
    assert miou(pred, true).item() == pytest.approx(2 / 3)
    assert miou(pred, true, background_segment=True).item() == pytest.approx((0.5 + 2 / 3) / 2)


def test_images_without_segments_are_skipped():
    true = torch.zeros(2, 3, 3, dtype=torch.long)
    true[1, 0, 0] = 1
    pred = torch.zeros(2, 3, 3, dtype=torch.long)
    pred[1, 0, 0] = 1
    values = miou(pred, true)
    assert torch.isnan(values[0]) and values[1].item() == 1.0
    assert has_segments(true).tolist() == [False, True]
    s = summarize(values)
    assert (s.mean, s.count, s.skipped) == (1.0, 1, 1)


def test_miou_and_mbo_random_against_scipy_and_brute_force():
    g = torch.Generator().manual_seed(1)
    for bg in (False, True):
        true = torch.randint(0, 4, (6, 6, 6), generator=g)
        true[true == 3] = torch.where(torch.rand((true == 3).sum(), generator=g) < 0.3, 255, 3)
        pred = torch.randint(0, 3, (6, 6, 6), generator=g)
        got_miou, got_mbo = miou(pred, true, bg), mbo(pred, true, bg)
        for i in range(6):
            table = iou_table(pred[i].numpy(), true[i].numpy(), bg)
            r, c = linear_sum_assignment(-table)
            assert got_miou[i].item() == pytest.approx(table[r, c].sum() / table.shape[0])
            assert got_mbo[i].item() == pytest.approx(table.max(1).mean())
            k = min(table.shape)
            brute = max(sum(table[gi, s] for gi, s in zip(rows, cols))
                        for rows in itertools.permutations(range(table.shape[0]), k)
                        for cols in [tuple(range(table.shape[1]))[:k]] +
                        list(itertools.permutations(range(table.shape[1]), k)))
            assert got_miou[i].item() == pytest.approx(brute / table.shape[0])


def test_so_po_go_hand_case():
    # objects 1 (4 px) and 2 (2 px); slot 0 = background, slot 1 = all of object 1 (single),
    # slot 2 = object 2 + 1 px of object 1 (covers 2 fully, 1 by 1/4 -> single), slot 3 none.
    true = torch.tensor([[[0, 0, 1, 1, 1, 1, 2, 2]]])
    pred = torch.tensor([[[0, 0, 1, 1, 1, 2, 2, 2]]])
    out = so_po_go(pred, true)
    assert out.num_slots.item() == 3
    assert (out.so.item(), out.po.item(), out.go.item(), out.bg.item()) == pytest.approx((2 / 3, 0, 0, 1 / 3))
    pred = torch.tensor([[[0, 0, 1, 1, 3, 3, 3, 3]]])  # slot 1 is half of object 1: covers it (>= 0.5); slot 3 covers both
    out = so_po_go(pred, true)
    assert (out.so.item(), out.po.item(), out.go.item(), out.bg.item()) == pytest.approx((1 / 3, 0, 1 / 3, 1 / 3))
    pred = torch.tensor([[[0, 0, 1, 4, 4, 4, 2, 2]]])  # slot 1 is a quarter of object 1: a part
    out = so_po_go(pred, true)
    assert out.po.item() == pytest.approx(1 / 4) and out.so.item() == pytest.approx(2 / 4)
    assert (out.so + out.po + out.go + out.bg).item() == pytest.approx(1.0)


def test_psnr_hand_case():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert psnr(a, b).item() == pytest.approx(20.0)


@pytest.mark.parametrize("fn", [fg_ari, mbo, miou, so_po_go])
def test_bad_input(fn):
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        fn(torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="dtype"):
        fn(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="one shape"):
        fn(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))
