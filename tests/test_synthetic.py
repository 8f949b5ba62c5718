"""Generated benchmarks are identical on every machine and have the documented shape."""
import torch

import graphlab.data as gd


def test_generated_datasets_are_deterministic(tmp_path):
    for name in ("motifs", "ba-shapes"):
        a = gd.load(name, root=str(tmp_path / "a"))
        b = gd.load(name, root=str(tmp_path / "b"))
        assert len(a) == len(b)
        for i in range(len(a)):
            assert torch.equal(a[i].edge_index, b[i].edge_index) and torch.equal(a[i].y, b[i].y)


def test_generated_dataset_shapes(tmp_path):
    m = gd.load("motifs", root=str(tmp_path))
    assert len(m) == 600 and m.num_classes == 3
    assert torch.bincount(torch.cat([d.y for d in m])).tolist() == [200, 200, 200]
    s = gd.get_split("motifs", m, seed=0)
    assert sorted(torch.cat([s["train"], s["valid"], s["test"]]).tolist()) == list(range(600))
    ba = gd.load("ba-shapes", root=str(tmp_path))[0]
    assert ba.num_nodes == 700 and torch.bincount(ba.y).tolist() == [300, 160, 160, 80]
    nc = gd.load("ncmp-synthetic", num_graphs=20)
    split = gd.get_split("ncmp-synthetic", nc, seed=0)
    assert set(split) == {"train", "valid", "test"} and split["valid"].numel() >= 1
