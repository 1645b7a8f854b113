"""A registry that misbehaves on purpose, for tdg's hostile-input trials.

The first component of the repository names the fault: GET /v2/<fault>/img/manifests/<ref>.
Prints its port on stdout, then serves until killed. Standard library only.

  endless-manifest  200, no length, bytes until the client hangs up
  huge-manifest     200 with Content-Length: 100 MiB, and the bytes
  endless-error     500, no length, an error body that never ends
  stall             reads the request, answers nothing
  drip              200 with Content-Length: 4096, one byte every 0.2 s
  endless-token     401 Bearer; the token endpoint answers without end
  html-token        401 Bearer; the token endpoint answers a login page
  stalled-blob      a sound manifest and config; the layer stops half-way
  realm-elsewhere   401 Bearer with a plain-HTTP realm on another host
  layout            a well-behaved registry over the OCI layout $TDG_FAULT_LAYOUT, with the
                    OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>), which Debian's
                    registry lacks
  endless-tags      a tag list whose pages are empty and each names a next one, forever
  tags-elsewhere    a tag list whose next page is on another host
  readback-fails    passes every request on to the registry at $TDG_FAULT_UPSTREAM (host:port,
                    which then names itself in upload Locations), until a tag is written: every
                    later read of that tag answers 500, as a registry whose reads fail after a
                    write (or a dropped connection) does
"""

import hashlib
import http.client
import http.server
import json
import os
import socketserver
import sys
import time

CHUNK = b" " * 65536


def document(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return raw, "sha256:" + hashlib.sha256(raw).hexdigest()


CONFIG, CONFIG_DIGEST = document(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}, "config": {}}
)
LAYER_SIZE = 8 << 20
LAYER_DIGEST = "sha256:" + "1" * 64
MANIFEST, _ = document(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG_DIGEST, "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER_DIGEST, "size": LAYER_SIZE}],
    }
)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def endless(self, status, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            while True:
                self.wfile.write(CHUNK)
        except OSError:
            pass
        self.close_connection = True

    def answer(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def challenge(self, kind):
        realm = "http://127.0.0.1:%d/token/%s" % (self.server.server_address[1], kind)
        self.answer(401, b"{}", extra=[("WWW-Authenticate", 'Bearer realm="%s",service="faulty"' % realm)])

    def do_GET(self):
        parts = self.path.split("/")
        if self.path.startswith("/token/"):
            kind = parts[2].split("?")[0]
            if kind == "endless-token":
                return self.endless(200, "application/json")
            return self.answer(200, b"<html><body>Sign in</body></html>", "text/html")
        if len(parts) < 3 or parts[1] != "v2":
            return self.answer(200, b"{}")
        fault = parts[2]
        if fault in ("endless-token", "html-token") and "Authorization" not in self.headers:
            return self.challenge(fault)
        if fault == "layout":
            return self.layout(parts)
        if fault == "readback-fails":
            return self.forward()
        if fault == "realm-elsewhere":
            realm = 'Bearer realm="http://realm.example.invalid/token",service="x"'
            return self.answer(401, b"{}", extra=[("WWW-Authenticate", realm)])
        if fault in ("endless-tags", "tags-elsewhere") and "/tags/list" in self.path:
            n = self.path.count("x") + 1
            if fault == "endless-tags":
                link = "</v2/endless-tags/img/tags/list?n=1000&last=%s>; rel=\"next\"" % ("x" * n)
                body = b'{"name":"endless-tags/img","tags":[]}'
            else:
                link = "<http://elsewhere.example.invalid/v2/tags-elsewhere/img/tags/list?last=a>; rel=\"next\""
                body = b'{"name":"tags-elsewhere/img","tags":["a"]}'
            return self.answer(200, body, extra=[("Link", link)])
        if fault == "endless-manifest":
            return self.endless(200, "application/vnd.oci.image.manifest.v1+json")
        if fault == "endless-error":
            return self.endless(500, "text/plain")
        if fault == "huge-manifest":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(100 << 20))
            self.end_headers()
            try:
                for _ in range((100 << 20) // len(CHUNK)):
                    self.wfile.write(CHUNK)
            except OSError:
                pass
            return
        if fault == "stall":
            time.sleep(3600)
            return
        if fault == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
            try:
                for _ in range(4096):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        if fault == "stalled-blob":
            if "/manifests/" in self.path:
                return self.answer(200, MANIFEST, "application/vnd.oci.image.manifest.v1+json")
            if self.path.endswith(CONFIG_DIGEST):
                return self.answer(200, CONFIG, "application/octet-stream")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(LAYER_SIZE))
            self.end_headers()
            try:
                for _ in range((LAYER_SIZE // 2) // len(CHUNK)):
                    self.wfile.write(CHUNK)
                self.wfile.flush()
                time.sleep(3600)
            except OSError:
                pass
            return
        self.answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such fault"}]}')


    do_HEAD = do_GET

    def do_PUT(self):
        return self.forward()

    do_POST = do_PUT
    do_PATCH = do_PUT

    def forward(self):
        upstream = os.environ["TDG_FAULT_UPSTREAM"]
        parts = self.path.split("?")[0].split("/")
        ref = parts[-1] if len(parts) >= 5 and parts[-2] == "manifests" else None
        if ref in self.server.written and self.command in ("GET", "HEAD"):
            return self.answer(500, b'{"errors":[{"code":"UNKNOWN","message":"read-back fault"}]}')
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = upstream
        conn = http.client.HTTPConnection(upstream)
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection") and not (
                k.lower() == "content-length" and self.command != "HEAD"
            ):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if self.command == "PUT" and ref and r.status == 201 and not ref.startswith("sha256:"):
            self.server.written.add(ref)

    def layout(self, parts):
        root = os.environ["TDG_FAULT_LAYOUT"]
        blob = lambda d: os.path.join(root, "blobs", "sha256", d.split(":", 1)[1])
        index = json.load(open(os.path.join(root, "index.json")))
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            if not ref.startswith("sha256:"):
                named = [m["digest"] for m in index["manifests"]
                         if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref]
                if not named:
                    return self.answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                ref = named[0]
            if not os.path.exists(blob(ref)):
                return self.answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
            body = open(blob(ref), "rb").read()
            return self.answer(200, body, json.loads(body).get("mediaType", "application/json"))
        if kind == "blobs":
            if not os.path.exists(blob(ref)):
                return self.answer(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
            return self.answer(200, open(blob(ref), "rb").read(), "application/octet-stream")
        if kind == "referrers":
            found = []
            for m in index["manifests"]:
                doc = json.load(open(blob(m["digest"])))
                if doc.get("subject", {}).get("digest") == ref:
                    found.append({"mediaType": doc["mediaType"], "digest": m["digest"], "size": m["size"],
                                  "artifactType": doc.get("artifactType")})
            body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                               "manifests": found}).encode()
            return self.answer(200, body, "application/vnd.oci.image.index.v1+json")
        return self.answer(404, b"{}")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    server.written = set()
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()
