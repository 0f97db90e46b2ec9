"""Init time of every function under a local Lambda runtime API, next to Node + sharp's
(issue "Performance": every function <= 10 MB stripped and its init <= 20 ms).

    python3 bench/init_time.py [--bin-dir $CARGO_TARGET_DIR/release] [--runs 11] [--json OUT]

Needs the functions' release builds (`cargo build --release --locked -p thumbnail ...`:
bench/regenerate.py builds them) and, for the Node row, Node with sharp installed by the shared
bench kit (~/.cache/imgbench/node/node_modules; --node-modules). Prints a Markdown table.

Lambda's init phase is the time from the start of the runtime process to its first
`GET /2018-06-01/runtime/invocation/next`: the runtime API is emulated here, on 127.0.0.1, and
each run spawns a fresh process with AWS_LAMBDA_RUNTIME_API pointing at it and the variables
Lambda and our template set (dummy credentials, AWS_ENDPOINT_URL at a stub S3 on 127.0.0.1:
nothing leaves this machine). Init is timed from just before the spawn to that first request.

The six S3-triggered functions and the Node function also get their sample event
(events/s3-<name>.json) queued before the spawn, so each run also times the first invocation
(the event handed out to the response posted: what Lambda bills after init): the stub S3 serves
samples/photo.jpg (1224x816 JPEG) as every source object and accepts every PUT. The Node function
(bench/node_runtime.js) does what `thumbnail` does by default: 256 px WebP at quality 80, with
an unsigned HTTP GET and PUT instead of an AWS SDK (a lower bound for a real Node function).

Sizes: each bootstrap's size after `strip` (the release profile strips already), and for Node
the sharp packages a function deploys (node_modules/sharp and @img, libvips included; the Node
runtime itself is Lambda's). Runs are interleaved across functions so that drift on a shared
machine hits them alike; the table shows the median and the range.
"""

import argparse
import http.server
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIGGERS = ["convert", "qr-overlay", "round-corner", "slice", "thumbnail", "watermark"]
SOURCE, OUTPUT = "imgfn-source", "imgfn-output"
# Local use only, as tools/local's LOCAL_URL_KEY.
URL_KEY = "imgfn-bench-url-key-not-a-secret-0123456789"


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A killed process drops its connections: expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(n + 2)[:n]
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += chunk
        return self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class RuntimeApi:
    """The Lambda runtime API (2018-06-01) on 127.0.0.1: hands out queued events, records when
    the process first asked for one and what it answered."""

    def __init__(self):
        self.events = queue.Queue()
        self.first_poll = None
        self.handed_out = {}
        self.outcomes = {}
        self.init_error = None
        self.done = threading.Event()
        api = self

        class H(Handler):
            def do_GET(self):
                now = time.perf_counter()
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self.reply(404)
                if api.first_poll is None:
                    api.first_poll = now
                    api.done.set()
                while True:
                    try:
                        rid, event = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if api.closed:
                            return self.reply(503)
                api.handed_out[rid] = time.perf_counter()
                deadline = str(int((time.time() + 60) * 1000))
                self.reply(200, json.dumps(event).encode(), [
                    ("Content-Type", "application/json"),
                    ("Lambda-Runtime-Aws-Request-Id", rid),
                    ("Lambda-Runtime-Deadline-Ms", deadline),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
                ])

            def do_POST(self):
                body = self.body()
                now = time.perf_counter()
                parts = self.path.split("/")
                if self.path == "/2018-06-01/runtime/init/error":
                    api.init_error = body.decode(errors="replace")
                    api.done.set()
                elif len(parts) == 6 and parts[3] == "invocation":
                    api.outcomes[parts[4]] = (parts[5], now, body.decode(errors="replace"))
                    api.done.set()
                else:
                    return self.reply(404)
                self.reply(202, b"{}", [("Content-Type", "application/json")])

        self.closed = False
        self.server = Server(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event):
        rid = str(uuid.uuid4())
        self.events.put((rid, event))
        return rid

    def close(self):
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


class StubS3:
    """Enough of S3 for the first invocation, path-style on 127.0.0.1, no signature checks:
    every object of the source bucket is `photo`; PUTs are accepted (and kept)."""

    def __init__(self, photo):
        etag = '"' + uuid.uuid5(uuid.NAMESPACE_OID, str(len(photo))).hex + '"'
        store = {}

        class H(Handler):
            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = self.path.split("?")[0]
                if "list-type=2" in self.path:
                    xml = b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>'
                    return self.reply(200, xml, [("Content-Type", "application/xml")])
                body = store.get(path)
                if body is None and path.startswith(f"/{SOURCE}/"):
                    body = photo
                if body is None:
                    xml = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>'
                    return self.reply(404, xml, [("Content-Type", "application/xml")])
                if self.headers.get("If-Match") not in (None, etag):
                    return self.reply(412)
                self.reply(200, body, [("Content-Type", "image/jpeg"), ("ETag", etag),
                                       ("Last-Modified", "Mon, 30 Nov 2026 12:00:00 GMT")])

            def do_PUT(self):
                store[self.path.split("?")[0]] = self.body()
                self.reply(200, b"", [("ETag", '"0123456789abcdef0123456789abcdef"')])

            def do_DELETE(self):
                store.pop(self.path.split("?")[0], None)
                self.reply(204)

        self.server = Server(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"


def lambda_env(name, api, s3, extra):
    """What Lambda gives a function (provided.al2023 / nodejs20.x), our template's variables and
    dummy credentials; nothing from this shell (env_clear, as Lambda)."""
    home = tempfile.gettempdir()
    env = {
        "AWS_LAMBDA_RUNTIME_API": api.host,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHLOCAL",
        "AWS_SECRET_ACCESS_KEY": "bench-local-secret",
        "AWS_SESSION_TOKEN": "bench-local-token",
        "AWS_ENDPOINT_URL": s3.endpoint,
        # No instance metadata and no profile files: the credentials above are all there is.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.path.join(home, "imgfn-bench-no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "imgfn-bench-no-aws-credentials"),
        "HOME": home,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "IMGFN_SOURCE_BUCKET": SOURCE,
        "IMGFN_OUTPUT_BUCKET": OUTPUT,
        "IMGFN_URL_KEYS": URL_KEY,
        "IMGFN_CDN_URL": "http://127.0.0.1:9",
        "IMGFN_RENDITION_PREFIXES": "uploads/",
    }
    env.update(extra)
    return env


def run_once(cmd, name, event, s3, extra, timeout=30.0):
    """One cold start: (init ms, first invocation ms or None, error or None)."""
    api = RuntimeApi()
    rid = api.invoke(event) if event is not None else None
    log = tempfile.TemporaryFile()
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=lambda_env(name, api, s3, extra), stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        try:
            deadline = start + timeout
            while time.perf_counter() < deadline:
                if api.init_error or (rid and rid in api.outcomes) or (not rid and api.first_poll):
                    break
                if proc.poll() is not None:
                    break
                api.done.wait(0.05)
                api.done.clear()
        finally:
            proc.kill()
            proc.wait()
        log.seek(0)
        tail = log.read().decode(errors="replace")[-600:]
        if api.init_error:
            return None, None, f"init error: {api.init_error[:300]}"
        if api.first_poll is None:
            return None, None, f"never polled (exit {proc.returncode}): {tail}"
        init = (api.first_poll - start) * 1000
        if not rid:
            return init, None, None
        if rid not in api.outcomes:
            return init, None, f"no answer to the event: {tail}"
        kind, at, body = api.outcomes[rid]
        if kind != "response":
            return init, None, f"invocation error: {body[:300]}"
        return init, (at - api.handed_out[rid]) * 1000, None
    finally:
        api.close()
        log.close()


def stripped_size(path):
    with tempfile.NamedTemporaryFile() as tmp:
        subprocess.run(["strip", "-o", tmp.name, path], check=True)
        return os.path.getsize(tmp.name)


def tree_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
               if not os.path.islink(os.path.join(d, f)))


def median_range(xs):
    if not xs:
        return "-"
    return f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin-dir", default=os.path.join(target, "release"))
    ap.add_argument("--node-modules", default=os.path.expanduser("~/.cache/imgbench/node/node_modules"))
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--functions", help="comma-separated; default: every crate under functions/")
    ap.add_argument("--json")
    a = ap.parse_args()

    names = [n for n in a.functions.split(",") if n] if a.functions is not None else sorted(os.listdir(os.path.join(ROOT, "functions")))
    photo = open(os.path.join(ROOT, "samples", "photo.jpg"), "rb").read()
    s3 = StubS3(photo)
    subjects = []  # (label, cmd, lambda name, event, size, extra env)
    for name in names:
        exe = os.path.join(a.bin_dir, name)
        if not os.path.isfile(exe):
            sys.exit(f"no {exe}: build it first (cargo build --release --locked -p {name})")
        event = None
        if name in TRIGGERS:
            event = json.load(open(os.path.join(ROOT, "events", f"s3-{name}.json")))
        subjects.append((name, [exe], name, event, stripped_size(exe), {}))
    node = shutil.which("node")
    sharp = os.path.join(a.node_modules, "sharp")
    if node and os.path.isdir(sharp):
        size = tree_size(sharp) + tree_size(os.path.join(a.node_modules, "@img"))
        event = json.load(open(os.path.join(ROOT, "events", "s3-thumbnail.json")))
        subjects.append(("Node + sharp (thumbnail)", [node, os.path.join(ROOT, "bench", "node_runtime.js")],
                         "node-sharp", event, size, {"NODE_PATH": a.node_modules}))
    else:
        print(f"note: no node or no sharp under {a.node_modules}: the Node row is left out", file=sys.stderr)

    results = {s[0]: {"init": [], "invoke": [], "errors": []} for s in subjects}
    for i in range(a.runs):
        for label, cmd, name, event, _, extra in subjects:
            init, invoke, err = run_once(cmd, name, event, s3, extra)
            r = results[label]
            if init is not None:
                r["init"].append(init)
            if invoke is not None:
                r["invoke"].append(invoke)
            if err:
                r["errors"].append(err)
        print(f"run {i + 1}/{a.runs}", file=sys.stderr)
    s3.server.shutdown()

    lines = ["| function | stripped bytes | MB | init ms, median (range) | first invocation ms, median (range) |",
             "|---|---:|---:|---:|---:|"]
    rows = []
    for label, _, _, event, size, _ in subjects:
        r = results[label]
        if r["errors"]:
            print(f"{label}: {len(r['errors'])} failed runs, first: {r['errors'][0]}", file=sys.stderr)
        inv = median_range(r["invoke"]) if event is not None else "-"
        if label.startswith("Node"):
            lines.append(f"| {label} | {size} (sharp + libvips packages) | {size / 1e6:.1f} | "
                         f"{median_range(r['init'])} | {inv} |")
        else:
            lines.append(f"| {label} | {size} | {size / 1e6:.1f} | {median_range(r['init'])} | {inv} |")
        rows.append({"function": label, "bytes": size, "init_ms": r["init"], "invoke_ms": r["invoke"],
                     "errors": r["errors"]})
    table = "\n".join(lines)
    print(table)
    if a.json:
        json.dump({"runs": a.runs, "rows": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
