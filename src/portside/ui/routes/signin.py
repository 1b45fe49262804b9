"""Signing in and out. Sign-in posts to the management API's /sessions and hands the
session cookie it sets to the browser; the form has its own CSRF token (a cookie and a
field that must match) because there is no session yet."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portside.ui import web
from portside.ui.api import ApiError


async def sign_in_page(request: Request) -> Response:
    who = await web.visitor(request)
    target = web.safe_next(request.query_params.get("next"))
    if who.signed_in:
        return web.redirect(target)
    return await _form(request, target)


async def _form(
    request: Request, target: str, *, error: str | None = None, username: str = ""
) -> Response:
    token = web.new_login_token()
    response = await web.render(
        request,
        "signin.html",
        status=401 if error else 200,
        next=target,
        login_token=token,
        error=error,
        username=username,
    )
    response.set_cookie(
        web.LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        path="/login",
        secure=web.context(request).settings.public_url.startswith("https://"),
    )
    return response


async def sign_in(request: Request) -> Response:
    form = await request.form()
    target = web.safe_next(web.text(form, "next"))
    sent = web.text(form, web.CSRF_FIELD)
    expected = request.cookies.get(web.LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return await _form(request, target, error="The sign-in form expired; try again.")
    username = web.text(form, "username")
    password = form.get("password")
    if not username or not isinstance(password, str) or not password:
        return await _form(
            request, target, error="Enter your username and password.", username=username
        )
    try:
        answer = await web.api(request).post(
            "/sessions", {"username": username, "password": password}
        )
    except ApiError as error:
        message = "Wrong username or password." if error.status == 401 else error.explanation
        return await _form(request, target, error=message, username=username)
    response = web.redirect(target)
    for cookie in answer.cookies:
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    response.delete_cookie(web.LOGIN_COOKIE, path="/login")
    return response


async def sign_out(request: Request) -> Response:
    if not (await web.visitor(request)).signed_in:
        return web.redirect("/projects")
    await web.checked_form(request)
    answer = await web.api(request).delete("/sessions/current")
    response = web.redirect("/projects", "You are signed out.")
    for cookie in answer.cookies:
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response


routes = [
    Route("/login", sign_in_page, methods=["GET"]),
    Route("/login", sign_in, methods=["POST"]),
    Route("/logout", sign_out, methods=["POST"]),
]
