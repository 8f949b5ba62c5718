r"""Slow twins of the EHGNN layers (loops and dense float64 maths), for the tests.

* :func:`dense_dual_conv` -- :class:`~graphlab.nn.dual_conv.DualHypergraphConv` as
  :math:`\mathbf{D}_e^{-1}\tilde{\mathbf{M}}^\top\mathbf{B}^{-1}\tilde{\mathbf{M}}\mathbf{E}
  \mathbf{\Theta} + \mathbf{b}` with a dense incidence built edge by edge.
* :func:`topk_per_graph_loop` -- :func:`~graphlab.nn.hyperdrop.topk_per_graph`, one graph at a
  time with exact rational arithmetic for :math:`\lceil r\, m_g \rceil`.
* :func:`hypercluster_loop` -- :class:`~graphlab.nn.HyperCluster` graph by graph.
* :func:`edge_gcn_loop` -- :class:`~graphlab.nn.EdgeGCNConv` node by node.
"""
from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import Tensor


def dense_incidence(edge_index: Tensor, num_nodes: int, self_loops: bool) -> Tensor:
    """Dense :math:`\\tilde{\\mathbf{M}}` ``[n', m]`` (float64), built edge by edge."""
    m = edge_index.size(1)
    M = torch.zeros(num_nodes, m, dtype=torch.float64)
    for e in range(m):
        M[int(edge_index[0, e]), e] += 1
        M[int(edge_index[1, e]), e] += 1
    if not self_loops:
        return M
    sizes = M.sum(1)
    M[sizes == 1] = 0  # a degree-1 node's hyperedge would repeat the loop of its only edge
    return torch.cat([M, torch.eye(m, dtype=torch.float64)])


def dense_dual_conv(conv, edge_attr: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
    M = dense_incidence(edge_index, num_nodes, conv.self_loops)
    B = M.sum(1)
    De = M.sum(0)
    Binv = torch.where(B > 0, 1.0 / B.clamp_min(1e-300), torch.zeros_like(B))
    Deinv = torch.where(De > 0, 1.0 / De.clamp_min(1e-300), torch.zeros_like(De))
    theta = conv.lin.weight.detach().double().t()
    out = Deinv[:, None] * (M.t() @ (Binv[:, None] * (M @ (edge_attr.double() @ theta))))
    return out + (0 if conv.bias is None else conv.bias.detach().double())


def topk_per_graph_loop(score: Tensor, ratio: float, batch: Tensor, num_graphs: int) -> Tensor:
    keep = []
    r = Fraction(str(ratio))
    for g in range(num_graphs):
        idx = (batch == g).nonzero().view(-1).tolist()
        k = math.ceil(r * len(idx))
        ranked = sorted(idx, key=lambda i: (-float(score[i]), i))
        keep += ranked[:k]
    return torch.tensor(sorted(keep), dtype=torch.long)


def hypercluster_loop(pool, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int,
                      num_nodes: int | None = None):
    """``(clusters [G, k, H], assignments list of [heads, k, m_g])`` in float64."""
    from graphlab.nn.dual_conv import dual_hypergraph_index
    if pool.keys == "gcn":
        K, V = pool.conv_k(x, edge_index), pool.conv_v(x, edge_index)
    else:
        dual = dual_hypergraph_index(edge_index, num_nodes, pool.self_loops)
        K, V = pool.conv_k(x, dual=dual), pool.conv_v(x, dual=dual)
    K, V = K.double(), V.double()
    Q = pool.lin_q(pool.seeds[0]).double()  # [k, H]
    h, d = pool.heads, pool.channels // pool.heads
    outs, assigns = [], []
    for g in range(num_graphs):
        members = (batch == g).nonzero().view(-1)
        O = torch.empty_like(Q)
        A_all = []
        for head in range(h):
            sl = slice(head * d, (head + 1) * d)
            q, k_, v = Q[:, sl], K[members, sl], V[members, sl]
            logits = q @ k_.t() / math.sqrt(pool.channels)
            A = torch.softmax(logits, dim=0) if members.numel() else logits
            O[:, sl] = q + A @ v
            A_all.append(A)
        O = _double(pool.norm0)(O)
        O = _double(pool.norm1)(O + F.relu(_double(pool.lin_o)(O)))
        outs.append(O)
        assigns.append(torch.stack(A_all))
    return torch.stack(outs), assigns


def _double(module):
    """Apply ``module`` (Linear / LayerNorm / Identity) in float64 without touching it."""
    def run(t: Tensor) -> Tensor:
        if isinstance(module, torch.nn.Linear):
            return t @ module.weight.double().t() + module.bias.double()
        if isinstance(module, torch.nn.LayerNorm):
            return F.layer_norm(t, module.normalized_shape, module.weight.double(),
                                module.bias.double(), module.eps)
        return t
    return run


def edge_gcn_loop(conv, x: Tensor, edge_index: Tensor, edge_attr: Tensor,
                  edge_weight: Tensor | None = None) -> Tensor:
    W, b = conv.lin.weight.double(), conv.lin.bias.double()
    We, be = conv.lin_edge.weight.double(), conv.lin_edge.bias.double()
    xh = x.double() @ W.t() + b
    eh = edge_attr.double() @ We.t() + be
    n, m = x.size(0), edge_index.size(1)
    w = torch.ones(m, dtype=torch.float64) if edge_weight is None else edge_weight.double()
    deg = torch.ones(n, dtype=torch.float64)
    for e in range(m):
        deg[int(edge_index[1, e])] += w[e]
    out = torch.relu(xh + conv.root.double()) / deg[:, None]
    for e in range(m):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        out[i] = out[i] + w[e] / math.sqrt(deg[j] * deg[i]) * torch.relu(xh[j] + eh[e])
    return out
