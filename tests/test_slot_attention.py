"""Tests of slot_attention.py: shapes, Eq. 1 properties, gradients, parity with a naive per-sample loop."""
import math

import pytest
import torch

from slot_attention import GLASSSlotConfig, GLASSSlotModule, SlotAttention, build_grid


def make(seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(num_slots=4, dim=16, input_dim=12, iters=3, eps=1e-8)
    args.update(kw)
    return SlotAttention(**args).double()


def test_shapes_and_attention_sums_to_one_over_slots():
    sa = make()
    x = torch.randn(3, 20, 12, dtype=torch.float64)
    out = sa(x)
    assert out.slots.shape == (3, 4, 16)
    assert out.attn.shape == (3, 4, 20)
    assert out.init.shape == (3, 4, 16)
    torch.testing.assert_close(out.attn.sum(dim=1), torch.ones(3, 20, dtype=torch.float64))
    # softmax over slots, not over tokens: the per-slot sums over tokens are not all 1
    assert not torch.allclose(out.attn.sum(dim=2), torch.ones(3, 4, dtype=torch.float64))


def test_slot_permutation_equivariance():
    sa = make()
    x = torch.randn(2, 25, 12, dtype=torch.float64)
    init = torch.randn(2, 4, 16, dtype=torch.float64)
    perm = torch.tensor([2, 0, 3, 1])
    a, b = sa(x, slots=init), sa(x, slots=init[:, perm])
    torch.testing.assert_close(b.slots, a.slots[:, perm])
    torch.testing.assert_close(b.attn, a.attn[:, perm])


def test_input_order_invariance():
    sa = make()
    x = torch.randn(2, 25, 12, dtype=torch.float64)
    init = torch.randn(2, 4, 16, dtype=torch.float64)
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(1))
    a, b = sa(x, slots=init), sa(x[:, perm], slots=init)
    torch.testing.assert_close(b.slots, a.slots)
    torch.testing.assert_close(b.attn, a.attn[:, :, perm])


def test_one_slot_takes_all_attention():
    # With K = 1 the softmax over slots is 1 everywhere; with one active slot in a mask, the same.
    sa = make(num_slots=1)
    out = sa(torch.randn(2, 9, 12, dtype=torch.float64))
    torch.testing.assert_close(out.attn, torch.ones(2, 1, 9, dtype=torch.float64))
    sa = make()
    mask = torch.tensor([[False, True, False, False], [True, True, True, True]])
    out = sa(torch.randn(2, 9, 12, dtype=torch.float64), slot_mask=mask)
    torch.testing.assert_close(out.attn[0, 1], torch.ones(9, dtype=torch.float64))
    assert out.attn[0, [0, 2, 3]].abs().max() == 0
    assert out.attn[1].min() > 0


def test_every_parameter_receives_gradient():
    for kw in (dict(), dict(learned_init=True), dict(bilevel=True)):
        sa = make(**kw)
        out = sa(torch.randn(2, 10, 12, dtype=torch.float64))
        (out.slots.pow(2).sum() + out.attn.pow(2).sum()).backward()
        for name, p in sa.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient with {kw}"


def test_bilevel_detaches_all_but_the_last_iteration():
    x = torch.randn(1, 10, 12, dtype=torch.float64)
    init = torch.randn(1, 4, 16, dtype=torch.float64)
    grads = []
    for bilevel in (True, False):
        sa = make(bilevel=bilevel)
        out = sa(x, slots=init)
        out.slots.sum().backward()
        grads.append((out.slots.detach(), sa.gru.weight_hh.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])  # same forward
    assert not torch.allclose(grads[0][1], grads[1][1])  # fewer paths for the gradient
    # with a single iteration, bi-level changes nothing at all
    g1 = []
    for bilevel in (True, False):
        sa = make(bilevel=bilevel, iters=1)
        sa(x, slots=init).slots.sum().backward()
        g1.append(sa.gru.weight_hh.grad.clone())
    torch.testing.assert_close(g1[0], g1[1])


def naive_slot_attention(sa, x, init):
    """Eq. 1 written with explicit loops over images, slots and tokens, with explicit keys and values, independent of
    both of the module's paths (the textbook step and the folded one)."""
    b, n, _ = x.shape
    k_slots = init.shape[1]
    out_slots, out_attn = [], []
    for i in range(b):
        xi = torch.nn.functional.layer_norm(x[i], (x.shape[-1],), sa.norm_inputs.weight, sa.norm_inputs.bias)
        keys = xi @ sa.to_k.weight.T
        vals = xi @ sa.to_v.weight.T
        s = init[i].clone()
        for _ in range(sa.iters):
            sn = torch.nn.functional.layer_norm(s, (sa.dim,), sa.norm_slots.weight, sa.norm_slots.bias)
            q = sn @ sa.to_q.weight.T
            attn = torch.zeros(k_slots, n, dtype=x.dtype)
            for t in range(n):
                logits = torch.stack([q[j] @ keys[t] / math.sqrt(sa.dim) for j in range(k_slots)])
                e = torch.exp(logits - logits.max())
                attn[:, t] = e / e.sum()
            upd = torch.zeros(k_slots, sa.dim, dtype=x.dtype)
            for j in range(k_slots):
                w = attn[j] + sa.eps
                w = w / w.sum()
                upd[j] = sum(w[t] * vals[t] for t in range(n))
            s = sa.gru(upd, s)
            s = s + sa.mlp(torch.nn.functional.layer_norm(s, (sa.dim,), sa.norm_mlp.weight, sa.norm_mlp.bias))
        out_slots.append(s)
        out_attn.append(attn)
    return torch.stack(out_slots), torch.stack(out_attn)


@pytest.mark.parametrize("folded", [False, True])
def test_every_iteration_attention_matches_the_naive_loop_stopped_there(folded):
    """attn_per_iter[t] is the attention a naive loop of t + 1 iterations ends with (iters= overrides T)."""
    sa = make(eps=1e-3, folded=folded)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    init = torch.randn(2, 4, 16, dtype=torch.float64)
    out = sa(x, slots=init, iters=4)
    assert out.attn_per_iter.shape == (4, 2, 4, 7)
    for t in range(4):
        sa.iters = t + 1  # the reference loop reads sa.iters
        _, ref_attn = naive_slot_attention(sa, x, init)
        torch.testing.assert_close(out.attn_per_iter[t], ref_attn)
    torch.testing.assert_close(out.attn, out.attn_per_iter[-1])


@pytest.mark.parametrize("folded", [False, True])
def test_parity_with_naive_loop(folded):
    sa = make(eps=1e-3, folded=folded)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    init = torch.randn(2, 4, 16, dtype=torch.float64)
    out = sa(x, slots=init)
    ref_slots, ref_attn = naive_slot_attention(sa, x, init)
    torch.testing.assert_close(out.attn, ref_attn)
    torch.testing.assert_close(out.slots, ref_slots)


@pytest.mark.parametrize("folded", [False, True])
def test_gradients_match_the_naive_loop(folded):
    """Both paths give the input, key and value weights what the naive loop (keys and values built explicitly)
    gives them: folding W_k and W_v into the iterations changes the order of the arithmetic, not its gradients."""
    sa = make(eps=1e-3, folded=folded)
    x = torch.randn(2, 7, 12, dtype=torch.float64, requires_grad=True)
    init = torch.randn(2, 4, 16, dtype=torch.float64)
    weight = torch.randn(2, 4, 16, dtype=torch.float64)  # a loss that weighs every slot entry differently
    params = [x, sa.to_k.weight, sa.to_v.weight, sa.norm_inputs.weight]
    ours = torch.autograd.grad((sa(x, slots=init).slots * weight).sum(), params)
    ref = torch.autograd.grad((naive_slot_attention(sa, x, init)[0] * weight).sum(), params)
    for g, r in zip(ours, ref):
        torch.testing.assert_close(g, r)


def test_textbook_and_folded_paths_agree_in_float32():
    """The readable path (keys and values built) and the fast one GLASS trains with: same outputs, same gradients
    to every parameter and to the input, within 1e-5, at GLASS-like widths and with an inactive slot."""
    torch.manual_seed(1)
    plain = SlotAttention(num_slots=5, dim=64, input_dim=48, iters=3, eps=1e-6, mlp_hidden=96, folded=False)
    folded = SlotAttention(num_slots=5, dim=64, input_dim=48, iters=3, eps=1e-6, mlp_hidden=96, folded=True)
    folded.load_state_dict(plain.state_dict())
    x = torch.randn(3, 49, 48)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 4] = False
    weight = torch.randn(3, 5, 64)
    grads, outs = [], []
    for sa in (plain, folded):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(2)  # the same sampled initial slots for both
        out = sa(xi, slot_mask=mask)
        ((out.slots * weight).sum() + (out.attn_per_iter ** 2).sum()).backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in sa.parameters()])
    for name in ("slots", "attn", "attn_per_iter"):
        torch.testing.assert_close(getattr(outs[1], name), getattr(outs[0], name), atol=1e-5, rtol=1e-5)
    assert len(grads[0]) == len(grads[1]) == 1 + len(list(plain.parameters()))
    for g_folded, g_plain in zip(grads[1], grads[0]):
        assert g_plain is not None and g_plain.abs().sum() > 0
        torch.testing.assert_close(g_folded, g_plain, atol=1e-5, rtol=1e-5)


def test_glass_slot_module_gets_a_fresh_default_config_each():
    a, b = GLASSSlotModule(GLASSSlotConfig(input_dim=8, dim=8, out_dim=4)), GLASSSlotModule()
    c = GLASSSlotModule()
    assert a.config is not b.config and b.config is not c.config
    assert b.config == GLASSSlotConfig() and b.config.folded  # GLASS trains with the fast path


def test_sampled_init_uses_mu_and_sigma():
    sa = make()
    with torch.no_grad():
        sa.slots_mu.fill_(3.0)
        sa.slots_log_sigma.fill_(math.log(1e-6))
    init = sa.sample_init(5)
    assert init.shape == (5, 4, 16)
    torch.testing.assert_close(init, torch.full_like(init, 3.0), atol=1e-4, rtol=0)


def test_bad_input_raises_value_error_naming_the_shape():
    sa = make()
    with pytest.raises(ValueError, match=r"\(B, N, 12\)"):
        sa(torch.randn(20, 12, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(B, N, 12\)"):
        sa(torch.randn(2, 20, 11, dtype=torch.float64))
    with pytest.raises(ValueError, match="floating"):
        sa(torch.ones(2, 20, 12, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(2, K, 16\)"):
        sa(torch.randn(2, 20, 12, dtype=torch.float64), slots=torch.randn(3, 4, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="slot_mask"):
        sa(torch.randn(2, 20, 12, dtype=torch.float64), slot_mask=torch.ones(2, 4))


def test_grid_layout_cell_centres_and_edges():
    g = build_grid(2, 3)  # cell centres (the authors' code): x in {1/6, 1/2, 5/6}, y in {1/4, 3/4}
    assert g.shape == (6, 4)
    torch.testing.assert_close(g[0], torch.tensor([1 / 6, 1 / 4, 5 / 6, 3 / 4]))
    torch.testing.assert_close(g[2], torch.tensor([5 / 6, 1 / 4, 1 / 6, 3 / 4]))  # row 0, last column
    torch.testing.assert_close(g[5], torch.tensor([5 / 6, 3 / 4, 1 / 6, 1 / 4]))
    e = build_grid(2, 3, centres=False)  # edges: linspace(0, 1, n)
    torch.testing.assert_close(e[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(e[5], torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_gaussian_init_scales():
    """Xavier-uniform μ and log σ (the authors' code) start σ near 1: U(±√(3/D)); "small" starts σ at D^-½."""
    d = 768
    xavier = SlotAttention(num_slots=7, dim=d)
    bound = math.sqrt(3 / d)
    assert xavier.slots_log_sigma.abs().max() <= bound and xavier.slots_mu.abs().max() <= bound
    assert xavier.slots_log_sigma.std() > bound / 3  # spread over the interval, not a constant
    small = SlotAttention(num_slots=7, dim=d, gaussian_init="small")
    torch.testing.assert_close(small.slots_log_sigma.exp(), torch.full((1, 1, d), d ** -0.5))
    with pytest.raises(ValueError, match="gaussian_init"):
        SlotAttention(num_slots=7, dim=d, gaussian_init="normal")


def test_glass_slot_module_paper_defaults_and_shapes():
    c = GLASSSlotConfig()
    assert (c.num_slots, c.iters, c.dim, c.mlp_hidden, c.eps, c.out_dim) == (7, 5, 768, 768, 1e-6, 1024)
    torch.manual_seed(0)
    m = GLASSSlotModule(GLASSSlotConfig(input_dim=8, dim=16, mlp_hidden=16, out_dim=24, num_slots=3, iters=2))
    out = m(torch.randn(2, 36, 8))
    assert out.slots.shape == (2, 3, 16) and out.attn.shape == (2, 3, 36) and out.cond.shape == (2, 3, 24)
    out.cond.sum().backward()
    assert m.pos_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="square"):
        m(torch.randn(2, 35, 8))
    out = m(torch.randn(2, 12, 8), grid_size=(3, 4))
    assert out.attn.shape == (2, 3, 12)
