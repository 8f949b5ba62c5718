"""Static-shape batches (graphlab.data.static_batch), padding-aware BatchNorm
(graphlab.nn.masked_norm) and the padded training step of ``task.cuda_graphs``: a model trained
on padded batches computes what it computes on the unpadded ones (float64)."""
import copy

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.data.static_batch import StaticBatcher, bucket_size
from graphlab.models.basic import GIN
from graphlab.nn.masked_norm import (MaskedBatchNorm1d, has_unmasked_batch_statistics,
                                     mask_batchnorms, padding_masks)
from graphlab.nn.row_sums import row_sum_biases
from graphlab.tasks import TASKS


def graphs(n_graphs=5, seed=0, T=3, y_kind="multilabel"):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_graphs):
        n = int(torch.randint(1, 9, (1,), generator=g))
        e = int(torch.randint(0, 3 * n, (1,), generator=g))
        ei = torch.randint(0, n, (2, e), generator=g)
        y = (torch.randint(0, 2, (1, T), generator=g).double() if y_kind == "multilabel"
             else torch.randint(0, 3, (1,), generator=g))
        out.append(Data(x=torch.randn(n, 4, generator=g, dtype=torch.float64), edge_index=ei,
                        edge_attr=torch.randn(e, 2, generator=g, dtype=torch.float64), y=y,
                        pe=torch.randn(n, 2, generator=g, dtype=torch.float64)))
    if y_kind == "multilabel":
        out[0].y[0, 1] = float("nan")
    return Batch.from_data_list(out)


def test_bucket_size():
    assert bucket_size(1) == 16 and bucket_size(16) == 16
    for n in [17, 100, 816, 1000, 1750, 4097, 123457]:
        b = bucket_size(n)
        assert n <= b <= n * 1.125 + 1
    # few buckets: sizes 513..1024 fall into 8
    assert len({bucket_size(n) for n in range(513, 1025)}) == 8


def test_batcher_layout_padding_and_buffer_reuse():
    batch = graphs()
    sb = StaticBatcher(batch_size=8)
    key, s = sb(batch)
    N, E, B = batch.num_nodes, batch.edge_index.size(1), batch.num_graphs
    n, e = key
    assert s.x.shape == (n, 4) and s.edge_attr.shape == (e, 2) and s.y.shape == (9, 3)
    assert s.num_graphs == 9 and s.num_real_graphs == B and s.num_nodes == n
    assert torch.equal(s.x[:N], batch.x) and (s.x[N:] == 0).all()
    assert torch.equal(s.pe[:N], batch.pe)
    assert torch.equal(s.edge_index[:, :E], batch.edge_index)
    assert (s.edge_index[:, E:] == n - 1).all()  # pad edges: last pad node to itself
    assert torch.equal(s.batch[:N], batch.batch) and (s.batch[N:] == 8).all()
    assert s.ptr.tolist() == batch.ptr.tolist() + [N] * (8 - B) + [n]
    assert s.node_mask.sum() == N and s.edge_mask.sum() == E and s.graph_mask.sum() == B
    assert len({n, e, 9}) == 3  # sizes name the kind of row
    # another batch of the same bucket reuses the buffers; stale rows are cleared
    other = graphs(seed=0)
    other.x = other.x + 1
    key2, s2 = sb(other)
    assert key2 == key and s2.x is s.x and torch.equal(s2.x[:N], other.x)
    with pytest.raises(ValueError, match="exceeds batch_size"):
        StaticBatcher(batch_size=2)(batch)


def test_batcher_refuses_pair_level_fields():
    batch = graphs()
    batch.pair = torch.zeros(7, 2)
    batch._slice_dict["pair"] = torch.tensor([0, 7] + [7] * (batch.num_graphs - 1))
    with pytest.raises(ValueError, match="neither node-, edge- nor graph-level"):
        StaticBatcher(batch_size=8)(batch)


def test_masked_batchnorm_equals_batchnorm_without_masks():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(6).double()
    mbn = copy.deepcopy(bn)
    mask_batchnorms(mbn)
    assert isinstance(mbn, MaskedBatchNorm1d)
    x = torch.randn(10, 6, dtype=torch.float64)
    torch.testing.assert_close(mbn(x), bn(x))
    torch.testing.assert_close(mbn.running_var, bn.running_var)
    # with a mask: the statistics of the real rows only
    mask = torch.tensor([True] * 7 + [False] * 3)
    ref = copy.deepcopy(bn)
    with padding_masks(mask):
        y = mbn(torch.cat([x[:7], 1e6 * torch.ones(3, 6, dtype=torch.float64)]))
    torch.testing.assert_close(y[:7], ref(x[:7]))
    torch.testing.assert_close(mbn.running_mean, ref.running_mean)
    torch.testing.assert_close(mbn.running_var, ref.running_var)
    assert int(mbn.num_batches_tracked) == int(ref.num_batches_tracked)
    with padding_masks(mask), pytest.raises(ValueError, match="matches none"):
        mbn(x[:9])
    with pytest.raises(ValueError, match="same length"):
        with padding_masks(mask, mask.clone()):
            pass
    # gradients through the masked statistics; both row sums (product / weighted sum)
    for precision in ("highest", "high"):
        old = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(precision)
        try:
            for dtype in (torch.float64, torch.float32):
                xr = x[:7].to(dtype).requires_grad_()
                xp = torch.cat([x[:7], torch.zeros(3, 6, dtype=torch.float64)]).to(dtype)
                xp.requires_grad_()
                a, b = copy.deepcopy(bn).to(dtype), copy.deepcopy(mbn).to(dtype)
                g = torch.randn(7, 6, dtype=dtype)
                ga = torch.autograd.grad((a(xr) * g).sum(), [xr, a.weight, a.bias])
                with padding_masks(mask):
                    gb = torch.autograd.grad((b(xp)[:7] * g).sum(), [xp, b.weight, b.bias])
                tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {}
                torch.testing.assert_close(gb[0][:7], ga[0], **tol)
                assert not gb[0][7:].any()  # nothing flows into the padding
                torch.testing.assert_close(gb[1], ga[1], **tol)
                torch.testing.assert_close(gb[2], ga[2], **tol)
        finally:
            torch.set_float32_matmul_precision(old)
    mbn.eval()
    with padding_masks(mask):  # eval: running statistics, masks irrelevant
        torch.testing.assert_close(mbn(x[:10]), ref.eval()(x[:10]))


def test_masked_batchnorm_backward_gradcheck_and_vmap():
    """The hand-written backward of the masked normalisation: gradcheck in float64 (pad rows
    with their own gradients too), and mapped over stacked members with vmap it equals the
    members one by one (forward and gradients)."""
    from graphlab.nn.masked_norm import _MaskedBatchNormTrain
    torch.manual_seed(0)
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0] * 6 + [0.0] * 3, dtype=torch.float64)
    gamma = torch.randn(4, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: _MaskedBatchNormTrain.apply(a, w, b, c, 1e-5)[0], (x, gamma, beta))
    K = 3
    xs = torch.randn(K, 9, 4, dtype=torch.float64, requires_grad=True)
    gs = torch.randn(K, 4, dtype=torch.float64, requires_grad=True)
    bs = torch.randn(K, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(K, 9, 4, dtype=torch.float64)

    def one(a, b, c):
        return _MaskedBatchNormTrain.apply(a, w, b, c, 1e-5)[0]
    y = torch.func.vmap(one)(xs, gs, bs)
    grads = torch.autograd.grad((y * g).sum(), [xs, gs, bs])
    for k in range(K):
        yk = one(xs[k], gs[k], bs[k])
        torch.testing.assert_close(y[k], yk)
        ref = torch.autograd.grad((yk * g[k]).sum(), [xs, gs, bs])
        for a, b in zip(grads, ref):
            torch.testing.assert_close(a[k], b[k])


@pytest.mark.parametrize("task,T", [("graph_multilabel", 3), ("graph_classification", 3),
                                    ("graph_regression", 3)])
def test_masked_loss_equals_loss_on_real_graphs(task, T):
    torch.manual_seed(1)
    t = TASKS.get(task)("rocauc" if task == "graph_multilabel" else
                        "accuracy" if task == "graph_classification" else "mae")
    if task == "graph_regression":
        t.target_scale = torch.rand(T) + 0.5
    B, G = 5, 9
    pred = torch.randn(G, T, dtype=torch.float64)
    if task == "graph_classification":
        y = torch.randint(0, T, (G,))
    else:
        y = torch.randn(G, T, dtype=torch.float64)
        if task == "graph_multilabel":
            y = (y > 0).double()
            y[1, 2] = float("nan")
    mask = torch.arange(G) < B
    y_pad = y.clone()
    y_pad[B:] = 0
    torch.testing.assert_close(t.masked_loss(pred, y_pad, mask), t.loss(pred[:B], y[:B]),
                               check_dtype=False)


def gin(norm="batch"):
    return GIN(4, 3, hidden_channels=16, num_layers=3, dropout=0.0, norm=norm, pool="mean",
               virtual_node=True, task_level="graph", edge_dim=2).double()


def sinc():
    from graphlab.models.sincgcn import SINCGCN
    return SINCGCN(4, 3, hidden_channels=16, num_layers=2, norm="batch", neigh_aggr="sym",
                   aggr="mean", task_level="graph").double()


def gps():
    from graphlab.models.gps import GPS
    return GPS(4, 3, hidden_channels=16, num_layers=2, heads=2, attn_dropout=0.0, edge_dim=2,
               norm="batch", task_level="graph").double()


def gps_performer():
    from graphlab.models.gps import GPS
    return GPS(4, 3, hidden_channels=16, num_layers=2, heads=2, mixer="performer", edge_dim=2,
               attn_dropout=0.0,
               norm="batch", task_level="graph").double()


def gcn():
    from graphlab.models.basic import GCN
    return GCN(4, 3, hidden_channels=16, num_layers=3, dropout=0.0, norm="batch",
               task_level="graph").double()


def gatv2():
    from graphlab.models.basic import GAT
    return GAT(4, 3, hidden_channels=16, num_layers=2, heads=2, dropout=0.0, attn_dropout=0.0,
               norm="batch", residual=True, task_level="graph", edge_dim=2, v2=True).double()


def gps_gat():
    from graphlab.models.gps import GPS
    return GPS(4, 3, hidden_channels=16, num_layers=2, heads=2, mpnn="gat", attn_dropout=0.0,
               edge_dim=2, norm="batch", task_level="graph").double()


def gps_gcn():
    from graphlab.models.gps import GPS
    return GPS(4, 3, hidden_channels=16, num_layers=2, heads=2, mpnn="gcn", attn_dropout=0.0,
               edge_dim=2, norm="batch", task_level="graph").double()


BUILDS = [gin, sinc, gps, gps_performer, gcn, gatv2, gps_gat, gps_gcn]
BUILD_IDS = ["gin-virtual", "sincgcn", "gps", "gps-performer", "gcn", "gatv2", "gps-gat",
             "gps-gcn"]


@pytest.mark.parametrize("fixed_width", [False, True], ids=["dense-width-read", "fixed-width"])
@pytest.mark.parametrize("build", BUILDS, ids=BUILD_IDS)
def test_padded_step_equals_unpadded_step(build, fixed_width):
    """Outputs, loss, gradients and BatchNorm statistics of GIN-virtual (BatchNorm in its MLPs
    and in the virtual-node MLPs, edge features, mean pooling), SINC-GCN (degree-normalised
    neighbourhood context), GCN and GATv2 (self-loops, the padding's included) and GPS (GatedGCN with edge BatchNorm, attention or Performer over
    a dense layout; with ``fixed_width`` the layout is ``max_graph_nodes`` wide and the padding
    graph overflows it) on a padded batch equal those on the batch itself."""
    torch.manual_seed(0)
    batch = graphs(6, seed=3, y_kind="class")
    ref = build()
    model = copy.deepcopy(ref)
    assert mask_batchnorms(model) > 0 and has_unmasked_batch_statistics(model) is None
    row_sum_biases(model)  # as task.cuda_graphs swaps them in
    assert has_unmasked_batch_statistics(ref) is not None
    task = TASKS.get("graph_classification")("accuracy")
    out_ref = ref(batch)
    loss_ref = task.loss(out_ref, batch.y)
    loss_ref.backward()
    width = int(batch.ptr.diff().max()) if fixed_width else None
    # coarse buckets (granularity 1: powers of two) leave many pad nodes
    _, s = StaticBatcher(batch_size=8, granularity=1 if fixed_width else 8,
                         max_graph_nodes=width)(batch)
    if fixed_width:
        assert s.num_nodes - batch.num_nodes > width  # the padding graph overflows the width
    with padding_masks(s.node_mask, s.edge_mask, s.graph_mask):
        out = model(s)
    loss = task.masked_loss(out, s.y, s.graph_mask)
    loss.backward()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:batch.num_graphs], out_ref)
    torch.testing.assert_close(loss, loss_ref)
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=n)
    for (n, b), c in zip(model.named_buffers(), ref.buffers()):
        torch.testing.assert_close(b, c, msg=n)


class _HostSyncs(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that read a value back to the host on a GPU, or copy Python data to it
    (what a CUDA graph cannot record): on CPU they run the same way, so a CPU test sees them."""
    SYNC = ("aten._local_scalar_dense", "aten.nonzero", "aten.is_nonzero", "aten.item",
            "aten.masked_select", "aten.unique", "aten._unique", "aten.argwhere",
            "aten.bincount", "aten.repeat_interleave.Tensor",
            # a tensor made from Python data (``t[idx] = True``, ``torch.tensor(...)``): on a GPU
            # a host-to-device copy from pageable memory, which a recording refuses
            "aten.lift_fresh")
    # boolean-mask indexing reaches dispatch as a plain index op; its nonzero runs inside it
    MASK_INDEX = ("aten.index.Tensor", "aten.index_put", "aten._index_put_impl_")

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name.startswith(self.SYNC):
            self.ops.append(name)
        elif name.startswith(self.MASK_INDEX) and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 else ()) or ()):
            self.ops.append(name + " (boolean mask)")
        return func(*args, **(kwargs or {}))


def gps_lappe():
    """The Peptides-func GPS setup: LapPE with random sign flips, attention dropout."""
    from graphlab.models.gps import GPS
    return GPS(4, 3, hidden_channels=16, num_layers=2, heads=2, attn_dropout=0.5, edge_dim=2,
               pe="lap", pe_dim=4, pe_kwargs={"k": 2}, task_level="graph").double()


@pytest.mark.parametrize("build", BUILDS + [gps_lappe], ids=BUILD_IDS + ["gps-lappe"])
def test_padded_step_never_reads_back_to_the_host(build, monkeypatch):
    """What task.cuda_graphs records: forward and backward on a static batch (with the dataset's
    largest graph as the dense width), with the input checks skipped as they are while a graph
    is recorded, issue no device-to-host read."""
    import graphlab.nn.checks as checks
    monkeypatch.setattr(checks, "_tracing", lambda: True)
    torch.manual_seed(0)
    batch = graphs(6, seed=3, y_kind="class")
    if build is gps_lappe:
        from graphlab.transforms.pe import pe_transform
        t = pe_transform("lap", k=2)
        batch = Batch.from_data_list([t(g) for g in batch.to_data_list()])
    model = build()
    mask_batchnorms(model)
    row_sum_biases(model)
    task = TASKS.get("graph_classification")("accuracy")
    _, s = StaticBatcher(batch_size=8, max_graph_nodes=int(batch.ptr.diff().max()))(batch)
    with _HostSyncs() as mode:
        with padding_masks(s.node_mask, s.edge_mask, s.graph_mask):
            out = model(s)
        task.masked_loss(out, s.y, s.graph_mask).backward()
    assert mode.ops == [] and torch.isfinite(out).all()


def test_graphed_steps_eager_path_and_capture_needs_cuda():
    from graphlab.train.cuda_graphs import GraphedSteps
    seen = []
    steps = GraphedSteps(lambda s: seen.append(s.num_real_graphs) or s.y.sum(), batch_size=8,
                         capture=False)
    steps(graphs(3))
    steps(graphs(6, seed=1))
    assert seen == [3, 6] and steps.stats["eager"] == 2
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            GraphedSteps(lambda s: s.y, batch_size=8, capture=True)


def _ens_cfg(**task):
    return {"experiment": "cg", "data": {"name": "motifs", "batch_size": 64},
            "model": {"name": "gin", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0,
                      "virtual_node": True},
            "optim": {"name": "adam", "lr": 0.02}, "scheduler": {"name": "none"},
            "trainer": {"max_epochs": 2, "precision": "64-true", "gradient_clip_val": 0.5,
                        "accelerator": "cpu"},
            "task": task}


@pytest.mark.parametrize("schedule,model", [("none", "gin"), ("plateau", "gin"), ("none", "gps"),
                                            ("none", "gcn")])
def test_ensemble_padded_steps_equal_plain_ensemble(data_root, tmp_path, schedule, model):
    """``task.cuda_graphs`` with capture off (the padded static batches, masked BatchNorm and
    masked loss, run eagerly on CPU) trains every member as the plain ensemble does; with a
    plateau schedule of patience 0 the members' rates differ (per-member rescaling). GPS runs
    its attention at the dataset's largest graph as a fixed dense width."""
    from graphlab.train.ensemble_run import run_ensemble

    def cfg(**task):
        c = _ens_cfg(**task)
        if model == "gps":
            c["model"] = {"name": "gps", "hidden_channels": 16, "num_layers": 2, "heads": 2,
                          "attn_dropout": 0.0}
            # SGD: GPS has parameters whose gradient is zero up to rounding (attention key
            # biases, biases ahead of BatchNorm); Adam scales such noise up to full-size steps,
            # so two summation orders drift apart (0.4% in eval loss after 2 epochs with Adam,
            # train loss still equal to 1e-9); SGD keeps rounding at rounding
            c["optim"] = {"name": "sgd", "lr": 0.01}
        if model == "gcn":
            # GCN with its self-loops (the padding's included). Not GAT here: the motifs' node
            # features are constant, so attention gives every node the same state and BatchNorm
            # divides rounding noise by sqrt(eps) (padded == unpadded for GATv2 is checked on
            # random features above, test_padded_step_equals_unpadded_step[gatv2])
            c["model"] = {"name": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0,
                          "norm": "batch"}
        if schedule == "plateau":
            c["scheduler"] = {"name": "plateau", "patience": 0, "factor": 0.5}
            c["trainer"]["max_epochs"] = 3
        return c
    ref = run_ensemble(cfg(), [0, 1], str(tmp_path / "ref"), quiet=True)
    got = run_ensemble(cfg(cuda_graphs={"capture": False}), [0, 1], str(tmp_path / "cg"),
                       quiet=True)
    if schedule == "plateau":
        assert len({h["lr"] for r in got for h in r["history"]}) > 1
    for a, b in zip(got, ref):
        assert a["ensemble"]["cuda_graphs"]["eager"] > 0
        assert [h["lr"] for h in a["history"]] == [h["lr"] for h in b["history"]]
        for e, (ha, hb) in enumerate(zip(a["history"], b["history"])):
            # masked and native BatchNorm sum in different orders: 1e-13 apart after one
            # epoch, and training at lr 0.02 amplifies that to ~1e-8 by the third
            rel = 1e-7 if e < 2 else 1e-5
            for k in ha:
                # validation / test losses are means over float32 predictions (what the metric
                # reads), so their own rounding is ~1e-7 relative
                r = max(rel, 1e-6) if k.endswith("_loss") and k != "train_loss" else rel
                assert ha[k] == pytest.approx(hb[k], rel=r, abs=1e-9), (e, k)


def test_cuda_graphs_config_errors(data_root, tmp_path):
    from graphlab.train.config import ConfigError
    from graphlab.train.ensemble_run import run_ensemble
    from graphlab.train.run import run_seed
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            run_ensemble(_ens_cfg(cuda_graphs=True), [0], str(tmp_path), quiet=True)
    from graphlab.train.cuda_graphs import set_tensor_lr
    with pytest.raises(ValueError, match="needs adam or adamw"):
        set_tensor_lr(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "cpu")
    with pytest.raises(ConfigError, match="--ensemble"):
        run_seed(_ens_cfg(cuda_graphs=True), 0, str(tmp_path), quiet=True)
    with pytest.raises(ConfigError, match="unknown key 'task.cuda_graphs.granularty'"):
        run_ensemble(_ens_cfg(cuda_graphs={"granularty": 4}), [0], str(tmp_path), quiet=True)



def test_row_sum_bias_linear_equals_linear():
    """``RowSumBiasLinear`` (bias gradient as one vector-matrix product): output and gradients
    of ``nn.Linear`` in float64 on 2- and 3-d inputs, mapped over stacked members with vmap,
    and the class swap keeps parameters and state-dict keys."""
    from graphlab.nn.row_sums import RowSumBiasLinear, row_sum_biases
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 3, bias=False)).double()
    model = copy.deepcopy(ref)
    keys = list(model.state_dict())
    assert row_sum_biases(model) == 1 and isinstance(model[0], RowSumBiasLinear)
    assert type(model[2]) is torch.nn.Linear and list(model.state_dict()) == keys
    for shape in [(7, 5), (2, 6, 5)]:
        x = torch.randn(*shape, dtype=torch.float64)
        g = torch.randn(*shape[:-1], 3, dtype=torch.float64)
        ya, yb = ref(x), model(x)
        torch.testing.assert_close(yb, ya)
        ga = torch.autograd.grad((ya * g).sum(), list(ref.parameters()))
        gb = torch.autograd.grad((yb * g).sum(), list(model.parameters()))
        for a, b in zip(gb, ga):
            torch.testing.assert_close(a, b)
    lin = RowSumBiasLinear(5, 4).double()
    assert torch.autograd.gradcheck(lin, (torch.randn(3, 5, dtype=torch.float64,
                                                      requires_grad=True),))
    W = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 5, dtype=torch.float64)
    g = torch.randn(3, 6, 4, dtype=torch.float64)

    def one(w_, b_):
        return torch.func.functional_call(lin, {"weight": w_, "bias": b_}, (x,))
    y = torch.func.vmap(one)(W, b)
    gw, gbias = torch.autograd.grad((y * g).sum(), [W, b])
    torch.testing.assert_close(gbias, g.sum(1))
    torch.testing.assert_close(gw, torch.einsum("kno,ni->koi", g, x))
