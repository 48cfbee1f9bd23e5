"""`berth doctor`'s checks over a fake command runner, and the command itself."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from berth.cli import doctor as doctor_cli
from berth.cli.main import app
from berth.runtime import podman_setup
from berth.runtime.podman_doctor import CommandResult, DoctorHost, diagnose, parse_version
from berth.runtime.podman_setup import HostFacts, Layers

FACTS = HostFacts("/process_api/abc", nofile_hard=20000, nproc_hard=96368)
GOOD_LAYERS: Layers = [("/etc/containers/containers.conf.d/90-berth.conf",
                        podman_setup.wanted_settings(FACTS))]
INFO: dict[str, Any] = {
    "host": {"ociRuntime": {"name": "runc"}, "cgroupManager": "cgroupfs", "eventLogger": "file",
             "cgroupVersion": "v1", "security": {"rootless": False}},
    "store": {"graphDriverName": "overlay", "graphRoot": "/var/lib/containers/storage",
              "imageStore": {"number": 3}},
}


class FakeMachine:
    """Answers commands from a table keyed by the command's first two words."""

    def __init__(self) -> None:
        self.installed = {"podman": "/usr/bin/podman", "runc": "/usr/sbin/runc",
                          "slirp4netns": "/usr/bin/slirp4netns"}
        self.answers: dict[str, CommandResult] = {
            "podman version": CommandResult(0, "4.3.1\n", ""),
            "runc --version": CommandResult(0, "runc version 1.1.5+ds1\ncommit: x\n", ""),
            "slirp4netns --version": CommandResult(0, "slirp4netns version 1.2.0\n", ""),
            "podman info": CommandResult(0, json.dumps(INFO), ""),
            "podman run": CommandResult(0, "", ""),
        }
        self.layers: Layers = GOOD_LAYERS
        self.calls: list[list[str]] = []
        self.now = 100.0
        self.run_takes = 0.2

    def run(self, args: Sequence[str], timeout: float) -> CommandResult:
        self.calls.append(list(args))
        if args[:2] == ["podman", "run"]:
            self.now += self.run_takes
        return self.answers[" ".join(args[:2])]

    def host(self) -> DoctorHost:
        def read_layers() -> Layers:
            return self.layers

        return DoctorHost(run=self.run, which=self.installed.get, facts=FACTS,
                          read_layers=read_layers, clock=lambda: self.now)


@pytest.fixture
def machine() -> FakeMachine:
    return FakeMachine()


def by_name(machine: FakeMachine, run_check: bool = True) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in diagnose(machine.host(), run_check=run_check)}


def test_a_ready_machine_passes_every_check(machine: FakeMachine) -> None:
    checks = by_name(machine)
    assert all(ok for ok, _ in checks.values()), checks
    assert checks["podman"][1] == "version 4.3.1"
    assert checks["runc"][1] == "/usr/sbin/runc: runc version 1.1.5+ds1"
    assert checks["store"][1] == ("overlay at /var/lib/containers/storage (3 images); runtime runc,"
                                  " cgroups cgroupfs (v1), events file")
    assert checks["run"][1] == "ran a container in 0.20 s"
    run = next(c for c in machine.calls if c[:2] == ["podman", "run"])
    assert run[run.index("--cgroup-parent") + 1] == "/process_api/abc/berth"


def test_the_run_check_runs_only_when_asked(machine: FakeMachine) -> None:
    assert "run" not in by_name(machine, run_check=False)
    assert not any(c[:2] == ["podman", "run"] for c in machine.calls)


def test_missing_tools_say_what_to_install(machine: FakeMachine) -> None:
    machine.installed = {}
    checks = diagnose(machine.host(), run_check=True)
    failed = {c.name: (c.detail, c.hint) for c in checks if not c.ok}
    assert failed["podman"] == ("not installed", "apt-get install podman")
    assert failed["slirp4netns"] == ("not installed", "apt-get install slirp4netns")
    assert failed["store"][0] == failed["run"][0] == "podman is not installed"
    assert machine.calls == []


@pytest.mark.parametrize(("answer", "detail"), [
    (CommandResult(0, "3.4.4\n", ""), "version 3.4.4; Berth needs 4.0 or later"),
    (CommandResult(0, "dev\n", ""), "unreadable version 'dev'"),
    (CommandResult(125, "", "Error: boom\n"), "`podman version` failed: Error: boom"),
])
def test_an_old_or_broken_podman_fails(
    machine: FakeMachine, answer: CommandResult, detail: str
) -> None:
    machine.answers["podman version"] = answer
    assert by_name(machine)["podman"] == (False, detail)


def test_parse_version() -> None:
    assert parse_version("podman version 4.3.1") == (4, 3, 1)
    assert parse_version("4.9") == (4, 9)
    assert parse_version("none") is None


def test_a_wrong_config_lists_each_problem(machine: FakeMachine) -> None:
    machine.layers = [("/etc/containers/containers.conf", {"engine": {"runtime": "crun"}})]
    ok, detail = by_name(machine)["config"]
    assert not ok
    lines = detail.splitlines()
    assert lines[0] == ('[engine] runtime is "crun" (from /etc/containers/containers.conf); '
                        'must be "runc"')
    assert len(lines) == 4


def test_an_unreadable_config_fails_with_the_reason(machine: FakeMachine) -> None:
    def broken() -> Layers:
        raise ValueError("/etc/containers/containers.conf is not valid TOML: x")

    host = machine.host()
    host.read_layers = broken
    check = next(c for c in diagnose(host) if c.name == "config")
    assert not check.ok
    assert check.detail == "/etc/containers/containers.conf is not valid TOML: x"


def test_the_store_check_reads_what_podman_really_uses(machine: FakeMachine) -> None:
    info = json.loads(json.dumps(INFO))
    info["host"]["ociRuntime"]["name"] = "crun"
    info["host"]["security"]["rootless"] = True
    machine.answers["podman info"] = CommandResult(0, json.dumps(info), "")
    ok, detail = by_name(machine)["store"]
    assert not ok
    assert detail.splitlines()[1] == ("runtime is crun, want runc; "
                                      "podman runs rootless; Berth runs it as root")
    machine.answers["podman info"] = CommandResult(0, "not json", "")
    assert by_name(machine)["store"] == (False, "`podman info` printed no JSON")
    machine.answers["podman info"] = CommandResult(125, "", "Error: no store\n")
    assert by_name(machine)["store"] == (False, "`podman info` failed: Error: no store")


def test_a_slow_or_failing_run_fails(machine: FakeMachine) -> None:
    machine.run_takes = 20.5
    ok, detail = by_name(machine)["run"]
    assert not ok and detail.startswith("a container took 20.5 s to run (conmon waits")
    machine.answers["podman run"] = CommandResult(126, "", "Error: runc: permission denied\n")
    ok, detail = by_name(machine)["run"]
    assert not ok and detail.endswith("failed: Error: runc: permission denied")


@pytest.fixture
def cli(machine: FakeMachine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setattr(doctor_cli, "make_host", lambda _config: machine.host())
    monkeypatch.setattr(podman_setup, "BERTH_DROPIN", tmp_path / "d" / "90-berth.conf")
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    return CliRunner()


def test_doctor_prints_a_table_and_exits_0_when_all_is_well(cli: CliRunner) -> None:
    result = cli.invoke(app, ["doctor", "--run-check"])
    assert result.exit_code == 0, result.output
    for name in ("podman", "runc", "slirp4netns", "config", "store", "run"):
        assert name in result.output
    assert "FAIL" not in result.output


def test_doctor_exits_1_and_says_how_to_fix(cli: CliRunner, machine: FakeMachine) -> None:
    machine.layers = []
    result = cli.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "fix: berth doctor --fix" in result.output
    assert '[engine] runtime is not set (from default); must be "runc"' in result.output


def test_doctor_fix_writes_the_dropin(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.invoke(app, ["doctor", "--fix"])
    assert result.exit_code == 0, result.output
    dropin = tmp_path / "d" / "90-berth.conf"
    assert f"wrote {dropin}" in result.output
    assert tomllib.loads(dropin.read_text()) == podman_setup.wanted_settings(FACTS)


def test_doctor_fix_merges_into_an_explicit_config(cli: CliRunner, tmp_path: Path) -> None:
    own = tmp_path / "podman.conf"
    own.write_text('[engine]\nnum_locks = 64\n')
    result = cli.invoke(app, ["doctor", "--fix", "--podman-config", str(own)])
    assert result.exit_code == 0, result.output
    merged = tomllib.loads(own.read_text())
    assert merged["engine"]["num_locks"] == 64 and merged["engine"]["runtime"] == "runc"
    assert not (tmp_path / "d").exists()


def test_doctor_fix_reports_an_unwritable_config(cli: CliRunner, tmp_path: Path) -> None:
    own = tmp_path / "podman.conf"
    own.write_text("[engine\n")
    result = cli.invoke(app, ["doctor", "--fix", "--podman-config", str(own)])
    assert result.exit_code == 1
    assert "Error: cannot write the podman config: Expected ']'" in result.output
