"""Key classes and the host key algorithm registry, checked against the real ssh-keygen."""

from __future__ import annotations

import base64
import io
import os
import random
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Type

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from paramiko._core import hostkey
from paramiko.ecdsakey import ECDSAKey
from paramiko.ed25519key import Ed25519Key
from paramiko.message import Message
from paramiko.pkey import OPENSSH, PEM, PKey, PublicBlob, UnknownKeyType
from paramiko.rsakey import RSAKey
from paramiko.ssh_exception import PasswordRequiredException, SSHException
from tests.testbed.prereq import require

KEYGEN = shutil.which("ssh-keygen")
PASSPHRASE = "s3cret pass"
DATA = b"the exchange hash, or anything else worth signing"


class Spec(NamedTuple):
    id: str
    ktype: str
    bits: Optional[int]
    cls: Type[PKey]
    name: str
    key_bits: int
    algorithm: str


SPECS = [
    Spec("ed25519", "ed25519", None, Ed25519Key, "ssh-ed25519", 256, "ED25519"),
    Spec("ecdsa256", "ecdsa", 256, ECDSAKey, "ecdsa-sha2-nistp256", 256, "ECDSA"),
    Spec("ecdsa384", "ecdsa", 384, ECDSAKey, "ecdsa-sha2-nistp384", 384, "ECDSA"),
    Spec("ecdsa521", "ecdsa", 521, ECDSAKey, "ecdsa-sha2-nistp521", 521, "ECDSA"),
    Spec("rsa", "rsa", 2048, RSAKey, "ssh-rsa", 2048, "RSA"),
]
BY_ID = {s.id: s for s in SPECS}

# (spec id, on-disk format, encrypted). ssh-keygen writes Ed25519 in OpenSSH format whatever
# -m says, so its PEM variants would only repeat the OpenSSH ones.
CASES: List[Tuple[str, str, bool]] = [
    (s.id, fmt, enc)
    for s in SPECS
    for fmt in ("openssh", "pem")
    for enc in (False, True)
    if not (s.id == "ed25519" and fmt == "pem")
] + [(i, "pkcs8", enc) for i in ("rsa", "ecdsa256") for enc in (False, True)]

needs_keygen = pytest.mark.openssh


def run(*args: str, stdin: Optional[bytes] = None) -> str:
    res = subprocess.run(args, input=stdin if stdin is not None else b"", capture_output=True,
                         timeout=30)
    assert res.returncode == 0, (args, res.stderr.decode())
    return res.stdout.decode()


class Expected(NamedTuple):
    sha256: str
    md5: str
    b64: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Dict[Tuple[str, str, bool], Path]:
    """Every case's private key file; ``<base>.pub`` holds the public key of each spec."""
    require(KEYGEN is not None, "ssh-keygen not installed (apt-get install openssh-client)")
    d = tmp_path_factory.mktemp("pkeys")
    out = {}
    for s in SPECS:
        base = d / s.id
        cmd = [KEYGEN, "-q", "-t", s.ktype, "-N", "", "-C", f"test-{s.id}", "-f", str(base)]
        if s.bits:
            cmd[4:4] = ["-b", str(s.bits)]
        run(*cmd)
        for sid, fmt, enc in CASES:
            if sid != s.id:
                continue
            if fmt == "openssh" and not enc:
                out[(sid, fmt, enc)] = base
                continue
            p = d / f"{sid}_{fmt}_{'enc' if enc else 'plain'}"
            shutil.copy(base, p)
            conv = [KEYGEN, "-q", "-p", "-P", "", "-N", PASSPHRASE if enc else "", "-f", str(p)]
            if fmt != "openssh":
                conv[3:3] = ["-m", fmt.upper()]
            run(*conv)
            out[(sid, fmt, enc)] = p
    return out


@pytest.fixture(scope="module")
def expected(keys) -> Dict[str, Expected]:
    """What ssh-keygen itself says about each spec's public key."""
    out = {}
    for s in SPECS:
        pub = keys[(s.id, "openssh", False)].with_suffix(".pub")
        sha = run(KEYGEN, "-l", "-E", "sha256", "-f", str(pub)).split()
        md5 = run(KEYGEN, "-l", "-E", "md5", "-f", str(pub)).split()
        assert int(sha[0]) == s.key_bits
        out[s.id] = Expected(sha[1], md5[1], pub.read_text().split()[1])
    return out


def check_key(key: PKey, s: Spec, exp: Expected, private: bool = True) -> None:
    assert type(key) is s.cls
    assert key.get_name() == s.name
    assert key.algorithm_name == s.algorithm
    assert key.get_bits() == s.key_bits
    assert key.fingerprint == exp.sha256
    assert "MD5:" + ":".join(f"{b:02x}" for b in key.get_fingerprint()) == exp.md5
    assert key.get_base64() == exp.b64
    assert bytes(key) == key.asbytes() == base64.b64decode(exp.b64)
    assert key.can_sign() is private


# -- loading ----------------------------------------------------------------------------------
@needs_keygen
@pytest.mark.parametrize("sid,fmt,enc", CASES, ids=[f"{i}-{f}-{'enc' if e else 'plain'}"
                                                     for i, f, e in CASES])
def test_load_every_way_matches_ssh_keygen(keys, expected, sid, fmt, enc):
    s, path, exp = BY_ID[sid], keys[(sid, fmt, enc)], expected[sid]
    pw = PASSPHRASE if enc else None
    loaded = [
        PKey.from_path(path, passphrase=pw),
        PKey.from_private_key_file(str(path), password=pw),
        s.cls.from_private_key_file(str(path), password=pw),
        s.cls(filename=str(path), password=pw),
    ]
    with open(path) as f:  # text file object, as upstream callers pass
        loaded.append(s.cls.from_private_key(f, password=pw))
    with open(path, "rb") as f:
        loaded.append(s.cls(file_obj=f, password=pw.encode() if pw else None))
    for key in loaded:
        check_key(key, s, exp)
    assert len(set(loaded)) == 1


@needs_keygen
@pytest.mark.parametrize("s", SPECS, ids=[s.id for s in SPECS])
def test_public_only_keys_verify_but_cannot_sign(keys, expected, s):
    exp = expected[s.id]
    blob = base64.b64decode(exp.b64)
    private = PKey.from_path(keys[(s.id, "openssh", False)])
    publics = [s.cls(data=blob), s.cls(msg=Message(blob)), PKey.from_type_string(s.name, blob),
               hostkey.key_from_blob(blob)]
    sig = private.sign_ssh_data(DATA)
    for pub in publics:
        check_key(pub, s, exp, private=False)
        assert pub == private and hash(pub) == hash(private)
        assert pub.verify_ssh_sig(DATA, Message(sig.asbytes()))
        assert not pub.verify_ssh_sig(DATA + b"!", Message(sig.asbytes()))
        with pytest.raises(SSHException):
            pub.sign_ssh_data(DATA)
        with pytest.raises(SSHException):
            pub.write_private_key(io.StringIO())


@needs_keygen
def test_passphrase_errors(keys):
    for sid, fmt, enc in CASES:
        if not enc:
            continue
        path = keys[(sid, fmt, enc)]
        cls = BY_ID[sid].cls
        with pytest.raises(PasswordRequiredException):
            PKey.from_path(path)
        with pytest.raises(PasswordRequiredException):
            cls(filename=str(path), password="")
        with pytest.raises(SSHException, match="passphrase") as info:
            cls.from_private_key_file(str(path), password="not it")
        assert not isinstance(info.value, PasswordRequiredException)
    # A passphrase given for an unencrypted key is ignored, as SSHClient relies on.
    assert PKey.from_path(keys[("rsa", "pem", False)], passphrase="unused").can_sign()
    assert PKey.from_path(keys[("ed25519", "openssh", False)], password="unused").can_sign()


@needs_keygen
def test_wrong_class_and_bad_files(keys, tmp_path):
    with pytest.raises(SSHException, match="not RSA"):
        RSAKey(filename=str(keys[("ed25519", "openssh", False)]))
    with pytest.raises(SSHException, match="not ED25519"):
        Ed25519Key.from_private_key_file(str(keys[("ecdsa256", "pem", False)]))
    with pytest.raises(SSHException):
        ECDSAKey(filename=str(keys[("rsa", "pkcs8", False)]))
    pub = keys[("rsa", "openssh", False)].with_suffix(".pub")
    with pytest.raises(SSHException):
        PKey.from_path(pub)
    for junk in (b"", b"hello", b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                 b"-----END OPENSSH PRIVATE KEY-----\n",
                 b"-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----\n"):
        p = tmp_path / "junk"
        p.write_bytes(junk)
        with pytest.raises(SSHException):
            PKey.from_path(p)
        with pytest.raises(SSHException):
            RSAKey(file_obj=io.BytesIO(junk))
    with pytest.raises(SSHException):
        RSAKey()


def test_unknown_key_types():
    dsa_key = dsa.generate_private_key(1024)
    pem = dsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    with pytest.raises(UnknownKeyType):
        PKey.from_private_key(io.BytesIO(pem))
    with pytest.raises(SSHException):
        RSAKey.from_private_key(io.BytesIO(pem))
    with pytest.raises(UnknownKeyType) as info:
        PKey.from_type_string("ssh-dss", b"\x00\x00\x00\x07ssh-dss")
    assert info.value.key_type == "ssh-dss" and isinstance(info.value, SSHException)
    with pytest.raises(UnknownKeyType):
        hostkey.key_from_blob(b"\x00\x00\x00\x07ssh-dss\x00\x00\x00\x01x")


def test_pkcs8_ed25519_loads():
    k = ed25519.Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.BestAvailableEncryption(b"pw"))
    key = Ed25519Key(file_obj=io.BytesIO(pem), password="pw")
    raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.asbytes() == b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + raw


# -- signatures -------------------------------------------------------------------------------
def _verify_with_cryptography(key: PKey, data: bytes, sig_msg: Message) -> str:
    """Check our signature with cryptography alone; returns the signature's algorithm."""
    m = Message(sig_msg.asbytes())
    alg, sig = m.get_text(), m.get_binary()
    assert m.get_remainder() == b""
    pub = key._public
    if isinstance(key, RSAKey):
        h = {"rsa-sha2-512": hashes.SHA512, "rsa-sha2-256": hashes.SHA256,
             "ssh-rsa": hashes.SHA1}[alg]
        assert len(sig) == 256
        pub.verify(sig, data, padding.PKCS1v15(), h())
    elif isinstance(key, ECDSAKey):
        inner = Message(sig)
        r, s = inner.get_mpint(), inner.get_mpint()
        assert inner.get_remainder() == b""
        h = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}[key.get_bits()]
        pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(h()))
    else:
        assert len(sig) == 64
        pub.verify(sig, data)
    return alg


@needs_keygen
@pytest.mark.parametrize("s", SPECS, ids=[s.id for s in SPECS])
def test_sign_verify(keys, s):
    key = PKey.from_path(keys[(s.id, "openssh", False)])
    algs = [None, "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if s.cls is RSAKey else [None]
    for alg in algs:
        sig = key.sign_ssh_data(DATA, algorithm=alg)
        used = _verify_with_cryptography(key, DATA, sig)
        assert used == (alg or ("rsa-sha2-512" if s.cls is RSAKey else s.name))
        assert key.verify_ssh_sig(DATA, Message(sig.asbytes()))
        assert key.verify_ssh_sig(DATA, sig.asbytes())
        assert not key.verify_ssh_sig(b"other data", Message(sig.asbytes()))
    if s.cls is RSAKey:
        with pytest.raises(SSHException):
            key.sign_ssh_data(DATA, algorithm="rsa-sha2-1024")
        # A certificate algorithm signs with the plain signature format.
        m = key.sign_ssh_data(DATA, "rsa-sha2-256-cert-v01@openssh.com")
        m.rewind()  # like upstream, the Message comes back positioned at its end
        assert m.get_text() == "rsa-sha2-256"
    # Malformed signatures: False, never an exception.
    good = Message(key.sign_ssh_data(DATA).asbytes())
    alg, raw = good.get_text(), good.get_binary()
    bad = [b"", b"\x00\x00", b"\x00\x00\x00\x05ab", Message().add_string(alg).asbytes(),
           Message().add_string("ssh-foo").add_string(raw).asbytes(),
           Message().add_string(alg).add_string(raw[:-1]).asbytes(),
           Message().add_string(alg).add_string(raw + b"\x00").asbytes(),
           Message().add_string(alg).add_string(b"\xff" * len(raw)).asbytes()]
    for b in bad:
        assert key.verify_ssh_sig(DATA, Message(b)) is False


def _sshsig_signed_data(namespace: bytes, message: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA512())
    h.update(message)
    return (b"SSHSIG" + Message().add_string(namespace).add_string(b"").add_string("sha512")
            .add_string(h.finalize()).asbytes())


@needs_keygen
@pytest.mark.parametrize("s", SPECS, ids=[s.id for s in SPECS])
def test_signatures_interoperate_with_ssh_keygen_sshsig(keys, tmp_path, s):
    """Our signatures pass ``ssh-keygen -Y verify``; its ``-Y sign`` signatures pass ours."""
    path = keys[(s.id, "openssh", False)]
    key = PKey.from_path(path)
    ns = b"file"
    msg_file = tmp_path / "msg"
    msg_file.write_bytes(DATA)
    # ssh-keygen signs, we verify.
    run(KEYGEN, "-q", "-Y", "sign", "-f", str(path), "-n", "file", str(msg_file))
    armored = (tmp_path / "msg.sig").read_text().splitlines()
    blob = Message(base64.b64decode("".join(armored[1:-1])))
    assert blob.get_bytes(6) == b"SSHSIG" and blob.get_int() == 1
    assert blob.get_string() == key.asbytes()
    assert blob.get_string() == ns and blob.get_string() == b""
    assert blob.get_text() == "sha512"
    sig = blob.get_string()
    assert key.verify_ssh_sig(_sshsig_signed_data(ns, DATA), Message(sig))
    assert not key.verify_ssh_sig(_sshsig_signed_data(ns, DATA + b"x"), Message(sig))
    # We sign, ssh-keygen verifies.
    ours = key.sign_ssh_data(_sshsig_signed_data(ns, DATA)).asbytes()
    out = (b"SSHSIG" + struct.pack(">I", 1) + Message().add_string(key.asbytes())
           .add_string(ns).add_string(b"").add_string("sha512").add_string(ours).asbytes())
    b64 = base64.b64encode(out).decode()
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    sig_file = tmp_path / "ours.sig"
    sig_file.write_text("-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines)
                        + "\n-----END SSH SIGNATURE-----\n")
    allowed = tmp_path / "allowed"
    allowed.write_text(f"me {key.get_name()} {key.get_base64()}\n")
    verify = [KEYGEN, "-Y", "verify", "-f", str(allowed), "-I", "me", "-n", "file",
              "-s", str(sig_file)]
    assert subprocess.run(verify, input=DATA, capture_output=True, timeout=30).returncode == 0
    assert subprocess.run(verify, input=DATA + b"x", capture_output=True,
                          timeout=30).returncode != 0


# -- writing ----------------------------------------------------------------------------------
@needs_keygen
@pytest.mark.parametrize("s", SPECS, ids=[s.id for s in SPECS])
def test_written_keys_load_in_ssh_keygen(keys, tmp_path, s):
    key = PKey.from_path(keys[(s.id, "pem" if s.id != "ed25519" else "openssh", False)])
    want = f"{key.get_name()} {key.get_base64()}"
    for fmt in (PEM, OPENSSH):
        for pw in (None, PASSPHRASE):
            out = tmp_path / f"w_{fmt.name}_{bool(pw)}"
            out.write_text("old")
            os.chmod(out, 0o644)  # an existing, looser file must end up 0600
            key.write_private_key_file(str(out), password=pw, file_format=fmt)
            assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
            text = out.read_text()
            header = ("OPENSSH" if fmt is OPENSSH or s.id == "ed25519"
                      else "RSA" if s.id == "rsa" else "EC")
            assert text.startswith(f"-----BEGIN {header} PRIVATE KEY-----")
            got = run(KEYGEN, "-y", "-P", pw or "", "-f", str(out)).split()
            assert " ".join(got[:2]) == want
            assert PKey.from_path(out, passphrase=pw) == key
            if pw:
                with pytest.raises(PasswordRequiredException):
                    PKey.from_path(out)
    fresh = tmp_path / "fresh"
    key.write_private_key_file(fresh)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600
    text_out, bin_out = io.StringIO(), io.BytesIO()
    key.write_private_key(text_out, password="pw")
    key.write_private_key(bin_out, file_format=OPENSSH)
    assert s.cls.from_private_key(io.StringIO(text_out.getvalue()), password="pw") == key
    assert s.cls(file_obj=io.BytesIO(bin_out.getvalue())).can_sign()
    with pytest.raises(SSHException):
        key.write_private_key(io.StringIO(), file_format="PPK")


def test_generate():
    rsa_key = RSAKey.generate(1024)
    assert rsa_key.get_bits() == 1024 and rsa_key.can_sign()
    assert rsa_key.verify_ssh_sig(DATA, Message(rsa_key.sign_ssh_data(DATA).asbytes()))
    with pytest.raises(SSHException):
        RSAKey.generate(256)
    for kwargs, bits in (({}, 256), ({"bits": 384}, 384), ({"curve": ec.SECP521R1()}, 521)):
        k = ECDSAKey.generate(**kwargs)
        assert k.get_bits() == bits and k.get_name() == f"ecdsa-sha2-nistp{bits}"
        assert ECDSAKey(data=k.asbytes()).verify_ssh_sig(
            DATA, Message(k.sign_ssh_data(DATA).asbytes()))
    with pytest.raises(SSHException):
        ECDSAKey.generate(bits=123)
    with pytest.raises(SSHException):
        ECDSAKey.generate(curve=ec.SECP256K1())
    ed = Ed25519Key.generate()
    assert ed.can_sign() and Ed25519Key(data=ed.asbytes()) == ed
    assert ed != Ed25519Key.generate()


# -- certificates and PublicBlob ------------------------------------------------------------
@needs_keygen
def test_certificates(keys, tmp_path):
    ca = tmp_path / "ca"
    run(KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(ca))
    for sid in ("ed25519", "rsa", "ecdsa384"):
        src = keys[(sid, "openssh", False)]
        shutil.copy(src, tmp_path / sid)
        shutil.copy(src.with_suffix(".pub"), tmp_path / f"{sid}.pub")
        run(KEYGEN, "-q", "-s", str(ca), "-I", "cert-id", "-n", "alice", "-V", "+1h",
            str(tmp_path / f"{sid}.pub"))
    for sid in ("ed25519", "rsa", "ecdsa384"):
        cert_path = tmp_path / f"{sid}-cert.pub"
        cert_type, cert_b64 = cert_path.read_text().split()[:2]
        plain = PKey.from_path(tmp_path / sid)  # the -cert.pub beside it is picked up
        assert plain.public_blob is not None and plain.public_blob.key_type == cert_type
        assert cert_type == plain.get_name() + "-cert-v01@openssh.com"
        via_cert = PKey.from_path(cert_path)
        assert via_cert == plain and via_cert.public_blob == plain.public_blob
        blob = base64.b64decode(cert_b64)
        pub = PKey.from_type_string(cert_type, blob)
        assert pub == plain and pub.public_blob.key_blob == blob and not pub.can_sign()
        assert PublicBlob.from_string(cert_path.read_text()) == plain.public_blob
        assert PublicBlob.from_message(Message(blob)).key_blob == blob
        key = PKey.from_path(keys[(sid, "openssh", False)])
        assert key.public_blob is None  # the fixture's key has no cert beside it
        key.load_certificate(Message(blob))
        assert key.public_blob.key_blob == blob
    # A certificate of some other key is refused.
    with pytest.raises(SSHException, match="different public key"):
        Ed25519Key.generate().load_certificate(str(tmp_path / "ed25519-cert.pub"))
    ed = PKey.from_path(keys[("ed25519", "openssh", False)])
    with pytest.raises(SSHException, match="does not match key type"):
        ed.load_certificate(str(tmp_path / "rsa-cert.pub"))
    with pytest.raises(SSHException):
        ed.load_certificate("ssh-ed25519-cert-v01@openssh.com AAAA")


def test_public_blob_errors():
    blob = Ed25519Key.generate().asbytes()
    line = "ssh-ed25519 " + base64.b64encode(blob).decode() + " a comment"
    pb = PublicBlob.from_string(line)
    assert (pb.key_type, pb.key_blob, pb.comment) == ("ssh-ed25519", blob, "a comment")
    for bad in ("", "ssh-ed25519", "ssh-rsa " + base64.b64encode(blob).decode(),
                "ssh-ed25519 !!notbase64!!", "ssh-ed25519 AAAA"):
        with pytest.raises(SSHException):
            PublicBlob.from_string(bad)


# -- the host key registry -------------------------------------------------------------------
def test_registry_shape():
    assert hostkey.DEFAULT_HOSTKEY_ORDER == (
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "rsa-sha2-512", "rsa-sha2-256")
    assert set(hostkey.HOSTKEY_ALGORITHMS) == (set(hostkey.DEFAULT_HOSTKEY_ORDER) | {"ssh-rsa"}
                                               | set(hostkey.CERT_HOSTKEY_ORDER))
    cls, key_type, sig_alg = hostkey.HOSTKEY_ALGORITHMS["rsa-sha2-256"]
    assert (cls, key_type, sig_alg) == (RSAKey, "ssh-rsa", "rsa-sha2-256")
    assert hostkey.algorithms_for_key(RSAKey.generate(1024)) == [
        "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert hostkey.algorithms_for_key(Ed25519Key.generate()) == ["ssh-ed25519"]
    assert hostkey.algorithms_for_key(ECDSAKey.generate(bits=384)) == ["ecdsa-sha2-nistp384"]


def test_verify_signature_accepts_and_rejects():
    rsa_key, ed, ec256 = RSAKey.generate(1024), Ed25519Key.generate(), ECDSAKey.generate()
    for key in (rsa_key, ed, ec256):
        for alg in hostkey.algorithms_for_key(key):
            sig = hostkey.sign_data(alg, key, DATA)
            assert hostkey.verify_signature(alg, key.asbytes(), DATA, sig) is True
            assert hostkey.verify_signature(alg, key.asbytes(), DATA + b"!", sig) is False
            assert hostkey.verify_signature(alg, key.asbytes(), DATA, sig + b"\x00") is False
            m = Message(sig)
            name, raw = m.get_text(), m.get_binary()
            flipped = raw[:-1] + bytes([raw[-1] ^ 1])
            tampered = Message().add_string(name).add_string(flipped).asbytes()
            assert hostkey.verify_signature(alg, key.asbytes(), DATA, tampered) is False
    blob = rsa_key.asbytes()
    # Negotiated rsa-sha2-512 but signed with SHA-1 ssh-rsa (or SHA-256): refused.
    sha1_sig = rsa_key.sign_ssh_data(DATA, "ssh-rsa").asbytes()
    sha256_sig = rsa_key.sign_ssh_data(DATA, "rsa-sha2-256").asbytes()
    assert hostkey.verify_signature("rsa-sha2-512", blob, DATA, sha1_sig) is False
    assert hostkey.verify_signature("rsa-sha2-512", blob, DATA, sha256_sig) is False
    assert hostkey.verify_signature("ssh-rsa", blob, DATA, sha1_sig) is True
    # The key's type must fit the algorithm.
    ed_sig = hostkey.sign_data("ssh-ed25519", ed, DATA)
    assert hostkey.verify_signature("ecdsa-sha2-nistp256", ed.asbytes(), DATA, ed_sig) is False
    with pytest.raises(SSHException):
        hostkey.sign_data("rsa-sha2-512", ed, DATA)
    with pytest.raises(SSHException):
        hostkey.verify_signature("ssh-dss", blob, DATA, sha1_sig)
    for garbage_sig in (b"", b"\xff\xff\xff\xff", b"\x00\x00\x00\x0cssh-ed25519",
                        os.urandom(100)):
        assert hostkey.verify_signature("ssh-ed25519", ed.asbytes(), DATA, garbage_sig) is False
    for garbage_key in (b"", b"\x00\x00\x00\x0bssh-ed25519", blob[:-3], blob + b"\x00",
                        b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x05short"):
        with pytest.raises(SSHException):
            hostkey.verify_signature("rsa-sha2-512", garbage_key, DATA, sha1_sig)


def test_malformed_ecdsa_and_rsa_blobs():
    k = ECDSAKey.generate()
    point = k.asbytes()[-65:]
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    wrong_curve = Message().add_string("ecdsa-sha2-nistp256").add_string("nistp384") \
        .add_string(point).asbytes()
    bad_point = Message().add_string("ecdsa-sha2-nistp256").add_string("nistp256") \
        .add_string(off_curve).asbytes()
    for blob in (wrong_curve, bad_point):
        with pytest.raises(SSHException):
            hostkey.key_from_blob(blob)
    neg = Message().add_string("ssh-rsa").add_mpint(-3).add_mpint(12345).asbytes()
    with pytest.raises(SSHException):
        RSAKey(data=neg)
    with pytest.raises(SSHException):
        Ed25519Key(data=k.asbytes())  # an ECDSA blob is not an Ed25519 one


@needs_keygen
def test_fuzzed_inputs_raise_only_sshexception(keys):
    """Random corruption of blobs and key files: success or SSHException, nothing foreign."""
    rng = random.Random(1234)
    samples = [base64.b64decode(keys[(s.id, "openssh", False)].with_suffix(".pub")
                                .read_text().split()[1]) for s in SPECS]
    files = [keys[c].read_bytes() for c in (("rsa", "pem", False), ("ecdsa256", "pkcs8", False),
                                             ("ed25519", "openssh", False),
                                             ("ecdsa384", "openssh", False))]

    def mutate(b: bytes) -> bytes:
        b = bytearray(b)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            i = rng.randrange(len(b)) if b else 0
            if op < 0.5 and b:
                b[i] = rng.randrange(256)
            elif op < 0.8:
                del b[i:i + rng.randint(1, 8)]
            else:
                b[i:i] = os.urandom(rng.randint(1, 8))
        return bytes(b)

    for _ in range(300):
        blob = mutate(rng.choice(samples))
        try:
            key = hostkey.key_from_blob(blob)
        except SSHException:
            continue
        assert hostkey.verify_signature(hostkey.algorithms_for_key(key)[0], blob, DATA,
                                        mutate(blob)) is False
    for _ in range(150):
        text = rng.choice(files)
        head, body = text.split(b"\n", 1)
        data = head + b"\n" + mutate(body)
        try:
            PKey.from_private_key(io.BytesIO(data))
        except SSHException:
            pass
