"""A small in-memory Hugging Face Hub for tests: standard-library HTTP on 127.0.0.1.

It speaks the endpoints `huggingface_hub` (checked with 2.x, pinned in pyproject.toml) actually calls for
create_repo, upload_folder/create_commit (preupload, NDJSON commit, validate-yaml), repo/revision info,
paths-info, tree and hf_hub_download (HEAD/GET on resolve with X-Repo-Commit / ETag), and answers
errors with the X-Error-Code headers the client maps to RepositoryNotFoundError, EntryNotFoundError and
RevisionNotFoundError. Files are kept as regular (non-LFS, non-Xet) blobs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


@dataclass
class Repo:
    private: bool
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, files) oldest first

    def files(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if not self.commits:
            return ("0" * 40, {}) if revision == "main" else None
        if revision == "main":
            return self.commits[-1]
        for sha, files in self.commits:
            if sha == revision:
                return sha, files
        return None


def _sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class FakeHub:
    def __init__(self, port: int, token: str = "hf_test_token", user: str = "tester"):
        self.port, self.token, self.user = port, token, user
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.seen_authorization: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def authorized(self, header: str | None) -> bool:
        return header == f"Bearer {self.token}"


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    # -- plumbing ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str | None, message: str):
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message} if code else
                   {"X-Error-Message": message})

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _auth(self) -> bool:
        auth = self.headers.get("Authorization")
        if auth:
            self.hub.seen_authorization.append(auth)
        return self.hub.authorized(auth)

    def _repo(self, repo_id: str, write: bool = False) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._auth()):
            self._error(404 if repo is None else 401, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        if write and not self._auth():
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        return repo

    def _lookup(self, repo_id: str, revision: str):
        """(repo, sha, files) at ``revision``, or None after answering the error."""
        repo = self._repo(repo_id)
        if repo is None:
            return None
        found = repo.files(unquote(revision))
        if found is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo, *found

    # -- routes -----------------------------------------------------------------------------------
    def do_HEAD(self):
        self._route()

    def do_GET(self):
        self._route()

    def do_POST(self):
        self._route()

    def _route(self):
        path = urlparse(self.path).path
        self.hub.requests.append((self.command, path))
        m = re.fullmatch(r"/api/repos/create", path)
        if m and self.command == "POST":
            return self._create()
        if path == "/api/validate-yaml" and self.command == "POST":
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if path == "/api/whoami-v2":
            if not self._auth():
                return self._error(401, None, "Invalid user token.")
            return self._json(200, {"name": self.hub.user, "type": "user", "orgs": []})
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if m and self.command == "GET":
            return self._info(m.group(1), m.group(2) or "main")
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/(.+)", path)
        if m and self.command == "POST":
            return self._preupload(m.group(1))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/(.+)", path)
        if m and self.command == "POST":
            return self._commit(m.group(1), unquote(m.group(2)))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/paths-info/(.+)", path)
        if m and self.command == "POST":
            return self._paths_info(m.group(1), m.group(2))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if m and self.command == "GET":
            return self._tree(m.group(1), m.group(2), m.group(3) or "")
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and self.command in ("GET", "HEAD"):
            return self._resolve(m.group(1), m.group(2), unquote(m.group(3)))
        self._error(404, None, f"fake hub: no route for {self.command} {path}")

    def _create(self):
        if not self._auth():
            return self._error(401, None, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        namespace = payload.get("organization") or self.hub.user
        repo_id = f"{namespace}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url})
        private = payload.get("visibility", "private" if payload.get("private") else "public") != "public"
        self.hub.repos[repo_id] = Repo(private=private)
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _info(self, repo_id, revision):
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        repo, sha, files = found
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(files)], "tags": [], "downloads": 0,
                         "likes": 0})

    def _preupload(self, repo_id):
        if self._repo(repo_id, write=True) is None:
            return
        payload = json.loads(self._body())
        self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in payload.get("files", [])], "commitOid": None})

    def _commit(self, repo_id, revision):
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if revision != "main":
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        _, current = repo.files("main")
        files = dict(current)
        summary = ""
        for line in self._body().decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                return self._error(400, None, f"fake hub: unsupported commit operation {key}")
        sha = _sha(json.dumps(sorted((p, _sha(d)) for p, d in files.items())).encode() + summary.encode()
                   + str(len(repo.commits)).encode())
        repo.commits.append((sha, files))
        self._json(200, {"commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "commitMessage": summary, "pullRequestUrl": None})

    def _entries(self, files: dict[str, bytes], paths):
        return [{"type": "file", "path": p, "size": len(files[p]), "oid": _sha(files[p])} for p in paths if p in files]

    def _paths_info(self, repo_id, revision):
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        repo, sha, files = found
        body = self._body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            from urllib.parse import parse_qs

            paths = parse_qs(body).get("paths", [])
        self._json(200, self._entries(files, paths))

    def _tree(self, repo_id, revision, prefix):
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        repo, sha, files = found
        prefix = unquote(prefix).strip("/")
        paths = [p for p in sorted(files) if not prefix or p.startswith(prefix + "/")]
        self._json(200, self._entries(files, paths))

    def _resolve(self, repo_id, revision, filename):
        found = self._lookup(repo_id, revision)
        if found is None:
            return
        repo, sha, files = found
        if filename not in files:
            return self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}")
        data = files[filename]
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{_sha(data)}"'},
                   content_type="application/octet-stream")
