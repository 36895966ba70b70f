"""Loop control of the optimised zero-shot stages (dpcli/zeroshot/loop.py): plateau stop, deadlines, the
per-stage log."""
from __future__ import annotations

import time

import pytest

from dpcli.zeroshot.loop import Plateau, StageLog, past


def test_past_is_false_without_a_deadline_or_before_it_and_true_after():
    now = time.perf_counter()
    assert past(None) is False
    assert past(now + 60) is False
    assert past(now - 1) is True


def test_plateau_stops_after_patience_steps_without_relative_improvement():
    stop = Plateau(patience=3, tol=0.01)
    assert [stop.step(v) for v in (10.0, 9.0, 8.0)] == [False, False, False]  # still improving
    assert stop.since == 0
    # flat losses: the smoothed loss stays within 1 % of the best, so the 3rd flat step stops it
    ema = stop.ema
    assert [stop.step(ema) for _ in range(3)] == [False, False, True]


def test_plateau_smooths_with_an_ema_of_0_9():
    stop = Plateau(patience=10, tol=0.0)
    stop.step(10.0)
    stop.step(0.0)
    assert stop.ema == pytest.approx(9.0)  # 0.9 * 10 + 0.1 * 0
    stop.step(0.0)
    assert stop.ema == pytest.approx(8.1)
    assert stop.best == pytest.approx(8.1) and stop.since == 0


def test_a_single_outlier_does_not_reset_the_plateau_count_by_itself():
    stop = Plateau(patience=2, tol=0.5)  # needs a 50 % drop of the smoothed loss to count as progress
    stop.step(1.0)
    assert stop.step(0.9) is False  # ema 0.99: no progress (since = 1)
    assert stop.step(0.0) is True  # ema 0.891: still not a 50 % drop -> patience reached


def test_stage_log_records_losses_and_says_why_it_stopped():
    log = StageLog()
    stop = Plateau(patience=100, tol=0.0)
    assert log.record(3.0, stop, None) is False
    assert log.record(2.0, stop, None) is False
    assert log.losses == [3.0, 2.0] and log.iters == 2 and log.stopped == "iterations"
    assert log.record(1.0, stop, time.perf_counter() - 1) is True
    assert log.stopped == "time budget" and log.iters == 3

    flat = StageLog()
    quick = Plateau(patience=1, tol=0.0)
    flat.record(1.0, quick, None)
    assert flat.record(1.0, quick, None) is True  # no improvement at all: plateau before any deadline
    assert flat.stopped == "plateau" and flat.losses == [1.0, 1.0]
