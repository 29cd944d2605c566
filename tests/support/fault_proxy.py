#!/usr/bin/env python3
"""An HTTP proxy that injects faults in front of a test object store.

Usage: fault_proxy.py --upstream HOST:PORT [--seed N] [--error P] [--drop P] [--slow P] [--delay S]

Prints the port it listens on (127.0.0.1), then forwards every request to the
upstream server. With probability --error it answers 503 instead, with --drop
it closes the connection without an answer, with --slow it waits --delay
seconds first. Decisions come from a seeded generator, so a run is repeatable
up to thread timing.
"""
import argparse
import http.client
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "te", "trailers", "transfer-encoding", "upgrade"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--error", type=float, default=0.1)
    p.add_argument("--drop", type=float, default=0.05)
    p.add_argument("--slow", type=float, default=0.05)
    p.add_argument("--delay", type=float, default=2.0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    lock = threading.Lock()
    host, port = args.upstream.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                roll = rng.random()
            if roll < args.error:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if roll < args.error + args.drop:
                self.close_connection = True
                self.connection.close()
                return
            if roll < args.error + args.drop + args.slow:
                time.sleep(args.delay)
            upstream = http.client.HTTPConnection(host, int(port), timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for k, v in response.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # dropped and reset connections are the point

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
