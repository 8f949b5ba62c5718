"""M-FAC: the sliding-window inverse-Fisher product against the dense inverse (float64, 1e-8),
before and after the window wraps; faster than SGD on an ill-conditioned quadratic; exact resume."""
from __future__ import annotations

import copy

import pytest
import torch

from graphlab.optim import build_optimizer, optimizer_schema
from graphlab.optim.mfac import MFAC, FisherInverse, dense_fisher_inverse


@pytest.mark.parametrize("d,m,damp", [(40, 8, 1e-1), (25, 5, 1e-3), (12, 16, 1.0)])
def test_ihvp_equals_dense_inverse_before_and_after_wrap(d, m, damp):
    gen = torch.Generator().manual_seed(d + m)
    fisher = FisherInverse(d, m, damp, torch.float64)
    window = []
    for _ in range(3 * m + 1):   # more than two wraps, and through several K^{-1} refreshes
        g = torch.randn(d, generator=gen, dtype=torch.float64)
        fisher.update(g)
        window = (window + [g])[-m:]
        v = torch.randn(d, generator=gen, dtype=torch.float64)
        dense = dense_fisher_inverse(torch.stack(window), damp, m) @ v
        assert torch.allclose(fisher.mul(v), dense, rtol=0, atol=1e-8 * dense.abs().max())


def _quadratic(dim=20, cond=1e3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
    eig = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), dim)
    return (q * eig) @ q.T, torch.randn(dim, generator=gen)


def _steps_to(opt_cls, a, b, tol, max_steps=3000, **kw):
    """Steps until f(w) - f* <= tol for f(w) = w^T A w / 2 - b^T w, from w = 0."""
    w = torch.zeros(len(b), requires_grad=True)
    opt = opt_cls([w], **kw)
    wstar = torch.linalg.solve(a, b)
    fstar = 0.5 * wstar @ a @ wstar - b @ wstar
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        loss = 0.5 * w @ a @ w - b @ w
        if loss.item() - fstar.item() <= tol:
            return step
        loss.backward()
        opt.step()
    return max_steps


def test_converges_in_far_fewer_steps_than_sgd_on_ill_conditioned_quadratic():
    # condition number 1e3, L = 1e3: SGD at 0.95 * 2/L, near its fastest stable rate (1885 steps)
    a, b = _quadratic()
    sgd = _steps_to(torch.optim.SGD, a, b, 1e-4, lr=1.9e-3)
    mfac = _steps_to(MFAC, a, b, 1e-4, lr=3e-3, momentum=0.9, ngrads=20, damp=1.0)
    assert mfac * 10 <= sgd, (mfac, sgd)


def test_resume_from_checkpoint_continues_exactly():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = torch.randn(32, 5), torch.randn(32, 1)

    def run(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()

    opt = MFAC(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, ngrads=4, damp=1e-2)
    run(model, opt, 6)   # the window has wrapped
    ckpt = copy.deepcopy((model.state_dict(), opt.state_dict()))
    run(model, opt, 5)
    model2 = copy.deepcopy(model)
    model2.load_state_dict(ckpt[0])
    opt2 = MFAC(model2.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3, ngrads=4,
                damp=1e-2)
    opt2.load_state_dict(ckpt[1])
    run(model2, opt2, 5)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_registered_and_built_from_config():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer({"name": "mfac", "lr": 0.1, "ngrads": 4, "damp": 1e-3}, [p])
    assert isinstance(opt, MFAC) and opt.fisher.grads.shape == (4, 3)
    assert opt.fisher.grads.dtype == torch.float32
    assert {"ngrads", "damp", "momentum"} <= set(optimizer_schema("mfac"))


@pytest.mark.parametrize("kw,match", [({"ngrads": 0}, "ngrads must be an integer >= 1"),
                                      ({"damp": -1.0}, "damp must be > 0")])
def test_bad_options_give_one_line_error(kw, match):
    with pytest.raises(ValueError, match=match) as err:
        MFAC([torch.nn.Parameter(torch.zeros(2))], **kw)
    assert "\n" not in str(err.value)
