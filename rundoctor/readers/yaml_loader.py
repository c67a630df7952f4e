"""YAML side files parsed as plain data within the bounds of :mod:`rundoctor.readers.sidefiles`.

Apart from :mod:`~rundoctor.readers.sidefiles` so that PyYAML and the loader classes below
(about 12 ms of start-up) are imported only when a run has YAML beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import AliasEvent, Event, NodeEvent, ScalarEvent
from yaml.nodes import Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from rundoctor.readers.sidefiles import LONGEST_YAML_INTEGER, MAX_NESTING, MAX_YAML_ALIASES, MAX_YAML_VALUES


class Unbounded(Exception):
    """A YAML document that breaks a bound, raised while it is composed or constructed."""


class NotYaml(ValueError):
    """A document PyYAML cannot read; the message says what it found wrong and where."""


def load_plain(text: str) -> Any:
    """The one YAML document in ``text`` as plain data.  Raises :class:`Unbounded` when it
    breaks a bound, :class:`NotYaml` when it is not YAML."""
    loader = None
    try:
        loader = _new_loader(text)  # PyYAML's reader checks the characters here
        return loader.get_single_data()
    except Unbounded:
        raise
    except RecursionError:  # not reached within the bounds; kept so that no file can crash a read
        raise Unbounded(f"nested deeper than {MAX_NESTING} levels") from None
    # PyYAML's constructors index and look up what an explicit tag gives them unchecked:
    # "!!int" alone raises IndexError, "!!bool x" KeyError.
    except (yaml.YAMLError, ValueError, TypeError, LookupError, ArithmeticError) as error:
        raise NotYaml(_problem(error)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _problem(error: Exception) -> str:
    """What PyYAML or a constructor found wrong, and on which line when it says."""
    if isinstance(error, MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = f" on line {mark.line + 1}" if mark is not None else ""
        return (f"{error.context}, " if error.context else "") + error.problem + where
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


class _BoundedComposer(Composer):
    """PyYAML's composer, counting as it goes: nesting, aliases, and the values the document
    stands for with each alias counted as a copy of what it names (the billion-laughs bound)."""

    peek_event: Callable[[], Event]  # the parser's, mixed in beside this class

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # lists and mappings open around the node being composed
        self.values = 0
        self.aliases = 0
        # Anchored nodes composed in full -> the values each stands for.  An anchor not here
        # yet is still being composed: an alias to it is a loop.
        self.anchored_values: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise Unbounded(f"more than {MAX_YAML_ALIASES} aliases")
            named = self.anchors.get(event.anchor)
            if named is not None:  # an undefined alias is the composer's error to report
                if id(named) not in self.anchored_values:
                    raise Unbounded("an alias inside the node it names (a loop)")
                self._count(self.anchored_values[id(named)])
            return super().compose_node(parent, index)
        nests = not isinstance(event, ScalarEvent)
        self.depth += nests
        if self.depth > MAX_NESTING:
            raise Unbounded(f"nested deeper than {MAX_NESTING} levels")
        before = self.values
        self._count(1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= nests
        if isinstance(event, NodeEvent) and event.anchor is not None:
            self.anchored_values[id(node)] = self.values - before
        return node

    def _count(self, values: int) -> None:
        self.values += values
        if self.values > MAX_YAML_VALUES:
            raise Unbounded(f"it stands for more than {MAX_YAML_VALUES:,} values once its aliases are "
                             "expanded (an alias bomb?)")


class _PlainConstructor(SafeConstructor):
    """PyYAML's safe constructor with the odd types made plain (see the module docstring)."""

    def construct_integer(self, node: ScalarNode) -> int | str:
        if len(node.value) > LONGEST_YAML_INTEGER:
            return str(node.value)
        return self.construct_yaml_int(node)

    def construct_as_written(self, node: ScalarNode) -> str:
        return str(node.value)

    def construct_binary_description(self, node: ScalarNode) -> str:
        return f"<binary data, {len(self.construct_yaml_binary(node)):,} bytes>"

    def construct_tuple_as_list(self, node: SequenceNode) -> list[Any]:
        """Lightning writes tuples (Adam's ``betas``) as ``!!python/tuple``: a sequence of plain
        values, read as a list without constructing anything."""
        return self.construct_sequence(node)

    def refuse_type(self, node: Node) -> Any:
        """Every tag the safe constructor does not know (``!!python/object``, ``!custom``)."""
        raise Unbounded(f"the tag {node.tag} asks for a type; side files are read as plain data only")


# What add_constructor does, spelled out: its stub accepts PyYAML's own loaders only.
_PlainConstructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    "tag:yaml.org,2002:int": _PlainConstructor.construct_integer,
    "tag:yaml.org,2002:timestamp": _PlainConstructor.construct_as_written,
    "tag:yaml.org,2002:binary": _PlainConstructor.construct_binary_description,
    "tag:yaml.org,2002:python/tuple": _PlainConstructor.construct_tuple_as_list,
    None: _PlainConstructor.refuse_type,
}


class _PythonEventParser(Reader, Scanner, Parser):
    """PyYAML's own scanner and parser, for installs built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


class _PythonLoader(_BoundedComposer, _PythonEventParser, _PlainConstructor, Resolver):
    """PyYAML's scanner and parser, the composer with the bounds, the plain constructor."""

    def __init__(self, stream: str) -> None:
        _PythonEventParser.__init__(self, stream)
        _BoundedComposer.__init__(self)
        _PlainConstructor.__init__(self)
        Resolver.__init__(self)


class _Loader(Protocol):
    def get_single_data(self) -> Any: ...

    def dispose(self) -> None: ...


_new_loader: Callable[[str], _Loader] = _PythonLoader

if yaml.__with_libyaml__:  # PyPI's wheels are built with it
    from yaml._yaml import CParser

    class _LibyamlLoader(_BoundedComposer, CParser, _PlainConstructor, Resolver):
        """libyaml's scanner and parser (a small file loads eight times faster than with
        PyYAML's own), the composer with the bounds, the plain constructor."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _PlainConstructor.__init__(self)
            Resolver.__init__(self)

    _new_loader = _LibyamlLoader
