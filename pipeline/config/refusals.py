"""Refusals: what Kafka and Redis failures mean, in one line, naming the setting to look at.

A refusal is a failure that retrying the same request cannot cure: a wrong password, a
certificate this client does not trust (unknown CA, expired, another host's), a server that
does not speak TLS, a missing ACL. Every place that catches a client error asks this module
first; a refusal becomes :class:`Refused` (the command exits with the line, status 2), any
other error stays what it was (unavailable: retried). The mapping lives here and nowhere else.

Where the clients surface them (kafka-python 3.0.12, redis-py 8): kafka-python retries a
refused TLS handshake or SASL login until its bootstrap timeout and then raises only
``KafkaTimeoutError('Unable to bootstrap')``, so those are found by the preflight
(:mod:`pipeline.kafka.preflight`), which sees the ``ssl.SSLCertVerificationError`` or the
``SaslAuthenticateResponse`` itself; ACLs surface as ``TopicAuthorizationFailedError`` (a
send, a fetch), ``GroupAuthorizationFailedError`` (a poll) and, for the idempotent producer's
InitProducerId, a plain ``KafkaError`` naming ``ClusterAuthorizationFailedError``. redis-py
raises ``AuthenticationError`` (WRONGPASS, NOAUTH), ``NoPermissionError`` (NOPERM: a command
or a key outside the user's ACL), a ``ResponseError`` from a script calling a command the
user may not run, and ``ConnectionError`` caused by ``ssl.SSLCertVerificationError``.

>>> from pipeline.config import parse_config
>>> from kafka.errors import TopicAuthorizationFailedError
>>> explain_kafka(TopicAuthorizationFailedError({"ml.drift-alerts"}), parse_config({}, environ={}), "run")
"kafka refused topic 'ml.drift-alerts' (kafka.topics.alerts) to this client: it needs WRITE and DESCRIBE on that \
topic"
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator

from kafka import errors as kafka_errors
from redis import exceptions as redis_errors

from detectors.errors import DriftwireError
from pipeline.config.grants import Command, KafkaGrant, kafka_grants
from pipeline.config.settings import Config, RedisSettings

# OpenSSL X509 verify codes (the ones a client meets)
_EXPIRED, _NOT_YET_VALID = 10, 9
_WRONG_HOST = (62, 64)  # hostname mismatch, IP address mismatch
_UNTRUSTED = (2, 18, 19, 20, 21)  # no issuer, self-signed, self-signed in chain, no local issuer, cannot verify leaf
_NOT_TLS = re.compile(r"WRONG_VERSION_NUMBER|wrong version number|record layer failure|packet length too long|"
                      r"unknown protocol|http request|UNEXPECTED_EOF_WHILE_READING", re.I)


class Refused(DriftwireError):
    """A server refused this client, or this client refused the server's certificate: a
    setting is wrong and retrying cannot help. The message is the one line to show."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        yield node
        node = node.__cause__ or node.__context__


def tls_reason(exc: BaseException, host: str, ca_setting: str, ca_file: str | None, where: str) -> str | None:
    """Why a TLS handshake failed, as a refusal line; None when ``exc`` is no TLS refusal.

    ``where`` names the setting that holds the address (``kafka.bootstrap_servers``)."""
    code, text = None, ""
    for node in _chain(exc):
        if isinstance(node, ssl.SSLCertVerificationError):
            code, text = node.verify_code, node.verify_message
            break
        text = text or str(node)
    if code is None:
        match = re.search(r"certificate verify failed: ([^(]*)", text)
        if match is None:
            if _NOT_TLS.search(text):
                return f"the TLS handshake failed ({_short(text)}): it may not speak TLS there; check {where} and " \
                       f"the protocol setting"
            return None
        text = match.group(1).strip()
        code = _code_from_text(text)
    if code == _EXPIRED:
        return f"its TLS certificate has expired ({text}); the server needs a new certificate, or {where} names " \
               f"the wrong endpoint"
    if code == _NOT_YET_VALID:
        return f"its TLS certificate is not valid yet ({text}); check the clocks of both hosts"
    if code in _WRONG_HOST:
        return f"its TLS certificate is not valid for {host!r} ({text}); check {where}: use a name the " \
               f"certificate carries"
    trust = f"{ca_setting} ({ca_file})" if ca_file else f"the system's CA store ({ca_setting} is not set)"
    return f"its TLS certificate is not signed by a CA in {trust}: {text}; check {ca_setting}"


def _code_from_text(text: str) -> int:
    lowered = text.lower()
    if "expired" in lowered:
        return _EXPIRED
    if "not yet valid" in lowered:
        return _NOT_YET_VALID
    if "mismatch" in lowered:
        return _WRONG_HOST[0]
    return _UNTRUSTED[0]


def _short(text: str, limit: int = 160) -> str:
    return " ".join(text.split())[:limit]


# -- Kafka --------------------------------------------------------------------------------------


def _kafka_who(config: Config) -> str:
    k = config.kafka
    return f"user {k.sasl_username!r}" if k.sasl_mechanism else "this client"


def explain_kafka(exc: BaseException, config: Config, command: Command, server: str | None = None) -> str | None:
    """The refusal line for a kafka-python (or ssl) error, or None when it is not a refusal."""
    k = config.kafka
    where = server or k.bootstrap_servers
    who = _kafka_who(config)
    if isinstance(exc, kafka_errors.SaslAuthenticationFailedError):
        return f"kafka at {where} refused the login of {who} ({k.sasl_mechanism}): wrong password or unknown " \
               f"user; check DRIFTWIRE_KAFKA_SASL_PASSWORD and kafka.sasl_username"
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        offers = f" ({exc.args[0]})" if exc.args else ""
        return f"kafka at {where} does not offer SASL {k.sasl_mechanism}{offers}; check kafka.sasl_mechanism"
    if isinstance(exc, kafka_errors.TopicAuthorizationFailedError):
        return _topic_refusal(exc, config, command, who)
    if isinstance(exc, kafka_errors.GroupAuthorizationFailedError):
        return f"kafka refused the consumer group {k.group_id!r} (kafka.group_id) to {who}: it needs READ on the " \
               f"group"
    if isinstance(exc, kafka_errors.ClusterAuthorizationFailedError) or "ClusterAuthorizationFailed" in str(exc):
        return f"kafka refused the idempotent producer of {who}: it needs WRITE on the topics it writes (brokers " \
               f">= 2.8), or IDEMPOTENT_WRITE on the cluster (older brokers)"
    if k.security_protocol in ("SSL", "SASL_SSL"):
        host = where.split(",")[0].rsplit(":", 1)[0]
        reason = tls_reason(exc, host, "kafka.ssl_cafile", k.ssl_cafile, "kafka.bootstrap_servers")
        if reason is not None:
            return f"kafka at {where}: {reason}"
    return None


def _topic_refusal(exc: BaseException, config: Config, command: Command, who: str) -> str:
    named = exc.args[0] if exc.args else ""
    topics = sorted(named) if isinstance(named, (set, frozenset, list, tuple)) else [str(named)]
    grants = {g.name: g for g in kafka_grants(config, command) if g.resource == "TOPIC"}
    known = [grants[t] for t in topics if t in grants]
    if known:
        return missing_grant(config, known[0], None)
    return f"kafka refused topic(s) {', '.join(map(repr, topics))} to {who}"


def missing_grant(config: Config, grant: KafkaGrant, lacking: tuple[str, ...] | None) -> str:
    """The line for a grant the broker refused; ``lacking``: the operations it said no to, when known."""
    what = f"{grant.resource.lower()} {grant.name!r} ({grant.setting}) to {_kafka_who(config)}"
    needs = f"{' and '.join(grant.operations)} on that {grant.resource.lower()}"
    if lacking:
        return f"kafka refused {'/'.join(lacking)} on {what}: grant it {needs}"
    return f"kafka refused {what}: it needs {needs}"


def tls_expected(server: str) -> str:
    return f"kafka at {server} answered with TLS; check kafka.security_protocol (SSL or SASL_SSL for a TLS listener)"


def kafka_error(exc: BaseException, config: Config, command: Command, fallback: DriftwireError,
                server: str | None = None) -> DriftwireError:
    """:class:`Refused` when ``exc`` is a refusal, else ``fallback`` (raise it ``from exc``)."""
    reason = explain_kafka(exc, config, command, server)
    return Refused(reason) if reason else fallback


# -- Redis --------------------------------------------------------------------------------------


def explain_redis(exc: BaseException, settings: RedisSettings, url: str) -> str | None:
    """The refusal line for a redis-py error, or None when it is not a refusal. ``url`` is redacted."""
    who = f"user {settings.username!r}" if settings.username else "the default user"
    text = str(exc)
    if isinstance(exc, redis_errors.AuthenticationError):
        if "required" in text.lower():
            return f"redis at {url} requires a login; set DRIFTWIRE_REDIS_PASSWORD (and redis.username for an ACL " \
                   f"user)"
        return f"redis at {url} refused the login of {who}: wrong password, unknown or disabled user; check " \
               f"DRIFTWIRE_REDIS_PASSWORD and redis.username"
    if isinstance(exc, redis_errors.NoPermissionError):
        command = re.search(r"run the '([^']+)' command", text)
        if command:
            name = command.group(1)
            return f"redis at {url} refused {name.upper()} to {who}: its ACL needs +{name.lower()} " \
                   f"(python -m pipeline.config.grants prints the rule); check redis.username"
        if "key" in text:
            return f"redis at {url} refused a key under {settings.key_prefix + ':'!r} to {who}: its ACL needs " \
                   f"~{settings.key_prefix}:*; check redis.key_prefix and redis.username"
        return f"redis at {url} refused {who}: {_short(text)}; check redis.username"
    if isinstance(exc, redis_errors.ResponseError) and "user executing the script can't run" in text:
        return f"redis at {url} refused a command of driftwire's scripts to {who} ({_short(text)}): its ACL needs " \
               f"every command python -m pipeline.config.grants lists; check redis.username"
    if isinstance(exc, redis_errors.ConnectionError) and url.startswith("rediss://"):
        host = url.split("://", 1)[1].split("@")[-1].split("/")[0].rsplit(":", 1)[0]
        reason = tls_reason(exc, host, "redis.ssl_ca_certs", settings.ssl_ca_certs, "redis.url")
        if reason is not None:
            return f"redis at {url}: {reason}"
    return None
