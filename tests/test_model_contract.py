"""Every registered model satisfies the model contract (graphlab.models.contract): the
signature side for all, and a forward pass of the documented shape on a small batch."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.models.contract import GraphModel, check_model_class
from graphlab.registry import MODELS
from graphlab.transforms import AddRRWP


def _graphs(n=3, feats=5):
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(n):
        m = 4 + k
        ring = torch.arange(m)
        ei = torch.stack([ring, (ring + 1) % m])
        out.append(Data(x=torch.randn(m, feats, generator=g),
                        edge_index=torch.cat([ei, ei.flip(0)], 1)))
    return out


#: per-model inputs beyond the generic batch (a pre-transform the model documents it reads)
PREPARE = {"grit": lambda g: AddRRWP(walk_length=4)(g)}
SMALL = {"grit": {"hidden_channels": 16, "walk_length": 4, "heads": 2},
         "gps": {"hidden_channels": 16, "heads": 2}, "gmn": {"hidden_channels": 16}}


#: graphlab's own models (test modules register toys of their own)
OWN = [n for n in MODELS.names() if MODELS.get(n).__module__.startswith("graphlab.")]


@pytest.mark.parametrize("name", OWN)
def test_signature_side_of_the_contract(name):
    assert check_model_class(MODELS.get(name)) == []


#: recommendation models embed user / item ids (tested in test_train_ranking / test_ultragcn)
ID_MODELS = ("lightgcn", "ultragcn")


@pytest.mark.parametrize("name", [n for n in OWN if n not in ID_MODELS])
@pytest.mark.parametrize("level", ["graph", "node"])
def test_forward_shape(name, level):
    cls = MODELS.get(name)
    if level not in getattr(cls, "task_levels", ("graph", "node")):
        with pytest.raises(ValueError):
            cls(5, 3, task_level=level, **SMALL.get(name, {}))
        return
    torch.manual_seed(0)
    model = cls(5, 3, task_level=level, **SMALL.get(name, {}))
    assert isinstance(model, GraphModel)
    graphs = [PREPARE.get(name, lambda g: g)(g) for g in _graphs()]
    batch = Batch.from_data_list(graphs)
    model.eval()
    out = model(batch)
    assert out.shape == ((batch.num_graphs if level == "graph" else batch.num_nodes), 3)
    model.reset_parameters()


def test_lightgcn_forward_shape():
    model = MODELS.get("lightgcn")(7, 1, num_users=3, num_items=4, hidden_channels=8)
    ei = torch.tensor([[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]])
    out = model(Data(edge_index=ei, num_nodes=7))
    assert out.shape == (7, 8)
