"""Candidate evaluation: crop bookkeeping on the real Pixel 4 protocol, Canon view order."""
from __future__ import annotations

import pytest
import torch

from dpcli.train.evaluate import pixel4_scores, synthetic_scores


def _identity(left, right, combined=None):
    """A single-image "network" that returns its input: the combined capture, else the views' mean."""
    return (left + right) / 2 if combined is None else combined


@pytest.mark.realdata
def test_pixel4_identity_candidate_scores_exactly_the_input(pixel4_dir):
    scores = pixel4_scores(_identity, pixel4_dir, margin=16, scene_ids=["002"])
    assert scores["pixel4_psnr"] == pytest.approx(scores["pixel4_psnr_input"], abs=1e-6)
    assert scores["pixel4_scenes"]["002"]["input"]["psnr"] == pytest.approx(27.82, abs=0.01)  # published


def test_a_single_image_candidate_gets_the_canon_combined_capture_as_run_does(shared_dir):
    """Canon's combined capture is its own photo, not the views' mean: a single-image candidate that
    returns its input scores exactly the baseline (the mean of the views scores differently)."""
    from dpcli.train.evaluate import canon_scores

    canon = shared_dir / "data" / "canon-dpdd-gif"
    same = canon_scores(_identity, canon)
    assert same["canon_psnr"] == pytest.approx(same["canon_psnr_input"], abs=1e-6)
    mean = canon_scores(lambda left, right, combined=None: (left + right) / 2, canon)
    assert abs(mean["canon_psnr"] - mean["canon_psnr_input"]) > 0.05


def test_synthetic_scores_identity_is_the_input():
    s = synthetic_scores(_identity, count=2, size=48)
    assert s["synth_psnr"] == pytest.approx(s["synth_psnr_input"], abs=1e-4)


def test_shipping_rule_refuses_a_candidate_that_does_not_beat_the_input(tmp_path, monkeypatch):
    from dpcli.train.evaluate import beats_input, ship_if_better

    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
    worse = {"pixel4_psnr": 30.0, "pixel4_psnr_input": 31.2, "pixel4_ssim": 0.9, "pixel4_ssim_input": 0.85,
             "pixel4_mae": 0.015, "pixel4_mae_input": 0.016}
    assert not beats_input(worse) and not beats_input({"synth_psnr": 40.0})
    assert beats_input(worse | {"pixel4_psnr": 31.5})
    assert not beats_input(worse | {"pixel4_psnr": 31.2})  # a tie is not a gain
    assert not beats_input(worse | {"pixel4_psnr": 31.5, "pixel4_ssim": 0.84})  # SSIM must not drop
    assert not beats_input(worse | {"pixel4_psnr": 31.5}, domain="dslr")  # no Canon figures
    assert ship_if_better(tmp_path / "none.pt", worse, "x", "synthetic").startswith("not shipped")
    assert not (tmp_path / "manifest.json").exists()


def test_shipping_rule_refuses_a_candidate_that_loses_one_scene_or_harms_sharp_photos():
    from dpcli.train.evaluate import shipping_verdict

    def scene(pred, base):
        return {"pred": {"psnr": pred}, "input": {"psnr": base}}

    canon = {"canon_psnr": 25.2, "canon_psnr_input": 24.8, "canon_ssim": 0.72, "canon_ssim_input": 0.68,
             "canon_scenes": {"00": scene(28.4, 27.4), "03": scene(24.86, 24.82)}}
    ok, why = shipping_verdict(canon, "dslr")
    assert ok and "worst scene 03 +0.04 dB" in why
    lost = canon | {"canon_scenes": {"00": scene(28.4, 27.4), "03": scene(24.66, 24.82)}}
    assert not shipping_verdict(lost, "dslr")[0]  # -0.16 dB on one scene, though the mean gains
    assert not shipping_verdict(canon, "phone")[0]  # a dslr candidate is not judged on no phone data
    sharp = canon | {"sharp_psnr": 41.0, "sharp_psnr_min": 38.0}
    ok, why = shipping_verdict(sharp, "dslr")
    assert ok and "sharp photos back at 41.0 dB (worst 38.0)" in why
    assert not shipping_verdict(sharp | {"sharp_psnr": 39.5}, "dslr")[0]  # mean below 40 dB
    assert not shipping_verdict(sharp | {"sharp_psnr_min": 36.0}, "dslr")[0]  # one photo below 37 dB


def test_defocus_map_scores_tell_a_real_estimator_from_a_constant():
    from dpcli.classical import estimate_defocus_classical
    from dpcli.train.evaluate import beats_input, synthetic_defocus_scores

    def classical(left, right):
        radius, _ = estimate_defocus_classical(left[0].mean(0, keepdim=True).numpy(),
                                               right[0].mean(0, keepdim=True).numpy())
        return torch.from_numpy(radius).reshape(1, 1, *left.shape[-2:])

    flat = synthetic_defocus_scores(lambda left, right: torch.zeros_like(left[:, :1]), count=2, size=96)
    real = synthetic_defocus_scores(classical, count=3, size=192)
    assert flat["synth_defocus_spearman"] == 0.0
    assert real["synth_defocus_spearman"] > 0.4  # measured 0.61 on 4 scenes
    assert real["synth_defocus_mae_px"] < real["synth_defocus_mae_px_constant"]
    assert not beats_input(flat | {"pixel4_defocus_spearman": 0.9})  # no better than a constant map
    assert beats_input(real | {"pixel4_defocus_spearman": 0.7})


def test_candidates_are_scored_through_the_engine_run_uses(tmp_path):
    """pair_runner gives exactly what the Python API / `run` engine gives for the same weights."""
    import dpcli
    from dpcli.models import create_model
    from dpcli.models.loading import save_weights
    from dpcli.train.evaluate import pair_runner

    torch.manual_seed(0)
    net = create_model("bambnet_deblur_test")
    path = save_weights(net, "bambnet_deblur_test", tmp_path / "b.safetensors")
    left, right = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64)
    ours = pair_runner(create_model("bambnet_deblur_test", weights=path), "deblur_pair", tile=None,
                       arch="bambnet_deblur_test")(left, right)
    api = dpcli.deblur_pair(left, right, model="bambnet", weights=path, arch="bambnet_deblur_test", device="cpu")
    assert ours.shape == (1, 3, 48, 64) and torch.equal(ours, api)


def test_sharp_scores_tell_identity_from_harm(shared_dir):
    """The harm figure of the shipping rule: a runner that returns its input scores the cap, one that
    blurs sharp photos scores far below the 40 dB the rule asks for."""
    import torch.nn.functional as F

    from dpcli.train.evaluate import IDENTICAL_PSNR_DB, sharp_scores

    same = sharp_scores(lambda l, r: (l + r) / 2, shared_dir, "dslr")
    assert same["sharp_psnr"] == same["sharp_psnr_min"] == IDENTICAL_PSNR_DB
    assert {"canon_00", "scene_c"} <= set(same["sharp_images"])
    blur = sharp_scores(lambda l, r: F.avg_pool2d(l, 5, 1, 2, count_include_pad=False), shared_dir, "dslr")
    assert blur["sharp_psnr"] < 35 and blur["sharp_psnr_min"] <= blur["sharp_psnr"]


def test_rescoring_shipped_weights_updates_their_entry_and_keeps_the_file(tmp_path, monkeypatch):
    """A shipped file scored again with other post steps keeps its file, sha256 and record; the
    entry takes the post list and the new figures (dpcli.train.export.update_entry)."""
    import json

    from dpcli.models import create_model
    from dpcli.train.evaluate import ship_if_better
    from dpcli.train.export import export_weights, update_entry

    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
    net = create_model("defocusgan_generator_test")
    entry = export_weights(net, "defocusgan_generator_test", "t1", metrics={"canon_psnr": 25.0}, recipe={"step": 7},
                           training_data="synthetic", domain="dslr", space="srgb", post=["keep_mean:32"])
    before = (tmp_path / entry["file"]).read_bytes()
    scene = {"pred": {"psnr": 25.5}, "input": {"psnr": 24.8}}
    scores = {"canon_psnr": 25.5, "canon_psnr_input": 24.8, "canon_ssim": 0.73, "canon_ssim_input": 0.68,
              "canon_scenes": {"00": scene}, "sharp_psnr": 41.0, "sharp_psnr_min": 38.0}
    said = ship_if_better(tmp_path / entry["file"], scores, "t1", "ignored", domain="dslr",
                          post=("keep_mean:32", "correction_gate"))
    assert said.startswith("updated defocusgan_generator_test.t1")
    assert (tmp_path / entry["file"]).read_bytes() == before
    (got,) = json.loads((tmp_path / "manifest.json").read_text())["weights"]
    assert got["post"] == ["keep_mean:32", "correction_gate"]
    assert got["sha256"] == entry["sha256"] and got["recipe"] == entry["recipe"]
    assert got["metrics"]["canon_psnr"] == 25.5 and got["metrics"]["sharp_psnr_min"] == 38.0
    with pytest.raises(Exception, match="no manifest field"):
        update_entry("defocusgan_generator_test.t1", gate=True)
    with pytest.raises(Exception, match="no shipped weights named"):
        update_entry("nothing.here", post=["correction_gate"])
    with pytest.raises(Exception, match="unknown post step 'gate'"):
        update_entry("defocusgan_generator_test.t1", post=["gate"])


def test_shipped_weights_under_a_new_tag_share_the_file_with_their_own_post_stage(tmp_path, monkeypatch):
    """A shipped file scored with other post steps and exported under a NEW tag becomes a second
    entry that points at the same file (no copy), with its own post list, figures and notes."""
    import json

    from dpcli.models.loading import load_model
    from dpcli.models import create_model
    from dpcli.train.evaluate import ship_if_better
    from dpcli.train.export import alias_entry, export_weights

    monkeypatch.setenv("DPDEBLUR_WEIGHTS", str(tmp_path))
    net = create_model("defocusgan_generator_test")
    entry = export_weights(net, "defocusgan_generator_test", "t1", metrics={"canon_psnr": 25.0}, recipe={"step": 7},
                           training_data="synthetic", domain="dslr", space="srgb", post=["keep_mean:32"])
    scene = {"pred": {"psnr": 25.4}, "input": {"psnr": 24.8}}
    scores = {"canon_psnr": 25.4, "canon_psnr_input": 24.8, "canon_ssim": 0.72, "canon_ssim_input": 0.68,
              "canon_scenes": {"00": scene}, "sharp_psnr": 41.0, "sharp_psnr_min": 38.0}
    said = ship_if_better(tmp_path / entry["file"], scores, "t2", "same weights", notes="gated", domain="dslr",
                          post=("keep_mean:32", "endorse:defocusgan_generator_test.t1", "correction_gate"))
    assert said.startswith("shipped defocusgan_generator_test.t2: the weights of defocusgan_generator_test.t1")
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [entry["file"]]
    got = {e["name"]: e for e in json.loads((tmp_path / "manifest.json").read_text())["weights"]}
    new = got["defocusgan_generator_test.t2"]
    assert new["file"] == entry["file"] and new["sha256"] == entry["sha256"] and new["notes"] == "gated"
    assert new["post"] == ["keep_mean:32", "endorse:defocusgan_generator_test.t1", "correction_gate"]
    assert new["metrics"] == {k: v for k, v in scores.items() if isinstance(v, float)}
    first = got["defocusgan_generator_test.t1"]
    assert first["post"] == ["keep_mean:32"] and first["metrics"] == {"canon_psnr": 25.0}
    loaded = load_model("defocusgan_generator_test.t2", task="deblur_single")
    assert loaded.post == ("keep_mean:32", "endorse:defocusgan_generator_test.t1", "correction_gate")
    with pytest.raises(Exception, match="no shipped weights named"):
        alias_entry("nothing.here", "x.y", metrics={})


def test_a_new_blurnet_step_replaces_the_old_ones_and_keeps_the_rest() -> None:
    from dpcli.methods.post import STEPS
    from dpcli.train.evaluate import GATE_STEPS, _without_gates

    post = ("keep_mean:32", "blur_gate:a.b", "endorse:x.y", "correction_gate", "focus_part:c.d")
    assert _without_gates(post) == ("keep_mean:32", "endorse:x.y", "correction_gate")
    assert set(GATE_STEPS) <= set(STEPS)
