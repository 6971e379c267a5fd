"""Run the ``iso15118`` PyPI package's SECC or EVCC as a real peer for the interop tests.

This script runs in its own process (the package keeps its settings in module globals, starts a
Java gateway for its EXIficient codec and configures logging at import), inside the network
namespace the test made for it, with that package's own simulators (``SimEVSEController`` /
``SimEVController``) and its own EXI codec. Nothing of plugcharge is imported here.

    python _iso15118_peer.py secc --pki DIR --iface IFACE [--auth EIM,PNC] [--protocols ISO_15118_2] [--no-tls]
    python _iso15118_peer.py evcc --pki DIR --iface IFACE [--mode DC_extended] [--loops N]
                                  [--protocols DIN_SPEC_70121] [--no-tls] [--no-install]
    python _iso15118_peer.py evcc --pki DIR --iface IFACE --serve

``--protocols`` restricts what the peer speaks (its names, comma-separated); ``--no-tls`` lets its SECC
serve plain TCP too (and its EVCC ask for it), as DIN SPEC 70121 needs.

``DIR`` holds the test PKI in that package's layout (``iso15118_2/certs``,
``iso15118_2/private_keys``; see ``write_layout`` in ``test_pc_interop_iso15118.py``). The
interface must carry an IPv6 link-local address: that package binds its TCP server to it and
discovers over the ``ff02::1`` multicast group on it.

The SECC serves one session after another until it is terminated. The EVCC runs one session as
its arguments say and exits (status 0 and ``PEER-DONE evcc`` when its session handler returned);
with ``--serve`` it starts its JVM once and then runs one session per line on stdin, a JSON object::

    {"run": 3, "mode": "DC_extended", "install": true, "tls": true, "protocols": ["ISO_15118_2"],
     "loops": 3, "timeout": 90}
    {"cancel": 3}

printing ``PEER-START 3`` and then ``PEER-DONE 3 <status>`` (``ok``: its session handler returned;
``timeout``; ``cancelled``: the test gave up on it, e.g. when that EVCC hangs after a failed
session; ``error <exception>``). Files in ``DIR`` are read when used, so a test may replace the
contract files between two sessions.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, Optional


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
        commanded voltage and current, and stops when told to (the stock simulator reports 1 V
        throughout PreCharge, so an EV that waits for the present voltage to reach its target, as
        ours does, never finishes it)."""

        async def send_charging_command(self, ev_target_voltage, ev_target_current, is_precharge=False,
                                        is_session_bpt=False):
            if ev_target_voltage is not None:
                self.evse_data_context.present_voltage = ev_target_voltage
            if ev_target_current is not None and not is_precharge:
                self.evse_data_context.present_current = ev_target_current

        async def stop_charger(self) -> None:
            # the next session's PreCharge refuses a present current above 2 A
            self.evse_data_context.present_current = 0

    config = Config()
    config.load_envs(os.path.join(os.getcwd(), ".env"))
    controller = PowerModule()
    await controller.set_status(ServiceStatus.STARTING)
    print("PEER-READY secc", flush=True)
    await SECCHandler(exi_codec=ExificientEXICodec(), evse_controller=controller, config=config).start(config.iface)


async def _evcc_session(spec: dict[str, Any], iface: str, codec: Any) -> str:
    from iso15118.evcc import EVCCHandler
    from iso15118.evcc.controller.simulator import SimEVController
    from iso15118.evcc.evcc_config import EVCCConfig

    mode = spec.get("mode", "DC_extended")
    config = EVCCConfig(
        supportedProtocols=spec.get("protocols", ["ISO_15118_2"]),
        supportedEnergyServices=["AC" if mode.startswith("AC") else "DC"],
        energyTransferMode=mode,
        isCertInstallNeeded=bool(spec.get("install", False)),
        useTls=bool(spec.get("tls", True)),
        enforceTls=bool(spec.get("tls", True)),
        sdpRetryCycles=1,
        chargeLoopCycle=int(spec.get("loops", 3)),
    )
    config.load_raw_values()
    handler = EVCCHandler(evcc_config=config, iface=iface, exi_codec=codec, ev_controller=SimEVController(config))
    before = asyncio.all_tasks()
    try:
        await asyncio.wait_for(handler.start(), float(spec.get("timeout", 90)))
        return "ok"
    except asyncio.TimeoutError:
        return "timeout"
    except asyncio.CancelledError:
        return "cancelled"
    except Exception as exc:  # its handler re-raises what ended it (e.g. SDPFailedError)
        return f"error {type(exc).__name__}: {exc}"
    finally:  # what its handler leaves behind (tasks, sockets) must not leak into the next session
        for task in asyncio.all_tasks() - before:
            if task is not asyncio.current_task():
                task.cancel()
        for transport in (getattr(handler.udp_client, "_transport", None),
                          getattr(handler.tcp_client, "writer", None)):
            if transport is not None:
                transport.close()
        await asyncio.sleep(0)


async def _evcc(args: argparse.Namespace) -> int:
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.settings import load_shared_settings

    load_shared_settings(os.path.join(os.getcwd(), ".env"))
    codec = ExificientEXICodec()
    if not args.serve:  # one session as the arguments say
        print("PEER-READY evcc", flush=True)
        status = await _evcc_session({"mode": args.mode, "install": args.install, "tls": args.tls,
                                      "protocols": args.protocols.split(","), "loops": args.loops,
                                      "timeout": 3600}, args.iface, codec)
        print("PEER-DONE evcc" if status == "ok" else f"PEER-FAILED evcc {status}", flush=True)
        return 0 if status == "ok" else 1
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("PEER-READY evcc", flush=True)
    current: Optional[tuple[int, asyncio.Task]] = None

    async def run(number: int, spec: dict[str, Any]) -> None:
        print(f"PEER-START {number}", flush=True)
        status = await _evcc_session(spec, args.iface, codec)
        print(f"PEER-DONE {number} {status}", flush=True)

    while line := await reader.readline():
        command = json.loads(line)
        if "cancel" in command:
            if current is not None and current[0] == command["cancel"] and not current[1].done():
                current[1].cancel()
            continue
        if current is not None:
            await asyncio.wait({current[1]})
        current = (int(command["run"]), asyncio.ensure_future(run(int(command["run"]), command)))
    if current is not None:
        await asyncio.wait({current[1]})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=("secc", "evcc"))
    ap.add_argument("--pki", required=True)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--auth", default="PNC")
    ap.add_argument("--protocols", default="ISO_15118_2")
    ap.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--mode", default="DC_extended")
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--install", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--serve", action="store_true", help="EVCC: one session per JSON line on stdin")
    args = ap.parse_args(argv)
    _environment(args)
    if args.role == "secc":
        asyncio.run(_secc(args))
        return 0
    return asyncio.run(_evcc(args))


if __name__ == "__main__":
    sys.exit(main())
