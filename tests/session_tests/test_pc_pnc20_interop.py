"""ISO 15118-20 Plug & Charge against the ``iso15118`` package (interop extra; java for its EXIficient
codec): its codec reads our signed -20 AuthorizationReq and CertificateInstallationReq, and the
fragments it encodes of the signed elements (``PnC_AReqAuthorizationMode``,
``OEMProvisioningCertificateChain``) are byte for byte ours, so our SHA-512 DigestValues are over
what EXIficient produces.  Where it stops: that package signs -20 messages with the -2 algorithms
(ecdsa-sha256 over SHA-256 digests) and verifies only those, so it cannot check our
ecdsa-sha512/Ed448 signatures and our -20 checks refuse its signatures (shown with its live
streams in test_pc_auth20.py / test_pc_install20.py); it has no -20 CertificateInstallation
(NotImplementedError in both its EVCC and SECC)."""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import shutil
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

_MISSING = [m for m in ("iso15118.shared.exificient_exi_codec", "py4j") if importlib.util.find_spec(m.split(".")[0]) is None]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_MISSING), reason=f"interop extra not installed (missing {', '.join(_MISSING)})"),
    pytest.mark.skipif(shutil.which("java") is None, reason="the iso15118 package's EXI codec needs java"),
]

from pki.issue import TestPKI, issue_test_pki  # noqa: E402
from plugcharge.core.codec import NS_ISO20_CM  # noqa: E402
from plugcharge.pnc.auth20 import build_pnc_authorization_req  # noqa: E402
from plugcharge.pnc.certs import root_certificate_ids  # noqa: E402
from plugcharge.pnc.install20 import build_certificate_installation_req  # noqa: E402

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def theirs() -> Iterator[Any]:
    """The package's EXI facade on its own EXIficient codec (a JVM through py4j)."""
    from iso15118.shared.exi_codec import EXI
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.settings import SettingKey, shared_settings

    for k in (SettingKey.MESSAGE_LOG_JSON, SettingKey.MESSAGE_LOG_EXI):  # as load_shared_settings() would
        shared_settings.setdefault(k, False)
    exi = EXI()
    exi.set_exi_codec(ExificientEXICodec())
    yield exi
    assert isinstance(exi.exi_codec, ExificientEXICodec)  # no other test swapped the singleton's codec meanwhile


@pytest.fixture(scope="module", params=["secp521r1", "ed448"])
def pki20(request: pytest.FixtureRequest) -> TestPKI:
    return issue_test_pki(20, seed=2040, now=NOW, algorithm=request.param, oem_provisioning_algorithm="secp521r1")


def _ours() -> Any:
    import exi

    return exi.get_codec(NS_ISO20_CM)


def test_their_codec_reads_our_authorization_req_and_encodes_our_fragment(theirs: Any, pki20: TestPKI) -> None:
    from iso15118.shared.messages.enums import Namespace

    contract = SimpleNamespace(leaf=pki20.cert("contract-leaf"), sub_cas=(pki20.cert("mo-sub2"), pki20.cert("mo-sub1")),
                               private_key=pki20.key("contract-leaf"))
    msg = build_pnc_authorization_req(contract, bytes(range(16)), session_id=bytes(8), timestamp=1780000000)
    model = theirs.from_exi(_ours().encode(msg), Namespace.ISO_V20_COMMON_MSG)
    assert model.pnc_params.gen_challenge == bytes(range(16))
    assert model.pnc_params.contract_cert_chain.certificate == pki20.cert("contract-leaf")
    fragment = theirs.to_exi(model.pnc_params, Namespace.ISO_V20_COMMON_MSG)
    mode = msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"]
    assert fragment == _ours().encode_fragment({"PnC_AReqAuthorizationMode": mode})
    [ref] = msg["AuthorizationReq"]["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert ref["DigestValue"] == hashlib.sha512(fragment).digest()


def test_their_codec_reads_our_installation_req_and_encodes_our_fragment(theirs: Any, pki20: TestPKI) -> None:
    from iso15118.shared.messages.enums import Namespace

    oem = SimpleNamespace(leaf=pki20.cert("oem-provisioning-leaf"),
                          sub_cas=(pki20.cert("oem-sub2"), pki20.cert("oem-sub1")),
                          private_key=pki20.key("oem-provisioning-leaf"))
    msg = build_certificate_installation_req(oem, session_id=bytes(8), timestamp=1780000000,
                                             root_certificate_ids=root_certificate_ids([pki20.cert("v2g-root")]),
                                             maximum_contract_chains=2, prioritized_emaids=[pki20.emaid])
    model = theirs.from_exi(_ours().encode(msg), Namespace.ISO_V20_COMMON_MSG)
    assert model.max_contract_cert_chains == 2 and model.prioritized_emaids.emaids == [pki20.emaid]
    fragment = theirs.to_exi(model.oem_prov_cert_chain, Namespace.ISO_V20_COMMON_MSG)
    chain = msg["CertificateInstallationReq"]["OEMProvisioningCertificateChain"]
    assert fragment == _ours().encode_fragment({"OEMProvisioningCertificateChain": chain})
    [ref] = msg["CertificateInstallationReq"]["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert ref["DigestValue"] == hashlib.sha512(fragment).digest()
