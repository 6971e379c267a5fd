"""Run the ``iso15118`` PyPI package's SECC or EVCC as a real peer for the interop tests.

This script runs in its own process (the package keeps its settings in module globals, starts a
Java gateway for its EXIficient codec and configures logging at import), with that package's own
simulators (``SimEVSEController`` / ``SimEVController``) and its own EXI codec. Nothing of
plugcharge is imported here.

    python _iso15118_peer.py secc --pki DIR --iface IFACE [--protocols ISO_15118_2] [--no-tls]
    python _iso15118_peer.py evcc --pki DIR --iface IFACE [--mode DC_extended] [--loops N]
                                  [--protocols DIN_SPEC_70121] [--no-tls] [--no-install]

``--protocols`` restricts what the peer speaks (its names, comma-separated); ``--no-tls`` lets its SECC
serve plain TCP too (and its EVCC ask for it), as DIN SPEC 70121 needs.

``DIR`` holds the test PKI in that package's layout (``iso15118_2/certs``,
``iso15118_2/private_keys``; see ``write_layout`` in ``test_pc_interop_iso15118.py``). The
network interface must carry an IPv6 link-local address: that package binds its TCP server to it
and discovers over the ``ff02::1`` multicast group on it. The SECC runs until it is terminated;
the EVCC returns after one session (exit status 0 when its session handler ended normally).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys


def _environment(args: argparse.Namespace) -> None:
    os.environ.update({
        "PKI_PATH": os.path.join(os.path.abspath(args.pki), ""),
        "NETWORK_INTERFACE": args.iface,
        "PROTOCOLS": args.protocols,
        "AUTH_MODES": args.auth,
        "SECC_ENFORCE_TLS": str(args.tls),
        "ENABLE_TLS_1_3": "False",
        "FREE_CHARGING_SERVICE": "False",
        "FREE_CERT_INSTALL_SERVICE": "True",
        "ALLOW_CERT_INSTALL_SERVICE": "True",
        "USE_CPO_BACKEND": "False",
        "MESSAGE_LOG_JSON": "True",
        "MESSAGE_LOG_EXI": "False",
        "LOG_LEVEL": "INFO",
    })
    # the package reads ./.env: run where there is none
    os.chdir(os.path.abspath(args.pki))


async def _secc(args: argparse.Namespace) -> None:
    from iso15118.secc import SECCHandler
    from iso15118.secc.controller.interface import ServiceStatus
    from iso15118.secc.controller.simulator import SimEVSEController
    from iso15118.secc.secc_settings import Config
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec

    class PowerModule(SimEVSEController):
        """Its simulator with one change to the simulated hardware: the DC output follows the
        commanded voltage (the stock simulator reports 1 V throughout PreCharge, so an EV that
        waits for the present voltage to reach its target, as ours does, never finishes it)."""

        async def send_charging_command(self, ev_target_voltage, ev_target_current, is_precharge=False,
                                        is_session_bpt=False):
            if ev_target_voltage is not None:
                self.evse_data_context.present_voltage = ev_target_voltage
            if ev_target_current is not None and not is_precharge:
                self.evse_data_context.present_current = ev_target_current

    config = Config()
    config.load_envs(os.path.join(os.getcwd(), ".env"))
    controller = PowerModule()
    await controller.set_status(ServiceStatus.STARTING)
    print("PEER-READY secc", flush=True)
    await SECCHandler(exi_codec=ExificientEXICodec(), evse_controller=controller, config=config).start(config.iface)


async def _evcc(args: argparse.Namespace) -> None:
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings(os.path.join(os.getcwd(), ".env"))
    config = EVCCConfig(
        supportedProtocols=args.protocols.split(","),
        supportedEnergyServices=["AC" if args.mode.startswith("AC") else "DC"],
        energyTransferMode=args.mode,
        isCertInstallNeeded=args.install,
        useTls=args.tls,
        enforceTls=args.tls,
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
    ap.add_argument("--auth", default="PNC")
    ap.add_argument("--mode", default="DC_extended")
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--install", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--protocols", default="ISO_15118_2")
    ap.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    _environment(args)
    asyncio.run(_secc(args) if args.role == "secc" else _evcc(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
