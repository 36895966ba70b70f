"""Networks (BaMBNet, DefocusGAN), their registry and checkpoint loading (timm-style).

>>> from dpcli.models import create_model, list_models
>>> net = create_model("bambnet_deblur_test")
"""
from dpcli.models.registry import (
    PretrainedCfg,
    create_model,
    list_models,
    list_pretrained,
    model_info,
    register_model,
)
from dpcli.models import bambnet as _bambnet  # noqa: F401,E402  (registers architectures)
from dpcli.models import defocusgan as _defocusgan  # noqa: F401,E402

__all__ = ["PretrainedCfg", "create_model", "list_models", "list_pretrained", "model_info", "register_model"]
