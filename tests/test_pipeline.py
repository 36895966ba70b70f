"""dpcli.pipeline: one path from file (or array) to pixels; each decision once, with what decided it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageCms

from dpcli.errors import InputError
from dpcli.io.images import read_image, write_image
from dpcli.io.pairs import discover_inputs
from dpcli.pipeline import Options, Source, Views, decide_encoding, decide_orientation, known_order, process
from tests.cli.conftest import dpdeblur  # noqa: F401  (the fixture)
from tests.methods.conftest import render_pair


def _synth_folder(root: Path, left: np.ndarray, right: np.ndarray, meta: bool = True) -> None:
    """A pair in the layout `dpdeblur synth` writes (DPDD folders + the renderer's meta JSON)."""
    write_image(root / "test_l" / "source" / "s_L.png", left, 16)
    write_image(root / "test_r" / "source" / "s_R.png", right, 16)
    if meta:
        (root / "test_c" / "meta").mkdir(parents=True)
        (root / "test_c" / "meta" / "s.json").write_text(json.dumps({"layers": [], "name": "s"}))


def test_renderer_pairs_keep_their_order_and_the_map_its_sign(tmp_path) -> None:
    """Content in FRONT of the focal plane (r < 0), correctly named: the scene prior alone would
    swap the views and flip the defocus map's sign; the renderer's known order keeps them."""
    _, left, right = render_pair(-4.0)
    _synth_folder(tmp_path / "known", left, right)
    _synth_folder(tmp_path / "unknown", left, right, meta=False)
    opts = Options("classical", defocus=True)
    known = process(discover_inputs([tmp_path / "known"])[0], Source(), opts)
    prior = process(discover_inputs([tmp_path / "unknown"])[0], Source(), opts)
    assert known.orientation.swapped is False and "dpdeblur synth" in known.provenance["orientation"]
    assert float(np.median(known.defocus)) < -1.5  # the true sign
    assert prior.orientation.swapped is True  # the prior (content behind focus) decides otherwise
    assert float(np.median(prior.defocus)) > 1.5


def test_precedence_user_then_camera_profile_then_data(tmp_path, monkeypatch) -> None:
    from dpcli.cameras import load_profile

    _, left, right = render_pair(-4.0)
    monkeypatch.setenv("DPDEBLUR_CAMERAS", str(tmp_path))
    (tmp_path / "mine.toml").write_text('name = "mine"\ndomain = "phone"\n[input]\nspace = "linear"\n'
                                        '[dual_pixel]\nleft_file = "left"\n')
    mine = load_profile("mine")
    views = Views.from_arrays(left, right)
    assert known_order(Source(profile=mine), views) == (False, "camera profile mine")
    o = decide_orientation(views, False, Source(profile=mine))
    assert not o.swapped and o.evidence == {}  # nothing measured when the source knows
    assert decide_orientation(views, False, Source(swap_lr=True, profile=mine)).swapped  # the user wins
    data = decide_orientation(views, False, Source())
    assert data.swapped and data.source == "disparity"  # the prior, from the cheapest evidence
    pixel4 = decide_orientation(views, False, Source(profile=load_profile("pixel4")))
    assert pixel4.swapped and pixel4.describe() == "swapped (camera profile pixel4)"


def test_api_runs_the_same_code_as_run(tmp_path, dpdeblur) -> None:
    """dpcli.deblur on the arrays of a file gives exactly the pixels `dpdeblur run` writes."""
    import dpcli

    _, left, right = render_pair(3.0, colour=True, seed=1)
    write_image(tmp_path / "in" / "p_L.png", left, 16)
    write_image(tmp_path / "in" / "p_R.png", right, 16)
    res = dpdeblur("run", tmp_path / "in", "-o", tmp_path / "out", "--method", "classical", "--json", "--threads", "1")
    assert res.code == 0, res.err
    written = read_image(tmp_path / "out" / "p.png").data
    views = [read_image(tmp_path / "in" / f"p_{s}.png").data for s in "LR"]
    api = dpcli.deblur(*views, srgb=True, method="classical")
    assert np.array_equal(np.round(np.clip(api.image, 0, 1) * 65535) / 65535, written)
    item = json.loads(res.out)["items"][0]["details"]
    assert item["orientation"] == api.info["orientation"] and item["encoding"] == "sRGB (16-bit colour file)"


class _Echo:
    """A single-image method that returns its input (and keeps it in ``seen``)."""

    def __new__(cls, seen):
        from dpcli.methods import Method

        class Echo(Method):
            name, needs_pair, space = "echo", False, "linear"

            def _deblur(self, left, right, *, kernels, defocus, focus):
                seen["image"] = left
                return left, None, {}

        return Echo()


def test_a_float_tiff_says_its_encoding_or_the_guess_is_a_note(tmp_path) -> None:
    """A float colour TIFF: its ICC profile decides (sRGB tone curve -> sRGB); with no colour hint it is
    read as linear light, and the note the summary shows says it was a guess and what flag undoes it."""
    import tifffile

    from dpcli.io.pairs import SingleInput

    image = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tifffile.imwrite(tmp_path / "plain.tif", image, photometric="rgb")
    tifffile.imwrite(tmp_path / "icc.tif", image, photometric="rgb", iccprofile=srgb_icc)
    plain = process(SingleInput("plain", tmp_path / "plain.tif"), Source(), Options(_Echo({})))
    assert plain.srgb is False and plain.notes == [
        "float file read as linear light (a guess: no colour hint in it), --srgb if it is sRGB-encoded"]
    icc = process(SingleInput("icc", tmp_path / "icc.tif"), Source(), Options(_Echo({})))
    assert icc.srgb is True and icc.provenance["encoding"] == "sRGB (float file, ICC profile: tone curve gamma 2.4)"
    assert icc.notes == ["float file read as sRGB-encoded (ICC profile: tone curve gamma 2.4), --linear if it is not"]
    told = process(SingleInput("plain", tmp_path / "plain.tif"), Source(srgb=True), Options(_Echo({})))
    assert told.srgb is True and told.notes == []  # the user said: nothing to note


def test_single_of_a_linear_pair_averages_in_linear_light(tmp_path) -> None:
    """--single on a 16-bit grey (linear) pair: the combined view is the plain mean, decided by the
    same encoding rule as the pair (it was once averaged as if sRGB)."""
    from dpcli.io.pairs import PairInput

    _, left, right = render_pair(3.0)
    write_image(tmp_path / "p_L.png", left, 16)
    write_image(tmp_path / "p_R.png", right, 16)
    item = PairInput("p", tmp_path / "p_L.png", tmp_path / "p_R.png")
    seen = {}
    done = process(item, Source(), Options(_Echo(seen), single=True))
    views = [read_image(p).data for p in (item.left, item.right)]
    assert done.srgb is False and done.provenance["encoding"] == "linear (16-bit grey file)"
    np.testing.assert_allclose(seen["image"], (views[0] + views[1]) / 2, atol=1e-7)


def test_arrays_need_their_encoding() -> None:
    _, left, right = render_pair(3.0)
    with pytest.raises(InputError, match="encoding of arrays"):
        decide_encoding(Source(), Views.from_arrays(left, right))
    assert decide_encoding(Source(srgb=False), Views.from_arrays(left, right)) == (False, "user")


def test_a_single_image_method_on_a_pair_is_refused_in_one_line() -> None:
    _, left, right = render_pair(3.0, colour=True)
    with pytest.raises(InputError, match="deblurs single images; add --single"):
        process(Views.from_arrays(left, right), Source(srgb=True), Options(_Echo({})))


def test_an_in_focus_pair_comes_back_as_its_own_combined_capture():
    """Colour pairs go to weights with a focus gate: where the pair is in focus the result is the
    source's combined capture when it ships one (DPDD *_c, combined/), else the views' mean."""
    import numpy as np

    from dpcli.methods import default_method
    from dpcli.pipeline import Source, Views, process
    from dpcli.synth.scene import make_test_scene

    method = default_method("dslr", True)
    # the default itself, or the network part a composite hands such a pair to
    parts = [method, *(method.part(n) for n in getattr(method, "parts", ()))]
    session = next((m.session for m in parts if getattr(m, "session", None) is not None), None)
    if session is None or "focus_gate" not in session().loaded.post:
        pytest.skip("the shipped colour-pair default has no focus gate")
    sharp = make_test_scene(64, seed=5).sharp.numpy()
    capture = np.clip(sharp * 0.97 + 0.01, 0, 1).astype(np.float32)  # another exposure of the same scene
    with_capture = process(Views(sharp, sharp, 8, "files", combined=capture), Source(srgb=True))
    assert np.allclose(with_capture.image, capture, atol=1e-6)
    assert "combined capture" in with_capture.provenance["post"]
    without = process(Views(sharp, sharp, 8, "files"), Source(srgb=True))
    assert np.array_equal(without.image, np.clip(sharp, 0, 1)) and "post" not in without.provenance
