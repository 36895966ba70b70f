"""The inference engine (dpcli.engine.Deblurrer): a plain callable that pads, runs, tiles, clamps and
crops; the post steps that follow a network are dpcli.methods.post (tests/methods/test_post.py)."""
import numpy as np
import torch

from dpcli.engine import Deblurrer, named_session
from dpcli.models import create_model
from dpcli.models.loading import LoadedModel
from dpcli.models.registry import model_info
from dpcli.synth.scene import make_test_scene


def _session(post: tuple[str, ...] = ()) -> Deblurrer:
    torch.manual_seed(0)
    net = create_model("bambnet_deblur_test").eval()
    return Deblurrer(LoadedModel(net, "bambnet_deblur_test", model_info("bambnet_deblur_test"), post=post,
                                 space="srgb"), device="cpu", tile=0)


def test_the_session_is_the_network_clamped_and_runs_no_post_step_of_its_own():
    sharp = make_test_scene(48, seed=3).sharp[None] * 1.5 - 0.25  # values outside [0, 1] too
    session = _session(("focus_gate",))  # the weights' post list is the method's to run, not the engine's
    raw = session.run([sharp, sharp])
    assert torch.equal(session([sharp, sharp]), raw.clamp(0, 1))
    out = session.deblur_pair(sharp[0].numpy(), sharp[0].numpy())
    assert np.array_equal(out, raw[0].clamp(0, 1).numpy())
    assert np.abs(out - sharp[0].clamp(0, 1).numpy()).max() > 1e-3  # an in-focus pair, yet changed: no focus gate


def test_a_post_function_replaces_the_clamp():
    s = make_test_scene(32, seed=2)
    seen = []

    def post(out, views):
        seen.append(len(views))
        return torch.zeros_like(out)

    out = _session().deblur_pair(s.left.numpy(), s.right.numpy(), post=post)
    assert seen == [2] and not out.any()


def _blurnet_file(tmp_path, value: float) -> str:
    """A BlurNet that reads the probability ``value`` everywhere (its head's bias), saved as our weights."""
    from dpcli.train.export import save_fp16_safetensors

    net = create_model("blurnet_test")
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.constant_(net.head.bias, float(np.log(value / (1 - value))))  # the head computes logits
    return str(save_fp16_safetensors(net, "blurnet_test", tmp_path / f"blur_{value}.safetensors"))


def test_blur_reading_comes_back_in_the_callers_layout(tmp_path):
    session = named_session(_blurnet_file(tmp_path, 0.25), "blur", device="cpu")
    image = make_test_scene(40, seed=2).sharp.numpy()
    reading = session.estimate_blur(image.transpose(1, 2, 0))
    assert reading.shape == (40, 40) and np.allclose(reading, 0.25, atol=1e-3)
