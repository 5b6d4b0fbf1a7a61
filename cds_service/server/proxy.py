"""The front of `cds-service serve`: Debian's nginx, between the network and gunicorn's unix socket.

Why (bench/slow_clients.py, README "What faces the network"): gunicorn's `gthread` worker waits for a
connection's first byte off-thread but then reads the headers and body on a worker thread, so a few
connections trickling their headers or body hold every thread and the service stops answering. nginx
reads each request completely in its event loop (`proxy_request_buffering on`), with a deadline for
the headers and an idle timeout for the body, before gunicorn sees it; a slow reader of the answer
is nginx's problem too (`proxy_buffering on`). gunicorn then only ever gets complete requests.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from cds_service.config import Settings

NGINX_CANDIDATES = ("/usr/sbin/nginx",)

# nginx's own refusals (too large, upstream down or late) in the shape of every other error (ERR-1):
# an OperationOutcome with the same issue codes as cds_service/http/errors.py.
_ERRORS = {
    413: ("too-costly", "The body is larger than the configured limit."),
    502: ("transient", "The service is not available; try again."),
    504: ("timeout", "The service did not answer in time."),
}


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def _outcome(code: str, message: str) -> str:
    return ('{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"%s","diagnostics":"%s"}]}'
            % (code, message))


def _listen(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _user_directive() -> str:
    """As root, nginx's workers (which parse what the network sends) drop to `nobody`; otherwise they
    run as the user that started them and the directive would only cause a warning."""
    if os.geteuid() != 0:
        return ""
    nobody = pwd.getpwnam("nobody")
    return f"user {nobody.pw_name} {grp.getgrgid(nobody.pw_gid).gr_name};\n"


def _forwarding_peers(allowed: tuple[str, ...]) -> str:
    """`geo` entries for the peers whose forwarded headers are believed (Settings checked each is a network or *)."""
    if "*" in allowed:
        return "        default 1;"
    return "\n".join(["        default 0;", *(f"        {entry} 1;" for entry in allowed)])


def render_config(settings: Settings, *, host: str, port: int, upstream_socket: Path, run_dir: Path,
                  graceful_timeout_s: int, upstream_timeout_s: int) -> str:
    """The whole nginx configuration: one server, every path under `run_dir` (no system file is read)."""
    error_pages = "\n".join(f"        error_page {status} @error{status};" for status in _ERRORS)
    error_locations = "\n".join(
        f"        location @error{status} {{\n"
        f"            default_type application/fhir+json;\n"
        f"            return {status} '{_outcome(code, message)}';\n"
        f"        }}" for status, (code, message) in _ERRORS.items())
    return f"""# Written by `cds-service serve` (cds_service/server/proxy.py) for this run; not read from /etc/nginx.
{_user_directive()}worker_processes 1;
daemon off;
pid {run_dir}/nginx.pid;
error_log stderr error;
# SIGQUIT (how `serve` stops it): stop accepting, finish the requests in flight, but not for longer than this.
worker_shutdown_timeout {graceful_timeout_s}s;

events {{
    worker_connections {settings.max_connections};
}}

http {{
    access_log off;  # the service writes one JSON line per call (no query strings, no ids)
    server_tokens off;
    default_type application/octet-stream;
    client_body_temp_path {run_dir}/client_body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;

    # Slow clients: the whole header block within header_timeout_s of the first byte (a deadline, not
    # reset by each line); the body may pause at most body_timeout_s between two reads; a client that
    # stops reading the answer is dropped after body_timeout_s. Timed-out connections are reset.
    client_header_timeout {settings.header_timeout_s}s;
    client_body_timeout {settings.body_timeout_s}s;
    send_timeout {settings.body_timeout_s}s;
    reset_timedout_connection on;
    keepalive_timeout 15s;
    client_max_body_size {settings.max_body_bytes};
    client_body_buffer_size 64k;  # a hook request is ~10 KB; larger bodies wait in client_body_temp_path
    large_client_header_buffers 4 16k;  # a JWT with its certificate chain fits

    # Forwarded headers: only the peers in `forwarded_allow_ips` (the TLS terminator) may tell the scheme
    # (http or https) and the client's address; for anyone else nginx sends what it saw itself. gunicorn
    # believes whatever nginx sends (a unix socket peer has no address to check), so this is the check.
    geo $cds_forwarding_peer {{
{_forwarding_peers(settings.forwarded_allow_ips)}
    }}
    map "$cds_forwarding_peer:$http_x_forwarded_proto" $cds_forwarded_proto {{
        "~^1:(?<cds_proto>https?)$" $cds_proto;
        default $scheme;
    }}
    map $cds_forwarding_peer $cds_forwarded_for {{
        1 $proxy_add_x_forwarded_for;
        default $remote_addr;
    }}

    server {{
        listen {_listen(host, port)} backlog=2048 default_server;

        location / {{
            proxy_pass http://unix:{upstream_socket}:;
            # gunicorn gets a request only once nginx holds all of it, and hands its answer to nginx at once.
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_buffers 16 32k;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $cds_forwarded_for;
            proxy_set_header X-Forwarded-Proto $cds_forwarded_proto;
            proxy_set_header X-Forwarded-Ssl "";  # gunicorn reads these as the scheme too: never from a client
            proxy_set_header X-Forwarded-Protocol "";
            proxy_connect_timeout 5s;
            proxy_send_timeout {upstream_timeout_s}s;
            proxy_read_timeout {upstream_timeout_s}s;
            proxy_next_upstream off;  # never send a hook call twice
            proxy_intercept_errors off;  # the service's own errors are already OperationOutcomes
        }}

{error_pages}
{error_locations}
    }}
}}
"""


def die_with_parent() -> None:
    """In the child before exec: if `cds-service serve` dies (even SIGKILL), the kernel stops nginx too."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(nginx: str, config: str, run_dir: Path) -> subprocess.Popen:
    path = run_dir / "nginx.conf"
    path.write_text(config)
    return subprocess.Popen([nginx, "-p", str(run_dir), "-c", str(path), "-e", "stderr"], preexec_fn=die_with_parent)
