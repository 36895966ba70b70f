"""The data domains: one vocabulary for every part (methods, camera profiles, weights, dev scenes).

``phone``: linear grey raw DP planes (e.g. Pixel 4); ``dslr``: colour sRGB views (e.g. Canon DPDD).
A method, a weights file and a camera profile each say which domains they are for; an item's
domain is decided once per item by :func:`dpcli.pipeline.decide_domain` (a camera profile's, else
:func:`item_domain` of its data).
"""
from __future__ import annotations

__all__ = ["DOMAINS", "DOMAIN_WORDS", "DOMAIN_SCENES", "item_domain", "normalise_domain"]

# domain -> what its data is
DOMAINS = {"phone": "linear raw planes (grey), e.g. Pixel 4", "dslr": "colour sRGB views, e.g. Canon DPDD"}
# domain -> how a summary names its data ("no method for DP pairs of <words>")
DOMAIN_WORDS = {"phone": "linear grey (phone raw) images", "dslr": "colour sRGB photos"}
# domain -> the real dev scenes that measure it (the prefix of their metric keys in the manifest)
DOMAIN_SCENES = {"phone": "pixel4", "dslr": "canon"}
# older names still accepted where a domain is read from a file or flag
_ALIASES = {"pixel": "phone", "pixel4": "phone", "canon": "dslr"}


def item_domain(channels: int, srgb: bool) -> str:
    """The domain of some data: ``phone`` for grey linear (raw DP planes), else ``dslr``."""
    return "phone" if channels == 1 and not srgb else "dslr"


def normalise_domain(name: str) -> str:
    """A domain name or an older alias (``pixel``) -> its name in :data:`DOMAINS`; ValueError if none."""
    key = _ALIASES.get(name, name)
    if key not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; valid: {', '.join(DOMAINS)}")
    return key
