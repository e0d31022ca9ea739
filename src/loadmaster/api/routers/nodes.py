"""Nodes: list, get, pause/resume with a reason, deprecate/reactivate. Each node carries its
live state, errors, warnings and resources from the running service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loadmaster.api.context import Context, IdPath, Mutation
from loadmaster.api.errors import from_store, not_found
from loadmaster.api.schemas import NodePause
from loadmaster.api.views import node_views
from loadmaster.store.records import NodeRecord

router = APIRouter(prefix="/nodes", tags=["nodes"])


@router.get("")
def list_nodes(context: Context) -> list[dict[str, Any]]:
    return node_views(context.service, context.store.nodes.all())


def _require(context: Context, node_id: int) -> NodeRecord:
    found = context.store.nodes.get(node_id)
    if found is None:
        raise not_found("node_id", "node", node_id)
    return found


def _view(context: Context, record: NodeRecord) -> dict[str, Any]:
    return node_views(context.service, [record])[0]


@router.get("/{node_id}")
def get_node(node_id: IdPath, context: Context) -> dict[str, Any]:
    return _view(context, _require(context, node_id))


@router.post("/{node_id}/pause", dependencies=[Mutation])
def pause_node(node_id: IdPath, body: NodePause, context: Context) -> dict[str, Any]:
    """No new work goes to a paused node; what runs there carries on."""
    _require(context, node_id)
    try:
        record = context.store.nodes.pause(node_id, reason=body.reason, when=context.clock())
    except ValueError as exc:
        raise from_store(exc) from None
    context.changed()
    return _view(context, record)


@router.post("/{node_id}/resume", dependencies=[Mutation])
def resume_node(node_id: IdPath, context: Context) -> dict[str, Any]:
    _require(context, node_id)
    record = context.store.nodes.resume(node_id, when=context.clock())
    context.changed()
    return _view(context, record)


@router.post("/{node_id}/deprecate", dependencies=[Mutation])
def deprecate_node(node_id: IdPath, context: Context) -> dict[str, Any]:
    _require(context, node_id)
    record = context.store.nodes.deprecate(node_id, when=context.clock())
    context.changed()
    return _view(context, record)


@router.post("/{node_id}/reactivate", dependencies=[Mutation])
def reactivate_node(node_id: IdPath, context: Context) -> dict[str, Any]:
    _require(context, node_id)
    record = context.store.nodes.reactivate(node_id, when=context.clock())
    context.changed()
    return _view(context, record)
