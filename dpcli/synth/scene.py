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
from dpcli.synth.camera import CameraSample, add_noise, apply_vignetting, encode, sample_camera
from dpcli.synth.photos import list_photos
from dpcli.synth.textures import random_texture, stereo_motorcycle

__all__ = ["SceneConfig", "SceneLayers", "SynthScene", "TestScene", "generate_layers",
           "render_scene", "make_test_scene", "scene_rng", "scene_options"]

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

    def __post_init__(self) -> None:
        if isinstance(self.photos, (str, Path)):
            self.photos = (str(self.photos),)
        self.photos = tuple(str(p) for p in self.photos)


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
    return random_texture(rng, h, w, config.photo_prob, config.allow_research, files,
                          config.folder_photo_prob, config.max_blurred)


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
    """Draw a scene's layers (linear light) and camera from ``rng``."""
    h, w = config.height, config.width
    cam = sample_camera(rng, config.camera, w, config.scale_radii, config.noise, config.vignetting,
                        config.edge_asymmetry)
    if config.max_radius is not None:
        cam.max_radius = float(config.max_radius)
    if config.focus_mode is not None:
        cam.focus_mode = config.focus_mode
    if config.output is not None:
        cam.output = config.output
    layers: list[dict] = []  # colour (3,H,W), alpha (1,H,W), q (H,W) or float, meta

    # far background: inverse depth in [0, 0.1] 1/m (>= 10 m or infinity)
    q_bg = float(rng.uniform(0, 0.1))
    if config.allow_research and rng.random() < config.stereo_prob:
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
        layers.append(dict(color=col, alpha=np.ones((1, h, w), np.float32), q=q.astype(np.float32),
                           meta=dict(kind="stereo_background", texture="motorcycle",
                                     q=[float(q.min()), float(q.max())])))
    else:
        tex, name = _texture(rng, h, w, config)
        layers.append(dict(color=tex, alpha=np.ones((1, h, w), np.float32), q=q_bg,
                           meta=dict(kind="background", texture=name, q=q_bg)))

    q_near = float(rng.uniform(1.0, 2.5))  # nearest objects 0.4-1 m
    if rng.random() < config.ground_prob:  # slanted ground plane: far at the horizon, near below
        horizon = int(rng.uniform(0.2, 0.7) * h)
        q_far_g = float(rng.uniform(q_bg, 0.3))
        q_near_g = float(rng.uniform(0.4, 1.0) * q_near)
        yy = np.arange(h, dtype=np.float32)[:, None]
        t = np.clip((yy - horizon) / max(1, h - 1 - horizon), 0, 1)
        q = np.broadcast_to(q_far_g + (q_near_g - q_far_g) * t, (h, w)).astype(np.float32)
        alpha = np.clip(yy - horizon + 0.5, 0, 1).astype(np.float32)
        alpha = np.broadcast_to(alpha, (h, w))[None].copy()
        tex, name = _texture(rng, h, w, config)
        layers.append(dict(color=tex, alpha=alpha, q=q, meta=dict(kind="ground", texture=name,
                                                               q=[q_far_g, q_near_g])))

    n_obj = int(rng.integers(config.objects[0], config.objects[1] + 1))
    short = min(h, w)
    subject = rng.random() < config.subject_prob and cam.focus_mode != "back"
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

    # back to front by (mean) inverse depth; the background stays first
    def depth_key(layer: dict) -> float:
        q = layer["q"]
        return float(np.min(q)) if isinstance(q, np.ndarray) else q

    layers = [layers[0]] + sorted(layers[1:], key=depth_key)

    q_vals = [(float(np.min(l["q"])), float(np.max(l["q"]))) if isinstance(l["q"], np.ndarray)
              else (l["q"], l["q"]) for l in layers]
    q_min = min(v[0] for v in q_vals)
    q_max = max(v[1] for v in q_vals)
    obj_q = [l["q"] for l in layers if l["meta"]["kind"] == "object" and not isinstance(l["q"], np.ndarray)]
    subj_q = [l["q"] for l in layers if l["meta"]["kind"] == "subject"]
    if cam.focus_mode == "front":  # focus on (or just before) the nearest thing: all r >= 0
        q_s = q_max * (1.0 if subj_q or rng.random() < 0.7 else rng.uniform(1.0, 1.15))
    elif cam.focus_mode == "middle" and subj_q:
        q_s = subj_q[0]
    elif cam.focus_mode == "back":  # focus on the far background: all r <= 0
        q_s = q_min
    else:
        q_s = float(rng.choice(obj_q)) if obj_q and rng.random() < 0.7 else float(rng.uniform(q_min, q_max))
    extent = max(abs(q_s - q_min), abs(q_s - q_max), 1e-6)

    colors = torch.from_numpy(np.stack([l["color"] for l in layers]))
    alphas = torch.from_numpy(np.stack([l["alpha"] for l in layers]))
    gains = torch.tensor(cam.wb_gains, dtype=torch.float32).view(1, 3, 1, 1) * cam.exposure
    radius = torch.empty(len(layers), 1, h, w)
    for i, l in enumerate(layers):
        q = torch.as_tensor(l["q"], dtype=torch.float32)
        r = cam.max_radius * (q_s - q) / extent
        radius[i] = r if r.ndim else r.expand(1, h, w)
        rr = radius[i][alphas[i] > 0]
        l["meta"]["radius"] = [round(float(rr.min()), 3), round(float(rr.max()), 3)] if rr.numel() else None
    focus_d = 1 / q_s if q_s > 1e-6 else None  # None: focused at infinity (JSON has no inf)
    meta = dict(version=SYNTH_VERSION, height=h, width=w, camera=cam.to_json(),
                focus_inverse_depth=q_s, focus_distance_m=focus_d,
                f_number=cam.f_number(focus_d) if focus_d is not None else None,
                layers=[l["meta"] for l in layers])
    return SceneLayers(colors=colors * gains, alphas=alphas, radius=radius, camera=cam, meta=meta)


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


def render_scene(seed: int, config: SceneConfig | None = None, index: int = 0) -> SynthScene:
    """Draw and render scene ``index`` of run ``seed`` (deterministic)."""
    config = config or SceneConfig()
    rng = scene_rng(seed, index)
    scene = generate_layers(rng, config)
    cam = scene.camera
    step = config.bin_step or max(1.0, cam.max_radius / 12)
    kernel, kernel_meta = _kernel_fn(config, rng)
    with torch.no_grad():
        res = render_layers(scene.colors[None], scene.alphas[None], scene.radius[None],
                            kernel=kernel, edge_asymmetry=cam.edge_asymmetry, bin_step=step,
                            exact_constant=True)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    left, right = apply_vignetting(res.left[0], res.right[0], cam.vignetting)
    sharp, _ = apply_vignetting(res.aif[0], res.aif[0], cam.vignetting)
    sharp = (sharp + _) / 2  # common radial falloff only (the DP ramps cancel)
    left = add_noise(left, cam.shot_noise, cam.read_noise, gen).clamp(0, 1)
    right = add_noise(right, cam.shot_noise, cam.read_noise, gen).clamp(0, 1)
    combined = (left + right) / 2
    sharp = sharp.clamp(0, 1)
    if config.grey:  # the green plane, as a DP sensor's green photodiodes record it
        left, right, combined, sharp = (t[1:2] for t in (left, right, combined, sharp))
    enc = {k: encode(v, cam.output)[0] for k, v in
           dict(left=left, right=right, combined=combined, sharp=sharp).items()}
    bit_depth = encode(sharp[:, :1, :1], cam.output)[1]
    meta = dict(scene.meta, seed=int(seed), index=int(index), output=cam.output,
                bit_depth=bit_depth, bin_step=step, channels=int(left.shape[0]), **kernel_meta)
    return SynthScene(left=enc["left"], right=enc["right"], combined=enc["combined"],
                      sharp=enc["sharp"], defocus=res.defocus[0], bit_depth=bit_depth,
                      output=cam.output,
                      linear=dict(left=left, right=right, combined=combined, sharp=sharp),
                      meta=meta)


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
