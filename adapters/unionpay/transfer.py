"""fileTransfer packaging: how a settlement file travels in ``fileContent``.

The gateway zips the day's files, deflates the zip (zlib) and base64-encodes the
result. Unpacking is bounded at every step so a hostile answer cannot make us
inflate more than ``limit`` bytes.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
import zlib

from adapters.base import Malformed
from adapters.unionpay.constants import RAIL


def pack_files(files: dict[str, bytes]) -> str:
    """``fileContent`` for ``files`` (name -> bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(zlib.compress(buffer.getvalue())).decode("ascii")


def unpack_zm(content: str, *, limit: int) -> bytes:
    """The ZM file (the member whose name holds ``ZM_``) inside ``fileContent``.
    :class:`Malformed` when the content is not base64 / zlib / zip, holds no ZM file,
    or would inflate past ``limit`` bytes."""
    try:
        deflated = base64.b64decode(content, validate=True)
        inflater = zlib.decompressobj()
        archive_bytes = inflater.decompress(deflated, limit + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise Malformed(f"fileContent does not decode: {exc}", rail=RAIL) from exc
    if len(archive_bytes) > limit or inflater.unconsumed_tail:
        raise Malformed(f"fileContent inflates past {limit} bytes", rail=RAIL)
    try:
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            members = [m for m in archive.infolist() if "ZM_" in m.filename]
            if not members:
                raise Malformed("fileContent holds no ZM file", rail=RAIL)
            member = members[0]
            if member.file_size > limit:
                raise Malformed(f"ZM file of {member.file_size} bytes exceeds {limit}", rail=RAIL)
            with archive.open(member) as handle:
                data = handle.read(limit + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise Malformed(f"fileContent is not a zip archive: {exc}", rail=RAIL) from exc
    if len(data) > limit:
        raise Malformed(f"ZM file exceeds {limit} bytes", rail=RAIL)
    return data
