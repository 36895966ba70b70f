"""The method registry (dpcli/methods/registry.py): every name resolves, unknown names list the valid
ones, and the default for a domain is the best measured method meant for it (data, not code)."""
from __future__ import annotations

import pytest

from dpcli.domains import DOMAINS
from dpcli.methods import default_method, get_method, item_domain, list_methods, method_names
from dpcli.methods.builtin import broad_figure, broad_trust

NAMES = method_names()


def test_registry_lists_training_free_methods_and_shipped_weights() -> None:
    assert {"zeroshot", "classical"} <= set(NAMES)
    for m in list_methods():
        assert m.name in NAMES and m.space in ("linear", "srgb") and set(m.domains) <= {"phone", "dslr"}


def test_defaults_come_from_measured_gains() -> None:
    from dpcli.methods.base import Method

    class Fake(Method):
        def __init__(self, name, needs_pair, measured, domains=("phone", "dslr")):
            self.name, self.needs_pair, self.measured, self.domains = name, needs_pair, measured, domains

        def _deblur(self, *a, **k):  # never called here
            raise AssertionError

    pool = [Fake("a", True, {"phone": 0.4}), Fake("b", True, {"phone": 1.3, "dslr": 0.7}),
            Fake("c", True, {"dslr": 2.0}, domains=("phone",)), Fake("s", False, {"dslr": -0.1})]
    assert default_method("phone", True, pool).name == "b"
    assert default_method("dslr", True, pool).name == "b"  # c is not meant for dslr, whatever it scored
    assert default_method("dslr", False, pool) is None  # nothing that beats the input
    pool.append(Fake("better", True, {"phone": 1.5}))
    assert default_method("phone", True, pool).name == "better"  # new weights take over: data, not code
    pool[-1].spares_sharp = False  # ... unless they harm sharp photos and another method does not
    assert default_method("phone", True, pool).name == "b"
    for m in pool:
        m.spares_sharp = False  # where every candidate harms them, the largest gain still wins
    assert default_method("phone", True, pool).name == "better"


def test_broad_benchmark_figures_rank_the_defaults(monkeypatch) -> None:
    """Trust on photos nobody tuned on comes first: a method that made broad photos worse is passed
    over for one that did not; where every candidate did, the one that made the fewest worse wins."""
    from dpcli.methods import registry
    from dpcli.methods.base import Method

    class Fake(Method):
        def __init__(self, name, gain):
            self.name, self.needs_pair, self.measured, self.domains = name, False, {"dslr": gain}, ("dslr",)

        def _deblur(self, *a, **k):  # never called here
            raise AssertionError

    below = {"net": 63, "switch": 43, "clean": 0}
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: {"below_input": below[name]})
    monkeypatch.setattr(registry, "broad_trust", lambda name, domain: None if name not in below else below[name] == 0)
    pool = [Fake("net", 0.85), Fake("switch", 0.84), Fake("clean", 0.1)]
    assert default_method("dslr", False, pool).name == "clean"  # the only one that made none worse
    assert default_method("dslr", False, pool[:2]).name == "switch"  # fewer made worse beats +0.01 dB
    below["clean"] = 5
    assert default_method("dslr", False, pool).name == "clean"
    pool.append(Fake("untried", 2.0))  # never run on the broad benchmark while the others were
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: None if name == "untried"
                        else {"below_input": below[name]})
    assert default_method("dslr", False, pool).name == "clean"
    monkeypatch.setattr(registry, "broad_figure", lambda name, domain: None)  # nothing measured there:
    monkeypatch.setattr(registry, "broad_trust", lambda name, domain: None)  # the dev gain decides
    assert default_method("dslr", False, pool).name == "untried"


def test_shipped_defaults_keep_their_promises() -> None:
    """Whatever ships (dpcli/weights/manifest.json, dpcli/methods/measured.json), the default for each
    domain and kind of input is meant for that domain, beats the input there, and spares sharp photos
    wherever some candidate does; no default only where nothing measured beats the input."""
    for domain in DOMAINS:
        for pair in (True, False):
            candidates = [m for m in list_methods()
                          if m.needs_pair == pair and domain in m.domains and m.measured.get(domain, 0.0) > 0]
            chosen = default_method(domain, pair)
            if chosen is None:
                assert not candidates, (domain, pair)
                continue
            assert chosen.needs_pair == pair and domain in chosen.domains and chosen.measured[domain] > 0
            tried = any(broad_figure(m.name, domain) is not None for m in candidates)

            def trusted(m) -> bool:  # spares sharp photos and kept the broad benchmark's promise (where it ran)
                return m.spares_sharp and (broad_trust(m.name, domain) if tried else True) is True

            if any(trusted(m) for m in candidates):
                assert trusted(chosen), (domain, pair)
    assert item_domain(1, False) == "phone" and item_domain(3, True) == "dslr" and item_domain(1, True) == "dslr"


def test_unknown_name_lists_valid_ones() -> None:
    from dpcli.errors import ModelError

    with pytest.raises(ModelError, match="zeroshot"):
        get_method("nosuch")


def test_every_listed_name_resolves_to_a_method_of_that_name() -> None:
    methods = list_methods()
    assert len(methods) == len(NAMES) > 0
    for name, method in zip(NAMES, methods):
        assert method.name == name == get_method(name).name
        assert isinstance(method.needs_pair, bool) and method.domains


def test_the_default_is_meant_for_the_domain_and_measured_above_the_input() -> None:
    """Per domain and kind of input: either no listed method beats the input there, or the default
    is one of the listed methods, of that kind, with a positive measured gain for that domain."""
    names = set(NAMES)
    found = 0
    for domain in DOMAINS:
        for pair in (True, False):
            chosen = default_method(domain, pair)
            if chosen is not None:
                found += 1
                assert chosen.name in names and chosen.needs_pair is pair
                assert domain in chosen.domains and chosen.measured[domain] > 0.0
    assert found >= 1  # some method beats the input somewhere (the training-free pair methods at least)
    assert default_method("dslr", True, []) is None  # nothing to choose from: no default


def test_zero_shot_runs_fp32_under_precision_auto_and_keeps_an_explicit_precision(monkeypatch) -> None:
    """--precision auto reaches every method; zero-shot's bf16 layer maps were never measured
    through run, so auto is fp32 there even on a CPU with native bf16."""
    from dpcli.methods import get_method

    monkeypatch.setenv("DPDEBLUR_BF16", "1")
    assert get_method("zeroshot", device="cpu", precision="auto").precision == "fp32"
    assert get_method("zeroshot", device="cpu", precision="bf16").precision == "bf16"
