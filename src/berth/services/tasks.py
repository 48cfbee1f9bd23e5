"""Task reads."""

from __future__ import annotations

from berth.domain.errors import NotFound
from berth.domain.records import Task
from berth.store.engine import Store


class TaskService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, task_id: str) -> Task:
        with self.store.read() as tx:
            task = tx.tasks.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found", task_id=task_id)
        return task
