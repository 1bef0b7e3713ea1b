"""The test panel beside every rule editor: try a message (pasted, or a journaled one
picked by id) against a rule-set version and see why each route row of its type fired
or not, leaf by leaf, with the canonical record and what each destination and task
would get; save it as a rule test of the draft with the outcome it has now; run the
draft's rule tests.

Not in the menu: the studio's editor pages embed its form
(``console/test_panel_slot.html``), and ``/test-panel/<version>`` is its page of its
own. Analysts, approvers and admins open it. A pasted message is the user's own text;
a journaled message is content, so picking one needs message.read and is audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import abort, request
from flask_admin import expose

from admin.console import access, message_reading, trial_words
from admin.console.access import ConsoleView, audit_content_view
from admin.console.task_reading import is_person, label, person_text, when
from admin.services import services
from engine.model.outcome_event import TASK_OUTCOME
from engine.queues import Invalid, NotFound
from engine.rules import lifecycle
from engine.rules.rule_tests import CASE_ID, CaseExists, run_rule_tests, with_saved_case
from engine.rules.trial import HL7V2, Trial, expected_outcome, try_message
from engine.security.permissions import may
from engine.security.roles import Role
from engine.trial_rule_sets import TrialVersion

MESSAGE_LONGEST = 1_000_000  # characters: far past any message a person pastes
_MESSAGE_ID = 36


@dataclass
class Given:
    """What the form sent: the message (text, or a journaled message's bytes), and
    what is wrong with it, by field."""

    text: str = ""
    message_id: str = ""
    case_id: str = ""
    raw: bytes | str | None = None
    charset: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


class TestPanelView(ConsoleView):
    roles = frozenset(lifecycle.AUTHOR_ROLES | lifecycle.OVERRIDE_ROLES)

    def __init__(self) -> None:
        super().__init__(name="Test panel", endpoint="test_panel", url="/test-panel")

    def is_visible(self) -> bool:
        return False  # opened from the rule editors, never from the menu

    @expose("/")
    def index(self) -> Any:
        drafts = services().versions.history(lifecycle.DRAFT, 1, 50).items
        return self.render("console/test_panel_index.html", drafts=drafts)

    @expose("/<int:version>")
    def page(self, version: int) -> Any:
        return self._answer(_version(version), Given())

    @expose("/<int:version>/run", methods=("POST",))
    def run(self, version: int) -> Any:
        tried = _version(version)
        given = _given(version)
        if given.errors or tried.compiled.rule_set is None:
            return self._answer(tried, given, code=400 if given.errors else 200)
        return self._answer(tried, given, trial=_trial(tried, given))

    @expose("/<int:version>/save", methods=("POST",))
    def save(self, version: int) -> Any:
        tried = _version(version)
        given = _given(version)
        if not CASE_ID.fullmatch(given.case_id):
            given.errors["case_id"] = ("Name the rule test: lower-case letters, digits and "
                                       "hyphens, starting with a letter or digit.")
        if given.errors or tried.compiled.rule_set is None:
            return self._answer(tried, given, code=400 if given.errors else 200)
        trial = _trial(tried, given)
        problem = _unsavable(trial)
        if problem is not None:
            given.errors["save"] = problem
            return self._answer(tried, given, trial=trial, code=400)
        return self._store(tried, given, trial)

    @expose("/<int:version>/run-tests", methods=("POST",))
    def run_tests(self, version: int) -> Any:
        tried = _version(version)
        compiled = tried.compiled
        results = (None if compiled.rule_set is None
                   else run_rule_tests(compiled.rule_set, compiled.source))
        return self._answer(tried, _given(version, read=False), tests=results)

    def _store(self, tried: TrialVersion, given: Given, trial: Trial) -> Any:
        data, expect = trial.raw, expected_outcome(trial)
        try:
            services().versions.change(
                tried.version, access.principal(),
                lambda content: with_saved_case(content, given.case_id, data, expect))
        except (lifecycle.Forbidden, lifecycle.Conflict, CaseExists, Invalid) as error:
            given.errors["save"] = _said(error)
            code = (403 if isinstance(error, lifecycle.Forbidden)
                    else 400 if isinstance(error, Invalid) else 409)
            return self._answer(tried, given, trial=trial, code=code)
        return self._answer(_version(tried.version), given, trial=trial,
                            saved=given.case_id)

    def _answer(self, tried: TrialVersion, given: Given, code: int = 200,
                **shown: Any) -> Any:
        """The panel (form and result) for htmx to put in place of the one posted, else
        the whole page with it."""
        words = _Words(tried.compiled.field_sources)
        # ``read`` and ``filters`` are what the record and HL7 tree macros read.
        context = {"tried": tried, "given": given, "version": tried.version, "words": words,
                   "read": words, "filters": {}, "may_pick": _may_pick(), **shown}
        fragment = request.headers.get("HX-Request") == "true"
        name = "console/test_panel_slot.html" if fragment else "console/test_panel.html"
        return self.render(name, **context), code


class _Words:
    """What the panel's templates use to say things: the conditions in the message's
    terms, and the record's labels and values as the message page reads them."""

    def __init__(self, sources: Any) -> None:
        self.sources = sources

    def sentence(self, evidence: Any) -> str:
        return trial_words.sentence(evidence, self.sources)

    def test(self, evidence: Any) -> str:
        return trial_words.test_words(evidence, self.sources)

    def title(self, evidence: Any) -> str:
        return trial_words.subject_title(evidence, self.sources)

    group = staticmethod(trial_words.group)
    seen = staticmethod(message_reading.seen_words)
    body = staticmethod(message_reading.body_document)
    label = staticmethod(label)
    is_person = staticmethod(is_person)
    person_text = staticmethod(person_text)
    when = staticmethod(when)


def _version(version: int) -> TrialVersion:
    try:
        return services().trials.get(version)
    except NotFound:
        abort(404, description=f"There is no rule-set version {version}.")


def _may_pick() -> bool:
    """Journaled messages are content: message.read, and never for compliance."""
    roles = access.principal().roles
    return may(roles, "message.read") and Role.COMPLIANCE not in roles


def _given(version: int, read: bool = True) -> Given:
    form = request.form
    given = Given(form.get("message", "")[:MESSAGE_LONGEST],
                  form.get("message_id", "").strip()[:_MESSAGE_ID],
                  form.get("case_id", "").strip()[:80])
    if not read:
        return given
    if given.message_id:
        _journaled(given, version)
    elif given.text.strip():
        given.raw = given.text
    else:
        given.errors["message"] = ("Paste an HL7 v2 message or FHIR JSON, or give the id of "
                                   "a message in the message log.")
    return given


def _journaled(given: Given, version: int) -> None:
    """The journaled message's bytes, its view audited; refused without message.read."""
    if not _may_pick():
        access.deny("message.read")
    try:
        stored = services().content.stored(given.message_id)
    except NotFound:
        given.errors["message_id"] = ("There is no message with this id: copy it from the "
                                      "message's page in the message log.")
        return
    audit_content_view("message.test_panel", stored.message_id, {"version": version})
    if stored.raw is None:
        given.errors["message_id"] = "This message's bytes were not kept: paste it instead."
    elif stored.format == TASK_OUTCOME:
        given.errors["message_id"] = ("This is a task's outcome, not a message from a "
                                      "source: pick the message the task was made for.")
    else:
        given.raw, given.charset = stored.raw, stored.charset


def _trial(tried: TrialVersion, given: Given) -> Trial:
    assert tried.compiled.rule_set is not None and given.raw is not None
    return try_message(tried.compiled.rule_set, given.raw, charset=given.charset)


def _unsavable(trial: Trial) -> str | None:
    if trial.problem is not None:
        return "This message cannot be read, so it cannot be a rule test: fix it first."
    if trial.format != HL7V2:
        return "Rule tests take HL7 v2 messages: save an HL7 v2 message instead."
    return None


def _said(error: Any) -> str:
    text = error.reason[:1].upper() + error.reason[1:] + "."
    return f"{text} {error.hint}." if error.hint else text
