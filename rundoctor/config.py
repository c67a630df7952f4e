"""Settings from ``[tool.rundoctor]`` in pyproject.toml or a ``rundoctor.toml``, then the CLI.

The file is found by walking up from the working directory (the first directory holding a
``rundoctor.toml``, or a ``pyproject.toml`` with a ``[tool.rundoctor]`` table).  Unknown
keys, unknown checks and wrong types are errors with a "did you mean"; a team that
misspells a threshold should hear about it, not silently get the default.

    [tool.rundoctor]
    fail-on = "warning"
    ignore = ["still-improving"]
    num-classes = 10
    exclude = ["debug", "runs/old/**"]      # never read (rundoctor.globs)

    [tool.rundoctor.roles]
    val_loss = ["eval/my_loss"]

    [tool.rundoctor.checks.loss-plateau]
    severity = "info"
    min_flat_fraction = 0.4

    [tool.rundoctor.per-path-ignores]       # checks set aside on the runs a glob matches
    "runs/smoke-*" = ["still-improving", "L"]
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rundoctor.checks.base import Check
from rundoctor.errors import UsageError
from rundoctor.findings import Severity
from rundoctor.globs import PathPatterns
from rundoctor.roles import Role, parse_overrides

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


FAIL_ON_CHOICES = ("error", "warning", "info", "never")
TOP_LEVEL_KEYS = ("fail-on", "select", "ignore", "roles", "num-classes", "checks", "exclude", "per-path-ignores")


@dataclass(frozen=True)
class Settings:
    """The settings of one invocation: a config file's table with the command-line options over it.
    The defaults are what rundoctor does with neither."""

    fail_on: Severity | None = Severity.ERROR
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    roles: Mapping[str, Role] = field(default_factory=dict)  # tag or glob -> role
    num_classes: int | None = None
    num_classes_source: str = "--num-classes"
    severity: Mapping[str, Severity] = field(default_factory=dict)  # check name -> severity
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # check -> overrides
    exclude: PathPatterns = field(default_factory=lambda: PathPatterns(()))  # never read
    # (glob, check selectors): those checks' findings on the runs the glob matches are set aside
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: str | None = None  # the config file these settings were read from, if any

    def num_classes_given(self) -> tuple[int | None, str]:
        """The number of classes given by the user (None: not given, infer it) and where it came from,
        quoted in evidence."""
        return self.num_classes, self.num_classes_source


def parse_fail_on(value: str) -> Severity | None:
    """A ``fail-on`` value as a severity; None for ``never`` (no finding fails the run).
    UsageError with a "did you mean" on anything else."""
    value = value.strip().lower()
    if value not in FAIL_ON_CHOICES:
        raise UsageError(f"fail-on must be one of {', '.join(FAIL_ON_CHOICES)}{_hint(value, FAIL_ON_CHOICES)}, got {value!r}")
    return None if value == "never" else Severity(value)


def parse_selectors(values: Sequence[str], registry: Sequence[Check[Any]], where: str) -> tuple[str, ...]:
    """Check selectors from repeated options or a config list, each of which may be a comma
    list (``N001,loss-spikes``); every selector must name at least one check (a name or code
    in any case, or a code prefix such as ``N`` or ``M00``), else UsageError with a hint."""
    selectors = tuple(part.strip() for value in values for part in str(value).split(",") if part.strip())
    known = [name for check in registry for name in (check.name, check.code)]
    for selector in selectors:
        if not any(check.selected_by(selector) for check in registry):
            raise UsageError(f"{where}: unknown check {selector!r}{_hint(selector.lower(), known)}")
    return selectors


def parse_patterns(values: Sequence[str], where: str) -> PathPatterns:
    """Path globs from repeated options or a config list (each may be a comma list);
    UsageError naming ``where`` for an absolute or empty one."""
    for value in values:
        if not isinstance(value, str):
            raise UsageError(f"{where}: patterns must be strings, got {value!r}")
    try:
        return PathPatterns.parse(values)
    except ValueError as error:
        raise UsageError(f"{where}: {error}") from None


def find_config(start: Path) -> Path | None:
    """The nearest rundoctor.toml (not a run's suppression file), or pyproject.toml with
    [tool.rundoctor], at or above ``start``."""
    for directory in (start, *start.parents):
        candidate = directory / "rundoctor.toml"
        # A rundoctor.toml with a `reason` is a run's suppression file (rundoctor.suppress), which
        # travels with the logs; running from inside a run directory must not take it for the
        # project's configuration.
        if candidate.is_file() and "reason" not in _load_toml(candidate):
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                if "rundoctor" in _load_toml(pyproject).get("tool", {}):
                    return pyproject
            except UsageError:
                # somebody else's broken pyproject is not our config, but one that holds a
                # [tool.rundoctor] table is: ignoring it would silently drop the settings
                if b"[tool.rundoctor" in pyproject.read_bytes():
                    raise
                continue
    return None


def load_settings(path: Path | None, registry: Sequence[Check[Any]]) -> Settings:
    """Settings from a config file (None: defaults), validated against the check registry."""
    if path is None:
        return Settings()
    data = _load_toml(path)
    table = data.get("tool", {}).get("rundoctor", {}) if path.name == "pyproject.toml" else data
    return settings_from_table(table, registry, source=str(path))


def settings_from_table(table: Mapping[str, Any], registry: Sequence[Check[Any]], source: str) -> Settings:
    """Settings from a ``[tool.rundoctor]`` table or a ``rundoctor.toml``; unknown keys, unknown checks
    and wrong types raise UsageError naming ``source``."""
    _reject_unknown(table, TOP_LEVEL_KEYS, f"{source}")
    by_name = {check.name: check for check in registry}
    settings = Settings(source=source)
    if "fail-on" in table:
        settings = replace(settings, fail_on=parse_fail_on(_typed(table["fail-on"], str, "fail-on", source)))
    for key in ("select", "ignore"):
        if key in table:
            names = parse_selectors(_typed(table[key], list, key, source), registry, f"{source}: {key}")
            settings = (replace(settings, select=names) if key == "select"
                        else replace(settings, ignore=names))
    if "num-classes" in table:
        value = _typed(table["num-classes"], int, "num-classes", source)
        if value < 2:  # as --num-classes: chance is 1/C, and one class has no chance to compare with
            raise UsageError(f"{source}: num-classes must be at least 2, got {value}")
        settings = replace(settings, num_classes=value, num_classes_source=f"config ({source})")
    if "exclude" in table:
        settings = replace(settings, exclude=parse_patterns(_typed(table["exclude"], list, "exclude", source), f"{source}: exclude"))
    if "per-path-ignores" in table:
        ignores = []
        for pattern, selectors in _typed(table["per-path-ignores"], dict, "per-path-ignores", source).items():
            where = f"{source}: per-path-ignores.{pattern!r}"
            parse_patterns([pattern], where)
            ignores.append((pattern, parse_selectors(_typed(selectors, list, f"per-path-ignores.{pattern!r}", source), registry, where)))
        settings = replace(settings, per_path_ignores=tuple(ignores))
    if "roles" in table:
        try:
            settings = replace(settings, roles=parse_overrides(_typed(table["roles"], dict, "roles", source)))
        except ValueError as error:
            raise UsageError(f"{source}: roles: {error}") from None
    severity: dict[str, Severity] = {}
    params: dict[str, dict[str, Any]] = {}
    for name, options in _typed(table.get("checks", {}), dict, "checks", source).items():
        check = by_name.get(name)
        if check is None:
            raise UsageError(f"{source}: checks: unknown check {name!r}{_hint(name, by_name)}")
        options = dict(_typed(options, dict, f"checks.{name}", source))
        if "severity" in options:
            level = _typed(options.pop("severity"), str, f"checks.{name}.severity", source)
            if level not in [s.value for s in Severity]:
                raise UsageError(f"{source}: checks.{name}.severity must be error, warning or info, got {level!r}")
            severity[name] = Severity(level)
        try:
            check.make_params(options)
        except ValueError as error:
            raise UsageError(f"{source}: {error}") from None
        params[name] = options
    return replace(settings, severity=severity, params=params)


def parse_param_options(pairs: Sequence[str], registry: Sequence[Check[Any]]) -> dict[str, dict[str, Any]]:
    """CLI ``--param check.name=value`` pairs; values are TOML literals (``0.4``, ``true``)."""
    by_name = {check.name: check for check in registry}
    params: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, raw = pair.partition("=")
        check_name, dot, param = target.partition(".")
        if not (sep and dot and param):
            raise UsageError(f"--param takes CHECK.PARAM=VALUE, got {pair!r}")
        check = by_name.get(check_name)
        if check is None:
            raise UsageError(f"--param: unknown check {check_name!r}{_hint(check_name, by_name)}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        params.setdefault(check_name, {})[param] = value
        try:
            check.make_params(params[check_name])
        except ValueError as error:
            raise UsageError(f"--param: {error}") from None
    return params


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            table: dict[str, Any] = tomllib.load(handle)
            return table
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read config {path}: {error}") from None


def _reject_unknown(table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise UsageError(f"{where}: unknown key {key!r}{_hint(key, known)}")


def _typed(value: Any, kind: type, key: str, source: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"{source}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def _hint(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
