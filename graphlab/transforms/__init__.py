"""Graph transforms (PyG ``BaseTransform`` subclasses), e.g. positional encodings."""

__all__ = []
from graphlab.transforms.rrwp import AddRRWP, AddRWSE  # noqa: E402
__all__ += ["AddRRWP", "AddRWSE"]
from graphlab.transforms.laplacian import AddLaplacianEigen  # noqa: E402
__all__ += ["AddLaplacianEigen"]
from graphlab.transforms.pe import pe_transform  # noqa: E402
__all__ += ["pe_transform"]
from graphlab.transforms.dual_hypergraph import DualHypergraph, DualHypergraphData  # noqa: E402
__all__ += ["DualHypergraph", "DualHypergraphData"]
