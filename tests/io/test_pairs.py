"""Pair discovery over every folder layout, lone views, size mismatches, and loading."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dpcli.errors import InputError
from dpcli.io.images import write_image
from dpcli.io.pairs import (BadInput, PairInput, RawOptions, SingleInput, discover_inputs, input_paths,
                            left_in_subfolders, load_pair, load_single)


def _img(path: Path, value: float = 0.5, size: tuple[int, int] = (6, 8), channels: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    data = np.clip(value + 0.1 * rng.standard_normal((channels, *size)), 0, 1)
    return write_image(path, data, 16 if path.suffix == ".png" else 8)


def _names(items) -> dict[str, type]:
    return {item.name: type(item) for item in items}


def test_dpdd_layout(tmp_path: Path) -> None:
    root = tmp_path / "dd_dp_dataset_png"
    for name in ("1P0A1002", "1P0A2258"):
        _img(root / "test_l" / "source" / f"{name}_L.png")
        _img(root / "test_r" / "source" / f"{name}_R.png")
        _img(root / "test_c" / "source" / f"{name}.png")
        _img(root / "test_c" / "target" / f"{name}.png")
    items = discover_inputs([root])
    assert [i.name for i in items] == ["1P0A1002", "1P0A2258"]
    pair = items[0]
    assert isinstance(pair, PairInput)
    assert pair.left == root / "test_l/source/1P0A1002_L.png"
    assert pair.right == root / "test_r/source/1P0A1002_R.png"
    assert pair.combined == root / "test_c/source/1P0A1002.png"
    assert pair.target == root / "test_c/target/1P0A1002.png"
    loaded = load_pair(pair)
    assert loaded.combined is not None and loaded.target is not None and loaded.bit_depth == 16
    assert loaded.left.dtype == np.float32 and loaded.left.shape == (3, 6, 8)


def test_dpdd_single_image_split_and_lone_view(tmp_path: Path) -> None:
    root = tmp_path / "dpdd"
    _img(root / "val_c" / "source" / "a.png")
    _img(root / "val_c" / "target" / "a.png")
    _img(root / "test_l" / "source" / "b_L.png")  # right view missing
    items = discover_inputs([root])
    kinds = _names(items)
    assert kinds == {"a": SingleInput, "b": BadInput}
    single = next(i for i in items if i.name == "a")
    assert single.target == root / "val_c/target/a.png"
    bad = next(i for i in items if i.name == "b")
    with pytest.raises(InputError, match="lone left view") as info:
        load_pair(bad)
    assert "b_L.png" in str(info.value)


@pytest.mark.parametrize("left, right", [("x_L.png", "x_R.png"), ("x_l.png", "x_r.png"),
                                         ("x_left.tiff", "x_right.tiff"), ("x_Left.png", "x_RIGHT.png"),
                                         ("x-left.jpg", "x-right.jpg")])
def test_suffix_pairs(tmp_path: Path, left: str, right: str) -> None:
    _img(tmp_path / left)
    _img(tmp_path / right)
    _img(tmp_path / "other.png")
    items = discover_inputs([tmp_path])
    assert _names(items) == {"x": PairInput, "other": SingleInput}
    pair = next(i for i in items if i.name == "x")
    assert (pair.left.name, pair.right.name) == (left, right)


def test_plain_file_beside_a_pair_is_its_combined(tmp_path: Path) -> None:
    for name in ("s_L.png", "s_R.png", "s.png"):
        _img(tmp_path / name)
    items = discover_inputs([tmp_path])
    assert len(items) == 1 and items[0].combined == tmp_path / "s.png"


def test_left_right_subfolders(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        _img(tmp_path / "left" / name)
        _img(tmp_path / "right" / name)
        _img(tmp_path / "target" / name)
    _img(tmp_path / "left" / "c.png")  # no right partner
    _img(tmp_path / "loose.png")
    items = discover_inputs([tmp_path])
    assert _names(items) == {"a": PairInput, "b": PairInput, "c": BadInput, "loose": SingleInput}
    a = next(i for i in items if i.name == "a")
    assert a.left.parent.name == "left" and a.right.parent.name == "right" and a.target.parent.name == "target"
    with pytest.raises(InputError, match="right/"):
        load_pair(next(i for i in items if i.name == "c"))
    # A file named on the command line inside left/ pairs with right/.
    (item,) = discover_inputs([tmp_path / "right" / "b.png"])
    assert isinstance(item, PairInput) and item.left == tmp_path / "left" / "b.png"
    assert item.target == tmp_path / "target" / "b.png"


def test_files_named_on_the_command_line(tmp_path: Path) -> None:
    left, right = _img(tmp_path / "p_L.png"), _img(tmp_path / "p_R.png")
    single = _img(tmp_path / "q.jpg")
    items = discover_inputs([left, right, single, left])  # repeats are dropped
    assert _names(items) == {"p": PairInput, "q": SingleInput}
    # Naming only the left view finds its partner on disk.
    assert isinstance(discover_inputs([left])[0], PairInput)
    # A folder plus a file inside it counts once.
    assert len(discover_inputs([tmp_path, single])) == 2


def test_named_pairs_of_any_name(tmp_path: Path) -> None:
    """--pair LEFT RIGHT: two files whatever their names, one item each, named after LEFT without its
    view suffix; beside ordinary inputs, whose own grouping is unchanged."""
    a, b = _img(tmp_path / "x" / "IMG_7_left.png"), _img(tmp_path / "y" / "other.png")
    c, d = _img(tmp_path / "shot.jpg"), _img(tmp_path / "shot-b.jpg")
    photo = _img(tmp_path / "z" / "photo.png")
    items = discover_inputs([photo], pairs=[(a, b), (c, d)])
    assert _names(items) == {"IMG_7": PairInput, "shot": PairInput, "photo": SingleInput}
    pair = items[0]
    assert (pair.left, pair.right) == (a, b) and pair.combined is None
    assert [(i.left, i.right) for i in discover_inputs([], pairs=[(b, a)])] == [(b, a)]  # order as given
    with pytest.raises(InputError, match="no such file") as err:
        discover_inputs([], pairs=[(a, tmp_path / "nope.png")])
    assert err.value.path == tmp_path / "nope.png"
    with pytest.raises(InputError, match="takes two image files"):
        discover_inputs([], pairs=[(a, tmp_path / "x")])


def test_left_in_subfolders_counts_what_recursive_would_add(tmp_path: Path) -> None:
    _img(tmp_path / "top_L.png"), _img(tmp_path / "top_R.png")
    for path in ("sub/a.png", "sub/deeper/b_L.png", "sub/deeper/b_R.png"):
        _img(tmp_path / path)
    _img(tmp_path / "zz" / "c.jpg"), _img(tmp_path / "out" / "done.png")
    assert left_in_subfolders([tmp_path], exclude=[tmp_path / "out"]) == (3, ["sub/", "zz/"])  # a, b (a pair), c
    top = {i.name for i in discover_inputs([tmp_path])}
    every = {i.name for i in discover_inputs([tmp_path], exclude=[tmp_path / "out"], recursive=True)}
    assert len(every - top) == 3
    assert left_in_subfolders([tmp_path / "sub" / "a.png"]) == (0, [])  # files: nothing to leave out


def test_lone_left_named_on_the_command_line(tmp_path: Path) -> None:
    lone = _img(tmp_path / "solo_L.png")
    (item,) = discover_inputs([lone])
    assert isinstance(item, BadInput)
    with pytest.raises(InputError, match="lone left view") as info:
        load_pair(item)
    assert "solo_L.png" in str(info.value) and "rename it without the '_L' ending" in str(info.value)


def test_dpdd_file_named_alone_finds_its_partner(tmp_path: Path) -> None:
    left = _img(tmp_path / "test_l" / "source" / "n_L.png")
    right = _img(tmp_path / "test_r" / "source" / "n_R.png")
    (item,) = discover_inputs([left])
    assert isinstance(item, PairInput) and item.right == right


def test_size_mismatch_is_reported_by_name(tmp_path: Path) -> None:
    _img(tmp_path / "m_L.png", size=(6, 8))
    _img(tmp_path / "m_R.png", size=(6, 9))
    (item,) = discover_inputs([tmp_path])
    with pytest.raises(InputError, match="size mismatch") as info:
        load_pair(item)
    assert "m_L.png" in str(info.value) and "m_R.png" in str(info.value)


def test_channel_mismatch(tmp_path: Path) -> None:
    _img(tmp_path / "g_L.png", channels=1)
    _img(tmp_path / "g_R.png", channels=3)
    with pytest.raises(InputError, match="channel"):
        load_pair(discover_inputs([tmp_path])[0])


def test_missing_path_empty_folder_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as info:
        discover_inputs([tmp_path / "nope.png"])
    assert "nope.png" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match="no images found") as info:
        discover_inputs([empty])
    assert "empty" in str(info.value)
    (item,) = discover_inputs([empty / "notes.txt"])
    assert isinstance(item, BadInput) and "unsupported file type" in item.message
    with pytest.raises(InputError):
        discover_inputs([])


def test_swap_lr_and_load_single(tmp_path: Path) -> None:
    _img(tmp_path / "s_L.png", value=0.2)
    _img(tmp_path / "s_R.png", value=0.8)
    (item,) = discover_inputs([tmp_path])
    pair, swapped = load_pair(item), load_pair(item, swap_lr=True)
    assert np.array_equal(pair.left, swapped.right) and np.array_equal(pair.right, swapped.left)
    combined, target, depth = load_single(item)
    # mean in linear light, re-encoded as sRGB: brighter than the plain sRGB mean
    assert depth == 16 and target is None
    assert combined.mean() > ((pair.left + pair.right) / 2).mean() + 0.01
    with pytest.raises(InputError, match="single image"):
        load_pair(SingleInput("x", tmp_path / "s_L.png"))


def test_raw_planes_through_load_pair(tmp_path: Path) -> None:
    counts = np.full((1, 4, 5), 1024 + 16383 // 2, dtype=np.float64)
    write_image(tmp_path / "v_left.png", counts / 65535, 16)
    write_image(tmp_path / "v_right.png", counts / 65535, 16)
    (item,) = discover_inputs([tmp_path])
    left, right = load_pair(item, raw=RawOptions(black_level=1024))
    np.testing.assert_allclose(left, (16383 // 2) / 16383, rtol=1e-6)
    assert right.shape == (1, 4, 5)


def test_dpdd_names_repeated_across_splits_get_the_split(tmp_path: Path) -> None:
    for split in ("train", "test"):
        _img(tmp_path / f"{split}_l" / "source" / "n_L.png")
        _img(tmp_path / f"{split}_r" / "source" / "n_R.png")
    assert sorted(i.name for i in discover_inputs([tmp_path])) == ["test_n", "train_n"]


def test_duplicate_names_and_excluded_output_folder(tmp_path: Path) -> None:
    _img(tmp_path / "a" / "img.png")
    _img(tmp_path / "b" / "img.png")
    names = sorted(i.name for i in discover_inputs([tmp_path / "a", tmp_path / "b"]))
    assert names == ["a_img", "b_img"]
    _img(tmp_path / "a" / "img_deblurred.png")  # e.g. an earlier run's output in the same folder
    items = discover_inputs([tmp_path / "a"], exclude=[tmp_path / "a" / "img_deblurred.png"])
    assert [i.name for i in items] == ["img"]
    with pytest.raises(InputError, match="both the input and the output folder"):
        discover_inputs([tmp_path / "a"], exclude=[tmp_path / "a"])


def test_input_paths_cover_every_file(tmp_path: Path) -> None:
    for name in ("s_L.png", "s_R.png", "s.png"):
        _img(tmp_path / name)
    items = discover_inputs([tmp_path])
    assert input_paths(items) == {tmp_path / "s_L.png", tmp_path / "s_R.png", tmp_path / "s.png"}


def test_view_a_view_b_names_make_a_pair(tmp_path):
    """The DPDD authors' published views (canon_00_view_a/_view_b): one pair, a as named left."""
    from dpcli.io.pairs import PairInput

    _img(tmp_path / "canon_00_view_a.png")
    _img(tmp_path / "canon_00_view_b.png")
    _img(tmp_path / "scene_a.png")  # a plain name ending in _a stays a single image
    items = {i.name: i for i in discover_inputs([tmp_path])}
    assert isinstance(items["canon_00"], PairInput) and items["canon_00"].left.name == "canon_00_view_a.png"
    assert not isinstance(items["scene_a"], PairInput)
