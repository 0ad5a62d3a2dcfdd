"""The outbox and its delivery worker, over a real SMTP server and a local SMS gateway."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from dispatch import models as m
from dispatch.cli import main
from dispatch.db import session_factory
from dispatch.errors import ValidationError
from dispatch.notify import (
    DeliveryReport,
    backoff,
    deliver_pending,
    delivered_text,
    enqueue,
    inbox,
    message_id,
)
from tests.dispatch.builders import Graph, build_graph, local

# ---------------------------------------------------------------------------------------------
# Local servers
# ---------------------------------------------------------------------------------------------


class _Mailbox:
    """An aiosmtpd handler that keeps what it receives, or refuses everything with 554."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "554 Transaction failed"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


class _LoopbackController(Controller):
    """aiosmtpd's Controller on port 0: learns the port the system chose before its self-test."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    """A real SMTP server on 127.0.0.1 and the port it listens on."""
    mailbox = _Mailbox()
    controller = _LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    yield mailbox, controller.port
    controller.stop()


class _Gateway:
    """A local SMS gateway: records every request; delivers once per Idempotency-Key."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delivered: dict[str, dict[str, Any]] = {}
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()


@pytest.fixture
def gateway() -> Iterator[tuple[_Gateway, str]]:
    """A local HTTP SMS gateway and its URL."""
    state = _Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append({"headers": dict(self.headers), "body": body})
                if state.status == 200:
                    state.delivered.setdefault(self.headers["Idempotency-Key"], body)
            if state.delay:
                threading.Event().wait(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def smtp_config(port: int, **more: Any) -> dict[str, Any]:
    """Configuration for the loopback SMTP server."""
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_FROM": "dispatch@qd.example",
            "SMTP_TIMEOUT": "5", **more}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def graph(session: Session) -> Graph:
    """The builders' graph, committed so delivery passes in their own sessions see it."""
    built = build_graph(session)
    built.plan.status = m.PlanStatus.PUBLISHED
    # The builders queue a sample row of their own; each test here queues exactly its own.
    session.execute(delete(m.Notification))
    session.commit()
    return built


def queue_email(session: Session, graph: Graph, key: str = "mail:1", **more: Any
                ) -> m.Notification:
    """Queue an e-mail to the technician (not customer-facing: no calling hours)."""
    row = enqueue(session, recipient_kind="technician", recipient_id=graph.technician.id,
                  channel="email", template="roster", language="zh",
                  payload={"subject": "明日派工", "text": "您明天有 3 个上门服务。"},
                  not_before=local(7), latest_useful=None, idempotency_key=key,
                  address="wang@qd.example", **more)
    session.commit()
    return row


def queue_customer_sms(session: Session, graph: Graph, key: str = "sms:1", *,
                       latest_useful: datetime | None = None, task: m.Task | None = None,
                       template: str = "delay_notice", not_before: datetime | None = None
                       ) -> m.Notification:
    """Queue a delay notice (or another ``template``) by SMS to the customer about the graph's
    visit (customer-facing: calling hours apply, or the working day to a delay notice)."""
    row = enqueue(session, recipient_kind="customer", recipient_id=graph.customer.id,
                  channel="sms", template=template, language="zh",
                  payload={"visit_id": graph.visit.id, "new_arrival": local(11, 20).isoformat(),
                           "cause": "traffic"},
                  not_before=not_before or local(7), latest_useful=latest_useful,
                  idempotency_key=key, task=task)
    session.commit()
    return row


def reload(session: Session, row: m.Notification) -> m.Notification:
    """The row as the database holds it now."""
    session.expire_all()
    fresh = session.get(m.Notification, row.id)
    assert fresh is not None
    return fresh


def add_task(session: Session, graph: Graph) -> m.Task:
    """An open delay-notice task for the graph's visit."""
    task = m.Task(kind=m.TaskKind.DELAY_NOTICE, visit_id=graph.visit.id, outlet_id=graph.outlet.id,
                  assignee_role=m.AssigneeRole.DISPATCHER, due_from=local(7), due_by=local(9, 45),
                  idempotency_key="task:delay:V01")
    session.add(task)
    session.commit()
    return task


# ---------------------------------------------------------------------------------------------
# Queueing
# ---------------------------------------------------------------------------------------------


def test_same_key_never_duplicates(session: Session, graph: Graph) -> None:
    """Enqueueing an existing idempotency key returns the existing row; one row is stored."""
    first = queue_email(session, graph)
    second = queue_email(session, graph)
    assert second.id == first.id
    assert session.scalar(select(func.count()).select_from(m.Notification)
                          .where(m.Notification.idempotency_key == "mail:1")) == 1


def test_email_needs_an_address(session: Session, graph: Graph) -> None:
    """An e-mail without an address is refused, naming the field."""
    with pytest.raises(ValidationError) as caught:
        enqueue(session, recipient_kind="technician", recipient_id=graph.technician.id,
                channel="email", template="roster", language="zh", payload={"text": "x"},
                not_before=local(7), latest_useful=None, idempotency_key="mail:none")
    assert caught.value.field == "address"


def test_customers_have_no_inbox(session: Session, graph: Graph) -> None:
    """The in-app inbox is for technicians and users; a customer inbox row names ``channel``."""
    with pytest.raises(ValidationError) as caught:
        enqueue(session, recipient_kind="customer", recipient_id=graph.customer.id,
                channel="inbox", template="x", language="zh", payload={"visit_id": 1},
                not_before=local(7), latest_useful=None, idempotency_key="inbox:c")
    assert caught.value.field == "channel"


def test_customer_message_needs_its_outlet(session: Session, graph: Graph) -> None:
    """A customer message that names no visit, outlet or task has no calling hours: refused."""
    with pytest.raises(ValidationError) as caught:
        enqueue(session, recipient_kind="customer", recipient_id=graph.customer.id,
                channel="sms", template="note", language="zh", payload={"text": "x"},
                not_before=local(7), latest_useful=None, idempotency_key="sms:nowhere")
    assert caught.value.field == "payload"


def test_latest_useful_before_not_before_is_refused(session: Session, graph: Graph) -> None:
    """A message useful only before it may be sent is bad input naming ``latest_useful``."""
    with pytest.raises(ValidationError) as caught:
        enqueue(session, recipient_kind="technician", recipient_id=graph.technician.id,
                channel="inbox", template="x", language="zh", payload={"text": "x"},
                not_before=local(9), latest_useful=local(8), idempotency_key="inbox:late")
    assert caught.value.field == "latest_useful"


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


def test_inbox_delivery_lists_the_message(session: Session, engine: Engine,
                                          graph: Graph) -> None:
    """An inbox message is marked sent by a pass and listed for the technician and for the
    technician's user account."""
    enqueue(session, recipient_kind="technician", recipient_id=graph.technician.id,
            channel="inbox", template="plan_changed", language="zh",
            payload={"text_zh": "您的路线已更新", "text_en": "Your route changed"},
            not_before=local(7), latest_useful=None, idempotency_key="inbox:1")
    session.commit()
    report = deliver_pending(session_factory(engine), now=local(8), config={})
    assert report.counts()["sent"] == 1
    session.expire_all()
    listed = inbox(session, graph.technician)
    assert [row.idempotency_key for row in listed] == ["inbox:1"]
    assert delivered_text(listed[0])[1] == "您的路线已更新"
    assert [row.id for row in inbox(session, graph.user)] == [listed[0].id]


def test_email_over_real_smtp(session: Session, engine: Engine, graph: Graph,
                              smtp: tuple[_Mailbox, int]) -> None:
    """An e-mail reaches a real SMTP server with a Message-ID derived from its key."""
    mailbox, port = smtp
    row = queue_email(session, graph)
    report = deliver_pending(session_factory(engine), now=local(8), config=smtp_config(port))
    assert report.sent == [row.id]
    assert len(mailbox.messages) == 1
    received = mailbox.messages[0]
    assert received["Message-ID"] == message_id("mail:1", "qd.example")
    assert received["To"] == "wang@qd.example"
    assert "3 个上门服务" in received.get_payload(decode=True).decode("utf-8")
    assert reload(session, row).status == m.NotificationStatus.SENT


def test_a_second_pass_does_not_send_again(session: Session, engine: Engine, graph: Graph,
                                           smtp: tuple[_Mailbox, int]) -> None:
    """A retried delivery pass after success sends nothing more."""
    mailbox, port = smtp
    queue_email(session, graph)
    factory = session_factory(engine)
    deliver_pending(factory, now=local(8), config=smtp_config(port))
    again = deliver_pending(factory, now=local(9), config=smtp_config(port))
    assert again.counts()["sent"] == 0
    assert len(mailbox.messages) == 1


def test_refusing_smtp_schedules_a_retry(session: Session, engine: Engine, graph: Graph,
                                         smtp: tuple[_Mailbox, int]) -> None:
    """A 554 refusal keeps the row pending with the error and a back-off; the retry after the
    back-off delivers it: nothing lost."""
    mailbox, port = smtp
    mailbox.refuse = True
    row = queue_email(session, graph)
    factory = session_factory(engine)
    report = deliver_pending(factory, now=local(8), config=smtp_config(port))
    assert report.retry == [row.id]
    failed = reload(session, row)
    assert failed.status == m.NotificationStatus.PENDING and failed.attempts == 1
    assert "554" in (failed.last_error or "")
    assert failed.next_attempt_at == local(8) + timedelta(minutes=1)
    mailbox.refuse = False
    too_early = deliver_pending(factory, now=local(8, 0) + timedelta(seconds=30),
                                config=smtp_config(port))
    assert too_early.counts()["sent"] == 0
    deliver_pending(factory, now=local(8, 1), config=smtp_config(port))
    assert len(mailbox.messages) == 1
    assert reload(session, row).status == m.NotificationStatus.SENT


def test_closed_port_fails_after_max_attempts(session: Session, engine: Engine,
                                              graph: Graph) -> None:
    """Nobody listening: each pass schedules a retry until the last attempt marks it failed."""
    row = queue_email(session, graph)
    factory = session_factory(engine)
    config = smtp_config(closed_port(), NOTIFY_MAX_ATTEMPTS="2")
    first = deliver_pending(factory, now=local(8), config=config)
    second = deliver_pending(factory, now=local(8, 5), config=config)
    assert first.retry == [row.id] and second.failed == [row.id]
    assert reload(session, row).status == m.NotificationStatus.FAILED


def test_backoff_doubles_and_is_capped() -> None:
    """Retry waits are 1, 2, 4, 8 minutes ... and never above an hour."""
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=k) for k in (1, 2, 4, 8)]
    assert backoff(30) == timedelta(hours=1)


def test_customer_sms_through_the_gateway(session: Session, engine: Engine, graph: Graph,
                                          gateway: tuple[_Gateway, str]) -> None:
    """A customer delay notice goes to the gateway as JSON {to, text, id} with the key as id
    and Idempotency-Key; the text is the rendered script with the new arrival time."""
    state, url = gateway
    row = queue_customer_sms(session, graph)
    config = {"SMS_URL": url, "SMS_TOKEN": "secret"}
    report = deliver_pending(session_factory(engine), now=local(10, 30), config=config)
    assert report.sent == [row.id]
    [request] = state.requests
    assert request["body"]["id"] == "sms:1" and request["body"]["to"] == "13800000000"
    assert request["headers"]["Idempotency-Key"] == "sms:1"
    assert request["headers"]["Authorization"] == "Bearer secret"
    assert "11:20" in request["body"]["text"] and "路上堵车" in request["body"]["text"]


def test_lost_acknowledgement_resends_with_the_same_key(
        session: Session, engine: Engine, graph: Graph, gateway: tuple[_Gateway, str]) -> None:
    """When the gateway took the message but the answer was lost (here: HTTP 502), the retry
    carries the same id and Idempotency-Key, so the gateway delivers it once."""
    state, url = gateway
    queue_customer_sms(session, graph)
    factory = session_factory(engine)
    state.status = 502
    deliver_pending(factory, now=local(10, 30), config={"SMS_URL": url})
    state.status = 200
    deliver_pending(factory, now=local(10, 31), config={"SMS_URL": url})
    assert [r["headers"]["Idempotency-Key"] for r in state.requests] == ["sms:1", "sms:1"]
    assert list(state.delivered) == ["sms:1"]


def test_concurrent_passes_send_once(session: Session, engine: Engine, graph: Graph,
                                     gateway: tuple[_Gateway, str]) -> None:
    """Two delivery passes running at once claim the row once: one request, one sent."""
    state, url = gateway
    state.delay = 0.3  # keep the first sender busy while the other pass runs
    row = queue_customer_sms(session, graph)
    factory = session_factory(engine)
    reports: list[DeliveryReport] = []

    def run() -> None:
        reports.append(deliver_pending(factory, now=local(10, 30), config={"SMS_URL": url}))

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(state.requests) == 1
    assert sorted(sum((r.sent for r in reports), [])) == [row.id]
    assert reload(session, row).attempts == 1


def test_customer_message_waits_for_calling_hours(session: Session, engine: Engine,
                                                  graph: Graph,
                                                  gateway: tuple[_Gateway, str]) -> None:
    """At 08:00 a customer SMS (a re-confirmation) is not sent; it waits until 10:00 local,
    then goes."""
    state, url = gateway
    row = queue_customer_sms(session, graph, template="reconfirmation")
    factory = session_factory(engine)
    early = deliver_pending(factory, now=local(8), config={"SMS_URL": url})
    assert early.waiting == [row.id] and state.requests == []
    assert reload(session, row).next_attempt_at == local(10)
    later = deliver_pending(factory, now=local(10), config={"SMS_URL": url})
    assert later.sent == [row.id]


def test_a_same_day_delay_notice_goes_in_the_working_day(session: Session, engine: Engine,
                                                         graph: Graph,
                                                         gateway: tuple[_Gateway, str]) -> None:
    """A delay notice about today's visit waits at 08:00 only for the first shift (08:30), not
    for calling hours, and goes then."""
    state, url = gateway
    row = queue_customer_sms(session, graph)
    factory = session_factory(engine)
    early = deliver_pending(factory, now=local(8), config={"SMS_URL": url})
    assert early.waiting == [row.id] and state.requests == []
    assert reload(session, row).next_attempt_at == local(8, 30)
    assert deliver_pending(factory, now=local(8, 30), config={"SMS_URL": url}).sent == [row.id]
    assert "11:20" in state.requests[0]["body"]["text"]


def test_a_same_day_delay_notice_goes_in_the_rest_time(session: Session, engine: Engine,
                                                       graph: Graph,
                                                       gateway: tuple[_Gateway, str]) -> None:
    """At 12:10, in the 12:00-13:30 rest when nobody is called, a delay notice is texted."""
    state, url = gateway
    row = queue_customer_sms(session, graph)
    report = deliver_pending(session_factory(engine), now=local(12, 10), config={"SMS_URL": url})
    assert report.sent == [row.id] and len(state.requests) == 1


def test_a_delay_notice_is_never_texted_at_night(session: Session, engine: Engine, graph: Graph,
                                                 gateway: tuple[_Gateway, str]) -> None:
    """From 20:00 a delay notice useful until 21:30 can no longer go: it expires unsent."""
    state, url = gateway
    row = queue_customer_sms(session, graph, latest_useful=local(21, 30))
    report = deliver_pending(session_factory(engine), now=local(20), config={"SMS_URL": url})
    assert report.expired == [row.id] and state.requests == []


def test_a_delay_notice_about_another_day_waits_for_calling_hours(
        session: Session, engine: Engine, graph: Graph,
        gateway: tuple[_Gateway, str]) -> None:
    """The exemption is for the visit's own day: the day before, at 09:20, the notice waits for
    calling hours."""
    state, url = gateway
    the_day_before = local(9, 20) - timedelta(days=1)
    row = queue_customer_sms(session, graph, not_before=the_day_before)
    report = deliver_pending(session_factory(engine), now=the_day_before,
                             config={"SMS_URL": url})
    assert report.waiting == [row.id] and state.requests == []
    assert reload(session, row).next_attempt_at == local(10) - timedelta(days=1)


def test_technician_message_ignores_calling_hours(session: Session, engine: Engine,
                                                  graph: Graph,
                                                  smtp: tuple[_Mailbox, int]) -> None:
    """Calling hours protect customers: a technician's e-mail goes at 07:00."""
    mailbox, port = smtp
    queue_email(session, graph)
    deliver_pending(session_factory(engine), now=local(7), config=smtp_config(port))
    assert len(mailbox.messages) == 1


def test_expired_message_flags_its_task(session: Session, engine: Engine, graph: Graph,
                                        gateway: tuple[_Gateway, str]) -> None:
    """A message past its latest useful time expires unsent and flags its task."""
    state, url = gateway
    task = add_task(session, graph)
    row = queue_customer_sms(session, graph, latest_useful=local(10, 45), task=task)
    deliver_pending(session_factory(engine), now=local(11), config={"SMS_URL": url})
    assert reload(session, row).status == m.NotificationStatus.EXPIRED
    assert state.requests == []
    flagged = session.get(m.Task, task.id)
    assert flagged is not None and flagged.flagged and "sms:1" in flagged.flag_reason


def test_no_calling_time_before_deadline_expires_now(session: Session, engine: Engine,
                                                     graph: Graph,
                                                     gateway: tuple[_Gateway, str]) -> None:
    """At 08:00 a message useful only until 09:30 can never be sent in calling hours: it
    expires at once and its task is flagged, instead of waiting in vain."""
    state, url = gateway
    task = add_task(session, graph)
    row = queue_customer_sms(session, graph, latest_useful=local(9, 30), task=task,
                             template="reconfirmation")
    report = deliver_pending(session_factory(engine), now=local(8), config={"SMS_URL": url})
    assert report.expired == [row.id]
    session.expire_all()
    assert session.get(m.Task, task.id).flagged  # type: ignore[union-attr]


def test_unconfigured_channel_is_retried_not_lost(session: Session, engine: Engine,
                                                  graph: Graph) -> None:
    """With no SMTP configured an e-mail stays pending with the reason, to be retried."""
    row = queue_email(session, graph)
    deliver_pending(session_factory(engine), now=local(8), config={})
    fresh = reload(session, row)
    assert fresh.status == m.NotificationStatus.PENDING and "not configured" in (
        fresh.last_error or "")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def test_script_command_prints_a_script(session: Session, db_url: str, graph: Graph) -> None:
    """``dispatch script V01 --kind confirmation --lang en`` prints the rendered script."""
    result = CliRunner().invoke(main, ["--database-url", db_url, "script", "V01",
                                       "--kind", "confirmation", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "Monday" in result.output and "0532-0000000" in result.output


def test_script_command_unknown_visit(db_url: str) -> None:
    """An unknown visit code is one clear error line and exit status 1."""
    result = CliRunner().invoke(main, ["--database-url", db_url, "script", "NOPE"])
    assert result.exit_code == 1 and "NOPE" in result.output


def test_notify_command_runs_one_pass(session: Session, db_url: str, graph: Graph,
                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """``dispatch notify`` delivers what is due and prints the counts."""
    monkeypatch.setenv("DISPATCH_INSTANCE_PATH", str(tmp_path))
    enqueue(session, recipient_kind="technician", recipient_id=graph.technician.id,
            channel="inbox", template="note", language="zh", payload={"text": "测试"},
            not_before=local(7), latest_useful=None, idempotency_key="inbox:cli")
    session.commit()
    result = CliRunner().invoke(main, ["--database-url", db_url, "notify"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
