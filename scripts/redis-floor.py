#!/usr/bin/env python3
"""Measures the least Redis CPU a record can cost under issue 3's design.

Issue 3 asks the ingest to PUBLISH every record and to XADD it to a capped
stream per channel. This script sends N records to a private redis-server as
plain pipelined commands (redis-cli --pipe; no Lua, no shared ID sequence, no
channel registry: less than logviewer does) with one PSUBSCRIBE * reader
attached, and reads Redis's own CPU time (INFO cpu) around each run:

  publish       PUBLISH per record (what the proof of concept's rsyslog does)
  xadd          XADD key MAXLEN ~ M <id> d <record> per record
  xadd+publish  both per record: the floor of the issue's design

The record is one logviewer really stored (taken from --sample-port's
streams), so sizes match scenario 2. Writes JSON to --out:
{"record_bytes": B, "records": N, "runs": R, "us_per_record": {mode: least}}.
The least of the runs is kept: it is a floor, and noise on a shared machine
only ever adds CPU time.
"""

import argparse
import json
import socket
import subprocess
import sys
import threading
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A minimal RESP client: enough for INFO, SCAN, XREVRANGE and DEL."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = self.sock.makefile("rb")

    def do(self, *args):
        self.sock.sendall(encode(*args))
        return self.read()

    def read(self):
        line = self.buf.readline()
        if not line:
            raise EOFError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def cpu_seconds(self):
        info = self.do("INFO", "cpu").decode()
        total = 0.0
        for line in info.splitlines():
            if line.startswith(("used_cpu_user:", "used_cpu_sys:")):
                total += float(line.split(":", 1)[1])
        return total


def sample_record(port):
    """The newest record logviewer stored in any stream of that Redis."""
    c = Conn(port)
    cursor = b"0"
    while True:
        cursor, keys = c.do("SCAN", cursor, "MATCH", "*logviewer:stream:*", "COUNT", 1000)
        for k in keys:
            entries = c.do("XREVRANGE", k, "+", "-", "COUNT", 1)
            if entries:
                fields = entries[0][1]
                if b"d" in fields:  # one record per entry (rsyslog's drop-in)
                    return fields[fields.index(b"d") + 1]
                # a batch: records "<off>,<len>:<GELF>"; the first one
                blob = fields[fields.index(b"b") + 1]
                head, _, rest = blob.partition(b":")
                return rest[: int(head.split(b",")[1])]
        if cursor == b"0":
            raise RuntimeError("no logviewer stream in the sample Redis")


def subscriber(port, stop, ready):
    """PSUBSCRIBE * and read everything until stop is set."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(encode("PSUBSCRIBE", "*"))
    s.settimeout(0.2)
    ready.set()
    while not stop.is_set():
        try:
            if not s.recv(1 << 20):
                return
        except socket.timeout:
            pass


def commands(mode, record, n, maxlen):
    out = []
    for i in range(n):
        if mode in ("xadd", "xadd+publish"):
            out.append(encode("XADD", "floor:stream", "MAXLEN", "~", maxlen, f"1-{i + 1}", "d", record))
        if mode in ("publish", "xadd+publish"):
            out.append(encode("PUBLISH", "floor", record))
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True, help="the private redis-server to measure")
    ap.add_argument("--sample-port", type=int, required=True, help="a Redis logviewer published into")
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--maxlen", type=int, default=10000, help="MAXLEN ~ of the stream (logviewer's --history)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    record = sample_record(a.sample_port)
    c = Conn(a.port)
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=subscriber, args=(a.port, stop, ready), daemon=True)
    t.start()
    ready.wait(5)
    time.sleep(0.2)
    result, all_runs = {}, {}
    for mode in ("publish", "xadd", "xadd+publish"):
        payload = commands(mode, record, a.records, a.maxlen)
        costs = []
        for _ in range(a.runs):
            c.do("DEL", "floor:stream")
            before = c.cpu_seconds()
            p = subprocess.run(["redis-cli", "-p", str(a.port), "--pipe"], input=payload,
                               capture_output=True, timeout=300)
            if p.returncode != 0 or b"errors: 0," not in p.stdout:
                sys.exit(f"redis-floor: {mode}: redis-cli --pipe: {p.stdout.decode()} {p.stderr.decode()}")
            time.sleep(0.3)  # let Redis finish writing to the subscriber
            costs.append((c.cpu_seconds() - before) / a.records * 1e6)
        result[mode] = round(min(costs), 3)
        all_runs[mode] = [round(x, 3) for x in costs]
        print(f"redis-floor: {mode}: {result[mode]} us of Redis CPU per record "
              f"(runs: {', '.join(f'{x:.2f}' for x in costs)})")
    stop.set()
    with open(a.out, "w") as f:
        json.dump({"record_bytes": len(record), "records": a.records, "runs": a.runs, "all_runs": all_runs,
                   "maxlen": a.maxlen, "us_per_record": result}, f)


if __name__ == "__main__":
    main()
