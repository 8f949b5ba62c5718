"""GAT mode of the fused sparse attention (:func:`graphlab.kernels.gat_attention`) on CPU.

Triton kernels run in the interpreter (conftest.py sets ``TRITON_INTERPRET=1`` without a GPU);
both paths are compared with the float64 loop reference ``naive.gat_attention_ref`` for the
forward and every gradient, on tiny graphs with a target hub and a source hub (split into
several row chunks), self-loops, duplicate edges, isolated nodes and a single node.
"""
from __future__ import annotations

import pytest
import torch

from graphlab import kernels as K
from graphlab.kernels import dispatch
from graphlab.kernels.naive import gat_attention_ref

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # interpreter's -inf - -inf
DT = torch.float64
HAS_TRITON = dispatch.triton_available(torch.device("cpu"))
BACKENDS = ["torch", pytest.param("triton", marks=pytest.mark.skipif(
    not HAS_TRITON, reason="triton interpreter not enabled"))]


@pytest.fixture(autouse=True)
def _reset_backend(monkeypatch):
    if HAS_TRITON:
        from graphlab.kernels import triton_kernels
        monkeypatch.setattr(triton_kernels, "CHUNK", 8)  # hubs split into several chunks
    yield
    K.set_backend(None)


def make_graph(seed: int = 0, n: int = 8, e: int = 16):
    """Random edges plus a target hub (node 0, in-degree 20), a source hub (node 1, out-degree
    20), a duplicate edge, self-loops; nodes n-2 and n-1 receive nothing, node n-1 sends nothing."""
    g = torch.Generator().manual_seed(seed)
    src = torch.cat([torch.randint(0, n - 1, (e,), generator=g),
                     torch.randint(0, n - 1, (20,), generator=g), torch.ones(20, dtype=torch.long),
                     torch.tensor([2, 2, 3, 4])])
    dst = torch.cat([torch.randint(0, n - 2, (e,), generator=g), torch.zeros(20, dtype=torch.long),
                     torch.randint(0, n - 2, (20,), generator=g), torch.tensor([5, 5, 3, 4])])
    return torch.stack([src, dst]), n


def _inputs(n: int, heads, C: int, seed: int = 0, n_dst=None):
    g = torch.Generator().manual_seed(seed)
    n_dst = n if n_dst is None else n_dst
    hs = () if heads is None else (heads,)
    x = torch.randn(n, *hs, C, dtype=DT, generator=g)
    a_s = 2 * torch.randn(n, *hs, dtype=DT, generator=g)
    a_d = 2 * torch.randn(n_dst, *hs, dtype=DT, generator=g)
    return [t.requires_grad_() for t in (x, a_s, a_d)]


def _check(ei, ins, slope=0.2, num_nodes=None):
    ref = gat_attention_ref(ei, *ins, slope)
    out = K.gat_attention(ei, *ins, negative_slope=slope, num_nodes=num_nodes)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    got = torch.autograd.grad(out, ins, g, allow_unused=True)
    want = torch.autograd.grad(ref, ins, g, allow_unused=True)
    for name, a, b in zip(("x", "a_src", "a_dst"), got, want):
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(a, b, msg=lambda m, name=name: f"grad {name}: {m}")
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_gat_attention_matches_reference(backend):
    K.set_backend(backend)
    ei, n = make_graph(0)
    out = _check(ei, _inputs(n, 2, 3, seed=1))
    assert (out[n - 2:] == 0).all()  # isolated targets give zeros
    _check(ei, _inputs(n, None, 5, seed=2), slope=0.01)  # one head, (N, C) layout
    # equals sparse_attention on the explicitly built logits
    x, a_s, a_d = _inputs(n, 2, 3, seed=3)
    logits = torch.nn.functional.leaky_relu(a_s[ei[0]] + a_d[ei[1]], 0.2)
    torch.testing.assert_close(K.gat_attention(ei, x, a_s, a_d), K.sparse_attention(ei, logits, x))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gat_attention_edge_cases(backend):
    K.set_backend(backend)
    # no edges: zeros and zero gradients
    ins = _inputs(3, 2, 4)
    out = K.gat_attention(torch.empty(2, 0, dtype=torch.long), *ins)
    assert out.shape == (3, 2, 4) and (out == 0).all()
    for gr in torch.autograd.grad(out.sum(), ins, allow_unused=True):
        assert gr is None or (gr == 0).all()
    # single node with a self-loop: the output is x itself, scores get zero gradient
    one = torch.tensor([[0], [0]])
    x1, s1, d1 = _inputs(1, 2, 3, seed=4)
    torch.testing.assert_close(K.gat_attention(one, x1, s1, d1), x1)
    _check(one, [x1, s1, d1])
    # bipartite: 5 sources -> 3 targets, target 2 isolated
    ei = torch.tensor([[0, 4, 2, 4, 4], [0, 1, 1, 0, 1]])
    _check(ei, _inputs(5, 2, 2, seed=5, n_dst=3), num_nodes=(5, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gat_attention_gradcheck(backend):
    K.set_backend(backend)
    ei = torch.tensor([[0, 1, 2, 2, 3, 0, 1], [1, 0, 1, 3, 3, 3, 1]])  # loops, node 2 no in-edges
    x, a_s, a_d = _inputs(4, 2 if backend == "torch" else 1, 2, seed=6)  # interpreter: small
    with torch.no_grad():  # keep |z| away from the leaky ReLU kink at 0 for finite differences
        a_s.add_(torch.where(a_s >= 0, 0.3, -0.3))
    assert torch.autograd.gradcheck(lambda x, s, d: K.gat_attention(ei, x, s, d), (x, a_s, a_d))


@pytest.mark.skipif(not HAS_TRITON, reason="triton interpreter not enabled")
def test_gat_attention_triton_float32_bf16():
    ei, n = make_graph(7)
    x, a_s, a_d = _inputs(n, 2, 4, seed=7)
    ref = gat_attention_ref(ei, x, a_s, a_d)
    g = torch.randn_like(ref)
    ref_g = torch.autograd.grad(ref, (x, a_s, a_d), g)
    K.set_backend("triton")
    for dtype, tol in [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)]:
        ins = [t.detach().to(dtype).requires_grad_() for t in (x, a_s, a_d)]
        out = K.gat_attention(ei, *ins)
        assert out.dtype == dtype
        assert ((out.double() - ref).norm() / ref.norm()) < tol
        for a, r in zip(torch.autograd.grad(out, ins, g.to(dtype)), ref_g):
            assert a.dtype == dtype and ((a.double() - r).norm() / r.norm()) < 4 * tol


def test_gat_attention_bad_inputs():
    ei, n = make_graph(8)
    x, a_s, a_d = _inputs(n, 2, 3)
    with pytest.raises(ValueError, match="a_src"):
        K.gat_attention(ei, x, a_s[:, :1], a_d)
    with pytest.raises(ValueError, match="a_src"):
        K.gat_attention(ei, x, a_s[:-1], a_d)
    with pytest.raises(ValueError, match="x must be"):
        K.gat_attention(ei, x[..., 0, 0], a_s, a_d)
    with pytest.raises(ValueError, match="a_dst must be a floating"):
        K.gat_attention(ei, x, a_s, a_d.long())
    with pytest.raises(ValueError, match="num_nodes"):  # edges to targets beyond a_dst
        K.gat_attention(ei, x, a_s, a_d[:3])
    with pytest.raises(ValueError, match="targets"):
        K.gat_attention(K.to_csr(ei, n), x, a_s, a_d[:3])


def test_gat_attention_opcheck_and_compile():
    from graphlab.kernels import ops
    import torch._dynamo
    K.set_backend("torch")
    ei, n = make_graph(9)
    csr = K.to_csr(ei, n)
    c = (csr.rowptr, csr.col, csr.row, csr.colptr, csr.row_t, csr.col_t, csr.perm_t)
    x, a_s, a_d = _inputs(n, 2, 3, seed=9)
    tests = ("test_schema", "test_autograd_registration", "test_faketensor",
             "test_aot_dispatch_dynamic")
    torch.library.opcheck(ops.gat_attention_op, (*c, a_s, a_d, x.reshape(n, 6), 2, 0.2),
                          test_utils=tests)
    # the raw backward ops (no autograd of their own): schema and fake-tensor rules
    lse = torch.randn(n, 2, dtype=DT)
    g = torch.randn(n, 6, dtype=DT)
    raw = ("test_schema", "test_faketensor")
    torch.library.opcheck(ops.gat_attention_bwd, (*c, a_s.detach(), a_d.detach(),
                                                  x.detach().reshape(n, 6), lse, g, lse, 2, 0.2),
                          test_utils=raw)
    w = torch.rand(csr.num_edges, 2, dtype=DT)
    torch.library.opcheck(ops.spmm_bwd_xw, (*c, w, g, x.detach().reshape(n, 6), 2),
                          test_utils=raw)
    K.set_backend(None)
    torch._dynamo.reset()
    f = lambda x, s, d: K.gat_attention(csr, x, s, d).square().sum()  # noqa: E731
    cf = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = cf(x, a_s, a_d)
    torch.testing.assert_close(out, f(x, a_s, a_d))
    for a, b in zip(torch.autograd.grad(out, (x, a_s, a_d)),
                    torch.autograd.grad(f(x, a_s, a_d), (x, a_s, a_d))):
        torch.testing.assert_close(a, b)
