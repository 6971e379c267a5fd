"""The ISO 15118-2 EVCC (vehicle side) handler, AC and DC, Contract and EIM.

:class:`EVHandler` runs inside a :class:`plugcharge.EVSession` once the handshake agreed on
ISO 15118-2; the session core does the framing, the SessionID and sequence checks and the timers.

Payment policy (what the driver sees):

* Plug & Charge off (``wallet.enabled`` false), no wallet, or the charger offers no ``Contract``
  (e.g. no TLS) → ``ExternalPayment`` (identification at the charger).
* Plug & Charge on and a usable contract → ``Contract``; if it expires within
  ``EVSecurity.update_before`` and the charger offers the certificate service →
  CertificateUpdate first.
* Plug & Charge on, no usable contract, certificate service offered → ``Contract`` with
  CertificateInstallation (OEM provisioning key signs, the CPS signature and chain are verified,
  the contract key is decrypted and checked [V2G2-823], the wallet stores it; the newest contract
  wins in the wallet), then PaymentDetails/Authorization with the new contract.
* No usable contract and no certificate service → ``ExternalPayment``.

Pause and resume.  ``PauseCharging`` ends the session with SessionStopReq(Pause); the
:class:`~plugcharge.core.events.SessionPaused` event names the SessionID, payment option and schedule
to resume with (``EVConfig.resume_session_id`` / ``resume_payment`` / ``resume_schedule_id``).  A
resumed session sends the stored SessionID in SessionSetupReq; when the charger joins it
(``OK_OldSessionJoined``) the session keeps its payment option and SAScheduleTuple [V2G2-741] and
otherwise runs the whole sequence again: with ``Contract`` that is PaymentDetailsReq and an
AuthorizationReq signed over the fresh GenChallenge of that PaymentDetailsRes [V2G2-475] (no
certificate installation or update), as the public stacks (iso15118, RISE-V2G, EVerest) and the
``iso15118`` package's charger require; a charger that answers ``OK_NewSessionEstablished``
starts a new session instead.

Failure handling.  ISO 15118-2 has no way back to PaymentServiceSelection inside a session: a
response with a FAILED code ends the communication session (the EVCC stops [V2G2-486]),
and when the EV itself rejects an installed contract (bad CPS signature or chain, undecryptable key)
it ends the session with SessionStopReq(Terminate).  So a failed installation or authorisation ends
the session cleanly with ``SessionEnded(reason="failed", fallback="ExternalPayment")``: the vehicle
may start a new session at once on the same plug-in with ``EVConfig(pnc_suppressed=True)``
(ExternalPayment fallback), and the next physical re-plug tries Plug & Charge again (retry).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from ..core.codec import session_id_of, v2g_message
from ..core.errors import LocalProtocolError, SignatureError, Stop
from ..core.events import (
    AuthorizationAccepted, AuthorizationPending, AuthorizationRejected, ChargingStarted, ChargingStopped,
    ContractInstallationFailed, ContractInstallationStarted, ContractInstallationSucceeded, MeterValues,
    PauseCharging, PaymentSelected, ProtocolError, SalesTariffVerified, SessionPaused, SessionStarted,
    StartSession, StopCharging,
)
from ..core.session import EVHandler as _EVHandlerBase
from ..core.timers import MSG, TIMER_NAMES
from ..pnc.certs import cert_chain, chain_certs, common_name, normalize_emaid, root_certificate_ids
from ..pnc.security import ContractLike, OEMProvisioningLike, WalletLike
from ..pnc.signatures import sign_message, verify_message
from . import messages as M
from .states import ENDED, EVState, check_ev_transition

__all__ = ["EVHandler"]

E = EVState


class _Stop(Stop):
    """The EV gives up on this session (reason is log-safe); ``install``: a contract installation failed."""

    def __init__(self, reason: str, code: Optional[str] = None, *, install: bool = False,
                 graceful: bool = False) -> None:
        super().__init__(reason, code, graceful=graceful)
        self.install = install


class EVHandler(_EVHandlerBase):
    """ISO 15118-2 on the vehicle side, from SessionSetup to SessionStop (one V2G communication session)."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.payment: Optional[str] = None
        self.contract: Optional[ContractLike] = None
        self.soc = float(self.config.soc)
        self._install: Optional[str] = None
        self._resumed = False
        self._request: Optional[dict] = None
        self._request_name = "supportedAppProtocolReq"
        self._pending: Optional[Callable[[], None]] = None
        self._schedule_id = 1
        self._progress = ""
        self._loops = 0
        self._stop = False
        #: the charger asked to stop (EVSENotification StopCharging, EVSE_Shutdown) before the EV did
        self._charger_stop = False
        self._pause = False
        self._renegotiate = False
        self._charging = False
        self._challenge = b""
        self._end_reason: Optional[tuple[str, Optional[str], str, Optional[str]]] = None

    # ------------------------------------------------------------ plumbing
    @property
    def is_dc(self) -> bool:
        """Whether the configured energy transfer mode is a DC one."""
        return self.config.energy_mode not in M.AC_MODES

    def _wallet(self) -> WalletLike:
        if self.security.wallet is None:
            raise _Stop("no contract wallet", graceful=True)
        return self.security.wallet

    def _oem(self) -> OEMProvisioningLike:
        oem = self._wallet().oem_provisioning
        if oem is None:
            raise _Stop("no OEM provisioning credentials", install=True, graceful=True)
        return oem

    def _contract(self) -> ContractLike:
        if self.contract is None:
            raise _Stop("no usable contract", graceful=True)
        return self.contract

    def _go(self, new: Any) -> None:
        check_ev_transition(self.state, new)
        self.state = new

    def _send(self, name: str, body: dict[str, Any], new: Any, now: float, *,
              sign_key: Optional[ec.EllipticCurvePrivateKey] = None) -> None:
        msg = v2g_message(self.session_id, name, body)
        if sign_key is not None:
            sign_message(msg, sign_key, codecs=self._codecs)
        self._queue(msg, name)
        self._request, self._request_name = msg, name
        self._go(new)
        self._set_timer(MSG, now + self.timing.message_timeout(name))

    def _fallback(self) -> Optional[str]:
        return "ExternalPayment" if self.payment == "Contract" and not self._charging else None

    def on_timer(self, name: str, now: float) -> None:
        """A timer fired: the next charge-loop or poll request, or a standard timeout."""
        if name == "poll" and self._pending is not None:
            action, self._pending = self._pending, None
            try:
                action()
            except Stop as stop:
                self.give_up(stop, now)
            except Exception as exc:  # e.g. our own request cannot be encoded: end, do not raise
                self._emit(ProtocolError("FAILED", f"{type(exc).__name__}: {exc}", False))
                self.state = ENDED
                self._end("protocol_error", response_code="FAILED", detail=str(exc))
            return
        timers = {"msg": (TIMER_NAMES[MSG], self._request_name),
                  "comm_setup": ("V2G_EVCC_CommunicationSetup_Timeout", "SessionSetupRes"),
                  "ongoing": ("V2G_EVCC_Ongoing_Timeout", self._request_name),
                  "cable_check": ("V2G_EVCC_CableCheck_Timeout", "CableCheckRes"),
                  "pre_charge": ("V2G_EVCC_PreCharge_Timeout", "PreChargeRes")}
        timer, what = timers.get(name, (name, ""))
        if self.state in (E.WAIT_CERT_INSTALL, E.WAIT_CERT_UPDATE):
            self._emit(ContractInstallationFailed(f"{timer} expired"))
        self._timeout(timer, what, now, fallback=self._fallback())

    def on_command(self, command: Any, now: float) -> None:
        """StopCharging / PauseCharging: leave the charge loop (or the wait) and end or pause the session."""
        if isinstance(command, StartSession):
            raise LocalProtocolError("session already started")
        elif isinstance(command, (StopCharging, PauseCharging)):
            self._stop = True
            self._pause = isinstance(command, PauseCharging)
            if self._pending is not None and self._charging:  # between two loop requests: act now
                self._cancel_timer("poll")
                self._pending = None
                self._stop_charging(now)
        else:
            raise LocalProtocolError(f"EV cannot handle {type(command).__name__}")

    def give_up(self, stop: Stop, now: float) -> None:
        """Leave with SessionStopReq(Terminate) when ``stop`` is graceful, else end at once."""
        if getattr(stop, "install", False):
            self._emit(ContractInstallationFailed(stop.reason, stop.code))
        fallback = self._fallback()
        if stop.graceful and not self.ended:
            # Leave cleanly: SessionStopReq(Terminate); the end is reported on SessionStopRes.
            self._end_reason = ("failed", stop.code, stop.reason, fallback)
            self._cancel_timer("ongoing", "cable_check", "pre_charge", "poll")
            self._send("SessionStopReq", {"ChargingSession": "Terminate"}, E.WAIT_SESSION_STOP, now)
            return
        self.state = ENDED
        self._end("failed", response_code=stop.code, detail=stop.reason, fallback=fallback)

    # ------------------------------------------------------------ input
    def on_failed_response(self, name: str, code: str, now: float) -> None:
        """A FAILED response ends the session [V2G2-486]; installation and authorisation say why."""
        if name == "SessionStopRes" and self._end_reason is not None:
            # we are leaving because of our own finding (e.g. a SalesTariff signature): that stays
            # the cause, whatever the charger says to the SessionStopReq
            reason, cause, detail, fallback = self._end_reason
            self._end_reason = (reason, cause, f"{detail} (the charger answered SessionStopReq with {code})",
                                fallback)
            return
        if name in ("CertificateInstallationRes", "CertificateUpdateRes"):
            raise _Stop(f"charger answered {code}", code, install=True)
        if name == "AuthorizationRes" or (name == "PaymentDetailsRes"):
            self._emit(AuthorizationRejected(code, self.contract.emaid if self.contract else None))
        raise _Stop(f"{name}: {code}", code)

    # ------------------------------------------------------------ handshake and setup
    def start(self, now: float) -> None:
        """ISO 15118-2 was agreed: SessionSetupReq (its header carries the paused session's ID when
        resuming, else zeros)."""
        self._send("SessionSetupReq", {"EVCCID": self.config.evcc_id}, E.WAIT_SESSION_SETUP, now)

    def _r_SessionSetupRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._cancel_timer("comm_setup")
        sid = session_id_of(header)
        if sid is None or not body["ResponseCode"].startswith("OK"):
            raise ValueError("SessionSetupRes without a usable SessionID")
        self.session_id = sid
        self._resumed = body["ResponseCode"] == "OK_OldSessionJoined"
        self._emit(SessionStarted(self.session_id, self.config.evcc_id, str(body["EVSEID"]), self._resumed))
        self._send("ServiceDiscoveryReq", {}, E.WAIT_SERVICE_DISCOVERY, now)

    def _choose_payment(self, offered: Sequence[str], cert_service: bool) -> tuple[str, str, Optional[str]]:
        wallet = self.security.wallet
        if self._resumed and self.config.resume_payment in offered:
            # [V2G2-741] the resumed session keeps its payment option; Contract presents the
            # wallet's contract again (no certificate service in a resumed session)
            if self.config.resume_payment == "Contract":
                self.contract = wallet.usable_contract(self.security.wall_clock()) if wallet is not None else None
                if self.contract is None:
                    raise _Stop("no usable contract to resume the Contract session with", graceful=True)
            return str(self.config.resume_payment), "resumed", None
        if wallet is None or not getattr(wallet, "enabled", False):
            return "ExternalPayment", "plug_and_charge_off", None
        if self.config.pnc_suppressed:
            return "ExternalPayment", "plug_and_charge_suppressed_after_failure", None
        if "Contract" not in offered:
            return "ExternalPayment", "contract_not_offered", None
        at = self.security.wall_clock()
        contract = wallet.usable_contract(at)
        if contract is not None:
            self.contract = contract
            if cert_service and contract.chain_not_after - at < self.security.update_before:
                return "Contract", "contract_expires_soon", "update"
            return "Contract", "contract_available", None
        if cert_service and wallet.oem_provisioning is not None:
            return "Contract", "no_contract_install", "install"
        return "ExternalPayment", "no_contract_and_no_certificate_service", None

    def _r_ServiceDiscoveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        offered = list(body["PaymentOptionList"]["PaymentOption"])
        services = (body.get("ServiceList") or {}).get("Service") or []
        cert_service = any(int(s["ServiceID"]) == M.SERVICE_ID_CERTIFICATE for s in services)
        modes = body["ChargeService"]["SupportedEnergyTransferMode"]["EnergyTransferMode"]
        if self.config.energy_mode not in modes:
            raise _Stop(f"charger does not offer {self.config.energy_mode}", graceful=True)
        option, reason, install = self._choose_payment(offered, cert_service)
        if option not in offered:
            raise _Stop("no common payment option", graceful=True)
        self.payment, self._install = option, install
        self._emit(PaymentSelected(option, reason, install))
        if install and self.config.query_service_detail:
            self._send("ServiceDetailReq", {"ServiceID": M.SERVICE_ID_CERTIFICATE}, E.WAIT_SERVICE_DETAIL, now)
        else:
            self._select_payment(now)

    def _r_ServiceDetailRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._select_payment(now)

    def _select_payment(self, now: float) -> None:
        services: list[tuple[int, Optional[int]]] = [(M.SERVICE_ID_CHARGING, None)]
        if self._install:
            pset = M.PARAMETER_SET_INSTALL if self._install == "install" else M.PARAMETER_SET_UPDATE
            services.append((M.SERVICE_ID_CERTIFICATE, pset))
        self._send("PaymentServiceSelectionReq", M.payment_service_selection_req(self.payment or "", services),
                   E.WAIT_PAYMENT_SELECTION, now)

    def _root_ids(self) -> dict[str, Any]:
        ids = root_certificate_ids(self.security.v2g_roots) if self.security.v2g_roots else []
        if not ids:  # the schema needs at least one entry
            ids = [("CN=unknown", 0)]
        return M.root_ids(ids)

    def _r_PaymentServiceSelectionRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if self.payment == "ExternalPayment":
            self._send_authorization(now)
        elif self._install == "install":
            oem = self._oem()
            self._emit(ContractInstallationStarted("install", self._wallet().pcid or ""))
            self._send("CertificateInstallationReq", {"Id": "id1", "OEMProvisioningCert": oem.leaf,
                                                      "ListOfRootCertificateIDs": self._root_ids()},
                       E.WAIT_CERT_INSTALL, now, sign_key=oem.private_key)
        elif self._install == "update":
            c = self._contract()
            self._emit(ContractInstallationStarted("update", self._wallet().pcid or ""))
            self._send("CertificateUpdateReq", {
                "Id": "id1", "ContractSignatureCertChain": cert_chain(c.leaf, c.sub_cas),
                "eMAID": c.emaid, "ListOfRootCertificateIDs": self._root_ids()},
                E.WAIT_CERT_UPDATE, now, sign_key=c.private_key)
        else:
            self._send_payment_details(now)

    def _send_payment_details(self, now: float) -> None:
        c = self._contract()
        self._send("PaymentDetailsReq", {"eMAID": c.emaid,
                                         "ContractSignatureCertChain": cert_chain(c.leaf, c.sub_cas)},
                   E.WAIT_PAYMENT_DETAILS, now)

    # ------------------------------------------------------------ contract installation
    def _r_CertificateInstallationRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._accept_contract(body, msg, self._oem().private_key, "install", now)

    def _r_CertificateUpdateRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._accept_contract(body, msg, self._contract().private_key, "update", now)

    def _accept_contract(self, body: dict[str, Any], msg: dict[str, Any], receiver_key: Any, kind: str,
                         now: float) -> None:
        at = self.security.wall_clock()
        try:
            sa_leaf, sa_subs = chain_certs(body["SAProvisioningCertificateChain"])
            try:
                self.security.cps_verifier()(sa_leaf, sa_subs, at)
            except Exception as exc:
                raise _Stop(f"CPS certificate chain rejected: {exc}",
                            getattr(exc, "response_code", None) or "FAILED_CertChainError", install=True,
                            graceful=True) from None
            try:
                verify_message(msg, sa_leaf, codecs=self._codecs)
            except SignatureError as exc:
                raise _Stop(f"CPS signature invalid: {exc}", "FAILED_SignatureError", install=True,
                            graceful=True) from None
            leaf, subs = chain_certs(body["ContractSignatureCertChain"])
            try:
                key = self.security.decryptor()(bytes(body["ContractSignatureEncryptedPrivateKey"]["value"]),
                                                bytes(body["DHpublickey"]["value"]), receiver_key, leaf)
            except Exception as exc:
                raise _Stop(f"contract key cannot be decrypted: {type(exc).__name__}", install=True,
                            graceful=True) from None
            emaid = str(body["eMAID"]["value"])
            _, cn = common_name(leaf)
            if not cn or normalize_emaid(cn) != normalize_emaid(emaid):
                raise _Stop("eMAID does not match the contract certificate", install=True, graceful=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Stop(f"malformed contract response: {type(exc).__name__}", install=True, graceful=True) from None
        try:
            self._wallet().install(leaf, subs, key, emaid=emaid)
        except Exception as exc:  # e.g. WalletError: key/eMAID mismatch, disk full (its text is one sentence)
            why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise _Stop(f"the wallet did not store the contract: {why}", install=True, graceful=True) from None
        self.contract = self._wallet().usable_contract(at)  # the newest contract wins
        if self.contract is None:
            raise _Stop("installed contract is not usable now", install=True, graceful=True)
        self._emit(ContractInstallationSucceeded(emaid, kind))
        self._send_payment_details(now)

    # ------------------------------------------------------------ authorisation
    def _r_PaymentDetailsRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._challenge = bytes(body["GenChallenge"])
        self._send_authorization(now)

    def _send_authorization(self, now: float) -> None:
        if self.payment == "Contract":
            self._send("AuthorizationReq", {"Id": "id1", "GenChallenge": self._challenge}, E.WAIT_AUTHORIZATION,
                       now, sign_key=self._contract().private_key)
        else:
            self._send("AuthorizationReq", {}, E.WAIT_AUTHORIZATION, now)

    def _resend(self, new: EVState, now: float) -> None:
        if self._request is None:
            raise _Stop("nothing to repeat")
        self._queue(self._request, self._request_name)
        self._go(new)
        self._set_timer(MSG, now + self.timing.message_timeout(self._request_name))

    def _ongoing(self, now: float) -> None:
        if "ongoing" not in self._timers:
            self._set_timer("ongoing", now + self.timing.get("ongoing"))
        state = self.state

        def again() -> None:
            if self._stop:
                raise _Stop("stopped by the driver while waiting", graceful=True)
            self._resend(state, self._clock)
        self._schedule(again, self.config.poll_interval, now)

    def _schedule(self, action: Callable[[], None], delay: float, now: float) -> None:
        self._clock = now

        def run() -> None:
            action()
        if delay <= 0:
            run()
        else:
            self._pending = run
            self._set_timer("poll", now + delay)

    def _r_AuthorizationRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._emit(AuthorizationPending(body["EVSEProcessing"]))
            self._ongoing(now)
            return
        self._cancel_timer("ongoing")
        self._emit(AuthorizationAccepted(self.payment or "", self.contract.emaid if self.contract and
                                         self.payment == "Contract" else None))
        self._send_charge_parameters(now)

    # ------------------------------------------------------------ charge parameters
    def _send_charge_parameters(self, now: float) -> None:
        c = self.config
        body: dict[str, Any] = {"RequestedEnergyTransferMode": c.energy_mode}
        if self.is_dc:
            param: dict[str, Any] = {}
            if c.departure_time is not None:
                param["DepartureTime"] = c.departure_time
            param.update({
                "DC_EVStatus": M.dc_ev_status(True, int(self.soc)),
                "EVMaximumCurrentLimit": M.physical(c.dc_max_current, "A"),
                "EVMaximumPowerLimit": M.physical(c.dc_max_power, "W"),
                "EVMaximumVoltageLimit": M.physical(c.dc_max_voltage, "V"),
                "EVEnergyCapacity": M.physical(c.capacity_wh, "Wh"),
                "EVEnergyRequest": M.physical(c.capacity_wh * max(0.0, c.target_soc - self.soc) / 100, "Wh"),
                "FullSOC": 100, "BulkSOC": 80})
            body["DC_EVChargeParameter"] = param
        else:
            param = {}
            if c.departure_time is not None:
                param["DepartureTime"] = c.departure_time
            param.update({"EAmount": M.physical(c.energy_request_wh, "Wh"),
                          "EVMaxVoltage": M.physical(c.ac_max_voltage, "V"),
                          "EVMaxCurrent": M.physical(c.ac_max_current, "A"),
                          "EVMinCurrent": M.physical(c.ac_min_current, "A")})
            body["AC_EVChargeParameter"] = param
        self._send("ChargeParameterDiscoveryReq", body, E.WAIT_CHARGE_PARAMETER, now)

    def _r_ChargeParameterDiscoveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._ongoing(now)
            return
        self._cancel_timer("ongoing")
        tuples = (body.get("SAScheduleList") or {}).get("SAScheduleTuple") or []
        if not tuples:
            raise _Stop("charger offered no SAScheduleTuple", graceful=True)
        chosen = tuples[0]
        if self._resumed and self.config.resume_schedule_id is not None:  # [V2G2-741] the same tuple again
            chosen = next((t for t in tuples if int(t["SAScheduleTupleID"]) == self.config.resume_schedule_id),
                          chosen)
        self._schedule_id = int(chosen["SAScheduleTupleID"])
        tariffs = [t for t in tuples if "SalesTariff" in t]
        if tariffs and self.payment == "Contract":
            self._verify_tariffs(msg, tariffs)
        if self._renegotiate or not self.is_dc:
            self._renegotiate = False
            self._power_delivery("Start", now)
        else:
            self._set_timer("cable_check", now + self.timing.get("cable_check"))
            self._send("CableCheckReq", {"DC_EVStatus": M.dc_ev_status(True, int(self.soc))}, E.WAIT_CABLE_CHECK, now)

    def _verify_tariffs(self, msg: dict[str, Any], tariffs: list[dict[str, Any]]) -> None:
        """SalesTariffs are signed by the MO Sub-CA 2 key: verify with the contract chain."""
        subs = list(self.contract.sub_cas) if self.contract else []
        if not subs:
            return
        try:
            verify_message(msg, subs[0], codecs=self._codecs)
        except SignatureError as exc:
            self._emit(ProtocolError("FAILED_SignatureError", f"SalesTariff signature invalid: {exc}", True))
            raise _Stop(f"SalesTariff signature invalid: {exc}", "FAILED_SignatureError", graceful=True) from None
        self._emit(SalesTariffVerified(tuple(int(t["SalesTariff"]["SalesTariffID"]) for t in tariffs)))

    # ------------------------------------------------------------ DC preparation
    def _r_CableCheckRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            state = self.state
            self._schedule(lambda: self._resend(state, self._clock), self.config.poll_interval, now)
            return
        self._cancel_timer("cable_check")
        self._set_timer("pre_charge", now + self.timing.get("pre_charge"))
        self._send_precharge(now)

    def _send_precharge(self, now: float) -> None:
        self._send("PreChargeReq", {"DC_EVStatus": M.dc_ev_status(True, int(self.soc)),
                                    "EVTargetVoltage": M.physical(self.config.dc_target_voltage, "V"),
                                    "EVTargetCurrent": M.physical(0, "A")}, E.WAIT_PRECHARGE, now)

    def _r_PreChargeRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        present = M.from_physical(body["EVSEPresentVoltage"])
        if abs(present - self.config.dc_target_voltage) > self.config.precharge_tolerance:
            self._schedule(lambda: self._send_precharge(self._clock), self.config.poll_interval, now)
            return
        self._cancel_timer("pre_charge")
        self._power_delivery("Start", now)

    # ------------------------------------------------------------ power delivery and charge loop
    def _power_delivery(self, progress: str, now: float) -> None:
        body: dict[str, Any] = {"ChargeProgress": progress, "SAScheduleTupleID": self._schedule_id}
        if self.is_dc:
            body["DC_EVPowerDeliveryParameter"] = {"DC_EVStatus": M.dc_ev_status(True, int(self.soc)),
                                                   "ChargingComplete": progress == "Stop"}
        self._progress = progress
        self._send("PowerDeliveryReq", body, E.WAIT_POWER_DELIVERY, now)

    def _r_PowerDeliveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if self._progress == "Start":
            self._charging = True
            self._emit(ChargingStarted(self.config.energy_mode, self._schedule_id))
            self._loop(now)
        elif self._progress == "Renegotiate":
            self._renegotiate = True
            self._send_charge_parameters(now)
        else:
            self._charging = False
            self._emit(ChargingStopped("pause" if self._pause else "charger_request" if self._charger_stop
                                       else "ev_request"))
            if self.is_dc and self.config.welding_detection:
                self._send("WeldingDetectionReq", {"DC_EVStatus": M.dc_ev_status(True, int(self.soc))},
                           E.WAIT_WELDING, now)
            else:
                self._session_stop(now)

    def _session_stop(self, now: float) -> None:
        self._send("SessionStopReq", {"ChargingSession": "Pause" if self._pause else "Terminate"},
                   E.WAIT_SESSION_STOP, now)

    def _loop(self, now: float) -> None:
        def next_request() -> None:
            t = self._clock
            if self._stop or self._done():
                self._stop_charging(t)
            elif self.is_dc:
                self._send_current_demand(t)
            else:
                self._send("ChargingStatusReq", {}, E.WAIT_CHARGING_STATUS, t)
        self._schedule(next_request, self.config.loop_interval, now)

    def _done(self) -> bool:
        c = self.config
        return (c.charge_loops is not None and self._loops >= c.charge_loops) or self.soc >= c.target_soc

    def _stop_charging(self, now: float) -> None:
        self._power_delivery("Stop", now)

    def _send_current_demand(self, now: float) -> None:
        c = self.config
        self._loops += 1
        self._send("CurrentDemandReq", {
            "DC_EVStatus": M.dc_ev_status(True, int(self.soc)),
            "EVTargetCurrent": M.physical(c.dc_target_current, "A"),
            "EVMaximumVoltageLimit": M.physical(c.dc_max_voltage, "V"),
            "EVMaximumCurrentLimit": M.physical(c.dc_max_current, "A"),
            "EVMaximumPowerLimit": M.physical(c.dc_max_power, "W"),
            "BulkChargingComplete": False,
            "ChargingComplete": self.soc >= c.target_soc,
            "EVTargetVoltage": M.physical(c.dc_target_voltage, "V")}, E.WAIT_CURRENT_DEMAND, now)

    def _after_status(self, body: dict, status: dict, now: float) -> None:
        self.soc = min(100.0, self.soc + self.config.soc_per_loop)
        note = status.get("EVSENotification", "None")
        if note == "StopCharging" or status.get("EVSEStatusCode") in ("EVSE_Shutdown", "EVSE_EmergencyShutdown"):
            self._charger_stop = self._charger_stop or not self._stop
            self._stop = True
        if body.get("ReceiptRequired") and self.payment == "Contract" and self.contract is not None:
            meter = dict(body["MeterInfo"])
            self._send("MeteringReceiptReq", {"Id": "id1", "SessionID": self.session_id,
                                              "SAScheduleTupleID": self._schedule_id, "MeterInfo": meter},
                       E.WAIT_METERING_RECEIPT, now, sign_key=self.contract.private_key)
            return
        if note == "ReNegotiation" and not self._stop:
            self._power_delivery("Renegotiate", now)
            return
        self._loop(now)

    def _r_ChargingStatusRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._loops += 1
        mi = body.get("MeterInfo") or {}
        self._emit(MeterValues(None, M.from_physical(body["EVSEMaxCurrent"]) if "EVSEMaxCurrent" in body else None,
                               mi.get("MeterReading"), int(self.soc)))
        self._after_status(body, body["AC_EVSEStatus"], now)

    def _r_CurrentDemandRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        mi = body.get("MeterInfo") or {}
        self._emit(MeterValues(M.from_physical(body["EVSEPresentVoltage"]), M.from_physical(body["EVSEPresentCurrent"]),
                               mi.get("MeterReading"), int(self.soc)))
        self._after_status(body, body["DC_EVSEStatus"], now)

    def _r_MeteringReceiptRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._loop(now)

    def _r_WeldingDetectionRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._session_stop(now)

    def _r_SessionStopRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self.state = ENDED
        pending = self._end_reason
        if pending is not None:
            reason, code, detail, fallback = pending
            self._end(reason, response_code=code, detail=detail, fallback=fallback)
        elif self._pause:
            self._emit(SessionPaused(self.session_id, self.payment, self._schedule_id))
            self._end("paused")
        else:
            self._end("finished")
