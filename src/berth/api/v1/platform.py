"""Native v1: tasks, flavors, regions."""

from __future__ import annotations

from fastapi import Request

from berth.api import state
from berth.api.auth import owned_task, platform_fact
from berth.api.body import api_router
from berth.api.v1.models import FlavorList, RegionList, TaskOut
from berth.api.views import flavor_out, region_out, task_out

router = api_router(prefix="/v1")


@router.get("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"])
@owned_task
def get_task(task_id: str, request: Request) -> TaskOut:
    tasks = state.tasks(request)
    return task_out(tasks.get(task_id))


@router.get("/flavors", response_model=FlavorList, tags=["platform"])
@platform_fact
def flavors(request: Request) -> FlavorList:
    facts = state.facts(request)
    return FlavorList(items=[flavor_out(f) for f in facts.flavors])


@router.get("/regions", response_model=RegionList, tags=["platform"])
@platform_fact
def regions(request: Request) -> RegionList:
    facts = state.facts(request)
    return RegionList(items=[region_out(r, facts) for r in facts.regions.values()])
