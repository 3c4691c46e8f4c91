"""Pick the statement parser from the first bytes of the file.

* ``1CClientBankExchange`` as the first line (optionally after a UTF-8 BOM):
  :func:`~adapters.statements.client_bank_exchange.parse_client_bank_exchange`.
* ``<`` after an optional BOM and whitespace: XML, read as camt.053 by
  :func:`~adapters.statements.camt053.parse_camt053`, which checks the document
  element before returning.
* Anything else, including an empty file, raises at once without reading past the
  first 4 KiB. The error names line 1 and the field :data:`FORMAT_FIELD`: the
  first line, which is where either format says what it is.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, BinaryIO

from adapters.statements.base import StatementItem, UnknownStatementFormat, UnusableStatement
from adapters.statements.camt053 import parse_camt053
from adapters.statements.client_bank_exchange import MAGIC, parse_client_bank_exchange

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

SNIFF_BYTES = 4096
#: The field an empty or unrecognised file is faulted on: the start of the file, where
#: 1CClientBankExchange has its first line and camt.053 its document element.
FORMAT_FIELD = "1CClientBankExchange|Document"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: sniffing without seeking, so pipes
    and sockets work too."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._stream.read(len(view))
        view[:len(data)] = data
        return len(data)


def _rewound(head: bytes, stream: BinaryIO) -> BinaryIO:
    return io.BufferedReader(_Prefixed(head, stream), buffer_size=64 * 1024)


def sniff(head: bytes) -> str:
    """``"1c"``, ``"xml"`` or ``""`` for the first bytes of a file."""
    text = head
    for bom in _BOMS:
        text = text.removeprefix(bom)
    if text.startswith(MAGIC) and text[len(MAGIC):len(MAGIC) + 1] in (b"\r", b"\n", b""):
        return "1c"
    if text.lstrip().startswith(b"<"):
        return "xml"
    return ""


def parse_statement(stream: BinaryIO, *, accounts: Collection[str] = ()) -> Iterator[StatementItem]:
    """Stream the items of a bank statement in any supported format.

    ``accounts`` adds our account numbers for formats that say which side of a
    payment we are on only by account (1CClientBankExchange). Raises
    :class:`UnusableStatement` (or its subclass :class:`UnknownStatementFormat`)
    before returning when the file is empty or in no known format.
    """
    head = stream.read(SNIFF_BYTES)
    if not head:
        raise UnusableStatement("the statement file is empty", line_number=1, field_name=FORMAT_FIELD)
    kind = sniff(head)
    if kind == "1c":
        return parse_client_bank_exchange(_rewound(head, stream), accounts=accounts)
    if kind == "xml":
        return parse_camt053(_rewound(head, stream))
    raise UnknownStatementFormat(
        "neither camt.053 XML nor 1CClientBankExchange (first bytes: "
        f"{head[:16]!r})", line_number=1, field_name=FORMAT_FIELD)
