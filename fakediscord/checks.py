"""Discord's rules applied to a request: read its body as Discord would, check it against `rules.py`, and for
each rule broken record a violation (`emu.violations`) and answer what Discord answers (`ApiError`)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import rules
from .http import ApiError, Upload, int_or_none

if TYPE_CHECKING:
    from .models import Interaction, Message
    from .state import State


async def read_body(
    emu: State, request: web.Request, route: str, inter: Interaction | None = None
) -> tuple[Any, list[Upload]]:
    """JSON, or multipart with `payload_json` + `files[n]`; anything else is a violation (Discord: 50035)."""
    ctype = request.headers.get("Content-Type", "")
    mime = ctype.split(";")[0].strip().lower()
    if mime == "multipart/form-data":
        payload: Any = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            else:
                match = re.fullmatch(r"files\[(\d+)\]|file(\d*)", part.name or "")
                if match is None:
                    continue
                index = int(match.group(1) or match.group(2) or 0)
                uploads.append(Upload(index, part.filename or f"file{index}", bytes(await part.read())))
        return payload, uploads
    raw = await request.read()
    if mime != "application/json":
        emu._violate(
            "content_type",
            f"request body sent with Content-Type {ctype!r}, not application/json",
            route=route,
            inter=inter,
        )
        raise ApiError.invalid_form(
            {"_errors": [{"code": "CONTENT_TYPE_INVALID", "message": f"Expected application/json, got {ctype!r}"}]},
        )
    try:
        return json.loads(raw or b"null"), []
    except ValueError:
        emu._violate("invalid_json", "request body is not valid JSON", route=route, inter=inter)
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def check_body(
    emu: State,
    route: str,
    body: Any,
    schema: str | None,
    *,
    message: bool,
    creating: bool,
    uploads: list[Upload],
    limit: int,
    inter: Interaction | None = None,
    modal: bool = False,
    existing: Message | None = None,
) -> None:
    """Apply Discord's rules to a body (a message's, or with ``modal`` a modal's); record and raise (400/50035,
    or 413/40005 for big files) if broken.

    ``existing``: the message an edit changes (its components v2 flag and files count)."""
    for upload in uploads:
        if len(upload.data) > limit:
            emu._violate(
                "file_too_large",
                f"{upload.filename} is {len(upload.data)} bytes, over the attachment_size_limit of {limit}",
                route=route,
                inter=inter,
                size=len(upload.data),
            )
            raise ApiError(413, 40005, "Request entity too large")
    problems: list[rules.Problem] = []
    if message and isinstance(body, dict):
        was_v2 = existing is not None and bool(existing.flags & rules.IS_COMPONENTS_V2)
        problems = rules.check_message(body, creating=creating, file_count=len(uploads), was_v2=was_v2)
        problems += rules.check_components_v2(
            body,
            existing=existing.to_dict() if existing is not None else None,
            filenames=_filenames_after(existing, body, uploads),
        )
    elif modal:
        problems = rules.check_modal(body)
    if not problems and schema and emu.validate_schemas:
        problems = rules.check_schema(schema, body)
    if problems:
        for problem in problems:
            where = ".".join(str(p) for p in problem.path) or "body"
            emu._violate(problem.kind, f"{where}: {problem.message}", route=route, inter=inter, path=list(problem.path))
        raise ApiError.invalid_form(rules.form_errors(problems))


def _filenames_after(existing: Message | None, body: dict[str, Any], uploads: list[Upload]) -> set[str]:
    """The names of a message's files once a create or edit is applied (what ``attachment://NAME`` may name)."""
    entries = body.get("attachments")
    if entries is None:
        kept = [a.filename for a in existing.attachments] if existing is not None else []
        return {*kept, *(u.filename for u in uploads)}
    wanted = {str(e.get("id")) for e in entries if isinstance(e, dict)}
    kept = [a.filename for a in existing.attachments if str(a.id) in wanted] if existing is not None else []
    named = {int_or_none(e.get("id")): e.get("filename") for e in entries if isinstance(e, dict)}
    return {*kept, *(named.get(u.index) or u.filename for u in uploads)}
