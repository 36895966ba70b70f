"""Networks (one module per family: BaMBNet, DefocusGAN, Restormer, LaKDNet), their registry and
checkpoint loading (timm-style).

>>> from dpcli.models import create_model, list_models
>>> net = create_model("bambnet_deblur_test")
"""
from dpcli.models.registry import (
    Family,
    PretrainedCfg,
    get_family,
    list_families,
    register_family,
    list_models,
    list_pretrained,
    model_info,
    register_model,
)
from dpcli.models.loading import create_model

__all__ = ["Family", "get_family", "list_families", "register_family", "PretrainedCfg", "create_model", "list_models",
           "list_pretrained", "model_info", "register_model"]
