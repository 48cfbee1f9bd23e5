"""The `berth` CLI against a real server, run as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import BerthServer


def berth(server: BerthServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BERTH_URL": server.url, "BERTH_DATA_DIR": str(server.data_dir),
           "BERTH_PROJECT": "cli", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "berth", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def test_cli_deploy_inspect_update_and_remove(server: BerthServer, tmp_path: Path) -> None:
    spec = tmp_path / "echo.yaml"
    spec.write_text("name: echo-cli\nimage: catalog/echo\nlistening_port: 8080\n"
                    "containers:\n  - region: local\n    scale: {min: 2, max: 2}\n")
    out = berth(server, "deploy", "-f", str(spec))
    assert out.returncode == 0, out.stdout + out.stderr
    listed = berth(server, "ls")
    assert listed.returncode == 0 and "echo-cli" in listed.stdout and "2/2" in listed.stdout
    got = json.loads(berth(server, "get", "echo-cli", "-o", "json").stdout)
    assert got["status"] == "ACTIVE" and got["generation"] == 1
    replicas = berth(server, "replicas", "echo-cli")
    assert replicas.returncode == 0 and replicas.stdout.count("RUNNING") == 2
    patched = berth(server, "patch", "echo-cli", "--set", "envs.MODEL=v2", "--if-match", "1")
    assert patched.returncode == 0, patched.stdout + patched.stderr
    got = json.loads(berth(server, "get", "echo-cli", "-o", "json").stdout)
    assert got["envs"] == {"MODEL": "v2"} and got["status"] == "ACTIVE"
    stale = berth(server, "patch", "echo-cli", "--set", "envs.MODEL=v3", "--if-match", "1")
    assert stale.returncode == 2 and "generation" in stale.stderr
    logs = berth(server, "logs", "echo-cli")
    assert logs.returncode == 0 and "listening" in logs.stdout
    events = berth(server, "events", "echo-cli")
    assert events.returncode == 0 and "Converged" in events.stdout
    assert events.stdout.split()[:5] == ["AT", "KIND", "REPLICA", "REASON", "MESSAGE"]
    launched = [line.split() for line in events.stdout.splitlines() if " Launched " in line]
    assert launched and all(row[3].startswith("echo-cli-") for row in launched)  # the replica
    assert berth(server, "stop", "echo-cli").returncode == 0
    assert berth(server, "wait", "echo-cli", "--for", "DISABLED", "--timeout", "20").returncode == 0
    assert berth(server, "start", "echo-cli").returncode == 0
    assert berth(server, "restart", "echo-cli").returncode == 0
    removed = berth(server, "rm", "echo-cli")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert removed.stdout.splitlines()[-1].startswith(f"echo-cli: deleted (id {got['id']}), task ")
    assert "address" not in removed.stdout
    got = json.loads(berth(server, "get", "echo-cli", "-o", "json").stdout)
    assert got["status"] == "DELETED"


def test_cli_reports_bad_spec_with_the_field(server: BerthServer, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad-cli\nimage: catalog/echo\nlistening_port: 70000\n")
    out = berth(server, "deploy", "-f", str(spec))
    assert out.returncode == 2 and "listening_port" in out.stderr
    assert server.token not in out.stdout + out.stderr


def test_cli_without_server_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "BERTH_URL": "http://127.0.0.1:9", "BERTH_TOKEN": "x"}
    out = subprocess.run([sys.executable, "-m", "berth", "ls"], capture_output=True, text=True,
                         env=env, timeout=30, check=False)
    assert out.returncode != 0 and "berth serve" in out.stderr
