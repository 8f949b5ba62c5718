"""graphlab.kernels on CPU: Triton kernels (interpreter) and the torch path vs float64 loop references.

conftest.py sets TRITON_INTERPRET=1 before import when there is no GPU, so the ``triton`` backend
runs the real kernels in Triton's interpreter (tiny graphs only).
"""
from __future__ import annotations

import os
import warnings

import pytest
import torch

from graphlab import kernels as K
from graphlab.kernels import dispatch
from graphlab.kernels.naive import (segment_softmax_ref, sddmm_ref, sparse_attention_ref,
                                    spmm_ref)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # interpreter's -inf - -inf
DT = torch.float64
BACKENDS = ["torch", "triton"]
needs_triton = pytest.mark.skipif(not dispatch.triton_available(torch.device("cpu")),
                                  reason="triton interpreter not enabled")


@pytest.fixture(autouse=True)
def _reset_backend(monkeypatch):
    if dispatch.triton_available(torch.device("cpu")):
        from graphlab.kernels import triton_kernels
        monkeypatch.setattr(triton_kernels, "CHUNK", 16)  # the degree-40 hub is split in 3 chunks
    yield
    K.set_backend(None)


def make_graph(seed: int = 0, n: int = 9, e: int = 30):
    """Random graph with duplicate edges, self-loops, isolated nodes and one hub of degree 40
    (more than one block of edges per row in every kernel)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n - 2, (e,), generator=g)        # nodes n-2, n-1 send nothing
    dst = torch.randint(0, n - 3, (e,), generator=g)        # nodes n-3.. receive nothing
    hub_src = torch.randint(0, n - 2, (40,), generator=g)
    src = torch.cat([src, hub_src, torch.tensor([1, 1, 2])])
    dst = torch.cat([dst, torch.zeros(40, dtype=torch.long), torch.tensor([3, 3, 2])])  # dup, loop
    return torch.stack([src, dst]), n


def _weight(kind: str, e: int, heads: int = 2):
    if kind == "none":
        return None
    shape = (e,) if kind == "edge" else (e, heads)
    return torch.rand(*shape, dtype=DT).add_(0.1).requires_grad_()


# ------------------------------------------------------------------------------------- SpMM
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("wkind", ["none", "edge", "heads"])
def test_spmm_forward_backward(backend, reduce, wkind):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei, n = make_graph(1)
    x = torch.randn(n, 6, dtype=DT, requires_grad=True)
    w = _weight(wkind, ei.size(1))
    out = K.spmm(ei, x, w, reduce)
    ref = spmm_ref(ei, x, w, reduce, n)
    torch.testing.assert_close(out, ref)
    assert (out[n - 3:] == 0).all()  # isolated targets give zeros
    g = torch.randn_like(ref)
    inputs = (x,) if w is None else (x, w)
    got = torch.autograd.grad(out, inputs, g)
    want = torch.autograd.grad(ref, inputs, g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@needs_triton
@pytest.mark.parametrize("wkind", ["edge", "heads"])
def test_spmm_weight_backward_source_hub(wkind):
    """The fused backward (x and edge-weight gradients from one pass over the transposed CSR)
    on a graph whose source hub (out-degree 40) is split into several chunks."""
    ei, n = make_graph(13)
    ei = torch.cat([ei, torch.stack([torch.full((40,), 1), torch.arange(40) % n])], 1)
    x = torch.randn(n, 2, 3, dtype=DT, requires_grad=True)
    w = _weight(wkind, ei.size(1))
    ref = spmm_ref(ei, x, w, "mean", n)
    g = torch.randn_like(ref)
    want = torch.autograd.grad(ref, (x, w), g)
    K.set_backend("triton")
    got = torch.autograd.grad(K.spmm(ei, x, w, "mean"), (x, w), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_spmm_gradcheck_torch(reduce):
    ei, n = make_graph(2, n=6, e=10)
    ei = ei[:, :14]
    K.set_backend("torch")
    x = torch.randn(n, 3, dtype=DT, requires_grad=True)
    w = torch.rand(ei.size(1), dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: K.spmm(ei, x, w, reduce, n), (x, w))


@needs_triton
def test_spmm_gradcheck_triton():
    ei = torch.tensor([[0, 1, 2, 2, 3], [1, 0, 1, 3, 3]])
    K.set_backend("triton")
    x = torch.randn(4, 2, dtype=DT, requires_grad=True)
    w = torch.rand(5, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: K.spmm(ei, x, w, "sum"), (x, w))


@pytest.mark.parametrize("backend", BACKENDS)
def test_spmm_bipartite_and_heads_shape(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei = torch.tensor([[0, 4, 2, 4], [0, 1, 1, 2]])  # 5 sources -> 3 targets
    x = torch.randn(5, 2, 3, dtype=DT)
    w = torch.rand(4, 2, dtype=DT)
    out = K.spmm(ei, x, w, "sum", num_nodes=(5, 3))
    assert out.shape == (3, 2, 3)
    torch.testing.assert_close(out, spmm_ref(ei, x, w, "sum", 3))


# ------------------------------------------------------------------ SDDMM / softmax / attention
@pytest.mark.parametrize("backend", BACKENDS)
def test_sddmm(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei, n = make_graph(3)
    for shape in [(n, 5), (n, 2, 3)]:
        a = torch.randn(*shape, dtype=DT, requires_grad=True)
        b = torch.randn(*shape, dtype=DT, requires_grad=True)
        out, ref = K.sddmm(ei, a, b), sddmm_ref(ei, a, b)
        torch.testing.assert_close(out, ref)
        g = torch.randn_like(ref)
        for u, v in zip(torch.autograd.grad(out, (a, b), g), torch.autograd.grad(ref, (a, b), g)):
            torch.testing.assert_close(u, v)


@pytest.mark.parametrize("backend", BACKENDS)
def test_segment_softmax(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei, n = make_graph(4)
    for shape in [(ei.size(1),), (ei.size(1), 3)]:
        s = (5 * torch.randn(*shape, dtype=DT)).requires_grad_()
        out, ref = K.segment_softmax(ei, s, n), segment_softmax_ref(ei, s, n)
        torch.testing.assert_close(out, ref)
        g = torch.randn_like(ref)
        torch.testing.assert_close(torch.autograd.grad(out, s, g)[0],
                                   torch.autograd.grad(ref, s, g)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_attention(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei, n = make_graph(5)
    for lshape, vshape in [((ei.size(1), 2), (n, 2, 3)), ((ei.size(1),), (n, 4))]:
        s = (4 * torch.randn(*lshape, dtype=DT)).requires_grad_()
        v = torch.randn(*vshape, dtype=DT, requires_grad=True)
        out, ref = K.sparse_attention(ei, s, v), sparse_attention_ref(ei, s, v, n)
        torch.testing.assert_close(out, ref)
        g = torch.randn_like(ref)
        for a, b in zip(torch.autograd.grad(out, (s, v), g), torch.autograd.grad(ref, (s, v), g)):
            torch.testing.assert_close(a, b)


def test_gradcheck_torch_path_attention_softmax_sddmm():
    K.set_backend("torch")
    ei = torch.tensor([[0, 1, 2, 2, 3, 0], [1, 0, 1, 3, 3, 3]])
    s = torch.randn(6, 2, dtype=DT, requires_grad=True)
    v = torch.randn(4, 2, 2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, v: K.sparse_attention(ei, s, v), (s, v))
    assert torch.autograd.gradcheck(lambda s: K.segment_softmax(ei, s, 4), (s,))
    assert torch.autograd.gradcheck(lambda a, b: K.sddmm(ei, a, b), (v, v.detach().clone()
                                                                     .requires_grad_()))


@needs_triton
def test_gradcheck_triton_attention():
    K.set_backend("triton")
    ei = torch.tensor([[0, 1, 2, 3], [1, 1, 1, 3]])
    s = torch.randn(4, 1, dtype=DT, requires_grad=True)
    v = torch.randn(4, 1, 2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, v: K.sparse_attention(ei, s, v), (s, v))


# ------------------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_graph_and_single_node(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    K.set_backend(backend)
    ei = torch.empty(2, 0, dtype=torch.long)
    x = torch.randn(3, 4, dtype=DT, requires_grad=True)
    for reduce in ["sum", "mean", "max"]:
        out = K.spmm(ei, x, None, reduce)
        assert out.shape == (3, 4) and (out == 0).all()
        out.sum().backward()
        assert (x.grad == 0).all()
        x.grad = None
    v = torch.randn(3, 2, 4, dtype=DT)
    assert (K.sparse_attention(ei, torch.empty(0, 2, dtype=DT), v) == 0).all()
    assert K.sddmm(ei, v, v).shape == (0, 2)
    assert K.segment_softmax(ei, torch.empty(0, dtype=DT), 3).shape == (0,)
    one = torch.tensor([[0], [0]])  # a single node with a self-loop
    x1 = torch.randn(1, 2, dtype=DT)
    torch.testing.assert_close(K.spmm(one, x1, None, "max"), x1)
    torch.testing.assert_close(K.sparse_attention(one, torch.randn(1, dtype=DT), x1), x1)


@needs_triton
def test_triton_matches_torch_float32_and_bf16():
    ei, n = make_graph(6)
    x = torch.randn(n, 8)
    w = torch.rand(ei.size(1))
    for dtype, tol in [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)]:
        outs = {}
        for b in BACKENDS:
            K.set_backend(b)
            outs[b] = K.spmm(ei, x.to(dtype), w.to(dtype), "sum").double()
        ref = spmm_ref(ei, x.double(), w.double(), "sum", n)
        assert (outs["triton"] - ref).norm() / ref.norm() < tol


# --------------------------------------------------------------------- CSR cache, dispatch
def test_csr_cache_and_edge_index():
    from torch_geometric import EdgeIndex
    K.clear_csr_cache()
    ei, n = make_graph(7)
    c1 = K.to_csr(ei, n)
    assert K.to_csr(ei, n) is c1
    torch.testing.assert_close(c1.col.long(), ei[0][c1.perm])
    assert (c1.row.long().diff() >= 0).all() and (c1.col_t.long().diff() >= 0).all()
    torch.testing.assert_close(c1.row[c1.perm_t.long()], c1.row_t)
    ei[0, 0] = (ei[0, 0] + 1) % (n - 2)  # in-place change bumps the version: rebuilt
    assert K.to_csr(ei, n) is not c1
    x = torch.randn(n, 3, dtype=DT)
    eidx = EdgeIndex(ei, sparse_size=(n, n))
    torch.testing.assert_close(K.spmm(eidx, x), spmm_ref(ei, x, None, "sum", n))


def test_dispatch_switch(monkeypatch):
    K.set_backend(None)
    monkeypatch.setenv("GRAPHLAB_KERNELS", "torch")
    assert K.forced_backend() == "torch"
    monkeypatch.setenv("GRAPHLAB_KERNELS", "bogus")
    with pytest.raises(ValueError, match="GRAPHLAB_KERNELS"):
        K.forced_backend()
    monkeypatch.setenv("GRAPHLAB_KERNELS", "cusparse")  # not runnable on CPU: falls back to torch
    ei, n = make_graph(8)
    x = torch.randn(n, 3, dtype=DT)
    torch.testing.assert_close(K.spmm(ei, x), spmm_ref(ei, x, None, "sum", n))
    with pytest.raises(ValueError, match="backend"):
        K.set_backend("cuda")
    K.set_backend("torch")
    assert K.forced_backend() == "torch"


def test_auto_dispatch_picks_fastest_and_respects_candidates(monkeypatch):
    """The CUDA auto path (timing stubbed): fastest candidate wins, the choice is cached per
    problem class and candidate set, and a cached choice is never used when it cannot run."""
    cost = {"triton": 2.0, "cusparse": 1.0, "torch": 3.0}
    calls = []
    monkeypatch.setattr(dispatch, "_time", lambda fn: (calls.append(fn()), cost[fn()])[1])
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    K.set_backend(None)
    dispatch.clear_choices()
    dev = torch.device("cuda", 0)
    three = {b: (lambda b=b: b) for b in cost}
    assert dispatch.pick("spmm", dev, ("k",), three) == "cusparse"
    n = len(calls)
    assert dispatch.pick("spmm", dev, ("k",), three) == "cusparse" and len(calls) == n  # cached
    two = {b: (lambda b=b: b) for b in ("triton", "torch")}
    assert dispatch.pick("spmm", dev, ("k",), two) == "triton"
    K.set_backend("torch")
    assert dispatch.pick("spmm", dev, ("k",), three) == "torch"
    K.set_backend(None)
    # a path that fails (e.g. a kernel this GPU / Triton cannot compile) is skipped with a warning
    def broken():
        raise RuntimeError("PTX compilation failed")
    dispatch.clear_choices()
    with pytest.warns(RuntimeWarning, match="'triton' path of spmm failed"):
        assert dispatch.pick("spmm", dev, ("b",), {"triton": broken, "torch": lambda: "torch"}) == "torch"
    with pytest.raises(RuntimeError, match="PTX"):
        dispatch.pick(
            "spmm", dev, ("c",), {"triton": broken, "cusparse": broken})
    dispatch.clear_choices()


def test_bad_inputs():
    ei, n = make_graph(9)
    x = torch.randn(n, 3)
    with pytest.raises(ValueError, match="reduce"):
        K.spmm(ei, x, reduce="min")
    with pytest.raises(ValueError, match="edge_weight"):
        K.spmm(ei, x, torch.rand(3))
    with pytest.raises(ValueError, match="edge_index"):
        K.spmm(torch.zeros(3, 4, dtype=torch.long), x)
    with pytest.raises(ValueError, match="x must be a floating"):
        K.spmm(ei, x.long())
    with pytest.raises(ValueError, match="num_nodes"):
        K.spmm(ei, torch.randn(3, 3))
    with pytest.raises(ValueError, match="value"):
        K.sparse_attention(ei, torch.randn(ei.size(1), 2), torch.randn(n, 3, 4))


# ---------------------------------------------------------------- custom ops and compile
def test_opcheck_custom_ops():
    from graphlab.kernels import ops
    K.set_backend("torch")
    csr = K.to_csr(*make_graph(10))
    c = (csr.rowptr, csr.col, csr.row, csr.colptr, csr.row_t, csr.col_t, csr.perm_t)
    x = torch.randn(csr.num_src, 4, dtype=DT, requires_grad=True)
    w = torch.rand(csr.num_edges, 2, dtype=DT, requires_grad=True)
    s = torch.randn(csr.num_edges, 2, dtype=DT, requires_grad=True)
    tests = ("test_schema", "test_autograd_registration", "test_faketensor",
             "test_aot_dispatch_dynamic")
    for reduce in ["sum", "max"]:
        torch.library.opcheck(ops.spmm_op, (*c, w, x, reduce), test_utils=tests)
    torch.library.opcheck(ops.sddmm_op, (*c[:1], c[2], c[1], *c[3:], x, x.detach(), 2),
                          test_utils=tests)
    torch.library.opcheck(ops.segment_softmax_op, (csr.rowptr, csr.row, s), test_utils=tests)
    torch.library.opcheck(ops.sparse_attention_op, (*c, s, x, 2), test_utils=tests)


def test_torch_compile_fullgraph():
    import torch._dynamo
    torch._dynamo.reset()
    ei, n = make_graph(11)
    csr = K.to_csr(ei, n)

    def f(x, s, v, ew):
        a = K.spmm(csr, x, ew, "mean")
        b = K.sparse_attention(csr, s, v)
        c = K.segment_softmax(csr, s)
        d = K.sddmm(csr, v, v)
        return a.sum() + b.sum() + (c * d).sum()

    def g(x, edge_index):  # CSR built inside the compiled graph from a raw edge_index
        return K.spmm(edge_index, x, None, "max", num_nodes=n)

    x = torch.randn(n, 4, requires_grad=True)
    s = torch.randn(ei.size(1), 2, requires_grad=True)
    v = torch.randn(n, 2, 3, requires_grad=True)
    ew = torch.rand(ei.size(1), requires_grad=True)
    cf = torch.compile(f, fullgraph=True, backend="aot_eager")
    out = cf(x, s, v, ew)
    grads = torch.autograd.grad(out, (x, s, v, ew))
    ref = f(x, s, v, ew)
    torch.testing.assert_close(out, ref)
    for a, b in zip(grads, torch.autograd.grad(ref, (x, s, v, ew))):
        torch.testing.assert_close(a, b)
    cg = torch.compile(g, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(cg(x, ei), g(x, ei))


# ---------------------------------------------------------------------------- the layer
@pytest.mark.parametrize("backend", BACKENDS)
def test_spmm_conv_matches_gcnconv(backend):
    if backend == "triton" and not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    from torch_geometric.data import Batch, Data
    from torch_geometric.nn import GCNConv
    from graphlab.nn import SpMMConv
    K.set_backend(backend)
    torch.manual_seed(0)
    ei, n = make_graph(12)
    x = torch.randn(n, 5)
    conv, gcn = SpMMConv(5, 4), GCNConv(5, 4)
    with torch.no_grad():
        gcn.lin.weight.copy_(conv.lin.weight)
        gcn.bias.copy_(conv.bias)
    torch.testing.assert_close(conv(x, ei), gcn(x, ei), atol=1e-5, rtol=1e-5)
    conv.use_kernels = False
    torch.testing.assert_close(conv(x, ei), gcn(x, ei), atol=1e-5, rtol=1e-5)
    conv.use_kernels = True
    # batching independence: a graph's output does not change when batched with another
    g2 = Data(x=torch.randn(4, 5), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]))
    b = Batch.from_data_list([Data(x=x, edge_index=ei), g2])
    torch.testing.assert_close(conv(b.x, b.edge_index)[:n], conv(x, ei), atol=1e-5, rtol=1e-5)
    for aggr in ["mean", "max"]:
        c2 = SpMMConv(5, 4, aggr=aggr)
        out_k = c2(x, ei)
        c2.use_kernels = False
        torch.testing.assert_close(out_k, c2(x, ei), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="aggr"):
        SpMMConv(5, 4, aggr="min")
