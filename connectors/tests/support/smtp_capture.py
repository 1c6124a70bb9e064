"""Test-only SMTP server for the connectors mail tests (aiosmtpd 1.4.6).

Usage: python3 smtp_capture.py --port P --out DIR [--user U --password PW]
       [--token TOKEN] [--reject ADDRESS ...] [--tls-cert PEM --tls-key PEM [--implicit-tls]]

Every accepted message is written as DIR/<n>.eml (the DATA exactly as received)
and DIR/<n>.json (MAIL FROM, RCPT TO list, the AUTH mechanism and credentials
the server saw, and whether the session was encrypted). Prints "ready" once it
listens. With --tls-cert/--tls-key the server offers STARTTLS and requires it
before MAIL and AUTH (with --implicit-tls it speaks TLS from the first byte). RCPT TO for a --reject address is answered with 550.
"""

import argparse
import base64
import itertools
import json
import os
import ssl
import sys
import time

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    print("aiosmtpd missing: install it with `python3 -m pip install aiosmtpd==1.4.6`",
          file=sys.stderr, flush=True)
    sys.exit(3)

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--out", required=True)
p.add_argument("--user")
p.add_argument("--password")
p.add_argument("--token")
p.add_argument("--reject", action="append", default=[])
p.add_argument("--tls-cert")
p.add_argument("--tls-key")
p.add_argument("--implicit-tls", action="store_true")
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
counter = itertools.count(1)
rejected = {r.lower() for r in a.reject}


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in rejected:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        auth = session.auth_data or {}
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_mechanism": auth.get("mechanism"),
            "auth_login": auth.get("login"),
            "auth_secret": auth.get("secret"),
            "encrypted": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "client_port": session.peer[1] if session.peer else None,
        }
        with open(os.path.join(a.out, f"{n}.eml.tmp"), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(os.path.join(a.out, f"{n}.json"), "w") as f:
            json.dump(record, f)
        # The .eml appears last, so a reader that sees it also sees the .json.
        os.rename(os.path.join(a.out, f"{n}.eml.tmp"), os.path.join(a.out, f"{n}.eml"))
        return f"250 2.0.0 OK queued as {n}"

    async def auth_XOAUTH2(self, server, args):
        # AUTH XOAUTH2 <base64("user=U\x01auth=Bearer T\x01\x01")>
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            raw = base64.b64decode(args[1]).decode()
            kv = dict(part.split("=", 1) for part in raw.split("\x01") if part)
        except Exception:
            return AuthResult(success=False, handled=False)
        user = kv.get("user")
        bearer = kv.get("auth", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else None
        ok = token is not None and (a.user is None or user == a.user) and (
            a.token is None or token == a.token)
        data = {"mechanism": "XOAUTH2", "login": user, "secret": token}
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode()
    password = auth_data.password.decode()
    ok = (a.user is None or login == a.user) and (a.password is None or password == a.password)
    data = {"mechanism": mechanism, "login": login, "secret": password}
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


kwargs = {}
if a.tls_cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.tls_cert, a.tls_key)
    if a.implicit_tls:
        kwargs.update(ssl_context=ctx, auth_require_tls=False)
    else:
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    kwargs.update(auth_require_tls=False)

controller = Controller(Handler(), hostname="127.0.0.1", port=a.port,
                        authenticator=authenticator, **kwargs)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    controller.stop()
