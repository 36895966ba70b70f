"""dpcli.methods.post: the named post steps a weights entry lists and a network method composes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpcli.engine import Deblurrer
from dpcli.errors import ModelError
from dpcli.methods.post import (STEPS, BlurCheck, BlurGate, CorrectionGate, Endorse, FocusGate, FocusPart, KeepMean,
                                Post, PostInput, find_step, parse_post, post_for, post_step)
from dpcli.models import create_model
from dpcli.models.loading import LoadedModel
from dpcli.models.registry import list_pretrained, manifest_path, model_info, post_from_flags, with_post_list
from dpcli.synth.scene import make_test_scene


def _session(arch: str, post: tuple[str, ...] = (), net=None) -> Deblurrer:
    torch.manual_seed(0)
    net = create_model(arch).eval() if net is None else net
    return Deblurrer(LoadedModel(net, arch, model_info(arch), post=post, space="srgb"), device="cpu", tile=0)


def _pair(post: tuple[str, ...] = ()) -> Deblurrer:
    return _session("bambnet_deblur_test", post)


def _single(post: tuple[str, ...] = ()) -> Deblurrer:
    return _session("defocusgan_generator_test", post)


def _run(session: Deblurrer, *views):
    """What a network method gives: the network, then its weights' post steps."""
    if len(views) == 2:
        return session.deblur_pair(*views, post=post_for(session))
    return session.deblur_image(views[0], post=post_for(session))


# --- the post list ------------------------------------------------------------------------------

class TestParse:
    def test_each_step_reads_back_as_written(self) -> None:
        text = ["keep_mean:32", "focus_gate", "endorse:a.b", "correction_gate", "blur_gate:c.d", "focus_part:e.f",
                "blur_check"]
        steps = parse_post(text)
        assert [s.spec for s in steps] == text
        assert steps == (KeepMean(32.0), FocusGate(), Endorse("a.b"), CorrectionGate(), BlurGate("c.d"),
                         FocusPart("e.f"), BlurCheck())
        assert [s.name for s in steps] == list(STEPS)
        assert post_step("keep_mean:2.5").px == 2.5 and post_step("endorse:C:/w/x.safetensors").weights == \
            "C:/w/x.safetensors"

    def test_an_unknown_step_is_one_line_naming_the_valid_ones(self) -> None:
        with pytest.raises(ModelError) as info:
            parse_post(["keep_mean:32", "sharpen"])
        text = str(info.value)
        assert "\n" not in text and "unknown post step 'sharpen'" in text
        assert "keep_mean:PX" in text and "endorse:ARCH.TAG" in text and "focus_gate" in text

    @pytest.mark.parametrize("text, form", [("keep_mean", "keep_mean:PX"), ("focus_gate:1", "focus_gate"),
                                            ("endorse", "endorse:ARCH.TAG"), ("blur_gate:", "blur_gate:ARCH.TAG")])
    def test_a_missing_or_unexpected_argument_says_the_form(self, text, form) -> None:
        with pytest.raises(ModelError, match=f"write it as {form}"):
            post_step(text)

    @pytest.mark.parametrize("px", ["0", "-3", "wide"])
    def test_keep_mean_needs_a_positive_radius(self, px) -> None:
        with pytest.raises(ModelError, match="above 0"):
            post_step(f"keep_mean:{px}")

    def test_find_step(self) -> None:
        assert find_step(["keep_mean:32", "focus_gate"], "focus_gate") == FocusGate()
        assert find_step(["keep_mean:32"], "focus_gate") is None


class TestOldFlags:
    """Manifests written before the post list name five flags; they load to the same list."""

    def test_the_five_flags_read_as_the_post_list_in_the_order_the_engine_ran_them(self) -> None:
        old = {"name": "x.y", "keep_mean_px": 32.0, "focus_gate": False, "blur_gate": "b.z", "correction_gate": True,
               "endorse": "e.w"}
        assert with_post_list(old) == {"name": "x.y", "post": ("keep_mean:32", "endorse:e.w", "correction_gate",
                                                                "blur_gate:b.z")}
        assert post_from_flags(keep_mean_px=32.0, focus_gate=True) == ("keep_mean:32", "focus_gate")
        assert post_from_flags() == () and post_from_flags(keep_mean_px=0.0, endorse="") == ()

    def test_an_old_manifest_loads_to_the_same_post_list(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
        common = {"file": "f.safetensors", "sha256": "0" * 64}
        old = {**common, "name": "bambnet_deblur_test.old", "keep_mean_px": 32.0, "focus_gate": True,
               "correction_gate": False, "endorse": "", "blur_gate": ""}
        new = {**common, "name": "bambnet_deblur_test.new", "post": ["keep_mean:32", "focus_gate"]}
        (tmp_path / "manifest.json").write_text(json.dumps({"weights": [old, new]}))
        got = {c.name: c.post for c in list_pretrained()}
        assert got == {"bambnet_deblur_test.old": ("keep_mean:32", "focus_gate"),
                       "bambnet_deblur_test.new": ("keep_mean:32", "focus_gate")}

    def test_both_forms_at_once_are_refused(self, tmp_path, monkeypatch) -> None:
        monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
        entry = {"name": "a.b", "file": "f", "sha256": "0", "post": ["keep_mean:32"], "focus_gate": True}
        (tmp_path / "manifest.json").write_text(json.dumps({"weights": [entry]}))
        with pytest.raises(ModelError, match="not both"):
            list_pretrained()


def test_every_shipped_post_list_parses() -> None:
    for entry in json.loads(manifest_path().read_text())["weights"]:
        parse_post(entry.get("post", []))


# --- each step, with numbers --------------------------------------------------------------------

def test_keep_mean_restores_a_shifted_local_mean() -> None:
    reference = torch.rand(1, 3, 48, 64)
    shifted = reference + 0.2  # a network's brightness drift
    x = PostInput(reference, None, srgb=True)
    kept = KeepMean(8.0)(shifted.clone(), x)
    torch.testing.assert_close(kept, reference, atol=1e-5, rtol=0)  # a uniform drift goes entirely
    assert float((shifted - reference).mean()) == pytest.approx(0.2)


def test_gates_only_blend_between_the_input_and_the_output() -> None:
    """Every gate keeps ``reference + gate * (out - reference)``: a closed gate gives the input back."""
    sharp = make_test_scene(64, seed=3).sharp[None]
    out = sharp + 0.1 * torch.randn_like(sharp)
    x = PostInput(sharp, (sharp, sharp), srgb=True)
    assert torch.equal(FocusGate()(out.clone(), x), sharp)  # an in-focus pair: gate shut everywhere


def test_focus_gate_returns_an_in_focus_pair_unchanged() -> None:
    sharp = make_test_scene(64, seed=3).sharp.numpy()
    gated = _run(_pair(("focus_gate",)), sharp, sharp)
    assert np.array_equal(gated, np.clip(sharp, 0, 1))
    plain = _run(_pair(), sharp, sharp)
    assert np.abs(plain - sharp).max() > 1e-3  # the untrained net alone does change it


def test_focus_gate_keeps_the_correction_where_the_pair_is_blurred() -> None:
    s = make_test_scene(96, seed=1, max_radius=6.0, focus_mode="front")
    left, right, combined = s.left.numpy(), s.right.numpy(), ((s.left + s.right) / 2).numpy()
    plain, gated = _run(_pair(), left, right), _run(_pair(("focus_gate",)), left, right)
    blurred = s.defocus[0].numpy() > 3
    kept = np.abs(gated - combined)[:, blurred].mean() / np.abs(plain - combined)[:, blurred].mean()
    assert kept > 0.6


def test_focus_gate_falls_back_to_the_capture_where_the_pair_is_in_focus() -> None:
    sharp = make_test_scene(48, seed=2).sharp[None]
    capture = sharp * 0.97 + 0.01
    image = sharp.clone()  # what the gated network gives an in-focus pair: its mean view
    back = FocusGate().fall_back(image, sharp, sharp, capture, srgb=True)
    torch.testing.assert_close(back, capture, atol=1e-6, rtol=0)


def test_blur_check_keeps_a_faithful_deblur_and_shrinks_an_over_deblurred_one() -> None:
    """A pair rendered with hard half discs (the check's blur model): its sharp image comes back bit
    for bit; an image deblurred by twice the pair's blur keeps only the share its blur explains."""
    from dpcli.classical.blind import wiener_deconvolve
    from dpcli.classical.consistency import check_pair
    from dpcli.optics import disk_kernel
    from dpcli.synth.degrade import dp_pair

    sharp = make_test_scene(128, seed=5).sharp[None]
    left, right = dp_pair(sharp, torch.full((1, 1, 128, 128), 3.0))
    x = PostInput(((left + right) / 2), (left, right), srgb=False)
    assert torch.equal(BlurCheck()(sharp.clone(), x), sharp)
    over = wiener_deconvolve(x.reference, disk_kernel(torch.tensor([6.0]))[0], 1e-3).clamp(0, 1)
    share = check_pair(over[0], left[0], right[0], srgb=False).share
    checked = BlurCheck()(over.clone(), x)
    torch.testing.assert_close(checked, x.reference + share * (over - x.reference), atol=1e-6, rtol=0)
    assert float(((checked - sharp) ** 2).mean()) < float(((over - sharp) ** 2).mean()) / 2


def test_single_image_steps_skip_pairs_and_the_focus_gate_skips_single_images() -> None:
    sharp = make_test_scene(48, seed=4).sharp.numpy()
    for post in (("correction_gate",), ("endorse:nothing.loaded",), ("blur_gate:nothing.loaded",),
                 ("focus_part:nothing.loaded",)):
        assert np.array_equal(_run(_pair(post), sharp, sharp), _run(_pair(), sharp, sharp))
    assert np.array_equal(_run(_single(("focus_gate",)), sharp), _run(_single(), sharp))
    assert np.array_equal(_run(_single(("blur_check",)), sharp), _run(_single(), sharp))


def _blurnet_file(tmp_path, value: float) -> str:
    """A BlurNet that reads the probability ``value`` everywhere (its head's bias), saved as our weights."""
    from dpcli.train.export import save_fp16_safetensors

    net = create_model("blurnet_test")
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.constant_(net.head.bias, float(np.log(value / (1 - value))))  # the head computes logits
    return str(save_fp16_safetensors(net, "blurnet_test", tmp_path / f"blur_{value}.safetensors"))


def test_blur_gate_returns_what_it_reads_as_sharp_unchanged_and_corrects_the_blurred(tmp_path) -> None:
    from dpcli.models.blurnet import GATE_SETTINGS

    image = make_test_scene(64, seed=3).sharp.numpy()
    plain = _run(_single(), image)
    assert np.abs(plain - image).max() > 1e-3  # the untrained net alone does change it
    sharp = _run(_single((f"blur_gate:{_blurnet_file(tmp_path, GATE_SETTINGS['low'] / 2)}",)), image)
    assert np.array_equal(sharp, np.clip(image, 0, 1))  # reads "in focus" everywhere
    blurred = _run(_single((f"blur_gate:{_blurnet_file(tmp_path, (GATE_SETTINGS['high'] + 1) / 2)}",)), image)
    np.testing.assert_allclose(blurred, plain, atol=1e-6)


def test_focus_part_returns_a_photo_with_nothing_in_focus_unchanged_and_keeps_one_partly_in_focus(tmp_path) -> None:
    from dpcli.optics import IN_FOCUS_DEFAULTS

    image = make_test_scene(64, seed=3).sharp.numpy()
    plain = _run(_single(), image)
    assert np.abs(plain - image).max() > 1e-3  # the untrained net alone does change it
    soft = _run(_single((f"focus_part:{_blurnet_file(tmp_path, 0.9)}",)), image)  # nothing read in focus
    assert np.array_equal(soft, np.clip(image, 0, 1))
    sharp = _run(_single((f"focus_part:{_blurnet_file(tmp_path, IN_FOCUS_DEFAULTS['below'] / 2)}",)), image)
    np.testing.assert_allclose(sharp, plain, atol=1e-6)


def test_focus_part_decides_per_photo_of_a_batch(tmp_path) -> None:
    """A batch of a textured photo and a flat one (no detail: share 0): only the first keeps its
    correction."""
    textured = torch.from_numpy(make_test_scene(64, seed=3).sharp.numpy())[None]
    flat = torch.full_like(textured, 0.4)
    ref = torch.cat([textured, flat])
    out = ref + 0.05 * torch.randn_like(ref)
    x = PostInput(ref, None, True)
    got = FocusPart(_blurnet_file(tmp_path, 0.1))(out.clone(), x)
    assert torch.equal(got[0], out[0]) and torch.equal(got[1], ref[1])


def test_correction_gate_returns_a_sharp_photo_closer_to_itself() -> None:
    from dpcli.metrics.image import psnr

    image = make_test_scene(96, seed=5, max_radius=0.01).sharp.numpy().clip(0, 1)

    def session(post: tuple[str, ...]) -> Deblurrer:
        torch.manual_seed(0)
        net = create_model("defocusgan_generator_test", residual=True).eval()
        torch.nn.init.normal_(net.tail.weight, std=0.002)  # a small "re-drawing" of everything
        return _session("defocusgan_generator_test", post, net)

    plain, gated = _run(session(()), image), _run(session(("correction_gate",)), image)
    assert psnr(plain, image) < 60 and psnr(gated, image) > psnr(plain, image) + 6


def test_endorse_keeps_only_the_correction_the_second_network_makes_too(tmp_path) -> None:
    """A second network that changes nothing drops the whole correction; the same network as its own
    second opinion keeps it."""
    from dpcli.train.export import save_fp16_safetensors

    image = make_test_scene(96, seed=5, max_radius=0.01).sharp.numpy().clip(0, 1)

    def net(redraw: float):
        torch.manual_seed(0)
        m = create_model("defocusgan_generator_test", residual=True).eval()
        torch.nn.init.normal_(m.tail.weight, std=redraw)
        if redraw == 0:
            torch.nn.init.zeros_(m.tail.bias)
        return m

    def session(post: tuple[str, ...]) -> Deblurrer:
        return _session("defocusgan_generator_test", post, net(0.01).half().float())

    still = save_fp16_safetensors(net(0.0), "defocusgan_generator_test", tmp_path / "still.safetensors")
    same = save_fp16_safetensors(net(0.01), "defocusgan_generator_test", tmp_path / "same.safetensors")
    plain = _run(session(()), image)
    assert np.abs(plain - image).max() > 1e-3  # the first network does change the photo
    assert np.array_equal(_run(session((f"endorse:{still}",)), image), image)
    endorsed = _run(session((f"endorse:{same}",)), image)
    # kept: within a tenth of the correction (where the change has no fine detail, eps closes it partly)
    assert np.abs(endorsed - plain).mean() < 0.1 * np.abs(plain - image).mean()


# --- composing ----------------------------------------------------------------------------------

def test_steps_run_in_list_order_and_gates_false_keeps_only_the_steps_that_are_not_gates() -> None:
    reference = torch.full((1, 1, 8, 8), 0.5)
    out = torch.full((1, 1, 8, 8), 0.9)
    views = [reference]
    post = Post(parse_post(["keep_mean:4", "correction_gate"]))
    assert torch.allclose(post(out.clone(), views, gates=False), reference)  # local mean kept, no gate
    assert torch.allclose(Post(())(out.clone() + 1, views), torch.ones_like(out))  # clamped to [0, 1]


def test_each_step_is_timed_as_a_stage_and_the_network_pass_too() -> None:
    from dpcli.timing import recording

    sharp = make_test_scene(32, seed=1).sharp.numpy()
    with recording() as rec:
        _run(_pair(("keep_mean:8", "focus_gate")), sharp, sharp)
    assert list(rec.stages) == ["network bambnet_deblur_test", "post keep_mean", "post focus_gate"]


def test_a_method_runs_its_weights_post_list(tmp_path) -> None:
    """NetworkMethod: the engine, then the weights entry's post list (here read from the session)."""
    from dpcli.methods.network import NetworkMethod

    session = _pair(("focus_gate",))
    method = NetworkMethod("bambnet_deblur_test.x", "deblur_pair")
    method.session = lambda: session  # the loaded weights, without a manifest
    sharp = make_test_scene(48, seed=6).sharp.numpy()
    assert method.post().steps == (FocusGate(),)
    out = method.deblur(sharp, sharp, srgb=True).image
    assert np.allclose(out, np.clip(sharp, 0, 1), atol=1e-6)  # sRGB in and out: the gate shut


def test_a_method_skips_its_network_for_a_photo_a_step_declines_before_it_runs(tmp_path) -> None:
    """focus_part reads the input alone: with nothing in focus the network is not run at all and the
    note says why; with a part in focus the result is the full path's (network, then every step)."""
    from dpcli.methods.network import NetworkMethod

    image = make_test_scene(64, seed=3).sharp.numpy()
    soft = _single((f"focus_part:{_blurnet_file(tmp_path, 0.9)}",))
    method = NetworkMethod("defocusgan_generator_test.x", "deblur_single")
    method.session = lambda: soft
    soft.run = lambda *a, **k: (_ for _ in ()).throw(AssertionError("the network ran"))
    out = method.deblur(image, None, srgb=True)
    assert np.array_equal(out.image, np.clip(image, 0, 1)) and "no part of the photo reads in focus" in out.info["note"]
    sharp = _single((f"focus_part:{_blurnet_file(tmp_path, 0.1)}", "correction_gate"))
    method.session = lambda: sharp
    np.testing.assert_allclose(method.deblur(image, None, srgb=True).image, _run(sharp, image), atol=1e-6)
    assert "note" not in method.deblur(image, None, srgb=True).info


def _tall(seed: int, h: int = 1400, w: int = 48) -> torch.Tensor:
    """A tall textured frame: the steps run it in several row strips."""
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand(1, 3, h, w, generator=g), 5, 1, 2)


def test_steps_run_on_row_strips_give_the_full_frame_result():
    """The steps compute their gates and local means strip by strip (dpcli.optics.windows.by_rows); the
    context each strip reads must cover what the operator reaches, or rows near strip edges change."""
    from dpcli.optics import correction_gate
    from dpcli.optics.disparity import focus_gate
    from dpcli.optics.windows import restore_local_mean

    ref = _tall(0)
    out = ref + torch.linspace(0, 1, ref.shape[-2])[:, None] * (_tall(1) - ref)  # the gates open part-way
    left, right = ref, 0.5 * ref + 0.5 * _tall(2)
    single = PostInput(ref, None, True)
    keep = KeepMean(32.0)(out.clone(), single)
    assert float((keep - restore_local_mean(out, ref, 32.0)).abs().max()) < 1e-6
    corrected = CorrectionGate()(out.clone(), single)
    assert float((corrected - (ref + correction_gate(ref, out) * (out - ref))).abs().max()) < 1e-6
    gate = FocusGate.gate_map(left, right, srgb=True)
    assert float((gate - focus_gate(left, right, srgb=True)).abs().max()) < 1e-6
