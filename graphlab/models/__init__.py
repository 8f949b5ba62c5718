"""Full models. Importing this package registers every model in :data:`graphlab.MODELS`."""
from graphlab.models.basic import GCN, GIN, GAT

__all__ = ["GCN", "GIN", "GAT"]
from graphlab.models.grit import GRIT  # noqa: E402
__all__ += ["GRIT"]
from graphlab.models.gps import GPS  # noqa: E402
__all__ += ["GPS"]
from graphlab.models.gmn import GMN  # noqa: E402
__all__ += ["GMN"]
from graphlab.models.sincgcn import SINCGCN  # noqa: E402
__all__ += ["SINCGCN"]
from graphlab.models.spen import SPEN  # noqa: E402
__all__ += ["SPEN"]
