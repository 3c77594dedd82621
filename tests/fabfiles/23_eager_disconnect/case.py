"""-e / --eagerly-disconnect: each host is disconnected right after its task, before the next
host starts; --keepalive and -n are accepted alongside."""

CASE = {
    "runs": [
        {
            "name": "eager",
            "argv": ["-g", "{gw}", "-i", "{key}", "-e", "--keepalive", "5", "-n", "2",
                     "-H", "{t0},{t1}", "rotate_logs"],
            "stdout": [
                "[{t0}] Executing task 'rotate_logs'",
                "[{t0}] out: rotated on {a0}",
                "Disconnecting from {d0}... done.",
                "[{t1}] Executing task 'rotate_logs'",
                "[{t1}] out: rotated on {a1}",
                "Disconnecting from {d1}... done.",
                "Done.",
            ],
            "count_stdout": {"Disconnecting from {d0}... done.": 1},
        },
        {
            "name": "lazy-by-default",
            "argv": ["-g", "{gw}", "-i", "{key}", "-H", "{t0},{t1}", "rotate_logs"],
            "stdout": [
                "[{t1}] out: rotated on {a1}",
                "Done.",
                "Disconnecting from {d0}... done.",
                "Disconnecting from {d1}... done.",
            ],
        },
    ],
}
