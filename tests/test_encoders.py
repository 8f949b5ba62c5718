"""The OGB atom / bond encoders' one-hot product path equals the per-column lookups."""
from __future__ import annotations

import pytest
import torch

from graphlab.nn.encoders import EdgeEncoder, FeatureEncoder, sum_embeddings_onehot


def _features(enc, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    tables = [m for m in enc.modules() if isinstance(m, torch.nn.Embedding)]
    return torch.stack([torch.randint(0, t.num_embeddings, (n,), generator=g)
                        for t in tables], 1)


@pytest.mark.parametrize("cls,kind", [(FeatureEncoder, "atom"), (EdgeEncoder, "bond")])
def test_onehot_equals_lookups(cls, kind):
    torch.manual_seed(0)
    enc = cls(kind, None, 12).double()
    x = _features(enc, 40)
    enc.onehot = False
    a = enc(x)
    ga = torch.autograd.grad((a * torch.arange(12.0).double()).square().sum(), enc.parameters())
    enc.onehot = True
    b = enc(x)
    gb = torch.autograd.grad((b * torch.arange(12.0).double()).square().sum(), enc.parameters())
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for p, q in zip(ga, gb):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert enc.onehot and not torch.equal(ga[0], torch.zeros_like(ga[0]))


def test_onehot_default_is_cuda_only():
    enc = FeatureEncoder("atom", None, 4)
    assert enc.onehot is None  # auto: CPU inputs take the lookups
    x = _features(enc, 5)
    torch.testing.assert_close(enc(x), enc.enc(x))


def test_onehot_out_of_vocabulary_is_a_clear_error():
    enc = EdgeEncoder("bond", None, 4)
    enc.onehot = True
    x = _features(enc, 6)
    x[2, 1] = 99  # would alias into column 2's table if unchecked
    with pytest.raises(IndexError, match="column 1"):
        enc(x)
    with pytest.raises(ValueError, match="integer features"):
        sum_embeddings_onehot(x[:, :2], [torch.zeros(3, 4)] * 3)


def test_onehot_under_vmap_equals_members():
    """Stacked tables (a SeedEnsemble's vmap) give each member's own sum."""
    from torch.func import functional_call, stack_module_state, vmap
    encs = [FeatureEncoder("atom", None, 8).double() for _ in range(3)]
    for e in encs:
        e.onehot = True
    x = _features(encs[0], 20)
    params, buffers = stack_module_state(encs)
    out = vmap(lambda p, b: functional_call(encs[0], (p, b), (x,)))(params, buffers)
    for k, e in enumerate(encs):
        e.onehot = False
        torch.testing.assert_close(out[k], e(x), rtol=1e-12, atol=1e-12)


def test_onehot_product_is_exact_under_reduced_matmul_precision(monkeypatch):
    """With ``task.matmul_precision`` high / medium (TF32 / bfloat16 products), the one-hot
    product still runs at full float32 precision (an exact lookup), and the run's setting
    returns afterwards."""
    seen = []
    mm = torch.Tensor.__matmul__

    def spy(a, b):
        seen.append(torch.get_float32_matmul_precision())
        return mm(a, b)
    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    enc = FeatureEncoder("atom", None, 4)
    enc.onehot = True
    x = _features(enc, 5)
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        out = enc(x)
        assert seen == ["highest"] and torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(old)
    monkeypatch.undo()
    enc.onehot = False
    torch.testing.assert_close(out, enc(x))


def test_exact_products_trace_without_graph_breaks():
    """torch.compile traces the exact products (one-hot sums, masked BatchNorm statistics) in
    one graph: reading the matmul precision inside would break it."""
    from graphlab.nn.checks import exact_fp32_products
    from graphlab.nn.masked_norm import MaskedBatchNorm1d, padding_masks

    def product(a, b):
        with exact_fp32_products():
            return a @ b
    a, b = torch.randn(5, 3), torch.randn(3, 4)
    torch.testing.assert_close(torch.compile(product, fullgraph=True, backend="eager")(a, b),
                               a @ b)
    bn = MaskedBatchNorm1d(4)
    h, mask = torch.randn(6, 4), torch.tensor([True] * 4 + [False] * 2)

    def norm(t, m):
        with padding_masks(m):
            return bn(t)
    torch.testing.assert_close(torch.compile(norm, fullgraph=True, backend="eager")(h, mask),
                               norm(h, mask))
