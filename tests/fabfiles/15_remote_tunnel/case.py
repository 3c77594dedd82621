"""remote_tunnel(): a remote port forwarded back to a local service, several connections
through it, and the forward cancelled when the block ends."""

CASE = {
    "runs": [
        {
            "name": "reverse-tunnel",
            "argv": ["-g", "{gw}", "-i", "{key}", "--set", "tunnel_port={rport}",
                     "-H", "{t0}", "fetch_via_tunnel"],
            "stdout": [
                "[{t0}] Executing task 'fetch_via_tunnel'",
                "[{t0}] out: local-index:first",
                "[{t0}] out: local-index:second",
                "[{t0}] tunnel closed afterwards: True",
                "Done.",
            ],
            "timeout": 60,
        },
    ],
}
