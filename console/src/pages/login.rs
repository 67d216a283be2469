//! The login form, which keeps the access token in a cookie for the pages' actions.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse as _, Redirect, Response};

use super::{page, problem_page};
use crate::Console;

/// `GET /login`: the form that keeps the access token in a cookie for the pages' actions.
pub(crate) async fn form() -> Html<String> {
    page(
        "log in",
        "<h1>Log in</h1><p>The console's actions need its access token (CONSOLE_TOKEN), and so does reading \
         it when it is served on an address other than loopback.</p>\
         <form method=\"post\" action=\"/login\" id=\"login\"><input type=\"password\" name=\"token\" \
         aria-label=\"token\"> <button type=\"submit\">Log in</button></form>",
        None,
    )
}

/// `POST /login`: sets the token cookie when the token is right.
pub(crate) async fn submit(
    State(console): State<Console>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = crate::actions::form_pairs(&body)
        .into_iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
        .unwrap_or_default();
    let mut with_token = headers.clone();
    if let Ok(value) = format!("Bearer {token}").parse() {
        with_token.insert(axum::http::header::AUTHORIZATION, value);
    }
    if let Err(problem) = crate::actions::authorize(&with_token, console.config.token.as_deref()) {
        return problem_page(&problem);
    }
    let cookie = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/",
        crate::actions::COOKIE
    );
    (
        [(axum::http::header::SET_COOKIE, cookie)],
        Redirect::to("/"),
    )
        .into_response()
}
