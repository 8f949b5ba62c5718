"""Layers, positional encodings and sequence cores (PyG-compatible).

Each helper adds its exports below with one line; keep one import per module.
"""
from graphlab.nn.encoders import FeatureEncoder, EdgeEncoder

__all__ = ["FeatureEncoder", "EdgeEncoder"]
