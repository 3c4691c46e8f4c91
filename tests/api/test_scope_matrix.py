"""Every endpoint x every scope: past the guard (anything but 401/403) exactly where the endpoint's
Guard admits the scope (admin everywhere), 403 elsewhere; 401 without a key."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from settlement.api.deps import Guard
from settlement.auth.service import Scope
from tests.api.conftest import bearer

#: Endpoints that take no API key: health, problem pages, rail notifications (signed
#: by the rail), and the OpenAPI document.
PUBLIC = {"/healthz", "/readyz", "/problems/{code}", "/v1/notifications/{rail}"}


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    def walk(routes: list[object]) -> Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
    yield from walk(list(app.routes))


def guard_of(route: APIRoute) -> Guard | None:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Guard):
            return dependant.call
        stack.extend(dependant.dependencies)
    return None


def test_every_endpoint_every_scope(app: FastAPI, client: TestClient, make_key: Callable[..., str]) -> None:
    keys = {scope: bearer(make_key(scope.value)) for scope in Scope}
    checked = 0
    public = set()
    for route in api_routes(app):
        guard = guard_of(route)
        if guard is None:
            public.add(route.path)
            continue
        path = re.sub(r"\{[^}]+\}", "999999", route.path)
        for method in sorted(route.methods):
            def call(headers: dict[str, str], path: str = path, method: str = method) -> int:
                extra = {"Idempotency-Key": "scope-matrix"} if method == "POST" else {}
                return client.request(method, path, json={}, headers={**headers, **extra}).status_code

            assert call({}) == 401, f"{method} {route.path} without a key"
            for scope, headers in keys.items():
                status = call(headers)
                admitted = scope is Scope.ADMIN or scope in guard.scopes
                where = f"{method} {route.path} as {scope.value}: {status}"
                if admitted:
                    # Past the guard: whatever the endpoint answers to a made-up id and an
                    # empty body (404, 422, a 503 for an unconfigured signing key...), not 401/403.
                    assert status not in (401, 403), where
                else:
                    assert status == 403, where
                checked += 1
    assert public == PUBLIC
    assert checked >= 4 * 25
