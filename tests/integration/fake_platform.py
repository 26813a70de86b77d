#!/usr/bin/env python3
"""A fake of the messenger platforms' send APIs (standard library only).

One HTTP server on a free loopback port plays Telegram (`/bot<token>/
sendMessage`), WhatsApp (`/<phone_number_id>/messages`), Messenger and
Instagram (`/me/messages`), VK (`/messages.send`) and Viber
(`/send_message`). It records every request and answers as each platform
documents; `fail_next(n, status, platform)` makes the next n calls answer
429, 400 or 500 in that platform's own error format.
"""

import http.server
import json
import threading
import urllib.parse


class Call:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers          # lower-cased names
        self.body = body                # bytes
        self.result = None              # (status, answer JSON)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def form(self):
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8")))

    def __repr__(self):
        return "%s %s %r" % (self.method, self.path, self.body[:300])


def platform_of(path):
    if path.startswith("/bot"):
        return "telegram"
    if path.endswith("/me/messages"):
        return "meta"
    if path.endswith("/messages.send"):
        return "vk"
    if path.endswith("/send_message"):
        return "viber"
    if path.endswith("/messages"):
        return "whatsapp"
    return None


def error_answer(platform, status):
    """(http status, headers, body) of an error in the platform's format."""
    retry = status == 429
    text = {429: "Too Many Requests", 400: "Bad Request: chat not found",
            500: "Internal Server Error"}.get(status, "error")
    if platform == "telegram":
        body = {"ok": False, "error_code": status, "description": text}
        if retry:
            body["description"] = "Too Many Requests: retry after 1"
            body["parameters"] = {"retry_after": 1}
        return status, {}, body
    if platform in ("whatsapp", "meta"):
        code = {429: 130429, 400: 100, 500: 2}.get(status, 1)
        msg = {400: "(#100) Invalid parameter"}.get(status, text)
        return status, ({"Retry-After": "1"} if retry else {}), \
            {"error": {"message": msg, "type": "OAuthException",
                       "code": code, "fbtrace_id": "AbCdEf"}}
    if platform == "vk":
        code = {429: 6, 400: 901, 500: 10}.get(status, 1)
        msg = {429: "Too many requests per second",
               400: "Can't send messages for users without permission",
               500: "Internal server error"}.get(status, text)
        # VK answers HTTP 200 with an error object
        return 200, {}, {"error": {"error_code": code, "error_msg": msg}}
    if platform == "viber":
        if status == 500:
            return 500, {}, {"status": 13, "status_message": text}
        code = {429: 12, 400: 6}.get(status, 1)
        msg = {429: "tooManyRequests", 400: "notSubscribed"}.get(status, text)
        return 200, {}, {"status": code, "status_message": msg}
    return status, {}, {"error": text}


def text_too_long(platform, body):
    """The platform's refusal of a text over its documented limit, or None:
    Telegram 4096 UTF-16 code units, WhatsApp 4096 characters, Messenger
    2000 characters."""
    try:
        b = json.loads(body)
    except ValueError:
        return None
    if platform == "telegram":
        text = b.get("text") or ""
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return 400, {}, {"ok": False, "error_code": 400,
                             "description": "Bad Request: message is too "
                             "long"}
    elif platform in ("whatsapp", "meta"):
        text = (b.get("text") or {}).get("body") if platform == "whatsapp" \
            else ((b.get("message") or {}).get("text") or "")
        if len(text or "") > (4096 if platform == "whatsapp" else 2000):
            return 400, {}, {"error": {
                "message": "(#100) Param text must be at most %d characters"
                % (4096 if platform == "whatsapp" else 2000),
                "type": "OAuthException", "code": 100,
                "fbtrace_id": "AbCdEf"}}
    return None


class FakePlatform:
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()
        self.failures = []           # [(platform or None, status)]
        self.next_id = 100
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                status, headers, answer = fake._answer(
                    self.path, {k.lower(): v for k, v in
                                self.headers.items()}, body)
                with fake.lock:
                    fake.calls[-1].result = (status, answer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, n, status, platform=None):
        with self.lock:
            self.failures.extend([(platform, status)] * n)

    def calls_to(self, platform):
        with self.lock:
            return [c for c in self.calls if platform_of(c.path) == platform]

    def _answer(self, path, headers, body):
        platform = platform_of(path.split("?")[0])
        with self.lock:
            self.calls.append(Call("POST", path, headers, body))
            for i, (p, st) in enumerate(self.failures):
                if p is None or p == platform:
                    del self.failures[i]
                    return error_answer(platform, st)
            too_long = text_too_long(platform, body)
            if too_long is None:
                self.next_id += 1
            n = self.next_id
        if too_long is not None:
            return too_long
        if platform == "telegram":
            try:
                chat = json.loads(body).get("chat_id")
            except ValueError:
                return error_answer(platform, 400)
            return 200, {}, {"ok": True, "result": {
                "message_id": n, "date": 1790000000,
                "chat": {"id": int(chat), "type": "private"},
                "text": "..."}}
        if platform == "whatsapp":
            to = json.loads(body).get("to")
            return 200, {}, {"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": to}],
                             "messages": [{"id": "wamid.OUT%d" % n}]}
        if platform == "meta":
            rid = json.loads(body)["recipient"]["id"]
            return 200, {}, {"recipient_id": rid, "message_id": "m_OUT%d" % n}
        if platform == "vk":
            return 200, {}, {"response": n}
        if platform == "viber":
            return 200, {}, {"status": 0, "status_message": "ok",
                             "message_token": 5741311803571721000 + n,
                             "chat_hostname": "SN-CHAT-05_"}
        return 404, {}, {"error": "no such API"}
