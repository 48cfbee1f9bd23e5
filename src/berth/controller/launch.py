"""What a replica runs: its command, environment and effective probes."""

from __future__ import annotations

from berth.catalog import catalog_entry
from berth.domain.records import Deployment, Replica
from berth.domain.spec import DeploymentSpec, Probe, Probes, TcpSocketAction
from berth.runtime.base import LaunchSpec

DEFAULT_READINESS = Probe(tcp_socket=TcpSocketAction(), period_seconds=1, failure_threshold=3)


def effective_probes(spec: DeploymentSpec) -> Probes:
    """The spec's probes; else the catalog image's; else a TCP readiness check on the port."""
    if spec.probes is not None:
        return spec.probes
    entry = catalog_entry(spec.image)
    if entry is not None:
        return entry.probes
    return Probes(readiness=DEFAULT_READINESS)


# The thread-pool sizes of the common numeric libraries, set from `resources.threads`.
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS")


def replica_envs(d: Deployment) -> dict[str, str]:
    envs = dict(d.spec.envs)
    envs.update(BERTH_DEPLOYMENT=d.name, BERTH_PROJECT=d.project,
                BERTH_LISTENING_PORT=str(d.spec.listening_port))
    threads = d.spec.resources.threads if d.spec.resources else None
    if threads is not None:
        for name in THREAD_ENVS:  # an env the user set wins
            envs.setdefault(name, str(threads))
        envs["BERTH_THREADS"] = str(threads)
    return envs


def launch_spec(d: Deployment, r: Replica) -> LaunchSpec:
    command = d.spec.command
    if command is None:
        entry = catalog_entry(d.spec.image)
        if entry is None:
            raise ValueError(f"image {d.spec.image!r} is not in the catalog")
        command = entry.command()
    envs = replica_envs(d)
    if not r.gpus:
        envs["CUDA_VISIBLE_DEVICES"] = ""  # GPUs go only to replicas that were given them
    return LaunchSpec(replica_id=r.id, deployment_id=d.id, command=list(command),
                      envs=envs, listening_port=d.spec.listening_port,
                      gpus=tuple(r.gpus))
