"""A plugin of misbehaving optimizers for the scorecard's bad-input tests (loaded with ``--plugins``):
``nan_at_3`` turns non-finite at step 3, ``raises_at_2`` raises at step 2, ``wrong_shape`` returns G transposed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulate import optimizers as so


@dataclass(frozen=True)
class NanAt:
    lr: float
    at: int = 3

    def init(self, F, G):
        return 0

    def step(self, F, G, batch, t):
        gF, gG = so.grad_F(F, G, batch)[0], so.grad_G(F, G, batch)
        G1 = G - self.lr * gG
        if t + 1 == self.at:
            G1 = G1 * np.nan
        return F - self.lr * gF, G1, t + 1


@dataclass(frozen=True)
class RaisesAt:
    lr: float
    at: int = 2

    def init(self, F, G):
        return 0

    def step(self, F, G, batch, t):
        if t + 1 == self.at:
            raise RuntimeError("boom: the user's optimizer failed")
        return F - self.lr * so.grad_F(F, G, batch)[0], G - self.lr * so.grad_G(F, G, batch), t + 1


@dataclass(frozen=True)
class WrongShape:
    lr: float

    def init(self, F, G):
        return None

    def step(self, F, G, batch, state):
        return F, (G - self.lr * so.grad_G(F, G, batch)).T, state


so.register("nan_at_3", lambda **o: NanAt(**o), replace=True)
so.register("raises_at_2", lambda **o: RaisesAt(**o), replace=True)
so.register("wrong_shape", lambda **o: WrongShape(**o), replace=True)
