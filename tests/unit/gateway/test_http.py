from berth.gateway.http import client_head, upstream_head

REQUEST = [(b"host", b"gw:8001"), (b"content-type", b"a/b"), (b"content-length", b"9"),
           (b"connection", b"keep-alive, X-Hop"), (b"x-hop", b"drop"),
           (b"authorization", b"Bearer bk_secret"), (b"x-forwarded-for", b"10.0.0.1")]


def test_upstream_head_drops_hop_by_hop_and_sets_forwarding() -> None:
    head = upstream_head("POST", b"/predict?x=1", REQUEST, host=b"gw:8001",
                         forwarded=b"10.0.0.1", client=b"127.0.0.1", request_id=b"r-1",
                         chunked=False, strip_auth=True)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /predict?x=1 HTTP/1.1"
    assert b"content-type: a/b" in lines and b"content-length: 9" in lines
    assert b"x-forwarded-for: 10.0.0.1, 127.0.0.1" in lines
    assert b"x-forwarded-host: gw:8001" in lines and b"x-request-id: r-1" in lines
    assert not any(ln.startswith((b"x-hop", b"connection", b"authorization", b"host"))
                   for ln in lines)
    kept = upstream_head("GET", b"", [(b"authorization", b"Bearer mine")], host=b"h",
                         forwarded=b"", client=b"c", request_id=b"r", chunked=True,
                         strip_auth=False)
    assert kept.startswith(b"GET / HTTP/1.1\r\n") and b"authorization: Bearer mine" in kept
    assert b"transfer-encoding: chunked" in kept and b"x-forwarded-for: c\r\n" in kept


def test_client_head_frames_bodies() -> None:
    framed = client_head(200, [(b"content-length", b"2"), (b"keep-alive", b"timeout=5")],
                         method="POST", http11=True, keep_alive=True, request_id=b"r")
    assert not framed.chunked and not framed.until_eof and framed.keep_alive
    assert b"keep-alive: timeout" not in framed.data and b"x-request-id: r" in framed.data
    eof = client_head(200, [(b"content-type", b"text/plain")], method="GET", http11=True,
                      keep_alive=True, request_id=b"r")
    assert eof.chunked and eof.until_eof and b"transfer-encoding: chunked" in eof.data
    old = client_head(200, [], method="GET", http11=False, keep_alive=True, request_id=b"r")
    assert not old.chunked and not old.keep_alive and b"connection: close" in old.data
    rechunked = client_head(200, [(b"transfer-encoding", b"chunked")], method="GET",
                            http11=True, keep_alive=True, request_id=b"r")
    assert rechunked.chunked and not rechunked.until_eof
    empty = client_head(204, [], method="DELETE", http11=True, keep_alive=True,
                        request_id=b"r")
    assert not empty.chunked and not empty.until_eof and empty.keep_alive


def test_client_head_marks_event_streams_unbuffered() -> None:
    sse = client_head(200, [(b"content-type", b"text/event-stream")], method="POST",
                      http11=True, keep_alive=True, request_id=b"r")
    assert b"x-accel-buffering: no" in sse.data and b"cache-control: no-cache" in sse.data
    own = client_head(200, [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"private")], method="POST", http11=True,
                      keep_alive=True, request_id=b"r")
    assert own.data.count(b"cache-control") == 1


def test_upstream_head_drops_headers_named_by_a_later_connection_header() -> None:
    head = upstream_head("GET", b"/", [(b"x-early", b"1"), (b"x-keep", b"2"),
                                       (b"connection", b"X-Early")], host=b"h",
                         forwarded=b"", client=b"c", request_id=b"r", chunked=False,
                         strip_auth=False)
    assert b"x-early" not in head and b"x-keep: 2\r\n" in head
    assert head.startswith(b"GET / HTTP/1.1\r\nx-keep: 2\r\nx-forwarded-for: c\r\n")


def test_client_head_reads_names_in_any_case() -> None:
    head = client_head(200, [(b"Content-Type", b"text/event-stream"),
                             (b"Transfer-Encoding", b"chunked"), (b"CONNECTION", b"close"),
                             (b"X-Mine", b"1")],
                       method="GET", http11=True, keep_alive=True, request_id=b"r")
    assert head.chunked and head.keep_alive and not head.until_eof
    assert b"Transfer-Encoding" not in head.data and b"CONNECTION" not in head.data
    assert b"X-Mine: 1\r\n" in head.data and b"x-accel-buffering: no\r\n" in head.data
    assert b"cache-control: no-cache\r\n" in head.data
    assert head.data.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    odd = client_head(599, [(b"Content-Length", b"0")], method="GET", http11=True,
                      keep_alive=True, request_id=b"r")
    assert odd.data.startswith(b"HTTP/1.1 599 Unknown\r\n") and not odd.chunked
