"""Path patterns (``exclude``, ``per-path-ignores``): a name anywhere, or consecutive names
from any level; ``*`` and ``?`` inside one name, ``**`` across names; a matched directory
covers what lies below it."""

from __future__ import annotations

import pytest

from rundoctor.globs import PathPatterns

MATCHES = [
    ("debug", "runs/debug/a.csv"),
    ("debug", "debug"),
    ("*.csv", "runs/a/metrics.csv"),
    ("sweep-*/old", "runs/sweep-3/old/a.csv"),
    ("runs/exp1/**", "runs/exp1/a/b"),
    ("runs/exp1/**", "runs/exp1"),
    ("a/**/b", "runs/a/b"),
    ("a/**/b", "runs/a/x/y/b/c"),
    ("**/foo", "a/foo"),
    ("**", "anything/at/all"),
    ("ru?s", "runs/a"),
    ("[ab]x", "q/bx"),
    ("[!ab]x", "q/cx"),
    ("[0-9]", "runs/7/m.csv"),
    ("./runs/a", "runs/a/m.csv"),
    ("a/*", "x/a/b"),
]
MISSES = [
    ("debug", "runs/debugx/a.csv"),  # a whole name, not a part of one
    ("*.csv", "runs/a/metrics.csvx"),
    ("sweep-*/old", "runs/sweep-3/x/old/a.csv"),  # consecutive names
    ("runs/exp1/**", "runs/exp10/a"),
    ("a/**/b", "runs/a/x/yb"),
    ("a/*", "x/a"),  # '*' stands for one name
    ("[!ab]x", "q/bx"),
    ("r*s/a", "runs/x/a"),  # '*' never crosses a '/'
]


@pytest.mark.parametrize(("pattern", "path"), MATCHES)
def test_a_pattern_matches(pattern: str, path: str) -> None:
    assert PathPatterns.parse([pattern]).match(path) == pattern


@pytest.mark.parametrize(("pattern", "path"), MISSES)
def test_a_near_miss_does_not_match(pattern: str, path: str) -> None:
    assert PathPatterns.parse([pattern]).match(path) is None


def test_a_walk_matches_each_entry_itself_only() -> None:
    patterns = PathPatterns.parse(["runs", "exp1/**"])
    assert patterns.match("runs/a") == "runs"  # by run id: 'runs' is a directory on the path
    assert patterns.match_entry("runs/a") is None  # walking: the directory given is never tested
    assert patterns.match_entry("runs/exp1") == "exp1/**"


def test_comma_lists_and_repeats_give_every_pattern_in_order() -> None:
    patterns = PathPatterns.parse(["a, b", "c", " ,"])
    assert patterns.patterns == ("a", "b", "c")
    assert patterns.match("x/b/c") == "b"
    assert not PathPatterns.parse([]) and PathPatterns.parse(["a"])


@pytest.mark.parametrize("pattern", ["/runs", "C:/runs", "C:\\runs", ".", "./", "//"])
def test_absolute_and_empty_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"not absolute|names no file or directory"):
        PathPatterns.parse([pattern])
