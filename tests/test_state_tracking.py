"""Task generators of scripts/state_tracking.py and scripts/ptd_robustness.py against plain Python."""
import importlib.util
import itertools
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "scripts", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


st = _load("state_tracking")


def test_parity_labels():
    tokens, labels = st.make_batch("parity", 8, 30, torch.Generator().manual_seed(0))
    for tok, lab in zip(tokens.tolist(), labels.tolist()):
        assert lab == [sum(tok[:t + 1]) % 2 for t in range(len(tok))]


@pytest.mark.parametrize("m", [3, 5])
def test_mod_labels_equal_left_to_right_eval(m):
    tokens, labels = st.make_batch(f"mod{m}", 8, 21, torch.Generator().manual_seed(1))
    sym = {0: "+", 1: "-", 2: "*"}
    for tok, lab in zip(tokens.tolist(), labels.tolist()):
        assert tok[0] < m and lab[0] == tok[0]                       # digit, op, digit, ...
        expr = str(tok[0])
        for t in range(1, len(tok)):
            if t % 2 == 1:
                assert tok[t] >= m and lab[t] == -1
                expr = f"({expr}){sym[tok[t] - m]}"
            else:
                expr += str(tok[t])
                assert lab[t] == eval(expr) % m                      # left to right, no precedence
    assert st.num_classes(f"mod{m}") == m and st.vocab(f"mod{m}") == m + 3


@pytest.mark.parametrize("n", [3, 5])
def test_permutation_labels_equal_explicit_product(n):
    perms = list(itertools.permutations(range(n)))
    tokens, labels = st.make_batch(f"s{n}", 4, 25, torch.Generator().manual_seed(2))
    assert st.num_classes(f"s{n}") == len(perms)
    for tok, lab in zip(tokens.tolist(), labels.tolist()):
        prod = tuple(range(n))
        for g, y in zip(tok, lab):
            prod = tuple(perms[g][prod[i]] for i in range(n))          # P_t = g_t o P_{t-1}
            assert perms[y] == prod


def test_s3_is_non_abelian_and_table_consistent():
    perms, mul = st.perm_table(3)
    assert not torch.equal(mul, mul.T)                                # order of the product matters
    ident = perms.index((0, 1, 2))
    assert torch.equal(mul[ident], torch.arange(6)) and torch.equal(mul[:, ident], torch.arange(6))


def test_scaled_and_verdict():
    assert st.scaled(0.5, 0.5) == 0 and st.scaled(1.0, 1 / 6) == pytest.approx(1.0)
    assert st.verdict(0.5, 1.0) == "did not train"
    assert st.verdict(0.95, 0.95) == "solves" and st.verdict(0.95, 0.05) == "fails"
    assert st.verdict(0.95, 0.5) == "partial"


ptd = _load("ptd_robustness")


def test_ptd_noise_is_band_limited_with_requested_std():
    L = 256
    z = ptd.fourier_noise(4, L, 0.5, (0.5, 1.0), torch.Generator().manual_seed(0)).double()
    assert torch.allclose(z.std(1), torch.full((4,), 0.5, dtype=torch.float64), atol=1e-5)
    power = torch.fft.rfft(z).abs()
    k = torch.arange(L // 2 + 1) / (L / 2)
    assert power[:, k < 0.5].max() < 1e-4 * power.max()
    assert torch.count_nonzero(ptd.fourier_noise(2, L, 0.0, (0.5, 1.0), torch.Generator())) == 0
    with pytest.raises(ValueError, match="band"):
        ptd.fourier_noise(1, L, 1.0, (0.9, 0.5), torch.Generator())


def test_ptd_signals_carry_their_class_frequencies():
    L, F = 256, 16
    templates = ptd.class_templates(5, F, task_seed=3)
    assert templates.shape == (5, 3) and int(templates.min()) >= 1 and int(templates.max()) <= F
    assert all(len(set(t.tolist())) == 3 for t in templates)
    u, y = ptd.make_signals(6, L, templates, F, torch.Generator().manual_seed(1))
    assert torch.allclose(u.double().std(1), torch.ones(6, dtype=torch.float64), atol=1e-5)
    power = torch.fft.rfft(u.double()).abs()
    for p, c in zip(power, y.tolist()):
        support = set(torch.nonzero(p > 1e-3 * p.max()).flatten().tolist())
        assert set(templates[c].tolist()) <= support and len(support) <= 4   # + one distractor
        assert max(support) <= F


def test_ptd_spike_noise_sits_on_the_chosen_bins_with_requested_std():
    L, bins = 256, [70, 90, 101]
    z = ptd.sinusoid_noise(3, L, 0.2, bins, torch.Generator().manual_seed(0)).double()
    assert torch.allclose(z.std(1), torch.full((3,), 0.2, dtype=torch.float64), atol=1e-5)
    power = torch.fft.rfft(z).abs()
    assert set(torch.nonzero(power[0] > 1e-6 * power[0].max()).flatten().tolist()) == set(bins)
    gain = torch.zeros(L // 2 + 1)
    gain[[3, 80, 81, 120, 128]] = torch.tensor([9.0, 5.0, 4.0, 3.0, 8.0])   # 3 < min_bin, 128 = Nyquist
    assert ptd.spike_bins(gain, 3, 64) == [80, 81, 120]


def test_ptd_layer1_gain_is_the_first_kernel_response():
    torch.manual_seed(0)
    net = ptd.Net("s4d", dict(init="legs", d_state=8), 4, 1, 3).double()
    L = 128
    K = net.cores[0].kernel(L).double()
    expect = torch.fft.rfft(K, n=L).abs().pow(2).sum(0).sqrt()
    assert torch.allclose(ptd.layer1_gain(net, L), expect)
    net5 = ptd.Net("s5", dict(d_state=8), 4, 1, 3).double()
    g = ptd.layer1_gain(net5, L)
    assert g.shape == (L // 2 + 1,) and bool(torch.isfinite(g).all())
