"""User modules ("plugins") imported in the main process and in every worker before any work.

A plugin is a module name (importable where the work runs) or a path to a ``.py`` file. Importing
it runs its code: it registers optimizers with :func:`simulate.optimizers.register`, and claims,
experiments and figures with the decorators of :mod:`compare.engine.registry`. Trust: a plugin is
code you run, with your rights, in every worker (and on every dask worker of ``--scheduler``).

:func:`load` is idempotent per process; a missing module, or one that raises while importing, is a
:class:`PluginError` naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Sequence

from compare.engine import codec

#: modules whose import registers the built-in experiments, claims and figures.
BUILTIN: tuple[str, ...] = ("compare.linrep", "compare.single_index", "compare.scorecard")

_LOADED: dict[str, object] = {}
_FILES: dict[str, str] = {}


class PluginError(ValueError):
    """A plugin that cannot be imported (missing, or raising while importing).

    ``str(e)`` is the house message (``"load: argument 'plugins' must ...; got ...."``), ``e.detail``
    the command line's (``"--plugins: no module named 'x'"``).
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail if detail is not None else message


def _error(func: str, name: str, spec: str, detail: str) -> PluginError:
    why = detail.removeprefix("--plugins: ")
    return PluginError(f"{func}: argument '{name}' must name an importable module or a .py file; got {spec!r} "
                       f"({why}).", detail)


def check_specs(func: str, name: str, plugins: object) -> tuple[str, ...]:
    """``plugins`` as a tuple of non-empty strings (a list or tuple; a lone string is rejected)."""
    from compare import _validate as V

    specs = V.strings(func, name, plugins, what="plugin module names or .py paths")
    if any(not p for p in specs):
        raise V.fail(func, name, "non-empty plugin names", "an empty string")
    return specs


def split(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``("a", "b", "c")`` (empty parts dropped)."""
    if spec is None:
        return ()
    items = [spec] if isinstance(spec, str) else list(spec)
    return tuple(p.strip() for it in items for p in str(it).split(",") if p.strip())


def _module_name_for(path: Path) -> str:
    return "concurrence_plugin_" + path.stem.replace("-", "_")


def load_one(spec: str) -> object:
    """Import plugin ``spec`` (module name or ``.py`` path) once in this process."""
    from compare import _validate as V

    return _load_one("load_one", "spec", V.text("load_one", "spec", spec))


def _load_one(func: str, arg: str, spec: str) -> object:
    if spec in _LOADED:
        return _LOADED[spec]
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise _error(func, arg, spec, f"--plugins: {spec!r} is not a file")
        name = _module_name_for(path)
        mod = sys.modules.get(name)
        if mod is None:
            loader_spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = mod
            try:
                loader_spec.loader.exec_module(mod)
            except BaseException as e:
                sys.modules.pop(name, None)
                raise _error(func, arg, spec, f"--plugins: {spec!r} raised while importing: {type(e).__name__}: {e}") \
                    from None
        _FILES[spec] = str(path)
    else:
        try:
            mod = importlib.import_module(spec)
        except ModuleNotFoundError as e:
            if e.name and spec.startswith(e.name):
                raise _error(func, arg, spec, f"--plugins: no module named {spec!r}") from None
            raise _error(func, arg, spec, f"--plugins: {spec!r} raised while importing: ModuleNotFoundError: {e}") \
                from None
        except BaseException as e:
            raise _error(func, arg, spec, f"--plugins: {spec!r} raised while importing: {type(e).__name__}: {e}") \
                from None
        f = getattr(mod, "__file__", None)
        if f:
            _FILES[spec] = f
        name = mod.__name__
    codec.trust_module(name)
    _LOADED[spec] = mod
    return mod


def load(plugins: Sequence[str] = ()) -> None:
    """Import the built-in registrations, then every plugin (idempotent)."""
    specs = check_specs("load", "plugins", plugins)
    for m in BUILTIN:
        if m not in _LOADED:
            _LOADED[m] = importlib.import_module(m)
    for p in specs:
        _load_one("load", "plugins", p)


def files(plugins: Sequence[str]) -> list[str]:
    """Source files of loaded plugins (part of the cache's code version)."""
    return [_FILES[p] for p in plugins if p in _FILES]
