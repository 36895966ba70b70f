"""Camera profiles: shipped ones load, users add theirs, bad files fail in one line, and a
profile's values become the defaults of the flags not given."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.cameras import list_profiles, load_profile
from dpcli.cli.inputs import resolve_input
from dpcli.cli.options import InputOptions
from dpcli.errors import InputError


def test_shipped_profiles() -> None:
    pixel = load_profile("Pixel-4")  # alias, any case
    assert pixel.name == "pixel4" and pixel.black_level == 1024 and pixel.white_level == 16383
    assert pixel.space == "linear" and pixel.domain == "phone" and pixel.swap_hint is True
    canon = load_profile("canon")
    assert canon.srgb and canon.domain == "dslr" and canon.swap_hint is None
    assert {p.name for p in list_profiles()} >= {"pixel4", "canon-eos-5d-mark-iv", "generic-srgb"}


def test_user_profile_overrides_and_resolves_paths(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DPDEBLUR_CAMERAS", str(tmp_path))
    (tmp_path / "cal").mkdir()
    (tmp_path / "pixel4.toml").write_text(
        'name = "pixel4"\ndomain = "phone"\n[input]\nkind = "raw-planes"\nblack_level = 64\n'
        '[dual_pixel]\nleft_file = "left"\nfocus = "back"\n[calibration]\nkernels = "cal"\n')
    mine = load_profile("pixel4")
    assert not mine.shipped and mine.black_level == 64 and mine.focus == "back" and mine.swap_hint is False
    assert mine.kernels == tmp_path / "cal"
    assert load_profile(tmp_path / "pixel4.toml").black_level == 64  # by path too


@pytest.mark.parametrize("text, words", [
    ('name = "x"\n[input]\nkind = "raw-planes"\n', "black_level is needed"),
    ('name = "x"\ndomain = "tv"\n', "domain must be one of"),
    ('name = "x"\n[dual_pixel]\nleft_file = "up"\n', "left_file must be"),
    ('name = = "x"', "not a valid TOML"),
])
def test_bad_profile_is_one_line_naming_the_file(tmp_path, text: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=words) as info:
        load_profile(path)
    assert str(path) in info.value.one_line() and "\n" not in info.value.one_line()


def test_profile_values_are_defaults_flags_win() -> None:
    resolved = resolve_input(InputOptions(camera="pixel4"))
    assert resolved.source.black_level == 1024 and resolved.source.srgb is False and resolved.swap_hint is True
    resolved = resolve_input(InputOptions(camera="pixel4", black_level=512.0, srgb=True))
    assert resolved.source.black_level == 512 and resolved.source.srgb is True


def test_encoding_rule_without_profile() -> None:
    from dpcli.pipeline import Views, decide_domain, decide_encoding, raw_count_note

    src = resolve_input(InputOptions()).pipeline_source()

    def enc(channels, depth, source=src):
        return decide_encoding(source, Views(np.zeros((channels, 4, 4), np.float32), bit_depth=depth, kind="files"))[0]

    assert enc(3, 8) and enc(3, 16) and enc(1, 8)  # colour / 8-bit: sRGB
    assert not enc(1, 16) and not enc(3, 32)  # grey 16-bit and float: linear
    assert decide_domain(src, 1, False)[0] == "phone" and decide_domain(src, 3, True)[0] == "dslr"
    assert enc(1, 16, resolve_input(InputOptions(srgb=True)).pipeline_source())  # the flag wins
    pixel = resolve_input(InputOptions(camera="pixel4")).pipeline_source()
    assert decide_domain(pixel, 3, True) == ("phone", "camera profile pixel4")  # the profile's domain wins
    counts = np.full((1, 8, 8), 1100 / 65535, np.float32)
    assert raw_count_note(counts, 16) and not raw_count_note(counts * 0, 16)


@pytest.mark.parametrize("name", [p.name for p in list_profiles()])
def test_every_profile_drives_the_pipeline_as_it_says(name) -> None:
    """Every profile (shipped and the user's): its encoding, domain and view order are what the
    per-item pipeline decides for a pair of its kind, with the profile named as the decider."""
    from dpcli.domains import DOMAINS
    from dpcli.pipeline import Views, decide_domain, decide_encoding, decide_orientation

    profile = load_profile(name)
    assert profile.domain in DOMAINS and profile.space in ("linear", "srgb")
    source = resolve_input(InputOptions(camera=name)).pipeline_source()
    grey = profile.domain == "phone"
    view = np.full((1 if grey else 3, 64, 64), 0.5, np.float32)
    views = Views(view, view.copy(), 16, "raw planes" if profile.kind == "raw-planes" else "files")
    assert decide_encoding(source, views) == (profile.srgb, f"camera profile {profile.name}")
    assert decide_domain(source, view.shape[0], profile.srgb) == (profile.domain, f"camera profile {profile.name}")
    o = decide_orientation(views, profile.srgb, source)
    if profile.swap_hint is None:  # unknown order: the data decides (flat views: undecided, as given)
        assert o.source in ("disparity", "layers", "undecided")
    else:
        assert (o.swapped, o.source) == (profile.swap_hint, f"camera profile {profile.name}")
