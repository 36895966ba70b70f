"""Layered dead-leaves scenes rendered to dual-pixel data.

A scene is drawn from one seed: a far background (photo, procedural texture, or the bundled
motorcycle stereo photo with its real disparity), an optional slanted ground plane, and
dead-leaves objects with power-law sizes at random depths, sorted back to front. Depth enters
as inverse depth q = 1/d: by the thin lens the signed radius is linear in q,
``r = r_max * (q_s - q) / max|q_s - q|`` with q_s the focus. Layers are rendered in linear light
with :func:`dpcli.optics.render_layers`, then the camera adds vignetting, noise and the output
curve.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dpcli.errors import InputError
from dpcli.optics.kernels import MeasuredKernelFn, load_measured_kernels
from dpcli.optics.render import render_layers
from dpcli.synth.camera import (CameraSample, IspConfig, IspSample, add_noise, apply_vignetting, compress,
                                encode, process, quantise, sample_camera, sample_isp, unprocess)
from dpcli.synth.photos import list_photos
from dpcli.synth.fullframe import fullframe_layers
from dpcli.synth.textures import folder_texture, photo_texture, random_texture, soften, stereo_motorcycle

__all__ = ["SceneConfig", "SceneLayers", "SynthScene", "TestScene", "generate_layers",
           "render_scene", "make_test_scene", "scene_rng", "scene_options",
           "PreparedScene", "prepare_scene", "finish_scene"]

SYNTH_VERSION = 1


@dataclass
class SceneConfig:
    """What to draw. Sizes in px; probabilities per scene."""

    height: int = 512
    width: int = 512
    camera: str = "dslr"  # dslr | phone | mixed
    scale_radii: bool = True  # radii scale with width / native width (False: native-res crops)
    max_radius: float | None = None  # override the camera's draw (px at this size)
    focus_mode: str | None = None  # front | middle | back (None: camera's draw)
    noise: bool = True
    vignetting: bool | None = None  # None: random (30 %)
    edge_asymmetry: bool = False  # radial kernel asymmetry near the frame edges (9x slower)
    output: str | None = None  # srgb8 | srgb16 | linear16 (None: camera's default)
    grey: bool = False  # one channel (the green plane, like Pixel 4 DP data)
    objects: tuple[int, int] = (6, 24)
    photo_prob: float = 0.6
    stereo_prob: float = 0.12  # motorcycle background with real disparity
    ground_prob: float = 0.3
    slanted_object_prob: float = 0.2
    subject_prob: float = 0.5  # one large object that the camera focuses on (front / middle)
    allow_research: bool = True  # textures with research-only licences (motorcycle)
    bin_step: float | None = None  # radius bin spacing for slanted layers (None: adaptive)
    kernels: str | None = None  # folder with measured blur_kernels_{left,right}.npy (else RDPD)
    # natural photos (dpcli.synth.photos): folders / files / "debian"; read where they lie
    photos: tuple[str, ...] = ()
    folder_photo_prob: float = 0.85  # share of photo textures drawn from ``photos`` (else bundled)
    max_blurred: float = 0.2  # a photo crop is used when <= this share of its tiles look blurred
    fullframe_prob: float = 0.0  # whole-photo scenes with segmentation pseudo-depth (synth.fullframe)
    fullframe_layers: tuple[int, int] = (3, 8)  # depth layers of a full-frame scene
    fullframe_objects: tuple[int, int] = (0, 3)  # dead-leaves objects in front of a full-frame photo
    radius_scale: tuple[float, float] = (1.0, 1.0)  # log-uniform factor on the camera's radius draw
    # share of scenes in focus everywhere (|r| <= 0.5 px, inside the depth of field): the pairs that
    # teach a network identity, so that a sharp photo comes back unchanged (issue "never worse")
    sharp_prob: float = 0.0
    # share of textures soft in themselves (textures.soften: detail no finer than soft_scale px, as in
    # an upscaled photo); the all-in-focus target is soft too, so a network learns to leave such a
    # texture alone where it is in focus (a soft texture is not a blurred one: issue "never worse")
    soft_prob: float = 0.0
    soft_scale: tuple[float, float] = (1.5, 3.0)
    # (the dslr preset's radii are DPDD's at 1680 px; the Canon dev scenes are 840 px, half of them;
    # (0.15, 0.8) with depth_gamma (1, 2) covers both, measured in docs/training.md)
    # per-scene exponent on |radius| / max (log-uniform): > 1 puts more of the frame near focus,
    # as in DPDD (measured: docs/training.md); it bends the inverse-depth scale, not the optics
    depth_gamma: tuple[float, float] = (1.0, 1.0)
    highlight_prob: float = 0.0  # scene with light sources / speculars above the sensor's white level
    lights: tuple[int, int] = (2, 12)  # small bright sources (bokeh balls) in a highlight scene
    isp: bool = False  # sRGB outputs through a DSLR raw pipeline (camera.IspConfig): noise in raw,
    # white balance, colour matrix, tone curve; False: noise in linear sRGB, plain sRGB curve
    isp_options: dict = field(default_factory=dict)  # camera.IspConfig fields, e.g. jpeg_prob

    def __post_init__(self) -> None:
        if isinstance(self.photos, (str, Path)):
            self.photos = (str(self.photos),)
        self.photos = tuple(str(p) for p in self.photos)
        self.isp_config()  # unknown pipeline options fail here

    def isp_config(self) -> IspConfig:
        return IspConfig(**self.isp_options)


@dataclass
class SceneLayers:
    """A drawn scene before rendering: linear colours, alphas, signed radius maps (back to front)."""

    colors: torch.Tensor  # (L, 3, H, W)
    alphas: torch.Tensor  # (L, 1, H, W)
    radius: torch.Tensor  # (L, 1, H, W) signed px
    camera: CameraSample
    meta: dict = field(default_factory=dict)


class TestScene(NamedTuple):
    """Small deterministic scene for tests: (C, H, W) images in [0, 1], defocus (1, H, W) px."""

    left: torch.Tensor
    right: torch.Tensor
    combined: torch.Tensor
    sharp: torch.Tensor
    defocus: torch.Tensor


@dataclass
class SynthScene:
    """A rendered scene: stored values (after output curve + quantisation) and linear ones."""

    left: torch.Tensor  # (3, H, W) encoded as ``output``
    right: torch.Tensor
    combined: torch.Tensor
    sharp: torch.Tensor  # all-in-focus target
    defocus: torch.Tensor  # (1, H, W) signed radius px
    bit_depth: int
    output: str
    linear: dict[str, torch.Tensor]
    meta: dict
    # the optics alone, before the camera (no vignetting, noise, pipeline or compression), linear:
    # {"combined": mean of the blurred views, "sharp": all-in-focus}; what blur changed and nothing else
    optics: dict[str, torch.Tensor] = field(default_factory=dict)


def scene_rng(seed: int, index: int = 0) -> np.random.Generator:
    """Independent, reproducible generator for scene ``index`` of run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]))


def _power_law(rng: np.random.Generator, lo: float, hi: float, alpha: float = 3.0) -> float:
    """Sample s in [lo, hi] with density ~ s^-alpha (dead-leaves size law)."""
    a = 1 - alpha
    u = rng.random()
    return float((lo**a + u * (hi**a - lo**a)) ** (1 / a))


def _shape_alpha(rng: np.random.Generator, size: float, box: int) -> tuple[np.ndarray, str]:
    """Anti-aliased alpha (box, box) of a random shape of radius ~size centred in the box."""
    c = (box - 1) / 2
    yy, xx = np.mgrid[0:box, 0:box].astype(np.float32) - c
    kind = ("disk", "ellipse", "rectangle", "polygon")[rng.integers(4)]
    theta = rng.uniform(0, np.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    if kind == "disk":
        sd = np.sqrt(xx**2 + yy**2) - size
    elif kind == "ellipse":
        a, b = size, size * rng.uniform(0.3, 1.0)
        sd = (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1) * b
    elif kind == "rectangle":
        a, b = size, size * rng.uniform(0.2, 1.0)
        sd = np.maximum(np.abs(u) - a, np.abs(v) - b)
    else:  # convex polygon: intersection of half-planes
        n = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        sd = np.full_like(xx, -np.inf)
        for ang in angles:
            sd = np.maximum(sd, xx * math.cos(ang) + yy * math.sin(ang) - size * rng.uniform(0.6, 1.0))
    return np.clip(0.5 - sd, 0, 1).astype(np.float32), kind


def _paste(canvas: np.ndarray, patch: np.ndarray, y0: int, x0: int) -> None:
    """Add ``patch`` (C, h, w) into ``canvas`` (C, H, W) at (y0, x0), clipped to the frame."""
    h, w = patch.shape[-2:]
    hh, ww = canvas.shape[-2:]
    cy0, cx0 = max(0, y0), max(0, x0)
    cy1, cx1 = min(hh, y0 + h), min(ww, x0 + w)
    if cy1 <= cy0 or cx1 <= cx0:
        return
    canvas[:, cy0:cy1, cx0:cx1] = patch[:, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def _texture(rng: np.random.Generator, h: int, w: int, config: SceneConfig) -> tuple[np.ndarray, str]:
    """One texture of the scene's mix (photo folder, bundled photo, procedural)."""
    files = list_photos(config.photos) if config.photos else ()
    return _maybe_soft(rng, *random_texture(rng, h, w, config.photo_prob, config.allow_research, files,
                                            config.folder_photo_prob, config.max_blurred), config)


def _maybe_soft(rng: np.random.Generator, tex: np.ndarray, name: str, config: SceneConfig
                ) -> tuple[np.ndarray, str]:
    """The texture softened in itself with probability ``soft_prob`` (no draw when it is 0, so the
    scenes of other settings stay as they were)."""
    if config.soft_prob > 0 and rng.random() < config.soft_prob:
        return soften(rng, tex, config.soft_scale), f"{name}+soft"
    return tex, name


def _highlights(rng: np.random.Generator, layers: list[dict], h: int, w: int, q_bg: float,
                q_near: float, lights: tuple[int, int]) -> list[dict]:
    """Scene radiance above the sensor's white level: the brightest parts of every texture are
    boosted (a photo clips what was brighter), and small bright sources (lamps, speculars) are
    added on up to 3 depth layers; blurred, they become the clipped bokeh disks of real photos."""
    for layer in layers:
        c = layer["color"]
        lum = c.mean(0, keepdims=True)
        t = np.clip((lum - 0.6) / 0.4, 0, 1)
        layer["color"] = (c * (1 + (np.exp(rng.uniform(np.log(1.5), np.log(6))) - 1) * t * t * (3 - 2 * t))
                          ).astype(np.float32)
    n = int(rng.integers(lights[0], lights[1] + 1))
    groups = int(rng.integers(1, 4))
    out = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for g in range(groups):
        color = np.zeros((3, h, w), np.float32)
        alpha = np.zeros((1, h, w), np.float32)
        for _ in range(n // groups + (g < n % groups)):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.7, 3.0)
            a = np.clip(r + 0.5 - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2), 0, 1)
            tint = np.array([1.0, rng.uniform(0.6, 1.0), rng.uniform(0.3, 1.0)], np.float32)
            if rng.random() < 0.3:
                tint = rng.permutation(tint)
            level = float(np.exp(rng.uniform(np.log(2), np.log(30))))
            color = color * (1 - a) + a * (tint * level)[:, None, None]
            alpha = np.maximum(alpha, a[None])
        # mostly behind the subject (bokeh balls), sometimes anywhere
        q = float(rng.uniform(q_bg, q_bg + 0.3 * (q_near - q_bg)) if rng.random() < 0.7
                  else rng.uniform(q_bg, q_near))
        out.append(dict(color=color, alpha=alpha, q=q, meta=dict(kind="lights", q=q)))
    return out


def scene_options(options: dict) -> dict:
    """Check ``KEY=VALUE`` scene options (CLI ``--set``) against :class:`SceneConfig`'s fields.

    Raises :class:`~dpcli.errors.InputError` naming an unknown key or a bad value.
    """
    names = {f.name for f in fields(SceneConfig)}
    for key in options:
        if key not in names:
            raise InputError(f"unknown scene option {key!r}; valid: {', '.join(sorted(names))}")
    try:
        SceneConfig(**options)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad scene options {options}: {exc}") from None
    return dict(options)


def generate_layers(rng: np.random.Generator, config: SceneConfig) -> SceneLayers:
    """Draw a scene's layers (linear light) and camera from ``rng``.

    Stages, in the order they draw from ``rng``: the camera; the background (a texture, a stereo
    photo with its depth, or a full-frame photo in depth layers); a ground plane; objects and the
    subject; highlights; the focus; each layer's signed blur radius.
    """
    h, w = config.height, config.width
    cam = _draw_camera(rng, config)
    # colour (3,H,W), alpha (1,H,W), q (H,W) or float, meta
    layers, q_bg, q_near, fullframe = _background_layers(rng, config)
    if not fullframe and rng.random() < config.ground_prob:  # slanted ground plane: far at the horizon, near below
        layers.append(_ground_layer(rng, config, q_bg, q_near))
    layers += _object_layers(rng, config, cam, q_bg, q_near, fullframe)
    if config.highlight_prob > 0 and rng.random() < config.highlight_prob:
        layers += _highlights(rng, layers, h, w, q_bg, q_near, config.lights)

    # back to front by (mean) inverse depth; the background stays first
    def depth_key(layer: dict) -> float:
        q = layer["q"]
        return float(np.min(q)) if isinstance(q, np.ndarray) else q

    layers = [layers[0]] + sorted(layers[1:], key=depth_key)
    q_s, extent = _focus(rng, layers, cam)
    colors = torch.from_numpy(np.stack([l["color"] for l in layers]))
    alphas = torch.from_numpy(np.stack([l["alpha"] for l in layers]))
    gains = torch.tensor(cam.wb_gains, dtype=torch.float32).view(1, 3, 1, 1) * cam.exposure
    radius, gamma = _layer_radii(rng, config, layers, alphas, cam, q_s, extent)
    focus_d = 1 / q_s if q_s > 1e-6 else None  # None: focused at infinity (JSON has no inf)
    meta = dict(version=SYNTH_VERSION, height=h, width=w, camera=cam.to_json(),
                focus_inverse_depth=q_s, focus_distance_m=focus_d, depth_gamma=gamma,
                f_number=cam.f_number(focus_d) if focus_d is not None else None,
                layers=[l["meta"] for l in layers])
    return SceneLayers(colors=colors * gains, alphas=alphas, radius=radius, camera=cam, meta=meta)


def _draw_camera(rng: np.random.Generator, config: SceneConfig) -> CameraSample:
    """The scene's camera (:func:`sample_camera`) with the config's blur scale, sharp share, focus
    mode and output applied."""
    cam = sample_camera(rng, config.camera, config.width, config.scale_radii, config.noise, config.vignetting,
                        config.edge_asymmetry)
    if config.max_radius is not None:
        cam.max_radius = float(config.max_radius)
    elif config.radius_scale[0] != config.radius_scale[1]:
        cam.max_radius *= float(np.exp(rng.uniform(*np.log(config.radius_scale))))
    else:
        cam.max_radius *= config.radius_scale[0]
    if config.sharp_prob > 0 and rng.random() < config.sharp_prob:
        cam.max_radius = float(rng.uniform(0.0, 0.5))
    if config.focus_mode is not None:
        cam.focus_mode = config.focus_mode
    if config.output is not None:
        cam.output = config.output
    return cam


def _background_layers(rng: np.random.Generator, config: SceneConfig) -> tuple[list[dict], float, float, bool]:
    """The far layers: a full-frame photo in depth layers, the stereo photo with its disparity, or
    a texture at one depth. Returns (layers, background inverse depth, nearest objects' inverse
    depth, whether the scene is one full-frame photo)."""
    h, w = config.height, config.width
    layers: list[dict] = []
    # far background: inverse depth in [0, 0.1] 1/m (>= 10 m or infinity)
    q_bg = float(rng.uniform(0, 0.1))
    fullframe = config.fullframe_prob > 0 and rng.random() < config.fullframe_prob
    q_near = float(rng.uniform(1.0, 2.5)) if fullframe else 0.0  # nearest objects 0.4-1 m
    if fullframe:  # one photo edge to edge, depth layers from its segmentation
        files = list_photos(config.photos) if config.photos else ()
        if files and rng.random() < config.folder_photo_prob:
            img, name = folder_texture(rng, h, w, files, config.max_blurred)
        else:
            img, name = photo_texture(rng, h, w, config.allow_research)
        img, name = _maybe_soft(rng, img, name, config)
        layers = fullframe_layers(rng, img, q_bg, q_near, config.fullframe_layers)
        for layer in layers:
            layer["meta"]["texture"] = name
    elif config.allow_research and rng.random() < config.stereo_prob:
        layers.append(_stereo_layer(rng, h, w, q_bg))
    else:
        tex, name = _texture(rng, h, w, config)
        layers.append(dict(color=tex, alpha=np.ones((1, h, w), np.float32), q=q_bg,
                           meta=dict(kind="background", texture=name, q=q_bg)))
    if not fullframe:
        q_near = float(rng.uniform(1.0, 2.5))  # nearest objects 0.4-1 m
    return layers, q_bg, q_near, fullframe


def _stereo_layer(rng: np.random.Generator, h: int, w: int, q_bg: float) -> dict:
    """A random crop of the stereo photo, its inverse depth from its disparity."""
    img, disp = stereo_motorcycle()
    sh, sw = disp.shape
    s = rng.uniform(max(h / sh, w / sw), max(h / sh, w / sw) * 1.6)
    ch, cw = int(math.ceil(h / s)), int(math.ceil(w / s))
    y0, x0 = rng.integers(0, sh - ch + 1), rng.integers(0, sw - cw + 1)
    crop = torch.from_numpy(img[:, y0 : y0 + ch, x0 : x0 + cw])
    dcrop = torch.from_numpy(disp[None, y0 : y0 + ch, x0 : x0 + cw])
    col = F.interpolate(crop[None], size=(h, w), mode="bilinear", antialias=True)[0].numpy()
    d = F.interpolate(dcrop[None], size=(h, w), mode="bilinear")[0, 0].numpy()
    # disparity is proportional to inverse depth: map its range onto [q_bg, q_bg + span]
    span = rng.uniform(0.3, 1.5)
    q = q_bg + span * (d - d.min()) / max(float(d.max() - d.min()), 1e-6)
    return dict(color=col, alpha=np.ones((1, h, w), np.float32), q=q.astype(np.float32),
                meta=dict(kind="stereo_background", texture="motorcycle", q=[float(q.min()), float(q.max())]))


def _ground_layer(rng: np.random.Generator, config: SceneConfig, q_bg: float, q_near: float) -> dict:
    """A textured ground plane from a random horizon down, far at the horizon and near below."""
    h, w = config.height, config.width
    horizon = int(rng.uniform(0.2, 0.7) * h)
    q_far_g = float(rng.uniform(q_bg, 0.3))
    q_near_g = float(rng.uniform(0.4, 1.0) * q_near)
    yy = np.arange(h, dtype=np.float32)[:, None]
    t = np.clip((yy - horizon) / max(1, h - 1 - horizon), 0, 1)
    q = np.broadcast_to(q_far_g + (q_near_g - q_far_g) * t, (h, w)).astype(np.float32)
    alpha = np.clip(yy - horizon + 0.5, 0, 1).astype(np.float32)
    alpha = np.broadcast_to(alpha, (h, w))[None].copy()
    tex, name = _texture(rng, h, w, config)
    return dict(color=tex, alpha=alpha, q=q, meta=dict(kind="ground", texture=name, q=[q_far_g, q_near_g]))


def _object_layers(rng: np.random.Generator, config: SceneConfig, cam: CameraSample, q_bg: float, q_near: float,
                   fullframe: bool) -> list[dict]:
    """Textured shapes at random depths between the background and the nearest objects (some
    slanted), and sometimes a subject near the frame centre (the nearest thing when focus is on
    the front)."""
    h, w = config.height, config.width
    layers: list[dict] = []
    n_range = config.fullframe_objects if fullframe else config.objects
    n_obj = int(rng.integers(n_range[0], n_range[1] + 1))
    short = min(h, w)
    subject = not fullframe and rng.random() < config.subject_prob and cam.focus_mode != "back"
    for k in range(n_obj + subject):
        is_subject = subject and k == n_obj
        size = rng.uniform(0.2, 0.4) * short if is_subject else _power_law(rng, 0.03 * short, 0.4 * short)
        box = int(2 * size * 1.1) + 3
        alpha_p, shape = _shape_alpha(rng, size, box)
        tex_p, name = _texture(rng, box, box, config)
        if is_subject:  # near the frame centre
            y0 = int(h / 2 - box / 2 + rng.uniform(-0.2, 0.2) * h)
            x0 = int(w / 2 - box / 2 + rng.uniform(-0.2, 0.2) * w)
        else:
            y0 = int(rng.integers(-box // 2, h - box // 2))
            x0 = int(rng.integers(-box // 2, w - box // 2))
        color = np.zeros((3, h, w), np.float32)
        alpha = np.zeros((1, h, w), np.float32)
        _paste(color, tex_p, y0, x0)
        _paste(alpha, alpha_p[None], y0, x0)
        if alpha.max() <= 0:
            continue
        qo = float(np.exp(rng.uniform(np.log(max(q_bg, 0.05) * 1.2), np.log(q_near))))
        if is_subject and cam.focus_mode == "front":
            qo = q_near * 1.01  # the nearest thing
        meta = dict(kind="subject" if is_subject else "object", shape=shape, texture=name,
                    size=round(size, 2), box=[y0, x0, box], q=qo)
        q: float | np.ndarray = qo
        if not is_subject and rng.random() < config.slanted_object_prob:  # tilted plane: q varies linearly across it
            ang = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            cy, cx = y0 + box / 2, x0 + box / 2
            ramp = ((xx - cx) * math.cos(ang) + (yy - cy) * math.sin(ang)) / max(size, 1)
            q = (qo * (1 + rng.uniform(0.1, 0.4) * np.clip(ramp, -1, 1))).astype(np.float32)
            meta["slanted"] = True
        layers.append(dict(color=color, alpha=alpha, q=q, meta=meta))
    return layers


def _focus(rng: np.random.Generator, layers: list[dict], cam: CameraSample) -> tuple[float, float]:
    """The inverse depth in focus, by the camera's focus mode (front: the nearest thing, back: the
    background, middle: the subject, else an object or anywhere), and the largest distance of any
    layer's inverse depth from it."""
    q_vals = [(float(np.min(l["q"])), float(np.max(l["q"]))) if isinstance(l["q"], np.ndarray)
              else (l["q"], l["q"]) for l in layers]
    q_min = min(v[0] for v in q_vals)
    q_max = max(v[1] for v in q_vals)
    obj_q = [l["q"] for l in layers if l["meta"]["kind"] == "object" and not isinstance(l["q"], np.ndarray)]
    obj_q += [l["meta"]["q_median"] for l in layers if l["meta"]["kind"] == "segment_layer"]
    subj_q = [l["q"] for l in layers if l["meta"]["kind"] == "subject"]
    if cam.focus_mode == "front":  # focus on (or just before) the nearest thing: all r >= 0
        q_s = q_max * (1.0 if subj_q or rng.random() < 0.7 else rng.uniform(1.0, 1.15))
    elif cam.focus_mode == "middle" and subj_q:
        q_s = subj_q[0]
    elif cam.focus_mode == "back":  # focus on the far background: all r <= 0
        q_s = q_min
    else:
        q_s = float(rng.choice(obj_q)) if obj_q and rng.random() < 0.7 else float(rng.uniform(q_min, q_max))
    return q_s, max(abs(q_s - q_min), abs(q_s - q_max), 1e-6)


def _layer_radii(rng: np.random.Generator, config: SceneConfig, layers: list[dict], alphas: torch.Tensor,
                 cam: CameraSample, q_s: float, extent: float) -> tuple[torch.Tensor, float]:
    """(L, 1, H, W) signed blur radius of every layer (thin lens: linear in inverse depth, bent by
    a drawn depth gamma) and that gamma; each layer's meta gets its radius range."""
    h, w = config.height, config.width
    radius = torch.empty(len(layers), 1, h, w)
    gamma = 1.0
    if config.depth_gamma[0] != config.depth_gamma[1]:
        gamma = float(np.exp(rng.uniform(*np.log(config.depth_gamma))))
    for i, l in enumerate(layers):
        q = torch.as_tensor(l["q"], dtype=torch.float32)
        t = (q_s - q) / extent  # thin lens: the radius is linear in inverse depth, t in [-1, 1]
        r = cam.max_radius * torch.sign(t) * t.abs() ** gamma
        radius[i] = r if r.ndim else r.expand(1, h, w)
        rr = radius[i][alphas[i] > 0]
        l["meta"]["radius"] = [round(float(rr.min()), 3), round(float(rr.max()), 3)] if rr.numel() else None
    return radius, gamma


@lru_cache(maxsize=4)
def _measured(folder: str) -> tuple[torch.Tensor, torch.Tensor]:
    root = Path(folder)
    return load_measured_kernels(root / "blur_kernels_left.npy", root / "blur_kernels_right.npy")


@lru_cache(maxsize=256)
def _measured_fn(folder: str, patch: int) -> MeasuredKernelFn:
    left, right = _measured(folder)
    return MeasuredKernelFn(left[patch], right[patch])


def _kernel_fn(config: SceneConfig, rng: np.random.Generator) -> tuple[object, dict]:
    """RDPD kernels, or one measured patch's kernels (drawn per scene) scaled to each radius."""
    if config.kernels is None:
        return "rdpd", dict(kernels="rdpd")
    patch = int(rng.integers(_measured(str(config.kernels))[0].shape[0]))
    fn = _measured_fn(str(config.kernels), patch)
    return fn, dict(kernels="measured", kernel_folder=str(config.kernels), kernel_patch=patch,
                    kernel_files_swapped=fn.swapped, kernel_ref_radius=round(fn.ref_radius, 3))


@dataclass
class PreparedScene:
    """Everything a scene draws from its seed (layers, kernels, noise seed, pipeline), before the
    rendering: built on the CPU (workers), rendered by :func:`finish_scene` on any device."""

    layers: SceneLayers
    kernel: object
    kernel_meta: dict
    bin_step: float
    noise_seed: int
    isp: IspSample | None
    grey: bool
    seed: int
    index: int


def prepare_scene(seed: int, config: SceneConfig | None = None, index: int = 0) -> PreparedScene:
    """Draw scene ``index`` of run ``seed`` (deterministic; numpy on the CPU, no rendering)."""
    config = config or SceneConfig()
    rng = scene_rng(seed, index)
    scene = generate_layers(rng, config)
    cam = scene.camera
    step = config.bin_step or max(1.0, cam.max_radius / 12)
    kernel, kernel_meta = _kernel_fn(config, rng)
    noise_seed = int(rng.integers(2**62))
    isp = sample_isp(rng, config.isp_config()) if config.isp and cam.output.startswith("srgb") else None
    return PreparedScene(scene, kernel, kernel_meta, step, noise_seed, isp, config.grey, int(seed), int(index))


def finish_scene(prep: PreparedScene, device: torch.device | str | None = None) -> SynthScene:
    """Render a prepared scene on ``device`` (default CPU): DP blur in linear light, then the
    camera (vignetting, per-view noise, sensor clip, pipeline, quantisation)."""
    device = torch.device(device or "cpu")
    scene, cam = prep.layers, prep.layers.camera
    with torch.no_grad():
        res = render_layers(scene.colors[None].to(device), scene.alphas[None].to(device),
                            scene.radius[None].to(device), kernel=prep.kernel,
                            edge_asymmetry=cam.edge_asymmetry, bin_step=prep.bin_step, exact_constant=True)
    gen = torch.Generator(device=device).manual_seed(prep.noise_seed)
    left, right = apply_vignetting(res.left[0], res.right[0], cam.vignetting)
    sharp, _ = apply_vignetting(res.aif[0], res.aif[0], cam.vignetting)
    sharp = (sharp + _) / 2  # common radial falloff only (the DP ramps cancel)
    if prep.isp is None:
        left = add_noise(left, cam.shot_noise, cam.read_noise, gen).clamp(0, 1)
        right = add_noise(right, cam.shot_noise, cam.read_noise, gen).clamp(0, 1)
        combined = (left + right) / 2
        sharp = sharp.clamp(0, 1)
        if prep.grey:  # the green plane, as a DP sensor's green photodiodes record it
            left, right, combined, sharp = (t[1:2] for t in (left, right, combined, sharp))
        views = dict(left=left, right=right, combined=combined, sharp=sharp)
        enc = {k: encode(v, cam.output)[0] for k, v in views.items()}
        bit_depth = encode(sharp[:, :1, :1], cam.output)[1]
        linear = views
    else:
        enc, linear = _camera_pipeline(left, right, sharp, cam, prep.isp, gen, prep.grey)
        bit_depth = prep.isp.bit_depth
    meta = dict(scene.meta, seed=prep.seed, index=prep.index, output=cam.output, bit_depth=bit_depth,
                bin_step=prep.bin_step, channels=int(enc["left"].shape[0]), **prep.kernel_meta)
    if prep.isp is not None:
        meta["isp"] = prep.isp.to_json()
    optics = {"combined": (res.left[0] + res.right[0]) / 2, "sharp": res.aif[0]}
    if prep.grey:
        optics = {k: v[1:2] for k, v in optics.items()}
    return SynthScene(left=enc["left"], right=enc["right"], combined=enc["combined"],
                      sharp=enc["sharp"], defocus=res.defocus[0], bit_depth=bit_depth,
                      output=cam.output, linear=linear, meta=meta, optics=optics)


def _camera_pipeline(left: torch.Tensor, right: torch.Tensor, sharp: torch.Tensor, cam: CameraSample,
                     isp: IspSample, gen: torch.Generator, grey: bool
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """DSLR pipeline of rendered linear sRGB views (3, H, W): raw, per-view noise, sensor clip
    (saturated highlights), combined = mean of the raw views, processing, quantisation; JPEG /
    palette on the inputs only (the target is the camera's clean rendering, like DPDD's PNGs).
    Returns (stored values, display-linear values) keyed left/right/combined/sharp."""
    raw = {k: unprocess(v, isp) for k, v in dict(left=left, right=right, sharp=sharp).items()}
    for k in ("left", "right"):
        raw[k] = add_noise(raw[k], cam.shot_noise, cam.read_noise, gen)
    raw = {k: v.clamp(0, 1) for k, v in raw.items()}
    raw["combined"] = (raw["left"] + raw["right"]) / 2
    enc, linear = {}, {}
    for k in ("left", "right", "combined", "sharp"):
        lin, y = process(raw[k], isp)
        y = quantise(y, isp.bit_depth)
        if k != "sharp":
            y = compress(y, isp)
        if grey:
            lin, y = lin[1:2], y[1:2]
        enc[k], linear[k] = y, lin
    return enc, linear


def render_scene(seed: int, config: SceneConfig | None = None, index: int = 0,
                 device: torch.device | str | None = None) -> SynthScene:
    """Draw and render scene ``index`` of run ``seed`` (deterministic) on ``device`` (default CPU)."""
    return finish_scene(prepare_scene(seed, config, index), device)


def make_test_scene(size: int | tuple[int, int] = 96, seed: int = 0, camera: str = "dslr",
                    max_radius: float = 6.0, focus_mode: str = "front", noise: bool = False,
                    output: str = "srgb", objects: tuple[int, int] = (3, 6)) -> TestScene:
    """Small deterministic DP scene with known ground truth, for tests elsewhere.

    Args:
        size: side or (height, width) in px.
        seed: scene seed.
        max_radius: largest |signed radius| in px.
        focus_mode: "front" (all r >= 0, Pixel-like), "middle" or "back".
        noise: add the camera's Poisson-Gaussian noise.
        output: "srgb" (sRGB curve, unquantised float) or "linear".

    Returns:
        :class:`TestScene` (left, right, combined, sharp, defocus); images (3, H, W) in [0, 1],
        combined = (left + right) / 2 in linear light, defocus (1, H, W) signed px.

    Example:
        >>> s = make_test_scene(64, seed=1)
        >>> s.left.shape, s.defocus.shape
        (torch.Size([3, 64, 64]), torch.Size([1, 64, 64]))
    """
    h, w = (size, size) if isinstance(size, int) else size
    cfg = SceneConfig(height=h, width=w, camera=camera, max_radius=max_radius,
                      focus_mode=focus_mode, noise=noise, vignetting=False, objects=objects,
                      output="linear16", stereo_prob=0.0, bin_step=1.0, subject_prob=1.0)
    sc = render_scene(seed, cfg)
    lin = sc.linear
    if output == "linear":
        return TestScene(lin["left"], lin["right"], lin["combined"], lin["sharp"], sc.defocus)
    if output != "srgb":
        raise ValueError(f"output must be 'srgb' or 'linear', got {output!r}")
    from dpcli.optics.color import linear_to_srgb

    return TestScene(*(linear_to_srgb(lin[k]) for k in ("left", "right", "combined", "sharp")),
                     sc.defocus)
