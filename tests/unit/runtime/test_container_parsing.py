"""What podman prints, read: ps / inspect / stats JSON, pull errors, log lines, OOM kills.

The samples are podman 4.3.1's own output on Debian 12 (trimmed).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from berth.runtime.base import ProcessObservation
from berth.runtime.container.exits import exec_exit, exec_failure, kernel_logged_oom_kill
from berth.runtime.container.host import registry_host, remove_empty_cgroups
from berth.runtime.container.logs import LogFollower, parse_record
from berth.runtime.container.models import (
    PodmanOutputError,
    parse_inspect,
    parse_ps,
    parse_stats,
)
from berth.runtime.container.podman import error_text
from berth.runtime.container.pull import (
    ImagePullFailed,
    auth_file_content,
    classify_pull_error,
    registry_key,
    scrub,
)
from berth.runtime.container.runtime import oom_reason
from berth.runtime.logfiles import MAX_LINE, read_logs

CID = "a4a4e7831e081679d861c31368c4866d66d27789e6f830937cf26ae73dd78b11"

PS = json.dumps([
    {"AutoRemove": False, "Command": ["python3", "/srv/model_server.py"], "Exited": False,
     "ExitedAt": -62135596800, "ExitCode": 0, "Id": CID, "Image": "localhost/berth-test/model:v1",
     "Labels": {"berth.owner": "explore", "berth.replica": "probe1",
                "io.buildah.version": "1.28.2"},
     "Mounts": [], "Names": ["berth-probe1"], "Namespaces": {}, "Networks": ["podman"],
     "Pid": 23322, "Pod": "", "Ports": [{"host_ip": "127.0.0.1", "container_port": 8080,
                                         "host_port": 18181, "range": 1, "protocol": "tcp"}],
     "Size": None, "StartedAt": 1796411751, "State": "running",
     "Status": "Up Less than a second ago", "Created": 1796411751},
    {"Id": "b" * 64, "Names": ["berth-gone"], "Labels": None, "Ports": None, "Pid": 0,
     "ExitCode": 137, "Exited": True, "State": "exited"},
])

INSPECT = json.dumps([{
    "Id": CID, "Name": "berth-probe1",
    "State": {"OciVersion": "1.0.2-dev", "Status": "exited", "Running": False, "Paused": False,
              "OOMKilled": False, "Dead": False, "Pid": 0, "ConmonPid": 23312, "ExitCode": 137,
              "Error": "", "StartedAt": "2026-12-04T19:15:51.43Z"},
    "HostConfig": {"Memory": 67108864, "MemorySwap": 67108864, "NanoCpus": 500000000,
                   "CpuQuota": 50000, "CpuPeriod": 100000, "PidsLimit": 50,
                   "CgroupParent": "/process_api/adf1/berth"},
    "Config": {"Labels": {"berth.owner": "explore"}, "Env": ["PORT=8080"]},
    "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18181"}]}},
}])

STATS = ('{"AvgCPU":2.186937165245915,"ContainerID":"' + CID + '","Name":"berth-probe1",'
         '"PerCPU":[50414917,36235478],"CPU":2.186937165245915,"CPUNano":86650395,'
         '"CPUSystemNano":24000000,"SystemNano":1796411755383456971,"MemUsage":17334272,'
         '"MemLimit":67108864,"MemPerc":25.830078125,"NetInput":1073,"NetOutput":1818,'
         '"BlockInput":0,"BlockOutput":0,"PIDs":2,"UpTime":86650395,"Duration":86650395}\n')


def test_ps_json_gives_state_labels_pid_and_published_port() -> None:
    running, gone = parse_ps(PS)
    assert (running.id, running.names, running.state, running.pid) == (
        CID, ["berth-probe1"], "running", 23322)
    assert running.alive and running.labels["berth.replica"] == "probe1"
    assert running.host_port() == running.host_port(8080) == 18181
    assert running.host_port(9999) is None
    assert (gone.alive, gone.exit_code, gone.labels, gone.ports) == (False, 137, {}, [])
    assert parse_ps("") == [] and parse_ps("[]\n") == []
    with pytest.raises(PodmanOutputError, match="podman ps"):
        parse_ps('[{"Names": []}]')  # no Id


def test_inspect_json_gives_exit_limits_and_labels() -> None:
    (found,) = parse_inspect(INSPECT)
    state, host = found.state, found.host_config
    assert (state.status, state.alive, state.exit_code, state.oom_killed) == (
        "exited", False, 137, False)
    assert (state.pid, state.conmon_pid) == (0, 23312)
    assert (host.memory, host.cpus, host.pids_limit) == (67108864, 0.5, 50)
    assert found.config.labels == {"berth.owner": "explore"}
    with pytest.raises(PodmanOutputError, match="podman inspect"):
        parse_inspect("{not json")


def test_stats_json_gives_exact_counters() -> None:
    (sample,) = parse_stats(STATS)
    assert (sample.mem_usage, sample.mem_limit, sample.pids) == (17334272, 67108864, 2)
    assert (sample.cpu_nano, sample.system_nano) == (86650395, 1796411755383456971)
    assert parse_stats("[" + STATS.strip() + "]") == [sample]
    assert parse_stats("  \n") == []
    with pytest.raises(PodmanOutputError, match="podman stats"):
        parse_stats('{"MemUsage": "17MB"}')


PULL_ERRORS = {
    "auth": "Trying to pull 127.0.0.1:51227/private/model:v1...\nError: initializing source "
            "docker://127.0.0.1:51227/private/model:v1: reading manifest v1 in "
            "127.0.0.1:51227/private/model: unauthorized: authentication required\n",
    "not_found": "Trying to pull 127.0.0.1:51227/private/model:v9...\nError: initializing "
                 "source docker://127.0.0.1:51227/private/model:v9: reading manifest v9 in "
                 "127.0.0.1:51227/private/model: manifest unknown: manifest unknown\n",
    "network": "Trying to pull 127.0.0.1:9/berth/absent:v0...\nError: initializing source "
               "docker://127.0.0.1:9/berth/absent:v0: pinging container registry 127.0.0.1:9: "
               "Get \"https://127.0.0.1:9/v2/\": dial tcp 127.0.0.1:9: connect: connection "
               "refused\n",
    "failed": "Error: writing blob: adding layer with blob \"sha256:42c1\": no space left "
              "on device\n",
}


@pytest.mark.parametrize("kind", sorted(PULL_ERRORS))
def test_pull_errors_are_classified_from_podmans_stderr(kind: str) -> None:
    assert classify_pull_error(PULL_ERRORS[kind]) == kind


def test_more_pull_errors_seen_on_registries() -> None:
    assert classify_pull_error(
        "Error: initializing source docker://127.0.0.1:5000/x:v1: pinging container registry "
        "127.0.0.1:5000: Get \"https://127.0.0.1:5000/v2/\": http: server gave HTTP response "
        "to HTTPS client") == "network"
    assert classify_pull_error(
        "Error: initializing source docker://quay.io/x/y:1: reading manifest 1 in "
        "quay.io/x/y: unauthorized: access to the requested resource is not authorized"
    ) == "auth"
    assert classify_pull_error(
        "Error: docker.io/nobody/nothing: requested access to the resource is denied") == "auth"
    assert classify_pull_error(
        "Error: short-name \"model\" did not resolve to an alias and no unqualified-search "
        "registries are defined in \"/etc/containers/registries.conf\"") == "not_found"
    assert classify_pull_error("Error: dial tcp: lookup reg.example: no such host") == "network"


def test_a_pull_failure_names_the_image_the_cause_and_podmans_words() -> None:
    failure = ImagePullFailed("reg/x:v1", "auth", "unauthorized: authentication required")
    assert str(failure) == ("pulling image reg/x:v1: the registry refused access (wrong or "
                            "missing registry credentials, or no such image): unauthorized: "
                            "authentication required")
    assert str(ImagePullFailed("x:v1", "not_present")) == (
        "image x:v1 is not on this host and the pull policy is Never")
    assert error_text(PULL_ERRORS["not_found"]).startswith("initializing source docker://")
    assert error_text("no prefix here\n\n") == "no prefix here" and error_text("") == ""


def test_the_auth_file_holds_the_credentials_for_the_registry() -> None:
    content = json.loads(auth_file_content("https://127.0.0.1:5000/", "bob", "p:w"))
    token = content["auths"]["127.0.0.1:5000"]["auth"]
    assert base64.b64decode(token).decode() == "bob:p:w"
    assert registry_key("https://index.docker.io/v1/") == "docker.io"
    assert registry_key("quay.io/org") == "quay.io/org"
    assert registry_key("registry.example.com/v2") == "registry.example.com"
    assert scrub("bad p:w here", "p:w") == "bad *** here" and scrub("x", None) == "x"


def test_registry_host_of_an_image_reference() -> None:
    assert registry_host("127.0.0.1:5000/private/model:v1") == "127.0.0.1:5000"
    assert registry_host("localhost/berth-test/model:v1") == "localhost"
    assert registry_host("ghcr.io/org/img") == "ghcr.io"
    assert registry_host("vllm/vllm-openai:latest") == ""
    assert registry_host("python:3.11") == ""


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def cri(ts: float, stream: str, tag: str, text: str) -> str:
    return f"{stamp(ts)} {stream} {tag} {text}\n"


def test_k8s_file_lines_are_read_with_their_times_and_marks() -> None:
    assert parse_record(b"2026-12-04T19:21:08.209706951+00:00 stdout F out-1") == (
        datetime(2026, 12, 4, 19, 21, 8, 209706, tzinfo=UTC).timestamp(), "stdout", True,
        b"out-1")
    partial = parse_record(b"2026-12-04T19:21:08Z stderr P a b c")
    assert partial is not None and partial[1:] == ("stderr", False, b"a b c")
    empty = parse_record(b"2026-12-04T19:21:08Z stdout F")
    assert empty is not None and empty[3] == b""
    for garbage in (b"", b"not a line", b"2026-13-04T19:21:08Z stdout F x",
                    b"2026-12-04T19:21:08Z other F x"):
        assert parse_record(garbage) is None


def test_a_follower_joins_partial_lines_and_skips_what_it_has(tmp_path: Path) -> None:
    source = tmp_path / "ctr.log"
    path = tmp_path / "d1" / "r1.log"
    t0 = round(time.time()) - 60.0
    source.write_text(cri(t0, "stdout", "P", "model") + cri(t0 + 0.1, "stdout", "P", " v1")
                      + cri(t0 + 0.2, "stderr", "F", "err-1") + cri(t0 + 0.3, "stdout", "F", "")
                      + "garbage\n" + cri(t0 + 0.4, "stdout", "P", "half"))
    first = LogFollower(source, path)
    assert first.read_available() and not first.read_available()
    first.close()
    lines = read_logs(path.parent, since=None, limit=10)
    assert [(ln.ts, ln.stream, ln.line) for ln in lines] == [
        (t0 + 0.2, "stderr", "err-1"), (t0 + 0.3, "stdout", "model v1")]  # as completed

    with source.open("a") as f:
        f.write(cri(t0 + 0.5, "stdout", "F", " done") + cri(t0 + 1, "stderr", "F",
                "ERROR (catatonit:6): failed to exec pid1: No such file or directory"))
    again = LogFollower(source, path)  # a restarted server reads the file from its start
    assert again.after == t0 + 0.3
    assert again.read_available()
    again.note("why it ended")
    again.close()
    lines = read_logs(path.parent, since=None, limit=10)
    assert [(ln.stream, ln.line) for ln in lines] == [
        ("stderr", "err-1"), ("stdout", "model v1"), ("stdout", "half done"),
        ("stderr", "ERROR (catatonit:6): failed to exec pid1: No such file or directory"),
        ("berth", "why it ended")]
    assert [ln.ts for ln in lines] == sorted(ln.ts for ln in lines)  # in time order
    assert again.exec_error == "No such file or directory"


def test_long_lines_are_capped(tmp_path: Path) -> None:
    source = tmp_path / "ctr.log"
    source.write_text(cri(1.0, "stdout", "P", "x" * 10000) + cri(2.0, "stdout", "F", "y" * 10000))
    follower = LogFollower(source, tmp_path / "d1" / "r1.log")
    follower.read_available()
    follower.close()
    (line,) = read_logs(tmp_path / "d1", since=None, limit=10)
    assert len(line.line) == MAX_LINE and line.ts == 2.0


def test_catatonits_exec_failures_become_shell_exit_codes() -> None:
    assert exec_failure("ERROR (catatonit:6): failed to exec pid1: Permission denied") == (
        "Permission denied")
    assert exec_failure("failed to exec pid1 said the app") is None
    assert exec_exit("No such file or directory", "'vllm'") == (127, "command not found: 'vllm'")
    assert exec_exit("Permission denied", "'x'") == (126, "permission denied: 'x'")
    assert exec_exit("Exec format error", "'x'") == (126, "cannot execute 'x': Exec format error")


def test_an_oom_kill_is_found_in_the_kernel_log(tmp_path: Path) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_bytes(
        b"6,867,3064710106,-;Memory cgroup stats for /p/berth/libpod-" + CID.encode() + b":\n"
        b"6,914,3064710225,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=libpod-"
        + CID.encode() + b",mems_allowed=0,oom_memcg=/p/berth/libpod-" + CID.encode()
        + b",task_memcg=/p/berth/libpod-" + CID.encode() + b",task=python3,pid=9,uid=0\n"
        b" SUBSYSTEM=memory\n")
    assert kernel_logged_oom_kill(CID, str(kmsg))
    assert not kernel_logged_oom_kill("c" * 64, str(kmsg))  # another container
    assert not kernel_logged_oom_kill(CID, str(tmp_path / "absent"))
    assert not kernel_logged_oom_kill("not-an-id", str(kmsg))
    observed = ProcessObservation("r1", alive=False, exit_code=137, oom_killed=True,
                                  memory_limit_bytes=64 * 2**20)
    assert oom_reason(observed) == "OOMKilled: memory limit 64MiB"


def test_empty_cgroups_podman_leaves_are_removed(tmp_path: Path) -> None:
    for controller in ("memory", "cpu"):
        (tmp_path / controller / "srv" / "berth" / "conmon").mkdir(parents=True)
    (tmp_path / "pids" / "srv" / "berth" / "libpod-x").mkdir(parents=True)  # still in use
    remove_empty_cgroups("/srv/berth", root=tmp_path)
    assert not (tmp_path / "memory" / "srv" / "berth").exists()
    assert not (tmp_path / "cpu" / "srv" / "berth").exists()
    assert (tmp_path / "pids" / "srv" / "berth" / "libpod-x").exists()
    remove_empty_cgroups("/../etc", root=tmp_path)  # refused, nothing happens
