"""The sign-in and sign-out pages of ``opsjobs serve`` (issue 18), in place of jupyter_server's
generic "Password:" form.

* ``GET /login``: one field, "API key", in the dashboard's look; the page is self-contained
  (inline style, no script, no font or icon from anywhere), so it loads offline and cleanly.
* ``POST /login``: the key is checked by :class:`~opsjobs.server.identity.OpsJobsIdentityProvider`
  (hashed in the store, never kept by the browser). A wrong one is sent back (303) to the page,
  which then shows a plain error — not a 401 page: Chromium logs every 4xx document as a console
  error, and a reload does not post the key again. A good one sets the login cookie (HttpOnly,
  SameSite=Lax, Secure over TLS: see :func:`opsjobs.server.app.server_config`) and goes on to
  ``next`` (the dashboard by default). Scripts authenticate with ``Authorization: Bearer``.
* ``POST /logout`` (the dashboard header's "Sign out") and ``GET /logout`` (jupyter_server's
  habit): the cookie is cleared and the browser sent back to the sign-in page.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from tornado.escape import url_escape, xhtml_escape

__all__ = ["SIGNIN_CSS", "SignInHandler", "SignOutHandler", "signin_page"]

#: The wrong-key message (shown on the page; tests look for it).
WRONG_KEY = (
    "That API key was not accepted: it is unknown, revoked or mistyped. "
    "Keys look like oj_xxxxxxxxxx_… — ask your admin for one (opsjobs keys create)."
)
SIGNED_OUT = "You are signed out."

SIGNIN_CSS = """
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  background:#f3f4f6;color:#111827;display:flex;flex-direction:column;align-items:center;
  justify-content:flex-start;padding:min(12vh,120px) 16px 32px}
.oj-card{width:100%;max-width:420px;background:#fff;border-radius:12px;overflow:hidden;
  box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(17,24,39,.08)}
.oj-top{background:#111827;color:#f9fafb;padding:18px 24px;display:flex;align-items:baseline;
  gap:10px;font-size:20px;font-weight:600}
.oj-logo{color:#60a5fa}
.oj-sub{color:#9ca3af;font-size:13px;font-weight:400}
form{padding:24px;display:flex;flex-direction:column;gap:10px}
h1{font-size:18px;margin:0 0 4px}
label{font-size:14px;font-weight:600}
input[type=password]{font:15px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
  padding:10px 12px;border:1px solid #d1d5db;border-radius:8px;width:100%}
input[type=password]:focus{outline:2px solid #2563eb;outline-offset:1px;border-color:#2563eb}
button{margin-top:6px;padding:10px 14px;font-size:15px;font-weight:600;color:#fff;
  background:#2563eb;border:0;border-radius:8px;cursor:pointer}
button:hover{background:#1d4ed8}
.oj-hint{font-size:13px;color:#4b5563;margin:0;line-height:1.45}
.oj-hint code{background:#f3f4f6;padding:1px 4px;border-radius:4px;white-space:nowrap}
.oj-msg{margin:0;padding:10px 12px;border-radius:8px;font-size:14px;line-height:1.4}
.oj-error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca}
.oj-info{background:#ecfdf5;color:#065f46;border:1px solid #a7f3d0}
"""


def signin_page(*, action: str, xsrf_html: str, error: str = "", info: str = "") -> str:
    """The sign-in page's HTML (``action``: the form's URL, with its ``next``)."""
    message = ""
    if error:
        message = f'<p class="oj-msg oj-error" role="alert" id="oj-error">{xhtml_escape(error)}</p>'
    elif info:
        message = f'<p class="oj-msg oj-info" role="status" id="oj-info">{xhtml_escape(info)}</p>'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<link rel=icon href="data:,">'
        "<title>Sign in · opsjobs</title>"
        f"<style>{SIGNIN_CSS}</style></head><body>"
        '<main class="oj-card">'
        '<div class="oj-top"><span class="oj-logo">◆</span> opsjobs'
        '<span class="oj-sub">Task Management</span></div>'
        f'<form method="post" action="{xhtml_escape(action)}" class="oj-signin">'
        "<h1>Sign in</h1>"
        f"{message}"
        '<label for="api-key">API key</label>'
        '<input type="password" id="api-key" name="password" autocomplete="off" '
        'spellcheck="false" required autofocus placeholder="oj_…">'
        f"{xsrf_html}"
        '<button type="submit">Sign in</button>'
        '<p class="oj-hint">Paste the key you were given (made with '
        "<code>opsjobs keys create</code>). The server keeps only its hash; this browser keeps a "
        "signed session cookie until you sign out.</p>"
        "</form></main></body></html>"
    )


class SignInHandler(LoginFormHandler):
    """``/login`` with the opsjobs page (the key is checked by the identity provider)."""

    def _render(self, message: Any = None) -> None:
        nxt = self.get_argument("next", default=self.base_url)
        error = info = ""
        if self.get_argument("wrong_key", default=""):
            error = WRONG_KEY
        elif self.get_argument("signed_out", default=""):
            info = SIGNED_OUT
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(
            signin_page(
                action=f"{self.base_url}login?next={url_escape(nxt)}",
                xsrf_html=self.xsrf_form_html(),
                error=error,
                info=info,
            )
        )

    @allow_unauthenticated
    def post(self) -> None:
        nxt = self.get_argument("next", default=self.base_url)
        user = self.current_user = self.identity_provider.process_login_form(self)
        if user is None:
            self.log.warning("opsjobs: a sign-in with a wrong key from %s", self.request.remote_ip)
            self.redirect(f"{self.base_url}login?wrong_key=1&next={url_escape(nxt)}", status=303)
            return
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(nxt)


class SignOutHandler(JupyterHandler):
    """``/logout``: clear the login cookie, back to the sign-in page."""

    def _sign_out(self) -> None:
        self.identity_provider.clear_login_cookie(self)
        self.set_header("Cache-Control", "no-store")
        self.redirect(f"{self.base_url}login?signed_out=1")

    @allow_unauthenticated
    def get(self) -> None:
        self._sign_out()

    @allow_unauthenticated
    def post(self) -> None:
        self._sign_out()
