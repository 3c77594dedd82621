"""OpenSSH certificates: parsing and policy checks, host certificates in the key exchange,
user certificates in publickey auth; against our own server and against real OpenSSH.

Every certificate here is made by the real ``ssh-keygen -s``.
"""

from __future__ import annotations

import getpass
import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

import paramiko
from paramiko._core import certificate as cert_mod
from paramiko._core import hostkey
from paramiko._core.certificate import (
    CertificateRejected,
    HostCertificateRejected,
    check_user_certificate,
    parse_certificate,
    verify_host_certificate,
)
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL
from paramiko.message import Message
from paramiko.ssh_exception import AuthenticationException, BadHostKeyException, SSHException
from tests.support.exec_server import ExecServer
from tests.support.interop import parse_ssh_debug, run_command, start_client, tcp_connect
from tests.support.loopserver import USER, LoopServer, make_pair
from tests.testbed.prereq import find_openssh, require
from tests.testbed.sshd import Sshd

HOST = "server.example.com"
DATA = b"exchange hash stand-in"

# (name, ssh-keygen -t, -b): the key types certificates are made for.
KEY_TYPES = [("ed25519", "ed25519", None), ("ecdsa256", "ecdsa", 256),
             ("ecdsa384", "ecdsa", 384), ("ecdsa521", "ecdsa", 521), ("rsa", "rsa", 2048)]
CERT_ALG_FOR = {
    "ed25519": "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa256": "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa384": "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa521": "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa": "rsa-sha2-512-cert-v01@openssh.com",
}


class CertFactory:
    """Keys made once, certificates signed on demand, all by ssh-keygen."""

    def __init__(self, root: Path, keygen: str) -> None:
        self.root = root
        self.keygen = keygen
        self._n = 0
        self._lock = threading.Lock()
        (root / "keys").mkdir(parents=True, exist_ok=True)
        (root / "certs").mkdir(parents=True, exist_ok=True)

    def _run(self, args: Sequence[str]) -> None:
        r = subprocess.run([self.keygen, *args], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, f"ssh-keygen {' '.join(args)}: {r.stderr}"

    def key(self, name: str, ktype: str = "ed25519", bits: Optional[int] = None) -> Path:
        p = self.root / "keys" / name
        with self._lock:
            if not p.exists():
                args = ["-q", "-t", ktype, "-N", "", "-C", name, "-f", str(p)]
                if bits:
                    args += ["-b", str(bits)]
                self._run(args)
        return p

    def sign(self, ca: Path, key: Path, *, host: bool = False, principals: Sequence[str] = (),
             validity: Optional[str] = None, key_id: str = "test-id", serial: int = 0,
             options: Sequence[str] = (), sig_alg: Optional[str] = None) -> Path:
        """Sign ``key``'s public half with ``ca``; returns the ``-cert.pub`` path."""
        with self._lock:
            self._n += 1
            pub = self.root / "certs" / f"c{self._n}.pub"
        shutil.copyfile(str(key) + ".pub", pub)
        args = ["-q", "-s", str(ca), "-I", key_id, "-z", str(serial)]
        if host:
            args.append("-h")
        if principals:
            args += ["-n", ",".join(principals)]
        if validity:
            args += ["-V", validity]
        for o in options:
            args += ["-O", o]
        if sig_alg:
            args += ["-t", sig_alg]
        self._run(args + [str(pub)])
        return pub.with_name(pub.stem + "-cert.pub")


def blob_of(cert_path: Path) -> bytes:
    return paramiko.PublicBlob.from_file(str(cert_path)).key_blob


@pytest.fixture(scope="module")
def tools():
    found = find_openssh()
    require(bool(found["ssh-keygen"]), "ssh-keygen is not installed (apt-get install "
                                       "openssh-client)")
    return found


@pytest.fixture(scope="module")
def f(tmp_path_factory, tools) -> CertFactory:
    fac = CertFactory(tmp_path_factory.mktemp("certs"), tools["ssh-keygen"])
    fac.key("host_ca")
    fac.key("user_ca", "rsa", 2048)
    fac.key("other_ca")
    for name, ktype, bits in KEY_TYPES:
        fac.key(f"host_{name}", ktype, bits)
        fac.key(f"user_{name}", ktype, bits)
    return fac


def pub(path: Path) -> paramiko.PKey:
    """The public key of a key file, as a PKey."""
    return paramiko.PKey.from_path(path)


def host_cert(f: CertFactory, name: str = "ed25519", **kw) -> Path:
    kw.setdefault("principals", [HOST])
    kw.setdefault("validity", "-5m:+1h")
    return f.sign(f.key("host_ca"), f.key(f"host_{name}"), host=True, **kw)


def user_cert(f: CertFactory, name: str = "ed25519", **kw) -> Path:
    kw.setdefault("principals", [USER])
    return f.sign(f.key("user_ca"), f.key(f"user_{name}"), **kw)


# -- parsing ----------------------------------------------------------------------------------
def test_parse_host_certificate_fields(f):
    path = host_cert(f, "ecdsa256", principals=[HOST, "*.example.org"], key_id="web-1",
                     serial=4242, validity="20200101:20400101")
    cert = parse_certificate(blob_of(path))
    assert cert.cert_type == "host"
    assert cert.cert_key_type == "ecdsa-sha2-nistp256-cert-v01@openssh.com"
    assert cert.key_id == "web-1" and cert.serial == 4242
    assert cert.principals == [HOST, "*.example.org"]
    assert cert.valid_after < cert.valid_before
    assert time.gmtime(cert.valid_after).tm_year == 2020
    assert cert.critical_options == {} and cert.extensions == {}
    assert cert.key == pub(f.key("host_ecdsa256"))
    assert cert.key.public_blob.key_blob == blob_of(path)
    assert cert.ca_key == pub(f.key("host_ca"))
    assert cert.signature_algorithm == "ssh-ed25519"
    assert cert.signature_is_valid()
    # The same through a PublicBlob, a .pub line and a key with the certificate loaded.
    key = paramiko.PKey.from_path(f.key("host_ecdsa256"))
    key.load_certificate(str(path))
    for form in (paramiko.PublicBlob.from_file(str(path)), path.read_text(), key):
        assert parse_certificate(form).blob == cert.blob


def test_parse_user_certificate_options_and_extensions(f):
    path = user_cert(f, "rsa", principals=["alice", "bob"],
                     options=["force-command=/bin/true", "source-address=10.0.0.0/8",
                              "extension:note@example.com=hi", "no-pty"])
    cert = parse_certificate(blob_of(path))
    assert cert.cert_type == "user" and cert.principals == ["alice", "bob"]
    assert cert.critical_options == {"force-command": b"/bin/true",
                                     "source-address": b"10.0.0.0/8"}
    assert cert.extensions["note@example.com"] == b"hi"
    assert "permit-pty" not in cert.extensions and "permit-agent-forwarding" in cert.extensions
    assert cert.valid_before == (1 << 64) - 1  # "forever"
    assert cert.validity_problem(now=0) is None
    assert cert.ca_key.get_name() == "ssh-rsa"
    assert cert.signature_algorithm == "rsa-sha2-512"
    assert cert.key.get_name() == "ssh-rsa" and cert.key.public_blob.key_type == \
        "ssh-rsa-cert-v01@openssh.com"


@pytest.mark.parametrize("name", [n for n, _, _ in KEY_TYPES])
def test_key_from_blob_gives_certified_key_with_certificate(f, name):
    path = host_cert(f, name)
    blob = blob_of(path)
    key = hostkey.key_from_blob(blob)
    assert key == pub(f.key(f"host_{name}"))
    assert key.get_name() == pub(f.key(f"host_{name}")).get_name()
    assert key.public_blob.key_blob == blob
    assert key.public_blob.key_type == Message(blob).get_text()
    assert key.can_sign() is False


def test_malformed_and_unsupported_certificates_raise_ssh_exception(f):
    blob = blob_of(host_cert(f))
    for bad in (blob[:-1], blob[:40], blob + b"\x00", b"",
                Message().add_string("ssh-dss-cert-v01@openssh.com").add_string("x").asbytes(),
                pub(f.key("host_ed25519")).asbytes()):
        with pytest.raises(SSHException):
            parse_certificate(bad)
    with pytest.raises(paramiko.UnknownKeyType):
        hostkey.key_from_blob(Message().add_string("sk-ssh-ed25519-cert-v01@openssh.com")
                              .add_string("x").asbytes())
    with pytest.raises(SSHException, match="no certificate"):
        parse_certificate(pub(f.key("host_ed25519")))


def test_fuzzed_certificates_raise_only_ssh_exceptions(f):
    rng = random.Random(4321)
    samples = [blob_of(host_cert(f, n)) for n in ("ed25519", "ecdsa256", "rsa")]
    ca = pub(f.key("host_ca"))
    for _ in range(300):
        b = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            if rng.random() < 0.6:
                b[i] = rng.randrange(256)
            else:
                del b[i:i + rng.randint(1, 6)]
        blob = bytes(b)
        calls = [(parse_certificate, (blob,)), (hostkey.key_from_blob, (blob,)),
                 (verify_host_certificate, (blob, HOST, [ca])),
                 (check_user_certificate, (blob, USER, [ca])),
                 (hostkey.verify_signature, ("ssh-ed25519-cert-v01@openssh.com", blob, DATA,
                                             b"\x00\x00\x00\x00"))]
        for fn, args in calls:
            try:
                fn(*args)
            except SSHException:
                pass


# -- host certificate policy ------------------------------------------------------------------
def test_verify_host_certificate_accepts(f):
    ca = pub(f.key("host_ca"))
    path = host_cert(f, "ed25519", principals=[HOST, "*.wild.example", "10.1.2.3"])
    expected = pub(f.key("host_ed25519"))
    for name in (HOST, "SERVER.Example.COM", f"[{HOST}]:2222", "10.1.2.3", "*.wild.example"):
        key = verify_host_certificate(blob_of(path), name, [pub(f.key("other_ca")), ca])
        assert key == expected and key.public_blob.key_blob == blob_of(path)
    # Patterns in principals are literal text unless asked for (ssh 9.2 compares exactly).
    for name in ("a.wild.example", "x.y.wild.example"):
        with pytest.raises(HostCertificateRejected, match="not a listed principal"):
            verify_host_certificate(blob_of(path), name, [ca])
        verify_host_certificate(blob_of(path), name, [ca], wildcard_principals=True)
    with pytest.raises(HostCertificateRejected):
        verify_host_certificate(blob_of(path), "wild.example", [ca], wildcard_principals=True)
    # An empty principal list means any host; the CA may be given as a raw blob too.
    anyhost = host_cert(f, "rsa", principals=())
    assert verify_host_certificate(blob_of(anyhost), "whatever.test", [ca.asbytes()]) == \
        pub(f.key("host_rsa"))


@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "wrong-principal",
                                  "user-cert", "unknown-ca", "tampered-signature",
                                  "tampered-body", "critical-option", "sha1-ca", "malformed"])
def test_verify_host_certificate_rejects(f, case):
    ca = pub(f.key("host_ca"))
    cas: List = [ca]
    expect = {"expired": ("expired", "expired"),
              "not-yet-valid": ("not-yet-valid", "not yet valid"),
              "wrong-principal": ("principal", "not a listed principal"),
              "user-cert": ("wrong-type", "not a host certificate"),
              "unknown-ca": ("unknown-ca", "unknown CA"),
              "tampered-signature": ("bad-signature", "CA signature"),
              "tampered-body": ("bad-signature", "CA signature"),
              "critical-option": ("critical-option", "critical options"),
              "sha1-ca": ("ca-algorithm", "ssh-rsa"),
              "malformed": ("malformed", "cannot parse")}[case]
    host = HOST
    if case == "expired":
        blob = blob_of(host_cert(f, validity="-2d:-1d"))
    elif case == "not-yet-valid":
        blob = blob_of(host_cert(f, validity="+1d:+2d"))
    elif case == "wrong-principal":
        blob = blob_of(host_cert(f, principals=["other.example.com", "*.example.org"]))
    elif case == "user-cert":
        blob = blob_of(f.sign(f.key("host_ca"), f.key("host_ed25519"), principals=[HOST]))
    elif case == "unknown-ca":
        cas = [pub(f.key("other_ca"))]
        blob = blob_of(host_cert(f))
    elif case == "tampered-signature":
        b = bytearray(blob_of(host_cert(f)))
        b[-3] ^= 0x01
        blob = bytes(b)
    elif case == "tampered-body":
        blob = blob_of(host_cert(f, principals=["server.example.net"])).replace(
            b"server.example.net", b"server.example.com")
    elif case == "critical-option":
        blob = blob_of(host_cert(f, options=["critical:weird@example.com=x"]))
    elif case == "sha1-ca":
        cas = [pub(f.key("user_ca"))]
        blob = blob_of(f.sign(f.key("user_ca"), f.key("host_ed25519"), host=True,
                              principals=[HOST], sig_alg="ssh-rsa"))
    else:
        blob = blob_of(host_cert(f))[:-10]
    with pytest.raises(HostCertificateRejected) as info:
        verify_host_certificate(blob, host, cas)
    err = info.value
    assert isinstance(err, BadHostKeyException) and isinstance(err, SSHException)
    assert (err.code, err.hostname) == (expect[0], host)
    assert expect[1] in str(err) and host in str(err)
    assert err.phase == "hostkey"
    if case != "malformed":
        assert err.key is not None and err.cert is not None
    if case == "sha1-ca":  # allowed when asked for
        verify_host_certificate(blob, host, cas,
                                ca_signature_algorithms=("ssh-rsa", "rsa-sha2-512"))


def test_validity_bounds_follow_the_spec(f):
    """valid_after <= now < valid_before, with an explicit clock."""
    blob = blob_of(host_cert(f, validity="20300101:20300102"))
    cert = parse_certificate(blob)
    ca = pub(f.key("host_ca"))
    verify_host_certificate(blob, HOST, [ca], now=cert.valid_after)
    verify_host_certificate(blob, HOST, [ca], now=cert.valid_before - 1)
    with pytest.raises(HostCertificateRejected, match="expired"):
        verify_host_certificate(blob, HOST, [ca], now=cert.valid_before)
    with pytest.raises(HostCertificateRejected, match="not yet valid"):
        verify_host_certificate(blob, HOST, [ca], now=cert.valid_after - 1)


def test_principal_patterns():
    m = cert_mod.principal_matches
    assert m("a.example.com", "*.example.com") and m("web1", "web?")
    assert not m("example.com", "*.example.com") and not m("web10", "web?")
    assert not m("a.example.com", "A.example.com")  # case-sensitive; hostnames are lowered
    assert m("x[1]", "x[1]") and not m("x1", "x[1]")  # brackets are literal, unlike fnmatch


# -- user certificate policy ------------------------------------------------------------------
def test_check_user_certificate_accepts_and_returns_options(f):
    ca = pub(f.key("user_ca"))
    path = user_cert(f, "ed25519", principals=["root", USER],
                     options=["force-command=/usr/bin/id", "source-address=127.0.0.0/8,::1"])
    for addr in ("127.0.0.1", "::1", "::ffff:127.0.0.9"):
        cert = check_user_certificate(blob_of(path), USER, [ca], client_address=addr)
        assert cert.critical_options["force-command"] == b"/usr/bin/id"
        assert cert.key == pub(f.key("user_ed25519"))


@pytest.mark.parametrize("case", ["wrong-user", "no-principals", "host-cert", "unknown-ca",
                                  "expired", "source-mismatch", "source-missing",
                                  "unknown-critical", "verify-required", "tampered"])
def test_check_user_certificate_rejects(f, case):
    ca = pub(f.key("user_ca"))
    cas: List = [ca]
    addr: Optional[str] = "127.0.0.1"
    if case == "wrong-user":
        path = user_cert(f, principals=["bob"])
    elif case == "no-principals":
        path = user_cert(f, principals=())
    elif case == "host-cert":
        path = f.sign(f.key("user_ca"), f.key("user_ed25519"), host=True, principals=[USER])
    elif case == "unknown-ca":
        path, cas = user_cert(f), [pub(f.key("other_ca"))]
    elif case == "expired":
        path = user_cert(f, validity="-3d:-2d")
    elif case == "source-mismatch":
        path = user_cert(f, options=["source-address=10.0.0.0/8"])
    elif case == "source-missing":
        path, addr = user_cert(f, options=["source-address=127.0.0.1"]), None
    elif case == "unknown-critical":
        path = user_cert(f, options=["critical:mystery@example.com"])
    elif case == "verify-required":
        path = user_cert(f, options=["verify-required"])
    else:
        path = user_cert(f)
    blob = blob_of(path)
    if case == "tampered":
        b = bytearray(blob)
        b[-2] ^= 0x40
        blob = bytes(b)
    code = {"wrong-user": "principal", "no-principals": "principal", "host-cert": "wrong-type",
            "unknown-ca": "unknown-ca", "expired": "expired",
            "source-mismatch": "source-address", "source-missing": "source-address",
            "unknown-critical": "critical-option", "verify-required": "critical-option",
            "tampered": "bad-signature"}[case]
    with pytest.raises(CertificateRejected) as info:
        check_user_certificate(blob, USER, cas, client_address=addr)
    assert info.value.code == code
    assert not isinstance(info.value, BadHostKeyException)
    assert USER in str(info.value)


# -- the host key registry --------------------------------------------------------------------
def test_cert_algorithms_registered_but_not_default():
    assert hostkey.CERT_HOSTKEY_ORDER == (
        "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com")
    for alg in hostkey.CERT_HOSTKEY_ORDER:
        assert alg in hostkey.HOSTKEY_ALGORITHMS and alg not in hostkey.DEFAULT_HOSTKEY_ORDER
    spec = hostkey.HOSTKEY_ALGORITHMS["rsa-sha2-256-cert-v01@openssh.com"]
    assert (spec.key_type, spec.sig_algorithm) == ("ssh-rsa-cert-v01@openssh.com",
                                                   "rsa-sha2-256")
    assert paramiko.Transport._preferred_keys == hostkey.DEFAULT_HOSTKEY_ORDER


@pytest.mark.parametrize("name", [n for n, _, _ in KEY_TYPES])
def test_sign_and_verify_under_cert_algorithms(f, name):
    key = paramiko.PKey.from_path(f.key(f"host_{name}"))
    plain = hostkey.algorithms_for_key(key)
    key.load_certificate(str(host_cert(f, name)))
    algs = hostkey.algorithms_for_key(key)
    certs = [a for a in algs if hostkey.is_cert_algorithm(a)]
    assert algs == certs + plain and certs[0] == CERT_ALG_FOR[name]
    if name == "rsa":
        assert certs == ["rsa-sha2-512-cert-v01@openssh.com",
                         "rsa-sha2-256-cert-v01@openssh.com"]
    cert_blob = key.public_blob.key_blob
    for alg in certs:
        sig = hostkey.sign_data(alg, key, DATA)
        assert Message(sig).get_text() == hostkey.HOSTKEY_ALGORITHMS[alg].sig_algorithm
        assert hostkey.verify_signature(alg, cert_blob, DATA, sig) is True
        assert hostkey.verify_signature(alg, cert_blob, DATA + b"!", sig) is False
        # The certificate blob is no plain key, and a plain key blob no certificate.
        plain_alg = hostkey.HOSTKEY_ALGORITHMS[alg].sig_algorithm
        assert hostkey.verify_signature(plain_alg, cert_blob, DATA, sig) is False
        assert hostkey.verify_signature(alg, key.asbytes(), DATA, sig) is False
    if name == "rsa":  # an rsa-sha2-256 signature does not pass for rsa-sha2-512-cert
        sig256 = hostkey.sign_data("rsa-sha2-256-cert-v01@openssh.com", key, DATA)
        assert not hostkey.verify_signature("rsa-sha2-512-cert-v01@openssh.com", cert_blob,
                                            DATA, sig256)


def test_cert_with_bad_ca_signature_is_unusable_as_host_key(f):
    key = paramiko.PKey.from_path(f.key("host_ed25519"))
    b = bytearray(blob_of(host_cert(f)))
    b[-1] ^= 0x01
    sig = hostkey.sign_data("ssh-ed25519-cert-v01@openssh.com", key, DATA)
    with pytest.raises(SSHException, match="CA signature"):
        hostkey.verify_signature("ssh-ed25519-cert-v01@openssh.com", bytes(b), DATA, sig)


def test_server_offers_cert_algorithms_only_for_host_certificates(f):
    ed = paramiko.PKey.from_path(f.key("host_ed25519"))
    rsa = paramiko.PKey.from_path(f.key("host_rsa"))
    rsa.load_certificate(str(host_cert(f, "rsa")))
    offer = hostkey.server_algorithms(hostkey.DEFAULT_HOSTKEY_ORDER, [ed, rsa])
    assert offer == ["ssh-ed25519", "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-512",
                     "rsa-sha2-256-cert-v01@openssh.com", "rsa-sha2-256"]
    # A list naming certificate algorithms is taken literally.
    assert hostkey.server_algorithms(["rsa-sha2-256-cert-v01@openssh.com", "ssh-ed25519"],
                                     [ed, rsa]) == ["rsa-sha2-256-cert-v01@openssh.com",
                                                    "ssh-ed25519"]
    # A user certificate on a host key gives no certificate algorithms.
    ed.load_certificate(str(f.sign(f.key("user_ca"), f.key("host_ed25519"),
                                   principals=[USER])))
    assert hostkey.algorithms_for_key(ed) == ["ssh-ed25519"]


# -- our client against our server (in memory) ------------------------------------------------
def _cert_client(algs: Sequence[str]):
    def setup(t: paramiko.Transport) -> None:
        t.get_security_options().key_types = list(algs)
    return setup


@pytest.mark.parametrize("name,alg", [
    ("ed25519", "ssh-ed25519-cert-v01@openssh.com"),
    ("ecdsa384", "ecdsa-sha2-nistp384-cert-v01@openssh.com"),
    ("rsa", "rsa-sha2-512-cert-v01@openssh.com"),
    ("rsa", "rsa-sha2-256-cert-v01@openssh.com"),
])
def test_our_server_presents_host_certificate(f, name, alg):
    key = paramiko.PKey.from_path(f.key(f"host_{name}"))
    key.load_certificate(str(host_cert(f, name)))
    client, srv, _ = make_pair(key, client_setup=_cert_client(
        [alg] + list(hostkey.DEFAULT_HOSTKEY_ORDER)))
    try:
        assert client.host_key_type == alg
        remote = client.get_remote_server_key()
        assert remote.public_blob == key.public_blob and remote == key
        assert verify_host_certificate(remote, HOST, [pub(f.key("host_ca"))]) == key
        assert srv.get_server_key() is key
    finally:
        client.close()
        srv.close()


def test_default_client_still_gets_plain_key_from_cert_server(f):
    key = paramiko.PKey.from_path(f.key("host_ed25519"))
    key.load_certificate(str(host_cert(f)))
    client, srv, _ = make_pair(key)
    try:
        assert client.host_key_type == "ssh-ed25519"
        assert client.get_remote_server_key().public_blob is None
    finally:
        client.close()
        srv.close()


def test_client_refuses_certificate_with_bad_ca_signature(f):
    key = paramiko.PKey.from_path(f.key("host_ed25519"))
    b = bytearray(blob_of(host_cert(f)))
    b[-1] ^= 0x01
    key.load_certificate(paramiko.PublicBlob("ssh-ed25519-cert-v01@openssh.com", bytes(b)))
    with pytest.raises(SSHException, match="CA signature") as info:
        make_pair(key, client_setup=_cert_client(hostkey.CERT_HOSTKEY_ORDER), timeout=5)
    assert info.value.phase == "hostkey"


class _CertAuthServer(LoopServer):
    """Accepts publickey only with a user certificate from ``ca``."""

    def __init__(self, ca: paramiko.PKey) -> None:
        super().__init__()
        self.ca = ca
        self.seen: List[paramiko.PKey] = []
        self.rejections: List[CertificateRejected] = []

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        self.seen.append(key)
        if key.public_blob is None:
            return AUTH_FAILED
        try:
            check_user_certificate(key, username, [self.ca])
        except CertificateRejected as e:
            self.rejections.append(e)
            return AUTH_FAILED
        return AUTH_SUCCESSFUL


@pytest.mark.parametrize("name", ["ed25519", "ecdsa256", "rsa"])
def test_user_certificate_auth_to_our_server(f, name):
    server = _CertAuthServer(pub(f.key("user_ca")))
    client, srv, _ = make_pair(paramiko.PKey.from_path(f.key("host_ed25519")), server=server)
    try:
        key = paramiko.PKey.from_path(f.key(f"user_{name}"))
        with pytest.raises(AuthenticationException):
            client.auth_publickey(USER, key)
        assert server.seen[-1].public_blob is None
        key.load_certificate(str(user_cert(f, name)))
        client.auth_publickey(USER, key)
        assert client.is_authenticated()
        seen = server.seen[-1]
        assert seen == key and seen.public_blob == key.public_blob
        assert not server.rejections
    finally:
        client.close()
        srv.close()


def test_user_certificate_for_other_principal_refused_by_our_server(f):
    server = _CertAuthServer(pub(f.key("user_ca")))
    client, srv, _ = make_pair(paramiko.PKey.from_path(f.key("host_ed25519")), server=server)
    try:
        key = paramiko.PKey.from_path(f.key("user_ed25519"))
        key.load_certificate(str(user_cert(f, principals=["mallory"])))
        with pytest.raises(AuthenticationException):
            client.auth_publickey(USER, key)
        assert [r.code for r in server.rejections] == ["principal"]
    finally:
        client.close()
        srv.close()


# -- real OpenSSH -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SSHD_HOST = "certhost.test"
SSHD_KEYS = ("ed25519", "ecdsa256", "rsa")


@pytest.fixture(scope="module")
def cert_sshd(f, tools, tmp_path_factory):
    """sshd on 127.0.0.1 with host certificates and TrustedUserCAKeys, no authorized keys."""
    require(bool(tools["sshd"] and tools["sftp-server"]), "sshd is not installed "
                                                          "(apt-get install openssh-server)")
    work = tmp_path_factory.mktemp("cert-sshd")
    host_keys: Dict[str, Path] = {}
    extra = [f"TrustedUserCAKeys {f.key('user_ca')}.pub"]
    for name in SSHD_KEYS:
        _, ktype, bits = next(k for k in KEY_TYPES if k[0] == name)
        key = f.key(f"sshd_{name}", ktype, bits)
        host_keys[name] = key
        extra.append(f"HostCertificate {host_cert_for(f, key)}")
    authorized = work / "authorized_keys"
    authorized.write_text("")
    sshd = Sshd("certs", work, tools["sshd"], tools["sftp-server"], host_keys, authorized,
                listen=[("127.0.0.1", _free_port())], extra_config=extra)
    sshd.start()
    try:
        yield sshd
    finally:
        sshd.stop()


def host_cert_for(f: CertFactory, key: Path) -> Path:
    return f.sign(f.key("host_ca"), key, host=True, principals=[SSHD_HOST], key_id="sshd-host",
                  validity="-1h:+1d")


def _connect(sshd: Sshd, algs: Optional[Sequence[str]] = None) -> paramiko.Transport:
    sock = tcp_connect(*sshd.listen[0])
    return start_client(sock, _cert_client(algs) if algs else None)


@pytest.mark.openssh
@pytest.mark.parametrize("alg,name", [
    ("ssh-ed25519-cert-v01@openssh.com", "ed25519"),
    ("ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa256"),
    ("rsa-sha2-512-cert-v01@openssh.com", "rsa"),
    ("rsa-sha2-256-cert-v01@openssh.com", "rsa"),
])
def test_our_client_verifies_sshd_host_certificate(f, cert_sshd, alg, name):
    t = _connect(cert_sshd, [alg])
    try:
        assert t.host_key_type == alg
        remote = t.get_remote_server_key()
        assert remote == pub(cert_sshd.host_keys[name])
        assert remote.public_blob.key_type == hostkey.HOSTKEY_ALGORITHMS[alg].key_type
        ca = pub(f.key("host_ca"))
        assert verify_host_certificate(remote, SSHD_HOST, [ca]) == remote
        with pytest.raises(HostCertificateRejected, match="not a listed principal"):
            verify_host_certificate(remote, "localhost", [ca])
        with pytest.raises(HostCertificateRejected, match="unknown CA"):
            verify_host_certificate(remote, SSHD_HOST, [pub(f.key("other_ca"))])
    finally:
        t.close()


@pytest.mark.openssh
def test_cert_order_first_picks_certificate_and_default_picks_plain(cert_sshd):
    t = _connect(cert_sshd, hostkey.CERT_HOSTKEY_ORDER + hostkey.DEFAULT_HOSTKEY_ORDER)
    try:
        assert t.host_key_type == "ssh-ed25519-cert-v01@openssh.com"
    finally:
        t.close()
    t = _connect(cert_sshd)
    try:
        assert t.host_key_type == "ssh-ed25519"
        assert t.get_remote_server_key().public_blob is None
    finally:
        t.close()


@pytest.mark.openssh
@pytest.mark.parametrize("name", ["ed25519", "ecdsa256", "rsa"])
def test_user_certificate_auth_against_sshd(f, cert_sshd, name):
    user = getpass.getuser()
    mark = cert_sshd.log_mark()
    t = _connect(cert_sshd)
    try:
        key = paramiko.PKey.from_path(f.key(f"user_{name}"))
        with pytest.raises(AuthenticationException):  # the plain key is not authorized
            t.auth_publickey(user, key)
        assert not t.is_authenticated()
        key.load_certificate(str(user_cert(f, name, principals=[user], key_id=f"uc-{name}")))
        t.auth_publickey(user, key)
        assert t.is_authenticated()
        r = run_command(t, "echo cert-ok")
        assert (r.stdout, r.status) == (b"cert-ok\n", 0)
    finally:
        t.close()
    counts = cert_sshd.wait_counts(lambda c: c.login_count >= 1, since=mark)
    assert [m for m, _, _ in counts.logins] == ["publickey"]
    with open(cert_sshd.log_path, "rb") as fh:
        fh.seek(mark)
        assert f'ID uc-{name}'.encode() in fh.read()


@pytest.mark.openssh
def test_sshd_refuses_user_certificate_for_another_principal(f, cert_sshd):
    t = _connect(cert_sshd)
    try:
        key = paramiko.PKey.from_path(f.key("user_ed25519"))
        key.load_certificate(str(user_cert(f, principals=["nobody-else"])))
        with pytest.raises(AuthenticationException):
            t.auth_publickey(getpass.getuser(), key)
    finally:
        t.close()


@pytest.fixture
def cert_exec_server(f):
    """Starts our exec server in this process with a host certificate; stops it after."""
    servers: List[ExecServer] = []

    def start(name: str, principals: Sequence[str]) -> ExecServer:
        key_path = f.key(f"host_{name}")
        srv = ExecServer([str(key_path)], str(f.key("user_ed25519")) + ".pub")
        key = paramiko.PKey.from_path(key_path)
        key.load_certificate(str(host_cert(f, name, principals=principals)))
        srv.host_keys = [key]
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def _ssh_to(tools, tmp: Path, f: CertFactory, port: int, alias: str,
            host_key_algs: Optional[str] = None) -> subprocess.CompletedProcess:
    known = tmp / "known_hosts"
    known.write_text(f"@cert-authority * {(Path(str(f.key('host_ca')) + '.pub')).read_text()}")
    cfg = tmp / "ssh_config"
    lines = ["Host target", "  HostName 127.0.0.1", f"  Port {port}",
             f"  User {getpass.getuser()}", f"  HostKeyAlias {alias}",
             f"  IdentityFile {f.key('user_ed25519')}", "  IdentitiesOnly yes",
             "  IdentityAgent none", f"  UserKnownHostsFile {known}",
             "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes",
             "  UpdateHostKeys no", "  BatchMode yes", "  ConnectTimeout 10"]
    if host_key_algs:
        lines.append(f"  HostKeyAlgorithms {host_key_algs}")
    cfg.write_text("\n".join(lines) + "\n")
    return subprocess.run([tools["ssh"], "-F", str(cfg), "-o", "LogLevel=DEBUG1", "target",
                           "echo via-cert"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.openssh
@pytest.mark.parametrize("name,alg", [
    ("ed25519", None),  # ssh's own default order puts certificate algorithms first
    ("ecdsa256", "ecdsa-sha2-nistp256-cert-v01@openssh.com"),
    ("rsa", "rsa-sha2-512-cert-v01@openssh.com"),
    ("rsa", "rsa-sha2-256-cert-v01@openssh.com"),
])
def test_openssh_client_accepts_our_host_certificate(f, tools, tmp_path, cert_exec_server,
                                                     name, alg):
    require(bool(tools["ssh"]), "ssh is not installed")
    srv = cert_exec_server(name, [SSHD_HOST])
    r = _ssh_to(tools, tmp_path, f, srv.port, SSHD_HOST, alg)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == "via-cert\n"
    assert parse_ssh_debug(r.stderr)["hostkey"] == (alg or CERT_ALG_FOR[name])
    assert "Server host certificate" in r.stderr


@pytest.mark.openssh
def test_openssh_client_and_we_agree_on_principals(f, tools, tmp_path, cert_exec_server):
    """ssh lower-cases the host name, compares it with the principals exactly (no patterns,
    no case folding of principals) and, when none matches, falls back to the plain key
    (unknown here); we accept and refuse the same names."""
    require(bool(tools["ssh"]), "ssh is not installed")
    srv = cert_exec_server("ed25519", ["*.wild.test", "db1.test", "Upper.test"])
    ca = pub(f.key("host_ca"))
    cert = srv.host_keys[0]
    for i, (alias, ok) in enumerate([("db1.test", True), ("DB1.Test", True),
                                     ("*.wild.test", True), ("a.wild.test", False),
                                     ("db12.test", False), ("upper.test", False),
                                     ("Upper.test", False), (SSHD_HOST, False)]):
        d = tmp_path / str(i)
        d.mkdir()
        r = _ssh_to(tools, d, f, srv.port, alias)
        assert (r.returncode == 0) == ok, (alias, r.stderr[-2000:])
        if ok:
            verify_host_certificate(cert, alias, [ca])
        else:
            assert "Host key verification failed" in r.stderr
            with pytest.raises(HostCertificateRejected, match="not a listed principal"):
                verify_host_certificate(cert, alias, [ca])
