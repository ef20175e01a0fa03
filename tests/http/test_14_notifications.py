"""OpenStack notifications on a real RabbitMQ (scripts/rabbitmq.sh, started
by scripts/run-tests.sh): the wire format next to oslo.messaging's own
notifier, an unmodified oslo.messaging notification listener receiving
every event type in both formats (messaging, messagingv2), and a broker
restart in the middle of a run that loses nothing and blocks no API call.
Contract: issue 16 part 1, docs/notifications.md."""
import datetime
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ADMIN, CLUSTER, ROOT, USER1, Server

RABBIT = os.environ.get("GLARED_RABBIT_URL")
pytestmark = pytest.mark.skipif(
    not RABBIT, reason="no RabbitMQ: run through scripts/run-tests.sh or "
                       "set GLARED_RABBIT_URL (scripts/rabbitmq.sh start)")

SA = "/artifacts/sample_artifact"
PAYLOAD_KEYS = {"type", "id", "name", "version", "visibility", "status",
                "owner", "description", "created_at", "updated_at",
                "activated_at"}
MESSAGE_KEYS = {"message_id", "publisher_id", "event_type", "priority",
                "payload", "timestamp", "_unique_id"}
TS_RE = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$"
V1_TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$"
V2_TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$"


def amqp_url():
    return RABBIT.replace("rabbit://", "amqp://", 1)


def unique():
    """An exchange and a topic of a test's own: queues are named after
    topics alone, so a shared topic would mix tests' messages."""
    tag = uuid.uuid4().hex[:8]
    return "glare-" + tag, "notifications-" + tag


def notify_server(driver, exchange, topics, **extra):
    opts = {"transport_url": RABBIT, "control_exchange": exchange,
            "oslo_messaging_notifications.driver": driver,
            "oslo_messaging_notifications.topics": topics}
    opts.update(extra)
    return Server(opts)


class Listener:
    """oslo_messaging.get_notification_listener, unmodified, with an
    endpoint that records what it is given."""

    def __init__(self, exchange, topic):
        from oslo_config import cfg
        import oslo_messaging
        self.lock = threading.Lock()
        self.got = []
        rec = self

        class Endpoint:
            def info(self, ctxt, publisher_id, event_type, payload,
                     metadata):
                with rec.lock:
                    rec.got.append({"ctxt": ctxt, "publisher_id":
                                    publisher_id, "event_type": event_type,
                                    "payload": payload,
                                    "metadata": metadata})

            def warn(self, *a):
                with rec.lock:
                    rec.got.append({"wrong_priority": "warn"})

            def error(self, *a):
                with rec.lock:
                    rec.got.append({"wrong_priority": "error"})

        conf = cfg.ConfigOpts()
        conf([])
        self.transport = oslo_messaging.get_notification_transport(
            conf, url=RABBIT)
        self.listener = oslo_messaging.get_notification_listener(
            self.transport,
            [oslo_messaging.Target(topic=topic, exchange=exchange)],
            [Endpoint()], executor="threading")
        self.listener.start()

    def all(self):
        with self.lock:
            return list(self.got)

    def wait(self, n, timeout=60, pred=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [g for g in self.all() if pred is None or pred(g)]
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return [g for g in self.all() if pred is None or pred(g)]

    def close(self):
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()


def new(s, **kw):
    body = {"name": "n-" + uuid.uuid4().hex[:10]}
    body.update(kw)
    r = s.post(SA, body)
    assert r.status_code == 201, r.text
    return r.json()


def patch(s, af, ops, token=USER1):
    r = s.patch("%s/%s" % (SA, af["id"]), ops, token=token)
    assert r.status_code == 200, r.text
    return r


# ---- the wire -----------------------------------------------------------------

def raw_messages(queue, n, timeout=30):
    """Up to n messages taken raw (properties, routing, body) from a
    queue."""
    import kombu
    out = []
    deadline = time.time() + timeout
    with kombu.Connection(amqp_url()) as c:
        ch = c.channel()
        while len(out) < n and time.time() < deadline:
            try:
                m = ch.basic_get(queue, no_ack=True)
            except c.channel_errors:
                # glared declares the queue when it first publishes, which
                # happens after the API answered; the error closed the
                # channel
                ch = c.channel()
                time.sleep(0.05)
                continue
            if not m:
                time.sleep(0.05)
                continue
            body = m.body if isinstance(m.body, str) else m.body.decode()
            out.append({"properties": dict(m.properties),
                        "exchange": m.delivery_info.get("exchange"),
                        "routing_key": m.delivery_info.get("routing_key"),
                        "body": json.loads(body)})
    return out


def reference_notification(driver, exchange, topic):
    """One notification sent by oslo.messaging's own Notifier, with a
    payload shaped as Glare's (timezone-aware datetimes, None)."""
    from oslo_config import cfg
    import oslo_messaging
    oslo_messaging.set_transport_defaults(exchange)
    try:
        conf = cfg.ConfigOpts()
        conf([])
        t = oslo_messaging.get_notification_transport(conf, url=RABBIT)
        n = oslo_messaging.Notifier(t, publisher_id="artifact.localhost",
                                    driver=driver, topics=[topic])
        when = datetime.datetime(2024, 1, 2, 3, 4, 5, 678901,
                                 tzinfo=datetime.timezone.utc)
        n.info({}, "artifact.artifact:create",
               {"type": "sample_artifact", "id": str(uuid.uuid4()),
                "description": "", "name": "ref", "version": "0.0.0",
                "visibility": "private", "status": "drafted",
                "created_at": when, "updated_at": when,
                "activated_at": None, "owner": "project1"})
        t.cleanup()
    finally:
        oslo_messaging.set_transport_defaults("openstack")


single = pytest.mark.skipif(CLUSTER, reason="node-independent; runs in the "
                                            "single-node pass")


@single
@pytest.mark.parametrize("driver", ["messaging", "messagingv2"])
def test_wire_matches_oslo_messaging(driver):
    import kombu
    exchange = "glare-" + uuid.uuid4().hex[:8]
    topic = "wire" + uuid.uuid4().hex[:8]
    s = notify_server(driver, exchange, topics=topic)
    try:
        af = new(s)
        mine = raw_messages(topic + ".info", 1)
        assert len(mine) == 1, "glared's notification did not arrive"
        # the exchange and the queue glared declared are the ones
        # oslo.messaging declares: redeclaring them with its flags works
        with kombu.Connection(amqp_url()) as c:
            ch = c.channel()
            ex = kombu.Exchange(exchange, "topic", durable=False,
                                auto_delete=False)
            ex(ch).declare()
            kombu.Queue(topic + ".info", ex, routing_key=topic + ".info",
                        durable=False, auto_delete=False)(ch).declare()
        reference_notification(driver, exchange, topic)
        ref = raw_messages(topic + ".info", 1)
        assert len(ref) == 1, "oslo.messaging's notification did not arrive"
    finally:
        s.stop()
    mine, ref = mine[0], ref[0]
    assert mine["properties"] == ref["properties"]
    assert mine["properties"]["delivery_mode"] == 2
    assert mine["properties"]["content_type"] == "application/json"
    assert (mine["exchange"], mine["routing_key"]) == \
        (ref["exchange"], ref["routing_key"]) == (exchange, topic + ".info")
    if driver == "messagingv2":
        assert set(mine["body"]) == set(ref["body"]) == \
            {"oslo.version", "oslo.message"}
        assert mine["body"]["oslo.version"] == ref["body"]["oslo.version"] \
            == "2.0"
        m = json.loads(mine["body"]["oslo.message"])
        r = json.loads(ref["body"]["oslo.message"])
        time_re = V2_TIME_RE
    else:
        m, r = mine["body"], ref["body"]
        time_re = V1_TIME_RE
    assert set(m) == set(r) == MESSAGE_KEYS
    assert set(m["payload"]) == set(r["payload"]) == PAYLOAD_KEYS
    for k in ("publisher_id", "event_type", "priority"):
        assert m[k] == r[k], k
    for k in ("created_at", "updated_at"):
        assert re.match(time_re, m["payload"][k]), m["payload"][k]
        assert re.match(time_re, r["payload"][k]), r["payload"][k]
    assert m["payload"]["activated_at"] is None
    assert re.match(TS_RE, m["timestamp"]) and re.match(TS_RE, r["timestamp"])
    assert m["_unique_id"] == m["message_id"].replace("-", "")
    assert re.match(r"^[0-9a-f]{32}$", r["_unique_id"])
    assert m["payload"]["id"] == af["id"] and m["payload"]["name"] == \
        af["name"]


# ---- a real listener --------------------------------------------------------------

def by_time(got):
    return sorted(got, key=lambda g: g["metadata"]["timestamp"])


@pytest.mark.parametrize("driver", ["messaging", "messagingv2"])
def test_listener_sees_every_event(driver):
    exchange, topic = unique()
    lst = Listener(exchange, topic)
    s = notify_server(driver, exchange, topic,
                      glare_publisher_id="artifact.node-1")
    try:
        af = new(s, string_required="s", description="one")
        aid = af["id"]
        # nothing for a no-op or a refused request
        patch(s, af, [{"op": "replace", "path": "/description",
                       "value": "one"}])
        assert s.patch("%s/%s" % (SA, aid), [{"op": "replace",
                                              "path": "/visibility",
                                              "value": "public"}]) \
            .status_code == 403
        patch(s, af, [{"op": "replace", "path": "/description",
                       "value": "two"}])
        r = s.put("%s/%s/small_blob" % (SA, aid), data=b"abc",
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        patch(s, af, [{"op": "replace", "path": "/status",
                       "value": "active"}])
        patch(s, af, [{"op": "replace", "path": "/visibility",
                       "value": "public"}], token=ADMIN)
        patch(s, af, [{"op": "replace", "path": "/status",
                       "value": "deactivated"}], token=ADMIN)
        patch(s, af, [{"op": "replace", "path": "/status",
                       "value": "active"}], token=ADMIN)
        assert s.delete("%s/%s" % (SA, aid), token=ADMIN).status_code == 204
        r = s.req("PUT", "/quotas", token=ADMIN, json=[
            {"project_id": "q-" + uuid.uuid4().hex[:6], "project_quotas": [
                {"quota_name": "max_artifact_number", "quota_value": 3}]}])
        assert r.status_code == 200, r.text
        want = ["create", "update", "upload", "update", "activate",
                "update", "publish", "update", "deactivate", "update",
                "reactivate", "delete", "set_quotas"]
        got = lst.wait(len(want))
        time.sleep(1)
        got = lst.all()
    finally:
        s.stop()
        lst.close()
    assert not [g for g in got if "wrong_priority" in g]
    got = by_time(got)
    assert [g["event_type"] for g in got] == \
        ["artifact.artifact:" + w for w in want]
    ids = set()
    for g in got:
        assert g["publisher_id"] == "artifact.node-1"
        md = g["metadata"]
        assert set(md) == {"message_id", "timestamp"}
        uuid.UUID(md["message_id"])
        ids.add(md["message_id"])
        assert re.match(TS_RE, md["timestamp"]), md["timestamp"]
        if g["event_type"].endswith(":set_quotas"):
            assert g["payload"] is None
            continue
        p = g["payload"]
        assert set(p) == PAYLOAD_KEYS
        assert p["id"] == aid and p["type"] == "sample_artifact"
        time_re = V2_TIME_RE if driver == "messagingv2" else V1_TIME_RE
        assert re.match(time_re, p["created_at"]), p["created_at"]
    assert len(ids) == len(want)
    payloads = [g["payload"] for g in got]
    assert payloads[0]["description"] == "one"
    assert payloads[1]["description"] == "two"
    assert payloads[4]["status"] == "active" and payloads[4]["activated_at"]
    assert payloads[6]["visibility"] == "public"
    assert payloads[8]["status"] == "deactivated"
    assert payloads[11]["status"] == "active"      # before the deletion


@single
def test_both_drivers_and_topics():
    """driver = messaging,messagingv2 publishes each format (as two
    oslo.messaging drivers would), on every topic."""
    exchange = "glare-" + uuid.uuid4().hex[:8]
    t1, t2 = "ta" + uuid.uuid4().hex[:6], "tb" + uuid.uuid4().hex[:6]
    s = notify_server("messaging,messagingv2", exchange,
                      topics="%s,%s" % (t1, t2))
    try:
        new(s)
        for t in (t1, t2):
            got = raw_messages(t + ".info", 2)
            assert len(got) == 2
            kinds = sorted("oslo.version" in g["body"] for g in got)
            assert kinds == [False, True]
    finally:
        s.stop()


@pytest.mark.skipif(CLUSTER, reason="the broker restart runs once per "
                                    "make test, in the single-node pass")
def test_broker_restart_loses_nothing():
    exchange, topic = unique()
    lst = Listener(exchange, topic)
    s = notify_server("messagingv2", exchange, topic)
    port = int(RABBIT.rsplit(":", 1)[1].split("/")[0])
    ids = []
    slow = []
    down_seen = 0

    def broker_up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    try:
        for _ in range(5):
            ids.append(new(s)["id"])
        assert len(lst.wait(5)) == 5
        env = dict(os.environ, GLARED_RABBIT_PORT=str(port))
        restart = subprocess.Popen(
            ["sh", os.path.join(ROOT, "scripts", "rabbitmq.sh"), "restart"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while restart.poll() is None and time.time() < deadline:
            t0 = time.time()
            ids.append(new(s)["id"])
            took = time.time() - t0
            if took > 2:
                slow.append(took)
            if not broker_up():
                down_seen += 1
            time.sleep(0.2)
        out = restart.communicate(timeout=60)[0]
        assert restart.returncode == 0, out
        for _ in range(3):
            ids.append(new(s)["id"])
        got = lst.wait(len(ids), timeout=90)
    finally:
        s.stop()
        lst.close()
    assert down_seen > 0, "no request was made while the broker was down"
    assert not slow, "API calls blocked on the broker: %r" % slow
    got_ids = [g["payload"]["id"] for g in got]
    assert sorted(set(got_ids)) == sorted(ids), \
        "lost: %r" % (set(ids) - set(got_ids))
