"""ScalePolicy: one region's autoscaling settings, in the shape the decision reads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from berth.domain.spec import Container, DeploymentSpec

# With min < max and no trigger named, scale on in-flight requests per replica: the spec's
# `per_worker` when set, else Ray Serve's default target of 2 ongoing requests.
DEFAULT_CONCURRENCY_TARGET = 2.0
DEFAULT_QUEUE_TARGET = 5.0  # queued or running async requests per replica (KEDA's queueLength)
PANIC_THRESHOLD = 2.0  # panic when the panic window asks for this many times the capacity
TOLERANCE = 0.1  # the band around the target inside which the count holds (hysteresis)


class TriggerKind(StrEnum):
    CONCURRENCY = "concurrency"  # in-flight + waiting requests per replica
    REQUEST_RATE = "request_rate"  # requests per second per replica
    HTTP = "http"  # requests per second per replica over the trigger's own window
    CPU = "cpu"  # percent of the requested cores
    MEMORY = "memory"  # percent of the requested memory
    GPU_UTILIZATION = "gpu_utilization"  # percent busy of the replicas' GPUs
    GPU_MEMORY = "gpu_memory"  # percent used of the replicas' GPU memory
    CUSTOM = "custom"  # a gauge the replicas expose on their Prometheus endpoint
    QUEUE = "queue"  # async invocations waiting per replica

    @classmethod
    def request_driven(cls) -> frozenset[TriggerKind]:
        """Load measured on requests: zero once the deployment has been idle `timeout` s."""
        return frozenset({cls.CONCURRENCY, cls.REQUEST_RATE, cls.HTTP})

    @classmethod
    def resource(cls) -> frozenset[TriggerKind]:
        """The replicas' own consumption: it cannot hold an idle deployment up."""
        return frozenset({cls.CPU, cls.MEMORY, cls.GPU_UTILIZATION, cls.GPU_MEMORY})


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    target: float  # per replica, in the source's unit
    window: float | None = None  # averaging window; None: the policy's stable window
    metric_name: str = ""  # CUSTOM: the gauge
    path: str = "/metrics"  # CUSTOM: where the replicas expose it

    @property
    def key(self) -> str:
        """The trigger's name on the autoscaler view and in events."""
        return f"custom:{self.metric_name}" if self.kind is TriggerKind.CUSTOM else self.kind

    @property
    def source(self) -> str:
        """The samples it reads: `http` and `request_rate` both read the request rate."""
        return TriggerKind.REQUEST_RATE if self.kind is TriggerKind.HTTP else self.key


@dataclass(frozen=True)
class ScalePolicy:
    min: int
    max: int
    triggers: tuple[Trigger, ...] = ()
    cooldown: float = 60.0  # no scale-down sooner than this after the last scale event
    polling_interval: float = 30.0
    stable_window: float = 60.0
    panic_window: float = 6.0
    idle_timeout: float = 120.0  # no requests this long: down to min (to zero when min = 0)
    scale_up_delay: float = 0.0
    metric_ttl: float = 65.0  # a sample older than this is dropped; a silent source is stale
    panic_threshold: float = PANIC_THRESHOLD
    tolerance: float = TOLERANCE

    @property
    def fixed(self) -> bool:
        """Autoscaling is off: the count is min (= max)."""
        return self.min >= self.max

    @property
    def history_seconds(self) -> float:
        """How far back any window of this policy looks."""
        windows = [t.window for t in self.triggers if t.window is not None]
        return max([self.stable_window, self.panic_window, *windows])


def policy_for(spec: DeploymentSpec, container: Container) -> ScalePolicy:
    s = container.scale
    t = s.triggers
    triggers: list[Trigger] = []
    for kind, target in ((TriggerKind.CONCURRENCY, t.concurrency),
                         (TriggerKind.REQUEST_RATE, t.request_rate)):
        if target is not None:
            triggers.append(Trigger(kind, target.target))
    if t.http is not None:
        triggers.append(Trigger(TriggerKind.HTTP, t.http.rate, window=float(t.http.window)))
    for kind, threshold in ((TriggerKind.CPU, t.cpu), (TriggerKind.MEMORY, t.memory),
                            (TriggerKind.GPU_UTILIZATION, t.gpu_utilization),
                            (TriggerKind.GPU_MEMORY, t.gpu_memory)):
        if threshold is not None:
            triggers.append(Trigger(kind, float(threshold.threshold)))
    triggers += [Trigger(TriggerKind.CUSTOM, c.target, metric_name=c.metric_name, path=c.path)
                 for c in t.custom]
    if not triggers and s.min < s.max and t.queue is None:
        triggers.append(Trigger(TriggerKind.CONCURRENCY,
                                float(spec.per_worker or DEFAULT_CONCURRENCY_TARGET)))
    if t.queue is not None:
        triggers.append(Trigger(TriggerKind.QUEUE, t.queue.target))
    elif spec.async_.enabled and s.min < s.max:
        triggers.append(Trigger(TriggerKind.QUEUE, DEFAULT_QUEUE_TARGET))
    polling = float(s.polling_interval)
    stable = max(float(s.stable_window or s.cooldown_period), 2 * polling)
    panic = min(stable, max(stable / 10, polling))
    return ScalePolicy(
        min=s.min, max=s.max, triggers=tuple(triggers), cooldown=float(s.cooldown_period),
        polling_interval=polling, stable_window=stable, panic_window=panic,
        idle_timeout=float(spec.timeout or 0), scale_up_delay=float(s.scale_up_delay),
        metric_ttl=2 * polling + 5)
