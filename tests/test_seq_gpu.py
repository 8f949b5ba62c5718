"""GPU fast paths against graphlab's torch path (run on a CUDA machine with fla / mamba-ssm)."""
import pytest
import torch

from graphlab.nn.seq import DeltaNet, DeltaProduct, Mamba
from graphlab.nn.seq.delta.chunk import _fla_ops, delta_product
from graphlab.nn.seq.mamba import _mamba_ssm_scan, _mamba_ssm_state_update

pytestmark = pytest.mark.gpu
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _inputs(n_h, gated, dtype, B=2, L=300, H=4, K=64):
    g_ = torch.Generator(device="cuda").manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(B, L, H, K, device="cuda", generator=g_), dim=-1) * K ** -0.5
    k = torch.nn.functional.normalize(torch.randn(B, L, n_h, H, K, device="cuda", generator=g_), dim=-1)
    v = torch.randn(B, L, n_h, H, K, device="cuda", generator=g_)
    beta = 2 * torch.rand(B, L, n_h, H, device="cuda", generator=g_)
    g = -torch.rand(B, L, H, device="cuda", generator=g_) * 0.1 if gated else None
    cast = lambda x: None if x is None else x.to(dtype)  # noqa: E731
    return [cast(t) for t in (q, k, v, beta, g)]


@cuda
@pytest.mark.parametrize("n_h", [1, 2])
@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.bfloat16, 1e-2)])
def test_fla_matches_torch_path(n_h, gated, dtype, tol):
    if _fla_ops() is None:
        pytest.skip("fla is not importable")
    q, k, v, beta, g = _inputs(n_h, gated, dtype)
    ref = delta_product(*(None if t is None else t.double() for t in (q, k, v, beta, g)), use_fla=False)
    out = delta_product(q, k, v, beta, g, use_fla=True)
    assert (out.double() - ref).abs().max() < tol


@cuda
def test_mamba_ssm_matches_torch_path():
    if _mamba_ssm_scan() is None:
        pytest.skip("mamba-ssm is not importable")
    torch.manual_seed(0)
    m = Mamba(64).cuda()
    x = torch.randn(2, 300, 64, device="cuda")
    fast = m(x)
    m.use_fast_path = False
    assert (fast - m(x)).abs().max() < 1e-4


@cuda
def test_mamba_ssm_triton_step_matches_torch_step():
    if _mamba_ssm_state_update() is None:
        pytest.skip("mamba-ssm's Triton state update is not importable")
    torch.manual_seed(0)
    m = Mamba(64).cuda()
    x = torch.randn(2, 20, 64, device="cuda")
    outs = {}
    for fast in (True, False):
        m.use_fast_path = fast
        state, ys = m.init_state(2), []
        for t in range(20):
            y, state = m.step(x[:, t], state)
            ys.append(y)
        outs[fast] = torch.stack(ys, 1)
    assert (outs[True] - outs[False]).abs().max() < 1e-4


@cuda
@pytest.mark.parametrize("core", [lambda: DeltaNet(64, allow_neg_eigval=True), lambda: DeltaProduct(64)])
def test_cores_run_on_gpu(core):
    m = core().cuda()
    x = torch.randn(2, 100, 64, device="cuda")
    mask = torch.arange(100, device="cuda")[None] < torch.tensor([100, 40], device="cuda")[:, None]
    assert torch.isfinite(m(x, mask)).all()
