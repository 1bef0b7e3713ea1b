"""MLLP framing: encoder, stream decoder, partial reads, garbage, restarts, oversize."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import FrameTooLargeError, FramingError, SwitchboardError
from engine.hl7v2.mllp import FrameDecoder, encode_frame

VT, FS, CR = b"\x0b", b"\x1c", b"\r"

MSG_A = b"MSH|^~\\&|HIS|GENHOSP|LAB|GENHOSP|20240102030405||ADT^A01|CTRL1|P|2.5.1\rPID|1||123\r"
MSG_B = b"MSH|^~\\&|LAB|GENHOSP|HIS|GENHOSP|20240102030406||ORU^R01|CTRL2|P|2.5.1\rOBX|1|NM\r"


def frame(payload: bytes) -> bytes:
    return VT + payload + FS + CR


def feed_chunks(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes | FrameTooLargeError]:
    out: list[bytes | FrameTooLargeError] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# --- encoder -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"x", MSG_A, bytes(range(0x0B)) + b"\r\n\xff"])
def test_encode_frame_wraps_and_round_trips(payload):
    framed = encode_frame(payload)
    assert framed == VT + payload + FS + CR
    decoder = FrameDecoder()
    assert decoder.feed(framed) == [payload]
    assert decoder.at_frame_boundary


@pytest.mark.parametrize(
    "payload, name, offset, escape",
    [
        (b"MSH|\x0b|x", "VT (0x0B)", 4, "\\X0B\\"),
        (b"MSH|x\x1c", "FS (0x1C)", 5, "\\X1C\\"),
        (b"\x1c\x0b", "VT (0x0B)", 1, "\\X0B\\"),
    ],
)
def test_encode_frame_rejects_block_characters(payload, name, offset, escape):
    with pytest.raises(FramingError) as info:
        encode_frame(payload)
    text = str(info.value)
    assert name in text
    assert f"offset {offset}" in text
    assert "MLLP" in text
    # The hint's escape is the byte that was found, not the other block character.
    assert escape in info.value.hint
    assert isinstance(info.value, SwitchboardError)


# --- decoder: well-formed streams --------------------------------------------------


@pytest.mark.parametrize(
    "stream, expected",
    [
        pytest.param(frame(MSG_A), [MSG_A], id="single"),
        pytest.param(frame(MSG_A) + frame(MSG_B), [MSG_A, MSG_B], id="two-in-one-read"),
        pytest.param(frame(b""), [b""], id="empty-payload"),
        pytest.param(frame(b"") + frame(MSG_A) + frame(b""), [b"", MSG_A, b""], id="empties"),
        pytest.param(VT + MSG_A + FS + VT + MSG_B + FS, [MSG_A, MSG_B], id="fs-without-cr"),
        pytest.param(
            frame(MSG_A) + b"\r\n \t" + frame(MSG_B) + b"\n",
            [MSG_A, MSG_B],
            id="whitespace-between",
        ),
        pytest.param(VT + b"a\rb\nc" + FS + CR, [b"a\rb\nc"], id="cr-lf-inside"),
    ],
)
def test_decode_single_read(stream, expected):
    decoder = FrameDecoder()
    assert decoder.feed(stream) == expected
    assert decoder.discarded_bytes == 0
    assert decoder.oversize_frames == 0
    assert decoder.at_frame_boundary
    assert decoder.pending_bytes == 0


TWO_FRAMES = frame(MSG_A) + frame(MSG_B)


@pytest.mark.parametrize("cut", range(len(TWO_FRAMES) + 1))
def test_every_split_point_gives_same_frames(cut):
    decoder = FrameDecoder()
    out = decoder.feed(TWO_FRAMES[:cut]) + decoder.feed(TWO_FRAMES[cut:])
    assert out == [MSG_A, MSG_B]
    assert decoder.discarded_bytes == 0
    assert decoder.at_frame_boundary


def test_byte_by_byte():
    decoder = FrameDecoder()
    out = feed_chunks(decoder, chunked(TWO_FRAMES, 1))
    assert out == [MSG_A, MSG_B]
    assert decoder.discarded_bytes == 0


def test_fs_and_cr_in_different_reads():
    decoder = FrameDecoder()
    assert decoder.feed(VT + MSG_A + FS) == [MSG_A]
    assert decoder.at_frame_boundary
    assert decoder.feed(CR + VT + MSG_B) == []
    assert decoder.feed(FS) == [MSG_B]
    assert decoder.feed(CR) == []
    assert decoder.discarded_bytes == 0


def test_fs_without_cr_then_garbage_is_counted():
    decoder = FrameDecoder()
    assert decoder.feed(VT + MSG_A + FS + b"XY" + frame(MSG_B)) == [MSG_A, MSG_B]
    assert decoder.discarded_bytes == 2


def test_empty_feed():
    decoder = FrameDecoder()
    assert decoder.feed(b"") == []
    assert decoder.at_frame_boundary


def test_pending_and_boundary_track_partial_frame():
    decoder = FrameDecoder()
    assert decoder.feed(VT + b"MSH|^~") == []
    assert not decoder.at_frame_boundary
    assert decoder.pending_bytes == 6
    assert decoder.feed(b"\\&") == []
    assert decoder.pending_bytes == 8
    assert decoder.feed(FS + CR) == [b"MSH|^~\\&"]
    assert decoder.at_frame_boundary
    assert decoder.pending_bytes == 0


def test_lone_vt_opens_a_frame():
    decoder = FrameDecoder()
    assert decoder.feed(VT) == []
    assert not decoder.at_frame_boundary
    assert decoder.pending_bytes == 0


# --- decoder: garbage and restarts -------------------------------------------------


@pytest.mark.parametrize(
    "stream, expected, discarded",
    [
        pytest.param(b"abc" + frame(MSG_A), [MSG_A], 3, id="before"),
        pytest.param(frame(MSG_A) + b"xy" + frame(MSG_B), [MSG_A, MSG_B], 2, id="between"),
        pytest.param(frame(MSG_A) + b"zz\r\nz", [MSG_A], 3, id="after"),
        pytest.param(
            b"ab" + frame(MSG_A) + b"c d" + frame(MSG_B) + b"e", [MSG_A, MSG_B], 5, id="everywhere"
        ),
        pytest.param(b"\x1c\r" + frame(MSG_A), [MSG_A], 1, id="stray-fs"),
        pytest.param(b"no frames at all", [], 13, id="only-garbage"),
    ],
)
def test_garbage_outside_frames_is_discarded_and_counted(stream, expected, discarded):
    decoder = FrameDecoder()
    assert decoder.feed(stream) == expected
    assert decoder.discarded_bytes == discarded
    # Same result whatever the read boundaries are.
    decoder = FrameDecoder()
    assert feed_chunks(decoder, chunked(stream, 3)) == expected
    assert decoder.discarded_bytes == discarded


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 1000])
def test_vt_inside_frame_restarts(chunk_size):
    stream = VT + b"MSH|partial" + frame(MSG_A) + frame(MSG_B)
    decoder = FrameDecoder()
    assert feed_chunks(decoder, chunked(stream, chunk_size)) == [MSG_A, MSG_B]
    # The abandoned frame: its VT and its 11 payload bytes.
    assert decoder.discarded_bytes == 12


def test_repeated_restarts():
    decoder = FrameDecoder()
    assert decoder.feed(VT + VT + b"ab" + VT + MSG_A + FS + CR) == [MSG_A]
    assert decoder.discarded_bytes == 1 + 3


# --- decoder: oversize -------------------------------------------------------------


def test_oversize_frame_is_returned_not_raised_and_neighbours_survive():
    big = b"MSH|^~\\&|BIG" + b"x" * 500
    decoder = FrameDecoder(max_frame_bytes=100, head_bytes=16)
    out = decoder.feed(frame(MSG_A[:50]) + frame(big) + frame(b"after"))
    assert len(out) == 3
    assert out[0] == MSG_A[:50]
    error = out[1]
    assert isinstance(error, FrameTooLargeError)
    assert error.size > error.limit == 100
    assert error.head == big[:16]
    assert out[2] == b"after"
    assert decoder.oversize_frames == 1
    assert decoder.at_frame_boundary


def test_frame_of_exactly_the_limit_is_accepted():
    decoder = FrameDecoder(max_frame_bytes=10)
    assert decoder.feed(frame(b"0123456789")) == [b"0123456789"]
    out = decoder.feed(frame(b"0123456789A"))
    assert len(out) == 1
    assert isinstance(out[0], FrameTooLargeError)
    assert out[0].size == 11


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 4096])
def test_oversize_across_reads_reports_once_and_resumes(chunk_size):
    big = bytes(range(0x20, 0x7F)) * 40  # no VT / FS
    stream = frame(MSG_A) + frame(big) + frame(MSG_B) + frame(big) + frame(b"tail")
    decoder = FrameDecoder(max_frame_bytes=200, head_bytes=50)
    out = feed_chunks(decoder, chunked(stream, chunk_size))
    assert [type(item) for item in out] == [
        bytes,
        FrameTooLargeError,
        bytes,
        FrameTooLargeError,
        bytes,
    ]
    assert out[0] == MSG_A
    assert out[2] == MSG_B
    assert out[4] == b"tail"
    for error in (out[1], out[3]):
        assert isinstance(error, FrameTooLargeError)
        assert 200 < error.size <= len(big)
        assert error.limit == 200
        assert error.head == big[:50]
    assert decoder.oversize_frames == 2
    assert decoder.discarded_bytes == 0


def test_head_longer_than_limit_is_capped_at_bytes_seen():
    big = b"y" * 50
    decoder = FrameDecoder(max_frame_bytes=10, head_bytes=4096)
    (error,) = decoder.feed(frame(big))
    assert isinstance(error, FrameTooLargeError)
    assert error.head == big[: error.size]


def test_vt_during_oversize_skip_starts_a_new_frame():
    decoder = FrameDecoder(max_frame_bytes=len(MSG_A))
    out = decoder.feed(VT + b"z" * 300)
    assert len(out) == 1
    assert isinstance(out[0], FrameTooLargeError)
    # No FS ever ends the oversize frame: the sender's next VT must still be honoured.
    assert decoder.feed(b"z" * 300 + frame(MSG_A)) == [MSG_A]
    assert decoder.oversize_frames == 1


def test_memory_stays_bounded_while_skipping_a_huge_frame():
    limit, chunk_size = 1024, 64 * 1024
    huge = b"MSH|" + b"q" * (5 * 1024 * 1024)
    decoder = FrameDecoder(max_frame_bytes=limit, head_bytes=256)
    out: list[bytes | FrameTooLargeError] = []
    for chunk in chunked(frame(huge) + frame(MSG_B), chunk_size):
        out.extend(decoder.feed(chunk))
        assert decoder.pending_bytes <= limit + chunk_size
    assert len(out) == 2
    assert isinstance(out[0], FrameTooLargeError)
    assert out[0].head == huge[:256]
    assert out[1] == MSG_B


def test_large_frame_in_64k_reads():
    payload = bytes(range(0x20, 0x7F)) * (1024 * 1024 // 95 + 1)
    decoder = FrameDecoder()
    assert feed_chunks(decoder, chunked(frame(payload), 64 * 1024)) == [payload]
    assert decoder.pending_bytes == 0


@pytest.mark.parametrize("kwargs", [{"max_frame_bytes": -1}, {"head_bytes": -1}])
def test_negative_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        FrameDecoder(**kwargs)


# --- properties --------------------------------------------------------------------

payloads = st.binary(max_size=300).map(lambda b: b.replace(VT, b"").replace(FS, b""))
garbage = st.binary(max_size=20).map(lambda b: b.replace(VT, b""))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def framed_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    items = draw(st.lists(payloads, max_size=8))
    parts = [draw(garbage)]
    for item in items:
        # Some senders omit the trailing CR.
        parts.append(VT + item + FS + (CR if draw(st.booleans()) else b""))
        parts.append(draw(garbage))
    stream = b"".join(parts)
    points = draw(st.lists(st.integers(min_value=0), max_size=20))
    return items, cut(stream, points)


@settings(max_examples=200)
@given(framed_streams())
def test_property_framed_payloads_come_back_in_order(case):
    items, chunks = case
    assert feed_chunks(FrameDecoder(), chunks) == items


@settings(max_examples=200)
@given(
    st.lists(payloads, max_size=8),
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=40),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_property_oversize_replaced_by_errors(items, limit, head_bytes, points):
    stream = b"".join(frame(item) for item in items)
    decoder = FrameDecoder(max_frame_bytes=limit, head_bytes=head_bytes)
    out = feed_chunks(decoder, cut(stream, points))
    assert len(out) == len(items)
    for item, got in zip(items, out, strict=True):
        if len(item) <= limit:
            assert got == item
        else:
            assert isinstance(got, FrameTooLargeError)
            assert limit < got.size <= len(item)
            assert got.head == item[: min(head_bytes, got.size)]
    assert decoder.oversize_frames == sum(len(item) > limit for item in items)


@settings(max_examples=200)
@given(
    st.binary(max_size=2000),
    st.lists(st.integers(min_value=0), max_size=30),
    st.integers(min_value=0, max_value=64),
)
def test_property_arbitrary_bytes_never_raise(data, points, limit):
    decoder = FrameDecoder(max_frame_bytes=limit, head_bytes=8)
    for chunk in cut(data, points):
        for item in decoder.feed(chunk):
            assert isinstance(item, bytes | FrameTooLargeError)
            if isinstance(item, bytes):
                assert len(item) <= limit
                assert VT not in item and FS not in item
        assert decoder.pending_bytes <= limit
    assert decoder.discarded_bytes <= len(data)
