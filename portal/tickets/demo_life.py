"""The simulated life of one demo ticket, from filing up to now (no database here).

Each step mirrors a service or the periodic sweep: the same transition table
(`workflow.check_transition`), the same field history, SLA events and their notes as
`services` and `sla` write, the sweep's auto-resolve and auto-close, and at the end the
due times and state replayed as `sla.recompute` does. `demo.py` loads what it reads
and writes what it produces.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import sla
from .incidents import MAJOR
from .routing import rule_matches
from .setup_models import LEVELS, PRIORITIES, RoutingRule
from .sla_clock import ClockEvent, replay
from .workflow import REOPEN_FROM, check_transition

HOUR, DAY = 3600.0, 86400.0


def _words(joined: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in joined.split("|"))


# Subjects and details per topic use the routing rules' own words, so tickets route.
# fmt: off
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "access": (_words("Cannot log in to {app} after my password change|Locked out of my account|"
                      "MFA prompt loops on sign-in to {app}|SSO login fails for {app}|"
                      "Need access to {app} for a new project|Password reset email never arrives"),
               _words("It says my account is locked.|The 2fa code is rejected every time.")),
    "billing": (_words("Invoice {n} shows the wrong amount|Refund for a duplicate payment|"
                       "Subscription renewal charged twice|Billing address on invoice {n} is old"),
                _words("The invoice total does not match the order.|We were charged twice.")),
    "outage": (_words("{app} is down for the whole team|{app} unreachable from the office|"
                      "{app} crashed during an upload|Outage: {app} answers with errors"),
               _words("Nobody on the floor can work.|It went down at about nine.")),
    "technical": (_words("API timeout when exporting from {app}|Error 500 when saving in {app}|"
                         "{app} is slow since the last deploy|Database error in {app} search|"
                         "Bug: {app} exception when opening a report"),
                  _words("The error comes back on every retry.|It began after the deploy.")),
    "general": (_words("Printer on floor {n} jams|New laptop for a starter next week|"
                       "Question about the {app} licence|Monitor flickers at my desk|"
                       "Second screen for the new hire|How do I share a calendar in {app}"),
                _words("No rush, whenever someone has time.|My manager approved this.")),
}
# Cumulative weights (out of 100) of the topics above, for requests and for incidents.
REQUEST_TOPICS, INCIDENT_TOPICS = (25, 37, 43, 65, 100), (10, 10, 55, 100, 100)
APPS = _words("VPN|Outlook|Jira|the wiki|Salesforce|the CRM|SAP|Teams|GitLab|the HR portal")
GENERIC = _words("It started this morning.|Colleagues see the same.|This blocks my work today.")
SEARCH_WORDS = _words("password|invoice|printer|laptop|timeout|login")
FIRST = _words("Ada|Alan|Amara|Anton|Bianca|Chen|Diana|Ethan|Fatima|Grace|Ivan|Jana|Kenji|Lara")
LAST = _words("Andersen|Bauer|Castro|Dubois|Fischer|Garcia|Jensen|Kim|Larsen|Novak|Patel|Rossi")
AGENT_FIRST = _words("Thanks for reporting this, I am looking into it now.|"
                     "I can reproduce this and I am on it.|Thanks, I have picked this up.")
AGENT_ASK = _words("Could you send a screenshot of the error?|Which browser do you use?|"
                   "Does it still happen after signing out and in again?")
REQUESTER_ANSWER = _words("Here is the screenshot.|Chrome, the latest version.|Yes, it still does.")
REQUESTER_CHASE = _words("Any news on this?|It happened again just now.|Adding my manager.")
CHAT = _words("A fix is being tested.|Thanks, that narrows it down.|Still seeing it here.")
NOTES = _words("Logs show the errors start after the last deploy.|Vendor case opened.|"
               "Same root cause as last week's ticket.|Needs a directory change.")
AGENT_RESOLVE = _words("Fixed: please try again and reply if it still fails.|"
                       "Done, your access is in place.|Resolved by a configuration change.")
REQUESTER_REOPEN = _words("It is broken again, sorry.|This did not fix it for me.")
ESCALATIONS = _words("Needs a database change.|Needs server access beyond L1.|Needs a code fix.")
REVIEW_TIMELINE = "Alerts fired, on-call confirmed the impact, a fix went out, monitored 1 h."
ROOT_CAUSES = _words("A certificate expired unnoticed.|A deploy shipped a bad configuration.|"
                     "The primary database ran out of disk.")
ACTIONS = _words("Alert on certificate expiry|Add a deploy check|Add disk usage alerts")
# fmt: on


class Future(Exception):
    """The next step of a ticket's life would come after now: it stays where it is."""


@dataclass
class World:
    """Everything a ticket's life reads, loaded once instead of queried per ticket."""

    now: datetime
    rng: random.Random
    routes: list[tuple[RoutingRule, int, int | None, str | None]]
    default_team: int
    team_names: dict[int, str]
    escalation: dict[str, int]
    targets: dict[tuple[str, str], dict[str, int]]
    calendars: dict[tuple[str, str], dict[str, Any]]
    requesters: list[tuple[int, str]]
    agents: list[tuple[int, str]]
    team_agents: dict[int, list[tuple[int, str]]]
    close_after: timedelta
    resolve_after: timedelta
    routed: dict[str, tuple[int, int | None, str | None]] = field(default_factory=dict)

    def agent_for(self, team_id: int) -> tuple[int, str]:
        return self.rng.choice(self.team_agents.get(team_id) or self.agents)

    def route(self, text: str) -> tuple[int, int | None, str | None]:
        """routing.route over the rules loaded once; the texts repeat, so the answers are kept."""
        if text not in self.routed:
            found = (self.default_team, None, None)
            for rule, team, category, priority in self.routes:
                if rule_matches(rule, text):
                    found = (team, category, priority)
                    break
            if len(self.routed) > 50_000:  # invoice numbers make some texts unique
                self.routed.clear()
            self.routed[text] = found
        return self.routed[text]


def _pick(rng: random.Random, options: tuple[Any, ...], cumulative: tuple[int, ...]) -> Any:
    """random.choices for one item with cumulative weights out of 100, without its setup."""
    roll = rng.random() * 100
    return next(o for o, c in zip(options, cumulative, strict=True) if roll < c)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class Life:
    """One ticket while it is lived through; each step mirrors a service or the sweep."""

    def __init__(self, w: World, created: datetime) -> None:
        self.w, rng = w, w.rng
        type_ = "incident" if rng.random() < 0.12 else "request"
        topic = _pick(
            rng, tuple(TOPICS), INCIDENT_TOPICS if type_ == "incident" else REQUEST_TOPICS
        )
        subjects, details = TOPICS[topic]
        number = rng.randint(10000, 99999) if topic == "billing" else rng.randint(2, 9)
        subject = rng.choice(subjects).format(app=rng.choice(APPS), n=number)
        description = " ".join((rng.choice(details), rng.choice(GENERIC)))
        team, category, suggested = w.route(f"{subject}\n{description}")
        # Most requesters leave the priority to the rules; incidents are set higher.
        weights = (25, 70, 95, 100) if type_ == "incident" else (5, 30, 70, 100)
        chosen = _pick(rng, PRIORITIES, weights) if rng.random() < 0.4 else None
        self.requester = w.requesters[int(len(w.requesters) * rng.random() ** 2)]
        self.assignee: tuple[int, str] | None = None
        self.assigned_at: datetime | None = None
        self.review_at: datetime | None = None
        self.replies: list[tuple[int, str, bool, datetime]] = []
        self.changes: list[tuple[int | None, str, Any, Any, str | None, datetime]] = []
        self.events: list[tuple[str, str, datetime, int | None, str]] = []
        self.warnings: list[tuple[str, str, datetime]] = []
        self.row: dict[str, Any] = {
            "type": type_,
            "subject": subject,
            "description": description,
            "category_id": category,
            "priority": chosen or suggested or "medium",
            "status": "new",
            "team_id": team,
            "assignee_id": None,
            "requester_id": self.requester[0],
            "level": "L1",
            "created_at": created,
            "updated_at": created,
            "status_changed_at": created,
            "first_response_at": None,
            "resolved_at": None,
            "closed_at": None,
        }
        self.touched = created
        for clock, seconds in self.targets().items():  # sla.start
            self.events.append((clock, "start", created, seconds, f"{self.row['priority']} policy"))

    def targets(self) -> dict[str, int]:
        return self.w.targets[self.row["type"], self.row["priority"]]

    @property
    def agent_id(self) -> int | None:
        return self.assignee[0] if self.assignee else None

    def at(self, when: datetime, touches: bool = True) -> None:
        if when > self.w.now:
            raise Future
        if touches:
            self.touched = when

    def move(
        self, when: datetime, status: str, actor: int | None, reason: str | None = None
    ) -> None:
        """services._move with sla.status_changed."""
        self.at(when)
        row, old, events = self.row, self.row["status"], self.events
        check_transition(old, status)
        row["status"], row["status_changed_at"] = status, when
        if status == "resolved":
            row["resolved_at"] = when
        elif status == "closed":
            row["closed_at"] = when
        elif old in REOPEN_FROM:
            row["resolved_at"] = row["closed_at"] = None
        if status == "pending" and old != "pending":
            events.append(("resolution", "pause", when, None, "waiting on the requester"))
        elif old == "pending" and status not in REOPEN_FROM:
            events.append(("resolution", "resume", when, None, f"left pending ({status})"))
        if status == "resolved" and old != "resolved":
            events.append(("resolution", "stop", when, None, "resolved"))
            if row["first_response_at"] is None:
                events.append(("response", "stop", when, None, "resolved before any reply"))
        elif old in REOPEN_FROM and status not in REOPEN_FROM:
            events.append(("resolution", "resume", when, None, "reopened"))
        self.changes.append((actor, "status", old, status, reason, when))

    def assign(self, when: datetime, agent: tuple[int, str]) -> None:
        self.at(when)
        old = self.assignee[1] if self.assignee else None
        self.changes.append((agent[0], "assignee", old, agent[1], None, when))
        self.assignee, self.row["assignee_id"] = agent, agent[0]
        self.assigned_at = self.assigned_at or when
        if self.row["status"] == "new":
            self.move(when, "assigned", agent[0])

    def reply(
        self, when: datetime, by_agent: bool, texts: tuple[str, ...], internal: bool = False
    ) -> None:
        """services.add_reply: an agent's first public reply is the first response; the
        requester's reply takes a pending or resolved ticket back to work."""
        self.at(when, touches=False)
        author = self.assignee if by_agent and self.assignee else self.requester
        self.replies.append((author[0], self.w.rng.choice(texts), internal, when))
        if by_agent and not internal and self.row["first_response_at"] is None:
            self.at(when)
            self.row["first_response_at"] = when
            self.events.append(("response", "stop", when, None, "first public reply"))
        if not by_agent and self.row["status"] in ("resolved", "pending"):
            self.move(when, "in_progress", author[0], "the requester replied")

    def reprioritise(self, when: datetime) -> None:
        """services.update_fields with sla.priority_changed."""
        self.at(when)
        old = self.row["priority"]
        new = PRIORITIES[min(max(PRIORITIES.index(old) + self.w.rng.choice((-1, 1)), 0), 3)]
        if new != old:
            self.changes.append((self.agent_id, "priority", old, new, None, when))
            self.row["priority"] = new
            for clock, seconds in self.targets().items():
                self.events.append((clock, "target", when, seconds, f"priority changed to {new}"))

    def escalate(self, when: datetime) -> None:
        self.at(when)
        level = LEVELS[min(LEVELS.index(self.row["level"]) + 1, len(LEVELS) - 1)]
        team = self.w.escalation.get(level)
        if level == self.row["level"] or team is None:
            return
        reason, names = self.w.rng.choice(ESCALATIONS), self.w.team_names
        self.changes.append((self.agent_id, "level", self.row["level"], level, reason, when))
        self.row["level"] = level
        if team != self.row["team_id"]:
            old = names.get(self.row["team_id"])
            self.changes.append((self.agent_id, "team", old, names[team], reason, when))
            self.row["team_id"] = team
        if self.w.rng.random() < 0.5:
            self.assign(when, self.w.agent_for(team))


def live(x: Life) -> None:
    """From filing to resolution: the first response and the work mostly within their
    targets, pauses while waiting on the requester, now and then an escalation."""
    w, rng, created = x.w, x.w.rng, x.row["created_at"]
    targets = x.targets()
    # About 6 % miss the response target and 7 % the resolution target.
    respond = rng.expovariate(1 / (0.35 * targets["response"]))
    work = max(rng.lognormvariate(math.log(0.35 * targets["resolution"]), 0.7), respond * 2 + 600)
    if rng.random() < 0.12:
        x.reply(created + _s(respond * rng.uniform(0.02, 0.1)), False, REQUESTER_CHASE)
    assigned = respond * rng.uniform(0.15, 0.9)
    x.assign(created + _s(assigned), w.agent_for(x.row["team_id"]))
    started = assigned + (respond - assigned) * rng.uniform(0.2, 1)
    x.move(created + _s(started), "in_progress", x.agent_id)
    x.reply(created + _s(respond), True, AGENT_FIRST)
    kinds = ["pending"] * _pick(rng, (0, 1, 2), (50, 88, 100))
    kinds += ["note"] * _pick(rng, (0, 1, 2), (65, 90, 100)) + ["chat"] * rng.randint(0, 2)
    if rng.random() < 0.07:
        kinds += ["escalate"] * (1 if rng.random() < 0.75 else 2)
    if rng.random() < 0.05:
        kinds.append("priority")
    offset = 0.0
    for clock, kind in sorted((rng.uniform(respond, work), kind) for kind in kinds):
        when = created + _s(clock + offset)
        if kind == "pending":
            x.reply(when, True, AGENT_ASK)
            x.move(when, "pending", x.agent_id)
            # A quarter of the questions are never answered: the sweep resolves those.
            wait = rng.expovariate(1 / (30 * HOUR))
            if rng.random() < 0.25 or _s(wait) >= w.resolve_after:
                days, late = w.resolve_after.days, _s(rng.uniform(0, 300))
                x.move(when + w.resolve_after + late, "resolved", None, f"no reply for {days} days")
                return settle(x)
            x.reply(when + _s(wait), False, REQUESTER_ANSWER)
            offset += wait
        elif kind == "note":
            x.reply(when, True, NOTES, internal=True)
        elif kind == "chat":
            x.reply(when, rng.random() < 0.5, CHAT)
        elif kind == "escalate":
            x.escalate(when)
        else:
            x.reprioritise(when)
    done = created + _s(work + offset)
    x.reply(done, True, AGENT_RESOLVE)
    x.move(done, "resolved", x.agent_id)
    settle(x)


def settle(x: Life) -> None:
    """After resolution: now and then a reopen; then closed by hand, by the sweep after the
    quiet days, or (P0/P1 incidents) only once the post-incident review is written."""
    w, rng, row = x.w, x.w.rng, x.row
    if rng.random() < 0.05:
        back = row["resolved_at"] + _s(rng.uniform(HOUR, 3 * DAY))
        x.reply(back, False, REQUESTER_REOPEN)
        again = back + _s(x.targets()["resolution"] * rng.uniform(0.05, 0.3))
        x.reply(again, True, AGENT_RESOLVE)
        x.move(again, "resolved", x.agent_id)
    swept = row["resolved_at"] + w.close_after + _s(rng.uniform(0, 300))
    reason = f"resolved for {w.close_after.days} days"
    if row["type"] == "incident" and row["priority"] in MAJOR:
        if rng.random() < 0.3 or x.assignee is None:
            return  # no review yet: it stays resolved, whatever the sweep tries
        written = row["resolved_at"] + _s(rng.uniform(DAY, 5 * DAY))
        x.at(written, touches=False)
        x.review_at = written
        if rng.random() < 0.6:
            x.move(written + _s(rng.uniform(600, DAY)), "closed", x.agent_id)
        else:
            x.move(max(swept, written + _s(rng.uniform(0, 300))), "closed", None, reason)
    elif rng.random() < 0.35:
        x.move(row["resolved_at"] + _s(rng.uniform(HOUR, 3 * DAY)), "closed", x.agent_id)
    else:
        x.move(swept, "closed", None, reason)


def finish(x: Life) -> None:
    """sla.recompute as of now, and the warnings the sweep would have sent the assignee."""
    w, row = x.w, x.row
    calendars = w.calendars[row["type"], row["priority"]]
    by_clock: dict[str, list[ClockEvent]] = {"response": [], "resolution": []}
    for clock, kind, when, seconds, _ in x.events:
        by_clock[clock].append(ClockEvent(at=when, kind=kind, target_seconds=seconds))
    clocks = sla.Clocks(
        response=replay(calendars["response"], by_clock["response"], w.now),
        resolution=replay(calendars["resolution"], by_clock["resolution"], w.now),
    )
    row.update(sla.stored_figures(clocks))
    for name, state in (("response", clocks.response), ("resolution", clocks.resolution)):
        end = state.stopped_at or w.now
        marks = (
            ("at_risk", state.at_risk_at, state.breached_at or end),
            ("breached", state.breached_at, end),
        )
        for threshold, mark, until in marks:
            if mark is None or mark > w.now or x.assigned_at is None:
                continue
            sent = max(mark, x.assigned_at) + _s(1)
            if sent <= min(until, end):
                x.warnings.append((name, threshold, sent))
                x.touched = max(x.touched, mark)  # the sweep stored the new state
    row["updated_at"] = x.touched
