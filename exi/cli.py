"""Command line of the EXI codec: ``python -m exi decode|encode|namespaces``.

    python -m exi decode --namespace iso2 8098021050908c0c0c0e0c50e001993206002040c40c203030c014000603da98b3040280
    python -m exi decode --namespace din --xml -            # hex (or raw bytes) on stdin
    python -m exi encode --namespace iso20-dc message.json  # prints hex
    python -m exi encode --namespace xmldsig --fragment signedinfo.json
    python -m exi encode --namespace iso2 message.xml        # XML as decode --xml writes it

Messages are JSON in the shape of the project's vectors: hexBinary as uppercase hex strings,
base64Binary as base64 strings. A decoded stream may carry its 8-byte V2GTP header
(0x01 0xFE, payload type, payload length, [V2G2-xxx] / ISO 15118-2 section 7.8.3): it is checked
and stripped, and stderr says so. Exit codes: 0 success, 1 bad input (malformed stream, JSON,
hex or V2GTP header, a message the schema rejects), 2 usage error (unknown namespace, bad options).
"""
from __future__ import annotations

import argparse
import binascii
import json
import string
import sys
from typing import IO, Any, Sequence

__all__ = ["SHORT_NAMES", "V2GTP_PAYLOAD_TYPES", "main", "resolve_namespace", "strip_v2gtp", "to_xml"]

#: Short names accepted by ``--namespace``.
SHORT_NAMES: dict[str, str] = {
    "apphand": "urn:iso:15118:2:2010:AppProtocol",
    "sap": "urn:iso:15118:2:2010:AppProtocol",
    "din": "urn:din:70121:2012:MsgDef",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
    "iso20": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20-common": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20-ac": "urn:iso:std:iso:15118:-20:AC",
    "iso20-dc": "urn:iso:std:iso:15118:-20:DC",
    "iso20-wpt": "urn:iso:std:iso:15118:-20:WPT",
    "iso20-acdp": "urn:iso:std:iso:15118:-20:ACDP",
    "xmldsig": "http://www.w3.org/2000/09/xmldsig#",
}

#: V2GTP payload types (ISO 15118-2 Table 10, ISO 15118-20 Table 14) -> (description, EXI?).
V2GTP_PAYLOAD_TYPES: dict[int, tuple[str, bool]] = {
    0x8001: ("EXI encoded V2G message (SAP, DIN, ISO 15118-2)", True),
    0x8002: ("ISO 15118-20 main stream (CommonMessages)", True),
    0x8003: ("ISO 15118-20 AC main stream", True),
    0x8004: ("ISO 15118-20 DC main stream", True),
    0x8005: ("ISO 15118-20 ACDP main stream", True),
    0x8006: ("ISO 15118-20 WPT main stream", True),
    0x9000: ("SDP request", False),
    0x9001: ("SDP response", False),
    0x9002: ("SDP request (wireless)", False),
    0x9003: ("SDP response (wireless)", False),
}
V2GTP_HEADER_LEN = 8


class InputError(Exception):
    """Bad input data (exit code 1)."""


class UsageError(Exception):
    """Bad invocation (exit code 2)."""


def resolve_namespace(name: str) -> str:
    """A short name (``iso2``, ``iso20-dc``, ...) or a full namespace URI -> the namespace URI."""
    from exi._codec import NAMESPACES

    ns = SHORT_NAMES.get(name.strip().lower(), name.strip())
    if ns not in NAMESPACES:
        known = ", ".join(sorted(SHORT_NAMES))
        raise UsageError(f"unknown namespace {name!r}; use one of: {known}, or a full namespace URI")
    return ns


def strip_v2gtp(data: bytes) -> tuple[bytes, str | None]:
    """Remove a V2GTP header if ``data`` starts with one; returns (payload, note or None).

    Raises InputError if the header is present but inconsistent (wrong inverse version,
    non-EXI payload type, length that does not match the bytes that follow).
    """
    if len(data) < 2 or data[0] != 0x01 or data[1] != 0xFE:
        if len(data) >= 2 and data[0] == 0x01:
            raise InputError(f"V2GTP header: protocol version 0x01 but inverse version 0x{data[1]:02X} (expected 0xFE)")
        return data, None
    if len(data) < V2GTP_HEADER_LEN:
        raise InputError(f"V2GTP header truncated: {len(data)} bytes, a header has {V2GTP_HEADER_LEN}")
    ptype = int.from_bytes(data[2:4], "big")
    length = int.from_bytes(data[4:8], "big")
    desc, is_exi = V2GTP_PAYLOAD_TYPES.get(ptype, (f"unknown payload type 0x{ptype:04X}", False))
    if not is_exi:
        raise InputError(f"V2GTP header: payload type 0x{ptype:04X} ({desc}) does not carry an EXI message")
    have = len(data) - V2GTP_HEADER_LEN
    if length != have:
        raise InputError(f"V2GTP header: payload length field says {length} bytes, {have} follow")
    note = f"stripped V2GTP header {data[:8].hex()} (version 1, payload type 0x{ptype:04X} = {desc}, length {length})"
    return data[V2GTP_HEADER_LEN:], note


def _read_stream(arg: str | None, stdin: IO[bytes]) -> bytes:
    if arg is None or arg == "-":
        raw = stdin.read()
        text = raw.strip()
        if not text:
            raise InputError("empty input: expected a hex-encoded EXI stream (or raw bytes) on stdin")
        try:
            t = text.decode("ascii")
        except UnicodeDecodeError:
            return raw
        t = "".join(t.split())
        if t.lower().startswith("0x"):
            t = t[2:]
        if t and all(c in string.hexdigits for c in t):
            return _unhex(t)
        return raw
    t = "".join(arg.split())
    if t.lower().startswith("0x"):
        t = t[2:]
    return _unhex(t)


def _unhex(t: str) -> bytes:
    if not t:
        raise InputError("empty input: expected a hex-encoded EXI stream")
    try:
        return binascii.unhexlify(t)
    except (binascii.Error, ValueError) as exc:
        bad = next((i for i, c in enumerate(t) if c not in string.hexdigits), None)
        where = f" (character {bad}: {t[bad]!r})" if bad is not None else " (odd number of digits)"
        raise InputError(f"not a hex string{where}") from exc


def attribute_names(codec: Any) -> frozenset[str]:
    """Names that occur as attributes (AT productions) anywhere in the codec's grammar tables."""
    return frozenset(p[1] for st in codec._tables.STATES for p in st[1] if p[0] == 0)


def to_xml(message: dict[str, Any], namespace: str, fragment: bool = False) -> str:
    """Render a message dict (JSON shape) as XML text: every element and attribute in the
    namespace its schema gives it, one prefix per namespace declared on the root (exi/_xml.py),
    so that the text validates against the XSDs; ``encode`` reads it back."""
    from exi._xml import to_xml as render

    return render(_codec(namespace), message, fragment=fragment)


def _codec(ns: str) -> Any:
    import exi

    return exi.get_codec(ns)


def cmd_decode(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    import exi
    from exi._shape import to_json

    ns = resolve_namespace(args.namespace)
    data = _read_stream(args.stream, stdin)
    data, note = strip_v2gtp(data)
    if note:
        print(f"exi: {note}", file=stderr)
    codec = _codec(ns)
    try:
        msg = codec.decode_fragment(data) if args.fragment else codec.decode(data)
    except exi.DecodeError as exc:
        raise InputError(f"cannot decode as {ns}{' fragment' if args.fragment else ''}: {exc}") from exc
    js = to_json(codec, msg, fragment=args.fragment)
    if args.xml:
        stdout.write(to_xml(js, ns, fragment=args.fragment))
    else:
        stdout.write(json.dumps(js, indent=None if args.compact else 2, ensure_ascii=False) + "\n")
    return 0


def cmd_encode(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    import exi
    from exi._shape import from_json

    ns = resolve_namespace(args.namespace)
    if args.file is None or args.file == "-":
        raw = stdin.read()
        src = "stdin"
    else:
        try:
            with open(args.file, "rb") as f:
                raw = f.read()
        except OSError as exc:
            raise InputError(f"cannot read {args.file}: {exc.strerror}") from exc
        src = args.file
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{src}: not UTF-8 text (byte {exc.start})") from exc
    if text.lstrip("\ufeff \t\r\n").startswith("<"):  # XML, as decode --xml writes it
        from exi._xml import from_xml

        try:
            obj = from_xml(_codec(ns), text, fragment=args.fragment)
        except exi.EncodeError as exc:
            raise InputError(f"{src}: {exc}") from exc
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{src}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if isinstance(obj, dict) and "message" in obj and "exi_hex" in obj:
        obj = obj["message"]  # a vector file: take its message
    if not isinstance(obj, dict) or len(obj) != 1:
        raise InputError(f"{src}: expected a JSON object with exactly one root element")
    codec = _codec(ns)
    try:
        native = from_json(codec, obj, fragment=args.fragment)
        data = codec.encode_fragment(native) if args.fragment else codec.encode(native)
    except exi.EncodeError as exc:
        raise InputError(f"cannot encode as {ns}{' fragment' if args.fragment else ''}: {exc}") from exc
    if args.v2gtp:
        ptype = 0x8001
        data = bytes([0x01, 0xFE]) + ptype.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    stdout.write(data.hex() + "\n")
    return 0


def cmd_namespaces(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    for short, ns in SHORT_NAMES.items():
        stdout.write(f"{short:14} {ns}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exi", description="Schema-informed EXI codec for V2G messages "
                                "(AppProtocol, DIN 70121, ISO 15118-2, ISO 15118-20, xmldsig fragments).")
    sub = p.add_subparsers(dest="command", required=True)
    ns_help = "namespace URI or short name: " + ", ".join(SHORT_NAMES)
    d = sub.add_parser("decode", help="decode an EXI stream (hex) to JSON or XML")
    d.add_argument("--namespace", "-n", required=True, help=ns_help)
    d.add_argument("--fragment", action="store_true", help="the stream is an EXI fragment (signature digests)")
    d.add_argument("--xml", action="store_true", help="print XML instead of JSON")
    d.add_argument("--compact", action="store_true", help="JSON on one line")
    d.add_argument("stream", nargs="?", help="hex string (a V2GTP header is stripped), or - for stdin (hex or raw bytes)")
    d.set_defaults(func=cmd_decode)
    e = sub.add_parser("encode", help="encode a JSON or XML message to EXI (prints hex)")
    e.add_argument("--namespace", "-n", required=True, help=ns_help)
    e.add_argument("--fragment", action="store_true", help="encode an EXI fragment instead of a document")
    e.add_argument("--v2gtp", action="store_true", help="prefix an 8-byte V2GTP header (payload type 0x8001)")
    e.add_argument("file", nargs="?", help="JSON file (the message, or a vector file with 'message') or XML "
                   "file (as decode --xml writes it), or - for stdin")
    e.set_defaults(func=cmd_encode)
    n = sub.add_parser("namespaces", help="list the short namespace names")
    n.set_defaults(func=cmd_namespaces)
    return p


def main(argv: Sequence[str] | None = None, stdin: IO[bytes] | None = None,
         stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return int(exc.code or 0)
    try:
        return int(args.func(args, stdin, stdout, stderr))
    except UsageError as exc:
        print(f"exi: error: {exc}", file=stderr)
        return 2
    except InputError as exc:
        print(f"exi: error: {exc}", file=stderr)
        return 1
