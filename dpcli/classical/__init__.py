"""Training-free dual-pixel methods: defocus map from the left/right kernel symmetry (002 Eq. 5-6)
and joint left/right regularised deconvolution.

Public API (used by ``dpdeblur defocus-map --method classical`` and ``dpdeblur run --method classical``):

- ``estimate_defocus_classical(left, right, *, srgb=False, **options) -> (radius, confidence)``:
  signed blur radius in px (docs/CONVENTIONS.md) and a [0, 1] confidence, both (H, W) float32, numpy in
  -> numpy out. Options: :class:`DefocusConfig` fields (``min_radius``, ``max_radius``, ``step``,
  ``kernel="rdpd"|"disk"``, ``window``, ``noise``, ``guide_radius``, ...).
- ``deblur_pair_classical(left, right, kernels=None, *, srgb=False, **options) -> aif``: (C, H, W)
  all-in-focus image; ``kernels`` = measured (left, right) (P, k, k) re-centred kernels (e.g. from
  ``load_kernels_dir``), else parametric RDPD kernels; options: :class:`DeconvConfig` fields
  (``lam``, ``patch``, ``scales``, ``radii``, ``extend``, ``mode``="levels"|"patches",
  ``level_lam``, the ringing guard ``level_guard``/``guard_strong``/``level_floor``: 0 turns it
  off), ``roi``, ``grid``.
- ``deblur_single_classical(linear, config=None) -> (image, estimate)``: ONE photo deconvolved by the
  uniform disc blur its spectrum shows (:mod:`dpcli.classical.blind`), or returned as it is.
- ``load_kernels_dir(path, swap_lr=False) -> (left, right)``: Pixel 4 calibration format
  (``blur_kernels_{left,right}.npy``), re-centred.

Views must be in OUR orientation (Pixel 4 files: ``swap_lr=True``). With ``srgb=True`` the views
are linearised first and the result re-encoded (blur is linear-light physics).
"""
from dpcli.classical.blind import BlindConfig, deblur_single_classical, estimate_disc_radius
from dpcli.classical.deconv import (DeconvConfig, deblur_pair_classical, joint_wiener, load_kernels_dir,
                                    lr_consistency, wiener_levels)
from dpcli.classical.defocus import DefocusConfig, cost_volume, estimate_defocus_classical

__all__ = ["estimate_defocus_classical", "deblur_pair_classical", "deblur_single_classical", "estimate_disc_radius",
           "BlindConfig", "DefocusConfig", "DeconvConfig",
           "joint_wiener", "wiener_levels", "lr_consistency", "cost_volume", "load_kernels_dir"]
