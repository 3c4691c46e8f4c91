"""Frozen dataclass records whose field values live in one tuple, for parsers that
build a million of them.

The generated ``__init__`` of a frozen dataclass sets every field through
``object.__setattr__``, and even setting the slots directly costs one call per field:
for the 17 to 19 fields of a settlement record that is more than half of a fast
parser's time per line. A packed record is built with one tuple and one slot write.

Declare one by putting :class:`Packed` before the dataclass among the bases and
giving the class a single ``_values`` slot::

    class PackedSettlementRecord(Packed, SettlementRecord):
        __slots__ = ("_values",)

It behaves as the dataclass does: the same fields (read-only properties), frozen,
equal to and hashing like a plain record with the same values, ``isinstance`` of
the dataclass; ``dataclasses.replace``, ``asdict`` and pickle work, and pickling or
copying gives a plain record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from adapters.base import SettlementRecord


class Packed:
    """The behaviour of a packed record (see the module docstring)."""

    __slots__ = ()
    #: The dataclass this class packs, its field names in order, and the writer of
    #: the ``_values`` slot (past the frozen ``__setattr__``); set for each subclass.
    plain: ClassVar[type]
    field_names: ClassVar[tuple[str, ...]]
    store: ClassVar[Callable[[Any, tuple[Any, ...]], None]]
    _values: tuple[Any, ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        plain = next(base for base in cls.__mro__[1:] if "__dataclass_fields__" in base.__dict__)
        cls.plain = plain
        cls.field_names = tuple(f.name for f in dataclasses.fields(plain))
        cls.store = cls.__dict__["_values"].__set__
        for position, name in enumerate(cls.field_names):
            setattr(cls, name, _field_reader(position, name))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Reached through dataclasses.replace() and direct calls, never by a parser.
        record = type(self).plain(*args, **kwargs)
        type(self).store(self, tuple(getattr(record, name) for name in self.field_names))

    @classmethod
    def pack(cls, values: tuple[Any, ...]) -> Any:
        """A record from all field values in :attr:`field_names` order, unchecked."""
        record = object.__new__(cls)
        cls.store(record, values)
        return record

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Packed) and other.plain is self.plain:
            return bool(self._values == other._values)
        if type(other) is self.plain:
            return bool(self._values == tuple(getattr(other, name) for name in self.field_names))
        return NotImplemented

    def __hash__(self) -> int:
        # A frozen dataclass hashes the tuple of its fields: the same tuple here.
        return hash(self._values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(self.field_names, self._values, strict=True))
        return f"{self.plain.__name__}({fields})"

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return self.plain, self._values


def _field_reader(position: int, name: str) -> property:
    return property(lambda self: self._values[position], doc=f"field {name}")


class PackedSettlementRecord(Packed, SettlementRecord):
    """A packed :class:`~adapters.base.SettlementRecord`, as the Alipay file parser builds them."""

    __slots__ = ("_values",)
