"""HTTP GET over `wasi:http`, the only network a plugin has.

The daemon lets a request through only when its scheme, host and port are
in the plugin's grant; otherwise the call ends in `host_denied`, naming the
origin and how to grant it.

A call has one deadline (5 s unless the grant sets `limits.deadline_ms`)
for everything it does. Requests made one after the other add up: three
targets that never answer, each waited on for 2 s, use the whole deadline
and the call fails with `deadline_exceeded`. `get_all` sends every request
at once, each bounded by its own timeout, so the call waits as long as the
slowest one, and a target that does not answer in time comes back as an
`HttpError` with `timeout` set: no data from that target, for the check to
report as such.
"""

import re
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, poll
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.wasi_http_types import (
    ErrorCode_ConnectionReadTimeout,
    ErrorCode_ConnectionTimeout,
    ErrorCode_HttpRequestDenied,
    Fields,
    FutureIncomingResponse,
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

_TIMEOUTS = (ErrorCode_ConnectionTimeout, ErrorCode_ConnectionReadTimeout)


class HttpError(Exception):
    """A request that got no answer: refused, unreachable or too slow.

    `timeout` is true when the server did not connect or answer in time.
    """

    def __init__(self, url: str, why: str, timeout: bool = False):
        super().__init__(f"GET {url} failed: {why}")
        self.url = url
        self.why = why
        self.timeout = timeout


def get(url: str, timeout_ms: int = 2_000) -> tuple[int, bytes]:
    """Fetches `url` and returns its status code and body.

    Raises `HttpError` when there is no answer, `ValueError` for a URL that
    is not http(s).
    """
    answer = get_all([url], timeout_ms)[0]
    if isinstance(answer, HttpError):
        raise answer
    return answer


def get_all(urls: list[str], timeout_ms: int = 2_000) -> list["tuple[int, bytes] | HttpError"]:
    """Fetches every URL at once, each bounded by `timeout_ms`.

    Returns one answer per URL, in order: `(status, body)`, or the
    `HttpError` that URL ended in. Raises `ValueError` for a URL that is
    not http(s).
    """
    answers: list = [None] * len(urls)
    waiting: list[tuple[int, FutureIncomingResponse]] = []
    for i, url in enumerate(urls):
        try:
            waiting.append((i, _start(url, timeout_ms)))
        except HttpError as e:
            answers[i] = e
    while waiting:
        pollables = [future.subscribe() for _, future in waiting]
        ready = set(poll.poll(pollables))
        # A pollable is a child of its future and must go first.
        for pollable in pollables:
            pollable.__exit__(None, None, None)
        still = []
        for k, (i, future) in enumerate(waiting):
            if k in ready:
                answers[i] = _finish(urls[i], future)
            else:
                still.append((i, future))
        waiting = still
    return answers


def _start(url: str, timeout_ms: int) -> FutureIncomingResponse:
    """Sends a GET without waiting for its answer."""
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
    options.set_between_bytes_timeout(timeout_ms * _NS_PER_MS)
    try:
        return outgoing_handler.handle(request, options)
    except Err as e:
        raise _error(url, e.value) from None


def _finish(url: str, future: FutureIncomingResponse) -> "tuple[int, bytes] | HttpError":
    """Reads the answer of a request that is ready, body and all."""
    # `get` returns None while there is no answer yet, and otherwise
    # Ok(Ok(response)) or Ok(Err(error code)); Err(None) only if the answer
    # was taken before.
    outcome = future.get()
    future.__exit__(None, None, None)
    if outcome is None or isinstance(outcome, Err):
        return HttpError(url, "no answer to take")
    if isinstance(outcome.value, Err):
        return _error(url, outcome.value.value)
    response = outcome.value.value
    status = response.status()
    body = response.consume()
    stream = body.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(64 * 1024))
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                return HttpError(url, "the answer's body broke off")
    finally:
        stream.__exit__(None, None, None)
    IncomingBody.finish(body)
    return status, b"".join(chunks)


def _error(url: str, code) -> HttpError:
    """An `HttpError` naming a `wasi:http` error code in words."""
    if isinstance(code, ErrorCode_HttpRequestDenied):
        return HttpError(url, "denied: the plugin's grant does not allow this origin")
    if isinstance(code, ErrorCode_ConnectionReadTimeout):
        return HttpError(url, "timed out waiting for the answer", timeout=True)
    name = type(code).__name__.removeprefix("ErrorCode_")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return HttpError(url, words, timeout=isinstance(code, _TIMEOUTS))
