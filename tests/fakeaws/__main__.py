"""Command line: run the fake until SIGTERM or SIGINT, for shell tests.

    /usr/bin/python3 -m fakeaws --fixture f.json \
        --listen service=ec2,host=10.99.0.1,port=443,tls_cert=c.pem,tls_key=k.pem \
        --listen service=imds,host=169.254.169.254,port=80 \
        --listen service=control,host=127.0.0.1,port=0

Prints one JSON line, {"<listener name>": "<base URL>", ...}, on stdout once every
listener is bound; drive it through the control listener (README.md).
"""

import argparse
import json
import logging
import signal
import sys
import threading

from . import FakeAWS

_LISTEN_KEYS = {"service", "host", "port", "name", "instance_id", "tls_cert", "tls_key"}


def _listener(spec):
    fields = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        if not eq or key not in _LISTEN_KEYS:
            raise argparse.ArgumentTypeError(
                f"bad --listen item '{item}': expected key=value with key in {sorted(_LISTEN_KEYS)}")
        fields[key] = value
    if "service" not in fields:
        raise argparse.ArgumentTypeError("--listen needs service=...")
    if ("tls_cert" in fields) != ("tls_key" in fields):
        raise argparse.ArgumentTypeError("--listen: tls_cert and tls_key go together")
    if "tls_cert" in fields:
        fields["tls"] = {"cert": fields.pop("tls_cert"), "key": fields.pop("tls_key")}
    if "port" in fields:
        fields["port"] = int(fields["port"])
    return fields


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fakeaws", description=__doc__.split("\n")[0])
    parser.add_argument("--fixture", required=True, help="fixture JSON file")
    parser.add_argument("--listen", type=_listener, action="append", required=True,
                        metavar="service=S,host=H,port=P[,name=N][,instance_id=I][,tls_cert=C,tls_key=K]")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generated id and fault")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="fakeaws %(levelname)s %(message)s")
    with open(args.fixture, encoding="utf-8") as f:
        fixture = json.load(f)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    fake = FakeAWS(fixture, seed=args.seed).start(args.listen)
    try:
        print(json.dumps(fake.endpoints, sort_keys=True), flush=True)
        done.wait()
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
