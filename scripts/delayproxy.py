#!/usr/bin/python3
"""delayproxy.py - a loopback TCP proxy that delays every byte each way.

    scripts/delayproxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards each connection to
127.0.0.1:TARGET_PORT; whatever one side sends reaches the other DELAY_MS
later (a network round trip of 2 x DELAY_MS), without limiting the
throughput: pieces are queued with their arrival time and sent when due.
Prints "ready" once listening; stops on SIGTERM / SIGINT.

Used by the PostgreSQL-behind-a-slow-network benchmark (bench/pgwait.py)
and test (tests/http/test_15_pg_wait.py). Loopback only.
"""
import collections
import signal
import socket
import sys
import threading
import time


class Pipe:
    """One direction: read from src, deliver to dst delay seconds later."""

    def __init__(self, src, dst, delay):
        self.src, self.dst, self.delay = src, dst, delay
        self.q = collections.deque()
        self.cv = threading.Condition()
        self.eof = False

    def read(self):
        try:
            while True:
                data = self.src.recv(65536)
                with self.cv:
                    self.q.append((time.monotonic() + self.delay, data))
                    self.cv.notify()
                if not data:
                    return
        except OSError:
            with self.cv:
                self.q.append((time.monotonic() + self.delay, b""))
                self.cv.notify()

    def write(self):
        try:
            while True:
                with self.cv:
                    while not self.q:
                        self.cv.wait()
                    due, data = self.q.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
        except OSError:
            pass


def serve(conn, target_port, delay):
    try:
        up = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        conn.close()
        return
    for s in (conn, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pipes = [Pipe(conn, up, delay), Pipe(up, conn, delay)]
    threads = [threading.Thread(target=f, daemon=True)
               for p in pipes for f in (p.read, p.write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.close()
    up.close()


def main():
    port, target, delay_ms = int(sys.argv[1]), int(sys.argv[2]), \
        float(sys.argv[3])
    lis = socket.socket()
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lis.bind(("127.0.0.1", port))
    lis.listen(256)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            conn, _ = lis.accept()
            threading.Thread(target=serve, args=(conn, target,
                                                 delay_ms / 1000.0),
                             daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
