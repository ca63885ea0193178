"""A blocking HTTP GET over `wasi:http`, the only network a plugin has.

The daemon lets the request through only when its scheme, host and port are
in the plugin's grant; otherwise the call ends in `host_denied`.
"""

from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingBody,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    RequestOptions,
    Scheme_Http,
    Scheme_Https,
)

# wasi:http timeouts are in nanoseconds.
_NS_PER_MS = 1_000_000


def get(url: str, timeout_ms: int = 2_000) -> tuple[int, bytes]:
    """Fetches `url` and returns its status code and body."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"`{url}` is not an http(s) URL")
    request = OutgoingRequest(Fields())
    request.set_method(Method_Get())
    request.set_scheme(Scheme_Https() if parts.scheme == "https" else Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    OutgoingBody.finish(request.body(), None)

    options = RequestOptions()
    options.set_connect_timeout(timeout_ms * _NS_PER_MS)
    options.set_first_byte_timeout(timeout_ms * _NS_PER_MS)

    future = outgoing_handler.handle(request, options)
    future.subscribe().block()
    outcome = future.get()
    # `get` answers Ok(Ok(response)), Ok(Err(error-code)) or None; the
    # bindings raise the inner errors as `Err`.
    if outcome is None or isinstance(outcome.value, Err):
        raise RuntimeError(f"GET {url} failed: {outcome}")
    response = outcome.value.value
    status = response.status()
    body = response.consume()
    stream = body.stream()
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(64 * 1024))
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise
    stream.__exit__(None, None, None)
    IncomingBody.finish(body)
    return status, b"".join(chunks)
