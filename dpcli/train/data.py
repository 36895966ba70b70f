"""Training data: DPDD-layout folders, on-the-fly synthetic scenes, DP-correct augmentation, patch recipe.

A *sample* is a dict of float32 tensors (C, H, W) in [0, 1]: ``left``, ``right``, ``combined``,
``target`` (all-in-focus), and optionally ``defocus`` (1, H, W), the signed blur radius in pixels
(docs/CONVENTIONS.md). Batches are the same dict with a leading batch axis.

DP semantics of the geometric augmentations (docs/CONVENTIONS.md kernels: the left kernel is the disk
times a ramp rising along +x, the right kernel its mirror, and a negative radius swaps them):

* Horizontal flip. Mirroring x maps ``I * K_L(r)`` to ``flip(I) * flip(K_L(r)) = flip(I) * K_R(r)``:
  the mirrored left view is exactly the *right* view of the mirrored scene at the *same* radius.
  So a flip mirrors all planes, swaps left and right, and keeps the defocus map's sign (it is only
  mirrored spatially). Flipping without the swap would instead be the scene at radius ``-r``.
* Vertical flip. Both kernels are symmetric in y, so mirroring y commutes with the blur: no swap,
  no sign change.
* 90-degree rotation. It turns the horizontal disparity into a vertical one, which no DP model
  here was built for, so it is off for DP data; for single-image training (the combined kernel is
  a rotationally symmetric disk) it is exact, and ``allow_dp_rot90`` opts in where a model handles
  both disparity axes.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler

from dpcli.errors import InputError

Sample = dict[str, Tensor]
IMAGE_KEYS = ("left", "right", "combined", "target")
# largest blur radius (px) of a scene that counts as in focus (synth SceneConfig.sharp_prob draws 0-0.5)
IN_FOCUS_PX = 0.5


# --------------------------------------------------------------------------- augmentation

def hflip_dp(sample: Sample) -> Sample:
    """Mirror x and swap the views: the same scene mirrored, defocus sign unchanged (module doc)."""
    out = {k: v.flip(-1) for k, v in sample.items()}
    if "left" in out and "right" in out:
        out["left"], out["right"] = out["right"], out["left"]
    return out


def vflip(sample: Sample) -> Sample:
    """Mirror y: DP kernels are symmetric in y, so nothing else changes."""
    return {k: v.flip(-2) for k, v in sample.items()}


def rot90(sample: Sample, k: int) -> Sample:
    """Rotate by k * 90 degrees counter-clockwise (changes the disparity axis for DP data)."""
    return {key: torch.rot90(v, k, dims=(-2, -1)) for key, v in sample.items()}


@dataclass
class AugmentConfig:
    """Random crop + geometric augmentation. ``dp`` says whether the views' disparity is used."""

    crop: int | None = 256
    hflip: bool = True
    vflip: bool = True
    rot90: bool | None = None  # None = auto: on for single-image training, off for DP
    dp: bool = True
    allow_dp_rot90: bool = False

    def rot90_enabled(self) -> bool:
        if self.rot90 is None:
            return not self.dp
        if self.rot90 and self.dp and not self.allow_dp_rot90:
            raise ValueError("90-degree rotation turns the DP disparity vertical; it is only valid for "
                             "single-image training or with allow_dp_rot90=True")
        return bool(self.rot90)


def random_crop(sample: Sample, size: int, rng: random.Random) -> Sample:
    """The same random ``size`` x ``size`` window from every plane (whole sample if smaller)."""
    h, w = next(iter(sample.values())).shape[-2:]
    if size >= h and size >= w:
        return sample
    ch, cw = min(size, h), min(size, w)
    y, x = rng.randint(0, h - ch), rng.randint(0, w - cw)
    return {k: v[..., y:y + ch, x:x + cw] for k, v in sample.items()}


def augment(sample: Sample, cfg: AugmentConfig, rng: random.Random) -> Sample:
    """Crop, then flips/rotation with the DP semantics of the module docstring."""
    if cfg.crop:
        sample = random_crop(sample, cfg.crop, rng)
    if cfg.hflip and rng.random() < 0.5:
        sample = hflip_dp(sample) if cfg.dp else {k: v.flip(-1) for k, v in sample.items()}
    if cfg.vflip and rng.random() < 0.5:
        sample = vflip(sample)
    if cfg.rot90_enabled():
        k = rng.randint(0, 3)
        if k:
            sample = rot90(sample, k)
    return {k: v.contiguous() for k, v in sample.items()}


# --------------------------------------------------------------------------- DPDD patch recipe

def sobel_energy(image: Tensor) -> float:
    """Mean squared Sobel gradient magnitude of the grey image (C, H, W): DPDD's sharpness energy."""
    grey = image.float().mean(0, keepdim=True)[None]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    k = torch.stack([kx, kx.t()])[:, None]
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), k)
    return float((g ** 2).sum(1).mean())


def sliding_boxes(height: int, width: int, size: int = 512, overlap: float = 0.6) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` windows with the given fractional overlap (DPDD: 512, 60%)."""
    stride = max(1, int(round(size * (1.0 - overlap))))
    ys = list(range(0, max(height - size, 0) + 1, stride))
    xs = list(range(0, max(width - size, 0) + 1, stride))
    return [(y, x) for y in ys for x in xs]


def select_sharp_boxes(image: Tensor, boxes: Sequence[tuple[int, int]], size: int,
                       drop: float = 0.3) -> list[tuple[int, int]]:
    """Drop the ``drop`` fraction of windows with the least Sobel energy (the most homogeneous)."""
    energies = [sobel_energy(image[:, y:y + size, x:x + size]) for y, x in boxes]
    order = np.argsort(energies)[::-1]
    keep = max(1, int(round(len(boxes) * (1.0 - drop))))
    return sorted(boxes[i] for i in order[:keep])


@dataclass
class PatchRecipe:
    """DPDD training patches: 512 px windows, 60% overlap, drop the 30% least sharp (Sobel energy)."""

    size: int = 512
    overlap: float = 0.6
    drop: float = 0.3


# --------------------------------------------------------------------------- folder data

@dataclass
class FolderItem:
    name: str
    left: Path | None
    right: Path | None
    combined: Path | None
    target: Path | None
    defocus: Path | None = None


def list_dpdd_items(root: Path, split: str = "train") -> list[FolderItem]:
    """Scenes of one split of a DPDD-layout folder (real DPDD or ``dpdeblur synth`` output).

    Layout discovery is :func:`dpcli.io.pairs.discover_inputs`; we keep the items whose files sit
    in ``<split>_l`` / ``<split>_c`` and add ``NAME_defocus.tiff`` maps where the set has them.
    """
    from dpcli.io.pairs import PairInput, SingleInput, discover_inputs

    root = Path(root)
    if not root.is_dir():
        raise InputError("training data must be a DPDD-layout folder (or 'synth')", root)
    # defocus maps keyed by (split, name): DPDD reuses scene names across splits
    maps = {(p.relative_to(root).parts[0].rsplit("_", 1)[0].lower(), p.name.rsplit("_defocus", 1)[0]): p
            for p in sorted(root.rglob("*_defocus.tif*"))}
    items = []
    for entry in discover_inputs([root]):
        if isinstance(entry, PairInput):
            anchor, left, right, combined = entry.left, entry.left, entry.right, entry.combined
        elif isinstance(entry, SingleInput):
            anchor, left, right, combined = entry.path, None, None, entry.path
        else:  # a bad item (lone view...): not trainable
            continue
        if anchor.parent.parent.name.lower() not in (f"{split}_l", f"{split}_c"):
            continue
        name = re.sub(r"[_-](l|left)$", "", anchor.stem, flags=re.IGNORECASE) if left is not None else anchor.stem
        if name.endswith("_defocus"):
            continue
        items.append(FolderItem(name, left, right, combined, entry.target, maps.get((split.lower(), name))))
    if not items:
        raise InputError(f"no '{split}' scenes in DPDD layout ({split}_c/source, {split}_c/target, "
                         f"{split}_l/source, {split}_r/source)", root)
    return items


def _read(path: Path | None) -> Tensor | None:
    if path is None:
        return None
    from dpcli.io.images import read_image

    return torch.from_numpy(read_image(path).data)


def folder_is_linear(root: Path) -> bool:
    """Whether a DPDD-layout folder holds linear values: ``dpdeblur synth`` records its encoding
    in ``<split>_c/meta/*.json`` (phone: linear16); anything else is taken as sRGB (DPDD)."""
    for meta in sorted(Path(root).glob("*_c/meta/*.json"))[:1]:
        try:
            return str(json.loads(meta.read_text()).get("output", "")).startswith("linear")
        except (OSError, ValueError):
            return False
    return False


def load_item(item: FolderItem, srgb: bool = True) -> Sample:
    """Decode every file of one scene; ``combined`` defaults to the mean of the views in linear
    light (:func:`dpcli.io.pairs.mean_view`, docs/CONVENTIONS.md) when the set has none.

    ``srgb``: the files are sRGB-encoded (DPDD); False for linear data (``dpdeblur synth --camera phone``).
    """
    from dpcli.io.pairs import mean_view

    sample = {k: _read(getattr(item, k)) for k in ("left", "right", "combined", "target", "defocus")}
    if sample["combined"] is None and sample["left"] is not None and sample["right"] is not None:
        sample["combined"] = torch.from_numpy(mean_view(sample["left"].numpy(), sample["right"].numpy(), srgb))
    if sample["target"] is None:
        raise InputError("scene has no all-in-focus target (needed for supervised training)", item.name)
    if sample["defocus"] is not None:
        sample["defocus"] = sample["defocus"][:1]
    return {k: v for k, v in sample.items() if v is not None}


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one (run seed, epoch, index): resumable, rank independent."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


Key = tuple[int, int]  # (index, per-sample seed)


class FolderDataset(Dataset):
    """DPDD-layout training pairs, optionally cut into the DPDD patch recipe, then augmented.

    ``srgb``: how the files are encoded (None: :func:`folder_is_linear` decides).
    ``__getitem__`` takes ``(index, seed)`` (see :class:`StepBatchSampler`) so crops and flips
    are a function of the run seed and the step: a resumed run sees the same data.
    """

    def __init__(self, root: Path, split: str = "train", augment_cfg: AugmentConfig | None = None,
                 recipe: PatchRecipe | None = None, cache: bool | None = None,
                 index_cache: Path | None = None, srgb: bool | None = None) -> None:
        self.items = list_dpdd_items(Path(root), split)
        self.srgb = not folder_is_linear(Path(root)) if srgb is None else srgb  # encoding of the files
        self.augment_cfg = augment_cfg or AugmentConfig()
        self.recipe = recipe
        self.cache = len(self.items) <= 64 if cache is None else cache  # small sets stay decoded in RAM
        self._decoded: dict[int, Sample] = {}
        self.patches: list[tuple[int, int, int]] | None = None
        if recipe is not None:
            self.patches = self._patch_index(index_cache)

    def _patch_index(self, cache_path: Path | None) -> list[tuple[int, int, int]]:
        key = f"{self.recipe.size}:{self.recipe.overlap}:{self.recipe.drop}:" + ",".join(i.name for i in self.items)
        if cache_path is not None and cache_path.exists():
            stored = json.loads(cache_path.read_text())
            if stored.get("key") == key:
                return [tuple(p) for p in stored["patches"]]
        patches = []
        for i, item in enumerate(self.items):
            image = self._decoded[i]["target"] if i in self._decoded else _read(item.target)
            # sharpness of the scene content (the all-in-focus target), not of its blur
            boxes = sliding_boxes(image.shape[-2], image.shape[-1], self.recipe.size, self.recipe.overlap)
            for y, x in select_sharp_boxes(image, boxes, self.recipe.size, self.recipe.drop):
                patches.append((i, y, x))
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps({"key": key, "patches": patches}))
        return patches

    def _load(self, i: int) -> Sample:
        if i in self._decoded:
            return self._decoded[i]
        sample = load_item(self.items[i], self.srgb)
        if self.cache:
            self._decoded[i] = sample
        return sample

    def __len__(self) -> int:
        return len(self.patches) if self.patches is not None else len(self.items)

    def __getitem__(self, key: int | Key) -> Sample:
        index, seed = key if isinstance(key, tuple) else (key, key)
        if self.patches is not None:
            i, y, x = self.patches[index]
            s = self.recipe.size
            sample = {k: v[..., y:y + s, x:x + s] for k, v in self._load(i).items()}
        else:
            sample = self._load(index)
        return augment(sample, self.augment_cfg, random.Random(seed))


@dataclass
class PendingScene:
    """A synthetic scene drawn on the CPU (in a loader worker) and rendered later on the training
    device by :meth:`SynthDataset.materialise` (GPU training: the GPU renders, never waits).

    The layers travel cropped to their coverage (most dead-leaves layers are small objects on an
    empty full-frame canvas), which keeps the worker-to-trainer traffic and shared memory small.
    """

    prepared: Any  # dpcli.synth.scene.PreparedScene, its layer tensors emptied
    seed: int
    shape: tuple[int, int]
    layers: list[tuple[int, int, Tensor, Tensor, Tensor]]  # (y0, x0, colour, alpha, radius) crops

    @classmethod
    def pack(cls, prepared: Any, seed: int) -> "PendingScene":
        import dataclasses

        sl = prepared.layers
        crops = []
        for c, a, r in zip(sl.colors, sl.alphas, sl.radius):
            rows = torch.nonzero(a[0].ne(0).any(1)).flatten()
            cols = torch.nonzero(a[0].ne(0).any(0)).flatten()
            y0, y1 = (int(rows[0]), int(rows[-1]) + 1) if rows.numel() else (0, 1)
            x0, x1 = (int(cols[0]), int(cols[-1]) + 1) if cols.numel() else (0, 1)
            crops.append((y0, x0, c[:, y0:y1, x0:x1].clone(), a[:, y0:y1, x0:x1].clone(), r[:, y0:y1, x0:x1].clone()))
        empty = torch.empty(0)
        light = dataclasses.replace(prepared, layers=dataclasses.replace(sl, colors=empty, alphas=empty, radius=empty))
        return cls(light, seed, tuple(sl.alphas.shape[-2:]), crops)

    def unpack(self, device: torch.device | None) -> Any:
        """The prepared scene with full-frame layers, built on ``device``."""
        import dataclasses

        h, w = self.shape
        n = len(self.layers)
        colors = torch.zeros(n, 3, h, w, device=device)
        alphas = torch.zeros(n, 1, h, w, device=device)
        radius = torch.zeros(n, 1, h, w, device=device)
        for i, (y0, x0, c, a, r) in enumerate(self.layers):
            hh, ww = a.shape[-2:]
            colors[i, :, y0:y0 + hh, x0:x0 + ww] = c.to(device)
            alphas[i, :, y0:y0 + hh, x0:x0 + ww] = a.to(device)
            radius[i, :, y0:y0 + hh, x0:x0 + ww] = r.to(device)
        sl = dataclasses.replace(self.prepared.layers, colors=colors, alphas=alphas, radius=radius)
        return dataclasses.replace(self.prepared, layers=sl)


class SynthDataset(Dataset):
    """On-the-fly synthetic DP scenes from :func:`dpcli.synth.scene.render_scene`, a fresh scene per
    (epoch, index), rendered at native resolution (``scale_radii=False``: crop-sized scenes keep
    the camera's real blur radii).

    Args:
        length: notional epoch size (how often epoch-based schedules tick).
        size: scene side in px.
        camera: ``phone`` (Pixel-like radii, linear raw), ``dslr`` (DPDD-like), ``mixed``.
        encoding: ``linear`` or ``srgb`` for every sample (None: linear for phone, sRGB otherwise),
            so one batch never mixes encodings. sRGB samples are the scene's stored values (its
            camera pipeline, quantisation and compression included), linear ones its linear values.
        grey: replicate the mean of the channels (Pixel 4 DP data is one green plane).
        device: render on this device (see :meth:`set_device`); None = the CPU, in ``__getitem__``.
        optics: also give each sample the scene's optics alone (``optics_sharp``, ``optics_combined``:
            linear, before the camera), for stages whose targets must not see noise or compression.
        scene_options: :class:`~dpcli.synth.scene.SceneConfig` fields (photos, fullframe_prob, isp...).
    """

    def __init__(self, length: int = 512, size: int = 128, augment_cfg: AugmentConfig | None = None,
                 camera: str = "phone", encoding: str | None = None, grey: bool = False,
                 device: str | torch.device | None = None, optics: bool = False, **scene_options: Any) -> None:
        from dpcli.synth.scene import SceneConfig

        self.length, self.size, self.grey, self.optics = length, size, grey, optics
        self.encoding = encoding or ("linear" if camera == "phone" else "srgb")
        if self.encoding not in ("linear", "srgb"):
            raise ValueError(f"encoding must be 'linear' or 'srgb', got {self.encoding!r}")
        self.augment_cfg = augment_cfg or AugmentConfig(crop=None)
        options = {"scale_radii": False, **scene_options}
        self.scene_cfg = SceneConfig(height=size, width=size, camera=camera, **options)
        self.render_device: torch.device | None = None
        self.set_device(device)

    @property
    def srgb(self) -> bool:
        return self.encoding == "srgb"

    def set_device(self, device: str | torch.device | None) -> None:
        """Render on ``device`` when it is a GPU: ``__getitem__`` (in loader workers) then only draws
        the scene and the main process renders the batch there (:meth:`materialise`)."""
        dev = torch.device(device) if device is not None else None
        self.render_device = dev if dev is not None and dev.type != "cpu" else None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | Key) -> Sample | PendingScene:
        from dpcli.synth.scene import prepare_scene

        index, seed = key if isinstance(key, tuple) else (key, key)
        prepared = prepare_scene(seed, self.scene_cfg)
        if self.render_device is not None:
            return PendingScene.pack(prepared, seed)
        return self._finish(prepared, seed, None)

    def _finish(self, prepared: Any, seed: int, device: torch.device | None) -> Sample:
        from dpcli.optics import linear_to_srgb
        from dpcli.synth.scene import finish_scene

        scene = finish_scene(prepared, device)
        if self.srgb and scene.output.startswith("srgb") and not self.grey:
            stored = {"left": scene.left, "right": scene.right, "combined": scene.combined, "target": scene.sharp}
            sample = {k: v.float().contiguous() for k, v in stored.items()}
        else:
            lin = scene.linear
            sample = {"left": lin["left"], "right": lin["right"], "combined": lin["combined"], "target": lin["sharp"]}
            if self.grey:
                sample = {k: v.mean(0, keepdim=True).expand(3, -1, -1) for k, v in sample.items()}
            if self.srgb:
                sample = {k: linear_to_srgb(v.clamp(0, 1)) for k, v in sample.items()}
            sample = {k: v.float().contiguous() for k, v in sample.items()}
        if self.optics:  # the optics alone, linear (no camera): what blur changed, for targets that must not see noise
            for key, value in scene.optics.items():
                sample[f"optics_{key}"] = (value.mean(0, keepdim=True).expand(3, -1, -1) if self.grey else value).float()
        sample["defocus"] = scene.defocus.float()
        if float(sample["defocus"].abs().max()) <= IN_FOCUS_PX:
            # in focus everywhere: nothing to undo, so the target is the capture itself (its noise,
            # JPEG and palette included): the network learns to return a sharp photo unchanged
            sample["target"] = sample["combined"].clone()
        return augment(sample, self.augment_cfg, random.Random(seed ^ 0x5EED))

    def materialise(self, batch: list[PendingScene], device: torch.device | None = None) -> Sample:
        """Render a batch of drawn scenes on ``device`` (default: the dataset's render device)."""
        device = device or self.render_device
        return collate([self._finish(p.unpack(device), p.seed, device) for p in batch])


# --------------------------------------------------------------------------- sampling

class StepBatchSampler(Sampler[list[Key]]):
    """Batches of ``(index, seed)`` keys for steps ``start_step .. total_steps``, DDP-sharded.

    Each epoch's order comes from :class:`~torch.utils.data.DistributedSampler` (``set_epoch``),
    so every rank gets a disjoint shard; the batch of step ``s`` depends only on (seed, s), which
    makes ``--resume`` continue exactly where the interrupted run was.
    """

    def __init__(self, length: int, batch_size: int, seed: int, total_steps: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        if length < batch_size * world_size:
            raise InputError(f"dataset has {length} samples, fewer than one global batch "
                             f"({batch_size} x {world_size} processes)")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.total_steps, self.start_step = total_steps, start_step
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.steps_per_epoch = (length // world_size) // batch_size

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def _epoch_order(self, epoch: int) -> list[int]:
        sampler = DistributedSampler(range(self.length), num_replicas=self.world_size, rank=self.rank,
                                     shuffle=self.shuffle, seed=self.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return list(sampler)

    def batch_for_step(self, step: int) -> list[Key]:
        epoch, offset = divmod(step, self.steps_per_epoch)
        order = self._epoch_order(epoch)[offset * self.batch_size:(offset + 1) * self.batch_size]
        return [(i, sample_seed(self.seed, epoch, i)) for i in order]

    def __iter__(self) -> Iterator[list[Key]]:
        order_epoch, order = -1, []
        for step in range(self.start_step, self.total_steps):
            epoch, offset = divmod(step, self.steps_per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, self._epoch_order(epoch)
            chunk = order[offset * self.batch_size:(offset + 1) * self.batch_size]
            yield [(i, sample_seed(self.seed, epoch, i)) for i in chunk]

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


def collate(samples: list[Sample]) -> Sample | list[PendingScene]:
    """Stack samples that share keys (a key missing in one sample is dropped from the batch);
    scenes still to be rendered on the device stay a list (:meth:`SynthDataset.materialise`)."""
    if isinstance(samples[0], PendingScene):
        return list(samples)
    keys = set(samples[0]).intersection(*samples[1:])
    return {k: torch.stack([s[k] for s in samples]) for k in sorted(keys)}


def fixed_batches(dataset: Dataset, count: int, batch_size: int, seed: int = 12345) -> list[Sample]:
    """A fixed validation set: ``count`` samples drawn with a fixed seed, in batches."""
    keys = [(i % len(dataset), sample_seed(seed, 0, i)) for i in range(count)]
    return [collate([dataset[k] for k in keys[j:j + batch_size]]) for j in range(0, count, batch_size)]


def build_dataset(data: str | Path, split: str = "train", *, crop: int | None, dp: bool,
                  recipe: PatchRecipe | None = None, synth_length: int = 512,
                  synth_options: dict[str, Any] | None = None, hflip: bool = True, vflip: bool = True,
                  rot90: bool | None = None, index_cache: Path | None = None,
                  srgb: bool | None = None) -> Dataset:
    """``data`` = a DPDD-layout folder or ``synth`` (on-the-fly scenes of ``crop`` px).

    ``srgb``: a folder's encoding (None: :func:`folder_is_linear` decides); both datasets expose
    it as ``dataset.srgb``.
    """
    if str(data) == "synth":
        cfg = AugmentConfig(crop=None, hflip=hflip, vflip=vflip, rot90=rot90, dp=dp)
        return SynthDataset(length=synth_length, size=crop or 128, augment_cfg=cfg, **(synth_options or {}))
    cfg = AugmentConfig(crop=crop, hflip=hflip, vflip=vflip, rot90=rot90, dp=dp)
    return FolderDataset(Path(data), split, cfg, recipe, index_cache=index_cache, srgb=srgb)


def to_device(batch: Sample, device: torch.device) -> Sample:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

