"""The few lines a Python app needs to log to logviewer (or the rsyslog drop-in).

    python3 app.py                     # UDP to localhost:10514, Python's default
    python3 app.py --tcp               # TCP: each message ends with NUL
    python3 app.py --host logs --port 10514

Only the standard library: logging.handlers.SysLogHandler.
"""

import argparse
import logging
import logging.handlers
import socket


def syslog_handler(host="localhost", port=10514, tcp=False):
    """A handler that sends every record to logviewer's syslog port."""
    socktype = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    handler = logging.handlers.SysLogHandler(address=(host, port), socktype=socktype)
    # "<logger name>: " becomes the record's _app, the rest its short_message;
    # the level travels as the syslog severity (the record's level).
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=10514)
    parser.add_argument("--tcp", action="store_true", help="TCP instead of UDP")
    args = parser.parse_args()

    log = logging.getLogger("shop")
    log.setLevel(logging.DEBUG)
    log.addHandler(syslog_handler(args.host, args.port, args.tcp))

    log.debug("cache warm: 1200 keys")
    log.info("order 4711 paid: 3 items, 59.90 EUR")
    log.warning("payment provider slow: 2.3 s")
    try:
        1 / 0
    except ZeroDivisionError:
        # A traceback spans lines: over UDP it stays one record; over TCP
        # every line becomes a record (syslog framing ends a message at LF).
        log.exception("could not compute the discount")
    logging.shutdown()


if __name__ == "__main__":
    main()
