"""A folder run used by test_shard.py: each process deblurs its share (a stand-in method)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dpcli.cli.batch import run_batch
from dpcli.cli.output_plan import OutputPlan
from dpcli.cli.result import ItemResult
from dpcli.cli.options import OutputOptions


def main(inputs: Path, out: Path) -> int:
    items = sorted(inputs.glob("*.txt"))

    def process(path: Path) -> ItemResult:
        target = out / f"{path.stem}.out"
        target.write_text(f"rank {os.environ.get('RANK', '0')}\n")
        time.sleep(0.05)
        return ItemResult(path.stem, outputs=[str(target)], metrics={"rank": float(os.environ.get("RANK", 0))})

    plan = OutputPlan(folder=out, recipe={"method": "copy"}, outputs=lambda p: [out / f"{p.stem}.out"],
                      inputs=lambda p: [p])
    return run_batch(items, process, lambda p: p.stem, plan=plan, out=OutputOptions(folder=out, json=True))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
