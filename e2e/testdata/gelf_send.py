"""A GELF sender written from the GELF 1.1 specification, for the e2e tests.

usage: gelf_send.py HOST PORT MODE RECORD...

MODE is one of
  udp                     one datagram per record, uncompressed JSON
  udp-gzip, udp-zlib      one datagram per record, compressed
  udp-chunked             chunks of CHUNK bytes, sent out of order
  udp-chunked-zlib        the same, of the zlib-compressed record
  udp-chunked-incomplete  all chunks but one: the message never completes
  udp-raw                 the RECORD text itself, not even JSON-checked
  tcp                     one connection, each record followed by a NUL
RECORD is a JSON object. Only the standard library is used.
"""
import gzip
import json
import os
import socket
import sys
import zlib

CHUNK = 1000
MAGIC = b"\x1e\x0f"
MAX_CHUNKS = 128


def chunks(payload):
    """Split payload into GELF chunks: magic, 8-byte ID, sequence number, count."""
    message_id = os.urandom(8)
    parts = [payload[i:i + CHUNK] for i in range(0, len(payload), CHUNK)]
    if len(parts) > MAX_CHUNKS:
        sys.exit("message needs %d chunks, GELF allows %d" % (len(parts), MAX_CHUNKS))
    return [MAGIC + message_id + bytes([seq, len(parts)]) + p for seq, p in enumerate(parts)]


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    records = sys.argv[4:]
    if mode == "tcp":
        with socket.create_connection((host, port)) as s:
            for r in records:
                s.sendall(json.dumps(json.loads(r)).encode() + b"\0")
        return
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for r in records:
        if mode == "udp-raw":
            s.sendto(r.encode(), (host, port))
            continue
        data = json.dumps(json.loads(r)).encode()
        if mode == "udp-gzip":
            data = gzip.compress(data)
        elif mode in ("udp-zlib", "udp-chunked-zlib"):
            data = zlib.compress(data)
        if mode.startswith("udp-chunked"):
            parts = chunks(data)
            if len(parts) < 2:
                sys.exit("record too short to chunk")
            if mode == "udp-chunked-incomplete":
                parts = parts[:-1]
            # Odd sequence numbers first, then even, each half backwards:
            # never in order.
            parts = parts[1::2][::-1] + parts[0::2][::-1]
            for p in parts:
                s.sendto(p, (host, port))
        else:
            s.sendto(data, (host, port))
    s.close()


if __name__ == "__main__":
    main()
