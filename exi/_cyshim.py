"""Stand-in for the ``cython`` module when the pure-Python engine runs without Cython installed.

Only the names that exi/_engine.py uses; every decorator is the identity and every type is object.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F")
compiled = False
int = int  # noqa: A001
uint = int
bint = bool
Py_ssize_t = int
ulonglong = int
longlong = int
uchar = int


def _identity(obj: F) -> F:
    return obj


cclass = cfunc = ccall = inline = final = _identity


def locals(**_kw: Any) -> Callable[[F], F]:  # noqa: A001
    return _identity


def exceptval(*_a: Any, **_kw: Any) -> Callable[[F], F]:
    return _identity


def declare(_type: Any = None, value: Any = None, **_kw: Any) -> Any:
    return value


def cast(_type: Any, value: Any, **_kw: Any) -> Any:
    return value


NULL = None
p_char = object
p_uchar = object
p_uint = object
p_ulonglong = object
