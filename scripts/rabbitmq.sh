#!/bin/sh
# rabbitmq.sh start|stop|restart|status|env|url - a throwaway RabbitMQ for
# tests.
#
#   scripts/rabbitmq.sh start    start a broker on 127.0.0.1:$GLARED_RABBIT_PORT
#                                (default 21672); prints its URL
#   scripts/rabbitmq.sh env      print GLARED_RABBIT_* assignments for tests
#   scripts/rabbitmq.sh url      print the transport URL, e.g.
#                                rabbit://guest:guest@127.0.0.1:21672/
#   scripts/rabbitmq.sh restart  stop the broker and start it again (the
#                                broker-outage tests)
#   scripts/rabbitmq.sh status   exit 0 if it runs
#   scripts/rabbitmq.sh stop     stop it, its epmd, and remove its files
#
# Ports: AMQP on $GLARED_RABBIT_PORT, epmd on the next port, Erlang
# distribution on the one after (run-tests.sh picks three free ones below
# the kernel's ephemeral range: the broker refuses to start when a client
# socket - rabbitmqctl's own, talking to epmd - happens to hold its
# distribution port). Node
# name, data, logs, config and Erlang cookie live in
# /tmp/glared-rabbit-$PORT, so several brokers (several checkouts) and a
# system broker never meet. A plain process, no systemd: the Debian
# package's server scripts, run with their environment pointed here.
# Needs the Debian package rabbitmq-server.
set -eu

PORT=${GLARED_RABBIT_PORT:-21672}
EPMD_PORT=$((PORT + 1))
DIST_PORT=$((PORT + 2))
DIR=/tmp/glared-rabbit-$PORT
NODE="glared$PORT@localhost"
URL="rabbit://guest:guest@127.0.0.1:$PORT/"
LIB=/usr/lib/rabbitmq/bin

# Everything the server scripts and rabbitmqctl read: nothing from /etc or
# /var/lib (RABBITMQ_CONF_ENV_FILE replaces /etc/rabbitmq/rabbitmq-env.conf).
setup_env() {
	export HOME="$DIR" # the Erlang cookie
	export ERL_EPMD_PORT="$EPMD_PORT"
	export ERL_EPMD_ADDRESS=127.0.0.1
	export ERL_CRASH_DUMP="$DIR/erl_crash.dump" # never in the working directory
	export RABBITMQ_NODENAME="$NODE"
	export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
	export RABBITMQ_NODE_PORT="$PORT"
	export RABBITMQ_DIST_PORT="$DIST_PORT"
	export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
	export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
	export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
	export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
	export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
	export RABBITMQ_LOG_BASE="$DIR/log"
	export RABBITMQ_PID_FILE="$DIR/rabbit.pid"
	export RABBITMQ_LOGS="$DIR/log/rabbit.log"
	# the distribution port on loopback too
	export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

have() {
	[ -x "$LIB/rabbitmq-server" ] || {
		echo "rabbitmq.sh: RabbitMQ is not installed" \
		     "(apt-get install rabbitmq-server)" >&2
		return 1
	}
}

ctl() {
	"$LIB/rabbitmqctl" -n "$NODE" "$@"
}

running() {
	[ -f "$DIR/rabbit.pid" ] && kill -0 "$(cat "$DIR/rabbit.pid")" \
		2>/dev/null && ctl -q status >/dev/null 2>&1
}

start() {
	mkdir -p "$DIR/log" "$DIR/mnesia"
	: > "$DIR/rabbitmq-env.conf"
	echo "[]." > "$DIR/enabled_plugins"
	echo "[]." > "$DIR/advanced.config"
	cat > "$DIR/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$PORT
		loopback_users = none
		log.console = false
		log.file.level = warning
		disk_free_limit.absolute = 50MB
	EOF
	if running; then
		echo "$URL"
		return 0
	fi
	"$LIB/rabbitmq-server" > "$DIR/server.out" 2>&1 &
	echo $! > "$DIR/rabbit.pid"
	# await_startup gives up at once while the node is not up yet: poll
	i=0
	while :; do
		if ctl -q await_startup --timeout 60 >/dev/null 2>&1; then
			break
		fi
		i=$((i + 1))
		if [ $i -ge 120 ] || ! kill -0 "$(cat "$DIR/rabbit.pid")" 2>/dev/null
		then
			echo "rabbitmq.sh: the broker did not start" >&2
			tail -20 "$DIR/server.out" "$DIR"/log/*.log >&2 2>/dev/null
			stop_node
			return 1
		fi
		sleep 0.5
	done
	echo "$URL"
}

stop_node() {
	if [ -f "$DIR/rabbit.pid" ]; then
		pid=$(cat "$DIR/rabbit.pid")
		ctl -q stop >/dev/null 2>&1 || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null || true
		rm -f "$DIR/rabbit.pid"
	fi
}

stop() {
	stop_node
	# the epmd this node started, on its own port
	epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
	rm -rf "$DIR"
}

case "${1:-}" in
start)
	have
	setup_env
	start
	;;
stop)
	have
	setup_env
	stop
	;;
restart)
	have
	setup_env
	running || { echo "rabbitmq.sh: not running" >&2; exit 1; }
	stop_node
	start >/dev/null
	;;
status)
	have
	setup_env
	running
	;;
env)
	echo "GLARED_RABBIT_PORT=$PORT"
	echo "GLARED_RABBIT_URL=$URL"
	;;
url)
	echo "$URL"
	;;
*)
	echo "usage: scripts/rabbitmq.sh start|stop|restart|status|env|url" >&2
	exit 2
	;;
esac
