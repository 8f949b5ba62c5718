"""Packed in-memory batching (graphlab.data.packed) against PyG's collation of the same graphs."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.datasets import FakeDataset
from torch_geometric.loader import DataLoader

from graphlab.data.packed import (PackedGraphs, PackedLoader, describe_choice, epoch_permutation,
                                  estimate_nbytes, fits_in_memory, packing_problem)
from graphlab.data.loaders import EpochSeededSampler, IndexedSubset


# --------------------------------------------------------------------------- helpers
def reference(dataset, dataset_indices) -> Batch:
    """What the trainer's standard path builds: IndexedSubset items through PyG's collate."""
    items = []
    for i in dataset_indices:
        d = dataset[int(i)]
        d.sample_idx = torch.tensor([int(i)])
        items.append(d)
    return Batch.from_data_list(items)


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def assert_same_batch(got: Batch, want: Batch) -> None:
    assert type(got).__name__ == type(want).__name__
    assert sorted(got.keys()) == sorted(want.keys())
    for key in want.keys():
        assert _equal(got[key], want[key]), key
    assert got.num_graphs == want.num_graphs
    assert got.num_nodes == want.num_nodes
    assert _equal(got._slice_dict, want._slice_dict)
    assert _equal(got._inc_dict, want._inc_dict)


class PairData(Data):
    """A Data subclass with custom collate rules: a stacked graph-level field and a per-graph
    tensor increment (as in PyG's bipartite examples)."""

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "graph_feat":
            return None
        return super().__cat_dim__(key, value, *args, **kwargs)

    def __inc__(self, key, value, *args, **kwargs):
        if key == "bip_index":
            return torch.tensor([[self.num_nodes], [3]])
        return super().__inc__(key, value, *args, **kwargs)


def rich_graphs(n: int = 40, seed: int = 0, cls=Data):
    """Graphs with every kind of attribute, including zero-edge and one-node graphs."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        nn = 1 if i % 7 == 0 else int(torch.randint(2, 9, (1, ), generator=g))
        ne = 0 if i % 5 == 0 else int(torch.randint(1, 3 * nn + 1, (1, ), generator=g))
        npair = int(torch.randint(0, nn * nn + 1, (1, ), generator=g))
        d = cls(x=torch.randn(nn, 3, generator=g),
                edge_index=torch.randint(0, nn, (2, ne), generator=g),
                edge_attr=torch.randn(ne, 2, generator=g),
                y=torch.randint(0, 3, (1, 2), generator=g),
                rwse=torch.rand(nn, 4, generator=g, dtype=torch.float64),
                eig_vals=torch.rand(nn, 3, generator=g),
                eig_mask=torch.rand(nn, 3, generator=g) > 0.3,
                rrwp_index=torch.randint(0, nn, (2, npair), generator=g),
                rrwp_val=torch.rand(npair, 5, generator=g),
                face=torch.randint(0, nn, (3, 2), generator=g),
                tri_index=torch.randint(0, nn, (3, ne), generator=g, dtype=torch.int32),
                label=int(torch.randint(0, 5, (1, ), generator=g)),
                weight=float(torch.rand(1, generator=g)),
                name=f"graph{i}",
                num_nodes=nn)
        if cls is PairData:
            d.graph_feat = torch.randn(6, generator=g)
            d.bip_index = torch.randint(0, 3, (2, ne), generator=g)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def fake():
    torch.manual_seed(0)
    return FakeDataset(num_graphs=60, avg_num_nodes=8, avg_degree=3, num_channels=5, edge_dim=3,
                       num_classes=4)


# --------------------------------------------------------------------------- equality with PyG
@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_every_batch_equals_pyg_collate_fake(fake, batch_size):
    indices = torch.randperm(len(fake), generator=torch.Generator().manual_seed(1))[:45]
    packed = PackedGraphs(fake, indices)
    loader = PackedLoader(packed, batch_size=batch_size, shuffle=True, seed=3)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        order = epoch_permutation(len(indices), 3, epoch)
        batches = list(loader)
        assert len(batches) == len(loader)
        for k, got in enumerate(batches):
            pos = order[k * batch_size:(k + 1) * batch_size]
            assert_same_batch(got, reference(fake, indices[pos]))


@pytest.mark.parametrize("cls", [Data, PairData])
def test_every_field_equals_pyg_collate_rich(cls):
    graphs = rich_graphs(cls=cls)
    packed = PackedGraphs(graphs)
    for idx in ([0], [5, 0, 14], list(range(len(graphs)))[::-1], [3, 3, 3], [7, 14, 21, 28, 0]):
        got = packed.batch(torch.tensor(idx))
        want = reference(graphs, idx)
        assert_same_batch(got, want)
    # int32 index field stays int32 (0-d increment), as in PyG
    assert got.tri_index.dtype == torch.int32 and got.rwse.dtype == torch.float64
    assert got.name == [f"graph{i}" for i in [7, 14, 21, 28, 0]]


def test_all_single_node_edgeless_graphs():
    graphs = [Data(x=torch.full((1, 2), float(i)), edge_index=torch.empty(2, 0, dtype=torch.long),
                   y=torch.tensor([i])) for i in range(9)]
    loader = PackedLoader(PackedGraphs(graphs), batch_size=4)
    for k, got in enumerate(loader):
        assert_same_batch(got, reference(graphs, range(4 * k, min(9, 4 * k + 4))))


@pytest.mark.filterwarnings("ignore:AddLaplacianEigen")
def test_real_pe_transforms_match_and_stay_aligned(fake):
    """Precomputed encodings (graphlab's RRWP and Laplacian transforms) stay with their graph."""
    from graphlab.transforms import AddLaplacianEigen, AddRRWP
    graphs = []
    for i in range(20):
        d = fake[i]
        d = AddLaplacianEigen(k=3)(AddRRWP(walk_length=4)(d))
        graphs.append(d)
    loader = PackedLoader(PackedGraphs(graphs), batch_size=6, shuffle=True, seed=11)
    loader.set_epoch(2)
    seen = []
    for got in loader:
        assert_same_batch(got, reference(graphs, got.sample_idx))
        for j, ex in enumerate(got.to_data_list()):
            src = graphs[int(got.sample_idx[j])]
            for key in ("x", "edge_index", "rrwp", "rrwp_index", "rrwp_val", "eigvecs",
                        "eigvals", "eig_mask", "y"):
                assert torch.equal(ex[key], src[key]), key
        seen += got.sample_idx.tolist()
    assert sorted(seen) == list(range(20))


def test_serial_repeat_interleave_matches_torch():
    from graphlab.data.packed import _repeat_interleave
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.long, torch.int32, torch.float32):
        sizes = torch.randint(0, 4, (30, ), generator=g)
        sizes[-3:] = 0  # trailing empty segments
        values = torch.randint(-50, 50, (30, 2, 1), generator=g).to(dtype)
        got = _repeat_interleave(values, sizes, int(sizes.sum()))
        want = torch.repeat_interleave(values, sizes, dim=0)
        assert got.dtype == want.dtype and torch.equal(got, want)


# --------------------------------------------------------------------------- order and loader
def test_shuffle_matches_epoch_seeded_sampler_and_is_deterministic(fake):
    indices = torch.arange(3, 53)
    a = PackedLoader(PackedGraphs(fake, indices), batch_size=8, shuffle=True, seed=5)
    b = PackedLoader(PackedGraphs(fake, indices), batch_size=8, shuffle=True, seed=5)
    sampler = EpochSeededSampler(len(indices), 5)
    orders = []
    for epoch in (0, 1, 4):
        a.set_epoch(epoch)
        b.sampler.set_epoch(epoch)  # the hook Lightning calls
        sampler.set_epoch(epoch)
        want = indices[torch.tensor(list(sampler))]
        got_a = torch.cat([x.sample_idx for x in a])
        got_b = torch.cat([x.sample_idx for x in b])
        assert torch.equal(got_a, want) and torch.equal(got_b, want)
        orders.append(got_a)
    assert not torch.equal(orders[0], orders[1])
    c = PackedLoader(a.packed, batch_size=8, shuffle=True, seed=6)
    assert not torch.equal(torch.cat([x.sample_idx for x in c]), orders[0])


def test_lockstep_with_trainer_standard_loader(fake):
    """The standard path exactly as GraphDataModule builds it, batch by batch."""
    split = torch.arange(0, 60, 2)
    ds = IndexedSubset(fake, split)
    std = DataLoader(ds, batch_size=4, sampler=EpochSeededSampler(len(ds), 9))
    pk = PackedLoader(PackedGraphs(fake, split), batch_size=4, shuffle=True, seed=9)
    for epoch in (0, 3):
        std.sampler.set_epoch(epoch)
        pk.set_epoch(epoch)
        assert len(std) == len(pk)
        for want, got in zip(std, pk):
            assert_same_batch(got, want)
    ev_std = DataLoader(ds, batch_size=7, shuffle=False)
    ev_pk = PackedLoader(pk.packed, batch_size=7)
    for want, got in zip(ev_std, ev_pk):
        assert_same_batch(got, want)


def test_len_drop_last_and_bool_mask(fake):
    mask = torch.zeros(len(fake), dtype=torch.bool)
    mask[:23] = True
    packed = PackedGraphs(fake, mask)
    assert len(packed) == 23 and torch.equal(packed.indices, torch.arange(23))
    assert len(PackedLoader(packed, 5)) == 5
    dl = PackedLoader(packed, 5, drop_last=True)
    assert len(dl) == 4 and [b.num_graphs for b in dl] == [5, 5, 5, 5]


def test_motifs_dataset(data_root):
    import graphlab.data as gd
    ds = gd.load("motifs")
    split = gd.get_split("motifs", ds, seed=0)
    for key, shuffle in (("train", True), ("valid", False)):
        sub = IndexedSubset(ds, torch.as_tensor(split[key]))
        sampler = EpochSeededSampler(len(sub), 2) if shuffle else None
        std = DataLoader(sub, batch_size=32, sampler=sampler)
        pk = PackedLoader(PackedGraphs(ds, split[key]), batch_size=32, shuffle=shuffle, seed=2)
        if shuffle:
            std.sampler.set_epoch(1)
            pk.set_epoch(1)
        n = 0
        for want, got in zip(std, pk):
            assert_same_batch(got, want)
            n += got.num_graphs
        assert n == len(sub)


# --------------------------------------------------------------------------- errors and selection
def test_bad_input_errors(fake):
    with pytest.raises(ValueError, match="'batch_size'"):
        PackedLoader(PackedGraphs(fake, [0, 1]), batch_size=0)
    with pytest.raises(ValueError, match="'indices'"):
        PackedGraphs(fake, [0, 999])
    g = [Data(x=torch.ones(2, 1)), Data(x=torch.ones(2, 1), z=torch.ones(2))]
    with pytest.raises(ValueError, match="same attributes"):
        PackedGraphs(g)
    s = [Data(x=torch.ones(2, 1), adj=torch.eye(2).to_sparse()) for _ in range(2)]
    with pytest.raises(ValueError, match="'adj'"):
        PackedGraphs(s)
    with pytest.raises(ValueError, match="'fraction'"):
        fits_in_memory(fake, "cpu", fraction=0.0)


def test_memory_estimate_and_choice(fake):
    packed = PackedGraphs(fake)
    est = estimate_nbytes(fake)
    assert 0.8 * packed.nbytes <= est <= 1.5 * packed.nbytes
    assert fits_in_memory(fake, "cpu")
    assert not fits_in_memory(fake, "cpu", fraction=1e-12)
    ok, msg = describe_choice(fake, "cpu", name="fake")
    assert ok and msg.startswith("packed loader: fake takes")
    ok, msg = describe_choice(fake, "cpu", fraction=1e-12, name="fake")
    assert not ok and "PyG's DataLoader" in msg
    import torch_geometric.transforms as T
    fake.transform = T.RandomJitter(0.1)
    try:
        assert "random" in packing_problem(fake)
        assert not describe_choice(fake, "cpu")[0]
    finally:
        fake.transform = None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_equal_pyg(fake):
    graphs = rich_graphs()
    loader = PackedLoader(PackedGraphs(graphs, device="cuda"), batch_size=6, shuffle=True, seed=1)
    for got in loader:
        assert got.x.is_cuda and got.batch.is_cuda
        want = reference(graphs, got.sample_idx.cpu()).to("cuda")
        for key in want.keys():
            assert _equal(got[key], want[key]), key


# --------------------------------------------------------------------------- training equivalence
def test_global_rng_stream_matches_dataloader(fake):
    """One draw per pass, like torch's DataLoader (so dropout masks match); none on iter()."""
    sub = IndexedSubset(fake, torch.arange(30))
    std = DataLoader(sub, batch_size=8, sampler=EpochSeededSampler(30, 0))
    pk = PackedLoader(PackedGraphs(fake, torch.arange(30)), batch_size=8, shuffle=True)
    torch.manual_seed(0)
    list(std)
    want = torch.get_rng_state()
    torch.manual_seed(0)
    iter(pk)  # Lightning's iterability check
    list(pk)
    assert torch.equal(torch.get_rng_state(), want)


def test_lightning_training_is_identical(fake, tmp_path):
    """A dropout model trained by Lightning (epoch hook through ``loader.sampler``) ends with
    the same weights on either loader."""
    import lightning as L
    from torch_geometric.nn import global_add_pool

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(5, 4)
            self.drop = torch.nn.Dropout(0.5)

        def training_step(self, batch, batch_idx):
            out = global_add_pool(self.drop(self.lin(batch.x)), batch.batch)
            return torch.nn.functional.cross_entropy(out, batch.y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    split = torch.arange(40)
    loaders = {
        "pyg": lambda: DataLoader(IndexedSubset(fake, split), batch_size=8,
                                  sampler=EpochSeededSampler(40, 4)),
        "packed": lambda: PackedLoader(PackedGraphs(fake, split), batch_size=8, shuffle=True,
                                       seed=4),
    }
    weights, seen = {}, {}
    for name, make in loaders.items():
        L.seed_everything(0, verbose=False)
        model = Tiny()
        order = []
        model.on_train_batch_start = lambda b, i, order=order: order.append(b.sample_idx.clone())
        trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=str(tmp_path))
        trainer.fit(model, train_dataloaders=make())
        weights[name] = [p.detach().clone() for p in model.parameters()]
        seen[name] = torch.cat(order)
    assert torch.equal(seen["pyg"], seen["packed"])
    assert not torch.equal(seen["pyg"][:40], seen["pyg"][40:80])  # epochs reshuffle
    assert all(torch.equal(a, b) for a, b in zip(weights["pyg"], weights["packed"]))
