"""Issue 17 item 1 for `synth`: scenes already in a folder are kept only if made the same way."""
from __future__ import annotations


def _scenes(folder):
    return sorted(p.name for p in folder.rglob("*_c/meta/*.json"))


def test_synth_refuses_a_folder_made_with_other_settings(dpdeblur, tmp_path):
    out = tmp_path / "data"
    assert dpdeblur("synth", "-o", out, "--count", 2, "--size", 32, "-q").code == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    more = dpdeblur("synth", "-o", out, "--count", 3, "--size", 32, "-q")  # more of the same: fine
    assert more.code == 0 and len(_scenes(out)) == 3
    other = dpdeblur("synth", "-o", out, "--count", 3, "--size", 48, "-q")
    assert other.code == 2 and len(other.err_lines) == 1
    assert "height 32 -> 48" in other.err and "--overwrite" in other.err
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())  # nothing re-rendered
    again = dpdeblur("synth", "-o", out, "--count", 1, "--size", 48, "--overwrite", "-q")
    assert again.code == 0 and not again.err_lines[0].startswith("error")
    assert len(_scenes(out)) == 1  # the 32 px scenes are gone, not mixed with the new ones
    assert {p.name for p in out.rglob("*.png")} == {p.name for p in out.rglob("*.png") if "000000" in p.name}
