"""The Kafka preflight: one connection made the way kafka-python makes it, before any client.

Why it exists (kafka-python 3.0.12): a client retries a refused TLS handshake or SASL login
until its bootstrap timeout (30 s) and then raises only ``KafkaTimeoutError('Unable to
bootstrap')``; the cause is logged, never raised. It also drops a response that arrives
together with the broker's close, which is how a failed SCRAM login ends, so most attempts
read as "socket disconnected". This check opens one blocking connection with kafka-python's
own TLS context, request codec and SASL mechanisms, so it meets the very refusal the clients
would meet, reads it whole, and :mod:`pipeline.config.refusals` says what it is in one line. Then it
asks the broker which operations the principal may perform on the command's topics (Metadata
with authorized operations, KIP-430), so a missing grant is named before anything is read or
written, not at the first alert hours later.

A broker that cannot be reached, or answers in a way this check does not expect, is not a
refusal: the check logs and returns, and the clients wait and retry as they always do.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from kafka import errors as kafka_errors
from kafka.net.sasl import get_sasl_mechanism
from kafka.net.transport import KafkaSSLTransport
from kafka.protocol.broker_version_data import BrokerVersionData
from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

from detectors.errors import DriftwireError
from pipeline.config import Config, Secrets
from pipeline.config.grants import Command, KafkaGrant, kafka_grants
from pipeline.config.refusals import Refused, explain_kafka, missing_grant, tls_expected
from pipeline.kafka.client import client_settings
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.kafka")

OPERATION_BITS = {"READ": 3, "WRITE": 4, "DESCRIBE": 8}  # Kafka's AclOperation codes
_UNKNOWN_OPERATIONS = -(2**31)  # the broker did not report them


class _Inconclusive(DriftwireError):
    """The check could not tell (an unexpected answer): not a refusal."""


class _SpeaksTLS(Exception):
    """A TLS record came back on a connection without TLS."""


class _Wire:
    """Blocking request/response over one socket with kafka-python's codec."""

    def __init__(self, sock: socket.socket, client_id: str) -> None:
        self.sock = sock
        self.codec = KafkaProtocol(client_id=client_id)
        self.versions: BrokerVersionData | None = None

    def call(self, request: Any) -> Any:
        if self.versions is not None:
            request.API_VERSION = self.versions.api_version(request)
        self.codec.send_request(request)
        self.sock.sendall(self.codec.send_bytes())
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise _Inconclusive("the broker closed the connection")
            if data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03" and not isinstance(self.sock, ssl.SSLSocket):
                raise _SpeaksTLS  # a TLS record (alert or handshake) where a Kafka frame should be
            responses = self.codec.receive_bytes(data)
            if responses:
                return responses[0][1]

    def negotiate(self) -> None:
        version = ApiVersionsRequest.max_version
        for _ in range(2):
            response = self.call(ApiVersionsRequest(version=version, client_software_name="driftwire",
                                                    client_software_version="preflight"))
            if response.error_code == 0:
                self.versions = BrokerVersionData(
                    api_versions={v.api_key: (v.min_version, v.max_version) for v in response.api_keys})
                return
            version = min((v.max_version for v in response.api_keys if v.api_key == ApiVersionsRequest.API_KEY),
                          default=0)
        raise _Inconclusive("ApiVersions was not accepted")

    def login(self, settings: dict[str, Any], host: str) -> None:
        """SASL as kafka-python does it (handshake v1, then SaslAuthenticate until done)."""
        name = settings["sasl_mechanism"]
        response = self.call(SaslHandshakeRequest(mechanism=name, max_version=1))
        if response.error_code != 0:
            raise kafka_errors.for_code(response.error_code)()
        if name not in response.mechanisms:
            raise kafka_errors.UnsupportedSaslMechanismError(f"the broker offers {list(response.mechanisms)}")
        if response.API_VERSION < 1:
            raise _Inconclusive("SASL handshake v0 (a broker before 1.0)")
        mechanism = get_sasl_mechanism(name)(host=host, **settings)
        while not mechanism.is_done():
            reply = self.call(SaslAuthenticateRequest(mechanism.auth_bytes()))
            if reply.error_code != 0:
                raise kafka_errors.SaslAuthenticationFailedError(reply.error_message or "")
            mechanism.receive(reply.auth_bytes)

    def operations(self, topics: list[str]) -> dict[str, tuple[int, set[int] | None]]:
        """(error code, the AclOperation codes authorized, None when not reported) per topic."""
        topic = MetadataRequest.MetadataRequestTopic
        response = self.call(MetadataRequest(topics=[topic(name=t) for t in topics], allow_auto_topic_creation=False,
                                             include_topic_authorized_operations=True, min_version=8))
        return {t.name: (t.error_code, _codes(t.authorized_operations)) for t in response.topics}


def _codes(field: object) -> set[int] | None:
    """kafka-python decodes the bit field into a set of bit numbers (None: not reported)."""
    if isinstance(field, int):
        return None if field == _UNKNOWN_OPERATIONS else {i for i in range(32) if field >> i & 1}
    return None if field is None else {int(c) for c in field}  # type: ignore[attr-defined]


def preflight(config: Config, secrets: Secrets, command: Command, timeout_s: float = 10.0) -> None:
    """Raise :class:`Refused` with the one line to show when the broker refuses this client."""
    settings = client_settings(config, secrets)
    for server in settings["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        try:
            sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        except (OSError, ValueError):
            continue
        try:
            _check(sock, host, server, config, settings, command)
        except Refused:
            raise
        except _SpeaksTLS as exc:
            raise Refused(tls_expected(server)) from exc
        except Exception as exc:  # the check must never stop a command it cannot judge
            reason = explain_kafka(exc, config, command, server)
            if reason:
                raise Refused(reason) from exc
            log.warning("kafka_preflight_inconclusive", server=server, error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            sock.close()
        return
    log.warning("kafka_preflight_unreachable", bootstrap_servers=config.kafka.bootstrap_servers)


def _check(sock: socket.socket, host: str, server: str, config: Config, settings: dict[str, Any],
           command: Command) -> None:
    if config.kafka.security_protocol in ("SSL", "SASL_SSL"):
        tls = {**KafkaSSLTransport.DEFAULT_CONFIG, **{k: v for k, v in settings.items() if k.startswith("ssl_")}}
        context = KafkaSSLTransport._build_ssl_context(tls)
        sock = context.wrap_socket(sock, server_hostname=host.rstrip("."))  # the handshake: may raise SSLError
    with sock:
        wire = _Wire(sock, settings["client_id"])
        wire.negotiate()
        if config.kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            wire.login(settings, host)
        topics = [g for g in kafka_grants(config, command) if g.resource == "TOPIC"]
        found = wire.operations([g.name for g in topics])
    for grant in topics:
        error, codes = found.get(grant.name, (0, None))
        lacking = _lacking(grant, error, codes)
        if lacking:
            raise Refused(missing_grant(config, grant, lacking))


def _lacking(grant: KafkaGrant, error: int, codes: set[int] | None) -> tuple[str, ...]:
    """The operations of ``grant`` the broker says this principal lacks (none if it cannot tell)."""
    if error == kafka_errors.TopicAuthorizationFailedError.errno:
        return grant.operations
    if error != 0 or codes is None:  # unknown topic: the clients report it as they always did
        return ()
    return tuple(op for op in grant.operations if OPERATION_BITS[op] not in codes)

