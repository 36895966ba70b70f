"""Test helper: write Bayer DNG files (one or several raw frames) with pidng, which rawpy reads back exactly."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

# XYZ -> linear sRGB (D65): as the DNG ColorMatrix1 it makes the "camera" space linear sRGB.
XYZ_TO_SRGB = [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]


def _tags(height: int, width: int, black: int, white: int, neutral: Sequence[float]):
    from pidng.core import DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, Orientation, PhotometricInterpretation

    tags = DNGTags()
    tags.set(Tag.ImageWidth, width)
    tags.set(Tag.ImageLength, height)
    tags.set(Tag.TileWidth, width)
    tags.set(Tag.TileLength, height)
    tags.set(Tag.Orientation, Orientation.Horizontal)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.BitsPerSample, 16)
    tags.set(Tag.CFARepeatPatternDim, [2, 2])
    tags.set(Tag.CFAPattern, CFAPattern.RGGB)
    tags.set(Tag.BlackLevel, black)
    tags.set(Tag.WhiteLevel, white)
    tags.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for row in XYZ_TO_SRGB for v in row])
    tags.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    tags.set(Tag.AsShotNeutral, [[round(v * 10000), 10000] for v in neutral])
    tags.set(Tag.Make, "dpdeblur")
    tags.set(Tag.Model, "synthetic dual pixel")
    tags.set(Tag.DNGVersion, DNGVersion.V1_4)
    tags.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    return tags


def write_dng(path: Path, frames: Sequence[np.ndarray], black: int = 512, white: int = 16383,
              neutral: Sequence[float] = (1.0, 1.0, 1.0)) -> Path:
    """Write uint16 Bayer (RGGB) frames of equal size as raw IFDs of one DNG (frame i = shot i)."""
    from pidng.defs import Compression
    from pidng.dng import DNG, Tag, dngIFD, dngTag

    dng = DNG()
    offsets = []
    for frame in frames:
        dng.ImageDataStrips.append(np.ascontiguousarray(frame, dtype="<u2").tobytes())
    for i, frame in enumerate(frames):
        ifd = dngIFD()
        offset = dngTag(Tag.TileOffsets, [0])
        offsets.append(offset)
        ifd.tags += [offset, dngTag(Tag.NewSubfileType, [0]),
                     dngTag(Tag.TileByteCounts, [len(dng.ImageDataStrips[i])]),
                     dngTag(Tag.Compression, [Compression.Uncompressed])]
        ifd.tags += _tags(frame.shape[0], frame.shape[1], black, white, neutral).list()
        dng.IFDs.append(ifd)
    buffer = bytearray(dng.dataLen())
    for i, offset in enumerate(offsets):
        offset.setValue([dng.StripOffsets[i]])
    dng.setBuffer(buffer)
    for first, second in zip(dng.IFDs, dng.IFDs[1:]):  # chain the IFDs (pidng writes one)
        first.NextIFDOffset = second.offset
    dng.write()
    Path(path).write_bytes(bytes(buffer))
    return Path(path)


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) Bayer RGGB samples."""
    out = rgb[:, :, 1].copy()
    out[0::2, 0::2] = rgb[0::2, 0::2, 0]
    out[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return out
