"""Sparse message-passing kernels (Triton on GPU, torch/PyG on CPU) behind one dispatch API."""

__all__ = []
