"""`berth serve`: the API, the controller and the gateway in one process; `berth gateway` alone."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import uvicorn
from fastapi import FastAPI

from berth.api.app import create_app
from berth.autoscaler.loop import Autoscaler
from berth.catalog import CATALOG
from berth.controller.loop import Controller, utcnow
from berth.controller.policy import Policy
from berth.domain.platform import PlatformFacts, Region, machine_flavors
from berth.gateway.runner import gateway_thread, serve_forever
from berth.gateway.service import Gateway
from berth.loops import LoopThread, new_loop
from berth.runtime.base import Runtime
from berth.runtime.choice import ImageRuntime, image_runtime
from berth.runtime.composite import CompositeRuntime
from berth.runtime.gpus import detect_gpus
from berth.runtime.nvml import NvmlMeter
from berth.runtime.process import ProcessRuntime
from berth.services.api_keys import ApiKeyService
from berth.services.credentials import CredentialService
from berth.services.deployments import DeploymentService
from berth.services.tasks import TaskService
from berth.services.tokens import TokenService
from berth.services.vault import Vault
from berth.settings import Settings
from berth.store.engine import Store

log = logging.getLogger("berth")


def real_host_path(path: str) -> str | None:
    """The real path of an existing host path (symlinks resolved), else None."""
    return os.path.realpath(path) if os.path.exists(path) else None


def machine_facts(settings: Settings, runs_images: bool = False,
                  images_off: str = "") -> PlatformFacts:
    cpus = os.cpu_count() or 1
    memory = psutil.virtual_memory().total
    gpus = detect_gpus(settings.gpus)
    return PlatformFacts(
        regions={"local": Region("local", "process+podman" if runs_images else "process",
                                 runs_images=runs_images, images_off=images_off,
                                 number=settings.region_id)},
        cpus=cpus, memory_bytes=memory, gpus=gpus, catalog=frozenset(CATALOG),
        max_threads=settings.max_thread_count, flavors=machine_flavors(cpus, memory, gpus),
        volume_roots=tuple(os.path.realpath(p) for p in settings.volume_host_paths),
        host_path=real_host_path)


def prepare_data_dir(settings: Settings) -> None:
    """The data directory, private to the server's user (0700, whatever the umask): it holds
    the admin token, the database and the logs."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)


def private_file(path: Path) -> Path:
    """Create `path` if missing, and make it 0600 (an existing one too)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    return path


def owner_id(settings: Settings) -> str:
    """A stable id for this data directory, stamped on every replica process."""
    path = settings.data_dir / "owner-id"
    if not path.exists() or not path.read_text().strip():
        private_file(path).write_text(uuid.uuid4().hex + "\n")
    return path.read_text().strip()


def configure_logging(settings: Settings) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in (logging.StreamHandler(sys.stderr),
                    logging.FileHandler(private_file(settings.data_dir / "berth.log"))):
        handler.setFormatter(fmt)
        root.addHandler(handler)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class Server:
    settings: Settings
    store: Store
    runtime: Runtime
    controller: Controller
    autoscaler: Autoscaler
    gateway: Gateway
    app: FastAPI
    images: ImageRuntime


def gateway_address(settings: Settings) -> Callable[[str, str], str]:
    """Where a deployment's traffic goes: path routing, or host routing with a domain."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host

    def address(project: str, name: str) -> str:
        if settings.domain:
            return f"http://{name}.{project}.{settings.domain}:{settings.gateway_port}"
        return f"http://{host}:{settings.gateway_port}/{project}/{name}"

    return address


def build(settings: Settings) -> Server:
    prepare_data_dir(settings)
    store = Store(settings.db_url)
    store.migrate()
    owner = owner_id(settings)
    processes = ProcessRuntime(settings.runtime_dir, settings.logs_dir, owner,
                               work_dir=settings.data_dir / "replicas")
    images = image_runtime(settings, owner)
    runtime: Runtime = (CompositeRuntime(processes, images.runtime)
                        if images.runtime is not None else processes)
    facts = machine_facts(settings, runs_images=images.runtime is not None,
                          images_off=images.off_reason)
    tokens = TokenService(store)
    if tokens.ensure_admin_token(settings.token_file, utcnow()):
        log.info("created a new admin token")
    credentials = CredentialService(store, Vault(settings.credentials_key_file), utcnow)
    gateway = new_gateway(settings, store)
    controller = Controller(store, runtime, facts, Policy.from_settings(settings),
                            tick_seconds=settings.tick_seconds,
                            lease_seconds=settings.lease_seconds,
                            on_routing_change=gateway.notify,
                            containers=images.runtime is not None,
                            pull_auth=registry_auth(credentials),
                            exec_prefix=images.exec_prefix)
    autoscaler = Autoscaler(store, runtime, facts, controller.holds_lease, gpus=NvmlMeter(),
                            tick_seconds=settings.autoscaler_tick_seconds,
                            on_change=controller.wake)
    gateway.on_activate = controller.wake
    store.subscribe(controller.wake)
    store.subscribe(gateway.notify)
    app = create_app(deployments_service=DeploymentService(store, facts, utcnow),
                     tasks=TaskService(store), tokens=tokens, runtime=runtime, facts=facts,
                     api_keys=ApiKeyService(store, utcnow), credentials=credentials,
                     address=gateway_address(settings), max_body_bytes=settings.max_body_bytes,
                     data_dir=settings.data_dir)
    return Server(settings, store, runtime, controller, autoscaler, gateway, app, images)


def registry_auth(credentials: CredentialService) -> Callable[[str, str], tuple[str, str, str]]:
    """Opens a deployment's registry credentials for one pull: (registry host, user,
    password); the registry named as a URL or a host."""
    def opened(project: str, name: str) -> tuple[str, str, str]:
        auth = credentials.pull_auth(project, name)
        host = auth.registry_url.split("://", 1)[-1].split("/", 1)[0]
        return host, auth.username, auth.password
    return opened


def new_gateway(settings: Settings, store: Store) -> Gateway:
    return Gateway(store, host=settings.host, port=settings.gateway_port,
                   domain=settings.domain,
                   access_log=private_file(settings.data_dir / "access.log"),
                   idle_seconds=settings.gateway_idle_seconds,
                   head_seconds=settings.gateway_header_seconds,
                   data_dir=settings.data_dir, async_lease_seconds=settings.async_lease_seconds)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_server(settings: Settings) -> None:
    prepare_data_dir(settings)
    configure_logging(settings)
    for what, port in (("API", settings.port), ("gateway", settings.gateway_port)):
        if port and not port_free(settings.host, port):
            raise SystemExit(f"berth: {what} port {settings.host}:{port} is already in use; "
                             f"choose another with --{'port' if what == 'API' else 'gateway-port'}")
    server = build(settings)
    async def control(stopping: asyncio.Event) -> None:
        await asyncio.gather(server.controller.run(stopping), server.autoscaler.run(stopping))

    background = LoopThread("berth-controller", control)
    background.start()
    data_plane = gateway_thread(server.gateway)
    data_plane.start()
    gc.freeze()  # start-up objects never die: keep them out of every later collection
    config = uvicorn.Config(server.app, host=settings.host, port=settings.port,
                            access_log=False, log_level="warning", lifespan="off")
    api = uvicorn.Server(config)
    print(f"Berth API        http://{settings.host}:{settings.port}  (docs: /docs)", flush=True)
    print(f"Gateway          {gateway_address(settings)('PROJECT', 'DEPLOYMENT')}/...",
          flush=True)
    print(f"Containers       {server.images.summary}", flush=True)
    print(f"Data directory   {settings.data_dir.resolve()}", flush=True)
    print(f"Admin token      {settings.token_file.resolve()}", flush=True)
    started = time.monotonic()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal with the
    # handler found at start; make that handler an exception so the replicas are stopped too.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_on_signal)
    try:
        api.run()
    finally:
        log.info("shutting down after %.0fs: stopping the controller and replicas",
                 time.monotonic() - started)
        data_plane.stop()
        background.stop()
        with contextlib.suppress(Exception):
            asyncio.run(server.runtime.shutdown(settings.stop_grace_seconds))
        server.store.close()


def run_gateway(settings: Settings) -> None:
    """`berth gateway`: the data plane alone, beside others, against one store."""
    prepare_data_dir(settings)
    configure_logging(settings)
    store = Store(settings.db_url)
    store.migrate()
    gateway = new_gateway(settings, store)
    loop = new_loop()
    main = loop.create_task(serve_forever(gateway))
    gc.freeze()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    print(f"Berth gateway    {gateway_address(settings)('PROJECT', 'DEPLOYMENT')}/...", flush=True)
    try:
        loop.run_until_complete(main)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()
        store.close()
