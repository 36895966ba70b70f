"""Synthetic dual-pixel data: layered dead-leaves and full-frame photo scenes rendered with
`dpcli.optics`, through a DSLR or phone camera model.

The on-the-fly training loader built on :func:`render_scene` is ``dpcli.train.data.SynthDataset``.
Needs scikit-image for photo textures and segmentation (``pip install 'dpdeblur[synth]'``),
imported lazily. Natural photo folders: :mod:`dpcli.synth.photos`; docs/training.md.
"""
from dpcli.synth.camera import (
    PRESETS,
    CameraPreset,
    CameraSample,
    IspConfig,
    IspSample,
    decode,
    process,
    sample_camera,
    sample_isp,
    unprocess,
)
from dpcli.synth.fullframe import fullframe_layers, pseudo_depth, segment_photo
from dpcli.synth.photos import DEBIAN_PHOTOS, blurred_fraction, list_photos, sharp_photo_crop
from dpcli.synth.scene import (
    PreparedScene,
    SceneConfig,
    SceneLayers,
    SynthScene,
    TestScene,
    finish_scene,
    generate_layers,
    make_test_scene,
    prepare_scene,
    render_scene,
    scene_options,
    scene_rng,
)
from dpcli.synth.writer import SPLITS, scene_done, scene_name, scene_paths, scene_split, write_scene

__all__ = [
    "PRESETS", "CameraPreset", "CameraSample", "IspConfig", "IspSample", "decode", "process",
    "sample_camera", "sample_isp", "unprocess",
    "fullframe_layers", "pseudo_depth", "segment_photo",
    "DEBIAN_PHOTOS", "blurred_fraction", "list_photos", "sharp_photo_crop",
    "PreparedScene", "SceneConfig", "SceneLayers", "SynthScene", "TestScene", "finish_scene",
    "generate_layers", "make_test_scene", "prepare_scene", "render_scene", "scene_options", "scene_rng",
    "SPLITS", "scene_done", "scene_name", "scene_paths", "scene_split", "write_scene",
]
