"""Sequence cores: the protocol (step == forward, padding safety, bidirectional reversal,
registry, errors) and gradients, on tiny float64 inputs."""
import pytest
import torch

from graphlab.nn.seq import (Bidirectional, DeltaNet, Mamba, S4D, SequenceCore, build_seq_core,
                             reverse_within_length)
from graphlab.registry import SEQ_CORES

D = 6
# name -> small configurations (chunk sizes small so that L = 45 spans several, unevenly)
CONFIGS = {
    "mamba": [dict(d_state=4, chunk_size=16), dict(d_state=4, chunk_size=16, allow_neg_eigval=True)],
    "s4d": [dict(d_state=8, init="inv"), dict(d_state=8, init="lin"), dict(d_state=8, init="legs")],
    "s4ptd": [dict(d_state=16)],
    "s5": [dict(d_state=8, chunk_size=16)],
    "s5ptd": [dict(d_state=16, chunk_size=16)],
    "deltanet": [dict(num_heads=2, chunk_size=16),
                 dict(num_heads=2, chunk_size=16, allow_neg_eigval=True, use_gate=True)],
    "deltaproduct": [dict(num_heads=2, chunk_size=16, num_householder=2),
                     dict(num_heads=3, chunk_size=16, num_householder=3, use_gate=False,
                          use_short_conv=False)],
}
CASES = [(n, kw) for n, kws in CONFIGS.items() for kw in kws]
IDS = [f"{n}-{i}" for n, kws in CONFIGS.items() for i in range(len(kws))]


def make(name, kw, seed=0):
    torch.manual_seed(seed)
    return build_seq_core(name, D, **kw).double()


def test_registry_has_every_core():
    assert set(CONFIGS) <= set(SEQ_CORES.names())
    for name in CONFIGS:
        assert issubclass(SEQ_CORES.get(name), SequenceCore)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_step_equals_forward(name, kw):
    core = make(name, kw)
    x = torch.randn(2, 45, D, dtype=torch.float64)
    y = core(x)
    state, ys = core.init_state(2), []
    for t in range(x.size(1)):
        y_t, state = core.step(x[:, t], state)
        ys.append(y_t)
    assert y.shape == x.shape
    assert (torch.stack(ys, 1) - y).abs().max() < 1e-8


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_padding_is_inert(name, kw):
    core = make(name, kw)
    lengths = [45, 17, 1]
    L = max(lengths)
    x = torch.randn(len(lengths), L, D, dtype=torch.float64)
    mask = torch.arange(L)[None] < torch.tensor(lengths)[:, None]
    x = x.masked_fill(~mask[..., None], float("nan")).requires_grad_(True)
    y = core(x, mask)
    assert torch.isfinite(y).all()
    assert (y[~mask] == 0).all()
    for b, n in enumerate(lengths):  # each sequence alone, unpadded
        alone = core(x[b:b + 1, :n].detach())
        assert (y[b, :n] - alone[0]).abs().max() < 1e-10
    y.sum().backward()
    assert (x.grad[~mask] == 0).all()
    assert torch.isfinite(x.grad).all()


def test_huge_pad_values_are_inert():
    core = make("mamba", CONFIGS["mamba"][1])
    x = torch.randn(2, 30, D, dtype=torch.float64)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 12:] = False
    x2 = x.clone()
    x2[1, 12:] = 1e6
    assert (core(x, mask) - core(x2, mask)).abs().max() == 0


def test_reverse_within_length():
    x = torch.arange(2 * 5, dtype=torch.float64).view(2, 5, 1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    r = reverse_within_length(x, mask)
    assert r[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert r[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]
    assert torch.equal(reverse_within_length(r, mask), x)


@pytest.mark.parametrize("merge", ["add", "concat_proj"])
def test_bidirectional_reverses_within_length(merge):
    torch.manual_seed(0)
    fwd, bwd = Mamba(D, d_state=4, chunk_size=8), DeltaNet(D, num_heads=2, chunk_size=8)
    bi = Bidirectional(fwd, bwd, merge=merge).double()
    lengths = [20, 7]
    x = torch.randn(2, 20, D, dtype=torch.float64)
    mask = torch.arange(20)[None] < torch.tensor(lengths)[:, None]
    x = x.masked_fill(~mask[..., None], float("nan"))
    y = bi(x, mask)
    assert (y[~mask] == 0).all()
    for b, n in enumerate(lengths):
        xb = x[b:b + 1, :n]
        y_f = fwd(xb)
        y_b = bwd(xb.flip(1)).flip(1)
        ref = y_f + y_b if merge == "add" else bi.proj(torch.cat([y_f, y_b], -1))
        assert (y[b, :n] - ref[0]).abs().max() < 1e-10


def test_build_bidirectional_and_bad_arguments():
    core = build_seq_core("s4d", D, bidirectional=True, merge="concat_proj", d_state=4)
    assert isinstance(core, Bidirectional)
    with pytest.raises(KeyError, match="unknown sequence core"):
        build_seq_core("mambaa", D)
    with pytest.raises(ValueError, match="num_heads"):
        DeltaNet(6, num_heads=4)
    with pytest.raises(ValueError, match="init"):
        S4D(6, init="legt")
    with pytest.raises(ValueError, match="merge"):
        Bidirectional(Mamba(D), Mamba(D), merge="mul")
    m = Mamba(D)
    with pytest.raises(ValueError, match="width"):
        m(torch.randn(1, 3, D + 1))
    with pytest.raises(ValueError, match="right-padded"):
        m(torch.randn(1, 3, D), torch.tensor([[False, True, True]]))
    with pytest.raises(ValueError, match="bool"):
        m(torch.randn(1, 3, D), torch.ones(1, 3))


def test_mamba_defaults_and_negative_range():
    m = Mamba(32)
    assert (m.d_state, m.d_conv, m.expand, m.dt_rank) == (16, 4, 2, 2)
    from graphlab.nn.seq.ssm.naive import selective_transition
    delta = torch.tensor([[1e-3, 0.5, 2.0]], dtype=torch.float64)
    a = selective_transition(delta, -torch.exp(m.A_log[:3].double()), True)
    assert (a > -1).all() and (a < 1).all() and (a < 0).any()


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_gradcheck(name, kw):
    core = make(name, kw)
    x = torch.randn(1, 5, D, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True, True, False]])
    assert torch.autograd.gradcheck(lambda inp: core(inp, mask), (x,), eps=1e-6, atol=1e-5,
                                    fast_mode=True)


@pytest.mark.parametrize("neg", [False, True])
def test_mamba_recompute_equals_stored_states(neg):
    """``recompute=True`` (scan states recomputed in backward) gives the same outputs and
    gradients as keeping them, and keeps fewer tensors for the backward pass."""
    torch.manual_seed(0)
    a = Mamba(D, allow_neg_eigval=neg, chunk_size=4).double()
    b = Mamba(D, allow_neg_eigval=neg, chunk_size=4, recompute=True).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 11, D, dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 7:] = False
    saved = {}
    for name, m in (("stored", a), ("recompute", b)):
        m.zero_grad()
        xi = x.clone().requires_grad_(True)
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t,
                                                      lambda t: t):
            y = m(xi, mask)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        saved[name] = (y.detach(), xi.grad, [p.grad.clone() for p in m.parameters()], sum(sizes))
    ya, gxa, gpa, na = saved["stored"]
    yb, gxb, gpb, nb = saved["recompute"]
    assert torch.allclose(ya, yb, atol=1e-12) and torch.allclose(gxa, gxb, atol=1e-10)
    for pa, pb in zip(gpa, gpb):
        assert torch.allclose(pa, pb, atol=1e-10)
    assert nb < na / 2
