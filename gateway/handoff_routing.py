"""Routing rules for handoffs (CHATWOOT_ROUTING): which Chatwoot team, agent, labels and
priority a handoff gets, by why it happened, the client's language and messenger, the master
they were booking, and whether staff are at work.

Rules are a JSON list, tried in order; the first whose conditions all hold wins, and a handoff
no rule takes goes the default way (CHATWOOT_TEAM_ID, CHATWOOT_ASSIGNEE_ID). A condition is one
value or a list of values (any of them); a rule without conditions takes every handoff:

    [{"name": "complaints", "reason": "complaint", "team_id": 3, "labels": ["complaint"],
      "priority": "urgent"},
     {"name": "english", "language": "en", "assignee_id": 7},
     {"name": "night", "hours": "out", "team_id": 4, "priority": "low"}]

Validated with the rest of the salon's settings: an unknown field, reason or priority stops
the start with the rule's place in the list. Pure: the help desk applies the route
(gateway/integrations/chatwoot/helpdesk.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What marks a handoff made outside working hours, for the morning (CHATWOOT_AFTER_HOURS_LABEL).
AFTER_HOURS_LABEL = "after-hours"


def _listed(value: Any) -> Any:
    """A condition written as one value stands for the list of it."""
    return value if value is None or isinstance(value, list | tuple) else [value]


class RouteRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    # Conditions: None means any.
    reason: tuple[Literal["person", "misunderstood", "complaint", "booking"], ...] | None = None
    language: tuple[Literal["ru", "en"], ...] | None = None
    channel: tuple[Literal["telegram", "whatsapp"], ...] | None = None
    master: tuple[int, ...] | None = None  # the master's Cal.com user id
    hours: Literal["in", "out"] | None = None
    # Where the handoff goes.
    team_id: int | None = Field(default=None, gt=0)
    assignee_id: int | None = Field(default=None, gt=0)
    labels: tuple[str, ...] = ()
    # Chatwoot's priorities (POST .../toggle_priority, its enum in chatwoot.openapi.json;
    # Conversation#toggle_priority, app/models/conversation.rb, stores it).
    priority: Literal["urgent", "high", "medium", "low", "none"] | None = None

    @field_validator("reason", "language", "channel", "master", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _listed(value)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Chatwoot's labels are lower-case words (Label#title: letters, digits, - and _).
        if any(not label or label != label.strip() or "," in label for label in value):
            raise ValueError("a label is one word, without commas or spaces around it")
        return value

    def takes(self, facts: RouteFacts) -> bool:
        checks = (
            (self.reason, facts.reason),
            (self.language, facts.language),
            (self.channel, facts.channel),
            (self.master, facts.master),
        )
        if any(wanted is not None and value not in wanted for wanted, value in checks):
            return False
        return self.hours is None or (self.hours == "out") == facts.after_hours

    def describe(self) -> str:
        """One line for `frontdesk check`: "complaints: reason=complaint → team 3, ..."."""
        conditions = [
            f"{name}={'|'.join(str(v) for v in values)}"
            for name, values in (
                ("reason", self.reason),
                ("language", self.language),
                ("channel", self.channel),
                ("master", self.master),
            )
            if values is not None
        ]
        if self.hours is not None:
            conditions.append(f"hours={self.hours}")
        target = []
        if self.team_id is not None:
            target.append(f"team {self.team_id}")
        if self.assignee_id is not None:
            target.append(f"agent {self.assignee_id}")
        if self.labels:
            target.append(f"labels {','.join(self.labels)}")
        if self.priority is not None:
            target.append(f"priority {self.priority}")
        when = " ".join(conditions) or "every handoff"
        return f"{self.name or 'rule'}: {when} → {', '.join(target) or 'the default'}"


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """What is known of one handoff when it is routed."""

    reason: str
    language: str
    channel: str
    master: int | None
    after_hours: bool


@dataclass(frozen=True, slots=True)
class Route:
    """Where one handoff goes: `rule` names the rule that took it ("" for the default)."""

    team_id: int | None
    assignee_id: int | None
    labels: tuple[str, ...]
    priority: str | None
    rule: str = ""


@dataclass(frozen=True, slots=True)
class Routing:
    rules: tuple[RouteRule, ...] = ()
    team_id: int | None = None
    assignee_id: int | None = None
    # Every handoff's labels (CHATWOOT_LABELS); a rule's come on top.
    labels: tuple[str, ...] = ()
    after_hours_label: str = AFTER_HOURS_LABEL

    def route(self, facts: RouteFacts) -> Route:
        """The first rule that takes the handoff, else the default; a rule's team or agent
        left out is the default's. Out of hours the after-hours label comes too."""
        extra = (self.after_hours_label,) if facts.after_hours and self.after_hours_label else ()
        for n, rule in enumerate(self.rules, 1):
            if rule.takes(facts):
                team = rule.team_id if rule.team_id is not None else self.team_id
                agent = rule.assignee_id
                if agent is None and rule.team_id is None:
                    agent = self.assignee_id
                labels = _merged(self.labels, rule.labels, extra)
                return Route(team, agent, labels, rule.priority, rule.name or f"rule {n}")
        return Route(self.team_id, self.assignee_id, _merged(self.labels, extra), None)


def _merged(*groups: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for group in groups:
        found += [label for label in group if label not in found]
    return tuple(found)
