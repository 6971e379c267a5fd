"""V2GTP framing: header layout, header checks with byte offsets, incremental reader."""
from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugcharge.core.v2gtp import (
    append_frame,
    HEADER_LENGTH,
    ErrorKind,
    Frame,
    FrameReader,
    HeaderAction,
    PayloadType,
    V2GTPError,
    decode_frame,
    decode_header,
    encode_frame,
)


def test_header_layout_matches_the_standard() -> None:
    frame = encode_frame(PayloadType.EXI, b"\x80\x98\x02")
    assert frame[:8] == bytes([0x01, 0xFE, 0x80, 0x01, 0, 0, 0, 3])
    assert frame[8:] == b"\x80\x98\x02"
    sdp = encode_frame(PayloadType.SDP_REQUEST, b"\x00\x00")
    assert sdp.hex() == "01fe9000000000020000"


def test_iso20_payload_types() -> None:
    assert PayloadType.SAP == PayloadType.EXI == 0x8001
    assert [PayloadType.MAINSTREAM, PayloadType.AC_MAINSTREAM, PayloadType.DC_MAINSTREAM] == [0x8002, 0x8003, 0x8004]
    assert PayloadType.SDP_REQUEST_WIRELESS == 0x9002 and PayloadType.SDP_RESPONSE_WIRELESS == 0x9003
    assert decode_header(encode_frame(0x8004, b"")).payload_type == 0x8004


@pytest.mark.parametrize(
    "header, kind, offset",
    [
        (bytes([0x02, 0xFD, 0x80, 0x01, 0, 0, 0, 0]), ErrorKind.BAD_VERSION, 0),
        (bytes([0x01, 0xFF, 0x80, 0x01, 0, 0, 0, 0]), ErrorKind.BAD_INVERSE, 1),
        (bytes([0x01, 0xFE, 0x12, 0x34, 0, 0, 0, 0]), ErrorKind.UNKNOWN_PAYLOAD_TYPE, 2),
        (bytes([0x01, 0xFE, 0x80, 0x01, 0xFF, 0xFF, 0xFF, 0xFF]), ErrorKind.TOO_LARGE, 4),
        (bytes([0x01, 0xFE, 0x80]), ErrorKind.TRUNCATED, 3),
    ],
)
def test_header_errors_name_kind_and_offset(header: bytes, kind: ErrorKind, offset: int) -> None:
    with pytest.raises(V2GTPError) as ei:
        decode_header(header)
    assert ei.value.kind is kind
    assert ei.value.offset == offset
    assert isinstance(ei.value, ValueError)
    assert str(offset) in str(ei.value)


def test_size_limit_is_configurable() -> None:
    frame = encode_frame(PayloadType.EXI, b"x" * 100)
    assert decode_header(frame, max_payload=100).payload_length == 100
    with pytest.raises(V2GTPError) as ei:
        decode_header(frame, max_payload=99)
    assert ei.value.kind is ErrorKind.TOO_LARGE and ei.value.action is HeaderAction.CLOSE_CONNECTION


def test_allowed_types_restrict() -> None:
    frame = encode_frame(PayloadType.DC_MAINSTREAM, b"")
    with pytest.raises(V2GTPError) as ei:
        decode_header(frame, allowed_types={PayloadType.EXI})
    assert ei.value.kind is ErrorKind.UNKNOWN_PAYLOAD_TYPE and ei.value.payload_type == 0x8004
    # manufacturer-specific type accepted when asked for
    assert decode_header(encode_frame(0xA001, b""), allowed_types={0xA001}).payload_type == 0xA001


def test_decode_frame_datagram() -> None:
    data = encode_frame(PayloadType.SDP_RESPONSE, bytes(20))
    assert decode_frame(data) == Frame(0x9001, bytes(20))
    with pytest.raises(V2GTPError) as ei:
        decode_frame(data[:-1])
    assert ei.value.kind is ErrorKind.TRUNCATED
    with pytest.raises(V2GTPError) as ei:
        decode_frame(data + b"\x00")
    assert ei.value.kind is ErrorKind.LENGTH_MISMATCH and ei.value.offset == len(data)


def test_encode_rejects_bad_type() -> None:
    with pytest.raises(ValueError):
        encode_frame(0x10000, b"")


def _frames(n: int, rng: random.Random) -> list[Frame]:
    types = [0x8001, 0x8002, 0x9000, 0x9001]
    return [Frame(rng.choice(types), rng.randbytes(rng.randint(0, 300))) for _ in range(n)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), cuts=st.lists(st.integers(0, 5000), max_size=30))
def test_reader_reassembles_any_split(seed: int, cuts: list[int]) -> None:
    rng = random.Random(seed)
    frames = _frames(rng.randint(0, 12), rng)
    stream = b"".join(encode_frame(f.payload_type, f.payload) for f in frames)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = FrameReader()
    got: list[Frame] = []
    for a, b in zip(points, points[1:]):
        got += reader.feed(stream[a:b])
    reader.eof()
    assert got == frames
    assert reader.offset == len(stream) and reader.buffered == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), whole=st.booleans())
def test_feed_payloads_equals_feed_whole_frames_or_not(seed: int, whole: bool) -> None:
    """feed_payloads (the session loop's path, with a one-step parse of a lone whole frame) gives the
    same frames, offsets and errors as feed, as (type, payload) pairs."""
    rng = random.Random(seed)
    frames = _frames(rng.randint(1, 6), rng)
    chunks = [encode_frame(*f) for f in frames]
    if not whole:  # split and coalesce at random
        stream = b"".join(chunks)
        cuts = sorted({rng.randint(0, len(stream)) for _ in range(rng.randint(0, 6))} | {0, len(stream)})
        chunks = [stream[a:b] for a, b in zip(cuts, cuts[1:])]
    if rng.random() < 0.3:  # then a bad header
        chunks.append(bytes([0x02, 0xFD, 0x80, 0x01, 0, 0, 0, 0]))
    a, b = FrameReader(), FrameReader()
    for chunk in chunks:
        try:
            want: Any = ("ok", a.feed(chunk))
        except V2GTPError as exc:
            want = ("error", exc.kind, exc.offset, exc.frames)
        try:
            got: Any = ("ok", [Frame(t, p) for t, p in b.feed_payloads(chunk)])
        except V2GTPError as exc:
            got = ("error", exc.kind, exc.offset, [Frame(*f) for f in exc.frames])
        assert got == want
        assert (a.offset, a.buffered) == (b.offset, b.buffered)
        if want[0] == "error":
            break


def test_feed_payloads_lone_whole_frame_checks_every_header_field() -> None:
    """The one-step path takes only a frame the full checks would take."""
    ok = encode_frame(0x8001, b"abc")
    assert FrameReader().feed_payloads(ok) == [(0x8001, b"abc")]
    for bad, kind in ((b"\x02" + ok[1:], ErrorKind.BAD_VERSION), (ok[:1] + b"\x00" + ok[2:], ErrorKind.BAD_INVERSE)):
        with pytest.raises(V2GTPError) as ei:
            FrameReader().feed_payloads(bad)
        assert ei.value.kind is kind
    with pytest.raises(V2GTPError) as ei:  # over the payload limit
        FrameReader(max_payload=2).feed_payloads(ok)
    assert ei.value.kind is ErrorKind.TOO_LARGE
    with pytest.raises(V2GTPError) as ei:  # a type this reader does not accept
        FrameReader(allowed_types={0x8001}).feed_payloads(encode_frame(0x8002, b"abc"))
    assert ei.value.kind is ErrorKind.UNKNOWN_PAYLOAD_TYPE


def test_reader_byte_by_byte_and_coalesced() -> None:
    frames = [Frame(0x8001, b"abc"), Frame(0x8001, b""), Frame(0x9001, b"z" * 20)]
    stream = b"".join(encode_frame(*f) for f in frames)
    reader = FrameReader()
    out: list[Frame] = []
    for i in range(len(stream)):
        out += reader.feed(stream[i:i + 1])
    assert out == frames
    assert FrameReader().feed(stream) == frames
    ptype, payload = frames[0]
    assert (ptype, payload) == (0x8001, b"abc")


def test_reader_error_offset_is_stream_position_and_keeps_completed_frames() -> None:
    good = encode_frame(0x8001, b"hello")
    bad = bytes([0x01, 0x00, 0x80, 0x01, 0, 0, 0, 0])
    reader = FrameReader()
    with pytest.raises(V2GTPError) as ei:
        reader.feed(good + bad)
    assert ei.value.kind is ErrorKind.BAD_INVERSE
    assert ei.value.offset == len(good) + 1
    assert ei.value.frames == [Frame(0x8001, b"hello")]
    with pytest.raises(V2GTPError):  # the stream is dead after a CLOSE_CONNECTION error
        reader.feed(good)


def test_reader_discards_unknown_type_and_continues() -> None:
    unknown = bytes([0x01, 0xFE, 0x77, 0x77, 0, 0, 0, 4]) + b"junk"
    good = encode_frame(0x8001, b"ok")
    reader = FrameReader()
    with pytest.raises(V2GTPError) as ei:
        reader.feed(unknown[:10])  # payload only partly there
    assert ei.value.action is HeaderAction.DISCARD_MESSAGE
    assert reader.feed(unknown[10:] + good) == [Frame(0x8001, b"ok")]


def test_reader_oversize_frame_is_rejected_before_buffering() -> None:
    reader = FrameReader(max_payload=1000)
    header = bytes([0x01, 0xFE, 0x80, 0x01]) + (10**6).to_bytes(4, "big")
    with pytest.raises(V2GTPError) as ei:
        reader.feed(header)
    assert ei.value.kind is ErrorKind.TOO_LARGE and ei.value.offset == 4
    assert reader.buffered <= HEADER_LENGTH


def test_reader_eof_inside_frame() -> None:
    reader = FrameReader()
    reader.feed(encode_frame(0x8001, b"abcdef")[:-2])
    with pytest.raises(V2GTPError) as ei:
        reader.eof()
    assert ei.value.kind is ErrorKind.TRUNCATED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_reader_fuzz_only_v2gtp_error(data: bytes) -> None:
    reader = FrameReader(max_payload=64)
    try:
        reader.feed(data)
        reader.eof()
    except V2GTPError:
        pass


def _drain(reader: FrameReader, chunk: bytes, discarded: list[V2GTPError]) -> list[Frame]:
    out: list[Frame] = []
    data = chunk
    while True:
        try:
            out += reader.feed(data)
            return out
        except V2GTPError as exc:
            assert exc.action is HeaderAction.DISCARD_MESSAGE, exc
            out += exc.frames
            discarded.append(exc)
            data = b""


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32), cuts=st.lists(st.integers(0, 4000), max_size=20))
def test_reader_mixed_unknown_frames_any_split(seed: int, cuts: list[int]) -> None:
    rng = random.Random(seed)
    items = []
    for _ in range(rng.randint(0, 10)):
        if rng.random() < 0.3:
            items.append((0x7777, rng.randbytes(rng.randint(0, 50)), False))
        else:
            items.append((0x8001, rng.randbytes(rng.randint(0, 50)), True))
    encoded = [encode_frame(t, p) for t, p, _ in items]
    stream = b"".join(encoded)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = FrameReader(max_payload=100)
    got: list[Frame] = []
    discarded: list[V2GTPError] = []
    for a, b in zip(points, points[1:]):
        got += _drain(reader, stream[a:b], discarded)
    reader.eof()
    assert got == [Frame(t, p) for t, p, keep in items if keep]
    assert len(discarded) == sum(1 for *_, keep in items if not keep)
    starts = [sum(len(e) for e in encoded[:i]) for i in range(len(items))]
    assert [d.offset for d in discarded] == [s + 2 for s, (_, _, keep) in zip(starts, items) if not keep]
    assert reader.offset == len(stream)


def test_append_frame_is_encode_frame_in_place() -> None:
    out = bytearray(b"xy")
    append_frame(out, 0x8001, b"abc")
    assert bytes(out) == b"xy" + encode_frame(0x8001, b"abc")
    with pytest.raises(ValueError):
        append_frame(out, 0x10000, b"")
    assert bytes(out) == b"xy" + encode_frame(0x8001, b"abc")  # nothing appended on a refusal
