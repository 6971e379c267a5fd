#!/usr/bin/env python3
"""Remake the committed golden EXI vectors in tests/exi_tests/golden/ (dev tool, never shipped).

Messages come from the XSD-driven random generator (tests/exi_tests/_exi_msggen.py, seeded, so
the same seeds give the same messages) and the bytes from EXIficient (EXICodec.jar of the
``iso15118`` 0.31.2 wheel) through tools/exificient_oracle.py. Our codec is not
involved: the files record what an independent encoder produces.

    export EXI_ORACLE_JAR="$(tools/get_oracle_jar.sh)"
    python tools/make_golden.py [--schemas DIR (default $EXI_XSD_DIR)] [--oracle tools] [--out DIR]

Per schema set and message type it tries a fixed list of seeds in three modes (random, max:
every optional and every array at maxOccurs, min) and keeps the first ``--per-type`` messages
the jar accepts. Messages the jar cannot judge (its known limits: no WPT/ACDP grammar, base64
values that need javax.mail, DIN signatures and Id references) are skipped and counted in the
output's ``skipped`` table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "exi_tests"))

from _exi_msggen import (  # noqa: E402
    SCHEMA_SETS,
    GenOptions,
    MessageGenerator,
    NotGeneratable,
    to_bytes_shape,
    to_json_shape,
)

# Sets the jar has grammars for (it lacks WPT and ACDP).
ORACLE_SETS = ("apphand", "din", "iso2", "iso20-common", "iso20-ac", "iso20-dc", "xmldsig")
MODES = ("max", "random", "min", "random", "random", "random", "random", "random")


def _opts(set_name: str, mode: str, attempt: int, kind: str, empty: bool = False) -> GenOptions:
    omit: frozenset[str] = frozenset()
    if set_name == "din" and attempt >= 2:
        # The jar cannot take any DIN base64Binary value (javax.mail) nor a DIN Signature.
        omit = frozenset({"Signature"})
    force = frozenset({"URI"}) if set_name == "xmldsig" else frozenset()
    if kind == "exiFragment" and mode == "min":
        mode = "random"
    # The jar cannot decode ISO-2 fragments, so nothing would catch its habit of encoding an
    # absent optional integer as 0 (JAXB primitive fields): generate fragments with every optional.
    p_opt = 1.0 if kind == "exiFragment" else 0.5
    return GenOptions(mode=mode, unbounded_cap=3, string_cap=48, binary_cap=200, budget=1500,
                      force_attrs=force, omit=omit, p_optional=p_opt, allow_empty=empty)


def _has_empty(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any(_has_empty(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_empty(v) for v in obj)
    return obj == ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", default=os.environ.get("EXI_XSD_DIR"),
                    help="directory of the V2G XSDs (default: $EXI_XSD_DIR)")
    ap.add_argument("--oracle", default=str(REPO / "tools"), help="directory holding exificient_oracle.py")
    ap.add_argument("--out", default=str(REPO / "tests" / "exi_tests" / "golden"))
    ap.add_argument("--per-type", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=10)
    ap.add_argument("--max-failures", type=int, default=8, help="give up on a type after this many no-verdicts")
    ap.add_argument("--xsd", action="store_true",
                    help="write golden_xsd_*.json instead: EXIficient compiling the XSDs (_xsd_oracle.py)")
    args = ap.parse_args()
    if not args.schemas:
        ap.error("the XSD directory is needed: give --schemas DIR or set EXI_XSD_DIR")
    if args.xsd:
        return main_xsd(args)
    sys.path.insert(0, args.oracle)
    from exificient_oracle import Oracle  # type: ignore[import-not-found]

    gen = MessageGenerator(args.schemas)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with Oracle() as oracle:
        for set_name in ORACLE_SETS:
            ss = SCHEMA_SETS[set_name]
            entries: list[dict[str, Any]] = []
            skipped: dict[str, int] = {}
            jobs = [("document", m) for m in gen.message_types(set_name)]
            if set_name == "xmldsig":
                jobs = [("xmldsigFragment", "SignedInfo")]
            jobs += [("exiFragment", m) for m in gen.fragment_types(set_name)]
            # A few messages with empty strings/binaries: EXIficient encodes an empty value as an
            # undeclared EE (second-level event code) instead of CH with length 0.
            jobs += [("document-empty", m) for m in [j[1] for j in jobs if j[0] == "document"][:2]]
            for kind, mtype in jobs:
                empty = kind == "document-empty"
                if empty:
                    kind = "document"
                kept = failed = 0
                for attempt in range(args.attempts * (3 if set_name == "din" else 1)):
                    if kept >= args.per_type or failed >= args.max_failures:
                        break
                    mode = "min" if empty else MODES[attempt % len(MODES)]
                    seed = f"golden/{set_name}/{kind}{'-empty' if empty else ''}/{mtype}/{attempt}"
                    rng = random.Random(seed)
                    opts = _opts(set_name, mode, attempt, kind, empty)
                    try:
                        if kind == "document":
                            msg = gen.generate(set_name, mtype, rng, opts)
                        else:
                            msg = gen.generate_fragment(set_name, mtype, rng, opts)
                    except NotGeneratable:
                        skipped[mtype] = skipped.get(mtype, 0) + 1
                        continue
                    js = to_json_shape(msg)
                    try:
                        data = oracle.encode(ss.namespace, js)
                    except ValueError as exc:
                        skipped[mtype] = skipped.get(mtype, 0) + 1
                        failed += 1
                        print(f"  no verdict {set_name} {mtype} {mode}: {str(exc)[:90]}", file=sys.stderr)
                        continue
                    if empty and not _has_empty(js):
                        continue
                    entry = {"message_type": mtype, "kind": kind, "mode": "min-empty" if empty else mode, "seed": seed,
                             "message": js, "exi_hex": data.hex()}
                    if kind != "exiFragment":
                        # The jar encodes some absent optionals as present zeros (JAXB primitive
                        # fields): trust a vector only when its decoder gives the message back, or
                        # record what it really encoded when that re-encodes to the same bytes.
                        try:
                            back = oracle.decode(ss.namespace, data)
                        except ValueError:
                            back = None
                        if back != js:
                            try:
                                same = back is not None and oracle.encode(ss.namespace, back) == data
                            except ValueError:
                                same = False
                            if not same:
                                skipped[mtype] = skipped.get(mtype, 0) + 1
                                failed += 1
                                continue
                            entry["message"] = back
                            entry["note"] = "message as EXIficient decodes it (it encoded absent optionals as 0)"
                    entries.append(entry)
                    kept += 1
                if not kept:
                    print(f"NO GOLDEN for {set_name} {kind} {mtype}", file=sys.stderr)
            hexn, b64n, _ = gen.binary_names(set_name)
            doc = {
                "schema_set": set_name,
                "namespace": ss.namespace,
                "encoder": "EXIficient 1.55 (EXICodec.jar from PyPI iso15118 0.31.2) via exificient_oracle.py",
                "generator": "tests/exi_tests/_exi_msggen.py (xmlschema over the V2G XSDs)",
                "hex_names": sorted(hexn),
                "base64_names": sorted(b64n),
                "skipped": skipped,
                "vectors": entries,
            }
            path = out / f"golden_{set_name}.json"
            path.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.name}: {len(entries)} vectors, {os.path.getsize(path)} bytes", file=sys.stderr)
    return 0


# --xsd: what the jar cannot show. WPT and ACDP (no grammar in the jar): every message type, in
# max and random mode. ISO-2 and ISO-20 CommonMessages: one message type each with a bounded list
# that the jar's grammars loop, in max mode (the list at exactly maxOccurs). The ISO-2 signed
# fragments and the ISO-20 signed fragments.
XSD_ALL_TYPES = ("iso20-wpt", "iso20-acdp")
XSD_MAX_TYPES = {  # (the others are in test_exi_xsd_oracle_diff.py's max mode, with Java)
    "iso2": ("PaymentServiceSelectionReq",),
    "iso20-common": ("PowerDeliveryReq",),
}
XSD_FRAGMENTS = {
    "iso2": ("AuthorizationReq", "CertificateInstallationReq", "CertificateUpdateReq", "MeteringReceiptReq",
             "SalesTariff"),
    "iso20-common": ("PnC_AReqAuthorizationMode", "OEMProvisioningCertificateChain", "SignedInstallationData",
                     "SignedMeteringData", "AbsolutePriceSchedule"),
    "iso20-ac": ("AC_ChargeParameterDiscoveryRes",),
    "iso20-dc": ("DC_ChargeParameterDiscoveryRes",),
}


def main_xsd(args: argparse.Namespace) -> int:
    from _xsd_oracle import XmlRenderer, XsdOracle

    gen = MessageGenerator(args.schemas)
    out = Path(args.out)
    jar = os.environ.get("EXI_ORACLE_JAR", "")
    sets = sorted(set(XSD_ALL_TYPES) | set(XSD_MAX_TYPES) | set(XSD_FRAGMENTS))
    with XsdOracle(jar, args.schemas) as oracle:
        for set_name in sets:
            ss = SCHEMA_SETS[set_name]
            render = XmlRenderer(gen, set_name)
            jobs: list[tuple[str, str, tuple[str, ...]]] = []
            if set_name in XSD_ALL_TYPES:
                jobs += [("document", m, ("max", "random")) for m in gen.message_types(set_name)]
            jobs += [("document", m, ("max",)) for m in XSD_MAX_TYPES.get(set_name, ())]
            jobs += [("exiFragment", m, ("random",)) for m in XSD_FRAGMENTS.get(set_name, ())]
            entries: list[dict[str, Any]] = []
            for kind, mtype, modes in jobs:
                for mode in modes:
                    seed = f"golden-xsd/{set_name}/{kind}/{mtype}/{mode}"
                    # small free-length strings and binaries: the point is the structure (lists at
                    # maxOccurs), and the files stay within the golden size budget
                    opts = GenOptions(mode=mode, unbounded_cap=2, string_cap=6, binary_cap=6, budget=12000 if kind == "document" and mtype in XSD_MAX_TYPES.get(set_name, ()) else 1500,
                                      p_optional=1.0 if kind == "exiFragment" else 0.5,
                                      omit=frozenset({"Signature"}) if mode == "max" else frozenset())
                    try:
                        if kind == "document":
                            msg = gen.generate(set_name, mtype, random.Random(seed), opts)
                        else:
                            msg = gen.generate_fragment(set_name, mtype, random.Random(seed), opts)
                    except NotGeneratable:
                        print(f"  not generatable: {set_name} {mtype}", file=sys.stderr)
                        continue
                    xml = render.render(to_bytes_shape(msg), fragment=kind == "exiFragment")
                    data = oracle.encode(set_name, xml, fragment=kind != "document")
                    entries.append({"message_type": mtype, "kind": kind, "mode": mode, "seed": seed,
                                    "message": to_json_shape(msg), "exi_hex": data.hex()})
            hexn, b64n, _ = gen.binary_names(set_name)
            doc = {
                "schema_set": set_name,
                "namespace": ss.namespace,
                "grammars": "exi",
                "encoder": "EXIficient 1.55 compiling the V2G XSDs (EXICodec.jar from PyPI iso15118 0.31.2, "
                           "GrammarFactory + EXIResult) via tests/exi_tests/_xsd_oracle.py",
                "generator": "tests/exi_tests/_exi_msggen.py (xmlschema over the V2G XSDs)",
                "hex_names": sorted(hexn),
                "base64_names": sorted(b64n),
                "skipped": {},
                "vectors": entries,
            }
            path = out / f"golden_xsd_{set_name}.json"
            path.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.name}: {len(entries)} vectors, {os.path.getsize(path)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
