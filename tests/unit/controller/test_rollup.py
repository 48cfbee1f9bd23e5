from dataclasses import replace

from berth.controller.policy import Policy
from berth.controller.rollup import roll_up, task_outcome
from berth.domain.records import Task
from berth.domain.status import DeploymentStatus as D
from berth.domain.status import DesiredState, FailureKind, TaskKind, TaskState
from berth.domain.status import ReplicaState as S
from tests.fakes.builders import at, deployment, replica

P = Policy(crash_loop_threshold=3, progress_deadline=60)


def task(kind: TaskKind = TaskKind.CREATE, generation: int = 1, created: float = 0) -> Task:
    return Task(id="t", kind=kind, project="p", deployment_id="d1", deployment_name="echo",
                generation=generation, state=TaskState.NEW, created_at=at(created),
                updated_at=at(created))


def test_status_follows_replicas() -> None:
    d = deployment(2)
    assert roll_up(d, [], {"local": 2}, P).status == D.PENDING
    starting = [replica(d, "a", S.STARTING, ready=False), replica(d, "b", S.PENDING, ready=False)]
    assert roll_up(d, starting, {"local": 2}, P).status == D.DEPLOYING
    half = [replica(d, "a"), replica(d, "b", S.BACKOFF, ready=False, failures=1)]
    r = roll_up(d, half, {"local": 2}, P)
    assert r.status == D.PARTIALLYDEPLOYED
    assert (r.containers[0].ready, r.containers[0].total) == (1, 2)
    full = roll_up(d, [replica(d, "a"), replica(d, "b")], {"local": 2}, P)
    assert full.status == D.ACTIVE and full.converged


def test_crash_loop_is_error_and_unrunnable_is_failed() -> None:
    d = deployment(1)
    crash = replica(d, "a", S.BACKOFF, ready=False, failures=3, last_error="exited with code 1",
                    exit_code=1, failure=FailureKind.EXITED)
    r = roll_up(d, [crash], {"local": 1}, P)
    assert r.status == D.ERROR and "crash loop" in r.reason and r.containers[0].error
    missing = replace(crash, exit_code=127, last_error="command not found: 'vllm'",
                      failure=FailureKind.NOT_EXECUTABLE)
    assert roll_up(d, [missing], {"local": 1}, P).status == D.FAILED
    first_try = replace(missing, failures=1)  # no need to wait for a crash loop
    assert roll_up(d, [first_try], {"local": 1}, P).status == D.FAILED
    plain_exit = replace(first_try, exit_code=127, failure=FailureKind.EXITED)
    assert roll_up(d, [plain_exit], {"local": 1}, P).status == D.DEPLOYING
    # The kind decides, never the words: the same text with another kind reads differently.
    worded = replace(first_try, last_error="exited with code 127")
    assert roll_up(d, [worded], {"local": 1}, P).status == D.FAILED


def test_stop_and_delete() -> None:
    stopped = deployment(2, desired=DesiredState.STOPPED)
    assert roll_up(stopped, [replica(stopped, "a", S.DRAINING)], {}, P).status == D.DISABLED
    done = roll_up(stopped, [], {}, P)
    assert done.status == D.DISABLED and done.converged
    gone = deployment(2, desired=DesiredState.DELETED)
    assert roll_up(gone, [replica(gone, "a", S.STOPPING)], {}, P).status == D.DELETING
    assert roll_up(gone, [], {}, P).status == D.DELETED


def test_rolling_deployment_reports_deploying_then_active() -> None:
    old = deployment(1)
    new = replace(old, spec=old.spec.model_copy(update={"envs": {"A": "1"}}), generation=2)
    rolling = roll_up(new, [replica(old, "a"), replica(new, "b", ready=False)], {"local": 1}, P)
    assert rolling.status == D.DEPLOYING and not rolling.converged


def test_task_outcomes() -> None:
    d = deployment(1)
    converged = roll_up(d, [replica(d, "a")], {"local": 1}, P)
    assert task_outcome(task(), d, converged, P, at(1)).state == TaskState.FINISHED
    pending = roll_up(d, [], {"local": 1}, P)
    assert task_outcome(task(), d, pending, P, at(1)).state == TaskState.RUNNING
    late = task_outcome(task(), d, pending, P, at(61))
    assert late.state == TaskState.ERROR and "60s" in late.error
    newer = replace(d, generation=2)
    assert "superseded" in task_outcome(task(), newer, pending, P, at(1)).message
    halted = replace(d, halted_template=d.template, halted_reason="rollout halted: x")
    assert task_outcome(task(), halted, pending, P, at(1)).error == "rollout halted: x"
