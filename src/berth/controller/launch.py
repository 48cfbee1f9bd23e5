"""What a replica runs: its command, environment and effective probes."""

from __future__ import annotations

from collections.abc import Callable

from berth.catalog import catalog_entry
from berth.domain.platform import PlatformFacts
from berth.domain.records import Deployment, Replica
from berth.domain.spec import DeploymentSpec, Probe, Probes, TcpSocketAction
from berth.runtime.base import LaunchSpec, Mount, PullPolicy

# (project, credentials name) -> (registry, username, password), opened for one pull
PullAuth = Callable[[str, str], tuple[str, str, str]]
PIDS_LIMIT = 4096  # processes a container may hold (a fork bomb stops there)

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


def runs_in_container(spec: DeploymentSpec, containers: bool) -> bool:
    """An image that is not the catalog's runs in a container where the runtime has them;
    without one, an image with a `command` runs that command as a local process."""
    return containers and catalog_entry(spec.image) is None


def limits(spec: DeploymentSpec, facts: PlatformFacts | None) -> tuple[float | None, int | None]:
    """The cores and memory bytes a replica is held to: its resources, else its flavor's."""
    if spec.resources is not None:
        return spec.resources.cpu, spec.resources.memory_bytes
    flavor = facts.flavor(spec.flavor) if facts is not None and spec.flavor else None
    if flavor is not None:
        return flavor.cpu, flavor.memory_bytes
    return None, None


def launch_spec(d: Deployment, r: Replica, *, containers: bool = False,
                facts: PlatformFacts | None = None, pull_auth: PullAuth | None = None
                ) -> LaunchSpec:
    if runs_in_container(d.spec, containers):
        return container_launch(d, r, facts, pull_auth)
    if d.spec.volumes:  # validation refuses this; a server restarted without podman may not
        raise ValueError("its volumes need a container runtime, and this server runs "
                         f"{d.spec.image!r} as a local process (image_runtime none, or "
                         "podman unavailable)")
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


def pull_policy(spec: DeploymentSpec) -> PullPolicy:
    """The spec's pull policy, but `Always` for a `localhost/...` image is IfNotPresent:
    podman names the images built on this host so, and no registry serves them (a pull goes
    to https://localhost and fails). TIR's SDK sends `Always` on every create."""
    if spec.image_pull_policy == "Always" and spec.image.startswith("localhost/"):
        return "IfNotPresent"
    return spec.image_pull_policy


def container_launch(d: Deployment, r: Replica, facts: PlatformFacts | None,
                     pull_auth: PullAuth | None) -> LaunchSpec:
    """An image in a container: the spec's `command` replaces the image's entrypoint (as
    Kubernetes' `command` does), envs as for a process, the limits enforced."""
    envs = replica_envs(d)
    envs["PORT"] = str(d.spec.listening_port)
    if not r.gpus:
        envs["CUDA_VISIBLE_DEVICES"] = ""
    cpus, memory = limits(d.spec, facts)
    auth = None
    if d.spec.credentials_name and pull_auth is not None:
        auth = pull_auth(d.project, d.spec.credentials_name)
    return LaunchSpec(replica_id=r.id, deployment_id=d.id, command=[], envs=envs,
                      listening_port=d.spec.listening_port, gpus=tuple(r.gpus),
                      image=d.spec.image, entrypoint=list(d.spec.command) if d.spec.command
                      else None, registry_auth=auth, pull_policy=pull_policy(d.spec),
                      cpus=cpus, memory_bytes=memory, pids_limit=PIDS_LIMIT,
                      mounts=tuple(Mount(v.source, v.target, v.read_only)
                                   for v in d.spec.volumes))
