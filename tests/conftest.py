"""Shared fixtures. Real data lives outside the repo; tests find it through DPDEBLUR_SHARED."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def _shared_dir() -> Path | None:
    value = os.environ.get("DPDEBLUR_SHARED")
    if value and Path(value).is_dir():
        return Path(value)
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """``DPDEBLUR_SHARED_ONLY=1``: only the tests that read the real data (CI's second pass, after the
    README's test command has run every test without it)."""
    if os.environ.get("DPDEBLUR_SHARED_ONLY"):
        keep = [i for i in items if "shared_dir" in getattr(i, "fixturenames", ())]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (papers, reference, data); skips the test where it is absent."""
    path = _shared_dir()
    if path is None:
        pytest.skip("DPDEBLUR_SHARED not set (real data and reference checkpoints are not in the repo)")
    return path


@pytest.fixture(scope="session")
def pixel4_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "pixel4"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    path = shared_dir / "reference"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    """Random weights of the tiny ``*_test`` BaMBNet and DefocusGAN networks, saved as safetensors."""
    from dpcli.models import create_model
    from dpcli.models.loading import save_weights

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("weights")
    out = {}
    for arch in ("bambnet_deblur_test", "bambnet_coc_test", "defocusgan_generator_test",
                 "defocusgan_defocusnet_test"):
        out[arch] = save_weights(create_model(arch), arch, d / f"{arch}.safetensors")
    return out
