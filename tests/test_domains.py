"""Data domains (dpcli/domains.py): the domain of some data, and older names read as today's."""
from __future__ import annotations

import pytest

from dpcli.domains import DOMAIN_SCENES, DOMAIN_WORDS, DOMAINS, item_domain, normalise_domain


@pytest.mark.parametrize("channels, srgb, domain", [(1, False, "phone"), (1, True, "dslr"), (3, False, "dslr"),
                                                    (3, True, "dslr")])
def test_only_grey_linear_data_is_phone(channels, srgb, domain):
    assert item_domain(channels, srgb) == domain


@pytest.mark.parametrize("name, domain", [("phone", "phone"), ("dslr", "dslr"), ("pixel", "phone"),
                                          ("pixel4", "phone"), ("canon", "dslr")])
def test_aliases_read_as_the_domain(name, domain):
    assert normalise_domain(name) == domain


def test_an_unknown_domain_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown domain 'raw'; valid: phone, dslr"):
        normalise_domain("raw")
    with pytest.raises(ValueError):
        normalise_domain("Phone")  # case matters: files and flags write lower case


def test_every_table_covers_every_domain_and_item_domain_only_yields_known_ones():
    assert set(DOMAIN_WORDS) == set(DOMAIN_SCENES) == set(DOMAINS)
    assert {item_domain(c, s) for c in (1, 3) for s in (False, True)} == set(DOMAINS)
