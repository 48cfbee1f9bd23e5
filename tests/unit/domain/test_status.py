import pytest

from berth.domain.status import (
    DEPLOYMENT_TRANSITIONS,
    REPLICA_TRANSITIONS,
    DeploymentStatus,
    IllegalTransition,
    ReplicaState,
    TaskState,
    check_deployment_transition,
    check_replica_transition,
    check_task_transition,
)


def test_every_status_has_a_row() -> None:
    assert set(DEPLOYMENT_TRANSITIONS) == set(DeploymentStatus)
    assert set(REPLICA_TRANSITIONS) == set(ReplicaState)


def test_deleted_is_terminal_and_deleting_only_goes_to_deleted() -> None:
    assert DEPLOYMENT_TRANSITIONS[DeploymentStatus.DELETED] == frozenset()
    assert DEPLOYMENT_TRANSITIONS[DeploymentStatus.DELETING] == {DeploymentStatus.DELETED}
    with pytest.raises(IllegalTransition):
        check_deployment_transition(DeploymentStatus.DELETING, DeploymentStatus.ACTIVE)
    with pytest.raises(IllegalTransition):
        check_deployment_transition(DeploymentStatus.ACTIVE, DeploymentStatus.NEW)
    check_deployment_transition(DeploymentStatus.NEW, DeploymentStatus.PENDING)
    check_deployment_transition(DeploymentStatus.DISABLED, DeploymentStatus.DEPLOYING)


def test_replica_and_task_tables() -> None:
    check_replica_transition(ReplicaState.RUNNING, ReplicaState.DRAINING)
    with pytest.raises(IllegalTransition):
        check_replica_transition(ReplicaState.STOPPED, ReplicaState.STARTING)
    with pytest.raises(IllegalTransition):
        check_replica_transition(ReplicaState.DRAINING, ReplicaState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_task_transition(TaskState.FINISHED, TaskState.RUNNING)
