"""Network methods: the authors' BaMBNet checkpoint given to run is the deblurring net (no --arch)
and reproduces their output; shipped weights carry their domain and measured gain."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.methods import get_method


def test_authors_bambnet_checkpoint_is_the_deblurring_net(reference_dir) -> None:
    from safetensors.torch import load_file

    io = load_file(str(reference_dir / "bambnet_deblur" / "official_state_dict.safetensors"))
    assert any(k.startswith("tail_hard.") for k in io)  # the authors' key format
    method = get_method("bambnet", weights=reference_dir / "bambnet_deblur" / "official_state_dict.safetensors",
                        device="cpu", tile=0)
    assert method.needs_pair and method.space == "srgb" and method.task == "deblur_pair"
    # these reference weights are untrained (seed 0) and so fail the resemblance check real ones pass
    method.check_output = False
    io = load_file(str(reference_dir / "bambnet_deblur" / "io.safetensors"))
    # the user's arrays are RGB; the reference's are the authors' BGR
    left, right = io["left"][0].flip(0).numpy(), io["right"][0].flip(0).numpy()
    out = method.deblur(left, right, srgb=True).image
    ref = io["official_output"][0].flip(0).numpy()
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-5


def test_shipped_weights_carry_domain_space_and_gain_of_their_manifest_entry() -> None:
    """Every shipped deblurring entry becomes a method with the manifest's domain, space and gains,
    plus what its default test-time passes measured (read from the manifest and measured.json, so
    shipping better weights changes no test)."""
    from dpcli.domains import DOMAIN_SCENES
    from dpcli.methods.network import shipped_network_names
    from dpcli.methods.tta import _measured_tta, tta_passes
    from dpcli.models.registry import list_pretrained

    entries = {cfg.name: cfg for cfg in list_pretrained()}
    for name in shipped_network_names():
        cfg, method = entries[name], get_method(name)
        assert method.domains == tuple(cfg.domain.split(",")) and method.space == (cfg.space or "srgb")
        for domain, gain in method.measured.items():
            key = DOMAIN_SCENES[domain]
            passes = tta_passes(name, domain)
            extra = _measured_tta(name)[domain]["passes"][str(passes)]["gain_db"] if passes > 1 else 0.0
            assert gain == pytest.approx(cfg.metrics[f"{key}_psnr"] - cfg.metrics[f"{key}_psnr_input"] + extra)


def test_every_second_opinion_a_shipped_entry_names_is_shipped_single_image_weights_of_its_domain() -> None:
    """A manifest ``endorse:ARCH.TAG`` post step points at registered single-image weights for the
    same domain and input space, so `run` can load it (read from the manifest: any entry that has one)."""
    from dpcli.methods.post import find_step
    from dpcli.models.registry import list_pretrained, model_info

    entries = {cfg.name: cfg for cfg in list_pretrained()}
    for cfg in entries.values():
        step = find_step(cfg.post, "endorse")
        if step is None:
            continue
        second = entries[step.weights]
        assert model_info(cfg.arch).task == model_info(second.arch).task == "deblur_single"
        assert second.domain == cfg.domain and (second.space or "srgb") == (cfg.space or "srgb")
        assert find_step(second.post, "endorse") is None  # a second opinion is one network, not a chain


def test_shipped_weights_say_whether_they_spare_sharp_photos_from_their_harm_figure() -> None:
    """``spares_sharp`` of a shipped network comes from its manifest entry's harm figure (40 dB mean,
    37 dB each: sharp photos through it against themselves); an entry without one counts as sparing."""
    from dpcli.methods.network import sharp_spared, shipped_network_names
    from dpcli.models.registry import list_pretrained

    assert sharp_spared({}) and sharp_spared({"sharp_psnr": 41.0, "sharp_psnr_min": 37.0})
    assert not sharp_spared({"sharp_psnr": 41.0, "sharp_psnr_min": 36.9})
    assert not sharp_spared({"sharp_psnr": 39.9, "sharp_psnr_min": 38.0})
    entries = {cfg.name: cfg for cfg in list_pretrained()}
    for name in shipped_network_names():
        assert get_method(name).spares_sharp == sharp_spared(entries[name].metrics)


def test_default_for_single_colour_photos_keeps_a_nearly_sharp_photo_and_restores_a_blurred_one() -> None:
    """Never worse: the bundled nearly sharp scene_c (39.8 dB against its ground truth as given) comes
    back at 37 dB or more through whatever `run` picks for single colour photos, and the blurred
    scene_d still gains at least 2 dB."""
    from pathlib import Path

    from dpcli.io.images import read_image
    from dpcli.methods import default_method
    from dpcli.metrics.image import psnr

    root = Path(__file__).resolve().parents[2] / "examples"
    method = default_method("dslr", False)
    for name, floor in (("scene_c", 37.0), ("scene_d", None)):
        image = read_image(root / "single" / f"{name}.png").data
        gt = read_image(root / "ground_truth" / f"{name}.png").data
        out = np.clip(method.deblur(image, None, srgb=True).image, 0, 1)
        if floor is not None:
            assert psnr(out, gt) >= floor
        else:
            assert psnr(out, gt) > psnr(image, gt) + 2.0


def test_precision_auto_runs_bf16_only_for_weights_measured_harmless_on_a_cpu_that_has_it(monkeypatch, tmp_path) -> None:
    """--precision auto: bf16 for shipped weights whose measured bf16 loss is within BF16_MAX_LOSS_DB
    (measured.json "bf16"), on a CPU with native bf16; fp32 for the rest and for explicit fp32; the
    post steps' own networks run in the first network's precision."""
    import dpcli.methods.builtin as builtin
    from dpcli.methods.composite import DSLR_NET
    from dpcli.methods.network import BF16_MAX_LOSS_DB, bf16_harmless

    single = "defocusgan_generator_small.dslr-consensus"
    record = {"bf16": {DSLR_NET: {"dslr": {"mean_db": -0.003, "worst_db": -BF16_MAX_LOSS_DB / 2}},
                       single: {"dslr": {"mean_db": 0.0, "worst_db": -5 * BF16_MAX_LOSS_DB}}}}
    monkeypatch.setattr(builtin, "_measured", lambda: record)
    assert bf16_harmless(DSLR_NET) and not bf16_harmless(single) and not bf16_harmless("never_measured.tag")
    monkeypatch.setenv("DPDEBLUR_BF16", "1")
    assert get_method(DSLR_NET, device="cpu").session().precision == "bf16"
    assert get_method(DSLR_NET, device="cpu", precision="fp32").session().precision == "fp32"
    assert get_method(single, device="cpu").session().precision == "fp32"
    monkeypatch.setenv("DPDEBLUR_BF16", "0")
    assert get_method(DSLR_NET, device="cpu").session().precision == "fp32"
    # a post step's own network (an endorser, a BlurNet) runs in the first network's precision
    from dpcli.methods.post import post_for

    assert post_for(get_method(DSLR_NET, device="cpu", precision="bf16").session()).precision == "bf16"
