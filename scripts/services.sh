#!/usr/bin/env bash
# Local backing services for driftwire: a single-node Apache Kafka broker
# (KRaft mode, jars fetched from Maven Central with mvn) and a Redis server.
# Everything listens on 127.0.0.1 only; all state lives under <repo>/.cache/.
#
# Usage: scripts/services.sh COMMAND
#   up              start Kafka and Redis (idempotent); prints ONLY the
#                   `export ...` lines on stdout, so that
#                   eval "$(scripts/services.sh up)" works
#   down            stop both (only what this script started, via pid files)
#   status          report both; exit non-zero if any is down
#   env             print the export lines without starting anything
#   start-kafka | stop-kafka | restart-kafka
#   start-redis | stop-redis | restart-redis
#   start-alertmanager | stop-alertmanager
#                   single-service control; data is kept across restarts
#   clean           down, then delete Kafka/Redis data (jars stay cached)
#
# Environment:
#   DW_KAFKA_PORT (19092), DW_KAFKA_CONTROLLER_PORT (DW_KAFKA_PORT+1),
#   DW_REDIS_PORT (16379), DW_KAFKA_START_TIMEOUT (90 s),
#   DW_KAFKA_VERSION (3.9.1); Alertmanager (built with Go where present, see
#   scripts/alertmanager.sh): DW_ALERTMANAGER_PORT (19193).
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
    cat >"$KAFKA_CONF" <<EOF
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

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

auto.create.topics.enable=true
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
    cat >"$KAFKA_LOG4J" <<EOF
# generated by scripts/services.sh
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${KAFKA_LOG}
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
    local i
    for ((i = 0; i < 200; i++)); do
        if redis_ping; then
            log "redis: ready (pid $(read_pid "$REDIS_PID" 2>/dev/null || echo '?'))"
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$REDIS_LOG" >&2 2>/dev/null || true
    die "redis: no PONG on 127.0.0.1:$REDIS_PORT within 20 s"
}

stop_redis() { stop_pid "$REDIS_PID" "redis-server" redis 30 "$REDIS_PORTFILE"; }

# shellcheck source=scripts/alertmanager.sh
source "$ROOT/scripts/alertmanager.sh"

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
    } >&2
    print_env
}

cmd_down() {
    with_lock
    stop_kafka
    stop_redis
    stop_alertmanager
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
    return "$rc"
}

cmd_clean() {
    cmd_down
    log "removing $KAFKA_DATA and $REDIS_DATA (cached jars are kept)"
    rm -rf "$KAFKA_DATA" "$REDIS_DATA"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) print_env ;;
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
