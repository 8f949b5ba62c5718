"""GPU fast paths of the sequence cores against graphlab's torch path (a script, not in CI).

Run on a CUDA machine with fla (``fla-core`` 0.6) and, optionally, mamba-ssm's Triton ops:

    python -m pytest tests/test_seq_gpu.py -m gpu -q

Skipped without CUDA (and deselected by the default ``-m 'not slow and not gpu'``); each fast
path skips with the reason when its library is not importable. Tolerances (issue #6): float32
against fla's ``fused_recurrent_*`` < 1e-4, bfloat16 against fla's ``chunk_*`` < 1e-2 (max abs,
reference: graphlab's chunked torch path in float64 on the same, already rounded, inputs).
The CPU test of the call plumbing (fla's signatures and preconditions) is tests/test_seq_dispatch.py.
"""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F



from graphlab.nn.seq import DeltaNet, DeltaProduct, Mamba  # noqa: E402
from graphlab.nn.seq.delta.chunk import (_fla_ops, chunk_delta_product, delta_product,  # noqa: E402
                                         fla_backend, _fla_gated_bwd_broken)
from graphlab.nn.seq.mamba import _mamba_ssm_scan, _mamba_ssm_state_update  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
TOL = {torch.float32: 1e-4, torch.bfloat16: 1e-2}


@pytest.fixture(autouse=True)
def _no_tf32():
    """The float32 references must not run their matmuls in TF32."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def need_fla():
    if _fla_ops() is None:
        pytest.skip("fla is not importable")


def _inputs(n_h, gated, neg_eigval, dtype, B=2, L=300, H=4, K=64, seed=0):
    g_ = torch.Generator(device="cuda").manual_seed(seed)
    q = F.normalize(torch.randn(B, L, H, K, device="cuda", generator=g_), dim=-1) * K ** -0.5
    k = F.normalize(torch.randn(B, L, n_h, H, K, device="cuda", generator=g_), dim=-1)
    v = torch.randn(B, L, n_h, H, K, device="cuda", generator=g_)
    beta = torch.rand(B, L, n_h, H, device="cuda", generator=g_) * (2.0 if neg_eigval else 1.0)
    g = F.logsigmoid(torch.randn(B, L, H, device="cuda", generator=g_)) * 0.1 if gated else None
    # the rounded inputs are the ground truth for every path; the gate stays fp32 as in fla
    return [t.to(dtype) for t in (q, k, v, beta)] + [g]


def _double(ts):
    return [None if t is None else t.double() for t in ts]


CASES = [  # (name, n_h, gated, neg_eigval)
    ("deltanet", 1, False, False),
    ("deltanet-negeig", 1, False, True),
    ("deltanet-gate", 1, True, False),
    ("deltanet-gate-negeig", 1, True, True),
    ("deltaproduct-2", 2, False, True),
    ("deltaproduct-2-gate", 2, True, True),
]
EXPECTED = {  # (dtype, n_h > 1, gated) -> fla kernel
    (torch.float32, False, False): "fused_recurrent_delta_rule",
    (torch.float32, False, True): "fused_recurrent_gated_delta_rule",
    (torch.float32, True, False): "fused_recurrent_delta_rule",
    (torch.float32, True, True): "fused_recurrent_gated_delta_rule",
    (torch.bfloat16, False, False): "chunk_delta_rule",
    (torch.bfloat16, False, True): "chunk_gated_delta_rule",
    (torch.bfloat16, True, False): "chunk_gated_delta_product",
    (torch.bfloat16, True, True): "chunk_gated_delta_product",
}


@pytest.mark.parametrize("name,n_h,gated,neg", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fla_forward_matches_torch_path(name, n_h, gated, neg, dtype):
    """fp32: fla's fused recurrences; bf16: its chunk kernels (incl. chunk_gated_delta_product)."""
    need_fla()
    q, k, v, beta, g = _inputs(n_h, gated, neg, dtype)
    with torch.no_grad():
        assert fla_backend(q, k, v, beta, g, n_h) == EXPECTED[dtype, n_h > 1, gated]
        out = delta_product(q, k, v, beta, g, use_fla=True)
        ref = chunk_delta_product(*_double((q, k, v, beta, g)))[0]
        err = (out.double() - ref).abs().max().item()
        assert out.shape == ref.shape and err < TOL[dtype], f"{name} {dtype}: max abs err {err:.2e}"
        if dtype == torch.float32:  # graphlab's torch path in fp32 itself equals fla's fp32 kernel
            mine = chunk_delta_product(q, k, v, beta, g)[0]
            err = (out - mine).abs().max().item()
            assert err < TOL[dtype], f"{name}: torch fp32 vs fla fused_recurrent {err:.2e}"


@pytest.mark.parametrize("name,n_h,gated,neg", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fla_backward_matches_torch_path(name, n_h, gated, neg, dtype):
    """Gradients through the dispatched kernel (fp32 gated: the torch path, fla has no backward);
    relative norm errors: fp32 < 1e-4, bf16 < 3e-2 (q, k, v) / 5e-2 (beta, g)."""
    need_fla()
    ins = _inputs(n_h, gated, neg, dtype, L=130)
    leaves = [None if t is None else t.detach().clone().requires_grad_(True) for t in ins]
    refs = [None if t is None else t.detach().double().requires_grad_(True) for t in ins]
    backend = fla_backend(*leaves, n_h)
    if gated and (dtype == torch.float32 or _fla_gated_bwd_broken(leaves[0].device)):
        assert backend == "torch"  # fp32: no fla backward; bf16: fla refuses it on this Hopper/Triton
    else:
        assert backend.startswith("chunk_" if dtype == torch.bfloat16 else "fused_recurrent_")
    w = torch.randn(ins[0].shape, device="cuda", dtype=torch.float64)
    (delta_product(*leaves, use_fla=True).double() * w).sum().backward()
    (chunk_delta_product(*refs)[0] * w).sum().backward()
    for nm, a, b in zip("q k v beta g".split(), leaves, refs):
        if a is None:
            continue
        rtol = 1e-4 if dtype == torch.float32 else (3e-2 if nm in "qkv" else 5e-2)
        rel = ((a.grad.double() - b.grad).norm() / b.grad.norm().clamp_min(1e-12)).item()
        assert rel < rtol, f"{name} {dtype}: d{nm} relative error {rel:.2e} ({backend})"


CORES = {
    "deltanet": lambda: DeltaNet(256, num_heads=4),
    "deltanet-negeig": lambda: DeltaNet(256, num_heads=4, allow_neg_eigval=True),
    "deltanet-gate-negeig": lambda: DeltaNet(256, num_heads=4, allow_neg_eigval=True, use_gate=True),
    "deltaproduct-2": lambda: DeltaProduct(256, num_heads=4, num_householder=2),
    "deltaproduct-2-nogate": lambda: DeltaProduct(256, num_heads=4, num_householder=2, use_gate=False),
}


@pytest.mark.parametrize("core", list(CORES))
def test_module_fla_dispatch_equals_torch_path(core):
    """graphlab's own dispatch (delta/chunk.py) inside the modules: fp32 forward on CUDA with fla
    equals the forced-torch path; under bf16 autocast, the chunk kernels stay close to it."""
    need_fla()
    torch.manual_seed(0)
    m = CORES[core]().cuda()
    x = torch.randn(2, 200, 256, device="cuda")
    mask = torch.arange(200, device="cuda")[None] < torch.tensor([200, 77], device="cuda")[:, None]
    with torch.no_grad():
        m.use_fla = False
        ref = m(x, mask)
        m.use_fla = True
        fast = m(x, mask)
        err = (fast - ref).abs().max().item()
        assert err < 1e-4, f"{core} fp32: {err:.2e}"
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = m(x, mask)
        rel = ((half.float() - ref).norm() / ref.norm()).item()
        assert rel < 3e-2, f"{core} bf16 autocast: relative error {rel:.2e}"
    # a training step through the dispatch (fp32 non-gated: fla's fused recurrence has a backward)
    m.zero_grad()
    m(x, mask).square().mean().backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m.use_fla = False
    m(x, mask).square().mean().backward()
    for n, p in m.named_parameters():
        rel = ((grads[n] - p.grad).norm() / p.grad.norm().clamp_min(1e-12)).item()
        assert rel < 1e-3, f"{core}: grad of {n} relative error {rel:.2e}"


@pytest.mark.parametrize("core", list(CORES))
def test_cores_run_on_gpu_with_padding(core):
    m = CORES[core]().cuda()
    x = torch.randn(2, 100, 256, device="cuda")
    mask = torch.arange(100, device="cuda")[None] < torch.tensor([100, 40], device="cuda")[:, None]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = m(x, mask)
    assert torch.isfinite(y).all() and (y[1, 40:] == 0).all()


def test_mamba_ssm_selective_scan_matches_torch_path():
    if _mamba_ssm_scan() is None:
        pytest.skip("mamba-ssm's selective_scan_cuda extension is not importable")
    torch.manual_seed(0)
    m = Mamba(64).cuda()
    x = torch.randn(2, 300, 64, device="cuda")
    with torch.no_grad():
        fast = m(x)
        m.use_fast_path = False
        ref = m(x)
    assert (fast - ref).abs().max() < 1e-4


def test_mamba_ssm_triton_step_matches_torch_step():
    """mamba-ssm's Triton ``selective_state_update`` inside Mamba.step vs the torch step, and
    both against the parallel forward."""
    if _mamba_ssm_state_update() is None:
        pytest.skip("mamba-ssm's Triton selective_state_update is not importable")
    torch.manual_seed(0)
    m = Mamba(64).cuda()
    x = torch.randn(2, 40, 64, device="cuda")
    outs = {}
    with torch.no_grad():
        for fast in (True, False):
            m.use_fast_path = fast
            state, ys = m.init_state(2), []
            for t in range(x.size(1)):
                y, state = m.step(x[:, t], state)
                ys.append(y)
            outs[fast] = (torch.stack(ys, 1), state[1])
        m.use_fast_path = False
        full = m(x)
    assert (outs[True][0] - outs[False][0]).abs().max() < 1e-4
    assert (outs[True][1] - outs[False][1]).abs().max() < 1e-4
    assert (outs[True][0] - full).abs().max() < 1e-4
