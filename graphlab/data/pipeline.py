"""From a config's ``data`` section to a dataset and its split: transforms, positional-encoding
pre-transforms, NaN checks, the split, target scales.

>>> dataset, info, split = build_data({"name": "MUTAG", "fold": 3}, seed=0)
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

from graphlab.data.catalog import DatasetInfo, info as dataset_info, load
from graphlab.data.splits import get_split
from graphlab.errors import ConfigError, DataError

__all__ = ["build_transforms", "build_pe_transform", "build_data", "check_features",
           "target_std"]


def build_transforms(specs: Optional[List[Any]]):
    """``[NormalizeFeatures, {name: AddRandomWalkPE, walk_length: 8}]`` -> a PyG ``Compose``.

    Names resolve in :mod:`graphlab.transforms` first, then :mod:`torch_geometric.transforms`."""
    if not specs:
        return None
    import torch_geometric.transforms as T

    import graphlab.transforms as GT
    out = []
    for spec in specs:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        name = spec.pop("name", None)
        cls = getattr(GT, str(name), None) or getattr(T, str(name), None)
        if cls is None or not isinstance(cls, type):
            raise ConfigError(f"'data.transforms': unknown transform {name!r}; use a class name "
                              "from graphlab.transforms or torch_geometric.transforms")
        try:
            out.append(cls(**spec))
        except TypeError as e:
            raise ConfigError(f"'data.transforms': {name}: {e}") from None
    return T.Compose(out)


def build_pe_transform(pe: Optional[Dict[str, Any]]):
    """``(pre-transform or None, on_the_fly)`` of a ``data.pe`` section (``{name, ...}``)."""
    if not pe:
        return None, False
    from graphlab.transforms.pe import pe_transform
    pe = dict(pe)
    if "name" not in pe:
        raise ConfigError("'data.pe' needs a 'name' (the positional encoding transform)")
    on_the_fly = bool(pe.pop("on_the_fly", False))
    try:
        return pe_transform(pe.pop("name"), **pe), on_the_fly
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"'data.pe': {e.args[0] if e.args else e}") from None


def check_features(dataset, name: str) -> None:
    """A :class:`DataError` when stored node features hold NaN or inf."""
    stored = getattr(dataset, "_data", None)
    x = getattr(stored, "x", None) if stored is not None and not hasattr(stored, "node_types") \
        else None
    if isinstance(x, torch.Tensor) and x.is_floating_point() and not torch.isfinite(x).all():
        bad = ~torch.isfinite(x)
        count = int(bad.any(-1).sum()) if x.dim() > 1 else int(bad.sum())
        raise DataError(f"{name}: {count} node(s) have NaN/inf features; clean the raw data or "
                        "impute them with a transform before training")


def build_data(dcfg: Dict[str, Any], seed: int) -> Tuple[Any, DatasetInfo, Any]:
    """The dataset of a ``data`` section (positional encodings computed once and stored with
    the processed dataset, or, with ``pe.on_the_fly: true``, when a graph is loaded: bounded
    memory for RRWP pairs), its :class:`DatasetInfo` and the split of ``seed`` (or
    ``data.split_seed``) and ``data.fold``."""
    import torch_geometric.transforms as T
    info = dataset_info(dcfg["name"])
    transform = build_transforms(dcfg.get("transforms", []))
    pe_t, on_the_fly = build_pe_transform(dcfg.get("pe"))
    pre_transform = None
    if on_the_fly and pe_t is not None:
        transform = T.Compose([pe_t, transform]) if transform is not None else pe_t
    else:
        pre_transform = pe_t
    dataset = load(dcfg["name"], root=dcfg.get("root"), pre_transform=pre_transform,
                   transform=transform, **dcfg.get("opts", {}))
    check_features(dataset, dcfg["name"])
    split_seed = dcfg.get("split_seed")
    split = get_split(dcfg["name"], dataset, seed=seed if split_seed is None else split_seed,
                      fold=dcfg.get("fold", 0))
    return dataset, info, split


def target_std(dataset, train_index) -> torch.Tensor:
    """Per-target standard deviation (unbiased) of ``y`` over the training graphs' nodes
    (``mae_normalized``'s scale). Read from the stored tensors, without the loader transform;
    a constant target gets scale 1 (its normalised MAE is then its plain MAE)."""
    idx = torch.as_tensor(train_index).view(-1)
    if idx.dtype == torch.bool:
        idx = idx.nonzero().view(-1)
    ys = [dataset.get(int(i)).y for i in idx] if len(dataset) > 1 else \
        [dataset.get(0).y[idx.long()]]
    y = torch.cat([t.view(t.size(0), -1) for t in ys]).double()
    if y.size(0) < 2:
        raise ValueError("mae_normalized needs at least 2 training targets to estimate a std")
    std = y.std(0)
    return torch.where(std > 0, std, torch.ones_like(std))
