"""The state machines: one enum and one table of legal transitions each."""

from __future__ import annotations

from enum import StrEnum


class IllegalTransition(Exception):
    pass


class DeploymentStatus(StrEnum):
    NEW = "NEW"
    PENDING = "PENDING"
    DEPLOYING = "DEPLOYING"
    ACTIVE = "ACTIVE"
    PARTIALLYDEPLOYED = "PARTIALLYDEPLOYED"
    DISABLED = "DISABLED"
    ERROR = "ERROR"
    FAILED = "FAILED"
    DELETING = "DELETING"
    DELETED = "DELETED"

    @classmethod
    def terminal(cls) -> frozenset[DeploymentStatus]:
        return frozenset({cls.DELETED})

    @classmethod
    def broken(cls) -> frozenset[DeploymentStatus]:
        return frozenset({cls.ERROR, cls.FAILED})


_D = DeploymentStatus
# DELETED is reached only through DELETING, the one gate: a delete that finds nothing left to
# stop passes DELETING and DELETED in the same tick (see the roll-up's `through`).
_RUNNING_STATES = {_D.PENDING, _D.DEPLOYING, _D.ACTIVE, _D.PARTIALLYDEPLOYED, _D.ERROR, _D.FAILED}

DEPLOYMENT_TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    _D.NEW: frozenset(_RUNNING_STATES | {_D.DISABLED, _D.DELETING}),
    **{s: frozenset(_RUNNING_STATES | {_D.DISABLED, _D.DELETING}) for s in _RUNNING_STATES},
    _D.DISABLED: frozenset(_RUNNING_STATES | {_D.DELETING}),
    _D.DELETING: frozenset({_D.DELETED}),
    _D.DELETED: frozenset(),
}


def check_deployment_transition(old: DeploymentStatus, new: DeploymentStatus) -> None:
    if old != new and new not in DEPLOYMENT_TRANSITIONS[old]:
        raise IllegalTransition(f"deployment status {old} -> {new} is not allowed")


class ReplicaState(StrEnum):
    PENDING = "PENDING"  # row exists, waiting for a place (e.g. a free GPU)
    STARTING = "STARTING"  # process started, startup probe not yet passed
    RUNNING = "RUNNING"  # started; `ready` says whether readiness passes
    BACKOFF = "BACKOFF"  # exited or failed liveness; restarts after a delay
    DRAINING = "DRAINING"  # out of routing; in-flight requests finish
    STOPPING = "STOPPING"  # SIGTERM sent; SIGKILL after the grace period
    STOPPED = "STOPPED"  # gone

    @classmethod
    def live(cls) -> frozenset[ReplicaState]:
        """States that count towards `total` in deploy_status."""
        return frozenset({cls.PENDING, cls.STARTING, cls.RUNNING, cls.BACKOFF})

    @classmethod
    def leaving(cls) -> frozenset[ReplicaState]:
        return frozenset({cls.DRAINING, cls.STOPPING, cls.STOPPED})

    @classmethod
    def has_process(cls) -> frozenset[ReplicaState]:
        return frozenset({cls.STARTING, cls.RUNNING, cls.DRAINING, cls.STOPPING})


_R = ReplicaState
REPLICA_TRANSITIONS: dict[ReplicaState, frozenset[ReplicaState]] = {
    _R.PENDING: frozenset({_R.STARTING, _R.BACKOFF, _R.STOPPED}),
    _R.STARTING: frozenset({_R.RUNNING, _R.BACKOFF, _R.DRAINING, _R.STOPPING}),
    _R.RUNNING: frozenset({_R.BACKOFF, _R.DRAINING, _R.STOPPING}),
    _R.BACKOFF: frozenset({_R.STARTING, _R.STOPPED}),
    _R.DRAINING: frozenset({_R.STOPPING, _R.STOPPED}),
    _R.STOPPING: frozenset({_R.STOPPED}),
    _R.STOPPED: frozenset(),
}


def check_replica_transition(old: ReplicaState, new: ReplicaState) -> None:
    if old != new and new not in REPLICA_TRANSITIONS[old]:
        raise IllegalTransition(f"replica state {old} -> {new} is not allowed")


class FailureKind(StrEnum):
    """Why a replica's last run ended (beside its message, `last_error`)."""

    EXITED = "EXITED"  # the process ran and exited
    NOT_EXECUTABLE = "NOT_EXECUTABLE"  # the runtime could not execute the command at all
    LOST = "LOST"  # the process is gone and nothing says how it ended
    UNHEALTHY = "UNHEALTHY"  # a startup or liveness probe failed; it was killed
    START_FAILED = "START_FAILED"  # the runtime refused to start it
    PULL_FAILED = "PULL_FAILED"  # its image could not be had (pulled, found)


class TaskState(StrEnum):
    NEW = "NEW"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    ERROR = "ERROR"

    @classmethod
    def done(cls) -> frozenset[TaskState]:
        return frozenset({cls.FINISHED, cls.ERROR})


TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.NEW: frozenset({TaskState.RUNNING, TaskState.FINISHED, TaskState.ERROR}),
    TaskState.RUNNING: frozenset({TaskState.FINISHED, TaskState.ERROR}),
    TaskState.FINISHED: frozenset(),
    TaskState.ERROR: frozenset(),
}


def check_task_transition(old: TaskState, new: TaskState) -> None:
    if old != new and new not in TASK_TRANSITIONS[old]:
        raise IllegalTransition(f"task state {old} -> {new} is not allowed")


class DesiredState(StrEnum):
    """What the user last asked for: run it, stop it, or delete it."""

    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class TaskKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    DELETE = "delete"
