from dataclasses import replace

from berth.controller.plan import plan_deployment
from berth.controller.policy import Policy
from berth.domain.status import DesiredState
from berth.domain.status import ReplicaState as S
from tests.fakes.builders import at, deployment, replica

P = Policy(crash_loop_threshold=3, progress_deadline=60)


def test_fresh_deployment_creates_target_replicas() -> None:
    plan = plan_deployment(deployment(3), [], {"local": 3}, P, at(0))
    assert plan.create == ["local"] * 3 and not plan.drain


def test_converged_deployment_is_left_alone() -> None:
    d = deployment(2)
    rows = [replica(d, "a"), replica(d, "b")]
    plan = plan_deployment(d, rows, {"local": 2}, P, at(5))
    assert (plan.create, plan.launch, plan.drain, plan.stop) == ([], [], [], [])


def test_rollout_surges_then_retires_old_only_when_new_are_ready() -> None:
    old = deployment(2)
    rows = [replica(old, "a"), replica(old, "b")]
    new = replace(old, spec=old.spec.model_copy(update={"envs": {"A": "1"}}), generation=2)
    plan = plan_deployment(new, rows, {"local": 2}, P, at(1))
    assert plan.create == ["local", "local"] and plan.drain == []
    starting = [replica(new, "c", S.STARTING, ready=False), replica(new, "d", ready=False)]
    plan = plan_deployment(new, rows + starting, {"local": 2}, P, at(2))
    assert plan.drain == [] and plan.create == []
    one_ready = [replica(new, "c", S.STARTING, ready=False), replica(new, "d", ready=True)]
    plan = plan_deployment(new, rows + one_ready, {"local": 2}, P, at(3))
    assert [rid for rid, _ in plan.drain] == ["a"]  # 3 ready -> retire exactly one old


def test_scale_change_never_touches_template() -> None:
    d = deployment(2)
    rows = [replica(d, "a"), replica(d, "b")]
    bigger = replace(d, spec=d.spec.model_copy(update={"description": "x"}), generation=2)
    plan = plan_deployment(bigger, rows, {"local": 3}, P, at(1))
    assert plan.create == ["local"] and not plan.drain and not plan.stop
    plan = plan_deployment(bigger, rows, {"local": 1}, P, at(1))
    assert len(plan.drain) == 1 and not plan.create


def test_scale_down_prefers_unready_replicas() -> None:
    d = deployment(1)
    rows = [replica(d, "a", created=0), replica(d, "b", S.STARTING, ready=False, created=5)]
    plan = plan_deployment(d, rows, {"local": 1}, P, at(6))
    assert plan.stop == [("b", "scaled down")] and not plan.drain


def test_crash_looping_rollout_halts_and_keeps_old_serving() -> None:
    old = deployment(2)
    rows = [replica(old, "a"), replica(old, "b")]
    new = replace(old, spec=old.spec.model_copy(update={"command": ["false"]}), generation=2)
    looping = replica(new, "c", S.BACKOFF, ready=False, failures=3, last_error="exited 1")
    plan = plan_deployment(new, [*rows, looping], {"local": 2}, P, at(10))
    assert "halted" in plan.halt and plan.stop == [("c", "rollout halted")] and not plan.drain
    halted = replace(new, halted_template=new.template, halted_reason=plan.halt)
    again = plan_deployment(halted, rows, {"local": 2}, P, at(11))
    assert not again.create and not again.drain


def test_rollout_past_deadline_halts() -> None:
    old = deployment(1)
    new = replace(old, spec=old.spec.model_copy(update={"envs": {"B": "2"}}), generation=2)
    rows = [replica(old, "a"), replica(new, "c", ready=False)]
    assert plan_deployment(new, rows, {"local": 1}, P, at(59)).halt == ""
    assert "not ready within 60s" in plan_deployment(new, rows, {"local": 1}, P, at(61)).halt


def test_stop_drains_ready_and_stops_the_rest() -> None:
    d = deployment(2, desired=DesiredState.STOPPED)
    rows = [replica(d, "a"), replica(d, "b", S.BACKOFF, ready=False)]
    plan = plan_deployment(d, rows, {"local": 2}, P, at(1))
    assert [r for r, _ in plan.drain] == ["a"] and [r for r, _ in plan.stop] == ["b"]


def test_backoff_relaunches_only_when_due() -> None:
    d = deployment(1)
    r = replica(d, "a", S.BACKOFF, ready=False, next_start_at=at(5))
    assert plan_deployment(d, [r], {"local": 1}, P, at(4)).launch == []
    assert plan_deployment(d, [r], {"local": 1}, P, at(5)).launch == ["a"]


def test_no_gpu_to_surge_frees_one_old_place() -> None:
    old = deployment(1)
    new = replace(old, spec=old.spec.model_copy(update={"envs": {"B": "2"}}), generation=2)
    stuck = replica(new, "c", S.PENDING, ready=False)
    stuck = replace(stuck, reason="Unschedulable: needs 1 GPU; 0 of 1 free",
                    unschedulable="needs 1 GPU; 0 of 1 free")
    plan = plan_deployment(new, [replica(old, "a"), stuck], {"local": 1}, P, at(1))
    assert [r for r, _ in plan.drain] == ["a"]
