"""Sans-IO SSH transport layer (RFC 4253): version exchange, algorithm negotiation, key
exchange with strict-kex (the Terrapin fix), NEWKEYS, rekeying and ext-info.

Bytes go in through :meth:`TransportCore.receive_data`, events come out; bytes to write are
collected with :meth:`TransportCore.data_to_send`. No sockets, threads or clocks live here: the
driver passes the time in where a decision needs it (:meth:`TransportCore.tick`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from paramiko import common as c
from paramiko._core import hostkey as hostkey_registry
from paramiko._core import kex as kex_registry
from paramiko._core.ciphers import CIPHERS, MACS
from paramiko._core.packet import PacketCodec
from paramiko.message import Message
from paramiko.ssh_exception import IncompatiblePeer, MessageOrderError, SSHException

STRICT_KEX_CLIENT = "kex-strict-c-v00@openssh.com"
STRICT_KEX_SERVER = "kex-strict-s-v00@openssh.com"
EXT_INFO_CLIENT = "ext-info-c"
EXT_INFO_SERVER = "ext-info-s"
_MARKERS = {STRICT_KEX_CLIENT, STRICT_KEX_SERVER, EXT_INFO_CLIENT, EXT_INFO_SERVER}

MAX_BANNER_LINES = 1024  # lines tolerated before the version string
MAX_LINE = 8192
# Messages that may be sent while a key exchange runs (RFC 4253 7.1): transport generic
# messages and the kex messages themselves. Everything else waits for NEWKEYS.
_KEX_SAFE = frozenset({1, 2, 3, 4}) | frozenset(range(20, 50))


# -- events ------------------------------------------------------------------------------
@dataclass
class VersionReceived:
    version: str
    pre_banner: List[str] = field(default_factory=list)


@dataclass
class KexStarted:
    first: bool


@dataclass
class KexFinished:
    first: bool
    host_key_blob: bytes


@dataclass
class ExtInfoReceived:
    extensions: Dict[str, bytes]


@dataclass
class PacketReceived:
    ptype: int
    payload: bytes  # full payload including the message-number byte


@dataclass
class PeerDisconnected:
    code: int
    description: str


@dataclass
class DebugReceived:
    always_display: bool
    text: str


@dataclass
class UnimplementedReceived:
    seq: int


@dataclass
class Preferences:
    """What we offer, in preference order (already filtered by disabled_algorithms)."""

    kex: Sequence[str]
    key_types: Sequence[str]
    ciphers: Sequence[str]
    macs: Sequence[str]
    compression: Sequence[str]


@dataclass
class Negotiated:
    kex: str
    host_key: str
    cipher_out: str
    cipher_in: str
    mac_out: Optional[str]
    mac_in: Optional[str]
    compression_out: str
    compression_in: str


def _kexinit_lists(payload: bytes) -> Tuple[List[List[str]], bool]:
    m = Message(payload)
    m.get_byte()
    m.get_bytes(16)
    lists = [m.get_list() for _ in range(10)]
    follows = m.get_boolean()
    m.get_int()
    return lists, follows


def _pick(ours_client_order: Sequence[str], theirs: Sequence[str], what: str,
          client_list: Sequence[str], server_list: Sequence[str]) -> str:
    theirs_set = set(theirs)
    for name in ours_client_order:
        if name in theirs_set:
            return name
    raise IncompatiblePeer(
        f"no matching {what} algorithm (client offered {','.join(client_list) or '-'}; "
        f"server offered {','.join(server_list) or '-'})")


class TransportCore:
    """One SSH connection's transport layer, client or server side."""

    def __init__(self, is_server: bool, local_version: str,
                 preferences: Callable[[], Preferences],
                 server_keys: Optional[Dict[str, object]] = None,
                 strict_kex: bool = True, server_sig_algs: Optional[Sequence[str]] = None,
                 moduli=None, peer_name: str = "peer",
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self.is_server = is_server
        self.local_version = local_version
        self.remote_version: Optional[str] = None
        self._preferences = preferences
        self.server_keys = server_keys if server_keys is not None else {}
        self.strict_kex_wanted = strict_kex
        self.server_sig_algs = list(server_sig_algs) if server_sig_algs else []
        self.moduli = moduli
        self.peer_name = peer_name
        self._random = random

        self.codec = PacketCodec()
        self._inbuf = bytearray()  # raw bytes before the version line is complete
        self._pre_banner: List[str] = []
        self._out = bytearray()
        self._queued: List[bytes] = []  # payloads held back until the running kex ends

        self.session_id: Optional[bytes] = None
        self.negotiated: Optional[Negotiated] = None
        self.host_key_blob: Optional[bytes] = None
        self.strict = False
        self.kex_count = 0  # completed key exchanges
        self.server_extensions: Dict[str, bytes] = {}
        self.remote_kexinit_markers: set = set()

        self._local_kexinit: Optional[bytes] = None
        self._remote_kexinit: Optional[bytes] = None
        self._kex = None
        self._kex_done_waiting_newkeys = False
        self._newkeys_sent = False
        self._pending_keys_in = None
        self._ignore_next_kex_packet = False
        self._packets_received = 0
        self._ext_info_sent = False
        self._delayed_compression = False

        self.rekey_bytes = 1 << 30
        self.rekey_packets = 1 << 28
        self.rekey_interval: Optional[float] = None
        self._last_kex_time: Optional[float] = None
        self.closed = False

        self._out += (local_version + "\r\n").encode("ascii")
        self._send_kexinit()

    # -- public state ---------------------------------------------------------------------
    @property
    def in_kex(self) -> bool:
        """True from our KEXINIT until both NEWKEYS messages have passed."""
        return self._local_kexinit is not None

    @property
    def initial_kex_done(self) -> bool:
        return self.kex_count > 0

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def has_output(self) -> bool:
        return bool(self._out)

    # -- sending --------------------------------------------------------------------------
    def send_payload(self, payload: bytes) -> None:
        """Encode ``payload`` now, or hold it until the running key exchange ends."""
        if self.closed:
            raise SSHException(f"connection to {self.peer_name} is closed")
        if self._local_kexinit is not None and not self._newkeys_sent \
                and payload[0] not in _KEX_SAFE:
            self._queued.append(payload)
            return
        if self._queued and payload[0] not in _KEX_SAFE:
            self._queued.append(payload)
            return
        self._encode(payload)

    def _encode(self, payload: bytes) -> None:
        self._out += self.codec.encode(payload)
        if (self._local_kexinit is None and self.kex_count
                and (self.codec.out_bytes >= self.rekey_bytes
                     or self.codec.out_packets >= self.rekey_packets)):
            self.start_rekey()

    def start_rekey(self) -> bool:
        """Begin a key re-exchange unless one is already running; True if started."""
        if self._local_kexinit is not None or not self.kex_count or self.closed:
            return False
        self._send_kexinit()
        return True

    def tick(self, now: float) -> None:
        """Time-based rekey: the driver calls this now and then with a monotonic clock."""
        if self._last_kex_time is None:
            self._last_kex_time = now
        if (self.rekey_interval and self.kex_count and self._local_kexinit is None
                and now - self._last_kex_time >= self.rekey_interval):
            self._last_kex_time = now
            self.start_rekey()

    def enable_delayed_compression(self) -> None:
        """zlib@openssh.com starts after user authentication succeeds."""
        self._delayed_compression = True
        self.codec.enable_delayed_compression()

    def disconnect(self, code: int, description: str) -> None:
        """Queue a DISCONNECT message; nothing more may be sent afterwards."""
        if self.closed:
            return
        m = Message()
        m.add_byte(c.cMSG_DISCONNECT).add_int(code).add_string(description).add_string("")
        try:
            self._out += self.codec.encode(m.asbytes())
        finally:
            self.closed = True

    # -- kex ------------------------------------------------------------------------------
    def _send_kexinit(self) -> None:
        prefs = self._preferences()
        kex = list(prefs.kex)
        first = self.kex_count == 0
        if first:
            if self.is_server:
                if self.strict_kex_wanted:
                    kex.append(STRICT_KEX_SERVER)
            else:
                kex.append(EXT_INFO_CLIENT)
                if self.strict_kex_wanted:
                    kex.append(STRICT_KEX_CLIENT)
        if self.is_server:
            key_types = hostkey_registry.server_algorithms(prefs.key_types,
                                                           self.server_keys.values())
            kex = [k for k in kex if k != "diffie-hellman-group-exchange-sha256" or self.moduli]
        else:
            key_types = list(prefs.key_types)
        m = Message()
        m.add_byte(c.cMSG_KEXINIT)
        m.add_bytes(self._random(16))
        m.add_list(kex)
        m.add_list(key_types)
        m.add_list(prefs.ciphers)
        m.add_list(prefs.ciphers)
        m.add_list(prefs.macs)
        m.add_list(prefs.macs)
        m.add_list(prefs.compression)
        m.add_list(prefs.compression)
        m.add_list([])
        m.add_list([])
        m.add_boolean(False)
        m.add_int(0)
        self._local_kexinit = m.asbytes()
        self._newkeys_sent = False
        self._out += self.codec.encode(self._local_kexinit)

    def _server_key_for(self, algorithm: str):
        spec = hostkey_registry.HOSTKEY_ALGORITHMS.get(algorithm)
        if spec is None:
            return None
        for key in self.server_keys.values():
            if algorithm in hostkey_registry.algorithms_for_key(key):
                return key
        return None

    def _negotiate(self) -> Negotiated:
        assert self._local_kexinit is not None and self._remote_kexinit is not None
        local, _ = _kexinit_lists(self._local_kexinit)
        remote, follows = _kexinit_lists(self._remote_kexinit)
        client, server = (remote, local) if self.is_server else (local, remote)
        if self.kex_count == 0:
            self.remote_kexinit_markers = set(remote[0]) & _MARKERS
            if self.strict_kex_wanted:
                marker = STRICT_KEX_CLIENT if self.is_server else STRICT_KEX_SERVER
                self.strict = marker in remote[0]
        ckex = [k for k in client[0] if k not in _MARKERS]
        skex = [k for k in server[0] if k not in _MARKERS]
        kex = _pick(ckex, skex, "key exchange", ckex, skex)
        hk = _pick(client[1], server[1], "host key", client[1], server[1])
        enc_cs = _pick(client[2], server[2], "client-to-server cipher", client[2], server[2])
        enc_sc = _pick(client[3], server[3], "server-to-client cipher", client[3], server[3])

        def mac_for(cipher: str, cl: List[str], sl: List[str], what: str) -> Optional[str]:
            if CIPHERS[cipher].is_aead:
                return None
            return _pick(cl, sl, what, cl, sl)

        mac_cs = mac_for(enc_cs, client[4], server[4], "client-to-server MAC")
        mac_sc = mac_for(enc_sc, client[5], server[5], "server-to-client MAC")
        comp_cs = _pick(client[6], server[6], "client-to-server compression", client[6],
                        server[6])
        comp_sc = _pick(client[7], server[7], "server-to-client compression", client[7],
                        server[7])
        if follows:
            # The peer guessed; if its guess (its first kex and host key choice) is wrong we
            # must drop the kex packet it already sent (RFC 4253 7.1).
            guess_ok = (remote[0] and remote[0][0] == kex) and (remote[1] and
                                                               remote[1][0] == hk)
            self._ignore_next_kex_packet = not guess_ok
        if self.is_server:
            return Negotiated(kex, hk, enc_sc, enc_cs, mac_sc, mac_cs, comp_sc, comp_cs)
        return Negotiated(kex, hk, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc)

    def _start_kex_algorithm(self) -> None:
        neg = self.negotiated
        assert neg is not None
        client_kexinit, server_kexinit = (
            (self._remote_kexinit, self._local_kexinit) if self.is_server
            else (self._local_kexinit, self._remote_kexinit))
        client_version, server_version = (
            (self.remote_version, self.local_version) if self.is_server
            else (self.local_version, self.remote_version))
        host_key = (hostkey_registry.kex_host_key(neg.host_key,
                                                  self._server_key_for(neg.host_key))
                    if self.is_server else None)
        ctx = kex_registry.KexContext(
            is_server=self.is_server,
            client_version=client_version.encode("utf-8"),
            server_version=server_version.encode("utf-8"),
            client_kexinit=client_kexinit,
            server_kexinit=server_kexinit,
            host_key=host_key,
            host_key_algorithm=neg.host_key,
            moduli=self.moduli,
        )
        cls = kex_registry.KEX_ALGORITHMS[neg.kex]
        self._kex = cls(ctx)
        for payload in self._kex.start():
            self._out += self.codec.encode(payload)

    def _kex_algorithm_done(self) -> None:
        kex = self._kex
        result = kex.result
        neg = self.negotiated
        if not self.is_server:
            try:
                ok = hostkey_registry.verify_signature(neg.host_key, result.host_key_blob,
                                                       result.H, result.signature)
            except SSHException as err:  # unusable host key or certificate
                err.phase, err.peer = "hostkey", self.peer_name
                raise
            if not ok:
                err = SSHException(
                    f"host key signature from {self.peer_name} does not verify "
                    f"({neg.host_key})")
                err.phase, err.peer = "hostkey", self.peer_name
                raise err
        self.host_key_blob = result.host_key_blob
        if self.session_id is None:
            self.session_id = result.H
        self._keys = self._derive(result)
        self._out += self.codec.encode(c.cMSG_NEWKEYS)
        self._newkeys_sent = True
        self._apply_keys(outbound=True)
        if self.strict:
            self.codec.reset_outbound_seq()
        if (self.is_server and self.kex_count == 0 and not self._ext_info_sent
                and EXT_INFO_CLIENT in self.remote_kexinit_markers and self.server_sig_algs):
            self._ext_info_sent = True
            m = Message()
            m.add_byte(c.cMSG_EXT_INFO).add_int(1)
            m.add_string("server-sig-algs").add_string(",".join(self.server_sig_algs))
            self._out += self.codec.encode(m.asbytes())
        # Anything held back during the exchange may go out now, under the new keys.
        queued, self._queued = self._queued, []
        for payload in queued:
            self._out += self.codec.encode(payload)

    def _derive(self, result) -> Dict[str, bytes]:
        neg = self.negotiated
        K, H, sid, hn = result.K, result.H, self.session_id, result.hash_name

        def d(letter: bytes, n: int) -> bytes:
            return kex_registry.derive_key(hn, K, H, letter, sid, n) if n else b""

        c2s_cipher = neg.cipher_in if self.is_server else neg.cipher_out
        s2c_cipher = neg.cipher_out if self.is_server else neg.cipher_in
        c2s_mac = neg.mac_in if self.is_server else neg.mac_out
        s2c_mac = neg.mac_out if self.is_server else neg.mac_in
        keys = {
            "iv_cs": d(b"A", CIPHERS[c2s_cipher].iv_size),
            "iv_sc": d(b"B", CIPHERS[s2c_cipher].iv_size),
            "key_cs": d(b"C", CIPHERS[c2s_cipher].key_size),
            "key_sc": d(b"D", CIPHERS[s2c_cipher].key_size),
            "mac_cs": d(b"E", MACS[c2s_mac].key_size) if c2s_mac else b"",
            "mac_sc": d(b"F", MACS[s2c_mac].key_size) if s2c_mac else b"",
        }
        return keys

    def _apply_keys(self, outbound: bool) -> None:
        neg, k = self.negotiated, self._keys
        mine_cs = not self.is_server  # the client writes client-to-server
        if outbound:
            d = "cs" if mine_cs else "sc"
            self.codec.set_outbound(neg.cipher_out, k["key_" + d], k["iv_" + d], neg.mac_out,
                                    k["mac_" + d] or None, neg.compression_out)
        else:
            d = "sc" if mine_cs else "cs"
            self.codec.set_inbound(neg.cipher_in, k["key_" + d], k["iv_" + d], neg.mac_in,
                                   k["mac_" + d] or None, neg.compression_in)
        if self._delayed_compression:
            self.codec.enable_delayed_compression()

    # -- receiving ------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> list:
        """Consume bytes from the peer; return the events they complete."""
        events: list = []
        if self.remote_version is None:
            self._inbuf += data
            if not self._read_version(events):
                return events
            data = bytes(self._inbuf)
            self._inbuf.clear()
        if data:
            self.codec.feed(data)
        while not self.closed:
            payload = self.codec.next_payload()
            if payload is None:
                break
            self._handle_packet(payload, events)
        if (self._local_kexinit is None and self.kex_count and not self.closed
                and (self.codec.in_bytes >= self.rekey_bytes
                     or self.codec.in_packets >= self.rekey_packets)):
            self.start_rekey()
        return events

    def _read_version(self, events: list) -> bool:
        while True:
            nl = self._inbuf.find(b"\n")
            if nl < 0:
                if len(self._inbuf) > MAX_LINE:
                    raise self._banner_error("line too long before the version string")
                return False
            line = bytes(self._inbuf[:nl]).rstrip(b"\r")
            del self._inbuf[:nl + 1]
            text = line.decode("utf-8", "replace")
            if text.startswith("SSH-"):
                proto = text.split("-", 2)
                if len(proto) < 3 or proto[1] not in ("2.0", "1.99"):
                    err = IncompatiblePeer(
                        f"{self.peer_name} speaks an unsupported protocol version: {text!r}")
                    err.phase, err.peer = "banner", self.peer_name
                    raise err
                self.remote_version = text
                events.append(VersionReceived(text, list(self._pre_banner)))
                return True
            self._pre_banner.append(text)
            if len(self._pre_banner) > MAX_BANNER_LINES:
                raise self._banner_error(f"more than {MAX_BANNER_LINES} lines before the "
                                         "version string")

    def _banner_error(self, reason: str) -> SSHException:
        err = SSHException(f"Error reading SSH protocol banner from {self.peer_name}: {reason}")
        err.phase, err.peer = "banner", self.peer_name
        return err

    def _order_error(self, ptype: int, why: str) -> MessageOrderError:
        name = c.MSG_NAMES.get(ptype, str(ptype))
        err = MessageOrderError(f"unexpected {name} message (type {ptype}) from "
                                f"{self.peer_name} {why}")
        err.phase, err.peer = "kex", self.peer_name
        return err

    def _handle_packet(self, payload: bytes, events: list) -> None:
        if not payload:
            raise SSHException(f"empty packet from {self.peer_name}")
        ptype = payload[0]
        first_packet = self._packets_received == 0
        self._packets_received += 1
        initial_kex = self.kex_count == 0
        if first_packet and ptype != c.MSG_KEXINIT and self.strict_kex_wanted:
            # Strictness is only known after KEXINIT, but a strict peer always sends it first;
            # anything else first is tolerated only when the peer turns out not to be strict.
            self._early_non_kexinit = True
        if initial_kex and self.strict and ptype not in (c.MSG_KEXINIT, c.MSG_NEWKEYS) \
                and not (30 <= ptype <= 49):
            raise self._order_error(ptype, "during the initial strict key exchange")

        if ptype == c.MSG_KEXINIT:
            self._on_kexinit(payload, events)
        elif 30 <= ptype <= 49:
            self._on_kex_message(ptype, payload, events)
        elif ptype == c.MSG_NEWKEYS:
            self._on_newkeys(events)
        elif ptype == c.MSG_DISCONNECT:
            m = Message(payload[1:])
            code = m.get_int()
            desc = m.get_text()
            self.closed = True
            events.append(PeerDisconnected(code, desc))
        elif ptype == c.MSG_IGNORE:
            pass
        elif ptype == c.MSG_DEBUG:
            m = Message(payload[1:])
            events.append(DebugReceived(m.get_boolean(), m.get_text()))
        elif ptype == c.MSG_UNIMPLEMENTED:
            events.append(UnimplementedReceived(Message(payload[1:]).get_int()))
        elif ptype == c.MSG_EXT_INFO:
            self._on_ext_info(payload, events)
        elif initial_kex:
            raise self._order_error(ptype, "before the first key exchange completed")
        else:
            events.append(PacketReceived(ptype, payload))

    def _on_kexinit(self, payload: bytes, events: list) -> None:
        if self._remote_kexinit is not None:
            raise self._order_error(c.MSG_KEXINIT, "while a key exchange is already running")
        if self.kex_count == 0 and self._packets_received != 1:
            # With strict kex the peer's KEXINIT must be its very first packet.
            _lists, _ = _kexinit_lists(payload)
            marker = STRICT_KEX_CLIENT if self.is_server else STRICT_KEX_SERVER
            if self.strict_kex_wanted and marker in _lists[0]:
                raise self._order_error(c.MSG_KEXINIT, "is not the first packet under strict "
                                                       "key exchange")
        try:
            _kexinit_lists(payload)
        except SSHException as e:
            raise SSHException(f"malformed KEXINIT from {self.peer_name}: {e}") from e
        self._remote_kexinit = payload
        started_here = self._local_kexinit is None
        if started_here:
            self._send_kexinit()
        events.append(KexStarted(first=self.kex_count == 0))
        try:
            self.negotiated = self._negotiate()
        except IncompatiblePeer as e:
            e.phase, e.peer = "kex", self.peer_name
            e.args = (f"{e.args[0]} [peer {self.peer_name}]",)
            raise
        self._start_kex_algorithm()

    def _on_kex_message(self, ptype: int, payload: bytes, events: list) -> None:
        if self._kex is None or self._kex_done_waiting_newkeys:
            raise self._order_error(ptype, "outside a key exchange")
        if self._ignore_next_kex_packet:
            self._ignore_next_kex_packet = False
            return
        if ptype not in self._kex.expected_types:
            raise self._order_error(ptype, f"during {self.negotiated.kex}")
        m = Message(payload)
        m.get_byte()
        try:
            replies = self._kex.handle(ptype, m)
        except SSHException as e:
            if e.phase is None:
                e.phase, e.peer = "kex", self.peer_name
            raise
        for reply in replies:
            self._out += self.codec.encode(reply)
        if self._kex.done:
            self._kex_done_waiting_newkeys = True
            self._kex_algorithm_done()

    def _on_newkeys(self, events: list) -> None:
        if not self._kex_done_waiting_newkeys:
            raise self._order_error(c.MSG_NEWKEYS, "before the key exchange finished")
        self._apply_keys(outbound=False)
        if self.strict:
            self.codec.reset_inbound_seq()
        first = self.kex_count == 0
        self.kex_count += 1
        self._kex = None
        self._kex_done_waiting_newkeys = False
        self._local_kexinit = None
        self._remote_kexinit = None
        self._newkeys_sent = False
        events.append(KexFinished(first=first, host_key_blob=self.host_key_blob))

    def _on_ext_info(self, payload: bytes, events: list) -> None:
        m = Message(payload[1:])
        count = m.get_int()
        if count > 1024:
            raise SSHException(f"EXT_INFO from {self.peer_name} claims {count} extensions")
        ext = {}
        for _ in range(count):
            name = m.get_text()
            ext[name] = m.get_string()
        self.server_extensions.update(ext)
        events.append(ExtInfoReceived(ext))
