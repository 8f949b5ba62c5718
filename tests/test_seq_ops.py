"""The fast sequence operators against their step-by-step twins (float64), and op-count scaling."""
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from graphlab.nn.seq import DeltaNet, DeltaProduct, Mamba, S4D, S5
from graphlab.nn.seq.delta import (chunk_delta_product, chunk_delta_rule, delta_product_naive,
                                   delta_rule_naive)
from graphlab.nn.seq.ssm.kernel import fft_causal_conv, vandermonde_kernel, zoh
from graphlab.nn.seq.ssm.naive import lti_diagonal_naive, s4d_naive, selective_scan_naive
from graphlab.nn.seq.ssm.scan import linear_scan

TOL = 1e-8


def _loop_scan(a, b, h0=None):
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.size(1)):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)


@pytest.mark.parametrize("L,chunk", [(1, 64), (37, 8), (130, 64), (200, 16)])
@pytest.mark.parametrize("kind", ["positive", "signed", "complex"])
def test_linear_scan_matches_loop(L, chunk, kind):
    g = torch.Generator().manual_seed(L)
    shape = (2, L, 3, 4)
    if kind == "complex":
        a = torch.polar(torch.rand(shape, generator=g, dtype=torch.float64),
                        torch.randn(shape, generator=g, dtype=torch.float64))
        b = torch.randn(shape, generator=g, dtype=torch.complex128)
        h0 = torch.randn(2, 3, 4, generator=g, dtype=torch.complex128)
    else:
        a = torch.rand(shape, generator=g, dtype=torch.float64)
        if kind == "signed":
            a = 2 * a - 1          # transitions in (-1, 1), many negative
        b = torch.randn(shape, generator=g, dtype=torch.float64)
        h0 = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    for init in (None, h0):
        ref = _loop_scan(a, b, init)
        assert (linear_scan(a, b, init, chunk_size=chunk) - ref).abs().max() < TOL


def test_linear_scan_exact_for_exactly_minus_one():
    # a = -1 alternates the sign forever: log-space cumsum tricks cannot represent this.
    a = -torch.ones(1, 300, 1, dtype=torch.float64)
    b = torch.zeros_like(a)
    b[:, 0] = 1.0
    h = linear_scan(a, b, chunk_size=64)[0, :, 0]
    assert torch.equal(h, (-1.0) ** torch.arange(300, dtype=torch.float64))


@pytest.mark.parametrize("L,chunk", [(45, 16), (130, 64), (64, 64)])
@pytest.mark.parametrize("gated", [False, True])
def test_chunk_delta_rule_matches_recurrence(L, chunk, gated):
    g_ = torch.Generator().manual_seed(L + gated)
    B, H, K, V = 2, 2, 5, 3
    q = torch.randn(B, L, H, K, generator=g_, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(B, L, H, K, generator=g_, dtype=torch.float64), dim=-1)
    v = torch.randn(B, L, H, V, generator=g_, dtype=torch.float64)
    beta = 2 * torch.rand(B, L, H, generator=g_, dtype=torch.float64)   # (0, 2): negative eigenvalues
    g = -torch.rand(B, L, H, generator=g_, dtype=torch.float64) if gated else None
    h0 = torch.randn(B, H, K, V, generator=g_, dtype=torch.float64)
    o_ref, s_ref = delta_rule_naive(q, k, v, beta, g, h0)
    o, s = chunk_delta_rule(q, k, v, beta, g, h0, chunk_size=chunk)
    assert (o - o_ref).abs().max() < TOL
    assert (s - s_ref).abs().max() < TOL


@pytest.mark.parametrize("n_h", [2, 3])
def test_chunk_delta_product_matches_recurrence(n_h):
    g_ = torch.Generator().manual_seed(n_h)
    B, L, H, K = 2, 41, 2, 4
    q = torch.randn(B, L, H, K, generator=g_, dtype=torch.float64)
    k = torch.nn.functional.normalize(torch.randn(B, L, n_h, H, K, generator=g_, dtype=torch.float64), dim=-1)
    v = torch.randn(B, L, n_h, H, K, generator=g_, dtype=torch.float64)
    beta = 2 * torch.rand(B, L, n_h, H, generator=g_, dtype=torch.float64)
    g = -torch.rand(B, L, H, generator=g_, dtype=torch.float64)
    o_ref, s_ref = delta_product_naive(q, k, v, beta, g)
    o, s = chunk_delta_product(q, k, v, beta, g, chunk_size=16)
    assert (o - o_ref).abs().max() < TOL
    assert (s - s_ref).abs().max() < TOL


@pytest.mark.parametrize("neg", [False, True])
def test_mamba_scan_matches_selective_scan_naive(neg):
    torch.manual_seed(0)
    m = Mamba(6, d_state=4, chunk_size=16, allow_neg_eigval=neg).double()
    x = torch.randn(2, 50, 6, dtype=torch.float64)
    u, z = m.in_proj(x).chunk(2, -1)
    from graphlab.nn.seq.base import causal_depthwise_conv
    u = torch.nn.functional.silu(causal_depthwise_conv(u, m.conv_weight, m.conv_bias))
    delta, Bm, Cm = m._ssm_inputs(u)
    y_ref, _ = selective_scan_naive(u, delta, -torch.exp(m.A_log), Bm, Cm, m.D, z, neg)
    assert (m.out_proj(y_ref) - m(x)).abs().max() < TOL


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_s4d_kernel_equals_recurrence(init):
    torch.manual_seed(1)
    m = S4D(5, d_state=8, init=init).double()
    lam, CB, dt = m._modes()
    u = torch.randn(3, 77, 5, dtype=torch.float64)
    K = vandermonde_kernel(lam, dt, CB, 77, 2.0)
    y_fft = fft_causal_conv(u, K) + m.D * u
    lam_bar, b_fac = zoh(lam, dt)
    y_rec, _ = s4d_naive(u, lam_bar, CB * b_fac, m.D, 2.0)
    assert (y_fft - y_rec).abs().max() < TOL


def test_s5_scan_equals_recurrence():
    torch.manual_seed(2)
    m = S5(4, d_state=6, chunk_size=16).double()
    lam_bar, B_bar, C = m._discrete()
    u = torch.randn(2, 70, 4, dtype=torch.float64)
    y_rec, _ = lti_diagonal_naive(u, lam_bar, B_bar, C, m.D, scale=1.0)
    h = linear_scan(lam_bar.expand(2, 70, -1), u.to(B_bar.dtype) @ B_bar.T, chunk_size=16)
    y = (h @ C.T).real + m.D * u
    assert (y - y_rec).abs().max() < TOL


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def _op_count(core, L):
    x = torch.randn(1, L, core.d_model)
    with torch.no_grad(), _CountOps() as c:
        core(x)
    return c.n


@pytest.mark.parametrize("make,kind", [
    (lambda: Mamba(4, d_state=4, expand=1, allow_neg_eigval=True), "log"),
    (lambda: S5(4, d_state=4), "log"),
    (lambda: S4D(4, d_state=4), "log"),
    (lambda: DeltaNet(4, num_heads=1, allow_neg_eigval=True), "chunks"),
    (lambda: DeltaProduct(4, num_heads=1, num_householder=2), "chunks"),
])
def test_op_count_is_not_linear_in_length(make, kind):
    """Counts the aten ops one forward dispatches at L = 256 and at L = 4096 (log kinds) or 2048."""
    torch.manual_seed(0)
    core = make()
    L_long = 4096 if kind == "log" else 2048
    n_short, n_long = _op_count(core, 256), _op_count(core, L_long)
    if kind == "log":       # parallel scan / FFT: O(log L) ops
        assert n_long < 2 * n_short, (n_short, n_long)
    else:                   # chunked WY form: O(L / chunk) ops, chunk = 64 tokens (pseudo-tokens)
        n_h = getattr(core, "num_householder", 1)
        extra_chunks = math.ceil(L_long * n_h / 64) - math.ceil(256 * n_h / 64)
        # a constant number of ops per extra chunk, and far fewer than one per extra token
        assert n_long - n_short <= 48 * extra_chunks, (n_short, n_long)
        assert n_long - n_short < (L_long - 256) * n_h, (n_short, n_long)
