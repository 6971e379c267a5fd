"""Command line of the EXI codec: ``python -m exi decode|encode|namespaces``.

    python -m exi decode --namespace iso2 8098021050908c0c0c0e0c50e001993206002040c40c203030c014000603da98b3040280
    python -m exi decode --namespace din --xml -            # hex (or raw bytes) on stdin
    python -m exi encode --namespace iso20-dc message.json  # prints hex
    python -m exi encode --namespace xmldsig --fragment signedinfo.json

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
from xml.sax.saxutils import escape, quoteattr

from exi._codec import SHORT_NAMES  # the short names --namespace takes (exi.get_codec takes them too)

__all__ = ["SHORT_NAMES", "V2GTP_PAYLOAD_TYPES", "main", "resolve_namespace", "strip_v2gtp", "to_xml"]

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


def _qualified(key: str, value: str, n: int) -> list[tuple[str, Any]]:
    """xsi:type ("{uri}local" value) and undeclared attributes ("@name", "@{uri}name") as XML
    attributes, with the prefix declarations they need on the same element."""
    out: list[tuple[str, Any]] = []
    if key == "xsi:type":
        if value.startswith("{") and "}" in value:
            uri, _, local = value[1:].partition("}")
            out.append((f"xmlns:t{n}", uri))
            value = f"t{n}:{local}"
        out.append((key, value))
        return out
    name = key[1:]
    if name.startswith("{") and "}" in name:
        uri, _, local = name[1:].partition("}")
        if uri == "http://www.w3.org/XML/1998/namespace":
            name = f"xml:{local}"
        else:
            out.append((f"xmlns:a{n}", uri))
            name = f"a{n}:{local}"
    out.append((name, value))
    return out


ORDER = "$order"


def _in_order(kids: list[tuple[Any, Any]], order: list[Any]) -> list[tuple[Any, Any]]:
    """The children of an element in the ordered form: each key of ``order`` takes the next item
    of that key's value (one at a time), the text gaps staying for the caller to place."""
    lists = {k: (x if isinstance(x, list) else [x]) for k, x in kids if k is not None}
    taken: dict[Any, int] = {}
    out: list[tuple[Any, Any]] = []
    for k in order:
        items = lists.get(k, [])
        i = taken.get(k, 0)
        if i < len(items):
            out.append((k, items[i]))
            taken[k] = i + 1
    return out


def to_xml(message: dict[str, Any], namespace: str, attributes: frozenset[str] = frozenset({"Id", "Algorithm", "URI"})) -> str:
    """Render a message dict (JSON shape) as XML text: element names by local name, the keys in
    ``attributes`` with scalar values as attributes, ``value`` as text, the root carrying the
    schema set's namespace (nested elements are not namespace-qualified)."""
    out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>']

    def attrs_and_children(v: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[Any, Any]], Any]:
        attrs: list[tuple[str, Any]] = []
        kids: list[tuple[Any, Any]] = []
        text = None
        for k, x in v.items():
            if k == ORDER:
                continue
            if k == "value":
                text = x
                kids.append((None, x))  # its place among the children (mixed content)
            elif (k in attributes or k == "xsi:nil") and not isinstance(x, (dict, list)):
                attrs.append((k, x))
            elif (k == "xsi:type" or k.startswith("@")) and isinstance(x, str):
                attrs.extend(_qualified(k, x, len(attrs)))
            else:
                kids.append((k, x))
        return attrs, kids, text

    def scalar(x: Any) -> str:
        if isinstance(x, bool):
            return "true" if x else "false"
        return escape(str(x))

    def emit(name: str, v: Any, indent: int, extra: str = "") -> None:
        pad = "  " * indent
        if isinstance(v, list):
            for item in v:
                emit(name, item, indent, extra)
            return
        if name.startswith("{") and "}" in name:  # an undeclared or wildcard element
            uri, _, local = name[1:].partition("}")
            name = local if not uri else f"e{indent}:{local}"
            extra += f' xmlns:e{indent}={quoteattr(uri)}' if uri else ' xmlns=""'
        if not isinstance(v, dict):
            out.append(f"{pad}<{name}{extra}>{scalar(v)}</{name}>")
            return
        attrs, kids, text = attrs_and_children(v)
        if isinstance(v.get(ORDER), list):  # the ordered form: the children in the order it gives
            kids = _in_order(kids, v[ORDER])
            if not isinstance(text, list):
                text = [text or ""]
        if isinstance(text, list):  # mixed content: one text per gap between the children
            items = [(k, y) for k, x in kids if k is not None for y in (x if isinstance(x, list) else [x])]
            kids = [(None, text[0])] if text and text[0] else []
            for i, (k, y) in enumerate(items):
                kids.append((k, y))
                if i + 1 < len(text) and text[i + 1]:
                    kids.append((None, text[i + 1]))
            text = kids[0][1] if len(kids) == 1 and kids[0][0] is None else None
        if len(kids) == 1 and kids[0][0] is None:
            kids = []
        a = extra + "".join(f" {k}={quoteattr(scalar(x) if not isinstance(x, str) else x)}" for k, x in attrs)
        if text is not None and not kids:
            out.append(f"{pad}<{name}{a}>{scalar(text)}</{name}>")
        elif not kids:
            out.append(f"{pad}<{name}{a}/>")
        else:
            out.append(f"{pad}<{name}{a}>")
            for k, x in kids:
                if k is None:
                    out.append(f"{pad}  {scalar(x)}")
                else:
                    emit(k, x, indent + 1)
            out.append(f"{pad}</{name}>")

    def has_nil(v: Any) -> bool:
        if isinstance(v, dict):
            return "xsi:nil" in v or "xsi:type" in v or any(has_nil(x) for x in v.values())
        return isinstance(v, list) and any(has_nil(x) for x in v)

    xsi = ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' if has_nil(message) else ""
    for root, v in message.items():
        emit(root, v, 0, f" xmlns={quoteattr(namespace)}{xsi}")
    return "\n".join(out) + "\n"


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
        print(f"{args.prog}: note: {note}", file=stderr)
    codec = _codec(ns)
    try:
        msg = codec.decode_fragment(data) if args.fragment else codec.decode(data)
    except exi.DecodeError as exc:
        raise InputError(f"cannot decode as {ns}{' fragment' if args.fragment else ''}: {exc}"
                         f"{_other_form_hint(codec, data, args.fragment, decode=True)}") from exc
    js = to_json(codec, msg, fragment=args.fragment)
    if args.xml:
        stdout.write(to_xml(js, ns, attribute_names(codec)))
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
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{src}: not UTF-8 text (byte {exc.start})") from exc
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
        raise InputError(f"cannot encode as {ns}{' fragment' if args.fragment else ''}: {exc}"
                         f"{_other_form_hint(codec, obj, args.fragment, decode=False)}") from exc
    if args.v2gtp:
        ptype = 0x8001
        data = bytes([0x01, 0xFE]) + ptype.to_bytes(2, "big") + len(data).to_bytes(4, "big") + data
    stdout.write(data.hex() + "\n")
    return 0


def _other_form_hint(codec: Any, data: Any, fragment: bool, *, decode: bool) -> str:
    """`` (it is a fragment: add --fragment)`` when the input works in the other form, else ``""``."""
    import exi
    from exi._shape import from_json

    try:
        if decode:
            (codec.decode if fragment else codec.decode_fragment)(data)
        else:
            native = from_json(codec, data, fragment=not fragment)
            (codec.encode if fragment else codec.encode_fragment)(native)
    except (exi.EXIError, ValueError, TypeError, KeyError):
        return ""
    return "; it is an EXI document: leave out --fragment" if fragment else \
        "; it is an EXI fragment (a signed element or SignedInfo): add --fragment"


def cmd_namespaces(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str], stderr: IO[str]) -> int:
    for short, ns in SHORT_NAMES.items():
        stdout.write(f"{short:14} {ns}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m exi", description="Schema-informed EXI codec for V2G messages "
                                "(AppProtocol, DIN 70121, ISO 15118-2, ISO 15118-20, xmldsig fragments).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ns_help = "namespace URI or short name: " + ", ".join(SHORT_NAMES)
    d = sub.add_parser("decode", help="decode an EXI stream (hex) to JSON or XML",
                       description="Decode an EXI stream (hex on the command line or stdin, or raw bytes on "
                                   "stdin; a V2GTP header is checked and stripped) and print the message as "
                                   "JSON or XML.")
    d.add_argument("--namespace", "-n", required=True, help=ns_help)
    d.add_argument("--fragment", action="store_true", help="the stream is an EXI fragment (signature digests)")
    d.add_argument("--xml", action="store_true", help="print XML instead of JSON")
    d.add_argument("--compact", action="store_true", help="JSON on one line")
    d.add_argument("stream", nargs="?", help="hex string (a V2GTP header is stripped), or - for stdin (hex or raw bytes)")
    d.set_defaults(func=cmd_decode, prog=d.prog)
    e = sub.add_parser("encode", help="encode a JSON message to EXI (prints hex)",
                       description="Encode a JSON message (the shape of the vectors: hexBinary as hex, "
                                   "base64Binary as base64) to EXI and print the stream as hex.")
    e.add_argument("--namespace", "-n", required=True, help=ns_help)
    e.add_argument("--fragment", action="store_true", help="encode an EXI fragment instead of a document")
    e.add_argument("--v2gtp", action="store_true", help="prefix an 8-byte V2GTP header (payload type 0x8001)")
    e.add_argument("file", nargs="?", help="JSON file (the message, or a vector file with 'message'), or - for stdin")
    e.set_defaults(func=cmd_encode, prog=e.prog)
    n = sub.add_parser("namespaces", help="list the short namespace names",
                       description="List the short names --namespace takes and the namespace URI of each.")
    n.set_defaults(func=cmd_namespaces, prog=n.prog)
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
    except UsageError as exc:  # the same "<command>: error: <sentence>" form argparse uses
        print(f"{args.prog}: error: {exc}", file=stderr)
        return 2
    except InputError as exc:
        print(f"{args.prog}: error: {exc}", file=stderr)
        return 1
