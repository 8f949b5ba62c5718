"""The generated ``cycles`` counting set, the ``mae_normalized`` metric and node-level
multi-target regression over many graphs (inductive) in the trainer."""
from __future__ import annotations

import itertools
import json

import networkx as nx
import numpy as np
import pytest
import torch

from graphlab.data.synthetic_cycles import CYCLE_LENGTHS, CycleCounts, node_cycle_counts, random_graph
from graphlab.tasks import metrics as M


def brute_force_counts(G: nx.Graph, lengths=CYCLE_LENGTHS) -> torch.Tensor:
    """Reference: every sequence of L distinct nodes that closes into a cycle; a cycle through
    v is seen twice with v first (both directions)."""
    n = G.number_of_nodes()
    out = torch.zeros(n, len(lengths), dtype=torch.float64)
    for c, L in enumerate(lengths):
        for seq in itertools.permutations(range(n), L):
            if all(G.has_edge(seq[i], seq[(i + 1) % L]) for i in range(L)):
                out[seq[0], c] += 0.5
    return out


def _small_graphs():
    yield nx.complete_graph(5)
    yield nx.cycle_graph(6)
    yield nx.house_graph()
    yield nx.convert_node_labels_to_integers(nx.grid_2d_graph(2, 3))
    yield nx.path_graph(4)                       # no cycles
    g = nx.empty_graph(3)                        # no edges at all
    yield g
    rng = np.random.default_rng(0)
    for _ in range(3):
        yield nx.gnp_random_graph(7, 0.5, seed=int(rng.integers(1 << 30)))


@pytest.mark.parametrize("G", list(_small_graphs()), ids=lambda g: f"n{g.number_of_nodes()}"
                         f"e{g.number_of_edges()}")
def test_counts_match_brute_force(G):
    assert torch.equal(node_cycle_counts(G), brute_force_counts(G))


def test_counts_known_values_and_errors():
    # K4: every node lies on 3 triangles and on all 3 four-cycles
    assert node_cycle_counts(nx.complete_graph(4)).tolist() == [[3, 3, 0, 0]] * 4
    # a self-loop and a parallel edge are not cycles of length >= 3
    g = nx.MultiGraph([(0, 1), (0, 1), (1, 1), (1, 2)])
    assert node_cycle_counts(g).abs().sum() == 0
    with pytest.raises(ValueError, match="undirected"):
        node_cycle_counts(nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="lengths"):
        node_cycle_counts(nx.cycle_graph(3), lengths=(2,))


def test_generator_draws_all_cycle_lengths():
    rng = np.random.default_rng(0)
    graphs = [random_graph(rng) for _ in range(30)]
    assert all(10 <= g.number_of_nodes() <= 30 for g in graphs)
    total = sum(node_cycle_counts(g).sum(0) for g in graphs)
    assert (total > 0).all()


def test_dataset_build_split_and_cache(tmp_path):
    from graphlab import data as gdata
    info = gdata.info("cycles")
    assert info.task == "node_regression" and info.metric == "mae_normalized"
    assert not info.higher_is_better
    ds = gdata.load("cycles", root=str(tmp_path), num_graphs=14)
    assert len(ds) == 14
    d = ds[0]
    assert d.y.shape == (d.num_nodes, 4) and torch.equal(d.x, torch.ones(d.num_nodes, 1))
    split = gdata.get_split("cycles", ds, seed=0)
    assert [len(split[k]) for k in ("train", "valid", "test")] == [10, 2, 2]
    assert torch.equal(torch.cat([split[k] for k in ("train", "valid", "test")]), torch.arange(14))
    # deterministic: a fresh build elsewhere gives the same graphs and targets
    again = CycleCounts(str(tmp_path / "other"), num_graphs=14)
    assert torch.equal(again._data.y, ds._data.y)
    assert torch.equal(again._data.edge_index, ds._data.edge_index)
    # every target equals a recount from the stored edges
    for i in range(3):
        g = ds[i]
        G = nx.Graph()
        G.add_nodes_from(range(g.num_nodes))
        G.add_edges_from(g.edge_index.t().tolist())
        assert torch.equal(node_cycle_counts(G).float(), g.y)


def test_mae_normalized_metric():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(50, 3, generator=g, dtype=torch.float64)
    pred = y + 0.1 * torch.randn(50, 3, generator=g, dtype=torch.float64)
    scale = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    ref = [float((pred[:, t] - y[:, t]).abs().mean() / scale[t]) for t in range(3)]
    per = M.mae_normalized_per_target(pred, y, scale)
    assert per.tolist() == pytest.approx(ref)
    assert M.compute("mae_normalized", pred, y, scale=scale) == pytest.approx(sum(ref) / 3)
    parts = M.per_target("mae_normalized", pred, y, scale)
    assert list(parts) == ["t0", "t1", "t2"] and parts["t2"] == pytest.approx(ref[2])
    assert M.per_target("mae", pred, y) == {}
    assert not M.higher_is_better("mae_normalized")
    with pytest.raises(ValueError, match="scale"):
        M.compute("mae_normalized", pred, y)
    with pytest.raises(ValueError, match="positive"):
        M.mae_normalized_per_target(pred, y, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="entries"):
        M.mae_normalized_per_target(pred, y, torch.ones(2))


def test_loss_is_the_metric():
    from graphlab.tasks import NodeRegression
    scale = torch.tensor([1.0, 5.0])
    task = NodeRegression("mae_normalized")
    task.target_scale = scale
    pred, y = torch.randn(9, 2), torch.randn(9, 2) * 5
    assert float(task.loss(pred, y)) == pytest.approx(
        M.compute("mae_normalized", pred, y, scale=scale), rel=1e-5)


def test_target_std_over_training_nodes(tmp_path):
    from graphlab.data.pipeline import target_std
    ds = CycleCounts(str(tmp_path), num_graphs=14)
    train = torch.arange(10)
    ref = torch.cat([ds[int(i)].y for i in train]).double().std(0)
    ref = torch.where(ref > 0, ref, torch.ones_like(ref))
    assert torch.allclose(target_std(ds, train), ref)


@pytest.mark.parametrize("pe", ["spe", "none"])
def test_train_end_to_end(tmp_path, pe):
    from graphlab.train.run import run_seed
    model = {"name": "gin", "hidden_channels": 16, "num_layers": 2, "dropout": 0.0,
             "residual": True}
    data = {"name": "cycles", "root": str(tmp_path / "data"), "batch_size": 8,
            "opts": {"num_graphs": 21}}
    if pe == "spe":
        data["pe"] = {"name": "spe", "k": 8}
        model.update(pe="spe", pe_dim=4, pe_kwargs={"k": 8, "num_phis": 2,
                                                    "phi_hidden_channels": 4, "phi_layers": 2,
                                                    "rho_hidden_channels": 4, "rho_layers": 1})
    cfg = {"experiment": f"cyc-{pe}", "data": data, "model": model,
           "optim": {"name": "adam", "lr": 0.01}, "trainer": {"max_epochs": 2}}
    rec = run_seed(cfg, 0, str(tmp_path / "runs"), quiet=True)
    assert rec["task"] == "node_regression" and rec["metric"] == "mae_normalized"
    for split in ("valid", "test"):
        parts = [rec[split][f"mae_normalized_t{t}"] for t in range(4)]
        assert rec[split]["mae_normalized"] == pytest.approx(sum(parts) / 4)
    assert len(rec["target_scale"]) == 4
    on_disk = json.loads((tmp_path / "runs" / f"cyc-{pe}" / "seed0" / "metrics.json").read_text())
    assert "mae_normalized_t3" in on_disk["test"]
    # test predictions: one row of 4 counts per test node, in a stable node order
    pred = torch.load(tmp_path / "runs" / f"cyc-{pe}" / "seed0" / "test_predictions.pt")
    assert pred["y_pred"].shape[1] == 4 and pred["y_true"].shape == pred["y_pred"].shape
