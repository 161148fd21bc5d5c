"""Thread count for the first slab on a shared CPU: the free cores, at least one, at most what was asked."""

from __future__ import annotations

from inference.cpuload import CpuWindow, threads_for


def test_threads_follow_the_free_cores():
    assert threads_for(0.0, cpus=2, wanted=2) == 2  # idle: all of them
    assert threads_for(1.0, cpus=2, wanted=2) == 1  # one core taken by other work
    assert threads_for(3.5, cpus=2, wanted=2) == 1  # never fewer than one
    assert threads_for(0.0, cpus=16, wanted=4) == 4  # never more than asked
    assert threads_for(13.0, cpus=16, wanted=4) == 3


def test_a_window_measures_other_work_or_says_it_cannot():
    window = CpuWindow()
    assert window.others_busy() is None  # too short to tell
    assert window.threads(2) in (1, 2)
