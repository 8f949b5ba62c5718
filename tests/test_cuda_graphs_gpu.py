"""CUDA-graph training steps (graphlab.train.cuda_graphs) on a GPU: replays train exactly as the
same padded steps run eagerly. Run with ``python -m pytest tests/test_cuda_graphs_gpu.py -m gpu``;
skipped without CUDA. The padding itself is checked on CPU (tests/test_static_batch.py)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from graphlab.nn.masked_norm import mask_batchnorms, padding_masks
from graphlab.train.cuda_graphs import GraphedSteps, make_capturable
from graphlab.train.ensemble import SeedEnsemble

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _setup(capture):
    from test_static_batch import gin
    torch.manual_seed(0)
    ens = SeedEnsemble([gin() for _ in range(3)], seeds=[0, 1, 2]).cuda()  # float64
    mask_batchnorms(ens._base[0])
    opt = torch.optim.Adam(ens.parameters(), lr=1e-2)
    make_capturable(opt)

    def step(sb):
        with padding_masks(sb.node_mask, sb.edge_mask, sb.graph_mask):
            out = ens(sb)
        w = sb.graph_mask.double().view(-1, 1)
        y = torch.nan_to_num(sb.y.double())

        def one(o):
            return (F.binary_cross_entropy_with_logits(o, y, reduction="none") * w).sum() / \
                w.sum()
        losses = torch.func.vmap(one)(out)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        return losses.detach()
    return ens, GraphedSteps(step, batch_size=8, capture=capture)


def test_replays_equal_eager_padded_steps():
    """Replayed steps vs the same padded steps run eagerly, float64. The losses must agree to
    1e-9 at every step. The weights after 9 Adam steps are compared against a control: a second
    eager run. Scatter sums on a GPU use atomics (their order varies from run to run) and Adam
    normalises tiny gradients, so two eager runs need not agree bit for bit; a replay may differ
    from eager by no more than 10x what two eager runs differ by (plus 1e-12). Why float64 and
    the control: a float32 version (rtol 1e-4) failed at step 7 of 9 on an H200, and without the
    control the weights failed (2.6e-9 abs, 1.8e-7 rel in 8 of 96 entries of one tensor) while
    the losses agreed."""
    from test_static_batch import graphs
    batches = [graphs(int(n), seed=s).cuda() for s, n in enumerate([6, 3, 8])]
    batches = batches + batches[::-1] + batches  # buckets recur: replays
    ens_g, run_g = _setup(True)
    ens_e, run_e = _setup(False)
    ens_c, run_c = _setup(False)
    for i, b in enumerate(batches):
        lg, le, lc = run_g(b).clone(), run_e(b), run_c(b)
        torch.testing.assert_close(lg, le, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(lc, le, rtol=1e-9, atol=1e-11)
    assert run_g.stats["replays"] > 0 and run_g.stats["captures"] >= 2
    for (n, p), q, c in zip(ens_g.state_dict().items(), ens_e.state_dict().values(),
                            ens_c.state_dict().values()):
        if not p.is_floating_point():
            assert torch.equal(p, q), n
            continue
        dev, ctrl = (p - q).abs().max().item(), (c - q).abs().max().item()
        assert dev <= 10 * ctrl + 1e-12, f"{n}: replay vs eager {dev:.3g}, eager vs eager {ctrl:.3g}"


def test_graphs_share_one_memory_pool():
    """Every bucket's graph records into one pool: a step's temporaries (here 64 MiB) are
    reserved once, not once per bucket. With a pool per graph, a 4-seed GPS ensemble
    on Peptides-func reserved 113.75 GiB in graph pools by its 24th epoch (about 20 buckets)
    and ran out of memory. Replays of different buckets in any order stay equal to eager steps
    (test_replays_equal_eager_padded_steps)."""
    from test_static_batch import graphs
    big = 16 * 2 ** 20  # float32 elements: 64 MiB

    def step(sb):
        tmp = torch.ones(big, device=sb.x.device) * sb.x.float().sum()  # freed within the step
        return (tmp[:3] + sb.graph_mask.float().sum()).detach()
    run = GraphedSteps(step, batch_size=8, capture=True)

    def check(b):
        out = run(b)
        sb = run.batcher(b)[1]  # the padded batch the step saw
        torch.testing.assert_close(out, (sb.x.float().sum() + sb.graph_mask.float().sum())
                                   .expand(3))
    batches = [graphs(n, seed=10 + n).cuda() for n in range(1, 9)]
    torch.cuda.synchronize()
    before = torch.cuda.memory_reserved()
    for b in batches:
        check(b)
    for b in batches[::-1]:  # replays, in another order than recorded
        check(b)
    torch.cuda.synchronize()
    keys = len(run.graphs)
    assert keys >= 5 and run.stats["replays"] >= keys
    assert len({g.pool() for g, _ in run.graphs.values()}) == 1
    grown = torch.cuda.memory_reserved() - before
    assert grown < 4 * big * 4, f"{keys} graphs reserved {grown / 2 ** 20:.0f} MiB"


@pytest.mark.parametrize("schedule,model", [("none", "gin"), ("plateau", "gin"), ("none", "gps")])
def test_ensemble_runner_with_cuda_graphs(data_root, tmp_path, schedule, model):
    """Recorded steps vs the same padded steps run eagerly, float64; ``plateau`` (patience 0)
    exercises the learning rate held in a device tensor and the per-member rescaling variant;
    ``gps`` records attention over the fixed-width dense
    layout (SGD, see tests/test_static_batch.py; not yet run on a GPU)."""
    from test_static_batch import _ens_cfg
    from graphlab.train.ensemble_run import run_ensemble
    cfg = _ens_cfg(cuda_graphs=True)
    cfg["trainer"] = {**cfg["trainer"], "accelerator": "gpu", "deterministic": False}
    if schedule == "plateau":
        cfg["scheduler"] = {"name": "plateau", "patience": 0, "factor": 0.5}
        cfg["trainer"]["max_epochs"] = 3
    if model == "gps":
        cfg["model"] = {"name": "gps", "hidden_channels": 16, "num_layers": 2, "heads": 2,
                        "attn_dropout": 0.0}
        cfg["optim"] = {"name": "sgd", "lr": 0.01}
    got = run_ensemble(cfg, [0, 1], str(tmp_path / "g"), quiet=True)
    ref_cfg = copy.deepcopy(cfg)
    ref_cfg["task"] = {"cuda_graphs": {"capture": False}}
    ref = run_ensemble(ref_cfg, [0, 1], str(tmp_path / "e"), quiet=True)
    for a, b in zip(got, ref):
        assert a["ensemble"]["cuda_graphs"]["replays"] > 0
        assert [h["lr"] for h in a["history"]] == [h["lr"] for h in b["history"]]
        for ha, hb in zip(a["history"], b["history"]):
            for k in ha:
                assert ha[k] == pytest.approx(hb[k], rel=1e-5, abs=1e-8), k


def test_checkpoint_writer_gets_host_tensors(data_root, tmp_path, monkeypatch):
    """The background checkpoint writer's thread receives host tensors only: a device-to-host
    copy made on its thread while the training thread records a new bucket's CUDA graph broke a
    10-seed GIN-virtual run on an H200 (cudaErrorStreamCaptureUnsupported in the writer, the
    recording invalidated)."""
    import threading

    from test_static_batch import _ens_cfg
    from graphlab.train import records as R
    from graphlab.train.ensemble_run import run_ensemble
    seen, threads = [], set()
    orig = R.atomic_torch_save

    def spy(checkpoint, path):
        threads.add(threading.current_thread().name)

        def walk(o):
            if isinstance(o, torch.Tensor):
                seen.append(o.device.type)
            elif isinstance(o, dict):
                for v in o.values():
                    walk(v)
            elif isinstance(o, (list, tuple)):
                for v in o:
                    walk(v)
        walk(checkpoint)
        return orig(checkpoint, path)
    monkeypatch.setattr(R, "atomic_torch_save", spy)
    cfg = _ens_cfg(cuda_graphs=True)
    cfg["trainer"] = {**cfg["trainer"], "accelerator": "gpu", "deterministic": False}
    run_ensemble(cfg, [0, 1], str(tmp_path), quiet=True)
    assert any(n.startswith("checkpoint-writer") for n in threads)
    assert seen and set(seen) == {"cpu"}
