r"""Muon's orthogonalisation as a map of singular values (docs/theory.md 4.1, "Muon's orthogonalisation").

Muon (Jordan et al. 2024) replaces an update :math:`\Delta = US V^\top` by ``steps`` quintic Newton-Schulz
iterations from :math:`X_0 = \Delta/(\lVert\Delta\rVert_F + \delta)`, :math:`\delta = 10^{-7}`,

.. math::

    X \leftarrow aX + (bXX^\top + c(XX^\top)^2)X = U\,p(\Sigma_X)\,V^\top,\qquad p(x) = ax + bx^3 + cx^5,
    \qquad (a, b, c) = (3.4445, -4.7750, 2.0315).

Every iteration is an odd matrix polynomial, so it keeps the singular vectors and maps each singular value
through :math:`p`: the result is :math:`O = U\,p^{(k)}(S/(\lVert\Delta\rVert_F + \delta))\,V^\top` with
:math:`p^{(k)}` the ``k``-fold composition. Hence every right singular vector :math:`v_j` of :math:`\Delta` is a
right singular vector of :math:`O`, with singular value :math:`p^{(k)}(x_j)`,
:math:`x_j = s_j/(\lVert s\rVert_2 + \delta)` (:math:`\lVert\Delta\rVert_F = \lVert s\rVert_2`), and the top singular
value of :math:`O` is :math:`\max_j p^{(k)}(x_j)` (:math:`p^{(k)} > 0` on :math:`(0, \infty)`:
:math:`a + bx^2 + cx^4` has no real root). The spike's share of the update is

.. math::

    \text{gain}_j = \frac{p^{(k)}(x_j)}{\max_i p^{(k)}(x_i)} .

Nothing here reads :mod:`simulate`: the coefficients are the published ones.
"""

from __future__ import annotations

import numpy as np

from theory import _validate as V

#: Muon's quintic Newton-Schulz coefficients (a, b, c) (Jordan et al. 2024).
NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
#: Muon's offset in the normalisation X_0 = Delta / (||Delta||_F + offset).
NS_OFFSET = 1e-7


def newton_schulz_map(x, *, steps: int = 5) -> np.ndarray:
    r""":math:`p^{(k)}(x)`, the ``steps``-fold composition of :math:`p(x) = ax + bx^3 + cx^5` with
    :data:`NS_COEFFICIENTS`, elementwise. x: array of numbers >= 0 (normalised singular values).
    steps: an integer >= 1."""
    f = "newton_schulz_map"
    x = V.array(f, "x", x)
    if np.any(x < 0):
        raise V.fail(f, "x", "non-negative (normalised singular values)", f"minimum {x.min():.3g}")
    steps = V.integer(f, "steps", steps, low=1)
    a, b, c = NS_COEFFICIENTS
    y = x.copy()
    for _ in range(steps):
        y2 = y * y
        y = y * (a + y2 * (b + c * y2))
    return y


def orthogonalised_singular_values(s, *, steps: int = 5, offset: float = NS_OFFSET) -> np.ndarray:
    r"""The singular values :math:`p^{(k)}(s_j/(\lVert s\rVert_2 + \delta))` Muon's orthogonalisation gives the
    singular directions of an update with singular values ``s`` (module docstring), in the order of ``s``.

    s: (r,) singular values >= 0, not all zero (all of them: the Frobenius norm is :math:`\lVert s\rVert_2`).
    steps: Newton-Schulz iterations (5 in Muon). offset: :math:`\delta >= 0` (Muon: :math:`10^{-7}`).
    """
    f = "orthogonalised_singular_values"
    s = V.array(f, "s", s, ndim=1, nonempty=True)
    if np.any(s < 0) or not np.any(s > 0):
        raise V.fail(f, "s", "singular values >= 0, not all zero", f"minimum {s.min():.3g}, maximum {s.max():.3g}")
    offset = V.scalar(f, "offset", offset, low=0.0)
    return newton_schulz_map(s / (float(np.linalg.norm(s)) + offset), steps=steps)


def spike_gain(s, *, index: int = 0, steps: int = 5, offset: float = NS_OFFSET) -> float:
    r""":math:`p^{(k)}(x_j)/\max_i p^{(k)}(x_i)` for ``j = index``: the singular value Muon's update gives the
    direction of singular value ``s[index]`` of the raw update, over its top singular value (1: still on top).
    s, steps, offset: as :func:`orthogonalised_singular_values`. index: an integer in [0, len(s))."""
    f = "spike_gain"
    values = orthogonalised_singular_values(s, steps=steps, offset=offset)
    index = V.integer(f, "index", index, low=0, high=values.size - 1)
    return float(values[index] / values.max())
