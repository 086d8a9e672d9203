"""The stage clock of SAM's proposals (issue 69): seconds per stage, per window."""

import pytest

from fewclick.predict.stage_clock import STAGES, StageClock, timed


def test_a_window_holds_what_was_charged_while_it_was_open_and_the_totals_hold_everything():
    clock = StageClock()
    clock.charge("prompts", 0.5)  # before any window: the image's object size
    clock.start_window()
    clock.charge("encode", 2.0)
    clock.charge("decode", 1.0)
    clock.asked(48)
    clock.end_window()
    clock.start_window()
    clock.charge("encode", 3.0)
    clock.end_window()
    clock.charge("nms", 0.25)
    first, second = clock.windows
    assert first.seconds == {"encode": 2.0, "decode": 1.0} and first.prompts == 48 and first.total == 3.0
    assert second.total == 3.0 and second.prompts == 0
    assert clock.seconds["encode"] == 5.0 and clock.seconds["prompts"] == 0.5 and clock.seconds["nms"] == 0.25
    assert set(clock.seconds) == set(STAGES)


def test_an_unknown_stage_is_refused_by_name_and_no_clock_times_nothing():
    clock = StageClock()
    with pytest.raises(ValueError, match="unknown stage 'decoding'"):
        clock.charge("decoding", 1.0)
    with timed(clock, "storage"):
        pass
    assert clock.seconds["storage"] >= 0.0 and not clock.windows
    with timed(None, "storage"):  # the app's maker without a clock
        pass
