"""Email through SMTP (settings ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_USER``, ``SMTP_PASSWORD``,
``SMTP_FROM``, ``SMTP_STARTTLS``), with every message in the recipient's language (kk/ru/en,
from the project's catalogues, so it works outside a web request: in the worker and the CLI).

Guarantees:
- A recipient address with a line break or outside the address rule is refused before anything
  is sent (no header injection).
- The password is read from the settings only when connecting; it never appears in a message,
  an error or a log line.
- Without ``SMTP_HOST``, a development install writes each message to ``WORK_DIR/outbox/`` (an
  ``.eml`` file) instead of sending it; in production (``ENV=production``) sending fails.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import uuid
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.support import NullTranslations, Translations

from disclosure.errors import AshyqError

log = logging.getLogger(__name__)
TRANSLATIONS = Path(__file__).parent / "translations"
LANGS = ("kk", "ru", "en")
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS_RULE = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})+")


def N_(text: str) -> str:
    """Mark a message for the catalogues (translated when the mail is rendered)."""
    return text


class MailError(AshyqError):
    """A message that could not be sent (the reason, never a secret)."""


def normalise_address(raw: str) -> str | None:
    """The address in its stored form (stripped; the domain lower-case and in IDNA form), or
    None if it is not a valid address."""
    text = (raw or "").strip()
    if not text or len(text) > 254 or any(c in text for c in "\r\n\t\0 <>,;\"()"):
        return None
    local, sep, domain = text.rpartition("@")
    if not sep or not local or len(local) > 64:
        return None
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    address = f"{local}@{domain}"
    return address if ADDRESS_RULE.fullmatch(address) and len(address) <= 254 else None


# -- the messages ----------------------------------------------------------------------------------
# kind -> (subject, paragraphs); "%(x)s" are parameters; a paragraph whose parameters are all
# empty is left out. Parameters named in TRANSLATED are msgids themselves; "deadline" is a date.

MESSAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "confirm": (
        N_("Confirm your data request no. %(ref)s"),
        (N_("Hello,"),
         N_("we received your request “%(title)s”. Please confirm your email address by "
            "opening this link within %(hours)s hours:"),
         "%(url)s",
         N_("The time to answer starts when you confirm. If you did not send this request, "
            "ignore this email: nothing more will happen."))),
    "confirmed": (
        N_("Your data request no. %(ref)s is registered"),
        (N_("Your request “%(title)s” is registered. We will answer by %(deadline)s "
            "(%(days)s working days)."),
         N_("Follow it on its page (keep this link to yourself):"),
         "%(url)s")),
    "question": (
        N_("A question about your data request no. %(ref)s"),
        (N_("The statistician working on your request “%(title)s” asks:"),
         "%(text)s",
         N_("Please answer on the request page:"),
         "%(url)s")),
    "declined": (
        N_("Your data request no. %(ref)s was declined"),
        (N_("We cannot provide the table you asked for (“%(title)s”). Reason: %(reason)s."),
         "%(text)s",
         N_("The request page:"),
         "%(url)s")),
    "answered_public": (
        N_("Your data request no. %(ref)s is answered"),
        (N_("The table you asked for (“%(title)s”) is published as open data:"),
         "%(public_url)s",
         "%(text)s",
         N_("The request page:"),
         "%(url)s")),
    "answered_private": (
        N_("Your data request no. %(ref)s is answered"),
        (N_("The table you asked for (“%(title)s”) is ready. It is protected like every table "
            "we publish, and it is for you only."),
         "%(text)s",
         N_("Download it within %(days)s days from this link; the page asks for your email "
            "address:"),
         "%(download_url)s",
         N_("The request page:"),
         "%(url)s")),
    "download_link": (
        N_("A new download link for your data request no. %(ref)s"),
        (N_("Download the table you asked for (“%(title)s”) within %(days)s days from this "
            "link; the page asks for your email address:"),
         "%(download_url)s")),
    "reply": (
        N_("The requester answered your question on data request no. %(ref)s"),
        (N_("The requester of “%(title)s” answered:"),
         "%(text)s",
         "%(staff_url)s")),
    "reminder": (
        N_("Reminder: data request no. %(ref)s is due on %(deadline)s"),
        (N_("Three quarters of the time to answer the data request no. %(ref)s (“%(title)s”) "
            "have passed. It is due on %(deadline)s."),
         "%(staff_url)s")),
    "overdue": (
        N_("Overdue: data request no. %(ref)s was due on %(deadline)s"),
        (N_("The data request no. %(ref)s (“%(title)s”) was due on %(deadline)s and has no "
            "answer yet. Assigned to: %(assignee)s."),
         "%(staff_url)s")),
}
TRANSLATED = ("reason", "assignee")


@lru_cache(maxsize=8)
def translations(lang: str) -> NullTranslations:
    if lang not in LANGS:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [lang], domain="messages")


def render(kind: str, lang: str, params: dict[str, Any]) -> tuple[str, str]:
    """The subject and plain-text body of a message of ``kind`` in ``lang``."""
    subject, paragraphs = MESSAGES[kind]
    tr = translations(lang)
    values = {k: ("" if v is None else str(v)) for k, v in params.items()}
    for key in TRANSLATED:
        if values.get(key):
            values[key] = tr.gettext(values[key])
    if values.get("deadline"):
        try:
            day = date.fromisoformat(values["deadline"])
            values["deadline"] = format_date(day, format="long", locale=lang)
        except ValueError:
            pass
    out = []
    for p in paragraphs:
        names = re.findall(r"%\((\w+)\)s", p)
        if names and not any(values.get(n) for n in names) and p.startswith("%("):
            continue
        out.append(tr.gettext(p) % {n: values.get(n, "") for n in names} if names
                   else tr.gettext(p))
    names = re.findall(r"%\((\w+)\)s", subject)
    subj = tr.gettext(subject) % {n: values.get(n, "") for n in names}
    return " ".join(subj.split()), "\n\n".join(out) + "\n"


def build(settings: dict[str, Any], to: str, subject: str, body: str) -> EmailMessage:
    addr = normalise_address(to)
    if addr is None:
        raise MailError("the recipient address is not valid")
    msg = EmailMessage()
    msg["From"] = str(settings.get("SMTP_FROM") or "ashyq@localhost")
    msg["To"] = addr
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=(msg["From"].rpartition("@")[2] or "localhost"))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send(settings: dict[str, Any], to: str, subject: str, body: str) -> None:
    """Send one message (raises :class:`MailError` with the reason, never a secret)."""
    msg = build(settings, to, subject, body)
    host = settings.get("SMTP_HOST")
    if not host:
        if settings.get("ENV") == "production":
            raise MailError("SMTP_HOST is not set: the email cannot be sent")
        outbox = Path(settings.get("WORK_DIR") or "instance/work") / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{uuid.uuid4().hex}.eml").write_bytes(msg.as_bytes())
        log.warning("SMTP_HOST is not set: a message was written to the outbox folder")
        return
    port = int(settings.get("SMTP_PORT") or 25)
    timeout = float(settings.get("SMTP_TIMEOUT") or 20)
    try:
        if port == 465:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                                  context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
        with conn:
            if settings.get("SMTP_STARTTLS") and port != 465:
                conn.starttls(context=ssl.create_default_context())
            if settings.get("SMTP_USER"):
                conn.login(str(settings["SMTP_USER"]), str(settings.get("SMTP_PASSWORD") or ""))
            conn.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise MailError("the SMTP server refused the user name or password") from None
    except smtplib.SMTPRecipientsRefused:
        raise MailError("the SMTP server refused the recipient address") from None
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"the SMTP server could not be reached or refused the message "
                        f"({type(e).__name__})") from None
