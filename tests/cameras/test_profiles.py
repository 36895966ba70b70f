"""Camera profiles: shipped ones load, users add theirs, bad files fail in one line, and a
profile's values become the defaults of the flags not given."""
from __future__ import annotations

import numpy as np
import pytest

from dpcli.cameras import list_profiles, load_profile
from dpcli.cli.inputs import looks_like_raw_counts, resolve_input
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
    r = resolve_input(InputOptions())
    assert r.encoding(3, 8) and r.encoding(3, 16) and r.encoding(1, 8)  # colour / 8-bit: sRGB
    assert not r.encoding(1, 16) and not r.encoding(3, 32)  # grey 16-bit and float: linear
    assert r.domain(1, False) == "phone" and r.domain(3, True) == "dslr"
    assert resolve_input(InputOptions(srgb=True)).encoding(1, 16)  # the flag wins
    counts = np.full((1, 8, 8), 1100 / 65535, np.float32)
    assert looks_like_raw_counts(counts, 16) and not looks_like_raw_counts(counts * 0, 16)
