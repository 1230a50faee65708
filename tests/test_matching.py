"""Tests of matching.py: IoU, Hungarian optimality against brute force, the semantic loss."""
import itertools

import pytest
import torch

from matching import hungarian_match, iou_matrix, segments_from_semantic, semantic_loss, semantic_loss_batched


def brute_force_best(iou):
    """Best total over all one-to-one assignments of min(K, F) pairs, by enumeration."""
    k, f = iou.shape
    best = -1.0
    if k >= f:
        for rows in itertools.permutations(range(k), f):
            best = max(best, sum(float(iou[r, c]) for c, r in enumerate(rows)))
    else:
        for cols in itertools.permutations(range(f), k):
            best = max(best, sum(float(iou[r, c]) for r, c in enumerate(cols)))
    return best


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (6, 6), (6, 2), (2, 6), (5, 4), (4, 5), (1, 6)])
def test_hungarian_matches_brute_force(shape):
    g = torch.Generator().manual_seed(sum(shape))
    for _ in range(10):
        iou = torch.rand(*shape, generator=g)
        m = hungarian_match(iou)
        assert len(m.slot_idx) == len(m.segment_idx) == min(shape)
        assert len(set(m.slot_idx.tolist())) == min(shape) and len(set(m.segment_idx.tolist())) == min(shape)
        total = float(iou[m.slot_idx, m.segment_idx].sum())
        assert total == pytest.approx(brute_force_best(iou), abs=1e-6)


def test_hungarian_no_gradient_and_bad_shape():
    iou = torch.rand(3, 2, requires_grad=True)
    m = hungarian_match(iou)
    assert m.slot_idx.dtype == torch.long and not m.slot_idx.requires_grad
    with pytest.raises(ValueError, match=r"\(K, F\)"):
        hungarian_match(torch.rand(2, 3, 4))


def test_iou_matrix_hand_case_and_ignore_pixels():
    pred = torch.zeros(1, 2, 2, 4, dtype=torch.bool)
    pred[0, 0, :, :2] = True  # left half
    pred[0, 1, :, 2:] = True  # right half
    target = torch.zeros(1, 2, 2, 4, dtype=torch.bool)
    target[0, 0, :, :3] = True  # three left columns (6 px)
    # segment 1 is empty
    iou = iou_matrix(pred, target)
    torch.testing.assert_close(iou[0], torch.tensor([[4 / 6, 0.0], [2 / 8, 0.0]]))
    valid = torch.ones(1, 2, 4, dtype=torch.bool)
    valid[0, :, 2] = False  # ignore the third column: it counts nowhere
    iou = iou_matrix(pred, target, valid)
    torch.testing.assert_close(iou[0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        iou_matrix(torch.zeros(2, 4, 4), target)
    with pytest.raises(ValueError, match="share"):
        iou_matrix(torch.zeros(1, 2, 3, 4), target)


def test_segments_from_semantic():
    mask = torch.tensor([[[0, 1, 1], [255, 3, 0]]])
    seg = segments_from_semantic(mask, num_classes=3)
    assert seg.masks.shape == (1, 4, 2, 3)
    assert seg.present.tolist() == [[True, True, False, True]]
    assert seg.valid.tolist() == [[[True, True, True], [False, True, True]]]
    assert int(seg.masks[0, 0].sum()) == 2  # the ignore pixel is in no segment
    seg = segments_from_semantic(mask, num_classes=3, background_segment=False)
    assert seg.present.tolist() == [[False, True, False, True]]
    with pytest.raises(ValueError, match="outside"):
        segments_from_semantic(torch.tensor([[[5]]]), num_classes=3)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        segments_from_semantic(torch.zeros(2, 2), num_classes=3)


def test_semantic_loss_hand_case_and_absent_image():
    # image 0: two slots, a soft mask that prefers slot 0 on the left; one segment on the left.
    soft = torch.zeros(2, 2, 1, 2)
    soft[:, 0, 0] = torch.tensor([0.8, 0.3])
    soft[:, 1, 0] = torch.tensor([0.2, 0.7])
    soft.requires_grad_(True)
    segments = torch.zeros(2, 1, 1, 2, dtype=torch.bool)
    segments[0, 0, 0, 0] = True
    present = torch.tensor([[True], [False]])  # image 1 has no segment: no semantic target
    out = semantic_loss(soft, segments, present)
    expected = -(torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.7))) / 2  # BCE(0.8,1), BCE(0.3,0)
    assert out.present.tolist() == [True, False]
    torch.testing.assert_close(out.per_image[0], expected)
    assert float(out.per_image[1].detach()) == 0.0
    torch.testing.assert_close(out.loss, expected)
    assert out.matches[0].slot_idx.tolist() == [0] and out.matches[1].slot_idx.numel() == 0
    out.loss.backward()
    assert soft.grad[0, 1].abs().sum() == 0  # the unmatched slot gets no semantic gradient
    assert soft.grad[1].abs().sum() == 0  # nor does the image without a target
    assert soft.grad[0, 0].abs().sum() > 0


def test_semantic_loss_all_absent_is_zero_with_graph():
    soft = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = semantic_loss(soft, torch.zeros(2, 2, 4, 4, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.bool))
    assert float(out.loss.detach()) == 0.0 and not bool(out.present.any())
    out.loss.backward()  # still differentiable, so a training step can add it unconditionally


def test_semantic_loss_ignore_pixels_do_not_count():
    torch.manual_seed(0)
    soft = torch.rand(1, 3, 4, 4).softmax(dim=1)
    mask = torch.randint(0, 3, (1, 4, 4))
    seg = segments_from_semantic(mask, num_classes=2)
    base = semantic_loss(soft, seg.masks, seg.present, seg.valid)
    # change the predictions on ignored pixels only: the loss must not move
    mask2 = mask.clone()
    mask2[0, 0] = 255
    seg2 = segments_from_semantic(mask2, num_classes=2)
    a = semantic_loss(soft, seg2.masks, seg2.present, seg2.valid)
    soft2 = soft.clone()
    soft2[0, :, 0] = torch.tensor([1.0, 0.0, 0.0])[:, None]
    b = semantic_loss(soft2, seg2.masks, seg2.present, seg2.valid)
    torch.testing.assert_close(a.loss, b.loss)
    assert not torch.allclose(a.loss, base.loss)


def test_semantic_loss_of_a_batch_equals_a_per_pair_loop():
    """The batched BCE against an independent loop: per image, the best assignment by enumeration, then
    −[t log p + (1 − t) log(1 − p)] averaged over the valid pixels of each matched pair and over the pairs."""
    g = torch.Generator().manual_seed(3)
    b, k, n_cls, h, w = 4, 4, 3, 6, 6
    soft = torch.rand(b, k, h, w, generator=g, dtype=torch.float64).softmax(dim=1)
    mask = torch.randint(0, n_cls + 1, (b, h, w), generator=g)
    mask[0, :2] = 255  # ignore pixels
    mask[2] = 1  # one segment only besides nothing
    seg = segments_from_semantic(mask, n_cls)
    present = seg.present.clone()
    present[3] = False  # an image without a target
    out = semantic_loss(soft, seg.masks, present, seg.valid)
    expected = torch.zeros(b, dtype=torch.float64)
    for i in range(b):
        ids = present[i].nonzero().flatten().tolist()
        if not ids:
            continue
        hard = soft[i].argmax(dim=0)
        v = seg.valid[i]
        iou = torch.zeros(k, len(ids))
        for s in range(k):
            for j, f in enumerate(ids):
                a, t = (hard == s) & v, seg.masks[i, f] & v
                union = (a | t).sum()
                iou[s, j] = (a & t).sum() / union if union > 0 else 0.0
        best = brute_force_best(iou)
        m = out.matches[i]
        assert float(iou[m.slot_idx, [ids.index(f) for f in m.segment_idx.tolist()]].sum()) == pytest.approx(best)
        terms = []
        for s, f in zip(m.slot_idx.tolist(), m.segment_idx.tolist()):
            p, t = soft[i, s].clamp(1e-6, 1 - 1e-6), seg.masks[i, f].double()
            bce = -(t * p.log() + (1 - t) * (1 - p).log())
            terms.append(bce[v].mean())
        expected[i] = torch.stack(terms).mean()
    torch.testing.assert_close(out.per_image, expected)
    assert out.present.tolist() == [True, True, True, False]
    torch.testing.assert_close(out.loss, expected[:3].mean())


def test_semantic_loss_under_bf16_autocast():
    """train.py --amp bf16: bf16 soft masks, the BCE in float32. The loss is the float32 loss of the same (rounded)
    masks, also where a slot is confidently wrong: its mask rounds to exactly 1 in bf16, and 1 − ε must not."""
    g = torch.Generator().manual_seed(5)
    soft = (torch.randn(3, 4, 8, 8, generator=g) * 12).softmax(dim=1).bfloat16()  # saturated: many exact 0s and 1s
    assert bool((soft == 1).any())
    seg = segments_from_semantic(torch.randint(0, 3, (3, 8, 8), generator=g), 2)
    ref = semantic_loss(soft.float(), seg.masks, seg.present, seg.valid).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = semantic_loss_batched(soft, seg.masks, seg.present, seg.valid).loss
    torch.testing.assert_close(out, ref)


def test_batched_semantic_loss_equals_the_plain_loop():
    """The vectorised form training uses gives the plain per-pair loop's values, matches and gradients, with ignore
    pixels, an image without segments and more segments than slots in one batch."""
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(4, 3, 8, 8, generator=g, requires_grad=True)
    mask = torch.randint(0, 5, (4, 8, 8), generator=g)
    mask[1, :2] = 255  # ignore pixels
    seg = segments_from_semantic(mask, 4)
    present = seg.present.clone()
    present[3] = False  # no target for image 3
    plain = semantic_loss(logits.softmax(dim=1), seg.masks, present, seg.valid)
    fast = semantic_loss_batched(logits.softmax(dim=1), seg.masks, present, seg.valid)
    torch.testing.assert_close(fast.per_image, plain.per_image)
    assert fast.present.tolist() == plain.present.tolist() == [True, True, True, False]
    for a, b in zip(fast.matches, plain.matches):
        assert a.slot_idx.tolist() == b.slot_idx.tolist() and a.segment_idx.tolist() == b.segment_idx.tolist()
    (grad_plain,) = torch.autograd.grad(plain.loss, logits)
    (grad_fast,) = torch.autograd.grad(fast.loss, logits)
    assert grad_plain.abs().sum() > 0
    torch.testing.assert_close(grad_fast, grad_plain)
