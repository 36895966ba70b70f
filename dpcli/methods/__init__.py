"""Deblurring methods behind one interface and one registry (networks, zero-shot, classical).

``dpdeblur run --method NAME`` and the Python API choose among them by name, or by domain and
pair/single with :func:`default_method` (both through :mod:`dpcli.pipeline`); orientation of DP
pairs is measured with :func:`orient`.
"""
from dpcli.methods.base import DOMAINS, SPACES, Method, MethodOutput, item_domain, register_method
from dpcli.methods.network import NetworkMethod, check_resembles_input, coc_map
from dpcli.methods.orient import orient, stage1_side_balance
from dpcli.methods.registry import default_method, get_method, list_methods, method_names

__all__ = ["Method", "MethodOutput", "register_method", "get_method", "list_methods", "method_names",
           "default_method", "item_domain", "NetworkMethod", "check_resembles_input", "coc_map", "orient",
           "stage1_side_balance", "DOMAINS", "SPACES"]
