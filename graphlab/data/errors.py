"""The data layer's exception; defined with the others in :mod:`graphlab.errors`."""
from graphlab.errors import DataError

__all__ = ["DataError"]
