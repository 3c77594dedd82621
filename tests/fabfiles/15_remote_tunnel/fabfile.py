# Fabric 1.x style on purpose (star import, %-formatting), as real fabfiles were written.
# ruff: noqa: F403, F405, UP031, UP025
"""Let a server reach a service that only runs on the operator's machine."""
import socket
import threading

from fabric.api import *


def _local_service(listener, greeting):
    # A tiny local "package index": answers each connection with a greeting + the request.
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            data = conn.recv(1024)
            conn.sendall(greeting + data)


@task
def fetch_via_tunnel():
    """Serve locally, reach it from the remote side through a reverse tunnel."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    local_port = listener.getsockname()[1]
    worker = threading.Thread(target=_local_service, args=(listener, b"local-index:"))
    worker.daemon = True
    worker.start()
    remote_port = int(env.tunnel_port)
    probe = ("exec 3<>/dev/tcp/127.0.0.1/%d && echo %s >&3 && timeout 10 head -n 1 <&3"
             % (remote_port, "{0}"))
    try:
        with remote_tunnel(remote_port, local_port=local_port):
            run(probe.format("first"))
            run(probe.format("second"))
        r = run("exec 3<>/dev/tcp/127.0.0.1/%d" % remote_port, warn_only=True, quiet=True)
        puts("tunnel closed afterwards: %s" % r.failed)
    finally:
        listener.close()
