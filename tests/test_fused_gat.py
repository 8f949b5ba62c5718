"""FusedGATConv: equals PyG's GATConv (float64), both paths; symmetry, batching, gradients."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATConv

from graphlab.nn import FusedGATConv


def pair(heads=3, concat=True, **kw):
    torch.manual_seed(0)
    ours = FusedGATConv(5, 4, heads=heads, concat=concat, **kw).double()
    kw.pop("use_kernels", None)
    ref = GATConv(5, 4, heads=heads, concat=concat, **kw).double()
    with torch.no_grad():
        ref.lin.weight.copy_(ours.lin.weight)
        ref.att_src.copy_(ours.att_src)
        ref.att_dst.copy_(ours.att_dst)
        if ours.bias is not None:
            ours.bias.normal_()
            ref.bias.copy_(ours.bias)
    return ours, ref


def graph(n=9, e=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n - 2, (2, e), generator=g)  # last two nodes isolated
    ei = torch.cat([ei, torch.tensor([[3, 3], [3, 4]])], 1)  # a self-loop and a duplicate
    ei = torch.cat([ei, ei[:, :2]], 1)
    return torch.randn(n, 5, generator=g, dtype=torch.float64), ei


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("use_kernels", [True, False])
def test_equals_pyg_gatconv(concat, use_kernels):
    ours, ref = pair(concat=concat, use_kernels=use_kernels)
    x, ei = graph()
    torch.testing.assert_close(ours(x, ei), ref(x, ei))
    ours, ref = pair(concat=concat, add_self_loops=False, use_kernels=use_kernels)
    torch.testing.assert_close(ours(x, ei), ref(x, ei))


def test_attention_dropout_path_equals_pyg():
    ours, ref = pair(dropout=0.3)
    x, ei = graph()
    ours.train()
    ref.train()
    torch.manual_seed(5)
    a = ours(x, ei)
    torch.manual_seed(5)
    torch.testing.assert_close(a, ref(x, ei))


def test_permutation_equivariance_and_batching():
    ours, _ = pair()
    x, ei = graph()
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(3))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    torch.testing.assert_close(ours(x[perm], inv[ei]), ours(x, ei)[perm])
    x2, ei2 = graph(6, 12, seed=4)
    b = Batch.from_data_list([Data(x=x, edge_index=ei), Data(x=x2, edge_index=ei2)])
    out = ours(b.x, b.edge_index)
    torch.testing.assert_close(out[:x.size(0)], ours(x, ei))
    torch.testing.assert_close(out[x.size(0):], ours(x2, ei2))


def test_no_edges_and_gradcheck():
    ours, _ = pair(heads=2)
    x = torch.randn(4, 5, dtype=torch.float64)
    empty = torch.empty(2, 0, dtype=torch.long)
    # only the added self-loops: each node attends to itself
    h = ours.lin(x)
    torch.testing.assert_close(ours(x, empty), h + ours.bias)
    small, _ = pair(heads=2)
    x, ei = graph(5, 8, seed=2)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: small(x, ei), (x,))
    with pytest.raises(ValueError, match="x must have shape"):
        small(torch.randn(3, 4, dtype=torch.float64), ei)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_triton_path_equals_pyg():
    """The Triton kernels (interpreter on CPU) inside the layer, forward and input gradient."""
    from graphlab import kernels as K
    from graphlab.kernels import dispatch
    if not dispatch.triton_available(torch.device("cpu")):
        pytest.skip("triton interpreter not enabled")
    ours, ref = pair(heads=2)
    x, ei = graph()
    x.requires_grad_(True)
    K.set_backend("triton")
    try:
        a = ours(x, ei)
        ga, = torch.autograd.grad(a.square().sum(), x)
    finally:
        K.set_backend(None)
    b = ref(x, ei)
    gb, = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga, gb)
