"""Tests are hermetic (issue 26): no test installs or downloads anything while it runs; what a test
needs from outside (LPIPS weights) is prepared at install and the test skips, saying how, without it."""
from __future__ import annotations

import re
from pathlib import Path

FETCHES = re.compile(r"download_sdist\(|pip\"?,? *\"?(install|download)|urlopen\(|urlretrieve\(|hf_hub_download")
# an offline install of the wheel the test itself built, into a throwaway venv (the wheel test): no network
OFFLINE = re.compile(r"--no-index")


def test_no_test_downloads_or_installs():
    here = Path(__file__).parent
    hits = [f"{p.relative_to(here)}:{n}" for p in sorted(here.rglob("*.py")) if p.name != Path(__file__).name
            for n, line in enumerate(p.read_text().splitlines(), 1) if FETCHES.search(line) and not OFFLINE.search(line)]
    assert not hits, hits
