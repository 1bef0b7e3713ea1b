"""Users and API tokens in the store: tokens are shown once and kept only as hashes,
and only live tokens of enabled users authenticate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.security import passwords
from engine.security.audit import AuditLog
from engine.security.identity import IdentitySource, Principal
from engine.security.roles import Role
from engine.security.tokens import hash_token
from engine.security.users import UserError, UserFilter, UserStore, UserView
from engine.store.models import ApiToken, AuditEvent, User
from tests.store_template import migrated

NAME_HINT = "Use 2 to 64 characters from a-z, 0-9, '.', '_' and '-'"
ROLE_HINT = "Choose one of: admin, analyst, approver, clinician, compliance, operator, registrar"


class Clock:
    """A clock the test moves by hand, to see last_used_at throttled."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(engine, clock):
    migrated(engine)
    users = UserStore(engine, clock)
    try:
        yield users
    finally:
        users.close()


def test_add_returns_a_token_that_authenticates(store):
    token = store.add("alice", "analyst", "admin")
    assert token.startswith("sb_") and len(token) == 46
    assert store.authenticate_token(token) == Principal(
        "alice", frozenset({Role.ANALYST}), "database")


def test_user_store_is_an_identity_source(store):
    source: IdentitySource = store
    assert source.authenticate_token("sb_unknown") is None


def test_list_shows_users_by_name_without_secrets(store, clock):
    store.add("bob", "operator", "admin")
    store.add("alice", "admin", "admin")
    store.issue_token("alice", "admin")
    store.disable("bob", "admin")
    assert store.list() == [
        UserView("alice", Role.ADMIN, False, clock.now, 2, None),
        UserView("bob", Role.OPERATOR, True, clock.now, 0, None),
    ]


def test_list_of_an_empty_store(store):
    assert store.list() == []


def test_tokens_are_stored_only_as_their_hashes(engine, store):
    tokens = [store.add("alice", "analyst", "admin"), store.issue_token("alice", "admin")]
    tables = ("users", "api_tokens", "audit_events")
    with engine.connect() as connection:
        stored = [str(value) for table in tables
                  for row in connection.exec_driver_sql(f"SELECT * FROM {table}")
                  for value in row]
        hashes = set(connection.exec_driver_sql("SELECT token_hash FROM api_tokens").scalars())
    for token in tokens:
        assert not [value for value in stored if token in value]
    assert hashes == {hash_token(token) for token in tokens}


def test_every_token_is_new(store):
    tokens = {store.add("alice", "analyst", "admin")}
    tokens |= {store.issue_token("alice", "admin") for _ in range(5)}
    assert len(tokens) == 6
    assert all(store.authenticate_token(token) for token in tokens)


@pytest.mark.parametrize("token", [
    "", "sb_", "sb_nope", "not-a-token", "Bearer sb_x", "sb_" + "A" * 43,
])
def test_unknown_tokens_do_not_authenticate(store, token):
    store.add("alice", "analyst", "admin")
    assert store.authenticate_token(token) is None


def test_a_revoked_token_does_not_authenticate(engine, store):
    revoked = store.add("alice", "analyst", "admin")
    kept = store.issue_token("alice", "admin")
    with Session(engine) as session, session.begin():
        session.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(revoked))
                        .values(revoked_at=datetime.now(UTC)))
    assert store.authenticate_token(revoked) is None
    assert store.authenticate_token(kept) is not None


def test_disabling_a_user_revokes_every_token(engine, store, clock):
    tokens = [store.add("alice", "analyst", "admin"), store.issue_token("alice", "admin")]
    other = store.add("bob", "analyst", "admin")
    assert store.disable("alice", "admin") == 2
    assert [store.authenticate_token(token) for token in tokens] == [None, None]
    assert store.authenticate_token(other) is not None
    with Session(engine) as session:
        revoked = session.scalars(select(ApiToken.revoked_at).join(User)
                                  .where(User.name == "alice")).all()
    assert revoked == [clock.now, clock.now]


def test_a_disabled_user_does_not_authenticate_even_with_a_live_token(engine, store):
    token = store.add("alice", "analyst", "admin")
    with Session(engine) as session, session.begin():
        session.execute(update(User).values(disabled=True))
    assert store.authenticate_token(token) is None


def test_last_used_at_is_written_at_most_once_a_minute(engine, store, clock):
    token = store.add("alice", "analyst", "admin")

    def last_used():
        with Session(engine) as session:
            return session.scalar(select(ApiToken.last_used_at))

    assert last_used() is None
    store.authenticate_token(token)
    assert last_used() is None  # remembered, not written on the request's path
    store.flush()
    first = clock.now
    assert last_used() == first
    clock.now += timedelta(seconds=59)
    store.authenticate_token(token)
    store.flush()
    assert last_used() == first
    clock.now += timedelta(seconds=1)
    store.authenticate_token(token)
    store.flush()
    assert last_used() == clock.now
    assert store.list()[0].last_used_at == clock.now


def test_the_latest_use_is_written_once_for_many_requests(engine, store, clock):
    token = store.add("alice", "analyst", "admin")
    for _ in range(3):
        store.authenticate_token(token)
        clock.now += timedelta(seconds=10)
    store.close()
    assert store.list()[0].last_used_at == clock.now - timedelta(seconds=10)


def test_uses_the_store_could_not_take_are_written_by_the_next_flush(engine, store, clock):
    token = store.add("alice", "analyst", "admin")
    store.authenticate_token(token)
    with Session(engine) as session, session.begin():
        session.execute(update(ApiToken).values(last_used_at=None))
    renamed = "api_tokens_away"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE api_tokens RENAME TO {renamed}")
    store.flush()  # fails: the table is away; the use is kept
    with engine.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {renamed} RENAME TO api_tokens")
    store.flush()
    assert store.list()[0].last_used_at == clock.now


@pytest.mark.parametrize("name", [
    "", "a", "Alice", "al ice", "al/ice", "alice!", "élise", "a" * 65, "alice\n",
])
def test_bad_names_are_refused(store, name):
    with pytest.raises(UserError) as raised:
        store.add(name, "analyst", "admin")
    assert str(raised.value) == f"user name {name!r} is not allowed. {NAME_HINT}"
    assert store.list() == []


@pytest.mark.parametrize("name", ["ab", "a" * 64, "j.doe", "ops_bot-2", "0.9"])
def test_good_names_are_accepted(store, name):
    store.add(name, "analyst", "admin")
    assert [user.name for user in store.list()] == [name]


@pytest.mark.parametrize("role", ["", "root", "Admin", "admin ", "superuser"])
def test_bad_roles_are_refused(store, role):
    with pytest.raises(UserError) as raised:
        store.add("alice", role, "admin")
    assert str(raised.value) == f"unknown role {role!r}. {ROLE_HINT}"
    assert store.list() == []


@pytest.mark.parametrize("role", list(Role))
def test_every_role_can_be_given(store, role):
    token = store.add("alice", role.value, "admin")
    assert store.authenticate_token(token).roles == {role}


def test_a_duplicate_user_is_refused(store):
    first = store.add("alice", "analyst", "admin")
    with pytest.raises(UserError) as raised:
        store.add("alice", "admin", "admin")
    assert str(raised.value) == ("user 'alice' already exists. "
                                 "Choose another name, or issue the user a new token")
    assert store.authenticate_token(first).roles == {Role.ANALYST}


@pytest.mark.parametrize("change", ["disable", "issue_token"])
def test_changing_an_unknown_user_is_refused(store, change):
    with pytest.raises(UserError) as raised:
        getattr(store, change)("ghost", "admin")
    assert str(raised.value) == "no such user: 'ghost'. See `switchboard users list`"


def test_a_disabled_user_gets_no_new_token(store):
    store.add("alice", "analyst", "admin")
    store.disable("alice", "admin")
    with pytest.raises(UserError) as raised:
        store.issue_token("alice", "admin")
    assert str(raised.value) == ("user 'alice' is disabled. "
                                 "A disabled user cannot be given a token")


def test_disabling_twice_is_refused(store):
    store.add("alice", "analyst", "admin")
    store.disable("alice", "admin")
    with pytest.raises(UserError) as raised:
        store.disable("alice", "admin")
    assert str(raised.value) == "user 'alice' is already disabled"


def test_every_change_is_audited_without_secrets(engine, store):
    store.add("alice", "analyst", "root")
    store.issue_token("alice", "root")
    store.disable("alice", "sec-admin")
    with pytest.raises(UserError):
        store.add("alice", "analyst", "root")
    with Session(engine) as session:
        events = session.execute(select(AuditEvent.actor, AuditEvent.action,
                                        AuditEvent.target_type, AuditEvent.target_id,
                                        AuditEvent.detail).order_by(AuditEvent.id)).all()
        token_ids = session.scalars(select(ApiToken.id).order_by(ApiToken.id)).all()
    assert [tuple(event) for event in events] == [
        ("root", "user.add", "user", "alice", {"role": "analyst", "token_id": token_ids[0]}),
        ("root", "token.issue", "user", "alice", {"token_id": token_ids[1]}),
        ("sec-admin", "user.disable", "user", "alice", {"tokens_revoked": 2}),
    ]
    assert AuditLog(engine).verify() == []


def test_a_refused_change_leaves_no_audit_event(engine, store):
    for bad in (lambda: store.add("x", "analyst", "admin"),
                lambda: store.disable("ghost", "admin"),
                lambda: store.add("alice", "root", "admin")):
        with pytest.raises(UserError):
            bad()
    with Session(engine) as session:
        assert session.scalars(select(AuditEvent)).all() == []


def test_a_user_can_be_added_with_a_console_password(engine, store):
    store.add("alice", "analyst", "root", password="correct horse battery staple")
    [alice] = store.list()
    assert alice.has_password and store.user("alice") == alice
    with Session(engine) as session:
        stored = session.scalar(select(User.password_hash))
        [event] = session.scalars(select(AuditEvent)).all()
    assert passwords.verify(stored, "correct horse battery staple")
    assert event.action == "user.add" and event.detail["password"] is True
    assert "correct horse" not in str(event.detail)


def test_a_refused_first_password_adds_nobody(engine, store):
    with pytest.raises(UserError) as raised:
        store.add("alice", "analyst", "root", password="too short")
    assert str(raised.value) == ("the password is shorter than 12 characters. "
                                 "Use a passphrase of several words")
    assert store.list() == []
    with Session(engine) as session:
        assert session.scalars(select(AuditEvent)).all() == []


def test_one_user_is_shown_as_the_list_shows_them(store):
    store.add("alice", "analyst", "root")
    assert store.user("alice") == store.list()[0]
    with pytest.raises(UserError) as raised:
        store.user("ghost")
    assert str(raised.value) == "no such user: 'ghost'. See `switchboard users list`"


def test_nobody_disables_themselves(store):
    store.add("alice", "admin", "root")
    with pytest.raises(UserError) as raised:
        store.disable("alice", "alice")
    assert str(raised.value) == ("you cannot disable yourself. "
                                 "Ask another admin, or use `switchboard users disable`")
    assert not store.user("alice").disabled


@pytest.fixture
def people(engine, store, clock):
    """Five users: two local with tokens used at different times, one disabled, one
    with a second factor, and an LDAP user whose groups gave two roles."""
    used = {name: store.add(name, role, "root") for name, role in
            (("amy", "operator"), ("bo_b", "analyst"), ("cy", "admin"), ("dee", "operator"))}
    store.disable("dee", "root")
    store.authenticate_token(used["bo_b"])
    store.flush()
    clock.now += timedelta(minutes=5)
    store.authenticate_token(used["amy"])
    store.flush()
    with Session(engine) as session, session.begin():
        session.add(User(name="lee", role="operator", extra_roles=["analyst", "clinician"],
                         source="ldap", disabled=False, created_at=clock.now))
        session.execute(update(User).where(User.name == "cy").values(totp_secret="A" * 32))
    return store


def _names(page):
    return [user.name for user in page.items]


@pytest.mark.parametrize(("wanted", "names"), [
    (UserFilter(), ["amy", "bo_b", "cy", "dee", "lee"]),
    (UserFilter(role="operator"), ["amy", "dee", "lee"]),
    (UserFilter(role="analyst"), ["bo_b", "lee"]),  # lee's groups gave analyst too
    (UserFilter(role="clinician"), ["lee"]),
    (UserFilter(role="registrar"), []),
    (UserFilter(state="active"), ["amy", "bo_b", "cy", "lee"]),
    (UserFilter(state="disabled"), ["dee"]),
    (UserFilter(source="ldap"), ["lee"]),
    (UserFilter(source="local", role="operator", state="active"), ["amy"]),
    (UserFilter(name="E"), ["dee", "lee"]),
    (UserFilter(name="_"), ["bo_b"]),  # a LIKE wildcard is matched as itself
    (UserFilter(name="%"), []),
])
def test_users_are_filtered(people, wanted, names):
    found = people.search(wanted)
    assert (_names(found), found.total) == (names, len(names))


@pytest.mark.parametrize(("sort", "names"), [
    ("name", ["amy", "bo_b", "cy", "dee", "lee"]),
    ("role", ["cy", "bo_b", "amy", "dee", "lee"]),
    ("source", ["lee", "amy", "bo_b", "cy", "dee"]),
    ("state", ["amy", "bo_b", "cy", "lee", "dee"]),
    ("second_factor", ["amy", "bo_b", "dee", "lee", "cy"]),
    ("tokens", ["dee", "lee", "amy", "bo_b", "cy"]),
    ("last_used", ["bo_b", "amy", "cy", "dee", "lee"]),
    ("created", ["amy", "bo_b", "cy", "dee", "lee"]),
])
def test_users_are_sorted_then_by_name(people, sort, names):
    assert _names(people.search(UserFilter(), sort)) == names


@pytest.mark.parametrize(("sort", "names"), [
    ("name", ["lee", "dee", "cy", "bo_b", "amy"]),
    ("role", ["amy", "dee", "lee", "bo_b", "cy"]),  # ties still by name
    ("last_used", ["amy", "bo_b", "cy", "dee", "lee"]),  # never used stays last
])
def test_users_are_sorted_backwards(people, sort, names):
    assert _names(people.search(UserFilter(), sort, descending=True)) == names


def test_users_come_a_page_at_a_time(people):
    pages = [people.search(UserFilter(), page=n, per_page=2) for n in (1, 2, 3, 4)]
    assert [_names(page) for page in pages] == [["amy", "bo_b"], ["cy", "dee"], ["lee"], []]
    assert {page.total for page in pages} == {5}


@pytest.mark.parametrize(("ask", "error"), [
    ({"sort": "password"}, "cannot sort users by 'password'. Sort by one of: name, role, "
                           "source, state, second_factor, tokens, last_used, created"),
    ({"wanted": UserFilter(role="root")}, f"unknown role 'root'. {ROLE_HINT}"),
    ({"wanted": UserFilter(state="gone")}, "unknown state 'gone'. Choose active or disabled"),
    ({"wanted": UserFilter(source="nis")}, "unknown source 'nis'. Choose local or ldap"),
    ({"page": 0}, "page and per_page must be whole numbers from 1"),
    ({"per_page": 0}, "page and per_page must be whole numbers from 1"),
])
def test_a_listing_that_cannot_be_made_is_refused(people, ask, error):
    with pytest.raises(UserError) as raised:
        people.search(**{"wanted": UserFilter(), **ask})
    assert str(raised.value) == error


PASSWORD = "correct horse battery staple"
OTHER = "a different passphrase of mine"


def _user_row(engine, name):
    with Session(engine) as session:
        return session.scalar(select(User).where(User.name == name))


def _audited(engine, action):
    with Session(engine) as session:
        return [(e.actor, e.target_id, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def test_a_user_is_added_without_a_token_when_none_is_wanted(engine, store):
    assert store.add("alice", "analyst", "root", with_token=False) is None
    assert store.tokens("alice") == [] and store.user("alice").active_tokens == 0
    assert "token_id" not in _audited(engine, "user.add")[0][2]


def test_a_display_name_is_kept_shown_and_audited(engine, store):
    store.add("nina", "clinician", "root", display_name="  Nina Patel, RN ")
    nina = store.user("nina")
    assert (nina.display_name, nina.shown_name) == ("Nina Patel, RN", "Nina Patel, RN")
    assert _audited(engine, "user.add")[0][2]["display_name"] == "Nina Patel, RN"
    assert store.set_display_name("nina", "", "root") is None
    assert store.user("nina").shown_name == "nina"
    assert _audited(engine, "user.display_name") == [
        ("root", "nina", {"display_name": None, "was": "Nina Patel, RN"})]


@pytest.mark.parametrize(("display_name", "problem"), [
    ("N" * 101, "the display name is longer than 100 characters"),
    ("Nina\nPatel", "the display name holds a line break"),
])
def test_a_display_name_that_cannot_be_shown_is_refused(store, display_name, problem):
    with pytest.raises(UserError, match=problem):
        store.add("nina", "clinician", "root", display_name=display_name)
    store.add("nina", "clinician", "root")
    with pytest.raises(UserError, match=problem):
        store.set_display_name("nina", display_name, "root")


def test_a_password_an_admin_sets_must_be_changed_and_one_set_at_the_terminal_need_not(
        engine, store):
    store.add("nina", "clinician", "adam", password=PASSWORD, change_required=True)
    assert store.user("nina").password_change_required
    assert _audited(engine, "user.add")[0][2]["change_required"] is True
    store.set_password("nina", OTHER, "cli:root")
    assert not store.user("nina").password_change_required
    store.set_password("nina", PASSWORD, "adam", change_required=True)
    assert store.user("nina").password_change_required
    assert _audited(engine, "user.password") == [
        ("cli:root", "nina", None), ("adam", "nina", {"change_required": True})]


def test_choosing_one_s_own_password_clears_the_demand_and_is_audited(engine, store):
    store.add("nina", "clinician", "adam", password=PASSWORD, change_required=True)
    store.change_own_password("nina", OTHER)
    row = _user_row(engine, "nina")
    assert passwords.verify(row.password_hash, OTHER) and not row.password_change_required
    assert _audited(engine, "user.password.change") == [
        ("nina", "nina", {"was_required": True})]
    # Once chosen, a change asks for the current password.
    with pytest.raises(UserError, match="type your current password"):
        store.change_own_password("nina", PASSWORD)
    with pytest.raises(UserError, match="the current password is not right"):
        store.change_own_password("nina", PASSWORD, current=PASSWORD)
    store.change_own_password("nina", PASSWORD, current=OTHER)
    assert passwords.verify(_user_row(engine, "nina").password_hash, PASSWORD)


@pytest.mark.parametrize(("new", "problem"), [
    (PASSWORD, "the new password is the same as the old one"),
    ("too short", "the password is shorter than 12 characters"),
])
def test_a_new_password_of_one_s_own_follows_the_rules(engine, store, new, problem):
    store.add("nina", "clinician", "adam", password=PASSWORD, change_required=True)
    with pytest.raises(UserError, match=problem):
        store.change_own_password("nina", new)
    assert _user_row(engine, "nina").password_change_required
    assert _audited(engine, "user.password.change") == []


def test_a_directory_user_s_password_is_not_changed_here(engine, store):
    with Session(engine) as session, session.begin():
        session.add(User(name="lee", role="clinician", source="ldap", disabled=False,
                         created_at=datetime(2026, 11, 24, tzinfo=UTC)))
    with pytest.raises(UserError, match="kept by the directory"):
        store.change_own_password("lee", OTHER, current=PASSWORD)


def test_a_local_user_s_role_is_changed_audited_and_their_sessions_end(engine, store):
    """Found in the admins' second check: a user added with the wrong role could only be
    made again."""
    token = store.add("tom", "operator", "root")
    assert store.set_role("tom", "clinician", "root") is True
    assert store.user("tom").role is Role.CLINICIAN
    assert store.authenticate_token(token).roles == frozenset({Role.CLINICIAN})
    assert _audited(engine, "user.role") == [
        ("root", "tom", {"role": "clinician", "was": "operator"})]
    assert store.set_role("tom", "clinician", "root") is False  # nothing to change
    assert len(_audited(engine, "user.role")) == 1
    with pytest.raises(UserError, match="unknown role 'root'"):
        store.set_role("tom", "root", "root")
    with engine.begin() as connection:
        connection.execute(update(User).where(User.name == "tom").values(source="directory"))
    with pytest.raises(UserError, match="directory"):
        store.set_role("tom", "analyst", "root")
