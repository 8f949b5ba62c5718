"""Graph transforms (PyG ``BaseTransform`` subclasses), e.g. positional encodings."""

__all__ = []
