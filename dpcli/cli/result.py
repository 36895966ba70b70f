"""The outcome of one item of a batch (a file or a pair): what every command reports per item."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ItemResult:
    """Outcome of one item of a batch."""

    name: str
    status: str = "ok"  # ok | skipped | failed
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # e.g. method, orientation (text columns)
