"""Names of the zero-shot optimisation code before it was split into stage modules, kept importable:
stage 1's fusion is :mod:`dpcli.zeroshot.fusion`, stage 2 (G_D) :mod:`dpcli.zeroshot.defocus`,
stage 3 (G_F) :mod:`dpcli.zeroshot.kernel_stage`, loop control :mod:`dpcli.zeroshot.loop`."""
from dpcli.zeroshot.defocus import defocus_weights, net_input, train_defocus_net, tv
from dpcli.zeroshot.fusion import residual_weights
from dpcli.zeroshot.kernel_stage import (KernelModel, KernelStage, Tiles, active_layers, edge_aware_smoothness,
                                         edge_weights, extract_tiles, learn_kernels, make_tiles, merge_weights,
                                         prefit_generators, stitch, tile_cores)
from dpcli.zeroshot.loop import Plateau, StageLog

__all__ = ["defocus_weights", "net_input", "train_defocus_net", "tv", "residual_weights", "KernelModel",
           "KernelStage", "Tiles", "active_layers", "edge_aware_smoothness", "edge_weights", "extract_tiles",
           "learn_kernels", "make_tiles", "merge_weights", "prefit_generators", "stitch", "tile_cores",
           "Plateau", "StageLog"]
