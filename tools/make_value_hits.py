#!/usr/bin/env python3
"""Remake tests/exi_tests/golden/value_hits.json: EXIficient's streams with value-table hits.

A dev tool, never shipped. EXIficient (the EXI engine in EXICodec.jar of the ``iso15118`` 0.31.2
wheel) compiles the XSDs itself (tests/exi_tests/_xsd_oracle.py) and encodes messages whose
strings repeat (Algorithm URIs of a Signature, Id attributes, eMAIDs, names) twice: with its
default value partitions (valueMaxLength and valuePartitionCapacity unbounded), where every
repeat is a value-table hit (EXI 1.0 section 7.3.3), and with valuePartitionCapacity 0, the V2G
setting, where every value is a literal. Only messages whose two streams differ (that carry a
hit) are kept, and only when EXIficient decodes the hit stream back to the XML it encoded (the
message rendered from the XSD by tests/exi_tests/_xsd_oracle.py). Our codec plays no part.

    export EXI_ORACLE_JAR="$(tools/get_oracle_jar.sh)"
    python tools/make_value_hits.py --schemas DIR [--vectors DIR]

``--schemas``: the V2G XSDs; ``--vectors``: a directory of vector files (the project's golden
vector layout: namespace, kind, message in the JSON shape) whose signed messages are taken too.
The messages come from the seeded XSD-driven generator (tests/exi_tests/_exi_msggen.py) with
``p_repeat`` (a string repeats one generated before in the message) and from those vectors.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "exi_tests"))

from _exi_msggen import (  # noqa: E402
    SCHEMA_SETS,
    GenOptions,
    MessageGenerator,
    NotGeneratable,
    json_to_bytes_shape,
    to_bytes_shape,
    to_json_shape,
)
from _xsd_oracle import XmlRenderer, XsdOracle  # noqa: E402

#: (schema set, kind, message type): generated messages with repeated strings
GENERATED = [
    ("apphand", "document", "supportedAppProtocolReq"),
    ("din", "document", "ServiceDiscoveryRes"),
    ("din", "document", "SessionSetupRes"),
    ("iso2", "document", "PaymentDetailsReq"),
    ("iso2", "document", "CertificateInstallationRes"),
    ("iso2", "document", "ServiceDiscoveryRes"),
    ("iso2", "document", "ChargeParameterDiscoveryRes"),
    ("iso2", "document", "MeteringReceiptReq"),
    ("iso2", "exiFragment", "CertificateInstallationReq"),
    ("iso20-common", "document", "ServiceDetailRes"),
    ("iso20-common", "document", "CertificateInstallationRes"),
    ("iso20-common", "document", "AuthorizationReq"),
    ("iso20-dc", "document", "DC_ChargeParameterDiscoveryRes"),
    ("xmldsig", "xmldsigFragment", "SignedInfo"),
]
#: vector file stems whose (signed) messages repeat Algorithm URIs and the like by nature
VECTORS = ("app_handshake_SupportedAppProtocolReq", "iso15118_2_AuthorizationReq", "iso15118_2_MeteringReceiptReq",
           "iso15118_2_PaymentDetailsReq", "iso15118_2_CertificateInstallationRes", "iso15118_20_AuthorizationReq_PnC")
SET_OF_NS = {s.namespace: name for name, s in SCHEMA_SETS.items()}


def _infoset(xml: str) -> Any:
    def walk(e: ET.Element) -> Any:
        return (e.tag, tuple(sorted(e.attrib.items())), (e.text or "").strip(), tuple(walk(c) for c in e))
    return walk(ET.fromstring(xml))


def _entry(oracle: XsdOracle, gen: MessageGenerator, set_name: str, kind: str, mtype: str, native: dict[str, Any],
           source: str, message: dict[str, Any]) -> dict[str, Any] | None:
    frag = kind != "document"
    xml = XmlRenderer(gen, set_name).render(native, fragment=kind == "exiFragment")
    try:
        hits = oracle.encode(set_name, xml, fragment=frag, values=True)
        literal = oracle.encode(set_name, xml, fragment=frag)
        back = oracle.decode(set_name, hits, fragment=frag, values=True)
    except ValueError as exc:
        print(f"  {set_name}/{mtype}: EXIficient refused ({exc})", file=sys.stderr)
        return None
    if hits == literal:
        return None  # no repeat made it into the stream
    if _infoset(back) != _infoset(xml):
        print(f"  {set_name}/{mtype}: EXIficient decodes its own hits to another infoset; skipped", file=sys.stderr)
        return None
    return {"schema_set": set_name, "namespace": SCHEMA_SETS[set_name].namespace, "kind": kind,
            "message_type": mtype, "source": source, "message": message,
            "exi_hex": hits.hex(), "literal_hex": literal.hex()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", required=True, help="directory of the V2G XSDs")
    ap.add_argument("--vectors", help="directory of vector files (signed messages taken from it)")
    ap.add_argument("--out", default=str(REPO / "tests" / "exi_tests" / "golden" / "value_hits.json"))
    ap.add_argument("--per-type", type=int, default=1)
    args = ap.parse_args(argv)
    jar = os.environ.get("EXI_ORACLE_JAR")
    if not jar:
        ap.error("set EXI_ORACLE_JAR (tools/get_oracle_jar.sh)")
    gen = MessageGenerator(args.schemas)
    out: list[dict[str, Any]] = []
    with XsdOracle(jar, args.schemas) as oracle:
        if args.vectors:
            for stem in VECTORS:
                v = json.loads((Path(args.vectors) / f"{stem}.json").read_text(encoding="utf-8"))
                set_name = SET_OF_NS[v["namespace"]]
                hexn, b64n, _ = gen.binary_names(set_name)
                native = json_to_bytes_shape(v["message"], hexn, b64n)
                e = _entry(oracle, gen, set_name, "document", next(iter(v["message"])), native, f"vector {stem}",
                           v["message"])
                if e is not None:
                    out.append(e)
        for set_name, kind, mtype in GENERATED:
            kept = 0
            for seed in range(40):
                rng = random.Random(f"value-hits/{set_name}/{mtype}/{seed}")
                opts = GenOptions(mode="random", unbounded_cap=3, string_cap=16, binary_cap=64, budget=800,
                                  p_optional=0.8, p_repeat=0.7,
                                  force_attrs=frozenset({"URI"}) if set_name == "xmldsig" else frozenset())
                try:
                    msg = (gen.generate(set_name, mtype, rng, opts) if kind == "document"
                           else gen.generate_fragment(set_name, mtype, rng, dataclasses.replace(opts, p_optional=1.0)))
                except NotGeneratable:
                    continue
                e = _entry(oracle, gen, set_name, kind, mtype, to_bytes_shape(msg),
                           f"generated, seed value-hits/{set_name}/{mtype}/{seed}", to_json_shape(msg))
                if e is not None:
                    out.append(e)
                    kept += 1
                    if kept >= args.per_type:
                        break
            print(f"{set_name} {mtype}: {kept}", file=sys.stderr)
    doc = {
        "provenance": ("EXIficient 1.0 (EXICodec.jar of the iso15118 0.31.2 wheel), grammars compiled from the XSDs "
                       "(GrammarFactory), XML in through EXIResult; exi_hex: its default value partitions "
                       "(valueMaxLength and valuePartitionCapacity unbounded), so repeated strings are value-table "
                       "hits; literal_hex: valuePartitionCapacity 0 and valueMaxLength 0 (the V2G setting); "
                       "strict off, bit-packed, header 0x80, no built-in grammar learning. Each exi_hex decodes "
                       "back to the xml in EXIficient. Made by tools/make_value_hits.py."),
        "vectors": out,
    }
    text = json.dumps(doc, ensure_ascii=False)
    Path(args.out).write_text(text.replace('{"schema_set"', '\n{"schema_set"') + "\n", encoding="utf-8")
    print(f"wrote {len(out)} streams to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
