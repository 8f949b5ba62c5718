"""Sequence cores: ``forward(x [B, L, D], mask [B, L] | None) -> [B, L, D]`` (causal, right-padded)."""

__all__ = []
