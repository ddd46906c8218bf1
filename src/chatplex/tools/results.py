"""What a tool call gave back, in chatplex's terms: text, images described, `is_error`; and
the form a model gets it in (truncated past a size, with a note saying so)."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDK is imported where calls are made (server.py), not by config's import of this
    import mcp.types

RESULT_LIMIT = 100_000  # characters a model gets of one result; the whole stays stored


@dataclass(frozen=True, slots=True)
class ImageInfo:
    mime_type: str
    size: int  # bytes, decoded
    width: int | None = None
    height: int | None = None

    def describe(self) -> str:
        """`[image 64×64 png 3.2 KB]`: what the chat pane and the model's text show."""
        kind = self.mime_type.split("/")[-1] or "image"
        dims = f"{self.width}×{self.height} " if self.width and self.height else ""
        size = f"{self.size / 1024:.1f} KB" if self.size >= 1024 else f"{self.size} B"
        return f"[image {dims}{kind} {size}]"


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    is_error: bool = False
    images: tuple[ImageInfo, ...] = field(default_factory=tuple)

    @classmethod
    def error(cls, text: str) -> ToolOutcome:
        return cls(text, is_error=True)

    def for_model(self, limit: int | None = RESULT_LIMIT) -> str:
        """The result as the model reads it: past `limit` characters (None: no limit, the
        whole of it, as stored), cut, with a note."""
        text = "\n".join([self.text, *(i.describe() for i in self.images)]) if self.images else self.text
        return text if limit is None else truncated(text, limit)


def truncated(text: str, limit: int) -> str:
    """`text` itself if it fits in `limit` characters, else its start and a note saying so."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… result truncated: {len(text) - limit:,} more characters not shown]"


def outcome_of(result: mcp.types.CallToolResult) -> ToolOutcome:
    """Text parts joined; images described (never shown); resources by their text or URI;
    anything else named, so nothing the server sent disappears without a trace."""
    import mcp.types

    texts: list[str] = []
    images: list[ImageInfo] = []
    for block in result.content:
        if isinstance(block, mcp.types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp.types.ImageContent):
            image = image_info(block.data, block.mime_type)
            images.append(image)
        elif isinstance(block, mcp.types.AudioContent):
            texts.append(f"[audio {block.mime_type} {len(_decode(block.data)):,} bytes]")
        elif isinstance(block, mcp.types.EmbeddedResource):
            resource: Any = block.resource
            texts.append(getattr(resource, "text", None) or f"[resource {resource.uri}]")
        elif isinstance(block, mcp.types.ResourceLink):
            texts.append(f"[resource {block.uri}]")
        else:
            texts.append(f"[{getattr(block, 'type', 'content')}]")
    if not texts and result.structured_content is not None:
        texts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=2))
    return ToolOutcome("\n".join(texts), bool(result.is_error), tuple(images))


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return b""


def image_info(data: str, mime_type: str) -> ImageInfo:
    raw = _decode(data)
    width = height = None
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        width, height = struct.unpack(">II", raw[16:24])
    elif raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        width, height = struct.unpack("<HH", raw[6:10])
    return ImageInfo(mime_type, len(raw), width, height)
