"""Task families: what a model is trained to predict, its loss, its evaluation.

Each family is a :class:`Task` registered in :data:`graphlab.registry.TASKS` (one file per
family here; a new family anywhere is a subclass plus ``@register_task``). See
:mod:`graphlab.tasks.base` for the contract.
"""
from graphlab.registry import TASKS, register_task
from graphlab.tasks.base import INJECTED_MODEL_ARGS, Task
from graphlab.tasks.graph import GraphClassification, GraphMultilabel, GraphRegression
from graphlab.tasks.hetero_node import HeteroNodeClassification
from graphlab.tasks.link import LinkPrediction
from graphlab.tasks.node import NodeClassification, NodeRegression
from graphlab.tasks.recommendation import Recommendation
from graphlab.tasks.regression import RegressionTask

__all__ = ["TASKS", "register_task", "Task", "INJECTED_MODEL_ARGS", "GraphClassification",
           "GraphMultilabel", "GraphRegression", "NodeClassification", "NodeRegression",
           "LinkPrediction", "Recommendation", "RegressionTask", "HeteroNodeClassification"]


def task_schema(name: str):
    """The family's own ``task`` keys: its constructor's keyword parameters (less ``metric``
    and ``ogb_name``, which come from the dataset)."""
    from graphlab.schema import signature_schema
    return signature_schema(TASKS.get(name), skip=("metric", "ogb_name"))


def build_task(task_cfg: dict, info) -> Task:
    """The task family of a run: ``task.name`` (default: the dataset's family) built with the
    config's ``task`` options, the metric (``task.metric``, default the dataset's) and the
    dataset's official evaluator."""
    name = task_cfg.get("name") or info.task
    schema = task_schema(name)
    options = {k: v for k, v in task_cfg.items() if k in schema}
    task = TASKS.get(name)(task_cfg.get("metric") or info.metric,
                           ogb_name=getattr(info, "ogb_name", None), **options)
    task.name = str(name).lower()
    return task


__all__ += ["task_schema", "build_task"]
