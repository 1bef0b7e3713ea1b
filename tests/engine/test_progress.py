"""What parts of an engine report about themselves (engine.progress): the version each
runs, when each last moved, and beats kept to about one a second."""

from __future__ import annotations

from engine.progress import Heart, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_running_version_is_known_only_when_every_part_agrees():
    progress = Progress()
    assert progress.running_version(["pipeline-0", "delivery"]) is None
    progress.beat("pipeline-0", 3)
    assert progress.running_version(["pipeline-0", "delivery"]) is None  # delivery silent
    progress.beat("delivery", 2)
    assert progress.running_version(["pipeline-0", "delivery"]) is None  # mid-reload
    progress.beat("delivery", 3)
    assert progress.running_version(["pipeline-0", "delivery"]) == 3
    assert progress.versions() == {"delivery": 3, "pipeline-0": 3}


def test_silence_is_measured_from_the_last_beat():
    clock = Clock()
    progress = Progress(clock)
    assert progress.silent_for("pipeline") is None
    progress.beat("pipeline", 1)
    clock.now += 42.0
    assert progress.silent_for("pipeline") == 42.0
    progress.forget("pipeline")
    assert progress.silent_for("pipeline") is None


def test_a_heart_reports_a_new_version_at_once_and_the_same_one_once_a_second():
    clock = Clock()
    sent: list[tuple[str, str, float]] = []
    heart = Heart("delivery", lambda *report: sent.append(report), every=1.0, clock=clock)
    heart.beat(1)
    heart.beat(1)
    clock.now += 0.5
    heart.beat(1)
    heart.beat(2)  # a publish: reported at once
    clock.now += 1.0
    heart.beat(2)
    assert sent == [("progress", "delivery", 1.0), ("progress", "delivery", 2.0),
                    ("progress", "delivery", 2.0)]
