"""HTTP plumbing shared by every REST route: Discord's JSON answers and errors, injected faults, the request log's
records, multipart uploads."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
MiB = 1024 * 1024


class ApiError(Exception):
    """Raised by a route handler to answer like Discord: `{"message": ..., "code": ...}` (+ `errors` for 50035)."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    @classmethod
    def invalid_form(cls, errors: dict[str, Any]) -> ApiError:
        """Discord's answer to a body that breaks its rules: 400, code 50035, with the nested ``errors``."""
        return cls(400, 50035, "Invalid Form Body", errors)

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's JSON: Content-Type exactly `application/json` (discord.py compares the header verbatim)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def int_or_none(value: Any) -> int | None:
    """A snowflake from a URL or a body, or None for anything that is not one (the route then answers 404)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Fault:
    """An injected failure for the next `remaining` requests whose "METHOD /path" matches `pattern`.

    `applied`: the request is handled first and only its answer is lost: replaced by `status`, or with no answer at
    all (the connection closed) when `status` is None; `when` (given the answer's JSON) picks which answers.
    """

    pattern: str
    remaining: int
    status: int | None
    retry_after: float
    is_global: bool
    served: int = 0
    applied: bool = False
    when: Callable[[Any], bool] | None = None

    def matches(self, method: str, path: str) -> bool:
        want_method, _, want_path = self.pattern.partition(" ") if " " in self.pattern else ("*", "", self.pattern)
        want_path = re.sub(r"\{[^}]*\}", "*", want_path)
        return fnmatch.fnmatchcase(method, want_method.upper()) and fnmatch.fnmatchcase(path, want_path)

    def loses(self, answer: web.Response) -> bool:
        """Whether this (`applied`) fault loses this answer of a matching request."""
        if self.when is None:
            return True
        if not isinstance(answer.body, bytes) or answer.content_type != "application/json":
            return False
        return bool(self.when(json.loads(answer.body)))

    def response(self, request: web.Request) -> web.Response:
        self.remaining -= 1
        self.served += 1
        if self.status is None:  # the answer never arrives: the client sees the connection close
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if self.status == 429:
            # discord.py retries a 429 only with a Via header and a JSON retry_after, as Discord's edge sends.
            body = {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": self.is_global}
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(self.retry_after)))}
            headers["X-RateLimit-Scope"] = "global" if self.is_global else "user"
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            return json_response(body, 429, headers)
        return json_response({"message": f"{self.status}: Injected failure", "code": 0}, self.status)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the /api/v10 prefix
    route: str  # the route template, e.g. /channels/{channel_id}/messages ("" when unmatched)
    status: int
    at: float


@dataclass
class Upload:
    """One file of a multipart body (`files[n]`), before it becomes an attachment."""

    index: int
    filename: str
    data: bytes = field(repr=False)
