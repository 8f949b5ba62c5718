"""Full models. Importing this package registers every model in :data:`graphlab.MODELS`."""
from graphlab.models.basic import GCN, GIN, GAT

__all__ = ["GCN", "GIN", "GAT"]
