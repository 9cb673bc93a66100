# A local Redis Cluster for development and tests; sourced by scripts/services.sh.
#
# Six Debian redis-server processes in cluster mode on 127.0.0.1 (3 masters + 3 replicas,
# formed once with `redis-cli --cluster create ... --cluster-replicas 1`); data and each
# node's nodes.conf live in .cache/redis-cluster/<port>/, so a restarted node rejoins the
# cluster it belonged to (as a replica when its replica was promoted meanwhile).
#
# The node timeout is small (failover within a few seconds, for the failover test), and
# cluster-replica-validity-factor is 0: a replica takes over however long its link to the
# master was down, since the test cuts that link on purpose before killing the master.
#
# Environment: DW_REDIS_CLUSTER_PORT (17001; the nodes use it and the next five ports, their
# cluster bus ports +10000), DW_REDIS_CLUSTER_NODE_TIMEOUT_MS (1500), DW_REDIS_CLUSTER
# (on; "off" makes `up` leave the cluster alone).
# Uses log, die, port_open, pid_alive, read_pid, check_port, stop_pid, ensure_redis_installed
# and $CACHE from services.sh.

RC_BASE="${DW_REDIS_CLUSTER_PORT:-17001}"
RC_NODE_TIMEOUT="${DW_REDIS_CLUSTER_NODE_TIMEOUT_MS:-1500}"
RC_HOME="$CACHE/redis-cluster"
RC_PORTFILE="$RC_HOME/base.port"
RC_URL="redis://127.0.0.1:$RC_BASE/0"

rc_ports() { seq "$RC_BASE" $((RC_BASE + 5)); }
rc_enabled() { [[ "${DW_REDIS_CLUSTER:-on}" != "off" ]]; }
rc_cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
rc_node_running() { pid_alive "$RC_HOME/$1/redis.pid" "redis-server"; }

rc_start_node() {
    local port="$1" dir="$RC_HOME/$1"
    rc_node_running "$port" && return 0
    if port_open 127.0.0.1 "$port" || port_open 127.0.0.1 $((port + 10000)); then
        die "redis-cluster: port $port or $((port + 10000)) is in use by a process this script did not start (set DW_REDIS_CLUSTER_PORT)"
    fi
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
        --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout "$RC_NODE_TIMEOUT" --cluster-replica-validity-factor 0 \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --save '' --appendonly yes --appendfsync everysec \
        </dev/null >&2 9>&-
}

# rc_wait_ok SECONDS: until every node answers and reports cluster_state:ok with six known nodes,
# and every replica's link to its master is up (a restarted node has finished its sync).
rc_wait_ok() {
    local deadline=$((SECONDS + $1)) port ok info repl
    while ((SECONDS < deadline)); do
        ok=1
        for port in $(rc_ports); do
            info="$(rc_cli "$port" cluster info 2>/dev/null | tr -d '\r')"
            repl="$(rc_cli "$port" info replication 2>/dev/null | tr -d '\r')"
            if ! grep -q '^cluster_state:ok' <<<"$info" || ! grep -q '^cluster_known_nodes:6' <<<"$info" \
                || { grep -q '^role:slave' <<<"$repl" && ! grep -q '^master_link_status:up' <<<"$repl"; }; then
                ok=0
                break
            fi
        done
        ((ok)) && return 0
        sleep 0.2
    done
    return 1
}

rc_formed() { [[ "$(rc_cli "$RC_BASE" cluster info 2>/dev/null | tr -d '\r' | grep '^cluster_known_nodes:')" == "cluster_known_nodes:6" ]]; }

start_redis_cluster() {
    rc_enabled || return 0
    ensure_redis_installed
    check_port redis-cluster "$RC_PORTFILE" "$RC_BASE"
    mkdir -p "$RC_HOME"
    printf '%s\n' "$RC_BASE" >"$RC_PORTFILE"
    local port i addrs=()
    for port in $(rc_ports); do
        rc_start_node "$port"
        addrs+=("127.0.0.1:$port")
    done
    for port in $(rc_ports); do
        for ((i = 0; i < 100; i++)); do
            [[ "$(rc_cli "$port" ping 2>/dev/null)" == "PONG" ]] && break
            sleep 0.1
        done
    done
    if ! rc_formed; then
        log "redis-cluster: creating a cluster of ${addrs[*]} (3 masters, 3 replicas)"
        redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$RC_HOME/create.log" 2>&1 \
            || { tail -n 20 "$RC_HOME/create.log" >&2; die "redis-cluster: redis-cli --cluster create failed"; }
    fi
    if ! rc_wait_ok 60; then
        rc_cli "$RC_BASE" cluster nodes >&2 || true
        die "redis-cluster: not ok within 60 s (logs in $RC_HOME/<port>/redis.log)"
    fi
    log "redis-cluster: ok on 127.0.0.1:$RC_BASE-$((RC_BASE + 5)) (node timeout ${RC_NODE_TIMEOUT} ms)"
}

stop_redis_cluster() {
    local port
    for port in $(rc_ports); do
        stop_pid "$RC_HOME/$port/redis.pid" "redis-server" "redis-cluster:$port" 30 "$RC_HOME/$port/redis.port"
    done
    rm -f "$RC_PORTFILE"
}

clean_redis_cluster() { rm -rf "$RC_HOME"; }

rc_env() {
    rc_enabled && printf 'export DW_REDIS_CLUSTER_URL=%s\n' "$RC_URL"
    return 0
}

rc_status() {
    rc_enabled || return 0
    local port up=0
    for port in $(rc_ports); do
        rc_node_running "$port" && up=$((up + 1))
    done
    if ((up == 6)) && rc_cli "$RC_BASE" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then
        echo "redis-cluster: up (6 nodes, $RC_URL)"
    else
        echo "redis-cluster: $up of 6 nodes running, not ok"; return 1
    fi
}
