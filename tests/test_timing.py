"""dpcli.timing: stages are recorded only inside a recording, nested under their parent, with
wall and CPU seconds that add up and a peak that sees memory allocated inside the stage."""
import mmap
import time

import numpy as np

from dpcli.timing import peak_rss_gib, recording, stage


def test_stage_outside_a_recording_records_nothing_and_runs_the_block():
    ran = []
    with stage("alone"):
        ran.append(1)
    with recording() as rec:
        pass
    assert ran == [1] and rec.rows() == []


def test_nested_stages_are_timed_counted_and_ordered():
    with recording() as rec:
        for _ in range(2):
            with stage("outer"):
                time.sleep(0.02)
                with stage("inner"):
                    sum(i * i for i in range(200_000))  # CPU work
    outer, inner = rec.rows()
    assert (outer.name, outer.depth, outer.calls) == ("outer", 0, 2)
    assert (inner.name, inner.depth, inner.calls) == ("inner", 1, 2)
    assert outer.wall_s >= inner.wall_s + 0.04 - 1e-3  # two sleeps outside the inner stage
    assert inner.cpu_s > 0 and inner.cpu_s <= outer.cpu_s + 1e-3


def test_the_peak_of_a_stage_sees_what_it_allocated():
    with recording() as rec:
        with stage("small"):
            pass
        with stage("big"):
            # 64 MiB of fresh pages, touched: a mapping of its own, so memory a heap kept from earlier
            # tests (dpcli.heap.retain_freed_memory, set by in-process CLI runs) cannot serve it
            block = mmap.mmap(-1, 64 * 2**20)
            np.frombuffer(block, np.uint8)[:] = 1
            block.close()
    small, big = rec.rows()
    assert big.peak_gib >= small.peak_gib + 0.05 or peak_rss_gib() == 0.0
