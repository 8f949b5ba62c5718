"""Delta-rule operators: naive recurrences, the chunked WY form, and the fla dispatch."""
from graphlab.nn.seq.delta.naive import delta_rule_naive, delta_product_naive
from graphlab.nn.seq.delta.chunk import chunk_delta_rule, chunk_delta_product, delta_rule, delta_product

__all__ = ["delta_rule_naive", "delta_product_naive", "chunk_delta_rule", "chunk_delta_product",
           "delta_rule", "delta_product"]
