"""BlurNet: shapes, range, configuration read back from a file's shapes."""
import pytest
import torch

from dpcli.models.blurnet import CONFIGS, infer_arch
from dpcli.models import create_model, model_info


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_blurnet_maps_an_image_to_a_probability(arch):
    net = create_model(arch).eval()
    x = torch.rand(2, 3, 36, 52)  # not a multiple of the pooling: the decoder follows the skips' sizes
    with torch.no_grad():
        r = net(x)
    assert r.shape == (2, 1, 36, 52)
    assert float(r.min()) >= 0 and float(r.max()) <= 1
    assert model_info(arch).task == "blur" and model_info(arch).recipe == "C"


def test_blurnet_configuration_is_read_from_the_shapes():
    for arch in CONFIGS:
        assert infer_arch(create_model(arch).state_dict()) == (arch, {})
    wide = create_model("blurnet_small", widths=(8, 16, 32, 64), depth=1).state_dict()
    assert infer_arch(wide) == ("blurnet_small", {"in_chans": 3, "widths": (8, 16, 32, 64), "depth": 1})
    assert infer_arch(create_model("bambnet_deblur_test").state_dict()) is None
