"""Many processes, one folder run: under ``torchrun`` (RANK / WORLD_SIZE) every process takes its
share of the items and rank 0 gathers the others' results for the summary."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, TypeVar

from dpcli.cli.output_plan import RECORD_DIR
from dpcli.cli.result import ItemResult
from dpcli.errors import DpError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's share of a folder run: items[rank::world] (torchrun sets RANK / WORLD_SIZE)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> "Shard":
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
        except ValueError:
            raise DpError("RANK and WORLD_SIZE must be whole numbers (as torchrun sets them)") from None
        if world < 1 or not 0 <= rank < world:
            raise DpError(f"RANK {rank} / WORLD_SIZE {world}: expected 0 <= RANK < WORLD_SIZE")
        return cls(rank, world)

    def take(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank::self.world])

    @property
    def run_id(self) -> str:
        """Same in every process of one launch (torchrun's rendezvous), '' when unknown."""
        rid = os.environ.get("TORCHELASTIC_RUN_ID", "")
        rid = "" if rid in ("", "none") else rid
        return f"{rid}:{os.environ.get('MASTER_PORT', '')}:{os.environ.get('TORCHELASTIC_RESTART_COUNT', '')}"

    def part_path(self, folder: Path, rank: int) -> Path:
        return Path(folder) / RECORD_DIR / f"part-{rank}-of-{self.world}.json"

    def write_part(self, folder: Path, started: float, results: list[ItemResult], codes: list[int]) -> None:
        from dpcli.io.images import atomic_write_bytes

        payload = {"run": self.run_id, "started": started, "results": [asdict(r) for r in results], "codes": codes}
        atomic_write_bytes(self.part_path(folder, self.rank), json.dumps(payload).encode(), overwrite=True)

    def gather(self, folder: Path, started: float, timeout: float | None = None
               ) -> tuple[list[ItemResult], list[int]]:
        """Rank 0: wait for every other rank's part (of this launch) and merge them."""
        timeout = float(os.environ.get("DPDEBLUR_RANK_TIMEOUT", "86400")) if timeout is None else timeout
        results: list[ItemResult] = []
        codes: list[int] = []
        waiting = set(range(1, self.world))
        deadline = time.monotonic() + timeout
        while waiting:
            for rank in sorted(waiting):
                try:
                    part = json.loads(self.part_path(folder, rank).read_text())
                except (OSError, ValueError):
                    continue
                same_launch = part.get("run") == self.run_id and (
                    self.run_id.strip(":") != "" or part.get("started", 0) >= started - 300)
                if same_launch:
                    results += [ItemResult(**r) for r in part["results"]]
                    codes += part["codes"]
                    waiting.discard(rank)
            if waiting:
                if time.monotonic() > deadline:
                    raise DpError(f"rank(s) {sorted(waiting)} did not report within {timeout:.0f} s; their "
                                  f"items are not in this summary (see {Path(folder) / RECORD_DIR})")
                time.sleep(0.2)
        return results, codes
