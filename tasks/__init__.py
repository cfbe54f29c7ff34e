"""Curated scaling-law tasks and users' own tasks: specs, rows and splits."""

from sld.tasks.errors import SLDError, TaskError
from sld.tasks.rows import Rows, largest_scale_mask, random_fold_labels, scale_point_labels, typical_mask
from sld.tasks.spec import Feature, HumanLaw, Target, TaskSpec
from sld.tasks.task import Task, TrainingTask, curated_names, load_task, load_task_file


def resolve_task(name: str | None = None, task_file: str | None = None) -> Task:
    """The task a command names: a curated name or a ``--task-file``."""
    if task_file:
        return load_task_file(task_file)
    if not name:
        raise TaskError("name a task (see `sld tasks`) or pass --task-file FILE")
    return load_task(name)


__all__ = [
    "Feature", "HumanLaw", "Rows", "SLDError", "Target", "Task", "TaskError", "TaskSpec",
    "TrainingTask", "curated_names", "largest_scale_mask", "scale_point_labels", "load_task", "load_task_file",
    "random_fold_labels", "resolve_task", "typical_mask",
]
