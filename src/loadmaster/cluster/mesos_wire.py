"""The Mesos v1 scheduler API on the wire: RecordIO framing, call bodies, event parsing.

Pure functions and one incremental decoder, no I/O, so that framing and JSON shapes can be
tested byte for byte. Shapes follow the v1 scheduler HTTP API (`/api/v1/scheduler`, JSON):
every id is an object `{"value": ...}`, every call carries `type` plus a lower-case field of
the same name, and the event stream is RecordIO (`<decimal length>\\n<length bytes of JSON>`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadmaster.model.tasks import Task, TaskStatus, exit_code_from_message
from loadmaster.resources import Resources

JsonDict = dict[str, Any]
ANY_ROLE = "*"
# A RecordIO length line longer than this is a corrupt stream, not a big record.
MAX_LENGTH_DIGITS = 20

# Mesos task states (spec §6.2), extended with the partition-aware ones a v1 master sends:
# they all mean "not running there any more, launch it again".
_STATES: dict[str, TaskStatus] = {
    "TASK_STAGING": TaskStatus.STAGING,
    "TASK_STARTING": TaskStatus.STAGING,
    "TASK_RUNNING": TaskStatus.RUNNING,
    "TASK_KILLING": TaskStatus.RUNNING,
    "TASK_FINISHED": TaskStatus.FINISHED,
    "TASK_FAILED": TaskStatus.FAILED,
    "TASK_ERROR": TaskStatus.FAILED,
    "TASK_KILLED": TaskStatus.KILLED,
    "TASK_LOST": TaskStatus.LOST,
    "TASK_DROPPED": TaskStatus.LOST,
    "TASK_GONE": TaskStatus.LOST,
    "TASK_GONE_BY_OPERATOR": TaskStatus.LOST,
    "TASK_UNREACHABLE": TaskStatus.LOST,
    "TASK_UNKNOWN": TaskStatus.LOST,
}


def task_status(state: str) -> TaskStatus:
    return _STATES.get(state, TaskStatus.UNKNOWN)


# -- RecordIO ---------------------------------------------------------------------------------
class FramingError(ValueError):
    """The stream is not RecordIO; the connection must be dropped and re-established."""


def encode_record(event: Mapping[str, Any]) -> bytes:
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    return str(len(body)).encode() + b"\n" + body


@dataclass(slots=True)
class RecordDecoder:
    """Incremental RecordIO decoder: feed it chunks as they arrive, get whole records.

    HTTP chunk boundaries mean nothing to RecordIO: a chunk may hold part of a length line,
    several records, or the tail of one and the head of the next."""

    _buffer: bytearray = field(default_factory=bytearray)
    _expected: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer.extend(chunk)
        records: list[bytes] = []
        while True:
            if self._expected is None:
                newline = self._buffer.find(b"\n")
                if newline < 0:
                    if len(self._buffer) > MAX_LENGTH_DIGITS:
                        raise FramingError("RecordIO length line too long")
                    return records
                line = bytes(self._buffer[:newline]).strip()
                if not line.isdigit():
                    raise FramingError(f"bad RecordIO length {line[:MAX_LENGTH_DIGITS]!r}")
                self._expected = int(line)
                del self._buffer[: newline + 1]
            if len(self._buffer) < self._expected:
                return records
            records.append(bytes(self._buffer[: self._expected]))
            del self._buffer[: self._expected]
            self._expected = None

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a record."""
        return len(self._buffer)


# -- ids and calls ----------------------------------------------------------------------------
def ident(value: str) -> JsonDict:
    return {"value": value}


def value_of(obj: object) -> str:
    """The `value` of an id object, or "" when absent."""
    if isinstance(obj, dict):
        raw = obj.get("value")
        return raw if isinstance(raw, str) else ""
    return ""


def call(kind: str, framework_id: str | None, body: JsonDict | None = None) -> JsonDict:
    out: JsonDict = {"type": kind}
    if framework_id is not None:
        out["framework_id"] = ident(framework_id)
    if body is not None:
        out[kind.lower()] = body
    return out


@dataclass(slots=True, frozen=True)
class FrameworkSettings:
    name: str
    role: str
    principal: str | None
    failover_timeout_seconds: float
    user: str = "root"
    hostname: str | None = None
    webui_url: str | None = None


def subscribe_call(settings: FrameworkSettings, framework_id: str | None) -> JsonDict:
    """A SUBSCRIBE; with a framework id it is a failover re-subscription of that framework."""
    info: JsonDict = {
        "user": settings.user,
        "name": settings.name,
        "roles": [settings.role],
        "failover_timeout": settings.failover_timeout_seconds,
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "GPU_RESOURCES"}],
    }
    if settings.principal:
        info["principal"] = settings.principal
    if settings.hostname:
        info["hostname"] = settings.hostname
    if settings.webui_url:
        info["webui_url"] = settings.webui_url
    if framework_id is not None:
        info["id"] = ident(framework_id)
    return call("SUBSCRIBE", framework_id, {"framework_info": info})


def filters(refuse_seconds: float) -> JsonDict:
    return {"refuse_seconds": refuse_seconds}


def accept_call(
    framework_id: str, offer_ids: Sequence[str], task_infos: Sequence[JsonDict], refuse: float
) -> JsonDict:
    operations = [{"type": "LAUNCH", "launch": {"task_infos": list(task_infos)}}]
    return call(
        "ACCEPT",
        framework_id,
        {
            "offer_ids": [ident(o) for o in offer_ids],
            "operations": operations if task_infos else [],
            "filters": filters(refuse),
        },
    )


def decline_call(framework_id: str, offer_ids: Sequence[str], refuse: float) -> JsonDict:
    body = {"offer_ids": [ident(o) for o in offer_ids], "filters": filters(refuse)}
    return call("DECLINE", framework_id, body)


def decline_inverse_call(framework_id: str, ids: Sequence[str], refuse: float) -> JsonDict:
    body = {"inverse_offer_ids": [ident(i) for i in ids], "filters": filters(refuse)}
    return call("DECLINE_INVERSE_OFFERS", framework_id, body)


def kill_call(framework_id: str, task_id: str, agent_id: str) -> JsonDict:
    body: JsonDict = {"task_id": ident(task_id)}
    if agent_id:
        body["agent_id"] = ident(agent_id)
    return call("KILL", framework_id, body)


def acknowledge_call(framework_id: str, agent_id: str, task_id: str, uuid: str) -> JsonDict:
    body = {"agent_id": ident(agent_id), "task_id": ident(task_id), "uuid": uuid}
    return call("ACKNOWLEDGE", framework_id, body)


def reconcile_call(framework_id: str, tasks: Iterable[tuple[str, str]]) -> JsonDict:
    """Explicit reconciliation only: an empty list would ask about every task (implicit)."""
    entries = []
    for task_id, agent_id in tasks:
        entry: JsonDict = {"task_id": ident(task_id)}
        if agent_id:
            entry["agent_id"] = ident(agent_id)
        entries.append(entry)
    return call("RECONCILE", framework_id, {"tasks": entries})


# -- offers -----------------------------------------------------------------------------------
def resource_role(resource: Mapping[str, Any]) -> str:
    """The role a resource is offered for: `role` (pre-1.9 format) or the last refinement of
    `reservations`; unreserved resources are `*`."""
    role = resource.get("role")
    if isinstance(role, str) and role:
        return role
    reservations = resource.get("reservations")
    if isinstance(reservations, list) and reservations:
        last = reservations[-1]
        if isinstance(last, dict) and isinstance(last.get("role"), str):
            return str(last["role"])
    return ANY_ROLE


def role_accepted(role: str, accepted_role: str) -> bool:
    """Exact match against `*` or our role (the reference's substring test let `a` pass
    for a role `ab`, scheduling spec §12.2 defect 6)."""
    return role in (ANY_ROLE, accepted_role)


@dataclass(slots=True, frozen=True)
class ParsedOffer:
    offer_id: str
    agent_id: str
    hostname: str
    resources: Resources  # accepted-role scalars, summed per name
    scalars: tuple[JsonDict, ...]  # the accepted scalar entries as offered (for TaskInfo)
    rejected_roles: frozenset[str]


def parse_offer(raw: Mapping[str, Any], accepted_role: str) -> ParsedOffer:
    """Only SCALAR resources of an accepted role count; RANGES (ports), SETs and attributes
    are read past without being used."""
    amounts: dict[str, float] = {}
    scalars: list[JsonDict] = []
    rejected: set[str] = set()
    for resource in raw.get("resources") or []:
        if not isinstance(resource, dict) or resource.get("type", "SCALAR") != "SCALAR":
            continue
        name = resource.get("name")
        scalar = resource.get("scalar")
        if not isinstance(name, str) or not isinstance(scalar, dict):
            continue
        role = resource_role(resource)
        if not role_accepted(role, accepted_role):
            rejected.add(role)
            continue
        amount = float(scalar.get("value", 0.0))
        amounts[name] = amounts.get(name, 0.0) + amount
        scalars.append(dict(resource))
    return ParsedOffer(
        offer_id=value_of(raw.get("id")),
        agent_id=value_of(raw.get("agent_id")),
        hostname=str(raw.get("hostname") or ""),
        resources=Resources(amounts).round_values(),
        scalars=tuple(scalars),
        rejected_roles=frozenset(rejected),
    )


def allocate_scalars(
    needed: Resources, available: list[JsonDict], role: str, principal: str | None
) -> list[JsonDict]:
    """TaskInfo resources taken from the offered entries (reserved for our role first), so that
    each carries exactly the role and reservation it was offered with — the master only
    accepts resources contained in the offers. `available` is consumed in place. A shortfall
    is asked for under our role (the reference's shape: `role` plus `reservation.principal`
    when not `*`) and the master refuses it with TASK_ERROR."""
    out: list[JsonDict] = []
    ordered = sorted(available, key=lambda r: resource_role(r) == ANY_ROLE)
    for name, amount in needed.items():
        remaining = round(amount, 6)
        for entry in ordered:
            if remaining <= 0:
                break
            if entry.get("name") != name:
                continue
            have = float(entry["scalar"].get("value", 0.0))
            take = min(have, remaining)
            if take <= 0:
                continue
            entry["scalar"] = {"value": round(have - take, 6)}
            out.append(_scalar_like(entry, name, take))
            remaining = round(remaining - take, 6)
        if remaining > 0:
            shortfall: JsonDict = {
                "name": name,
                "type": "SCALAR",
                "scalar": {"value": remaining},
                "role": role,
            }
            if role != ANY_ROLE:
                shortfall["reservation"] = {"principal": principal or role}
            out.append(shortfall)
    return out


def _scalar_like(entry: Mapping[str, Any], name: str, amount: float) -> JsonDict:
    copied = {k: v for k, v in entry.items() if k not in ("scalar", "name", "type")}
    return {"name": name, "type": "SCALAR", "scalar": {"value": round(amount, 6)}, **copied}


def agent_totals(answer: object, role: str) -> dict[str, Resources]:
    """Per agent id, the scalar resources we may use: `unreserved_resources` plus
    `reserved_resources[role]` of the master's `/master/slaves` answer (non-numeric
    entries such as the ports range string are skipped). Unparsable answers give {}."""
    if not isinstance(answer, dict):
        return {}
    out: dict[str, Resources] = {}
    for agent in answer.get("slaves") or []:
        if not isinstance(agent, dict) or not isinstance(agent.get("id"), str):
            continue
        parts = [agent.get("unreserved_resources") or {}]
        if role != ANY_ROLE:
            parts.append((agent.get("reserved_resources") or {}).get(role) or {})
        amounts: dict[str, float] = {}
        for part in parts:
            for name, value in part.items() if isinstance(part, dict) else ():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    amounts[name] = amounts.get(name, 0.0) + float(value)
        out[agent["id"]] = Resources(amounts).round_values()
    return out


# -- TaskInfo ---------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class ContainerSettings:
    """Job tasks run as Docker containers when an image is set (spec §8.11)."""

    docker_image: str | None = None
    docker_user: str = "nobody"
    docker_network: str = "BRIDGE"


def task_info(
    task: Task,
    agent_id: str,
    resources: list[JsonDict],
    container: ContainerSettings,
    extra_environment: Mapping[str, str],
) -> JsonDict:
    environment = dict(task.environment) | dict(extra_environment)
    variables = [{"name": k, "value": v} for k, v in sorted(environment.items())]
    command: JsonDict = {"environment": {"variables": variables}}
    docker = container.docker_image if task.is_job_task else None
    if task.shell and task.command:
        command |= {"shell": True, "value": task.command[0]}
    elif task.command:
        command |= {"shell": False, "value": task.command[0], "arguments": list(task.command)}
    info: JsonDict = {
        "name": task.name or task.id,
        "task_id": ident(task.id),
        "agent_id": ident(agent_id),
        "resources": resources,
        "command": command,
    }
    if docker is not None:
        command["user"] = container.docker_user
        if not task.shell:
            # The image's entrypoint runs the arguments, as the reference's Docker tasks do.
            command.pop("value", None)
            command["arguments"] = list(task.command)
        info["container"] = {
            "type": "DOCKER",
            "docker": {
                "image": docker,
                "network": container.docker_network,
                "force_pull_image": False,
                "privileged": False,
                "parameters": [],
            },
        }
    else:
        command["user"] = "root"
    return info


# -- events -----------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class ParsedStatus:
    task_id: str
    agent_id: str
    state: str
    status: TaskStatus
    exit_code: int | None
    message: str | None
    reason: str | None
    source: str | None
    uuid: str | None
    data: dict[str, object]


def parse_status(raw: Mapping[str, Any]) -> ParsedStatus:
    state = str(raw.get("state") or "")
    status = task_status(state)
    message = raw.get("message")
    message = message if isinstance(message, str) else None
    uuid = raw.get("uuid")
    return ParsedStatus(
        task_id=value_of(raw.get("task_id")),
        agent_id=value_of(raw.get("agent_id")),
        state=state,
        status=status,
        exit_code=exit_code_from_message(message, status),
        message=message,
        reason=raw.get("reason") if isinstance(raw.get("reason"), str) else None,
        source=raw.get("source") if isinstance(raw.get("source"), str) else None,
        uuid=uuid if isinstance(uuid, str) and uuid else None,
        data=decode_data(raw.get("data")),
    )


def decode_data(raw: object) -> dict[str, object]:
    """A status's `data` is base64 bytes; when they are a JSON object (Docker's inspect
    output) it is returned, anything else gives {}."""
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}
