#!/usr/bin/env bash
# Local backing services for driftwire: a single-node Apache Kafka broker
# (KRaft mode, jars fetched from Maven Central with mvn) and a Redis server.
# Everything listens on 127.0.0.1 only; all state lives under <repo>/.cache/.
#
# Usage: scripts/services.sh COMMAND
#   up [--secure]   start Kafka and Redis (idempotent); prints ONLY the
#                   `export ...` lines on stdout, so that
#                   eval "$(scripts/services.sh up)" works; --secure starts
#                   the secured stack too and adds its DW_SECURE_* lines
#   down            stop both (only what this script started, via pid files)
#   status [--secure]  report both (and the secured stack); non-zero if any is down
#   env [--secure]  print the export lines without starting anything
#   start-kafka | stop-kafka | restart-kafka
#   start-redis | stop-redis | restart-redis
#   start-alertmanager | stop-alertmanager
#                   single-service control; data is kept across restarts
#   clean           down, then delete Kafka/Redis data (jars stay cached)
#
# The secured stack (`up --secure`, `env --secure`; `down` and `clean` stop it
# too): a second broker of the same build with SASL_SSL listeners only
# (SCRAM-SHA-512 users `admin` and `driftwire` created at format time, TLS
# certificate from a local CA made with openssl and keytool, the KRaft
# StandardAuthorizer with allow.everyone.if.no.acl.found=false, super user
# `admin` only), and a Redis that speaks TLS only, with the default user off
# and an ACL user `admin`. `driftwire` has no Kafka ACL and no Redis user until
# one is granted (python -m pipeline.grants prints what to grant). Passwords
# are generated into .cache/secure/secrets/ (mode 600; never printed: the
# export lines name the files). A third listener presents an expired
# certificate, for the tests of that refusal.
#   start-secure | stop-secure   both secured services
#   secure-material  only make the CA, certificates and passwords (for
#                   `docker compose --profile secure up`)
#
# Environment:
#   DW_KAFKA_PORT (19092), DW_KAFKA_CONTROLLER_PORT (DW_KAFKA_PORT+1),
#   DW_REDIS_PORT (16379), DW_KAFKA_START_TIMEOUT (90 s),
#   DW_KAFKA_VERSION (3.9.1); Alertmanager (built with Go where present, see
#   scripts/alertmanager.sh): DW_ALERTMANAGER_PORT (19193).
#   DW_SECURE_KAFKA_PORT (19094), DW_SECURE_KAFKA_CONTROLLER_PORT (+1),
#   DW_SECURE_KAFKA_EXPIRED_PORT (+2), DW_SECURE_REDIS_PORT (16380).
#   If KAFKA_BOOTSTRAP_SERVERS / REDIS_URL are set to something other than the
#   address this script manages, `up` starts nothing for that service and
#   re-exports the given value; `status` checks that it is reachable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"

KAFKA_VERSION="${DW_KAFKA_VERSION:-3.9.1}"
SCALA_VERSION="2.13"
KAFKA_PORT="${DW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${DW_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
REDIS_PORT="${DW_REDIS_PORT:-16379}"
KAFKA_START_TIMEOUT="${DW_KAFKA_START_TIMEOUT:-90}"

KAFKA_HOME="$CACHE/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_CONF="$KAFKA_HOME/server.properties"
KAFKA_LOG4J="$KAFKA_HOME/log4j.properties"
KAFKA_PID="$KAFKA_HOME/kafka.pid"
KAFKA_LOG="$KAFKA_HOME/kafka.log"      # broker log (log4j)
KAFKA_OUT="$KAFKA_HOME/kafka.out"      # JVM stdout/stderr
KAFKA_PORTFILE="$KAFKA_HOME/kafka.port" # port the running broker was started on

REDIS_HOME="$CACHE/redis"
REDIS_DATA="$REDIS_HOME/data"
REDIS_PID="$REDIS_HOME/redis.pid"
REDIS_LOG="$REDIS_HOME/redis.log"
REDIS_PORTFILE="$REDIS_HOME/redis.port"

OWN_KAFKA="127.0.0.1:$KAFKA_PORT"
OWN_REDIS="redis://127.0.0.1:$REDIS_PORT/0"

PYTHON="$ROOT/.venv/bin/python"

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# pid_alive PIDFILE PATTERN: true if the pid in PIDFILE runs and its command
# line contains PATTERN (guards against pid reuse).
pid_alive() {
    local pidfile="$1" pattern="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

read_pid() { tr -dc '0-9' <"$1"; }

# check_port NAME PORTFILE WANTED: a running instance must use the wanted port.
check_port() {
    local have
    have="$(cat "$2" 2>/dev/null || true)"
    if [[ -n "$have" && "$have" != "$3" ]]; then
        die "$1: already running on port $have, not $3; run '$0 down' first to switch ports"
    fi
}

# stop_pid PIDFILE PATTERN NAME TIMEOUT PORTFILE
stop_pid() {
    local pidfile="$1" pattern="$2" name="$3" timeout="$4" pid i
    if ! pid_alive "$pidfile" "$pattern"; then
        rm -f "$pidfile" "$5"
        log "$name: not running (no live pid file)"
        return 0
    fi
    pid="$(read_pid "$pidfile")"
    log "$name: stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still alive after ${timeout}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile" "$5"
    log "$name: stopped"
}

# True when the given env value points somewhere this script does not manage.
kafka_external() {
    [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && "${KAFKA_BOOTSTRAP_SERVERS}" != "$OWN_KAFKA" \
        && "${KAFKA_BOOTSTRAP_SERVERS}" != "localhost:$KAFKA_PORT" ]]
}
redis_external() {
    [[ -n "${REDIS_URL:-}" && "${REDIS_URL}" != "redis://127.0.0.1:$REDIS_PORT"* \
        && "${REDIS_URL}" != "redis://localhost:$REDIS_PORT"* ]]
}

# host:port of the first bootstrap server / of a redis URL (best effort).
first_hostport() {
    local s="${1%%,*}"
    s="${s#*://}"          # drop scheme (redis://, PLAINTEXT://)
    s="${s#*@}"            # drop credentials
    s="${s%%/*}"           # drop path / db number
    printf '%s' "$s"
}
hostport_open() {
    local hp host port
    hp="$(first_hostport "$1")"
    host="${hp%:*}"
    port="${hp##*:}"
    [[ -n "$host" && -n "$port" && "$host" != "$port" ]] || return 1
    port_open "$host" "$port"
}

with_lock() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.services.lock"
    flock -w 300 9 || die "could not take $CACHE/.services.lock within 300 s"
}

# --------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------

kafka_classpath() { printf '%s/*' "$KAFKA_LIBS"; }

kafka_fetch() {
    local marker="$KAFKA_LIBS/.complete"
    if [[ -f "$marker" && "$(cat "$marker")" == "$KAFKA_VERSION" ]] \
        && compgen -G "$KAFKA_LIBS/kafka_${SCALA_VERSION}-${KAFKA_VERSION}.jar" >/dev/null; then
        log "kafka: jars for $KAFKA_VERSION already in $KAFKA_LIBS (fetch skipped)"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
    command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
    mkdir -p "$KAFKA_HOME"
    cat >"$KAFKA_HOME/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by scripts/services.sh: only used to fetch the broker's jars -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.driftwire</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <!-- admin CLIs (TopicCommand etc.), as in the binary distribution -->
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <!-- logging backend, as shipped with the Kafka 3.x distribution -->
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>1.2.25</version>
    </dependency>
  </dependencies>
</project>
EOF
    log "kafka: fetching org.apache.kafka:kafka_${SCALA_VERSION}:${KAFKA_VERSION} and dependencies with mvn ..."
    local t0 tmp
    t0="$(now)"
    tmp="$KAFKA_HOME/libs.tmp"
    rm -rf "$tmp"
    if ! mvn -B -q -f "$KAFKA_HOME/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$KAFKA_HOME/mvn.log" 2>&1; then
        tail -n 40 "$KAFKA_HOME/mvn.log" >&2 || true
        die "mvn could not fetch Kafka $KAFKA_VERSION (full log: $KAFKA_HOME/mvn.log)"
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    printf '%s\n' "$KAFKA_VERSION" >"$marker"
    log "kafka: maven fetch took $(elapsed "$t0") s ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars)"
}

kafka_write_config() {
    mkdir -p "$KAFKA_DATA"
    {
        cat <<EOF
# generated by scripts/services.sh -- edits are overwritten on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${KAFKA_DATA}

EOF
        broker_tuning true
    } >"$KAFKA_CONF"
    write_log4j "$KAFKA_LOG4J" "$KAFKA_LOG"
}

# broker_tuning AUTO_CREATE: the settings both brokers share (small machine, one node).
broker_tuning() {
    cat <<EOF
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

auto.create.topics.enable=$1
delete.topic.enable=true
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0

# small-machine friendly retention
log.retention.hours=24
log.retention.bytes=268435456
log.segment.bytes=16777216
log.retention.check.interval.ms=60000
EOF
}

# write_log4j FILE LOGFILE: the brokers' log4j settings.
write_log4j() {
    cat >"$1" <<EOF
# generated by scripts/services.sh
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${2}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
}

KAFKA_JVM_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$KAFKA_LOG4J" "-Dkafka.logs.dir=$KAFKA_HOME")

kafka_java() {
    java "${KAFKA_JVM_OPTS[@]}" -cp "$(kafka_classpath)" "$@"
}

kafka_format() {
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
        return 0
    fi
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT" | tail -n 1)"
    [[ -n "$cluster_id" ]] || die "kafka: StorageTool random-uuid failed (see $KAFKA_OUT)"
    log "kafka: formatting $KAFKA_DATA (cluster id $cluster_id)"
    if ! kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONF" \
        >>"$KAFKA_OUT" 2>&1; then
        tail -n 30 "$KAFKA_OUT" >&2 || true
        die "kafka: storage format failed"
    fi
}

kafka_tail() {
    log "---- last lines of $KAFKA_LOG ----"
    tail -n 40 "$KAFKA_LOG" >&2 2>/dev/null || true
    log "---- last lines of $KAFKA_OUT ----"
    tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
}

# Create (if missing) a tiny topic: proves the broker and its controller work.
kafka_probe_topic() {
    local topic="driftwire-services-healthcheck"
    if [[ -x "$PYTHON" ]] && "$PYTHON" -c 'import kafka' 2>/dev/null; then
        "$PYTHON" - "$OWN_KAFKA" "$topic" >/dev/null 2>&1 <<'PY'
import sys
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                         client_id="driftwire-services")
try:
    try:
        admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=5000)
    except TopicAlreadyExistsError:
        pass
    if topic not in admin.list_topics():
        sys.exit(1)
finally:
    admin.close()
PY
    else
        timeout 30 java -Xmx128m -Dlog4j.configuration="file:$KAFKA_LOG4J" \
            -cp "$(kafka_classpath)" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$OWN_KAFKA" --create --if-not-exists \
            --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null 2>&1
    fi
}

kafka_running() { pid_alive "$KAFKA_PID" "kafka.Kafka"; }

# wait_kafka_ready T0 DEADLINE: until the broker accepts connections and a
# topic can be created; on failure show the log tail, stop the broker, die.
wait_kafka_ready() {
    local t0="$1" deadline="$2" pid phase="port"
    pid="$(read_pid "$KAFKA_PID" 2>/dev/null || true)"
    while ((SECONDS < deadline)); do
        if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
            kafka_tail
            rm -f "$KAFKA_PID" "$KAFKA_PORTFILE"
            die "kafka: broker process exited during start-up"
        fi
        if [[ "$phase" == "port" ]]; then
            if port_open 127.0.0.1 "$KAFKA_PORT"; then
                phase="topic"
                log "kafka: accepting connections after $(elapsed "$t0") s, checking topic creation ..."
                continue
            fi
        elif kafka_probe_topic; then
            log "kafka: broker ready (pid $pid) -- start took $(elapsed "$t0") s"
            return 0
        fi
        sleep 0.5
    done
    kafka_tail
    stop_kafka
    die "kafka: broker did not become ready within ${KAFKA_START_TIMEOUT}s (stopped it; see $KAFKA_LOG)"
}

start_kafka() {
    local t0 deadline
    t0="$(now)"
    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    if kafka_running; then
        check_port kafka "$KAFKA_PORTFILE" "$KAFKA_PORT"
        log "kafka: already running (pid $(read_pid "$KAFKA_PID")) on $OWN_KAFKA"
        if port_open 127.0.0.1 "$KAFKA_PORT" && kafka_probe_topic; then
            return 0
        fi
        log "kafka: ... but not ready yet, waiting"
        wait_kafka_ready "$t0" "$deadline"
        return 0
    fi
    rm -f "$KAFKA_PID"
    if port_open 127.0.0.1 "$KAFKA_PORT" || port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT"; then
        die "kafka: port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT on 127.0.0.1 is already in use by a process this script did not start (set DW_KAFKA_PORT, or KAFKA_BOOTSTRAP_SERVERS to use that one)"
    fi
    kafka_fetch
    kafka_write_config
    kafka_format

    log "kafka: starting broker $KAFKA_VERSION on $OWN_KAFKA (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
    t0="$(now)"
    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    printf '\n==== start %s ====\n' "$(date -Is)" >>"$KAFKA_OUT"
    printf '%s\n' "$KAFKA_PORT" >"$KAFKA_PORTFILE"
    # setsid: own session, so a Ctrl-C in the caller's terminal does not kill it;
    # all stdio redirected, so `eval "$(services.sh up)"` does not wait on it;
    # fd 9 (the lock) is closed so that the broker does not keep holding it.
    # shellcheck disable=SC2016  # $$ and "$@" are expanded by the inner bash
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID" \
        java "${KAFKA_JVM_OPTS[@]}" -cp "$(kafka_classpath)" kafka.Kafka "$KAFKA_CONF" \
        </dev/null >>"$KAFKA_OUT" 2>&1 9>&- &
    while [[ ! -s "$KAFKA_PID" ]] && ((SECONDS < deadline)); do sleep 0.05; done
    wait_kafka_ready "$t0" "$deadline"
}

stop_kafka() { stop_pid "$KAFKA_PID" "kafka.Kafka" kafka 60 "$KAFKA_PORTFILE"; }

# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------

ensure_redis_installed() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
    if [[ "$(id -u)" -eq 0 ]]; then
        log "redis: redis-server not found, installing Debian's redis-server ..."
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >&2
        # the package may start a system instance on 6379: we do not use it
    else
        die "redis-server is not installed; install it with: sudo apt-get install -y redis-server"
    fi
}

redis_running() { pid_alive "$REDIS_PID" "redis-server"; }

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }

start_redis() {
    ensure_redis_installed
    if redis_running; then
        check_port redis "$REDIS_PORTFILE" "$REDIS_PORT"
        log "redis: already running (pid $(read_pid "$REDIS_PID")) on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    rm -f "$REDIS_PID"
    if port_open 127.0.0.1 "$REDIS_PORT"; then
        die "redis: port $REDIS_PORT on 127.0.0.1 is already in use by a process this script did not start (set DW_REDIS_PORT, or REDIS_URL to use that one)"
    fi
    mkdir -p "$REDIS_DATA"
    printf '%s\n' "$REDIS_PORT" >"$REDIS_PORTFILE"
    log "redis: starting on 127.0.0.1:$REDIS_PORT (data in $REDIS_DATA)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DATA" \
        --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
        --save '' --appendonly yes --appendfsync everysec \
        </dev/null >&2 9>&-
    wait_redis redis_ping redis "$REDIS_PID" "$REDIS_LOG" "on 127.0.0.1:$REDIS_PORT"
}

# wait_redis PING NAME PIDFILE LOGFILE WHERE: up to 20 s for PING to get a PONG.
wait_redis() {
    local i
    for ((i = 0; i < 200; i++)); do
        if "$1"; then
            log "$2: ready (pid $(read_pid "$3" 2>/dev/null || echo '?'))"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$4" >&2 2>/dev/null || true
    die "$2: no PONG $5 within 20 s"
}

stop_redis() { stop_pid "$REDIS_PID" "redis-server" redis 30 "$REDIS_PORTFILE"; }

# shellcheck source=scripts/alertmanager.sh
source "$ROOT/scripts/alertmanager.sh"

# --------------------------------------------------------------------------
# The secured stack: SASL_SSL Kafka with ACLs, TLS Redis with ACL users
# --------------------------------------------------------------------------

SECURE_KAFKA_PORT="${DW_SECURE_KAFKA_PORT:-19094}"
SECURE_KAFKA_CONTROLLER_PORT="${DW_SECURE_KAFKA_CONTROLLER_PORT:-$((SECURE_KAFKA_PORT + 1))}"
SECURE_KAFKA_EXPIRED_PORT="${DW_SECURE_KAFKA_EXPIRED_PORT:-$((SECURE_KAFKA_PORT + 2))}"
SECURE_REDIS_PORT="${DW_SECURE_REDIS_PORT:-16380}"

SECURE_HOME="$CACHE/secure"
TLS_DIR="$SECURE_HOME/tls"
SECRETS_DIR="$SECURE_HOME/secrets"
SKAFKA_HOME="$SECURE_HOME/kafka"
SKAFKA_DATA="$SKAFKA_HOME/data"
SKAFKA_CONF="$SKAFKA_HOME/server.properties"
SKAFKA_LOG4J="$SKAFKA_HOME/log4j.properties"
SKAFKA_PID="$SKAFKA_HOME/kafka.pid"
SKAFKA_LOG="$SKAFKA_HOME/kafka.log"
SKAFKA_OUT="$SKAFKA_HOME/kafka.out"
SKAFKA_PORTFILE="$SKAFKA_HOME/kafka.port"
SREDIS_HOME="$SECURE_HOME/redis"
SREDIS_CONF="$SREDIS_HOME/redis.conf"
SREDIS_PID="$SREDIS_HOME/redis.pid"
SREDIS_LOG="$SREDIS_HOME/redis.log"
SREDIS_PORTFILE="$SREDIS_HOME/redis.port"

SECURE_BOOTSTRAP="127.0.0.1:$SECURE_KAFKA_PORT"
SECURE_REDIS_URL="rediss://127.0.0.1:$SECURE_REDIS_PORT/0"
SCRAM="SCRAM-SHA-512"

# secret NAME: the generated secret in $SECRETS_DIR/NAME (made on first use).
secret() {
    local file="$SECRETS_DIR/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$SECRETS_DIR" && openssl rand -hex 24 >"$file")
    fi
    tr -dc '0-9a-f' <"$file"
}

# server_cert NAME [KEYTOOL_GENCERT_ARGS...]: a PKCS12 keystore NAME.p12 whose key is
# certified by the local CA for 127.0.0.1 (keytool), plus NAME.pem / NAME.key for Redis.
server_cert() {
    local name="$1" pass
    shift
    pass="$(secret keystore.password)"
    rm -f "$TLS_DIR/$name".*
    keytool -genkeypair -keystore "$TLS_DIR/$name.p12" -storetype PKCS12 -storepass "$pass" \
        -alias "$name" -keyalg RSA -keysize 2048 -dname "CN=127.0.0.1, O=driftwire local" -validity 30
    keytool -certreq -keystore "$TLS_DIR/$name.p12" -storepass "$pass" -alias "$name" -file "$TLS_DIR/$name.csr"
    keytool -gencert -keystore "$TLS_DIR/ca.p12" -storetype PKCS12 -storepass "$pass" -alias ca -rfc \
        -infile "$TLS_DIR/$name.csr" -outfile "$TLS_DIR/$name.pem" \
        -ext "SAN=ip:127.0.0.1,dns:kafka-secure,dns:redis-secure" -ext KU=digitalSignature,keyEncipherment \
        -ext EKU=serverAuth "$@"
    keytool -importcert -noprompt -keystore "$TLS_DIR/$name.p12" -storepass "$pass" -alias ca -file "$TLS_DIR/ca.pem"
    keytool -importcert -noprompt -keystore "$TLS_DIR/$name.p12" -storepass "$pass" -alias "$name" \
        -file "$TLS_DIR/$name.pem"
    openssl pkcs12 -in "$TLS_DIR/$name.p12" -passin "pass:$pass" -nocerts -nodes 2>/dev/null \
        | openssl pkey -out "$TLS_DIR/$name.key"
    chmod 600 "$TLS_DIR/$name.key" "$TLS_DIR/$name.p12"
    rm -f "$TLS_DIR/$name.csr"
}

# The local CA (openssl) and the certificates it signs (keytool): the servers' (valid
# for two years, for 127.0.0.1 and the secured compose services' host names; not for
# localhost, which the wrong-host test uses) and one that expired in 2020.
secure_tls() {
    if [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/server.p12" && -s "$TLS_DIR/expired.p12" ]] \
        && openssl x509 -in "$TLS_DIR/server.pem" -noout -checkend 86400 >/dev/null; then
        return 0
    fi
    command -v keytool >/dev/null || die "keytool not found (apt-get install -y openjdk-17-jre-headless)"
    command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
    log "secure: making a local CA and server certificates in $TLS_DIR"
    local pass
    pass="$(secret keystore.password)"
    mkdir -p "$TLS_DIR"
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -subj "/CN=driftwire local CA/O=driftwire local" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null)
    chmod 644 "$TLS_DIR/ca.pem"  # public; the key next to it is not
    openssl pkcs12 -export -inkey "$TLS_DIR/ca.key" -in "$TLS_DIR/ca.pem" -name ca \
        -out "$TLS_DIR/ca.p12" -passout "pass:$pass"
    chmod 600 "$TLS_DIR/ca.p12"
    keytool -importcert -noprompt -keystore "$TLS_DIR/truststore.p12" -storetype PKCS12 -storepass "$pass" \
        -alias ca -file "$TLS_DIR/ca.pem" 2>/dev/null
    server_cert server -validity 730 2>/dev/null
    server_cert expired -startdate "2020/01/01 00:00:00" -validity 1 2>/dev/null
} >&2

skafka_write_config() {
    local admin pass
    admin="$(secret kafka-admin.password)"
    pass="$(secret keystore.password)"
    mkdir -p "$SKAFKA_DATA"
    (umask 077 && {
        cat <<EOF
# generated by scripts/services.sh (secured stack) -- edits are overwritten on every start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${SECURE_KAFKA_CONTROLLER_PORT}
# SECURE: clients and the broker itself; EXPIRED: the same, with an expired certificate
listeners=SECURE://127.0.0.1:${SECURE_KAFKA_PORT},EXPIRED://127.0.0.1:${SECURE_KAFKA_EXPIRED_PORT},CONTROLLER://127.0.0.1:${SECURE_KAFKA_CONTROLLER_PORT}
advertised.listeners=SECURE://127.0.0.1:${SECURE_KAFKA_PORT},EXPIRED://127.0.0.1:${SECURE_KAFKA_EXPIRED_PORT}
listener.security.protocol.map=SECURE:SASL_SSL,EXPIRED:SASL_SSL,CONTROLLER:SASL_SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=SECURE
log.dirs=${SKAFKA_DATA}

sasl.enabled.mechanisms=${SCRAM}
sasl.mechanism.inter.broker.protocol=${SCRAM}
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin}";
listener.name.expired.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin}";
# SCRAM credentials live in the metadata log, which the controller cannot read before it
# runs: the controller listener uses PLAIN with a static user (same admin principal).
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${admin}" user_admin="${admin}";

ssl.keystore.type=PKCS12
ssl.keystore.location=${TLS_DIR}/server.p12
ssl.keystore.password=${pass}
ssl.truststore.type=PKCS12
ssl.truststore.location=${TLS_DIR}/truststore.p12
ssl.truststore.password=${pass}
listener.name.expired.ssl.keystore.type=PKCS12
listener.name.expired.ssl.keystore.location=${TLS_DIR}/expired.p12
listener.name.expired.ssl.keystore.password=${pass}

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin

EOF
        broker_tuning false
    } >"$SKAFKA_CONF")
    write_log4j "$SKAFKA_LOG4J" "$SKAFKA_LOG"
}

SKAFKA_JVM_OPTS=(-Xms192m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$SKAFKA_LOG4J" "-Dkafka.logs.dir=$SKAFKA_HOME")

# Format once, creating the SCRAM users (KIP-900: credentials in the bootstrap metadata).
skafka_format() {
    [[ -f "$SKAFKA_DATA/meta.properties" ]] && return 0
    local cluster_id
    cluster_id="$(java "${SKAFKA_JVM_OPTS[@]}" -cp "$(kafka_classpath)" kafka.tools.StorageTool random-uuid \
        2>>"$SKAFKA_OUT" | tail -n 1)"
    [[ -n "$cluster_id" ]] || die "secure kafka: StorageTool random-uuid failed (see $SKAFKA_OUT)"
    log "secure kafka: formatting $SKAFKA_DATA with SCRAM users admin and driftwire"
    if ! java "${SKAFKA_JVM_OPTS[@]}" -cp "$(kafka_classpath)" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$SKAFKA_CONF" \
        --add-scram "${SCRAM}=[name=admin,password=$(secret kafka-admin.password)]" \
        --add-scram "${SCRAM}=[name=driftwire,password=$(secret kafka-driftwire.password)]" \
        >>"$SKAFKA_OUT" 2>&1; then
        tail -n 30 "$SKAFKA_OUT" >&2 || true
        die "secure kafka: storage format failed"
    fi
}

# Create (if missing) a topic as the admin over SASL_SSL: proves TLS, SCRAM and the authorizer.
skafka_probe() {
    [[ -x "$PYTHON" ]] || die "secure kafka: $PYTHON is needed to probe the broker (make .venv/.installed)"
    "$PYTHON" - "$SECURE_BOOTSTRAP" "$TLS_DIR/ca.pem" "$SECRETS_DIR/kafka-admin.password" >/dev/null 2>&1 <<'PY'
import sys
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

bootstrap, ca, password_file = sys.argv[1:4]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="driftwire-services",
                         security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", ssl_cafile=ca,
                         sasl_plain_username="admin", sasl_plain_password=open(password_file).read().strip())
try:
    try:
        admin.create_topics([NewTopic("driftwire-services-healthcheck", 1, 1)], timeout_ms=5000)
    except TopicAlreadyExistsError:
        pass
    if "driftwire-services-healthcheck" not in admin.list_topics():
        sys.exit(1)
finally:
    admin.close()
PY
}

skafka_running() { pid_alive "$SKAFKA_PID" "$SKAFKA_CONF"; }

start_secure_kafka() {
    local t0 deadline pid
    if skafka_running; then
        check_port "secure kafka" "$SKAFKA_PORTFILE" "$SECURE_KAFKA_PORT"
        log "secure kafka: already running (pid $(read_pid "$SKAFKA_PID")) on $SECURE_BOOTSTRAP"
    else
        rm -f "$SKAFKA_PID"
        local p
        for p in "$SECURE_KAFKA_PORT" "$SECURE_KAFKA_CONTROLLER_PORT" "$SECURE_KAFKA_EXPIRED_PORT"; do
            if port_open 127.0.0.1 "$p"; then
                die "secure kafka: port $p on 127.0.0.1 is in use by a process this script did not start (set DW_SECURE_KAFKA_PORT)"
            fi
        done
        kafka_fetch
        secure_tls
        skafka_write_config
        skafka_format
        log "secure kafka: starting broker $KAFKA_VERSION on SASL_SSL $SECURE_BOOTSTRAP (expired certificate on :$SECURE_KAFKA_EXPIRED_PORT, controller :$SECURE_KAFKA_CONTROLLER_PORT)"
        printf '\n==== start %s ====\n' "$(date -Is)" >>"$SKAFKA_OUT"
        printf '%s\n' "$SECURE_KAFKA_PORT" >"$SKAFKA_PORTFILE"
        # shellcheck disable=SC2016  # $$ and "$@" are expanded by the inner bash
        setsid bash -c 'echo $$ >"$0"; exec "$@"' "$SKAFKA_PID" \
            java "${SKAFKA_JVM_OPTS[@]}" -cp "$(kafka_classpath)" kafka.Kafka "$SKAFKA_CONF" \
            </dev/null >>"$SKAFKA_OUT" 2>&1 9>&- &
    fi
    t0="$(now)"
    deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        pid="$(read_pid "$SKAFKA_PID" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$SKAFKA_LOG" "$SKAFKA_OUT" >&2 2>/dev/null || true
            rm -f "$SKAFKA_PID" "$SKAFKA_PORTFILE"
            die "secure kafka: broker process exited during start-up"
        fi
        if [[ -n "$pid" ]] && port_open 127.0.0.1 "$SECURE_KAFKA_PORT" && skafka_probe; then
            log "secure kafka: ready (pid $pid) -- $(elapsed "$t0") s"
            return 0
        fi
        sleep 0.5
    done
    tail -n 40 "$SKAFKA_LOG" >&2 2>/dev/null || true
    stop_secure_kafka
    die "secure kafka: broker not ready within ${KAFKA_START_TIMEOUT}s (stopped it; see $SKAFKA_LOG)"
}

stop_secure_kafka() { stop_pid "$SKAFKA_PID" "$SKAFKA_CONF" "secure kafka" 60 "$SKAFKA_PORTFILE"; }

sredis_write_config() {
    local admin_sha
    admin_sha="$(printf '%s' "$(secret redis-admin.password)" | sha256sum | cut -d' ' -f1)"
    mkdir -p "$SREDIS_HOME/data"
    (umask 077 && cat >"$SREDIS_CONF" <<EOF
# generated by scripts/services.sh (secured stack) -- edits are overwritten on every start
bind 127.0.0.1
port 0
tls-port ${SECURE_REDIS_PORT}
tls-cert-file ${TLS_DIR}/server.pem
tls-key-file ${TLS_DIR}/server.key
tls-ca-cert-file ${TLS_DIR}/ca.pem
tls-auth-clients no
dir ${SREDIS_HOME}/data
pidfile ${SREDIS_PID}
logfile ${SREDIS_LOG}
daemonize yes
save ""
appendonly no
# passwords as SHA-256 digests: this file holds none in clear
user default off
user admin on #${admin_sha} ~* &* +@all
EOF
    )
}

sredis_running() { pid_alive "$SREDIS_PID" "redis-server"; }

sredis_ping() {
    [[ "$(REDISCLI_AUTH="$(secret redis-admin.password)" redis-cli --tls --cacert "$TLS_DIR/ca.pem" \
        -h 127.0.0.1 -p "$SECURE_REDIS_PORT" --user admin --no-auth-warning ping 2>/dev/null)" == "PONG" ]]
}

start_secure_redis() {
    ensure_redis_installed
    if sredis_running; then
        check_port "secure redis" "$SREDIS_PORTFILE" "$SECURE_REDIS_PORT"
        log "secure redis: already running (pid $(read_pid "$SREDIS_PID")) on $SECURE_REDIS_URL"
        return 0
    fi
    rm -f "$SREDIS_PID"
    if port_open 127.0.0.1 "$SECURE_REDIS_PORT"; then
        die "secure redis: port $SECURE_REDIS_PORT on 127.0.0.1 is in use by a process this script did not start (set DW_SECURE_REDIS_PORT)"
    fi
    secure_tls
    sredis_write_config
    printf '%s\n' "$SECURE_REDIS_PORT" >"$SREDIS_PORTFILE"
    log "secure redis: starting with TLS only on $SECURE_REDIS_URL"
    redis-server "$SREDIS_CONF" </dev/null >&2 9>&-
    wait_redis sredis_ping "secure redis" "$SREDIS_PID" "$SREDIS_LOG" "over TLS on 127.0.0.1:$SECURE_REDIS_PORT"
}

stop_secure_redis() { stop_pid "$SREDIS_PID" "redis-server" "secure redis" 30 "$SREDIS_PORTFILE"; }

print_secure_env() {
    printf 'export DW_SECURE_KAFKA_BOOTSTRAP=%s\n' "$SECURE_BOOTSTRAP"
    printf 'export DW_SECURE_KAFKA_EXPIRED_BOOTSTRAP=127.0.0.1:%s\n' "$SECURE_KAFKA_EXPIRED_PORT"
    printf 'export DW_SECURE_CA=%s\n' "$TLS_DIR/ca.pem"
    printf 'export DW_SECURE_KAFKA_ADMIN_PASSWORD_FILE=%s\n' "$SECRETS_DIR/kafka-admin.password"
    printf 'export DW_SECURE_KAFKA_PASSWORD_FILE=%s\n' "$SECRETS_DIR/kafka-driftwire.password"
    printf 'export DW_SECURE_REDIS_URL=%s\n' "$SECURE_REDIS_URL"
    printf 'export DW_SECURE_REDIS_ADMIN_PASSWORD_FILE=%s\n' "$SECRETS_DIR/redis-admin.password"
}

start_secure() {
    start_secure_kafka
    start_secure_redis
}

stop_secure() {
    stop_secure_kafka
    stop_secure_redis
}

# What docker-compose.yml's secure profile mounts: the certificates and the passwords.
secure_material() {
    secure_tls
    local name
    for name in kafka-admin kafka-driftwire keystore redis-admin redis-driftwire; do
        secret "$name.password" >/dev/null
    done
    log "secure: certificates in $TLS_DIR, passwords in $SECRETS_DIR"
}

# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------

print_env() {
    if kafka_external; then
        printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$KAFKA_BOOTSTRAP_SERVERS"
    else
        printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$OWN_KAFKA"
    fi
    if redis_external; then
        printf 'export REDIS_URL=%q\n' "$REDIS_URL"
    else
        printf 'export REDIS_URL=%s\n' "$OWN_REDIS"
    fi
    am_env
}

cmd_up() {
    local secure=0
    [[ "${1:-}" == "--secure" ]] && secure=1
    with_lock
    {
        if kafka_external; then
            log "kafka: KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set; not starting a broker"
        else
            start_kafka
        fi
        if redis_external; then
            log "redis: REDIS_URL=$REDIS_URL is set; not starting redis"
        else
            start_redis
        fi
        start_alertmanager
        if ((secure)); then
            start_secure
        fi
    } >&2
    print_env
    if ((secure)); then
        print_secure_env
    fi
}

cmd_down() {
    with_lock
    stop_kafka
    stop_redis
    stop_alertmanager
    if [[ -e "$SKAFKA_PID" || -e "$SREDIS_PID" ]]; then
        stop_secure
    fi
}

cmd_status() {
    local rc=0
    if kafka_external; then
        if hostport_open "$KAFKA_BOOTSTRAP_SERVERS"; then
            echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS reachable"
        else
            echo "kafka: external $KAFKA_BOOTSTRAP_SERVERS NOT reachable"; rc=1
        fi
    elif kafka_running && port_open 127.0.0.1 "$KAFKA_PORT"; then
        echo "kafka: up (pid $(read_pid "$KAFKA_PID"), $OWN_KAFKA, Kafka $KAFKA_VERSION)"
    elif kafka_running; then
        echo "kafka: starting or unhealthy (pid $(read_pid "$KAFKA_PID"), port $KAFKA_PORT closed)"; rc=1
    else
        echo "kafka: down"; rc=1
    fi
    if redis_external; then
        if hostport_open "$REDIS_URL"; then
            echo "redis: external $REDIS_URL reachable"
        else
            echo "redis: external $REDIS_URL NOT reachable"; rc=1
        fi
    elif redis_running && redis_ping; then
        echo "redis: up (pid $(read_pid "$REDIS_PID"), $OWN_REDIS)"
    elif redis_running; then
        echo "redis: running but not answering PING (pid $(read_pid "$REDIS_PID"))"; rc=1
    else
        echo "redis: down"; rc=1
    fi
    am_status || rc=1
    if [[ "${1:-}" == "--secure" ]]; then
        if skafka_running && port_open 127.0.0.1 "$SECURE_KAFKA_PORT"; then
            echo "secure kafka: up (pid $(read_pid "$SKAFKA_PID"), SASL_SSL $SECURE_BOOTSTRAP)"
        else
            echo "secure kafka: down"; rc=1
        fi
        if sredis_running && sredis_ping; then
            echo "secure redis: up (pid $(read_pid "$SREDIS_PID"), $SECURE_REDIS_URL)"
        else
            echo "secure redis: down"; rc=1
        fi
    fi
    return "$rc"
}

cmd_clean() {
    cmd_down
    log "removing $KAFKA_DATA, $REDIS_DATA and $SECURE_HOME (cached jars are kept)"
    rm -rf "$KAFKA_DATA" "$REDIS_DATA" "$SECURE_HOME"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        up) cmd_up "${2:-}" ;;
        down) cmd_down ;;
        status) cmd_status "${2:-}" ;;
        env) print_env; if [[ "${2:-}" == "--secure" ]]; then print_secure_env; fi ;;
        start-secure) with_lock; start_secure ;;
        secure-material) with_lock; secure_material ;;
        stop-secure) with_lock; stop_secure ;;
        start-kafka) with_lock; start_kafka ;;
        stop-kafka) with_lock; stop_kafka ;;
        restart-kafka) with_lock; stop_kafka; start_kafka ;;
        start-redis) with_lock; start_redis ;;
        stop-redis) with_lock; stop_redis ;;
        restart-redis) with_lock; stop_redis; start_redis ;;
        start-alertmanager) with_lock; start_alertmanager ;;
        stop-alertmanager) with_lock; stop_alertmanager ;;
        clean) cmd_clean ;;
        -h | --help | help) usage ;;
        *) usage; exit 2 ;;
    esac
}

main "$@"
