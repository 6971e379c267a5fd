"""``plugcharge wallet list|delete ID|wipe|enable|disable``: the EV's contract wallet."""
from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, Callable

from ._common import add_command, open_wallet, reason

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``wallet`` subcommand to the subparsers ``sub``."""
    w = add_command(sub, "wallet", "manage the EV's contract wallet", "Manage the EV contract wallet in DATA_DIR/wallet.")
    wsub = w.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (("list", "list installed contracts (eMAID, provider, validity)"),
                       ("wipe", "delete every contract (as a workshop would)"),
                       ("enable", "switch Plug & Charge on"), ("disable", "switch Plug & Charge off")):
        add_command(wsub, name, text, text[0].upper() + text[1:] + ".")
    rm = add_command(wsub, "delete", "delete one contract by its id (see 'wallet list')",
                     "Delete one contract from the wallet by its id (the ID column of 'plugcharge wallet list').")
    rm.add_argument("contract_id", metavar="ID")
    w.set_defaults(run=run)


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge wallet``; returns the exit code."""
    from ..pnc.wallet import WalletError

    if args.action is None:
        err(f"{args.prog}: error: give an action: list, delete ID, wipe, enable or disable")
        return 2
    wallet = open_wallet(args, err)
    if wallet is None:
        return 1
    now = dt.datetime.now(dt.timezone.utc)
    if args.action == "list":
        usable = [u.info.contract_id for u in (wallet.usable_contract(now), wallet.usable_contract(now, iso=20))
                  if u is not None]
        out(f"Plug & Charge: {'on' if wallet.enabled else 'off'}   PCID: {wallet.pcid or '-'}")
        infos = wallet.contracts()
        if not infos:
            out("no contracts installed")
            return 0
        out(f"{'ID':<18} {'eMAID':<18} {'provider':<9} {'ISO':<4} {'valid from':<17} {'valid until':<17} status")
        for c in infos:
            status = ("in use" if c.contract_id in usable else
                      "expired" if c.not_after < now else "not yet valid" if c.not_before > now else "valid")
            out(f"{c.contract_id:<18} {c.emaid:<18} {c.provider:<9} {'-' + str(c.iso):<4} {c.not_before:%Y-%m-%d %H:%M} "
                f"{c.not_after:%Y-%m-%d %H:%M} {status}")
        return 0
    try:
        if args.action == "delete":
            info = next((c for c in wallet.contracts() if c.contract_id == args.contract_id), None)
            wallet.delete(args.contract_id)
            out(f"deleted contract {args.contract_id}" + (f" ({info.emaid})" if info else ""))
        elif args.action == "wipe":
            n = len(wallet.contracts())
            wallet.wipe()
            out(f"wiped {n} contract{'s' if n != 1 else ''}")
        elif args.action in ("enable", "disable"):
            wallet.set_enabled(args.action == "enable")
            out(f"Plug & Charge {'on' if wallet.enabled else 'off'}")
    except (WalletError, OSError) as exc:
        err(f"{args.prog}: error: {reason(exc)}")
        return 1
    return 0
