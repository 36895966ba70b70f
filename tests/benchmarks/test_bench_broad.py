"""benchmarks/bench_broad.py: the inputs it makes from a photo and the figures `run` ranks by."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bench_broad = pytest.importorskip("bench_broad")


@pytest.fixture(scope="module")
def photo():
    from dpcli.synth.deadleaves import dead_leaves

    return bench_broad.Photo("leaves99", "leaves", "tune", dead_leaves(bench_broad.CROP, seed=99))


def test_halves_are_fixed_by_hash():
    assert bench_broad.half_of(b"leaves-3") == bench_broad.half_of(b"leaves-3")
    halves = {bench_broad.half_of(f"leaves-{s}".encode()) for s in range(20)}
    assert halves == {"tune", "report"}


def test_items_degrade_the_photo_as_their_condition_says(photo):
    sharp = bench_broad.make_item(photo, "sharp", 0)
    assert np.array_equal(sharp.left, sharp.reference) and sharp.right is None
    from _common import psnr_db

    psnrs = [psnr_db(bench_broad.make_item(photo, c, 0).left, sharp.reference)
             for c in ("disc1", "disc3", "disc8")]
    assert psnrs[0] > psnrs[1] > psnrs[2]  # a larger disc, a blurrier input
    pair = bench_broad.make_item(photo, "pair2", 0)
    assert pair.right is not None and pair.srgb and pair.domain == "dslr"
    assert not np.array_equal(pair.left, pair.right)
    phone = bench_broad.make_item(photo, "phone-pair2", 0)
    assert phone.left.shape[0] == 1 and not phone.srgb and phone.domain == "phone"


def test_figures_count_photos_made_worse_and_sharp_harm():
    row = lambda psnr, inp: {"psnr": psnr, "input": inp}  # noqa: E731
    res = {"sharp": {"a": {"psnr": 45.0, "input": 99}, "b": {"psnr": 36.0, "input": 99}},
           "disc1": {"a": row(31.0, 30.0), "b": row(29.5, 30.0)},
           "disc8": {"a": row(20.0, 21.0)},  # not a disc the promise covers
           "noise": {"a": {"psnr": 30.0, "input": 31.0, "flat_unchanged": 0.9}}}
    fig = bench_broad.broad_figures(res, photos=2)["dslr"]
    assert fig["below_input"] == 1 and fig["disc_gain_db"] == pytest.approx(0.25)
    assert fig["sharp_mean_db"] == 40.5 and fig["sharp_min_db"] == 36.0
    from dpcli.metrics.image import spares_sharp

    assert not spares_sharp(fig["sharp_mean_db"], fig["sharp_min_db"])


def test_consistency_study_restores_a_rendered_pair_and_keeps_a_consistent_image(photo):
    """The study's projection (docs/broad.md): the pair's own blurred mean, made consistent with the
    blur the pair measures, comes back sharper; the sharp photo, already consistent with a radius of
    0, comes back as it is."""
    from _common import psnr_db

    item = bench_broad.make_item(photo, "pair2", 0)
    radius = np.full(item.reference.shape[1:], 2.0, np.float32)
    base = psnr_db(item.baseline, item.reference)
    fixed = bench_broad.consistent(item.baseline, item.baseline, radius, 0.03)
    assert psnr_db(fixed, item.reference) > base + 2.0
    same = bench_broad.consistent(item.reference, item.reference, np.zeros_like(radius), 0.03)
    assert psnr_db(same, item.reference) > 50


def test_focus_part_study_reads_the_sharp_photo_in_focus_and_the_blurred_one_not(photo, capsys):
    """The study behind the in-focus check's setting (docs/broad.md): the share it prints per photo is
    high for the sharp dead leaves and nil under a 3 px disc, and it sums up every least share."""
    bench_broad.focus_part_study("deconv_or_network", [photo], ["sharp", "disc3"])
    text = capsys.readouterr().out
    shares = [float(line.split("share")[1].split()[0]) for line in text.splitlines() if "share " in line
              and line.startswith("  leaves99")]
    assert len(shares) == 2 and shares[0] > 0.5 and shares[1] < 0.05
    assert "0.00 (no check)" in text and "0.05:" in text and "sharp worst" in text
