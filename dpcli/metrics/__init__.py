"""Metrics users can trust: PSNR / SSIM / MAE (docs/CONVENTIONS.md, published-table compatible),
LPIPS with a named backbone, defocus-map metrics, and the shared evaluation protocols.

- ``psnr``, ``ssim``, ``mae``, ``image_metrics``; ``aligned_psnr`` (a registration diagnostic);
  ``spares_sharp``, what "no harm" on sharp photos means
  (:mod:`dpcli.metrics.image`)
- ``defocus_metrics``, ``spearman``, ``aiwe1``, ``aiwe2``, ``mean_abs_radius_error``
  (:mod:`dpcli.metrics.defocus`)
- protocols: ``load_pixel4_scene``, ``score_pixel4``, ``load_canon_scene``, ``score_canon``
  (:mod:`dpcli.metrics.protocols`)
- artefacts (ringing, overshoot, blotches): ``artefact_share`` (against a ground truth),
  ``input_artefact_share`` (reference-free, against the input), ``artefact_map``
  (:mod:`dpcli.metrics.artefacts`)
- LPIPS / VGG features: :mod:`dpcli.metrics.lpips` (weights from ``dpdeblur convert-lpips``)
"""
from dpcli.metrics.artefacts import artefact_map, artefact_share, input_artefact_share
from dpcli.metrics.defocus import aiwe1, aiwe2, defocus_metrics, mean_abs_radius_error, spearman
from dpcli.metrics.image import (SHARP_PSNR_EACH_DB, SHARP_PSNR_MEAN_DB, aligned_psnr, fourier_shift, image_metrics,
                                 mae, mse, psnr, spares_sharp, ssim, ssim_map)

__all__ = ["psnr", "ssim", "ssim_map", "mae", "mse", "image_metrics", "aligned_psnr", "fourier_shift",
           "artefact_share", "input_artefact_share", "artefact_map", "defocus_metrics", "spearman", "aiwe1",
           "aiwe2", "mean_abs_radius_error", "spares_sharp", "SHARP_PSNR_MEAN_DB", "SHARP_PSNR_EACH_DB"]
