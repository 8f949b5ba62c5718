"""graphlab's fla dispatch (graphlab.nn.seq.delta.chunk) on CPU, against stand-ins for fla.

The stand-ins have fla 0.6.0's exact signatures and preconditions (``[B, T, H, ...]`` layout,
no float32 in ``chunk_delta_rule`` / ``chunk_gated_delta_product``, ``beta`` after ``gk, gv`` in
``fused_recurrent_gated_delta_rule``, whose backward fla does not implement, ``(t n)`` pseudo-token
order and ``num_householder`` in ``chunk_gated_delta_product``, ``scale`` defaulting to
``K ** -0.5``) and compute with the float64 loop reference, so a wrong call fails here instead of
on the GPU. The real kernels are compared in tests/test_seq_gpu.py.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphlab.nn.seq import DeltaNet, DeltaProduct
from graphlab.nn.seq.delta import chunk as dchunk
from graphlab.nn.seq.delta.naive import delta_product_naive

CALLS: list = []


def _ref(q, k, v, beta, g, scale, n_h=1):
    """fla semantics through the loop reference (k, v, beta flat over (t n) pseudo-tokens)."""
    Bsz, T, H, K = q.shape
    k5 = k.double().reshape(Bsz, T, n_h, H, K)
    v5 = v.double().reshape(Bsz, T, n_h, H, v.size(-1))
    b5 = beta.double().reshape(Bsz, T, n_h, H)
    o, S = delta_product_naive(q.double() * scale, k5, v5, b5, None if g is None else g.double())
    return o.to(q.dtype), S


def _scale(k, scale):
    return k.shape[-1] ** -0.5 if scale is None else scale


def chunk_delta_rule(q, k, v, beta, scale=None, initial_state=None, output_final_state=False,
                     use_qk_l2norm_in_kernel=False, cu_seqlens=None, cu_seqlens_cpu=None, **kwargs):
    CALLS.append("chunk_delta_rule")
    assert q.dtype == k.dtype == v.dtype and q.dtype != torch.float32
    assert beta.dim() == 3 and beta.shape == q.shape[:3]
    return _ref(q, k, v, beta, None, _scale(k, scale))


def fused_recurrent_delta_rule(q, k, v, beta=None, scale=None, initial_state=None,
                               output_final_state=False, use_qk_l2norm_in_kernel=False, cu_seqlens=None):
    CALLS.append("fused_recurrent_delta_rule")
    assert beta is not None and beta.shape == q.shape[:3] and v.shape[:3] == q.shape[:3]
    assert scale is None or scale > 0
    return _ref(q, k, v, beta, None, _scale(k, scale))


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                           use_qk_l2norm_in_kernel=False, use_beta_sigmoid_in_kernel=False,
                           allow_neg_eigval=False, state_v_first=False, cu_seqlens=None,
                           cu_seqlens_cpu=None, chunk_indices=None, cp_context=None, **kwargs):
    CALLS.append("chunk_gated_delta_rule")
    assert q.dtype == k.dtype == v.dtype
    assert g.shape == beta.shape == q.shape[:3]
    return _ref(q, k, v, beta, g, _scale(k, scale))


def fused_recurrent_gated_delta_rule(q, k, v, g=None, gk=None, gv=None, beta=None, scale=None,
                                     initial_state=None, output_final_state=False,
                                     use_qk_l2norm_in_kernel=False, use_gate_in_kernel=False,
                                     A_log=None, dt_bias=None, use_beta_sigmoid_in_kernel=False,
                                     allow_neg_eigval=False, state_v_first=False, cu_seqlens=None,
                                     **kwargs):
    CALLS.append("fused_recurrent_gated_delta_rule")
    assert gk is None and gv is None and beta is not None and beta.shape == q.shape[:3]
    assert g is None or g.shape == q.shape[:3]
    # fla: "Backward pass is not implemented yet"
    grads = [t.requires_grad for t in (q, k, v, g, beta) if t is not None]
    assert not (torch.is_grad_enabled() and any(grads))
    return _ref(q, k, v, beta, g, _scale(k, scale))


def chunk_gated_delta_product(q, k, v, g, beta, num_householder, scale=None, initial_state=None,
                              output_final_state=False, use_qk_l2norm_in_kernel=False, cu_seqlens=None,
                              cu_seqlens_cpu=None, cp_context=None):
    CALLS.append("chunk_gated_delta_product")
    assert q.dtype != torch.float32
    B, T, H, K, V = *q.shape, v.shape[-1]
    n = num_householder
    assert k.shape == (B, T * n, H, K) and v.shape == (B, T * n, H, V) and beta.shape == (B, T * n, H)
    assert g is None or g.shape == (B, T, H)
    return _ref(q, k, v, beta, g, _scale(k, scale), n)


FAKE_OPS = {f.__name__: f for f in (chunk_delta_rule, fused_recurrent_delta_rule, chunk_gated_delta_rule,
                                     fused_recurrent_gated_delta_rule, chunk_gated_delta_product)}


@pytest.fixture
def fake_fla(monkeypatch):
    monkeypatch.setattr(dchunk, "_fla_ops", lambda: FAKE_OPS)
    monkeypatch.setattr(dchunk, "_fla_device", lambda x: True)
    CALLS.clear()
    yield CALLS


def _inputs(n_h, gated, B=2, L=9, H=2, K=8, seed=0):
    g_ = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(B, L, H, K, generator=g_), dim=-1) * K ** -0.5
    k = F.normalize(torch.randn(B, L, n_h, H, K, generator=g_), dim=-1)
    v = torch.randn(B, L, n_h, H, K, generator=g_)
    beta = 2 * torch.rand(B, L, n_h, H, generator=g_)            # negative eigenvalues
    g = -torch.rand(B, L, H, generator=g_) if gated else None
    return q, k, v, beta, g


@pytest.mark.parametrize("n_h", [1, 2])
@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dispatch_calls_fla_correctly(fake_fla, n_h, gated, dtype):
    q, k, v, beta, g = _inputs(n_h, gated)
    cast = [None if t is None else t.to(dtype) for t in (q, k, v, beta)] + [g]
    with torch.no_grad():
        out = dchunk.delta_product(*cast, use_fla=True)
    expected = {(True, 1): "chunk_delta_rule", (True, 2): "chunk_gated_delta_product",
                (False, 1): "fused_recurrent_delta_rule", (False, 2): "fused_recurrent_delta_rule"}
    want = expected[dtype != torch.float32, n_h]
    if gated and want != "chunk_gated_delta_product":
        want = want.replace("delta_rule", "gated_delta_rule")
    assert fake_fla == [want]
    assert out.shape == q.shape and out.dtype == dtype
    ref = delta_product_naive(*(None if t is None else t.double() for t in cast))[0]
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert (out.double() - ref).abs().max() < tol


def test_fp32_gated_training_stays_on_torch(fake_fla):
    """fla's fused_recurrent_gated_delta_rule has no backward: with gradients, the torch path."""
    q, k, v, beta, g = _inputs(2, True)
    g.requires_grad_(True)
    out = dchunk.delta_product(q, k, v, beta, g, use_fla=True)
    out.sum().backward()
    assert fake_fla == [] and g.grad is not None
    assert dchunk.fla_backend(q, k, v, beta, g, 2) == "torch"
    with torch.no_grad():
        assert dchunk.fla_backend(q, k, v, beta, g, 2) == "fused_recurrent_gated_delta_rule"


def test_mixed_precision_runs_half_kernel(fake_fla):
    """Autocast leaves L2-normalised q, k in fp32 and v, beta in bf16: one dtype for fla."""
    q, k, v, beta, g = _inputs(1, True)
    out = dchunk.delta_rule(q, k[:, :, 0], v[:, :, 0].bfloat16(), beta[:, :, 0].bfloat16(), g)
    assert fake_fla == ["chunk_gated_delta_rule"] and out.dtype == torch.bfloat16


def test_unsupported_shapes_fall_back(fake_fla):
    q, k, v, beta, g = _inputs(1, False, K=7)
    assert dchunk.fla_backend(q, k, v, beta, g) == "torch"            # odd head dim
    q, k, v, beta, g = _inputs(1, False, K=8)
    assert dchunk.fla_backend(q.double(), k.double(), v.double(), beta.double()) == "torch"
    assert dchunk.fla_backend(q, k, v, beta, use_fla=False) == "torch"


@pytest.mark.parametrize("core", [lambda: DeltaNet(32, num_heads=2, allow_neg_eigval=True),
                                  lambda: DeltaNet(32, num_heads=2, use_gate=True),
                                  lambda: DeltaProduct(32, num_heads=2)])
def test_module_forward_through_fla_equals_torch_path(fake_fla, core):
    torch.manual_seed(0)
    m = core()
    x = torch.randn(2, 11, 32)
    mask = torch.arange(11)[None] < torch.tensor([11, 6])[:, None]
    with torch.no_grad():
        fast = m(x, mask)
        assert fake_fla, "the fla stand-in was not called"
        m.use_fla = False
        ref = m(x, mask)
    assert (fast - ref).abs().max() < 1e-5
