"""The one caching mechanism of the models: a bounded least-recently-used map of tensors.

Window geometry (coordinate tables, relative indices, shift and pad masks) depends only
on shapes and a device, and the position bias in inference only on the CPB weights and
the window, so each is computed once per key and reused. Every cache holds at most
``maxsize`` entries. While ``torch.compile`` traces, the caches are bypassed: the
computation is traced instead (static shapes make it a constant of the graph) and no
Python-side state is read or written.
"""
import functools
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

import torch

T = TypeVar('T')


class TensorCache:
    """At most ``maxsize`` values by key; the least recently used one is dropped first."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._entries: 'OrderedDict[Hashable, object]' = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value for ``key``, computed by ``compute()`` on a miss (always while compiling)."""
        if torch.compiler.is_compiling():
            return compute()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = compute()
        self._entries[key] = value
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cached(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorates a function of shapes (tuples or lists) and devices with a TensorCache."""
    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        cache = TensorCache(maxsize)

        @functools.wraps(fn)
        def wrapper(*args):
            args = tuple(tuple(a) if isinstance(a, list) else a for a in args)  # hashable
            return cache.get(args, lambda: fn(*args))

        wrapper.cache = cache
        return wrapper
    return decorate
