"""`identical`: the batched stress code must give the per-portfolio code's results to the bit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def identical(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where `a` and `b` differ: same types, arrays byte-equal (object arrays value-equal, and
    numeric ones C-ordered alike), floats to the bit (the sign of zero too, NaN equal to NaN)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return [path]
        return [
            d
            for f in dataclasses.fields(a)
            for d in identical(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
        ]
    if isinstance(a, dict):
        if not isinstance(b, dict) or list(a) != list(b):
            return [path]
        return [d for k in a for d in identical(a[k], b[k], f"{path}[{k}]")]
    if isinstance(a, list | tuple):
        if type(a) is not type(b) or len(a) != len(b):
            return [path]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in identical(x, y, f"{path}[{i}]")]
    if isinstance(a, np.ndarray):
        same = isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        if same and a.dtype == object:
            return [] if a.tolist() == b.tolist() else [path]
        same = same and a.flags.c_contiguous == b.flags.c_contiguous and a.tobytes() == b.tobytes()
        return [] if same else [path]
    if isinstance(a, float):
        same = type(b) is float and (a == b or (math.isnan(a) and math.isnan(b)))
        return [] if same and math.copysign(1.0, a) == math.copysign(1.0, b) else [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, BaseException):
        return [] if type(a) is type(b) and str(a) == str(b) else [f"{path}: {a!r} != {b!r}"]
    return [] if type(a) is type(b) and a == b else [f"{path}: {a!r} != {b!r}"]
