"""dpdeblur: defocus deblurring with dual-pixel data (BaMBNet, zero-shot MPI) or single images (DefocusGAN).

The command line (`dpdeblur`) is a thin layer over this package; researchers import it directly.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "deblur", "deblur_pair", "deblur_image", "estimate_coc"]


def __getattr__(name: str):  # lazy: `import dpcli` must not import torch models
    if name in ("deblur", "deblur_pair", "deblur_image", "estimate_coc"):
        from dpcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'dpcli' has no attribute {name!r}")
