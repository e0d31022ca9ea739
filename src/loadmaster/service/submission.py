"""Submitting a workload file: its job types are created (or brought up to date), then all of
its jobs are queued in one transaction — or, if anything is wrong, nothing is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loadmaster.model.job_types import JobType
from loadmaster.service.workload import Workload
from loadmaster.store.records import JobSubmission, JobTypeSpec
from loadmaster.store.sql import SqlStore


@dataclass(slots=True, frozen=True)
class Submitted:
    job_ids: list[int]
    job_types: dict[int, JobType]


def ensure_job_types(
    store: SqlStore, workload: Workload, when: datetime
) -> dict[tuple[str, str], JobType]:
    found: dict[tuple[str, str], JobType] = {}
    for job_type in workload.job_types:
        spec = JobTypeSpec.of(job_type)
        existing = store.job_types.find(job_type.name, job_type.version)
        if existing is None:
            stored = store.job_types.create(spec, when=when)
        elif JobTypeSpec.of(existing) != spec:
            stored = store.job_types.update(
                existing.id,
                when=when,
                resources=spec.resources,
                max_scheduled=spec.max_scheduled,
                max_tries=spec.max_tries,
                timeout_seconds=spec.timeout_seconds,
                steps=spec.steps,
                commands=spec.commands,
                environment=spec.environment,
                retry_main_failures=spec.retry_main_failures,
            )
        else:
            stored = existing
        found[(stored.name, stored.version)] = stored
    return found


def submit_workload(store: SqlStore, workload: Workload, when: datetime) -> Submitted:
    types = ensure_job_types(store, workload, when)
    for name, version in {job.job_type for job in workload.jobs} - set(types):
        stored = store.job_types.find(name, version)
        if stored is None:
            raise ValueError(f"job_type: unknown job type {name}:{version}")
        types[(name, version)] = stored
    submissions = [
        JobSubmission(types[job.job_type].id, priority=job.priority, environment=job.environment)
        for job in workload.jobs
    ]
    results = store.jobs.submit_many(submissions, when=when)
    return Submitted([r.job.id for r in results], {jt.id: jt for jt in types.values()})


def known_job_types(store: SqlStore) -> set[tuple[str, str]]:
    return {(jt.name, jt.version) for jt in store.job_types.all()}
