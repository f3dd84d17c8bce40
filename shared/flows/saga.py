"""What revoke, offboard and reconcile share: cloud calls run as levels of independent steps.

The steps of one level do not depend on one another, so they run side by side (at most
`Settings.max_concurrency` at a time, paced by the account's shared rate limiter, retried by the
runner); the next level starts once the whole level is done, so no step races the one it depends
on. "Does not exist" counts as done; any other failure is recorded and the rest carries on, so
one run finishes all it can and a replay finishes the rest. A step that gets no API budget in time
(BudgetExhausted) is not a failure: the level ends, then the exception goes up to the handler, which
hands the event back to be retried later rather than report it `partial`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from shared.cloud.ram import PolicyEntities
from shared.concurrency import run_all
from shared.errors import BudgetExhausted, CloudError, EntityNotFound, FlowFailed
from shared.models.events import CloudEvent
from shared.models.results import FieldError, Result
from shared.runtime import Runtime
from shared.store.records import GrantRecord

log = logging.getLogger("ramflow.steps")

READ_ONLY_PREFIXES = ("Get", "List")
RAMFLOW_POLICY = re.compile(r"ramflow-[A-Za-z0-9-]+-[0-9a-f]{12}")
"""The names `shared.policy.templates.content_name` gives the custom policies ramflow renders."""


def is_ramflow_policy(policy_type: str, policy_name: str) -> bool:
    return policy_type == "Custom" and RAMFLOW_POLICY.fullmatch(policy_name) is not None


def is_resource_group(scope_id: str) -> bool:
    """ResourceManager lists account-scope grants too, under the account id; groups are `rg-…`."""
    return scope_id.startswith("rg-")


@dataclass(frozen=True)
class Step:
    """One cloud call: whose it is (a user, a policy), which API action, on what."""

    subject: str
    action: str
    target: str
    call: Callable[[], Any] = field(compare=False, repr=False)
    settled_by: tuple[str, ...] = ()
    """Error codes (prefixes) that mean "nothing to do here", e.g. a policy still in use."""

    @property
    def read_only(self) -> bool:
        return self.action.startswith(READ_ONLY_PREFIXES)

    def describe(self) -> dict[str, str]:
        return {"subject": self.subject, "action": self.action, "target": self.target}


@dataclass(frozen=True)
class Done:
    """How one step ended: its value, "absent" (does not exist / settled), or an error code."""

    step: Step
    value: Any = None
    absent: bool = False
    error: str | None = None
    planned: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Progress(Protocol):
    """What a caller (the CLI's progress bar) is told about bulk work."""

    def level(self, description: str, total: int) -> None: ...

    def advance(self) -> None: ...


@dataclass
class Journal:
    """What a flow did, planned and failed, in the order it happened."""

    actions: list[dict[str, str]] = field(default_factory=list)
    planned: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    needs_human: list[dict[str, str]] = field(default_factory=list)

    def error(self, subject: str, what: str, reason: str) -> None:
        self.errors.append({"field": f"{subject}:{what}" if subject else what, "reason": reason})

    def human(self, subject: str, reason: str) -> None:
        entry = {"subject": subject, "reason": reason}
        if entry not in self.needs_human:
            self.needs_human.append(entry)

    def actions_of(self, subject: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a["subject"] == subject]

    def result(self, **fields: Any) -> Result:
        """`completed` when nothing failed, else `partial`: the event is retried and finishes."""
        return Result(
            status="partial" if self.errors else "completed",
            actions=list(self.actions),
            errors=[FieldError.model_validate(error) for error in self.errors],
            needs_human=list(self.needs_human),
            **fields,
        )


class Stepper:
    """Runs levels of steps. In a dry run only read-only steps reach the cloud; the others are planned."""

    def __init__(
        self,
        max_workers: int,
        journal: Journal | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ):
        self.max_workers = max_workers
        self.journal = journal or Journal()
        self.dry_run = dry_run
        self.progress = progress

    def run(self, description: str, steps: Sequence[Step]) -> list[Done]:
        """Every step of one level, side by side; outcomes in the steps' order."""
        steps = list(steps)
        if not steps:
            return []
        live = [s for s in steps if s.read_only or not self.dry_run]
        if self.progress is not None:
            self.progress.level(description, len(live))
        outcomes = iter(run_all([(s.action, self._tracked(s.call)) for s in live], self.max_workers))
        done: list[Done] = []
        out_of_budget: BudgetExhausted | None = None
        for step in steps:
            if not step.read_only and self.dry_run:
                self.journal.planned.append(step.describe())
                done.append(Done(step, planned=True))
                continue
            outcome = next(outcomes)
            if isinstance(outcome.error, BudgetExhausted):
                out_of_budget = out_of_budget or outcome.error
                continue
            done.append(self._judge(step, outcome.value, outcome.error))
        if out_of_budget is not None:
            raise out_of_budget  # not a failure of the step: the whole event is retried later
        return done

    def _tracked(self, call: Callable[[], Any]) -> Callable[[], Any]:
        if self.progress is None:
            return call
        progress = self.progress

        def tracked() -> Any:
            try:
                return call()
            finally:
                progress.advance()

        return tracked

    def _judge(self, step: Step, value: Any, error: Exception | None) -> Done:
        if error is None:
            if not step.read_only:
                self.journal.actions.append(step.describe())
            return Done(step, value=value)
        if isinstance(error, EntityNotFound):
            return Done(step, absent=True)
        if isinstance(error, CloudError):
            if step.settled_by and error.code.startswith(step.settled_by):
                return Done(step, absent=True)
            self.journal.error(step.subject, f"{step.action} {step.target}".strip(), error.code)
            return Done(step, error=error.code)
        log.error("%s %s failed: %s", step.action, step.subject, type(error).__name__, exc_info=error)
        self.journal.error(step.subject, f"{step.action} {step.target}".strip(), type(error).__name__)
        return Done(step, error=type(error).__name__)


def all_ok(done: Sequence[Done]) -> bool:
    return all(d.ok for d in done)


def by_subject(done: Sequence[Done]) -> dict[str, list[Done]]:
    grouped: dict[str, list[Done]] = {}
    for d in done:
        grouped.setdefault(d.step.subject, []).append(d)
    return grouped


# --- grants and custom policies --------------------------------------------------------------------
def detach_step(rt: Runtime, grant: GrantRecord) -> Step:
    """Remove one ledger grant from RAM, at the scope it was granted."""
    if grant.resource_group_id is not None:
        rg, principal = grant.resource_group_id, rt.logon_principal(grant.user_name)
        return Step(
            grant.user_name,
            "DetachPolicy",
            f"{grant.policy_name}@{rg}",
            lambda: rt.cloud.rm.detach_policy(rg, grant.policy_name, grant.policy_type, principal, "IMSUser"),
        )
    return Step(
        grant.user_name,
        "DetachPolicyFromUser",
        grant.policy_name,
        lambda: rt.cloud.ram.detach_policy_from_user(grant.user_name, grant.policy_name, grant.policy_type),
    )


def policy_usage_steps(rt: Runtime, names: Sequence[str]) -> list[Step]:
    """Who still uses each custom policy: RAM's entities and ResourceManager's scoped attachments."""
    steps: list[Step] = []
    for name in sorted(set(names)):
        steps.append(
            Step(
                f"policy {name}",
                "ListEntitiesForPolicy",
                name,
                partial(rt.cloud.ram.list_entities_for_policy, name, "Custom"),
            )
        )
        steps.append(
            Step(
                f"policy {name}",
                "ListPolicyAttachments",
                name,
                partial(rt.cloud.rm.list_policy_attachments, policy_name=name, policy_type="Custom"),
            )
        )
    return steps


USAGE_ACTIONS = ("ListEntitiesForPolicy", "ListPolicyAttachments")


def unused_policies(done: Sequence[Done]) -> tuple[list[str], set[str]]:
    """(policies nothing uses, policies whose usage could not be read) from `policy_usage_steps`
    (other steps of the level are ignored).

    A policy that is gone already is neither: there is nothing left to do for it.
    """
    per_policy: dict[str, list[Done]] = {}
    for d in done:
        if d.step.action in USAGE_ACTIONS:
            per_policy.setdefault(d.step.target, []).append(d)
    unused: list[str] = []
    unknown: set[str] = set()
    for name, results in sorted(per_policy.items()):
        if not all_ok(results):
            unknown.add(name)
        elif not any(r.absent for r in results) and not any(_in_use(r.value) for r in results):
            unused.append(name)
    return unused, unknown


def _in_use(value: Any) -> bool:
    if isinstance(value, PolicyEntities):
        return bool(value.users or value.groups or value.roles)
    return bool(value)


def delete_policy_steps(rt: Runtime, names: Sequence[str]) -> list[Step]:
    """A race with a new grant (`DeleteConflict`) leaves the policy in use: kept, not an error."""
    return [
        Step(
            f"policy {name}",
            "DeletePolicy",
            name,
            partial(rt.cloud.ram.delete_policy, name),
            settled_by=("DeleteConflict",),
        )
        for name in names
    ]


# --- handlers -------------------------------------------------------------------------------------
EventFlow = Callable[[Any, CloudEvent, Runtime], Result]


def retried_until_complete(flow: EventFlow) -> EventFlow:
    """A `partial` result is raised as FlowFailed: the idempotency record is released and FC /
    EventBridge deliver the event again, and the replay finishes what is left."""

    def run(data: Any, event: CloudEvent, rt: Runtime) -> Result:
        result = flow(data, event, rt)
        if result.status == "partial":
            result.event_id = event.id
            raise FlowFailed(result)
        return result

    run.__name__ = getattr(flow, "__name__", "flow")
    run.__doc__ = flow.__doc__
    return run
