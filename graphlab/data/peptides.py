"""Peptides-func / Peptides-struct (LRGB) built from the raw CSV of SMILES and the split pickle.

PyG's ``LRGBDataset`` downloads a different, pre-processed archive, so no standard loader reads
the LRGB raw files (``peptide_*_dataset.csv.gz`` + ``splits_random_stratified_*.pickle``). This
class follows PyG's raw/processed conventions and the LRGB/GraphGPS layout::

    <root>/raw/peptide_multi_class_dataset.csv.gz
    <root>/splits_random_stratified_peptide.pickle
    <root>/processed_<key>/data.pt

Molecules become graphs with :func:`ogb.utils.smiles2graph` (9 integer atom features, 3 integer
bond features, so the OGB ``AtomEncoder``/``BondEncoder`` apply). This needs RDKit, an optional
extra: ``pip install graphlab[chem]``.

Reference: Dwivedi et al., "Long Range Graph Benchmark", NeurIPS 2022 Datasets and Benchmarks,
https://arxiv.org/abs/2206.08164.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import os.path as osp
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

os.environ.setdefault("OUTDATED_IGNORE", "1")

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset, download_url

from graphlab.errors import DataError

_DROPBOX = "https://www.dropbox.com/s"
VARIANTS = {
    # raw csv, split pickle, their official LRGB download links
    "func": ("peptide_multi_class_dataset.csv.gz", "splits_random_stratified_peptide.pickle",
             f"{_DROPBOX}/ol2v01usvaxbsr8/peptide_multi_class_dataset.csv.gz?dl=1",
             f"{_DROPBOX}/j4zcnx2eipuo0xz/splits_random_stratified_peptide.pickle?dl=1"),
    "struct": ("peptide_structure_dataset.csv.gz",
               "splits_random_stratified_peptide_structure.pickle",
               f"{_DROPBOX}/464u3303eu2u4zp/peptide_structure_dataset.csv.gz?dl=1",
               f"{_DROPBOX}/9dfifzft1hqgow6/splits_random_stratified_peptide_structure.pickle?dl=1"),
}
STRUCT_TARGETS = ["Inertia_mass_a", "Inertia_mass_b", "Inertia_mass_c", "Inertia_valence_a",
                  "Inertia_valence_b", "Inertia_valence_c", "length_a", "length_b", "length_c",
                  "Spherocity", "Plane_best_fit"]


def require_rdkit(what: str) -> None:
    if importlib.util.find_spec("rdkit") is None:
        raise DataError(f"{what} builds molecular graphs from SMILES with RDKit, which is not "
                        f"installed: run `pip install graphlab[chem]` (or `pip install rdkit`).")


def _graphs(smiles: List[str]) -> List[dict]:
    from ogb.utils import smiles2graph
    return [smiles2graph(s) for s in smiles]


def _data(g: dict, y: np.ndarray) -> Data:
    return Data(x=torch.from_numpy(g["node_feat"]).long(),
                edge_index=torch.from_numpy(g["edge_index"]).long(),
                edge_attr=torch.from_numpy(g["edge_feat"]).long(),
                y=torch.from_numpy(y).view(1, -1), num_nodes=int(g["num_nodes"]))


def _to_plain(data: Data) -> Tuple[dict, dict]:
    """``data``'s attributes as ``(numpy arrays, everything else)``: arrays pickle by value
    between processes, where torch's tensor pickling would share one file descriptor each."""
    arrays, rest = {}, {}
    for k, v in data.to_dict().items():
        if isinstance(v, torch.Tensor) and v.dtype != torch.bfloat16:  # numpy has no bfloat16
            arrays[k] = v.numpy()
        else:
            rest[k] = v
    return arrays, rest


def _from_plain(plain: Tuple[dict, dict]) -> Data:
    arrays, rest = plain
    return Data(**{k: torch.from_numpy(v) for k, v in arrays.items()}, **rest)


def _built(smiles: List[str], y: np.ndarray, pre_filter, pre_transform) -> List[Optional[Tuple[dict, dict]]]:
    """Worker: SMILES -> graph -> ``pre_filter`` / ``pre_transform`` (e.g. the eigenpairs of
    a positional encoding), as plain dicts; None where ``pre_filter`` drops the graph."""
    out = []
    for g, yi in zip(_graphs(smiles), y):
        data = _data(g, yi)
        if pre_filter is not None and not pre_filter(data):
            out.append(None)
            continue
        if pre_transform is not None:
            data = pre_transform(data)
        out.append(_to_plain(data))
    return out


def _one_thread() -> None:
    """Worker initialiser: one BLAS / OpenMP thread per process (the pool already uses every
    core; per-worker thread pools on small eigenproblems oversubscribe the CPU: measured 3x
    slower on 2 cores)."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # numpy keeps its default pool
        pass


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception:  # noqa: BLE001 - lambdas, local functions, open handles ...
        return False


class PeptidesDataset(InMemoryDataset):
    r"""LRGB Peptides: 15,535 peptides as molecular graphs.

    Args:
        root: dataset folder (holds ``raw/`` and the split pickle).
        variant: ``'func'`` (10 binary labels, ``y`` float ``[1, 10]``, metric AP) or
            ``'struct'`` (11 regression targets standardised to zero mean / unit std over the
            whole set as in LRGB, ``y`` ``[1, 11]``, metric MAE).
        transform, pre_transform, pre_filter: as in PyG.
        num_workers: processes for the SMILES -> graph conversion and, when they can be pickled,
            ``pre_filter`` / ``pre_transform`` (0: in-process; default: all cores). Workers
            each keep their own copy of the transform (counters such as
            ``AddLaplacianEigen.num_split`` stay in the workers).
    """

    def __init__(self, root: str, variant: str = "func", transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, pre_filter: Optional[Callable] = None,
                 num_workers: Optional[int] = None, force_reload: bool = False) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        self.variant = variant
        self.num_workers = (os.cpu_count() or 1) if num_workers is None else num_workers
        super().__init__(root, transform, pre_transform, pre_filter, force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> List[str]:
        return [VARIANTS[self.variant][0]]

    @property
    def split_path(self) -> str:
        return osp.join(self.root, VARIANTS[self.variant][1])

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    def _download(self) -> None:
        super()._download()
        if not osp.isfile(self.split_path):
            download_url(VARIANTS[self.variant][3], self.root, filename=VARIANTS[self.variant][1])

    def download(self) -> None:
        download_url(VARIANTS[self.variant][2], self.raw_dir, filename=self.raw_file_names[0])

    def process(self) -> None:
        import pandas as pd
        require_rdkit(f"Peptides-{self.variant}")
        df = pd.read_csv(self.raw_paths[0])
        if self.variant == "func":
            y = np.array([ast.literal_eval(s) for s in df["labels"]], dtype=np.float32)
        else:
            t = df[STRUCT_TARGETS].astype(np.float64)
            y = ((t - t.mean()) / t.std()).to_numpy(np.float32)
        smiles = df["smiles"].tolist()
        if self.num_workers > 1:
            # the workers also run pre_filter / pre_transform (a positional encoding's
            # eigenpairs take longer than the SMILES) when those can be sent to them
            remote = _picklable((self.pre_filter, self.pre_transform))
            n = self.num_workers * 4
            with ProcessPoolExecutor(self.num_workers, initializer=_one_thread) as ex:
                if remote:
                    parts = list(ex.map(_built, [smiles[i::n] for i in range(n)],
                                        [y[i::n] for i in range(n)],
                                        [self.pre_filter] * n, [self.pre_transform] * n))
                else:
                    parts = list(ex.map(_graphs, [smiles[i::n] for i in range(n)]))
            built = [None] * len(smiles)
            for i, part in enumerate(parts):
                built[i::n] = part
            if remote:
                self.save([_from_plain(d) for d in built if d is not None],
                          self.processed_paths[0])
                return
            graphs = built
        else:
            graphs = _graphs(smiles)
        data_list = []
        for i, g in enumerate(graphs):
            data = _data(g, y[i])
            if self.pre_filter is not None and not self.pre_filter(data):
                continue
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        self.save(data_list, self.processed_paths[0])

    def get_idx_split(self) -> Dict[str, torch.Tensor]:
        """The official random stratified split: ``{'train', 'valid', 'test'}`` index tensors."""
        if not osp.isfile(self.split_path):
            raise DataError(f"split file {self.split_path} is missing: load the dataset again with "
                            f"network access or $GRAPHLAB_MIRROR set")
        try:
            with open(self.split_path, "rb") as f:
                split = pickle.load(f)
            return {"train": torch.as_tensor(np.asarray(split["train"]), dtype=torch.long),
                    "valid": torch.as_tensor(np.asarray(split["val"]), dtype=torch.long),
                    "test": torch.as_tensor(np.asarray(split["test"]), dtype=torch.long)}
        except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
            raise DataError(f"split file {self.split_path} is unreadable ({type(e).__name__}: {e}); "
                            f"delete it and load the dataset again") from e

    def __repr__(self) -> str:
        return f"Peptides-{self.variant}({len(self)})"
