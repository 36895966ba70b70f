"""Photos nobody tuned on: how much `dpdeblur run` changes scikit-image's bundled colour photos.

No ground truth exists for these photos and none is sharp everywhere (chelsea's background is out of
focus, astronaut's shuttle model stands behind the sitter), so this is not the harm figure of
bench_trust.py: it shows how much each method changes a photo and where. Each photo runs at full
size and downscaled 2x (box filter: every soft detail becomes sharper, so a change that stays is
one the method makes on detail that is sharp at pixel scale). Columns: PSNR of the output against
the photo (dB), and the share of pixels changed by more than 2/255. Every photo goes through the
per-item path of `run` (:func:`dpcli.pipeline.process`). ``--crops DIR`` writes photo | output
crops where the change is densest (open them).

    python benchmarks/bench_unseen.py [--methods auto,defocusgan_generator_small.dslr-synth]
        [--crops out/unseen]

Needs scikit-image (the test extra).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

# the colour photos in the scikit-image wheel (skimage.data); motorcycle: the left view of its stereo pair
PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "motorcycle", "rocket")
CHANGED = 2 / 255  # a pixel counts as changed beyond this (max over channels)


def load_photo(name: str) -> np.ndarray:
    """(3, H, W) float32 sRGB in [0, 1], as the file holds it."""
    import skimage.data as data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return np.ascontiguousarray(np.asarray(img)[..., :3].transpose(2, 0, 1), np.float32) / 255.0


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscale by an integer factor (the photo cut to a multiple of it)."""
    if factor == 1:
        return img
    t = torch.from_numpy(img)[None]
    return torch.nn.functional.avg_pool2d(t, factor)[0].numpy()


def quantise(img: np.ndarray) -> np.ndarray:
    """As an 8-bit file would hold it: the input of `run` on a saved photo."""
    return np.round(img * 255.0).astype(np.float32) / 255.0


def main() -> None:
    from bench_trust import _psnr, deblur_as_run, write_crop

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="auto", help="comma-separated method names (`dpdeblur models`)")
    ap.add_argument("--scales", default="1,2", help="downscale factors")
    ap.add_argument("--crops", type=Path, default=None, help="folder for photo | output crops (PNG)")
    args = ap.parse_args()
    cache: dict = {}
    scales = [int(s) for s in args.scales.split(",")]
    for name in args.methods.split(","):
        print(f"\n{name}: PSNR against the photo (dB) / share of pixels changed by > 2/255")
        print(f"{'photo':18s} " + " ".join(f"{'1/' + str(s) + ' size':>16s}" for s in scales))
        by_scale: dict[int, list[float]] = {s: [] for s in scales}
        ran = name
        for photo in PHOTOS:
            cells = []
            for s in scales:
                img = quantise(downscale(load_photo(photo), s))
                out, ran = deblur_as_run(name, img, None, srgb=True, domain="dslr", cache=cache)
                out = quantise(np.clip(out, 0, 1))
                psnr = _psnr(out, img)
                diff = np.abs(out - img).max(0)
                by_scale[s].append(psnr)
                cells.append(f"{psnr:7.2f} / {float((diff > CHANGED).mean()):6.3f}")
                if args.crops is not None:
                    args.crops.mkdir(parents=True, exist_ok=True)
                    write_crop(args.crops / f"{ran}_{photo}_1-{s}.png", [img, out], True,
                               torch.from_numpy(diff))
            print(f"{photo:18s} " + " ".join(f"{c:>16s}" for c in cells), flush=True)
        print(f"{'mean / min':18s} " + " ".join(f"{np.mean(v):7.2f} / {min(v):6.2f}" for v in by_scale.values())
              + f"   (ran: {ran})")


if __name__ == "__main__":
    main()
