"""Progress lines: items, a rate that ignores start-up and follows the recent pace, an ETA only when it means something."""

from __future__ import annotations

import io
import re

from pipeline.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress(total: int, clock: FakeClock, **kwargs) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress("clips", total, "assets", stream, interval_s=0.0, clock=clock, **kwargs), stream


def _rate_and_eta(line: str) -> tuple[str, str]:
    match = re.search(r", (\S+) assets/s, ETA (\S+)\]", line)
    assert match, line
    return match.group(1), match.group(2)


def _seconds(eta: str) -> int:
    parts = [int(p) for p in eta.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def test_no_rate_or_eta_before_a_few_items_finish():
    clock = FakeClock()
    progress, _ = _progress(100, clock)
    for _ in range(3):  # the first item, then two more: not yet min_items (3) after the first
        clock.now += 1.0
        progress.update(1)
        assert _rate_and_eta(progress.line()) == ("--", "--:--")
    clock.now += 1.0
    progress.update(1)
    rate, eta = _rate_and_eta(progress.line())
    assert float(rate) == 1.0 and _seconds(eta) == 96


def test_start_up_time_does_not_count_as_work():
    """60 s of worker start-up, then one asset per second: the ETA is the 90 remaining seconds, not ~10x that."""
    clock = FakeClock()
    progress, _ = _progress(100, clock)
    clock.now += 60.0
    for _ in range(10):
        clock.now += 1.0
        progress.update(1)
    rate, eta = _rate_and_eta(progress.line())
    assert abs(float(rate) - 1.0) < 0.01
    assert abs(_seconds(eta) - 90) <= 1, eta
    progress.close()
    final = progress.stream.getvalue().splitlines()[-1]
    assert final.startswith("clips: 10/100 assets [01:10, 0.14 assets/s, ETA 00:00]"), final  # the true average


def test_the_rate_follows_a_change_of_pace_within_the_window():
    clock = FakeClock()
    progress, _ = _progress(1000, clock, window_s=20.0)
    for _ in range(100):  # fast: 10 per second
        clock.now += 0.1
        progress.update(1)
    for _ in range(60):  # then slow: one every 2 s, for two minutes
        clock.now += 2.0
        progress.update(1)
    rate, eta = _rate_and_eta(progress.line())
    assert abs(float(rate) - 0.5) < 0.05, rate
    assert abs(_seconds(eta) - 840 * 2) < 100, eta


def test_a_stall_lowers_the_rate_and_raises_the_eta():
    clock = FakeClock()
    progress, _ = _progress(100, clock)
    for _ in range(20):
        clock.now += 1.0
        progress.update(1)
    _, before = _rate_and_eta(progress.line())
    clock.now += 120.0  # nothing finishes for two minutes
    rate, after = _rate_and_eta(progress.line())
    assert float(rate) < 0.2 and _seconds(after) > 4 * _seconds(before)


def test_updates_without_items_keep_the_extra_text():
    clock = FakeClock()
    progress, stream = _progress(4, clock)
    progress.update(1)
    progress.update(0, "clips 3")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("clips: 1/4 assets [00:00, -- assets/s, ETA --:--]")
    assert lines[-1].startswith("clips: 1/4 assets") and lines[-1].endswith("clips 3")
