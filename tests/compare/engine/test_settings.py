"""compare.engine.settings: presets, NAME=VALUE overrides by leaf name or dotted path, conversion, errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from compare.engine import settings as S


@dataclass(frozen=True, kw_only=True)
class Inner(S.Settings):
    noise_std: float = 0.01
    law: str = "rademacher"
    steps: int = 10

    def __post_init__(self):
        if not self.noise_std >= 0:
            raise ValueError(f"Inner: argument 'noise_std' must be >= 0; got {self.noise_std!r}.")

    @classmethod
    def preset(cls, size: str) -> "Inner":
        return cls(steps=10 if size == "fast" else 100)


@dataclass(frozen=True, kw_only=True)
class Outer(S.Settings):
    curves: Inner = Inner()
    sweep: Inner = Inner()
    optimizers: tuple[str, ...] = ("sgd", "kfac")
    strict: bool = False
    ratio: float | None = None

    @classmethod
    def preset(cls, size: str) -> "Outer":
        return cls(curves=Inner.preset(size), sweep=Inner.preset(size))


def test_leaf_name_sets_every_field_of_that_name_and_dotted_path_one():
    o = Outer.preset("fast")
    new, used = S.override(o, {"noise_std": "0"})
    assert new.curves.noise_std == 0.0 and new.sweep.noise_std == 0.0 and used == {"noise_std"}
    new, _ = S.override(o, {"curves.steps": "50"})
    assert new.curves.steps == 50 and new.sweep.steps == 10
    assert S.as_dict(new)["curves.steps"] == 50


def test_conversion_by_annotation_and_append():
    o = Outer()
    new, _ = S.override(o, {"optimizers": "sgd, adam", "strict": "true", "ratio": "none"})
    assert new.optimizers == ("sgd", "adam") and new.strict is True and new.ratio is None
    new, _ = S.override(o, {"optimizers": "+momentum", "ratio": "2.5"})
    assert new.optimizers == ("sgd", "kfac", "momentum") and new.ratio == 2.5
    new, _ = S.override(o, {"steps": 7})  # programmatic values pass through the same checks
    assert new.curves.steps == 7


@pytest.mark.parametrize("overrides, needle", [
    ({"nope": "1"}, "override: argument 'overrides' must name settings of Outer (valid settings:"),
    ({"steps": "1.5"}, "override: argument 'overrides' must give setting 'steps' an integer; got '1.5'."),
    ({"strict": "maybe"}, "argument 'overrides' must give setting 'strict' true or false"),
    ({"noise_std": "-1"}, "must give setting 'noise_std' a value its class accepts (Inner: argument 'noise_std' "
                          "must be >= 0"),
    ({"noise_std": "abc"}, "must give setting 'noise_std' a number"),
])
def test_bad_overrides_name_the_setting(overrides, needle):
    with pytest.raises(S.SettingsError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        S.override(Outer(), overrides)


def test_non_strict_skips_names_it_does_not_have():
    new, used = S.override(Outer(), {"nope": "1", "steps": "3"}, strict=False)
    assert used == {"steps"} and new.curves.steps == 3


def test_parse_assignments_and_names():
    assert S.parse_assignments(["a=1", "b.c=x=y"]) == {"a": "1", "b.c": "x=y"}
    for bad in ("a", "=1"):
        with pytest.raises(S.SettingsError, match="argument 'items' must be NAME=VALUE") as info:
            S.parse_assignments([bad])
        assert info.value.detail.startswith("--set must be NAME=VALUE"), info.value.detail
    assert {"curves.noise_std", "noise_std", "optimizers"} <= set(S.names(Outer()))
    with pytest.raises(ValueError, match="argument 'size'"):
        S.preset(Outer, "huge")
