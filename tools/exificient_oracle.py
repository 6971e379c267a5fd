#!/usr/bin/env python3
"""Differential-testing oracle: encode/decode V2G EXI with EXIficient.

EXIficient (Java) is the EXI engine behind the widely used Python ISO 15118
stack published on PyPI as ``iso15118``; its wheel bundles ``EXICodec.jar``
with precompiled grammars for the AppProtocol, DIN SPEC 70121, ISO 15118-2 and
ISO 15118-20 schemas. Its output is byte-identical to libcbv2g (EVerest) on
every document vector in tests/data/vectors, so it serves as an independent oracle.

This script is not part of the installed package (tests and tools only). It needs `java` (17+) and
the jar (`tools/get_oracle_jar.sh` does the following):

    pip download --no-deps -d oracle iso15118==0.31.2
    unzip -o -j oracle/iso15118-0.31.2-py3-none-any.whl 'iso15118/shared/EXICodec.jar' -d oracle
    export EXI_ORACLE_JAR="$PWD/oracle/EXICodec.jar"

Usage (one JVM for a whole batch; JSON lines in, JSON lines out):

    echo '{"op":"encode","ns":"urn:iso:15118:2:2013:MsgDef","json":{...}}' \
      | python3 exificient_oracle.py
    echo '{"op":"decode","ns":"urn:iso:15118:2:2013:MsgDef","hex":"8098..."}' \
      | python3 exificient_oracle.py

Each output line is {"ok": true, "hex": ...} / {"ok": true, "json": ...} or
{"ok": false, "error": "..."}.

Known limits of this oracle (they are the jar's, not the schemas'): it has no grammar for the
ISO 15118-20 WPT and ACDP namespaces ("descriptor ... not found"), and its XML binding fails on some
base64Binary values for want of javax.mail (the error says so; the JVM is restarted so that later
requests are unaffected). Treat both as "no verdict", never as a mismatch. The JSON shape is the jar's (see
tests/data/vectors/README.md): hexBinary as uppercase hex, base64Binary as base64.
Namespaces: urn:iso:15118:2:2010:AppProtocol, urn:din:70121:2012:MsgDef,
urn:iso:15118:2:2013:MsgDef, urn:iso:std:iso:15118:-20:{CommonMessages,AC,DC,
WPT,ACDP}, and http://www.w3.org/2000/09/xmldsig# for the SignedInfo fragment.

As a library: ``with Oracle() as o: o.encode(ns, obj) -> bytes``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_DRIVER = r"""
import com.siemens.ct.exi.main.cmd.EXICodec;
import java.io.*;
import java.nio.charset.StandardCharsets;

public class OracleDriver {
    static String hex(byte[] b) { StringBuilder s = new StringBuilder(); for (byte x : b) s.append(String.format("%02x", x)); return s.toString(); }
    static byte[] unhex(String h) { byte[] b = new byte[h.length()/2]; for (int i = 0; i < b.length; i++) b[i] = (byte) Integer.parseInt(h.substring(2*i, 2*i+2), 16); return b; }
    public static void main(String[] a) throws Exception {
        // Answers go to the real stdout only; anything the codec itself prints goes to stderr,
        // so that it can never shift the request/answer pairing.
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        System.setOut(System.err);
        EXICodec c = new EXICodec();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] p = line.split("\t", 4);   // id, op, ns, payload
            out.print(p[0] + "\t");
            p = new String[] {p[1], p[2], p[3]};
            String r;
            try {
                if (p[0].equals("E")) {
                    byte[] e = c.encode(p[2], p[1]);
                    r = e == null ? "ERR\t" + String.valueOf(c.get_last_encoding_error()).replace('\n', ' ') : "OK\t" + hex(e);
                } else {
                    String d = c.decode(unhex(p[2]), p[1]);
                    r = d == null ? "ERR\t" + String.valueOf(c.get_last_decoding_error()).replace('\n', ' ') : "OK\t" + d.replace('\n', ' ');
                }
            } catch (Throwable t) { r = "ERR\t" + t.toString().replace('\n', ' '); }
            out.println(r);
        }
    }
}
"""


class Oracle:
    """One long-lived JVM running EXIficient; thread-unsafe, use one per thread."""

    def __init__(self, jar: str | None = None) -> None:
        jar = jar or os.environ.get("EXI_ORACLE_JAR")
        if not jar or not Path(jar).is_file():
            raise RuntimeError("set EXI_ORACLE_JAR to EXICodec.jar (see this file's docstring)")
        if not shutil.which("java") or not shutil.which("javac"):
            raise RuntimeError("java and javac (JDK 17+) are required")
        self._jar = jar
        self._dir = tempfile.mkdtemp(prefix="exi-oracle-")
        src = Path(self._dir, "OracleDriver.java")
        src.write_text(_DRIVER)
        subprocess.run(["javac", "-cp", jar, "-d", self._dir, str(src)], check=True)
        self._start()

    def _start(self) -> None:
        self._seq = 0
        self._proc = subprocess.Popen(
            ["java", "-cp", f"{self._jar}{os.pathsep}{self._dir}", "OracleDriver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1,
        )

    def _ask(self, op: str, ns: str, payload: str) -> str:
        assert self._proc.stdin and self._proc.stdout
        self._seq += 1
        self._proc.stdin.write(f"{self._seq}\t{op}\t{ns}\t{payload}\n")
        self._proc.stdin.flush()
        seq, _, answer = self._proc.stdout.readline().rstrip("\n").partition("\t")
        if seq != str(self._seq):
            raise RuntimeError(f"oracle out of step: asked #{self._seq}, got {seq!r}")
        status, _, rest = answer.partition("\t")
        if "NoClassDefFoundError" in rest or "ExceptionInInitializerError" in rest:
            # The jar lacks javax.mail, which its XML binding reaches for on some base64 values; the
            # failed class initialisation would poison every later request, so start a fresh JVM.
            self.close_process()
            self._start()
            raise ValueError("oracle cannot judge this message (its runtime lacks javax.mail): " + rest)
        if status != "OK":
            raise ValueError(rest or "oracle gave no answer")
        return rest

    def encode(self, ns: str, obj: dict) -> bytes:
        return bytes.fromhex(self._ask("E", ns, json.dumps(obj, separators=(",", ":"))))

    def decode(self, ns: str, data: bytes) -> dict:
        return json.loads(self._ask("D", ns, data.hex()))

    def close_process(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()  # type: ignore[union-attr]
            self._proc.wait(timeout=10)

    def close(self) -> None:
        self.close_process()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Oracle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> int:
    with Oracle() as o:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                if req["op"] == "encode":
                    ans = {"ok": True, "hex": o.encode(req["ns"], req["json"]).hex()}
                else:
                    ans = {"ok": True, "json": o.decode(req["ns"], bytes.fromhex(req["hex"]))}
            except ValueError as e:
                ans = {"ok": False, "error": str(e)}
            print(json.dumps(ans), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
