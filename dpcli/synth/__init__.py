"""Synthetic dual-pixel data: layered dead-leaves scenes rendered with `dpcli.optics`.

The on-the-fly training loader built on :func:`render_scene` is ``dpcli.train.data.SynthDataset``.
Needs scikit-image for photo textures (``pip install 'dpdeblur[synth]'``), imported lazily.
"""
from dpcli.synth.camera import PRESETS, CameraPreset, CameraSample, sample_camera
from dpcli.synth.scene import (
    SceneConfig,
    SceneLayers,
    SynthScene,
    TestScene,
    generate_layers,
    make_test_scene,
    render_scene,
    scene_rng,
)
from dpcli.synth.writer import SPLITS, scene_done, scene_name, scene_paths, scene_split, write_scene

__all__ = [
    "PRESETS", "CameraPreset", "CameraSample", "sample_camera",
    "SceneConfig", "SceneLayers", "SynthScene", "TestScene", "generate_layers",
    "make_test_scene", "render_scene", "scene_rng",
    "SPLITS", "scene_done", "scene_name", "scene_paths", "scene_split", "write_scene",
]
