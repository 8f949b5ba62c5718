"""Full models. Importing this package registers every model in :data:`graphlab.MODELS`."""
from graphlab.models.basic import GAT, GCN, GIN
from graphlab.models.ehgnn import EHGNN, EdgeAutoencoder
from graphlab.models.gmn import GMN
from graphlab.models.gps import GPS
from graphlab.models.grit import GRIT
from graphlab.models.lightgcn import LightGCN
from graphlab.models.pool_gnn import PoolGNN
from graphlab.models.sincgcn import SINCGCN
from graphlab.models.spen import SPEN
from graphlab.models.ultragcn import UltraGCN

__all__ = ["GCN", "GIN", "GAT", "GRIT", "GPS", "GMN", "LightGCN", "SINCGCN", "SPEN", "EHGNN",
           "EdgeAutoencoder", "PoolGNN", "UltraGCN"]
