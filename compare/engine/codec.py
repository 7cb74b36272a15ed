"""Results to a JSON tree plus numpy arrays, and back, without executing code on read.

A cached result is a tree of ``None``, ``bool``, ``int``, ``float`` (non-finite ones included),
``str``, lists, tuples, string-keyed dicts, numpy arrays of numeric or boolean dtype,
``numpy.random.SeedSequence`` (entropy, spawn key, pool size), and
dataclass instances whose fields are such trees. :func:`encode` turns it into a JSON-able tree in
which each array is replaced by a reference into a list of arrays; :func:`decode` rebuilds it.

Reading never runs code from the file: arrays are read by numpy with ``allow_pickle=False`` (the
caller's job), and a dataclass is rebuilt only if its type is *already imported* from the
project's packages (``theory``, ``simulate``, ``compare``) or from a loaded plugin module; its
fields are set directly (no ``__init__``, no ``__post_init__``). A tree naming any other type is
rejected with ``ValueError``, never imported.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import numpy as np

#: module prefixes whose dataclasses may be rebuilt from a cache file (plugins are added at load).
TRUSTED_MODULES: set[str] = {"theory", "simulate", "compare"}


def trust_module(name: str) -> None:
    """Allow dataclasses of the (already imported) module ``name`` to be rebuilt (plugins)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"trust_module: argument 'name' must be a non-empty module name; got {name!r}.")
    TRUSTED_MODULES.add(name)


def _trusted(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in TRUSTED_MODULES)


def encode(obj: Any) -> tuple[Any, list[np.ndarray]]:
    """``(tree, arrays)``: a JSON-able tree and the arrays it refers to by index."""
    return _encode(obj, "encode", "obj")


def _encode(obj: Any, func: str, name: str) -> tuple[Any, list[np.ndarray]]:
    arrays: list[np.ndarray] = []

    def bad(expected: str, got: str) -> ValueError:
        return ValueError(f"{func}: argument '{name}' must be {expected}; got {got}.")

    def enc(x: Any) -> Any:
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, (int, np.integer)) and not isinstance(x, np.bool_):
            return int(x)
        if isinstance(x, np.bool_):
            return bool(x)
        if isinstance(x, (float, np.floating)):
            v = float(x)
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in "biufc":
                raise bad("a tree whose arrays have a numeric or boolean dtype", f"an array of dtype {x.dtype}")
            arrays.append(np.ascontiguousarray(x))
            return {"__array__": len(arrays) - 1}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            cls = type(x)
            return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                    "fields": {f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if isinstance(x, np.random.SeedSequence):
            return {"__seedsequence__": {"entropy": enc(x.entropy), "spawn_key": [int(k) for k in x.spawn_key],
                                         "pool_size": int(x.pool_size)}}
        if isinstance(x, tuple):
            return {"__tuple__": [enc(v) for v in x]}
        if isinstance(x, list):
            return [enc(v) for v in x]
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise bad("a tree whose dicts have string keys",
                          f"the key {next(k for k in x if not isinstance(k, str))!r}")
            if any(k.startswith("__") and k.endswith("__") for k in x):
                return {"__dict__": {k: enc(v) for k, v in x.items()}}
            return {k: enc(v) for k, v in x.items()}
        raise bad("a tree of None, bool, int, float, str, lists, tuples, string-keyed dicts, numeric arrays, "
                  "SeedSequences and dataclasses (cannot store that type)", f"a value of type {type(x).__name__}")

    return enc(obj), arrays


def _bad_tree(expected: str, got: str) -> ValueError:
    return ValueError(f"decode: argument 'tree' must be {expected}; got {got}.")


def _resolve(name: str) -> type:
    module, _, qual = name.partition(":")
    if not _trusted(module):
        raise _bad_tree("a tree naming dataclasses of trusted modules only", f"type {name!r} from a module that is "
                                                                            f"not trusted")
    mod = sys.modules.get(module)
    if mod is None:
        raise _bad_tree("a tree naming dataclasses of loaded modules only", f"type {name!r} from a module that is "
                                                                           f"not loaded")
    obj: Any = mod
    for part in qual.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise _bad_tree("a tree naming known dataclasses", f"an unknown type {name!r}")
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise _bad_tree("a tree naming dataclasses", f"{name!r}, which is not a dataclass")
    return obj


def decode(tree: Any, arrays: list[np.ndarray]) -> Any:
    """The value :func:`encode` was given (dataclasses of trusted, loaded modules only)."""
    if not isinstance(arrays, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise ValueError(f"decode: argument 'arrays' must be a list of numpy arrays; got "
                         f"{type(arrays).__name__ if not isinstance(arrays, (list, tuple)) else 'other entries'}.")
    try:
        return _decode(tree, arrays)
    except ValueError:
        raise
    except Exception as e:  # a malformed node (bad index, bad float text, wrong field types)
        raise _bad_tree("a tree written by encode", f"a malformed node ({type(e).__name__}: {e})") from None


def _decode(tree: Any, arrays: list[np.ndarray] | tuple) -> Any:
    def dec(x: Any) -> Any:
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [dec(v) for v in x]
        if isinstance(x, dict):
            if "__array__" in x:
                i = x["__array__"]
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(arrays):
                    raise _bad_tree(f"a tree whose array references are in [0, {len(arrays)})", repr(i))
                return arrays[i]
            if "__float__" in x:
                if x["__float__"] not in ("inf", "-inf", "nan"):
                    raise _bad_tree("a tree whose non-finite floats are 'inf', '-inf' or 'nan'", repr(x["__float__"]))
                return float(x["__float__"])
            if "__tuple__" in x:
                return tuple(dec(v) for v in x["__tuple__"])
            if "__seedsequence__" in x:
                v = x["__seedsequence__"]
                return np.random.SeedSequence(dec(v["entropy"]), spawn_key=tuple(v["spawn_key"]),
                                              pool_size=int(v["pool_size"]))
            if "__dict__" in x:
                return {k: dec(v) for k, v in x["__dict__"].items()}
            if "__dataclass__" in x:
                cls = _resolve(str(x["__dataclass__"]))
                fields = {f.name for f in dataclasses.fields(cls)}
                given = x.get("fields", {})
                if not isinstance(given, dict) or set(given) != fields:
                    raise _bad_tree(f"a tree whose {cls.__qualname__} has its fields",
                                    f"the fields {sorted(given) if isinstance(given, dict) else given!r}")
                obj = object.__new__(cls)
                for k, v in given.items():
                    object.__setattr__(obj, k, dec(v))
                return obj
            return {k: dec(v) for k, v in x.items()}
        raise _bad_tree("a JSON tree (None, bool, int, float, str, lists, dicts)", f"a node of type {type(x).__name__}")

    return dec(tree)
