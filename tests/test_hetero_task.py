"""Heterogeneous node classification as a task family: per-type inputs, a target node type,
single- and multi-label targets, on the MAGNN DBLP and HGB IMDB heterographs (real data)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import HeteroConv, SAGEConv

from graphlab.registry import MODELS, register_model
from graphlab.train import train


class TinyHetero(nn.Module):
    """Per-type input maps (an embedding for featureless types), one HeteroConv of SAGE convs,
    a linear head on the target type: the smallest model of the heterograph contract."""

    def __init__(self, in_channels: dict, out_channels: int, metadata=None, target: str = "",
                 hidden_channels: int = 16, task_level: str = "node",
                 node_encoder: str = "linear", edge_encoder: str = "linear"):
        super().__init__()
        node_types, edge_types = metadata
        self.target = target
        self.inp = nn.ModuleDict({t: nn.Linear(d, hidden_channels) for t, d in
                                  in_channels.items() if d > 0})
        self.conv = HeteroConv({et: SAGEConv((-1, -1), hidden_channels) for et in edge_types})
        self.head = nn.Linear(hidden_channels, out_channels)
        self.hidden = hidden_channels

    def forward(self, data):
        h = {t: self.inp[t](data[t].x) if t in self.inp else
             torch.zeros(data[t].num_nodes, self.hidden) for t in data.node_types}
        h = self.conv(h, data.edge_index_dict)
        return self.head(torch.relu(h[self.target]))


@pytest.fixture
def tiny_model():
    register_model("tiny_hetero_test")(TinyHetero)
    yield "tiny_hetero_test"
    MODELS.unregister("tiny_hetero_test")


@pytest.mark.realdata
@pytest.mark.parametrize("name,metric", [("dblp", "f1_macro"), ("hgb-imdb", "f1_micro")])
def test_hetero_node_classification_trains(mirror, data_root, tiny_model, name, metric):
    cfg = {"model": {"name": tiny_model}, "optim": {"name": "adam", "lr": 0.01},
           "task": {"metric": metric}, "trainer": {"max_epochs": 4, "accelerator": "cpu"}}
    rec = train(None, name, cfg)
    assert rec["task"] == "hetero_node_classification" and rec["epochs"] == 4
    h = rec["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert 0.0 <= rec["test"][metric] <= 1.0 and f"valid_{metric}" in h[0]


def test_unknown_target_type_is_a_clear_error():
    from torch_geometric.data import HeteroData

    from graphlab.data.catalog import DatasetInfo
    from graphlab.tasks import HeteroNodeClassification
    d = HeteroData()
    d["a"].x = torch.randn(3, 2)
    d["a"].y = torch.tensor([0, 1, 0])
    info = DatasetInfo("h", "hetero_node_classification", "f1_macro", True, None, "linear",
                       None, "fixed", "test", None, target="a")
    with pytest.raises(ValueError, match="target node type 'b' is not one of a"):
        HeteroNodeClassification("f1_macro", target="b").prepare([d], info, None)
