"""fakediscord's components v2 rules (``rules.check_components_v2``): what Discord refuses in an IS_COMPONENTS_V2
message, checked on the message as a create or edit leaves it."""

from __future__ import annotations

from typing import Any

import pytest

from fakediscord import rules

V2 = rules.IS_COMPONENTS_V2


def gallery(*names: str) -> dict[str, Any]:
    return {"type": 12, "items": [{"media": {"url": f"attachment://{name}"}} for name in names]}


def text(content: str) -> dict[str, Any]:
    return {"type": 10, "content": content}


def row(buttons: int) -> dict[str, Any]:
    return {"type": 1, "components": [{"type": 2, "style": 2, "custom_id": f"b{i}", "label": "x"}
                                      for i in range(buttons)]}


def kinds(body: dict[str, Any], *, existing: dict[str, Any] | None = None, files: set[str] = frozenset({"a.png"})
          ) -> list[str]:
    return [problem.kind for problem in rules.check_components_v2(body, existing=existing, filenames=set(files))]


def test_a_valid_gallery_message_passes() -> None:
    body = {"flags": V2, "components": [{"type": 17, "components": [text("hi"), gallery("a.png")]}, row(5)]}
    assert kinds(body) == []


def test_a_classic_message_is_not_checked() -> None:
    assert kinds({"content": "hello", "components": [row(5)]}) == []


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"flags": V2, "content": "hi", "components": [text("x")]}, "components_v2_content"),
        ({"flags": V2, "embeds": [{"title": "t"}], "components": [text("x")]}, "components_v2_content"),
        ({"flags": V2, "components": [text("x")] * 41}, "too_many_components"),
        # Nested components count: 1 container + 8 rows + 32 buttons = 41.
        ({"flags": V2, "components": [{"type": 17, "components": [row(4)] * 8}]}, "too_many_components"),
        ({"flags": V2, "components": [text("x" * 2001), text("y" * 2000)]}, "components_v2_text_too_long"),
        ({"flags": V2, "components": [gallery()]}, "media_gallery_items"),
        ({"flags": V2, "components": [gallery(*["a.png"] * 11)]}, "media_gallery_items"),
        ({"flags": V2, "components": [gallery("missing.png")]}, "unknown_attachment"),
        ({"flags": V2, "components": [{"type": 17, "components": [row(6)]}]}, "too_many_buttons"),
    ],
    ids=["content", "embeds", "41-components", "41-nested", "4001-characters", "empty-gallery", "11-items",
         "unknown-file", "6-buttons-in-a-nested-row"],
)
def test_what_discord_refuses(body: dict[str, Any], kind: str) -> None:
    assert kinds(body) == [kind]


def test_an_edit_may_turn_v2_on_but_must_clear_content_and_never_turn_it_off() -> None:
    classic = {"content": "⏳ Waiting", "embeds": [], "components": [row(1)], "flags": 0}
    becomes = {"flags": V2, "components": [gallery("a.png")]}
    assert kinds(becomes, existing=classic) == ["components_v2_content"]  # the old content would stay
    assert kinds({**becomes, "content": None, "embeds": []}, existing=classic) == []
    v2 = {"content": "", "embeds": [], "components": [gallery("a.png")], "flags": V2}
    assert kinds({"flags": 0, "components": [row(1)]}, existing=v2) == ["components_v2_removed"]
    # An edit that does not name the flag keeps the message v2, and so is held to v2's rules.
    assert kinds({"content": "now with text"}, existing=v2) == ["components_v2_content"]
    assert kinds({"components": [gallery("gone.png")]}, existing=v2) == ["unknown_attachment"]
