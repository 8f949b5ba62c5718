"""Full models. Importing this package registers every model in :data:`graphlab.MODELS`."""
from graphlab.models.basic import GAT, GCN, GIN
from graphlab.models.gmn import GMN
from graphlab.models.gps import GPS
from graphlab.models.grit import GRIT
from graphlab.models.lightgcn import LightGCN
from graphlab.models.sincgcn import SINCGCN
from graphlab.models.spen import SPEN

__all__ = ["GCN", "GIN", "GAT", "GRIT", "GPS", "GMN", "LightGCN", "SINCGCN", "SPEN"]
from graphlab.models import ehgnn, pool_gnn  # noqa: E402,F401  (registers ehgnn, pool_gnn)
