"""The packages' public API: what ``__all__``, ``dir()``, ``help()`` and a type checker see."""
from __future__ import annotations

import importlib
import importlib.util
import os
import pydoc
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ("exi", "pki", "plugcharge")

#: names a user looks for first (the README, the library's own error messages)
REQUIRED = {
    "exi": {"get_codec", "Codec", "EXIError", "EncodeError", "DecodeError"},
    "pki": {
        "TrustStore", "verify_chain", "verify_chains", "VerificationCache", "VerifiedChain",
        "ChainValidationError", "Reason", "PKIError", "TrustStoreError", "UnknownProfileError",
        "CertificateRevokedError", "OCSPError", "KeyTransportError", "SignatureError", "PROFILES",
        "sign", "verify_signature", "encrypt_contract_key", "decrypt_contract_key",
        "build_ocsp_request", "check_ocsp_response", "ocpp_request_data", "issue_test_pki", "TestPKI",
    },
    "plugcharge": {
        "EVSession", "EVConfig", "EVSecurity", "ChargerSession", "ChargerConfig", "ChargerSecurity",
        "SendResult", "Event", "Command", "StartSession", "StopCharging", "AuthorizationResult",
        "CertificateInstallationResponse", "AuthorizationNeeded", "CertificateInstallationNeeded",
        "SessionEnded", "ContractWallet", "Backend", "AsyncBackend", "SimulatedBackend",
        "start_charger_server", "open_ev_connection", "run_charger", "run_ev", "discover_secc",
        "sign_message", "verify_message", "PlugChargeError",
    },
}


def _pkg(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_the_public_api(name: str) -> None:
    mod = _pkg(name)
    names = mod.__all__
    assert len(names) == len(set(names)), "duplicates in __all__"
    assert REQUIRED[name] <= set(names), sorted(REQUIRED[name] - set(names))
    for n in names:
        assert not n.startswith("_"), n
        obj = getattr(mod, n)  # every exported name resolves
        if callable(obj) and not isinstance(obj, type) and getattr(obj, "__module__", "").startswith(name):
            assert obj.__doc__, f"{name}.{n} has no docstring"


@pytest.mark.parametrize("name", PACKAGES)
def test_dir_shows_the_public_api_only(name: str) -> None:
    mod = _pkg(name)
    assert dir(mod) == sorted(mod.__all__)
    for private in ("os", "annotations", "_eng", "sys"):
        assert private not in dir(mod)


@pytest.mark.parametrize("name", PACKAGES)
def test_help_lists_the_public_api_and_nothing_private(name: str) -> None:
    text = pydoc.plain(pydoc.render_doc(_pkg(name)))
    # PACKAGE CONTENTS lists the package's files; the other sections follow __all__
    sections = re.split(r"^(?=[A-Z][A-Z ]+$)", text, flags=re.M)
    body = "".join(s for s in sections if not s.startswith("PACKAGE CONTENTS") and not s.startswith("FILE"))
    for private in ("annotations = ", "_eng", "os = ", "<module 'os'"):
        assert private not in body, private
    for n in REQUIRED[name]:
        assert re.search(rf"\b{re.escape(n)}\b", body), f"help({name}) does not show {n}"


def test_readme_first_line_names_resolve(tmp_path: Path) -> None:
    """The issue's acceptance line: ``import pki; pki.TrustStore; pki.verify_chain; ...``."""
    out = subprocess.run(
        [sys.executable, "-c", "import pki; pki.TrustStore; pki.verify_chain; pki.ChainValidationError; pki.Reason; "
                               "pki.VerificationCache; import plugcharge; plugcharge.EVSession; print('ok')"],
        capture_output=True, text=True, timeout=60, env=_env(), cwd=tmp_path)  # not the checkout: the installed packages
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def test_a_type_checker_sees_the_exports(tmp_path: Path) -> None:
    """mypy accepts the top-level names (and rejects a name that is not exported)."""
    if importlib.util.find_spec("mypy") is None:  # in this interpreter: it runs as `python -m mypy`
        pytest.skip("mypy is not installed (the typecheck extra)")
    good = tmp_path / "good.py"
    good.write_text(
        "import exi, pki, plugcharge\n"
        "store: pki.TrustStore = pki.TrustStore({})\n"
        "err: type[pki.ChainValidationError] = pki.ChainValidationError\n"
        "reason: pki.Reason = pki.Reason.EXPIRED\n"
        "cache: pki.VerificationCache = pki.VerificationCache()\n"
        "ev: type[plugcharge.EVSession] = plugcharge.EVSession\n"
        "res: type[plugcharge.SendResult] = plugcharge.SendResult\n"
        "codec: exi.Codec = exi.get_codec('iso2')\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import pki\npki.NoSuchName\n")
    env = _env()
    where = Path(_pkg("pki").__file__).resolve().parent.parent
    if "site-packages" not in where.parts and "dist-packages" not in where.parts:
        env["MYPYPATH"] = str(where)  # a source checkout (editable install): mypy finds it here
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull, "--ignore-missing-imports",
           "--no-error-summary"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    ko = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert ko.returncode == 1 and 'has no attribute "NoSuchName"' in ko.stdout, ko.stdout + ko.stderr
