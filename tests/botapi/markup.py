"""Text formatting as the Bot API does it: HTML parse mode, entities and their UTF-16 offsets."""

from __future__ import annotations

import re
from typing import Any

# Tags Telegram's HTML parse mode accepts, and the entity type each one produces.
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_ATTR = re.compile(r"""\s*([^\s=>/"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_TAG_NAME = re.compile(r"[^\s>]*")
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")


class HtmlError(ValueError):
    """Invalid Telegram HTML; the message is Telegram's wording (after "can't parse entities: ")."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of MessageEntity offsets."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities Telegram detects in a user's text (e.g. '/start', '/help@my_bot')."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND.finditer(text)
    ]


def _decode_entity(match: re.Match[str]) -> str | None:
    name = match.group(1)
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
        return chr(code) if 0 < code <= 0x10FFFF else None
    return _NAMED_ENTITIES.get(name.lower())


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML into (plain text, entities); raise HtmlError where Telegram would reject it."""
    src = source.strip()

    def at(pos: int) -> str:
        return f"at byte offset {len(src[:pos].encode())}"

    out: list[str] = []
    u16 = 0
    stack: list[dict[str, Any]] = []  # open tags: name, attrs, start (UTF-16 offset)
    entities: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "&" and (m := _ENTITY.match(src, i)) and (decoded := _decode_entity(m)) is not None:
            out.append(decoded)
            u16 += utf16_len(decoded)
            i = m.end()
            continue
        if ch != "<":
            out.append(ch)
            u16 += utf16_len(ch)
            i += 1
            continue
        start = i
        if src.startswith("</", i):
            end = src.find(">", i)
            if end == -1:
                raise HtmlError(f"Unclosed end tag {at(start)}")
            name = src[i + 2 : end].strip().lower()
            if not stack:
                raise HtmlError(f"Unexpected end tag {at(start)}")
            tag = stack.pop()
            if name and name != tag["name"]:
                raise HtmlError(
                    f'Unmatched end tag {at(start)}, expected "</{tag["name"]}>", found "</{name}>"'
                )
            entity = _close(tag, u16, stack)
            if entity:
                entities.append(entity)
            i = end + 1
            continue
        name_match = _TAG_NAME.match(src, i + 1)
        name, j = (name_match.group().lower(), name_match.end()) if name_match else ("", i + 1)
        if j >= n:
            raise HtmlError(f"Unclosed start tag {at(start)}")
        if name not in HTML_TAGS:
            raise HtmlError(f'Unsupported start tag "{name}" {at(start)}')
        end = src.find(">", j)
        if end == -1:
            raise HtmlError(f"Unclosed start tag {at(start)}")
        attrs = {
            m.group(1).lower(): (m.group(2) or "").strip("\"'")
            for m in _ATTR.finditer(src[j:end])
            if m.group(1)
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" {at(start)}')
        stack.append({"name": name, "attrs": attrs, "start": u16})
        i = end + 1
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]["name"]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close(tag: dict[str, Any], end: int, stack: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entity for a closed tag (None if it is empty or merged into an enclosing <pre>)."""
    name, attrs = tag["name"], tag["attrs"]
    if name == "code" and stack and stack[-1]["name"] == "pre":
        language = attrs.get("class", "").removeprefix("language-")
        if language:
            stack[-1]["language"] = language
        return None
    if end <= tag["start"]:
        return None
    entity: dict[str, Any] = {"type": HTML_TAGS[name], "offset": tag["start"], "length": end - tag["start"]}
    if name == "a":
        entity["url"] = attrs.get("href", "")
    elif name == "pre" and tag.get("language"):
        entity["language"] = tag["language"]
    elif name == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    return entity
