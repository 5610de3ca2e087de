"""Config values against type annotations: seqpipe's scalar coercion, then jsonargparse's validation.

``coerce`` keeps what configs have always handed the constructors (``5e-05`` a float, an int into a float
argument a float, a YAML date into a str argument its ISO string), so training sees the same values bit for
bit. ``validate`` then asks jsonargparse, the parser under LightningCLI, whether the value fits the whole
annotation (Literal choices, Union, Optional, list[int], dict[str, float], dataclasses, ...). It validates
only: the constructor gets the plain YAML value, never an object jsonargparse would build from it.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import logging
import re
import types
import typing
from typing import Any, Literal, Union

from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)


def type_hints(classes: list[Any], constructor: Any) -> dict[str, Any]:
    """The constructor annotations of ``classes``, later classes winning (a class over its kwargs target);
    unresolvable annotations are left out (those values reach the constructor as YAML gave them)."""
    hints: dict[str, Any] = {}
    for klass in classes:
        try:
            hints.update(typing.get_type_hints(constructor(klass)))
        except Exception:
            pass
    hints.pop("return", None)
    return hints


def _options(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)


def coerce(value: Any, hint: Any, key: str, where: Any) -> Any:
    """``value`` as the annotation ``hint`` wants it: numbers from strings, ints as floats, dates as ISO
    strings; a clear error when a plain scalar type cannot take it. Other annotations: unchanged."""
    options = _options(hint)
    if value is None:
        return value
    if isinstance(value, datetime.date) and str in options:  # YAML 1.1 dates (e.g. from Python callers)
        return value.isoformat()
    scalars = [t for t in options if t in (bool, int, float, str)]
    if any(t is Any for t in options) or len(scalars) < len(options) - (type(None) in options):
        return value  # containers, Literal, paths, Any: validate() checks them
    if isinstance(value, bool):
        if bool in scalars:
            return value
    elif isinstance(value, int) and (int in scalars or float in scalars):
        return value if int in scalars else float(value)
    elif isinstance(value, float) and float in scalars:
        return value
    elif isinstance(value, float) and int in scalars and value.is_integer():
        return int(value)
    elif isinstance(value, str):
        if str in scalars:
            return value
        for t in (int, float):
            if t in scalars:
                try:
                    return t(value.replace("_", ""))
                except ValueError:
                    pass
    names = " or ".join(t.__name__ for t in scalars + ([type(None)] if type(None) in options else []))
    raise SeqpipeError(f"'{key}' must be {names}, got {value!r}", where=where, fix=f"set {key} to a {names}")


def validate(value: Any, hint: Any, key: str, where: Any) -> None:
    """A one-line SeqpipeError unless jsonargparse accepts ``value`` for ``hint`` as it is (a value it
    accepts only by converting it, e.g. the string "3" for an int list, is refused: the constructor would
    get the string)."""
    if hint is Any or hint is None:
        return
    try:
        parser = _parser(hint)
    except TypeError:  # an unhashable annotation: a parser of its own
        parser = _parser.__wrapped__(hint)
    if parser is None:
        return
    from jsonargparse import ArgumentError, Namespace

    try:
        parsed = parser.parse_object({"value": value}, defaults=False).value
    except (ArgumentError, ValueError, TypeError):
        parsed = _REFUSED
    if isinstance(parsed, Namespace):  # a nested class or dataclass, given as its mapping: checked, kept as YAML
        parsed = value if isinstance(value, dict) else _REFUSED
    if parsed is _REFUSED or _typed(parsed) != _typed(value):
        raise SeqpipeError(f"'{key}' must be {describe(hint)}, got {value!r}", where=where, fix=_fix(value, hint, key))


_REFUSED = object()


@functools.lru_cache(maxsize=512)
def _parser(hint: Any) -> Any:
    """A jsonargparse parser of one value typed ``hint`` (None: a type jsonargparse cannot check)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    try:
        parser.add_argument("--value", type=hint)
    except Exception as e:  # an annotation jsonargparse does not support: left to the constructor
        log.debug("jsonargparse cannot check %r: %s", hint, e)
        return None
    return parser


def _typed(x: Any) -> Any:
    """An order-free, type-keeping form: 1 and 1.0, or [1] and (1,), differ."""
    if isinstance(x, dict):
        return ("dict", sorted((str(k), _typed(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_typed(v) for v in x])
    return (type(x).__name__, repr(x))


def describe(hint: Any) -> str:
    """An annotation in a user's words: ``one of ['rnn', 'lstm', 'gru']``, ``int or None``, ``list[int]``."""
    if typing.get_origin(hint) is Literal:
        return f"one of {list(typing.get_args(hint))}"
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return re.sub(r"\b(typing|collections\.abc)\.", "", repr(hint))


def _fix(value: Any, hint: Any, key: str) -> str:
    choices = [c for o in _options(hint) if typing.get_origin(o) is Literal for c in typing.get_args(o)]
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5) if choices else []
    if close:
        return f"did you mean '{close[0]}'?"
    return f"set {key} to {describe(hint)}"


def normalize_duration(value: Any, where: Any = None) -> Any:
    """trainer.max_time as Lightning takes it: "DD:HH:MM:SS", a number of seconds, or a dict."""
    if isinstance(value, bool):
        raise SeqpipeError(f"trainer.max_time must be a duration, got {value!r}", where=where)
    if isinstance(value, (int, float)):
        s = int(round(value))
        return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    if isinstance(value, str) and not re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", value.strip()):
        raise SeqpipeError(
            f"trainer.max_time {value!r} is not DD:HH:MM:SS",
            where=where,
            fix='write "00:01:00:00" (one hour) or a number of seconds',
        )
    return value
