"""The sweep view (``check --by``): which logged settings go with which diagnosis.

The analysis is tested on generated runs (a run id, its hyper-parameters as text, its outcome),
so each case reads like the sweep it describes: a parameter that separates a diagnosis cleanly
or with counts, one that separates nothing, text values, runs that did not log a parameter,
values written as text ("1e-3"), nested keys, and the thresholds of the chance screen.  Then a
realistic sweep end to end: Lightning runs (``lightning_logs/version_N/metrics.csv`` beside
``hparams.yaml``) whose high learning rates diverge, through the command line in text, JSON
(against the schema) and HTML, and hostile hyper-parameters escaped in each.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from rundoctor.reporters import RenderOptions, render
from rundoctor.sweep import (
    ANY_PROBLEM,
    AUTO,
    MAX_CHANCE,
    ParamKind,
    SweepRun,
    analyse,
    hypergeometric_tail,
    lookup,
    number,
    parse_by,
    value_text,
)
from tests.conftest import Invoke, run_cli
from tests.curves import decay, diverge, noisy, with_nan
from tests.reporters.reports import sample_report

DIVERGED = "training diverged"
NAN = "training diverged (NaN/inf)"
LOW_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.025)
HIGH_LRS = (0.03, 0.1, 0.3)


def sweep_runs(settings: Sequence[dict[str, str]], outcomes: Sequence[str | None]) -> list[SweepRun]:
    return [SweepRun(f"run{index:02d}", hparams, outcome, outcome is not None)
            for index, (hparams, outcome) in enumerate(zip(settings, outcomes, strict=True))]


def lr_sweep(diverged: Callable[[float, int], bool], lrs: Sequence[float] = LOW_LRS + HIGH_LRS) -> list[SweepRun]:
    """Two seeds per learning rate; ``diverged(lr, seed)`` says which runs diverged."""
    settings = [{"lr": repr(lr), "seed": str(seed)} for lr in lrs for seed in (0, 1)]
    return sweep_runs(settings, [DIVERGED if diverged(lr, seed) else None for lr in lrs for seed in (0, 1)])


# --------------------------------------------------------------------------------------------
# Numeric parameters: the threshold split
# --------------------------------------------------------------------------------------------


def test_a_clean_threshold_is_stated_with_its_counts() -> None:
    sweep = analyse(lr_sweep(lambda lr, _: lr >= 0.03), ["lr"])
    (param,) = sweep.params
    assert param.kind is ParamKind.NUMERIC and param.runs == 20 and param.missing == 0
    (split,) = param.splits
    assert split.sentence() == "training diverged: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025"
    assert split.clean and split.conclusive
    assert split.chance == pytest.approx(9 / math.comb(20, 6))  # Bonferroni over the 9 cuts between 10 values
    assert sweep.headline() == "Sweep by lr (20 runs: 6 training diverged, 14 without a problem; counts, not causes)"


def test_an_unclean_threshold_is_stated_with_its_counts() -> None:
    # 5 of the 6 high-lr runs diverged, and 1 of the 14 others did.
    runs = lr_sweep(lambda lr, seed: (lr >= 0.03 and (lr, seed) != (0.1, 1)) or (lr, seed) == (1e-3, 0))
    (split,) = analyse(runs, ["lr"]).params[0].splits
    assert split.sentence() == "training diverged: 5 of 6 runs with lr >= 0.03; 1 of 14 with lr <= 0.025"
    assert not split.clean and split.conclusive


def test_the_side_where_the_diagnosis_is_more_frequent_comes_first() -> None:
    runs = lr_sweep(lambda lr, _: lr <= 3e-4)  # too low a learning rate stalls
    (split,) = analyse(runs, ["lr"]).params[0].splits
    assert split.sentence() == "training diverged: all 4 runs with lr <= 0.0003; 0 of 16 with lr >= 0.001"


def test_a_parameter_that_separates_nothing_has_no_finding() -> None:
    runs = lr_sweep(lambda _, seed: seed == 1)  # one seed of every learning rate diverged
    sweep = analyse(runs, ["lr", "seed"])
    lr, seed = sweep.params
    assert lr.splits == () and lr.comparable
    assert lr.description() == "lr separates no diagnosis: 10 values from 0.0001 to 0.3 over 20 runs"
    (split,) = seed.splits  # the seed, not the learning rate, goes with it here
    assert split.sentence() == "training diverged: all 10 runs with seed >= 1; 0 of 10 with seed <= 0"


def test_one_odd_run_at_the_end_of_a_parameter_is_no_finding() -> None:
    runs = lr_sweep(lambda lr, seed: (lr, seed) == (0.3, 1))
    assert analyse(runs, ["lr"]).params[0].splits == ()


@pytest.mark.parametrize("runs_per_side, conclusive", [(2, False), (3, False), (4, False), (5, True)])
def test_a_clean_split_of_few_runs_is_said_with_its_doubt(runs_per_side: int, conclusive: bool) -> None:
    lrs = [0.001 * (index + 1) for index in range(2 * runs_per_side)]
    runs = sweep_runs([{"lr": repr(lr)} for lr in lrs], [DIVERGED if index >= runs_per_side else None
                                                          for index in range(len(lrs))])
    (split,) = analyse(runs, ["lr"]).params[0].splits
    assert split.clean and split.conclusive is conclusive
    cuts = 2 * runs_per_side - 3  # between distinct values, 2 runs or more on each side
    assert split.chance == pytest.approx(min(1.0, cuts / math.comb(2 * runs_per_side, runs_per_side)))
    assert ("too few runs to tell it from chance" in split.sentence()) is not conclusive


def test_an_unclean_split_that_chance_explains_is_no_finding() -> None:
    # 2 of 4 high against 1 of 4 low: the screen's probability is far above MAX_CHANCE.
    runs = sweep_runs([{"lr": str(index)} for index in range(8)], [None, None, None, DIVERGED, None, DIVERGED, None, DIVERGED])
    assert analyse(runs, ["lr"]).params[0].splits == ()
    assert hypergeometric_tail(8, 3, 4, 2) > MAX_CHANCE


def test_a_parameter_with_too_few_runs_on_a_side_says_so_with_its_counts() -> None:
    # The real lr sweep in ../shared: four runs at 5e-06 stalled, the one at 5e-05 did not.
    runs = sweep_runs([{"learning_rate": "5e-06"}] * 4 + [{"learning_rate": "5e-05"}], ["stalled: no learning"] * 4 + [None])
    (param,) = analyse(runs, ["learning_rate"]).params
    assert param.splits == () and not param.comparable
    assert param.description() == ("learning_rate has too few runs on a side to compare: "
                                   "5e-06 in 4 runs (4 stalled: no learning), 5e-05 in 1")


# --------------------------------------------------------------------------------------------
# Text parameters: one value against the others
# --------------------------------------------------------------------------------------------


def test_a_text_parameter_is_split_one_value_against_the_others() -> None:
    settings = [{"optimizer": name} for name in ["sgd", "adam"] * 10]
    runs = sweep_runs(settings, [DIVERGED if item["optimizer"] == "sgd" else None for item in settings])
    (param,) = analyse(runs, ["optimizer"]).params
    assert param.kind is ParamKind.CATEGORICAL
    (split,) = param.splits
    assert split.sentence() == "training diverged: all 10 runs with optimizer = sgd; 0 of 10 with optimizer != sgd"
    assert [(count.value, count.runs, count.outcomes) for count in param.values] == [
        ("adam", 10, ()), ("sgd", 10, ((DIVERGED, 10),))]


def test_the_healthy_value_is_named_when_every_other_value_diverged() -> None:
    settings = [{"optimizer": name} for name in ["sgd", "rmsprop", "adam", "adam"] * 4]
    runs = sweep_runs(settings, [None if item["optimizer"] == "adam" else DIVERGED for item in settings])
    (split,) = analyse(runs, ["optimizer"]).params[0].splits
    assert split.sentence() == "training diverged: all 8 runs with optimizer != adam; 0 of 8 with optimizer = adam"


def test_text_values_that_separate_nothing_are_listed_with_their_counts() -> None:
    settings = [{"optimizer": name} for name in ["sgd", "adam"] * 4]
    runs = sweep_runs(settings, [DIVERGED, None] * 2 + [None, DIVERGED] * 2)
    (param,) = analyse(runs, ["optimizer"]).params
    assert param.splits == ()
    assert param.description() == "optimizer separates no diagnosis: adam in 4 runs (2 training diverged), sgd in 4 (2 training diverged)"


# --------------------------------------------------------------------------------------------
# How parameters are found and read
# --------------------------------------------------------------------------------------------


def test_runs_that_did_not_log_a_parameter_are_left_out_and_counted() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    for index in (0, 5, 19):  # two low runs and one high run logged no lr
        runs[index] = SweepRun(runs[index].run, {"seed": "0"}, runs[index].outcome, runs[index].any_problem)
    (param,) = analyse(runs, ["lr"]).params
    assert (param.runs, param.missing) == (17, 3)
    (split,) = param.splits
    assert split.sentence() == "training diverged: all 5 runs with lr >= 0.03; 0 of 12 with lr <= 0.025"
    assert param.missing_note() == "3 runs did not log lr"


def test_numbers_written_as_text_are_numbers() -> None:
    texts = ["1e-3", "0.001", "1E-3", " 3e-2 ", "0.03", "3.0e-02"]
    runs = sweep_runs([{"lr": text} for text in texts], [None, None, None, DIVERGED, DIVERGED, DIVERGED])
    (param,) = analyse(runs, ["lr"]).params
    assert param.kind is ParamKind.NUMERIC
    assert [(count.value, count.runs) for count in param.values] == [(0.001, 3), (0.03, 3)]
    assert param.splits[0].sentence().startswith("training diverged: all 3 runs with lr >= 0.03; 0 of 3 with lr <= 0.001")


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("32", 32.0), (" -0.5 ", -0.5), (".5", 0.5), ("5.", 5.0),
                                         ("nan", None), ("inf", None), ("1e999", None), ("1_000", None), ("true", None),
                                         ("0x10", None), ("[1, 2]", None), ("", None), ("1" * 65, None),
                                         ("Infinity", None), ("\uff11\uff12", None)])
def test_what_counts_as_a_number(text: str, value: float | None) -> None:
    assert number(text) == value


def test_a_parameter_with_a_value_that_is_no_number_is_compared_as_text() -> None:
    runs = sweep_runs([{"lr": text} for text in ["0.1", "0.1", "auto", "auto"]], [DIVERGED, DIVERGED, None, None])
    assert analyse(runs, ["lr"]).params[0].kind is ParamKind.CATEGORICAL


def test_nested_keys_by_their_path_or_their_last_part() -> None:
    hparams = {"optimizer.lr": "0.1", "model.width": "64"}
    assert lookup(hparams, "optimizer.lr") == ("optimizer.lr", "0.1")
    assert lookup(hparams, "lr") == ("optimizer.lr", "0.1")
    assert lookup(hparams, "r") is None  # a suffix is a whole part of the key
    assert lookup({"lr": "1", "optimizer.lr": "2"}, "lr") == ("lr", "1")  # the key itself first
    assert lookup({"model.lr": "1", "optimizer.lr": "2"}, "lr") is None  # which one? neither
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    nested = [SweepRun(run.run, {"optimizer.lr": run.hparams["lr"]}, run.outcome, run.any_problem) for run in runs]
    for name in ("lr", "optimizer.lr"):
        (param,) = analyse(nested, [name]).params
        assert param.keys == ("optimizer.lr",) and param.splits[0].more.runs == 6


def test_a_name_no_run_logged_is_said_with_the_keys_it_may_mean() -> None:
    runs = sweep_runs([{"learning_rate": "0.1", "lr_scheduler_type": "linear"}] * 4, [None] * 4)
    (param,) = analyse(runs, ["lr"]).params
    assert param.kind is ParamKind.ABSENT and param.missing == 4
    assert param.description() == "lr: no run logged it (did you mean learning_rate?)"


def test_parse_by() -> None:
    assert parse_by(["lr, optimizer.name", "lr", "auto"]) == ("lr", "optimizer.name", AUTO)
    with pytest.raises(ValueError, match="--by takes"):
        parse_by(["lr,,seed"])


def test_value_text() -> None:
    assert [value_text(value) for value in (32.0, 0.03, 3e-05, -1.0, "sgd")] == ["32", "0.03", "3e-05", "-1", "sgd"]
    assert value_text("x" * 10_000) == "x" * 79 + "…"


def test_hypergeometric_tail_is_the_one_sided_fisher_test() -> None:
    def exact(total: int, marked: int, drawn: int, hits: int) -> float:
        return sum(math.comb(marked, x) * math.comb(total - marked, drawn - x)
                   for x in range(hits, min(marked, drawn) + 1)) / math.comb(total, drawn)

    for case in [(20, 6, 6, 6), (20, 6, 6, 4), (8, 3, 4, 2), (10, 5, 5, 0), (4, 2, 2, 2), (1000, 30, 40, 9)]:
        assert hypergeometric_tail(*case) == pytest.approx(exact(*case), rel=1e-9)
    assert 0.0 <= hypergeometric_tail(10_000, 5_000, 5_000, 5_000) < 1e-300  # no big integers, no overflow


# --------------------------------------------------------------------------------------------
# Several problems, several parameters
# --------------------------------------------------------------------------------------------


def test_settings_that_go_with_several_problems_show_as_any_problem() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    runs = [SweepRun(run.run, run.hparams, NAN if run.hparams["lr"] == "0.3" else run.outcome, run.any_problem)
            for run in runs]
    sentences = [split.sentence() for split in analyse(runs, ["lr"]).params[0].splits]
    assert sentences == [
        f"{ANY_PROBLEM}: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025",
        "training diverged: 4 of 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025",
        f"{NAN}: all 2 runs with lr >= 0.3; 0 of 18 with lr <= 0.1",
    ]


def test_any_problem_is_not_said_when_it_is_one_problem_told_twice() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    runs.append(SweepRun("odd", {"seed": "3"}, NAN, True))  # a second problem, on a run without lr
    sweep = analyse(runs, ["lr"])
    assert [split.outcome for split in sweep.params[0].splits] == [DIVERGED]


def test_auto_takes_the_parameters_that_vary_and_names_those_that_vary_together() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    runs = [SweepRun(run.run, {**run.hparams, "warmup": str(1000 * float(run.hparams["lr"])), "width": "64",
                               "output_dir": f"out/{run.run}", "optimizer": "adam"}, run.outcome, run.any_problem)
            for run in runs]
    sweep = analyse(runs, [AUTO])
    assert [param.name for param in sweep.params] == ["lr", "warmup", "seed"]  # findings first
    lr, warmup, seed = sweep.params
    assert lr.splits[0].same_runs_as == ("warmup",) and warmup.splits[0].same_runs_as == ("lr",)
    assert lr.splits[0].sentence().endswith("(warmup splits these runs alike)")
    assert seed.splits == ()


def test_auto_after_names_leaves_out_the_keys_the_names_were_found_under() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    nested = [SweepRun(run.run, {"optimizer.lr": run.hparams["lr"], "seed": run.hparams["seed"]}, run.outcome,
                       run.any_problem) for run in runs]
    assert [param.name for param in analyse(nested, ["lr", AUTO]).params] == ["lr", "seed"]


def test_the_headline_names_the_most_frequent_problems_and_counts_the_rest() -> None:
    outcomes = ["a", "a", "a", "b", "b", "c", "d", "e", "f", None, None]
    sweep = analyse(sweep_runs([{"lr": str(index)} for index in range(len(outcomes))], outcomes), ["lr"])
    assert sweep.headline() == ("Sweep by lr (11 runs: 3 a, 2 b, 1 c, 1 d, 2 with 2 other problems, "
                                "2 without a problem; counts, not causes)")


def test_nothing_to_compare_is_said() -> None:
    runs = sweep_runs([{"width": "64"}, {}, {"width": "64"}], [DIVERGED, None, None])
    sweep = analyse(runs, [AUTO])
    assert sweep.params == ()
    assert sweep.notes() == ["Too few runs to compare: a split needs 2 runs on each side.",
                             "1 of the runs logged no hyper-parameter.",
                             "No logged hyper-parameter differs between these runs."]


# --------------------------------------------------------------------------------------------
# A realistic sweep, end to end
# --------------------------------------------------------------------------------------------


def write_lightning_run(folder: Path, hparams_yaml: str, loss: Sequence[float], every: int = 10) -> None:
    """``metrics.csv`` as Lightning's CSVLogger writes it (a training row every ``every`` steps, a
    validation row at each epoch's end) beside ``hparams.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["epoch,step,train_loss,val_loss"]
    for index, value in enumerate(loss):
        step = index * every + every - 1
        rows.append(f"{step // 100},{step},{float(value)!r},")
        if (step + 1) % 100 == 0:
            rows.append(f"{step // 100},{step},,{float(value) * 1.05!r}")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "hparams.yaml").write_text(hparams_yaml)


def write_lightning_sweep(root: Path) -> None:
    """Ten learning rates, two seeds each: from lr 0.03 the loss diverges, at 0.3 it goes NaN."""
    version = 0
    for lr in LOW_LRS + HIGH_LRS:
        for seed in (0, 1):
            if lr >= 0.03:
                loss = noisy(diverge(60, turn=0.5), 0.03, seed)
                loss = with_nan(loss, 48) if lr >= 0.3 else loss
            else:
                loss = noisy(decay(60, start=2.3, end=0.2 + 2e-5 / lr), 0.03, seed)
            hparams = (f"lr: {lr}\nbatch_size: {64 if version % 3 == 0 else 32}\n"
                       f"optimizer:\n  name: {'adam' if version % 2 else 'sgd'}\n  weight_decay: 0.0001\nseed: {seed}\n")
            write_lightning_run(root / "lightning_logs" / f"version_{version}", hparams, loss)
            version += 1


@pytest.fixture
def rundoctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Invoke:
    """The command line in-process, 200 columns wide."""
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: run_cli(monkeypatch, capsys, *args)


@pytest.fixture(scope="module")
def lightning_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    write_lightning_sweep(root)
    return root


def test_the_lightning_sweep_in_text(rundoctor: Invoke, lightning_sweep: Path) -> None:
    result = rundoctor("check", str(lightning_sweep), "--by", "lr,optimizer.name", "--by", "batch_size")
    assert result.code == 1, result.err
    section = result.out[result.out.index("Sweep by"):result.out.index("Summary:")].splitlines()
    assert section == [
        "Sweep by lr, optimizer.name, batch_size (20 runs: 4 training diverged, 2 training diverged (NaN/inf), "
        "14 without a problem; counts, not causes):",
        "  a warning or an error: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025",
        "  training diverged: 4 of 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025",
        "  training diverged (NaN/inf): all 2 runs with lr >= 0.3; 0 of 18 with lr <= 0.1",
        "  optimizer.name separates no diagnosis: adam in 10 runs (2 training diverged, 1 training diverged (NaN/inf)), "
        "sgd in 10 (2 training diverged, 1 training diverged (NaN/inf))",
        "  batch_size separates no diagnosis: 32 in 13 runs (3 training diverged, 1 training diverged (NaN/inf)), "
        "64 in 7 (1 training diverged, 1 training diverged (NaN/inf))",
        "",
    ]
    assert result.out.index("Advice by check") < result.out.index("Sweep by")  # after the runs, before the summary


def test_the_lightning_sweep_in_json_and_html(rundoctor: Invoke, lightning_sweep: Path) -> None:
    result = rundoctor("check", str(lightning_sweep), "--by", "auto", "--format", "json")
    document = json.loads(result.out)
    schema = json.loads(resources.files("rundoctor.reporters").joinpath("schema.json").read_text("utf-8"))
    jsonschema.validate(document, schema)
    sweep = document["sweep"]
    assert (sweep["by"], sweep["runs"], sweep["runs_without_hparams"]) == (["auto"], 20, 0)
    assert sweep["outcomes"] == {DIVERGED: 4, NAN: 2}
    assert [param["name"] for param in sweep["params"]] == ["lr", "batch_size", "optimizer.name", "seed"]
    split = sweep["params"][0]["splits"][0]
    assert split == {
        "outcome": ANY_PROBLEM, "more": {"op": ">=", "value": 0.03, "runs": 6, "with_outcome": 6},
        "less": {"op": "<=", "value": 0.025, "runs": 14, "with_outcome": 0}, "clean": True,
        "chance": pytest.approx(9 / math.comb(20, 6)), "conclusive": True, "same_runs_as": [],
        "text": f"{ANY_PROBLEM}: all 6 runs with lr >= 0.03; 0 of 14 with lr <= 0.025",
    }
    html = rundoctor("check", str(lightning_sweep), "--by", "lr", "--format", "html").out
    section = html[html.index('<section class="sweep">'):html.index('<section class="runs">')]
    assert "<td><code>lr &gt;= 0.03</code></td><td class=\"num\">6 of 6</td>" in section
    assert "<td><code>lr &lt;= 0.025</code></td><td class=\"num\">0 of 14</td>" in section


def test_without_by_there_is_no_sweep(rundoctor: Invoke, lightning_sweep: Path) -> None:
    result = rundoctor("check", str(lightning_sweep), "--format", "json")
    assert json.loads(result.out)["sweep"] is None
    assert "Sweep" not in rundoctor("check", str(lightning_sweep)).out


@pytest.mark.parametrize("args, message", [
    (["--by", "lr", "--format", "junit"], "--by applies to --format text, json, html, not junit"),
    (["--by", "lr", "--quiet"], "--by adds a section that --quiet leaves out"),
    (["--by", "lr,"], "--by takes parameter names"),
])
def test_by_where_it_cannot_show_is_a_usage_error(rundoctor: Invoke, lightning_sweep: Path, args: list[str],
                                                  message: str) -> None:
    result = rundoctor("check", str(lightning_sweep), *args)
    assert result.code == 2 and message in result.err and not result.out


def test_the_reporters_write_each_part_of_the_sweep() -> None:
    runs = lr_sweep(lambda lr, _: lr >= 0.03)
    runs[0] = SweepRun(runs[0].run, {"seed": "0"}, None, False)  # no lr
    runs = [SweepRun(run.run, {**run.hparams, "width": str(index % 2)}, run.outcome, run.any_problem)
            for index, run in enumerate(runs)]
    sweep = analyse(runs, ["lr", "optimizer", AUTO])
    report = dataclasses.replace(sample_report(), sweep=sweep)
    text = render("text", report, RenderOptions(width=200))
    section = text[text.index("Sweep by"):].split("\n\n")[0].splitlines()
    assert section == [
        "Sweep by lr, optimizer, auto (20 runs: 6 training diverged, 14 without a problem; counts, not causes):",
        "  training diverged: all 6 runs with lr >= 0.03; 0 of 13 with lr <= 0.025",
        "  (1 run did not log lr)",
        "  optimizer: no run logged it",
        "  Vary but separate no diagnosis: seed, width",
    ]
    page = render("html", report)
    assert "<li>optimizer: no run logged it</li><li>Vary but separate no diagnosis: seed, width</li>" in page
    assert render("json", report).count('"text": "training diverged: all 6 runs') == 1


HOSTILE_NAME = "evil\x1b[2J\n::error::x\u202e<script>"


def test_hostile_hyper_parameters_are_escaped_in_every_format(rundoctor: Invoke, tmp_path: Path) -> None:
    for version, lr in enumerate([0.001, 0.002, 0.003, 0.1, 0.2, 0.3]):
        loss = noisy(diverge(60, turn=0.5), 0.03, version) if lr >= 0.1 else noisy(decay(60), 0.03, version)
        value = HOSTILE_NAME if lr >= 0.1 else "plain"
        write_lightning_run(tmp_path / "lightning_logs" / f"version_{version}",
                            json.dumps({HOSTILE_NAME: lr, "optimizer": value}), loss)  # JSON is YAML
    by = ["--by", HOSTILE_NAME, "--by", "optimizer"]
    text = rundoctor("check", str(tmp_path), *by).out
    assert "\x1b" not in text and "\u202e" not in text and "\n::error::" not in text
    assert "all 3 runs with evil\\x1b[2J\\n::error::x\\u202e<script> >= 0.1" in text
    page = rundoctor("check", str(tmp_path), *by, "--format", "html").out
    assert page.count("<script>") == 1 and "&lt;script&gt;" in page  # the page's own script only
    assert "\x1b" not in page and "\u202e" not in page
    raw = rundoctor("check", str(tmp_path), *by, "--format", "json").out
    assert "\x1b" not in raw and "\u202e" not in raw
    params = json.loads(raw)["sweep"]["params"]
    assert params[0]["name"] == HOSTILE_NAME and params[0]["splits"][0]["more"]["runs"] == 3
    assert params[1]["splits"][0]["more"] == {"op": "=", "value": HOSTILE_NAME, "runs": 3, "with_outcome": 3}
