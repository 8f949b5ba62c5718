"""Sparse message-passing kernels (Triton on GPU, torch/PyG on CPU) behind one dispatch API."""

from graphlab.kernels.csr import CSR, to_csr, clear_csr_cache
from graphlab.kernels.dispatch import set_backend, forced_backend, choices
from graphlab.kernels.functional import spmm, sddmm, segment_softmax, sparse_attention
from graphlab.kernels.functional import gat_attention

__all__ = ["CSR", "to_csr", "clear_csr_cache", "set_backend", "forced_backend", "choices",
           "spmm", "sddmm", "segment_softmax", "sparse_attention",
           "gat_attention"]
