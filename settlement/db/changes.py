"""The pending changes of a few ORM objects, written in one statement.

A flush writes each changed row with an UPDATE of its own, through the unit of
work's bookkeeping. Where a transaction changes a handful of rows of different
tables (a payment and its attempt), :func:`write_changes` sends them as one
PostgreSQL statement of data-modifying CTEs, then records the objects as clean, so
the flush that follows has nothing left to write for them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.exc import StaleDataError

from settlement.db.direct import Direct

_STATEMENTS: dict[tuple[tuple[str, tuple[str, ...]], ...], tuple[Direct, list[list[tuple[str, str]]]]] = {}


@functools.cache
def _plain(mapper: Mapper[Any]) -> bool:
    """Whether an UPDATE of the mapper's table is only what changed: no column has a
    value computed on update, and no version counter."""
    return mapper.inherits is None and mapper.version_id_col is None and not any(
        column.onupdate is not None or column.server_onupdate is not None for column in mapper.local_table.columns)


def _changes(state: InstanceState[Any]) -> dict[str, Any] | None:
    """Attribute -> new value of every column attribute whose value changed; None if
    the object cannot be written here (not persistent, a table whose updates compute
    values, or a change other than a plain column value, such as a primary key)."""
    if not state.persistent or not _plain(state.mapper):
        return None
    changed: dict[str, Any] = {}
    for key, old in state.committed_state.items():
        prop = state.mapper.attrs.get(key)
        column_attrs = state.mapper.column_attrs
        if prop is None or key not in column_attrs or len(column_attrs[key].columns) != 1:
            return None
        if column_attrs[key].columns[0].primary_key:
            return None
        new = state.dict.get(key)
        if old is not new and old != new:
            changed[key] = new
    return changed


def _statement(shape: tuple[tuple[str, tuple[str, ...]], ...], states: Sequence[InstanceState[Any]]
               ) -> tuple[Direct, list[list[tuple[str, str]]]]:
    found = _STATEMENTS.get(shape)
    if found is not None:
        return found
    ctes, binds, names = [], [], []
    for index, (state, (_, keys)) in enumerate(zip(states, shape, strict=True)):
        table = state.mapper.local_table
        (pk,) = state.mapper.primary_key
        pairs = []
        sets = []
        for key in keys:
            column = state.mapper.column_attrs[key].columns[0]
            param = f"o{index}_{column.name}"
            sets.append(f"{column.name} = :{param}")
            binds.append(bindparam(param, type_=column.type))
            pairs.append((key, param))
        pk_param = f"o{index}_pk"
        binds.append(bindparam(pk_param, type_=pk.type))
        pairs.append(("", pk_param))
        ctes.append(f"u{index} AS (UPDATE {table.name} SET {', '.join(sets)} "  # type: ignore[attr-defined]
                    f"WHERE {pk.name} = :{pk_param} RETURNING 1)")
        names.append(pairs)
    counts = ", ".join(f"(SELECT count(*) FROM u{index})" for index in range(len(states)))
    found = (Direct(text(f"WITH {', '.join(ctes)} SELECT {counts}").bindparams(*binds)), names)
    _STATEMENTS[shape] = found
    return found


def write_changes(session: Session, objects: Sequence[object]) -> bool:
    """Write what changed in ``objects`` (persistent, in ``session``) in one
    statement, and mark them clean. False, with nothing written, when that does not
    apply (not PostgreSQL, or a change a flush must make); the flush writes them then.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    states: list[InstanceState[Any]] = []
    changes: list[dict[str, Any]] = []
    for obj in objects:
        state = inspect(obj)
        changed = _changes(state)
        if changed is None or state.session_id != session.hash_key:
            return False
        if changed:
            states.append(state)
            changes.append(changed)
    if not states:
        return True
    shape = tuple((state.mapper.local_table.name, tuple(sorted(changed)))  # type: ignore[attr-defined]
                  for state, changed in zip(states, changes, strict=True))
    statement, names = _statement(shape, states)
    params: dict[str, Any] = {}
    for state, changed, pairs in zip(states, changes, names, strict=True):
        for key, param in pairs:
            params[param] = changed[key] if key else state.identity[0]  # type: ignore[index]
    (counts,) = statement.rows(session, params)
    if any(count != 1 for count in counts):
        raise StaleDataError(f"expected to update one row each of {[name for name, _ in shape]}, "
                             f"updated {list(counts)}")
    for state in states:
        # What a flush does for the rows it wrote: their current values are now the
        # committed ones, and the session no longer counts them as modified.
        state._commit_all(state.dict, session.identity_map)
    return True
