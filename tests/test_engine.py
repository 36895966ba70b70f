"""The inference engine's post stages (dpcli.engine.Deblurrer._post): the focus gate of DP weights."""
import json

import numpy as np
import pytest
import torch

from dpcli.engine import Deblurrer
from dpcli.models.loading import LoadedModel
from dpcli.models import create_model
from dpcli.models.registry import manifest_path, model_info
from dpcli.synth.scene import make_test_scene


def _session(focus_gate: bool) -> Deblurrer:
    torch.manual_seed(0)
    net = create_model("bambnet_deblur_test").eval()
    loaded = LoadedModel(net, "bambnet_deblur_test", model_info("bambnet_deblur_test"), focus_gate=focus_gate,
                         space="srgb")
    return Deblurrer(loaded, device="cpu", tile=0)


def test_focus_gate_returns_an_in_focus_pair_unchanged():
    sharp = make_test_scene(64, seed=3).sharp.numpy()
    gated = _session(True).deblur_pair(sharp, sharp)
    assert np.array_equal(gated, np.clip(sharp, 0, 1))
    plain = _session(False).deblur_pair(sharp, sharp)
    assert np.abs(plain - sharp).max() > 1e-3  # the untrained net alone does change it


def test_focus_gate_keeps_the_correction_where_the_pair_is_blurred():
    s = make_test_scene(96, seed=1, max_radius=6.0, focus_mode="front")
    left, right, combined = s.left.numpy(), s.right.numpy(), ((s.left + s.right) / 2).numpy()
    plain, gated = _session(False).deblur_pair(left, right), _session(True).deblur_pair(left, right)
    blurred = s.defocus[0].numpy() > 3
    kept = np.abs(gated - combined)[:, blurred].mean() / np.abs(plain - combined)[:, blurred].mean()
    assert kept > 0.6


def test_shipped_dp_weights_with_the_gate_are_dslr_and_srgb():
    """Where the manifest turns the gate on, the entry says which encoding its views are measured in."""
    for entry in json.loads(manifest_path().read_text())["weights"]:
        if entry.get("focus_gate"):
            assert entry["space"] in ("srgb", "linear") and entry["input_recipe"] != "C"


# --- the blur gate of single-image weights (a BlurNet reads where the photo is blurred) -----------

def _blurnet_file(tmp_path, value: float) -> str:
    """A BlurNet that reads the probability ``value`` everywhere (its head's bias), saved as our weights."""
    from dpcli.train.export import save_fp16_safetensors

    net = create_model("blurnet_test")
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.constant_(net.head.bias, float(np.log(value / (1 - value))))  # the head computes logits
    return str(save_fp16_safetensors(net, "blurnet_test", tmp_path / f"blur_{value}.safetensors"))


def _single(blur_gate: str = "") -> Deblurrer:
    torch.manual_seed(0)
    net = create_model("defocusgan_generator_test").eval()
    loaded = LoadedModel(net, "defocusgan_generator_test", model_info("defocusgan_generator_test"),
                         space="srgb", blur_gate=blur_gate)
    return Deblurrer(loaded, device="cpu", tile=0)


def test_blur_gate_returns_what_it_reads_as_sharp_unchanged_and_corrects_the_blurred(tmp_path):
    from dpcli.models.blurnet import GATE_SETTINGS

    image = make_test_scene(64, seed=3).sharp.numpy()
    plain = _single().deblur_image(image)
    assert np.abs(plain - image).max() > 1e-3  # the untrained net alone does change it
    sharp = _single(_blurnet_file(tmp_path, GATE_SETTINGS["low"] / 2)).deblur_image(image)  # reads "in focus"
    assert np.array_equal(sharp, np.clip(image, 0, 1))
    blurred = _single(_blurnet_file(tmp_path, (GATE_SETTINGS["high"] + 1) / 2)).deblur_image(image)
    np.testing.assert_allclose(blurred, plain, atol=1e-6)


def test_blur_reading_comes_back_in_the_callers_layout(tmp_path):
    from dpcli.engine import blur_session

    session = blur_session(_blurnet_file(tmp_path, 0.25), device="cpu")
    image = make_test_scene(40, seed=2).sharp.numpy()
    reading = session.estimate_blur(image.transpose(1, 2, 0))
    assert reading.shape == (40, 40) and np.allclose(reading, 0.25, atol=1e-3)


def test_correction_gate_returns_a_sharp_photo_closer_to_itself():
    from dpcli.metrics.image import psnr

    image = make_test_scene(96, seed=5, max_radius=0.01).sharp.numpy().clip(0, 1)

    def session(gate: bool) -> Deblurrer:
        torch.manual_seed(0)
        net = create_model("defocusgan_generator_test", residual=True).eval()
        torch.nn.init.normal_(net.tail.weight, std=0.002)  # a small "re-drawing" of everything
        loaded = LoadedModel(net, "defocusgan_generator_test", model_info("defocusgan_generator_test"),
                             space="srgb", correction_gate=gate)
        return Deblurrer(loaded, device="cpu", tile=0)

    plain, gated = session(False).deblur_image(image), session(True).deblur_image(image)
    assert psnr(plain, image) < 60 and psnr(gated, image) > psnr(plain, image) + 6


def test_endorse_keeps_only_the_correction_the_second_network_makes_too(tmp_path):
    """The engine's endorsement post stage (PretrainedCfg.endorse): a second network that changes
    nothing drops the whole correction; the same network as its own second opinion keeps it."""
    from dpcli.train.export import save_fp16_safetensors

    image = make_test_scene(96, seed=5, max_radius=0.01).sharp.numpy().clip(0, 1)

    def net(redraw: float):
        torch.manual_seed(0)
        m = create_model("defocusgan_generator_test", residual=True).eval()
        torch.nn.init.normal_(m.tail.weight, std=redraw)
        if redraw == 0:
            torch.nn.init.zeros_(m.tail.bias)
        return m

    def session(second: str) -> Deblurrer:
        loaded = LoadedModel(net(0.01).half().float(), "defocusgan_generator_test",
                             model_info("defocusgan_generator_test"), space="srgb", endorse=second)
        return Deblurrer(loaded, device="cpu", tile=0)

    still = save_fp16_safetensors(net(0.0), "defocusgan_generator_test", tmp_path / "still.safetensors")
    same = save_fp16_safetensors(net(0.01), "defocusgan_generator_test", tmp_path / "same.safetensors")
    plain = session("").deblur_image(image)
    assert np.abs(plain - image).max() > 1e-3  # the first network does change the photo
    assert np.array_equal(session(str(still)).deblur_image(image), image)
    endorsed = session(str(same)).deblur_image(image)
    # kept: within a tenth of the correction (where the change has no fine detail, eps closes it partly)
    assert np.abs(endorsed - plain).mean() < 0.1 * np.abs(plain - image).mean()
