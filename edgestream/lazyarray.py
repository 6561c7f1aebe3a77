"""Arrays materialized only when read: packed weights stay packed (in a file or a memory map) until a
consumer asks for them, so a whole model is never unpacked at once. The last few materialized arrays
are cached, so a pass that slices one tensor repeatedly (K tiles) unpacks it once."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class LazyArray:
    _cache: OrderedDict[int, np.ndarray] = OrderedDict()
    _CACHED = 3

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def _load(self) -> np.ndarray:
        raise NotImplementedError

    def _get(self) -> np.ndarray:
        c = LazyArray._cache
        key = id(self)
        if key in c:
            c.move_to_end(key)
            return c[key]
        a = self._load()
        c[key] = a
        while len(c) > LazyArray._CACHED:
            c.popitem(last=False)
        return a

    def __array__(self, dtype=None, copy=None):
        a = self._get()
        return a.astype(dtype) if dtype is not None else a

    def __getitem__(self, idx):
        return self._get()[idx]

    def astype(self, dtype, copy: bool = True) -> np.ndarray:
        return self._get().astype(dtype, copy=copy)

    def __del__(self):
        LazyArray._cache.pop(id(self), None)
