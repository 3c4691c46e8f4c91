"""The file registry: a settlement file or bank statement is stored under its SHA-256
(``<data_dir>/reconciliation/files/<ab>/<sha256>``) and registered once; the same
bytes again return the first registration (``created`` false) and are never
loaded or reconciled a second time."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adapters.statements import parse_statement
from settlement.config import Settings
from settlement.db.types import utcnow
from settlement.reconciliation import rails
from settlement.reconciliation.errors import FileNotFound, WrongFileKind
from settlement.reconciliation.models import FileError, FileKind, FileStatus, ReconFile
from settlement.reconciliation.service.loading import Item

_READ = 1 << 20


@dataclass(frozen=True)
class Registered:
    file: ReconFile
    created: bool


def storage_root(settings: Settings) -> Path:
    return settings.data_dir / "reconciliation" / "files"


def register_file(session: Session, settings: Settings, *, kind: FileKind, rail: str | None, source: BinaryIO,
                  filename: str, actor: str) -> Registered:
    """Store ``source`` and register it, or return the file already registered with
    the same bytes. ``rail`` names the settlement file's rail (None for statements)."""
    if kind is FileKind.SETTLEMENT:
        if not rail:
            raise WrongFileKind("a settlement file needs its rail", field="rail")
        rails.check_rail(rail)
    elif rail:
        raise WrongFileKind("a bank statement belongs to no rail", field="rail")
    root = storage_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=root, prefix=".incoming-", delete=False) as out:
        temporary = Path(out.name)
        try:
            while chunk := source.read(_READ):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    sha256 = digest.hexdigest()
    existing = session.execute(select(ReconFile).where(ReconFile.sha256 == sha256)).scalar_one_or_none()
    if existing is not None:
        temporary.unlink(missing_ok=True)
        return Registered(existing, False)
    target = root / sha256[:2] / sha256
    target.parent.mkdir(exist_ok=True)
    # Content-addressed: a concurrent upload of the same bytes writes the same file.
    os.replace(temporary, target)
    values = {
        "kind": kind.value, "rail": rail, "filename": _printable(Path(filename).name)[:255] or sha256, "sha256": sha256,
        "size_bytes": size, "stored_path": str(target), "status": FileStatus.REGISTERED.value,
        "loaded_items": 0, "record_count": 0, "error_count": 0, "registered_by": actor[:200],
        "created_at": utcnow(),
    }
    upsert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = session.execute(upsert(ReconFile).values(**values).on_conflict_do_nothing(
        index_elements=["sha256"]).returning(ReconFile.id)).first()
    row = session.execute(select(ReconFile).where(ReconFile.sha256 == sha256)).scalar_one()
    return Registered(row, inserted is not None)


def _printable(name: str) -> str:
    """A file name as given, without control characters (PostgreSQL text takes no NUL)."""
    return "".join(ch for ch in name if ch.isprintable())


def get_file(session: Session, file_id: int, *, lock: bool = False) -> ReconFile:
    query = select(ReconFile).where(ReconFile.id == file_id)
    found = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise FileNotFound(f"reconciliation file {file_id} does not exist", file_id=file_id)
    return found


def list_files(session: Session, *, after: int | None = None, limit: int = 50) -> list[ReconFile]:
    query = select(ReconFile).order_by(ReconFile.id.desc()).limit(limit)
    if after is not None:
        query = query.where(ReconFile.id < after)
    return list(session.execute(query).scalars())


def file_errors(session: Session, file_id: int, *, after: int | None = None, limit: int = 100) -> list[FileError]:
    query = select(FileError).where(FileError.file_id == file_id).order_by(FileError.id).limit(limit)
    if after is not None:
        query = query.where(FileError.id > after)
    return list(session.execute(query).scalars())


def error_count(session: Session, file_id: int) -> int:
    return int(session.execute(select(func.count()).where(FileError.file_id == file_id)).scalar_one())


@contextmanager
def open_items(file: ReconFile, settings: Settings) -> Iterator[tuple[BinaryIO, Iterator[Item]]]:
    """The stored file and its parsed items, streamed by the rail's (or the statement)
    parser. Raises :class:`~adapters.base.MalformedFile` when the file as a whole is
    unusable (at once, or when iteration reaches the point where it breaks)."""
    with open(file.stored_path, "rb") as stream:
        if file.kind == FileKind.STATEMENT.value:
            yield stream, parse_statement(stream, accounts=settings.recon_bank_accounts)
        else:
            assert file.rail is not None
            yield stream, rails.parser(file.rail, settings)(stream, file.filename)
