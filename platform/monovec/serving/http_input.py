"""Reading a request at the edge: every problem becomes a 4xx in the documented shape before any work.

The router parses bodies itself instead of letting FastAPI do it, for three reasons measured against
the app: FastAPI answered invalid UTF-8 and too-deeply nested JSON with its own `{"detail": ...}`
shape; it read a 50 MB body whole before a size check could run; and a text holding a lone UTF-16
surrogate (`"a\\ud800b"` is valid JSON) passed validation and then failed inside an arm replica,
taking every request of its micro-batch down with it. Here the size is checked from
`Content-Length` and while streaming, bytes are decoded strictly, nesting depth is bounded, and every
text is checked (type, emptiness, length, encodability) before it is grouped with other requests.

No Ray and no FastAPI app here: the router calls these, unit tests call them directly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An HTTP error in the documented shape: `{"error": {"code", "message"}}` with `status`."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def check_headers(raw_headers: list[tuple[bytes, bytes]], max_bytes: int) -> None:
    """431 when the request's headers together exceed `max_bytes` (names + values)."""
    size = sum(len(k) + len(v) for k, v in raw_headers)
    if size > max_bytes:
        raise ApiError(
            431, "headers_too_large", f"request headers are {size} bytes; the limit is {max_bytes}"
        )


async def read_body(content_length: str | None, chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The body, refusing (413) before reading when `Content-Length` is over `max_bytes`, and as soon as a
    streamed body passes it; 400 for a malformed `Content-Length`."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ApiError(
                400, "bad_content_length", f"Content-Length {content_length!r} is not a number"
            ) from None
        if declared > max_bytes:
            raise ApiError(
                413, "body_too_large", f"request body is {declared} bytes; the limit is {max_bytes}"
            )
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"request body is over the limit of {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of decoded JSON, stopping as soon as it passes `limit` (iterative: no recursion)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((child, d + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_json(raw: bytes, max_depth: int = 8) -> Any:
    """Strict UTF-8, then JSON, then a depth bound; each failure is a 400 naming what is wrong."""
    if not raw.strip():
        raise ApiError(400, "empty_body", "request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_utf8", f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise ApiError(400, "too_deep", f"JSON nesting deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    if _depth(value, max_depth) > max_depth:
        raise ApiError(400, "too_deep", f"JSON nesting deeper than {max_depth} levels")
    return value


def parse_model(value: Any, model: type[M]) -> M:
    """`value` as `model`; 422 naming the first bad field (400 when the body is not an object)."""
    if not isinstance(value, dict):
        raise ApiError(
            400, "invalid_request", f"request body must be a JSON object, got {type(value).__name__}"
        )
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise ApiError(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}") from None


def unpaired_surrogate(text: str) -> int | None:
    """Index of the first lone UTF-16 surrogate in `text` (it cannot be encoded as UTF-8), else None."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return exc.start


INPUT_ERROR_STATUS = {"text_too_long": 413, "invalid_type": 422}
"""HTTP status of a pipeline InputError code (others: 400). The length limit is the model's own
`classifier.max_text_chars`, checked by the arm's pipeline: one limit for the CLI, jobs and HTTP."""


def text_problem(text: object) -> ApiError | None:
    """Why `text` cannot be sent to an arm (400/422 ApiError), or None when it can. Its length is the
    model's to judge (`ClassifierPipeline.validate`: 413 text_too_long through INPUT_ERROR_STATUS)."""
    if not isinstance(text, str):
        return ApiError(422, "invalid_type", f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        return ApiError(400, "empty_text", "text is empty or only whitespace")
    at = unpaired_surrogate(text)
    if at is not None:
        return ApiError(400, "invalid_text", f"text has an unpaired UTF-16 surrogate at character {at}")
    return None


def item_error(problem: ApiError, index: int) -> dict[str, Any]:
    """A batch item's error entry: `{"index", "error": {"code", "message"}}` (the other items still run)."""
    return {"index": index, **problem.body()}
