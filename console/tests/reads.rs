//! Reading the console on an address other than loopback needs its token (`reads_need_token`): an API call
//! without it is a 401 problem, a page sends the browser to `/login`, whose cookie then lets it read, and a
//! page's form gets the 401 page with a link to log in. On loopback (the other tests) reading is open.

mod common;

use common::{TOKEN, console_reading};
use testkit::TestDb;

#[tokio::test]
async fn reading_needs_the_token_when_the_console_is_served_beyond_loopback() {
    let db = TestDb::new().await;
    let (base, stop) = console_reading(&db, true).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    for token in [None, Some("not-the-token")] {
        let refused = get("/api/overview", token).await.unwrap();
        assert_eq!(refused.status(), 401, "{token:?}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = refused.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("reading the console needs the console's access token"),
            "{problem}"
        );
        let page = get("/sagas/attention", token).await.unwrap();
        assert_eq!(page.status(), 303, "{token:?}");
        assert_eq!(page.headers()["location"], "/login");
        // A page's form is refused where it was sent, with the way to log in.
        let mut form = client.post(format!("{base}/sagas/{}/retry", uuid::Uuid::now_v7()));
        if let Some(token) = token {
            form = form.bearer_auth(token);
        }
        let refused = form.send().await.unwrap();
        assert_eq!(refused.status(), 401, "{token:?}");
        let html = refused.text().await.unwrap();
        assert!(
            html.contains("reading the console needs the console&#39;s access token")
                && html.contains("<a id=\"login-link\" href=\"/login\">"),
            "{html}"
        );
    }
    assert_eq!(
        get("/api/overview", Some(TOKEN)).await.unwrap().status(),
        200
    );
    assert_eq!(get("/login", None).await.unwrap().status(), 200);

    // Logged in, the cookie lets a browser read the pages.
    let login = client
        .post(format!("{base}/login"))
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{base}/sagas/attention"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Sagas needing attention")
    );
    stop.cancel();
}
