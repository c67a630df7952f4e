"""The one-line form of a finding: its key clause, the threshold it crossed, the curve."""

from __future__ import annotations

import pytest

from rundoctor.findings import Severity
from rundoctor.reporters.wording import THRESHOLD_LIMIT, short_message, threshold_phrase
from tests.reporters.reports import finding


@pytest.mark.parametrize("message, phrase", [
    ("train/loss fell only 7.1% over the run (1.907 -> 1.771, threshold 20%) in a straight line",
     "1.907 -> 1.771, threshold 20%"),
    ("spiked 1 time (largest 15x: 35.59 at step 190,000; threshold 10x)", "threshold 10x"),
    ("5 points exceed the threshold (1000x at 3+ points) and it came back down", "threshold 1000x at 3+ points"),
    ("has not improved since step 6 (thresholds: train drop 25%, gap 1.5x); 1 more", "thresholds: train drop 25%, gap 1.5x"),
    # Past the limit, the threshold's own words; with conditions, their first part.
    ("repeated 20 times (steps 0..9,500, 20/20 evaluations, threshold 5 and 50%) while", "threshold 5 and 50%"),
    ("exceed the threshold (10.2x for 12+ points in a row, or to the end of the log (10x beyond the noise))",
     "threshold 10.2x for 12+ points in a row"),
    ("train/loss is NaN from step 600 to the end", None),
    ("thresholding the logits gave 0.3", None),  # a near miss: not the word
])
def test_threshold_phrase(message: str, phrase: str | None) -> None:
    assert threshold_phrase(message) == phrase
    assert phrase is None or len(phrase) <= THRESHOLD_LIMIT


def test_the_threshold_is_added_only_when_the_key_clause_lost_it() -> None:
    cut = finding("r", "x", "X001", Severity.WARNING, tags=("val_loss",), message="val_loss rose 22% (best 1.8 at step 3); more (threshold 10%)")
    assert short_message(cut) == "val_loss rose 22% (best 1.8 at step 3) (threshold 10%)"
    kept = finding("r", "x", "X001", Severity.WARNING, tags=("grad_norm",), message="grad_norm spiked 1 time (threshold 10x); largest at 3")
    assert short_message(kept) == "grad_norm spiked 1 time (threshold 10x)"


def test_the_curve_is_named_when_the_clause_does_not_name_it() -> None:
    assert short_message(finding("r", "x", "X001", Severity.INFO, message="went NaN")) == "train/loss: went NaN"
    assert short_message(finding("r", "x", "X001", Severity.INFO, message="train/loss went NaN")) == "train/loss went NaN"
    several = finding("r", "x", "X001", Severity.INFO, tags=("a", "b"), message="steps go back in 2 tags")
    assert short_message(several) == "steps go back in 2 tags"


def test_log_text_is_escaped_before_it_is_cut() -> None:
    hostile = finding("r", "x", "X001", Severity.INFO, tags=("a\n::error::b",), message="a\n::error::b rose\x1b[2J")
    assert short_message(hostile) == "a\\n::error::b rose\\x1b[2J"
