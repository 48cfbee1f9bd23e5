from dataclasses import replace

from berth.controller.lifecycle import Signal, step_replica, unrunnable
from berth.controller.policy import Policy
from berth.domain.status import FailureKind
from berth.domain.status import ReplicaState as S
from berth.probes.tracker import ProbeVerdict
from berth.runtime.base import ProcessObservation
from tests.fakes.builders import at, deployment, replica

P = Policy(backoff_base=1, backoff_max=8, stable_run=30, drain_seconds=2, stop_grace=5)
ALIVE = ProcessObservation("r1", alive=True, pid=100)
OK = ProbeVerdict(started=True, ready=True)


def test_exit_moves_to_backoff_with_growing_delay() -> None:
    d = deployment()
    r = replica(d, "r1", created=0)
    dead = ProcessObservation("r1", alive=False, exit_code=3)
    step = step_replica(r, dead, OK, P, at(1))
    assert step.replica.state == S.BACKOFF and step.forget
    assert step.replica.failures == 1 and step.replica.next_start_at == at(2)
    assert step.replica.last_error == "exited with code 3" and not step.replica.ready
    again = replace(step.replica, state=S.RUNNING, started_at=at(2))
    step2 = step_replica(again, dead, OK, P, at(3))
    assert step2.replica.failures == 2 and step2.replica.next_start_at == at(5)
    assert step2.replica.restarts == 2


def test_failures_reset_after_a_stable_run() -> None:
    d = deployment()
    r = replica(d, "r1", created=0, failures=2)
    assert step_replica(r, ALIVE, OK, P, at(31)).replica.failures == 0
    dead = ProcessObservation("r1", alive=False, exit_code=1)
    assert step_replica(r, dead, OK, P, at(40)).replica.failures == 1


def test_liveness_failure_kills_and_backs_off() -> None:
    r = replica(deployment(), "r1")
    bad = ProbeVerdict(started=True, ready=False, liveness_failed=True, message="liveness x")
    step = step_replica(r, ALIVE, bad, P, at(1))
    assert step.signal == Signal.KILL and step.replica.state == S.BACKOFF
    assert "liveness" in step.replica.last_error


def test_starting_becomes_running_then_ready_follows_probe() -> None:
    r = replica(deployment(), "r1", S.STARTING, ready=False)
    waiting = step_replica(r, ALIVE, ProbeVerdict(started=False, ready=False), P, at(1))
    assert waiting.replica.state == S.STARTING
    started = step_replica(r, ALIVE, ProbeVerdict(started=True, ready=False), P, at(1))
    assert started.replica.state == S.RUNNING and not started.replica.ready
    ready = step_replica(started.replica, ALIVE, OK, P, at(2))
    assert ready.replica.ready and [n.reason for n in ready.notes] == ["Ready"]
    unready = step_replica(ready.replica, ALIVE, ProbeVerdict(True, False, message="503"), P, at(3))
    assert not unready.replica.ready and "503" in unready.replica.reason


def test_drain_then_term_then_kill_then_stopped() -> None:
    r = replica(deployment(), "r1", S.DRAINING, ready=False, state_deadline=at(2))
    assert step_replica(r, ALIVE, OK, P, at(1)).signal is None
    stopping = step_replica(r, ALIVE, OK, P, at(2))
    assert stopping.replica.state == S.STOPPING and stopping.signal == Signal.TERM
    assert stopping.replica.state_deadline == at(7)
    killed = step_replica(stopping.replica, ALIVE, OK, P, at(7))
    assert killed.signal == Signal.KILL and killed.notes
    assert not step_replica(killed.replica, ALIVE, OK, P, at(8)).notes  # noted once
    gone = step_replica(killed.replica, ProcessObservation("r1", alive=False), OK, P, at(8))
    assert gone.replica.state == S.STOPPED and gone.forget
    assert step_replica(gone.replica, None, OK, P, at(9)).delete


def test_each_way_a_run_ends_is_recorded_as_its_kind() -> None:
    r = replica(deployment(), "r1")
    cases = [
        (ProcessObservation("r1", alive=False, exit_code=3), OK, FailureKind.EXITED),
        (ProcessObservation("r1", alive=False, exit_code=127,
                            error="command not found: 'vllm'"), OK, FailureKind.NOT_EXECUTABLE),
        (ProcessObservation("r1", alive=False), OK, FailureKind.LOST),
        (None, OK, FailureKind.LOST),
        (ALIVE, ProbeVerdict(started=True, ready=False, liveness_failed=True, message="x"),
         FailureKind.UNHEALTHY),
        (ALIVE, ProbeVerdict(started=False, ready=False, startup_failed=True, message="y"),
         FailureKind.UNHEALTHY),
    ]
    for proc, probe, kind in cases:
        step = step_replica(r, proc, probe, P, at(1))
        assert (step.replica.state, step.replica.failure) == (S.BACKOFF, kind), (proc, probe)
    # An exit code of 127 from the command itself is a plain exit, not "cannot run".
    plain = step_replica(r, ProcessObservation("r1", alive=False, exit_code=127), OK, P, at(1))
    assert plain.replica.failure == FailureKind.EXITED and not unrunnable(plain.replica)


def test_sigkill_is_noted_once_by_the_flag_not_the_reason_text() -> None:
    r = replica(deployment(), "r1", S.STOPPING, ready=False, state_deadline=at(1))
    worded = replace(r, reason="grace period over; SIGKILL sent")  # text alone decides nothing
    first = step_replica(worded, ALIVE, OK, P, at(2))
    assert first.signal == Signal.KILL and [n.reason for n in first.notes] == ["Killed"]
    assert first.replica.kill_sent
    again = step_replica(first.replica, ALIVE, OK, P, at(3))
    assert again.signal == Signal.KILL and not again.notes


def test_an_oom_kill_is_an_oomkilled_event_naming_the_limit_and_a_restart() -> None:
    r = replica(deployment(), "r1")
    oom = ProcessObservation("r1", alive=False, exit_code=137, oom_killed=True,
                             memory_limit_bytes=64 * 2**20)
    step = step_replica(r, oom, OK, P, at(1))
    assert step.replica.state == S.BACKOFF and step.forget
    assert [n.reason for n in step.notes] == ["OOMKilled"]
    assert "memory limit of 64MiB" in step.replica.last_error
    assert step.replica.exit_code == 137 and not unrunnable(step.replica)


def test_a_pull_failure_is_unrunnable() -> None:
    r = replace(replica(deployment(), "r1"), failure=FailureKind.PULL_FAILED)
    assert unrunnable(r)
