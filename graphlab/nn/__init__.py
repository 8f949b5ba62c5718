"""Layers, positional encodings and sequence cores (PyG-compatible).

Each module adds its exports below with one line; keep one import per module.
"""
from graphlab.nn.encoders import FeatureEncoder, EdgeEncoder

__all__ = ["FeatureEncoder", "EdgeEncoder"]
from graphlab.nn.grit_layer import GRITLayer  # noqa: E402
__all__ += ["GRITLayer"]
from graphlab.nn.spmm_conv import SpMMConv  # noqa: E402
from graphlab.nn.fused_gat import FusedGATConv  # noqa: E402
__all__ += ["SpMMConv", "FusedGATConv"]
from graphlab.nn.tensor_gin import TensorGIN, TensorGINConv  # noqa: E402
__all__ += ["TensorGIN", "TensorGINConv"]
from graphlab.nn.spe import SPE  # noqa: E402
__all__ += ["SPE"]
from graphlab.nn.signnet import SignNet  # noqa: E402
__all__ += ["SignNet"]
from graphlab.nn.lap_pe import LapPE  # noqa: E402
__all__ += ["LapPE"]
from graphlab.nn.pe import (RRWPNodeEncoder, RWSEEncoder, add_pe, build_pe_encoder,  # noqa: E402
                            pe_channels)
__all__ += ["RRWPNodeEncoder", "RWSEEncoder", "add_pe", "build_pe_encoder", "pe_channels"]
from graphlab.nn.gated_gcn import GatedGCNConv  # noqa: E402
__all__ += ["GatedGCNConv"]
from graphlab.nn.mixers import (MultiheadMixer, PerformerMixer, SequenceMixer,  # noqa: E402
                                build_mixer)
__all__ += ["MultiheadMixer", "PerformerMixer", "SequenceMixer", "build_mixer"]
from graphlab.nn.sinc_conv import SINCConv  # noqa: E402
__all__ += ["SINCConv"]
from graphlab.nn.equivariant import EquivariantLinear, SetLayout  # noqa: E402
__all__ += ["EquivariantLinear", "SetLayout"]
from graphlab.nn.dual_conv import DualHypergraphConv, dual_hypergraph_index  # noqa: E402
from graphlab.nn.edge_gcn_conv import EdgeGCNConv  # noqa: E402
from graphlab.nn.hypercluster import HyperCluster  # noqa: E402
from graphlab.nn.hyperdrop import HyperDrop  # noqa: E402
__all__ += ["DualHypergraphConv", "dual_hypergraph_index", "EdgeGCNConv", "HyperCluster",
            "HyperDrop"]
