"""Run the ``iso15118`` package's SECC or EVCC for ISO 15118-20 (EIM) interop tests.

A thin layer over ``_iso15118_peer.py`` (same process model, simulators and file layout): the
peer speaks only ``ISO_15118_20_DC`` or ``ISO_15118_20_AC`` with TLS 1.3 (``ENABLE_TLS_1_3``: that
package then asks for and sends the OEM certificate chain, mutual TLS) and identification at the
charger (``AUTH_MODES=EIM``).  Nothing of plugcharge is imported here.

    python _iso15118_peer20.py secc --pki DIR --iface IFACE --service DC
    python _iso15118_peer20.py evcc --pki DIR --iface IFACE --service AC [--loops N] [--bpt]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _iso15118_peer as base  # noqa: E402


def _environment(args: argparse.Namespace) -> None:
    args.auth, args.tls, args.protocols = "EIM", True, f"ISO_15118_20_{args.service}"
    base._environment(args)
    os.environ.update({
        "PROTOCOLS": f"ISO_15118_20_{args.service}",
        "ENABLE_TLS_1_3": "True",
        "ALLOW_CERT_INSTALL_SERVICE": "False",
    })


async def _evcc(args: argparse.Namespace) -> None:
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings(os.path.join(os.getcwd(), ".env"))
    service = args.service + ("_BPT" if args.bpt else "")
    config = EVCCConfig(
        supportedProtocols=[f"ISO_15118_20_{args.service}"],
        supportedEnergyServices=[service],
        energyTransferMode="AC_three_phase_core" if args.service == "AC" else "DC_extended",
        isCertInstallNeeded=False,
        useTls=True,
        enforceTls=True,
        sdpRetryCycles=1,
        chargeLoopCycle=args.loops,
    )
    config.load_raw_values()
    print("PEER-READY evcc", flush=True)
    await EVCCHandler(evcc_config=config, iface=args.iface, exi_codec=ExificientEXICodec(),
                      ev_controller=SimEVController(config)).start()
    print("PEER-DONE evcc", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=("secc", "evcc"))
    ap.add_argument("--pki", required=True)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--service", choices=("AC", "DC"), default="DC")
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--bpt", action="store_true")
    args = ap.parse_args(argv)
    _environment(args)
    asyncio.run(base._secc(args) if args.role == "secc" else _evcc(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
