"""Settings: frozen keyword-only dataclasses, named presets, and ``NAME=VALUE`` overrides.

Every experiment, claim and figure is a function of one settings dataclass. ``fast`` and
``paper`` are presets of it (``cls.preset(size)``). A user changes a setting by name:

- a *leaf name* (``noise_std``) sets every field of that name, however deep (a claim's settings may
  hold the same task family twice, e.g. a curve run and its step-size sweep);
- a *dotted path* (``curves.problem.noise_std``) sets exactly one field;
- for a tuple setting, ``+VALUES`` appends to the current value (``optimizers=+momentum``).

Values given as strings (the command line's ``--set noise_std=0``) are converted with the field's
type annotation (``int``, ``float``, ``bool``, ``str``, ``tuple[...]`` as comma-separated items,
``X | None`` with ``none``); the dataclass's own ``__post_init__`` then checks the range. Any
failure is a :class:`SettingsError` naming the setting and, for unknown names, listing the valid
ones.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Iterator, Mapping, Sequence, TypeVar

S = TypeVar("S")
SIZES = ("fast", "paper")


class SettingsError(ValueError):
    """A setting that does not exist, or a value it cannot take.

    ``str(e)`` is the house message (``"override: argument 'overrides' must ...; got ...."``);
    ``e.detail`` the same in the command line's words (``"setting 'n' must be an integer; got '1.5'"``).
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail if detail is not None else message


class Settings:
    """Mixin for settings dataclasses: ``preset(size)`` and introspection helpers."""

    @classmethod
    def preset(cls: type[S], size: str) -> S:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{cls.__name__}.preset")


def check_size(func: str, size: Any) -> str:
    from compare import _validate as V

    return V.choice(func, "size", size, SIZES)


def preset(cls: type[S], size: str) -> S:
    """``cls.preset(size)`` with the class and the size checked."""
    from compare import _validate as V

    V.settings_class("preset", "cls", cls)
    check_size("preset", size)
    return cls.preset(size)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- introspection
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _instance(func: str, name: str, obj: Any) -> None:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        what = f"the class {obj.__name__}" if isinstance(obj, type) else f"an object of type {type(obj).__name__}"
        raise SettingsError(f"{func}: argument '{name}' must be a settings dataclass instance; got {what}.")


def leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted path, value, annotation)`` of every leaf field of a settings dataclass.

    Fields holding dataclasses (or tuples of dataclasses, indexed ``name.0``) are descended into.
    """
    _instance("leaves", "obj", obj)
    yield from _leaves(obj, prefix)


def _leaves(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        v = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            yield from _leaves(v, path + ".")
        elif isinstance(v, tuple) and v and all(dataclasses.is_dataclass(x) and not isinstance(x, type) for x in v):
            for i, x in enumerate(v):
                yield from _leaves(x, f"{path}.{i}.")
        else:
            yield path, v, hints.get(f.name, Any)


def as_dict(obj: Any) -> dict[str, Any]:
    """``{dotted path: value}`` of every leaf (JSON-able values: tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, float) and v != v:
            return "nan"
        return v

    _instance("as_dict", "obj", obj)
    return {p: plain(v) for p, v, _ in _leaves(obj)}


def names(obj: Any) -> list[str]:
    """Every name a user may set: the dotted paths and the leaf names."""
    _instance("names", "obj", obj)
    paths = [p for p, _, _ in _leaves(obj)]
    return sorted(set(paths) | {p.rsplit(".", 1)[-1] for p in paths})


def _matches(path: str, name: str) -> bool:
    return path == name or path.endswith("." + name)


# --------------------------------------------------------------------------- conversion
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert(value: Any, annotation: Any, *, name: str) -> Any:
    """``value`` (often a string from the command line) as the type ``annotation`` names."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() == "none")):
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return convert(value, a, name=name)
            except SettingsError as e:
                errors.append(str(e))
        raise SettingsError(errors[0] if errors else f"setting {name!r}: cannot convert {value!r}")
    if annotation is Any:
        return value
    if origin is tuple:
        if isinstance(value, str):
            items = [x.strip() for x in value.split(",") if x.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise SettingsError(f"setting {name!r} must be a comma-separated list; got {value!r}")
        item_type = args[0] if args else Any
        return tuple(convert(x, item_type, name=name) for x in items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise SettingsError(f"setting {name!r} must be true or false; got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise SettingsError(f"setting {name!r} must be an integer; got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip(), 10)
            except ValueError:
                pass
        raise SettingsError(f"setting {name!r} must be an integer; got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise SettingsError(f"setting {name!r} must be a number; got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"setting {name!r} must be a number; got {value!r}") from None
        if not math.isfinite(v):
            raise SettingsError(f"setting {name!r} must be a finite number; got {value!r}")
        return v
    if annotation is str:
        if not isinstance(value, str):
            raise SettingsError(f"setting {name!r} must be a string; got {value!r}")
        return value
    return value


# --------------------------------------------------------------------------- overrides
def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (the command line's repeated ``--set``)."""
    from compare import _validate as V

    def bad(expected: str, it: Any) -> SettingsError:
        got = repr(it) if isinstance(it, str) else V.describe(it)
        return SettingsError(f"parse_assignments: argument 'items' must be {expected}; got {got}.",
                             detail=f"--set must be {expected.replace(' strings', '')}; got {got}")

    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise bad("a list of NAME=VALUE strings", items)
    out: dict[str, str] = {}
    for it in items:
        if not isinstance(it, str) or "=" not in it:
            raise bad("NAME=VALUE strings", it)
        k, v = it.split("=", 1)
        k = k.strip()
        if not k:
            raise bad("NAME=VALUE strings with a non-empty NAME", it)
        out[k] = v
    return out


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, tuple):
        i = int(head)
        return obj[:i] + (_replace_path(obj[i], rest, value),) + obj[i + 1:]
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), rest, value)})


def override(settings: S, overrides: Mapping[str, Any], *, strict: bool = True) -> tuple[S, set[str]]:
    """``settings`` with ``overrides`` applied; returns the new settings and the names it used.

    overrides: ``{name: value}``; a name is a leaf name or a dotted path (module docstring).
    strict: raise :class:`SettingsError` for a name this settings class does not have (listing the
        valid names); with ``strict=False`` such names are skipped (a report applies one ``--set`` to
        every selected claim, and each claim takes the names it has).
    """
    return _override(settings, overrides, strict=strict, func="override", arg="overrides")


def _override(settings: S, overrides: Any, *, strict: Any, func: str, arg: str) -> tuple[S, set[str]]:
    """:func:`override`, its errors naming ``func`` and its argument ``arg`` (``claim_job``, ``check``)."""
    from compare import _validate as V

    _instance(func, "settings", settings)
    try:
        overrides = V.mapping(func, arg, overrides, optional=False)
        strict = V.flag(func, "strict", strict)
    except ValueError as e:
        raise SettingsError(str(e)) from None
    found = list(_leaves(settings))
    used: set[str] = set()
    new = settings
    for name, raw in overrides.items():
        targets = [(p, ann) for p, _, ann in found if _matches(p, name)]
        if not targets:
            if strict:
                cls = type(settings).__name__
                detail = f"unknown setting {name!r} for {cls}; valid settings: {', '.join(names(settings))}"
                raise SettingsError(f"{func}: argument '{arg}' must name settings of {cls} (valid settings: "
                                    f"{', '.join(names(settings))}); got the unknown setting {name!r}.", detail)
            continue
        for path, ann in targets:
            try:
                if isinstance(raw, str) and raw.startswith("+") and typing.get_origin(ann) is tuple:
                    current = next(v for p, v, _ in _leaves(new) if p == path)  # "+a,b": append to the current tuple
                    value = tuple(current) + convert(raw[1:], ann, name=name)
                else:
                    value = convert(raw, ann, name=name)
            except SettingsError as e:
                expected = e.detail.split(" must ", 1)[-1].rsplit("; got ", 1)[0].removeprefix("be ")
                raise SettingsError(f"{func}: argument '{arg}' must give setting {name!r} {expected}; got {raw!r}.",
                                    e.detail) from None
            try:
                new = _replace_path(new, path.split("."), value)
            except SettingsError:
                raise
            except (ValueError, TypeError) as e:
                inner = str(e).rstrip(".")
                raise SettingsError(f"{func}: argument '{arg}' must give setting {name!r} a value its class "
                                    f"accepts ({inner}); got {raw!r}.",
                                    f"setting {name}={raw!r} is not valid: {e}") from None
        used.add(name)
    return new, used
