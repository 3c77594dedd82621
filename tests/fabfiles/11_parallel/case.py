"""Parallel execution: @parallel, @parallel(pool_size), -P -z, @serial and @runs_once under
-P, a failing host. Each host's lines carry that host's prefix and arrive whole; all hosts
share one gateway login."""

import re

GW = ["-g", "{gw}", "-i", "{key}"]
SIX = "{t0},{t1},{t2},{t3},{t4},{t5}"
SEQ = ",".join(str(i) for i in range(1, 701))
_OUT = re.compile(r"^\[(?P<host>[^\]]+)\] out: (?P<text>.*)$")
_PAYLOAD = re.compile(r"conn2?=\d|seq=1,")


def _addr_of(ctx, host_string):
    for i in range(10):
        if ctx.ph[f"t{i}"] == host_string:
            return ctx.ph[f"a{i}"]
    raise AssertionError(f"unknown host prefix {host_string!r}")


def lines_belong_to_their_host(result, ctx):
    """Every conn= line names its own host's address; every seq= line is complete."""
    seen = {}
    for line in result.stdout_lines:
        m = _OUT.match(line)
        if not m:
            assert not _PAYLOAD.search(line), f"stray or mangled output line: {line!r}"
            continue
        host, text = m.group("host"), m.group("text")
        addr = _addr_of(ctx, host)
        kind = text.split("=", 1)[0]
        if kind in ("conn", "conn2", "plain conn"):
            dst = text.split()[-2]
            assert dst == addr, f"{host} printed another host's connection: {line!r}"
        elif kind == "seq":
            assert text == "seq=" + SEQ, f"{host}: seq line not whole ({len(text)} chars)"
        else:
            continue  # e.g. the remote login profile's own chatter
        seen.setdefault(host, []).append(kind)
    hosts = [ctx.ph[f"t{i}"] for i in range(6)]
    for h in hosts:
        assert sorted(seen.get(h, [])) == ["conn", "conn2", "seq"], (h, seen.get(h))


def serial_in_order(result, ctx):
    """@serial under -P: hosts one after the other, in host-list order."""
    idx = [i for i, line in enumerate(result.stdout_lines) if "Executing task 'one_by_one'" in line]
    order = [result.stdout_lines[i].split("]")[0][1:] for i in idx]
    assert order == [ctx.ph[f"t{i}"] for i in range(4)], order
    for i in idx:  # each host's output follows its own Executing line directly
        host = result.stdout_lines[i].split("]")[0] + "]"
        assert any(line.startswith(host + " out: serial-step")
                   for line in result.stdout_lines[i + 1:i + 4]), result.stdout_lines[i:i + 4]


def usage_matches_hosts(result, ctx):
    """Each host's result is that host's own (last octet * 10) and the total adds up."""
    want = {ctx.ph[f"t{i}"]: int(ctx.ph[f"a{i}"].rsplit(".", 1)[1]) * 10 for i in range(3)}
    got = {}
    for line in result.stdout_lines:
        m = re.match(r"^(\S+) uses (\d+)$", line)
        if m:
            got[m.group(1)] = int(m.group(2))
    assert got == want, (got, want)
    assert f"total {sum(want.values())}" in result.stdout_lines


CASE = {
    "runs": [
        {
            "name": "six-hosts-at-once",
            "argv": GW + ["-H", SIX, "probe"],
            "stdout": ["", "Done."],
            "count_stdout": {"re:Executing task 'probe'$": 6, "re:\\] out: seq=": 6},
            "custom": ["lines_belong_to_their_host"],
            "logins": {"gw": 1, "targets": 6},
        },
        {
            "name": "cli-parallel-with-serial-and-runs-once",
            "argv": GW + ["-P", "-z", "3", "-H", "{t0},{t1},{t2},{t3}", "plain", "one_by_one",
                          "summary"],
            "stdout": ["Done."],
            "count_stdout": {"re:Executing task 'plain'$": 4, "re:out: plain conn=": 4,
                             "in:summary printed once": 1, "re:Executing task 'summary'$": 1},
            "custom": ["serial_in_order"],
            "logins": {"gw": 1, "targets": 4},
        },
        {
            "name": "pool-size-decorator",
            "argv": GW + ["-H", "{t0},{t1},{t2},{t3}", "throttled"],
            "count_stdout": {"re:^\\[root@[^\\]]+\\] out: throttled-ok$": 4},
            "stdout": ["Done."],
        },
        {
            "name": "parallel-execute-returns-results",
            "argv": GW + ["--set", "fleet={t0};{t1};{t2}", "capacity_report"],
            "stdout": ["re:^{t0} uses \\d+$", "re:^{t1} uses \\d+$", "re:^{t2} uses \\d+$",
                       "re:^total \\d+$", "Done."],
            "custom": ["usage_matches_hosts"],
            "logins": {"gw": 1, "targets": 3},
        },
        {
            "name": "one-host-fails",
            "argv": GW + ["-P", "-H", "{t0},{t1},{t2}", "fragile:bad={a1}"],
            "exit": 1,
            "stdout": ["[{t1}] out: broken"],
            "count_stdout": {"re:\\] out: fine$": 2},
            "stderr": ["in:nonzero return code 9",
                       "Fatal error: One or more hosts failed while executing task 'fragile'",
                       "", "Aborting."],
            "not_stdout": ["Done.", "[{t1}] out: fine"],
        },
    ],
}
