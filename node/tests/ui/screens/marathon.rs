//! Marathon's screen at `/ui/`: the steps of an operator's round trip, each done through the
//! page (buttons and forms, never the API behind the test's back) and checked on the page.

use serde_json::Value;

use super::Browser;

/// A script true when exactly `n` task rows say Healthy.
pub fn healthy_rows(n: usize) -> String {
    format!("return document.querySelectorAll('tr[data-task][data-health=\"Healthy\"]').length === {n};")
}

/// Opens `<marathon>/`, which must send the browser to `/ui/` as Marathon does; waits for the
/// header (this Marathon's version) and for the event stream to connect. Returns the leader
/// the header names.
pub async fn open(browser: &Browser, marathon: &str) -> String {
    browser.open(&format!("{marathon}/")).await;
    let url = browser.client.current_url().await.expect("current URL");
    assert_eq!(url.path(), "/ui/", "{marathon}/ should redirect to /ui/");
    browser
        .wait_for(
            "the header to show the version",
            "return document.getElementById('version').textContent === '1.11.0';",
        )
        .await;
    browser
        .wait_for(
            "the event stream to connect",
            "return document.getElementById('live').classList.contains('on');",
        )
        .await;
    browser
        .wait_for(
            "the leader in the header",
            "const l = document.getElementById('leader').textContent; return l !== '…' && l !== 'none' && l;",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Creates the app `definition` from the JSON form of the apps list (which must be shown) and
/// waits for the app's page.
pub async fn create(browser: &Browser, definition: &Value, screenshot: Option<&str>) {
    let id = definition["id"].as_str().expect("the definition has an id");
    browser.click("#create-open").await;
    browser.type_into("#create-json", &definition.to_string()).await;
    if let Some(name) = screenshot {
        browser.screenshot(name).await;
    }
    browser.click("#create-submit").await;
    browser
        .wait_for(
            &format!("the page of {id} after creating it"),
            &format!("return location.hash === '#/apps{id}';"),
        )
        .await;
}

/// Waits until the app page's status reads `status`.
pub async fn await_status(browser: &Browser, status: &str) {
    browser
        .wait_for(
            &format!("status {status}"),
            &format!("return document.getElementById('app-status')?.textContent === '{status}';"),
        )
        .await;
}

/// Scales the app of the current page to `n` with the button.
pub async fn scale(browser: &Browser, n: u32) {
    browser.type_into("#scale-count", &n.to_string()).await;
    browser.click("#scale").await;
}

/// Scales to `n` and waits for `n` healthy tasks and status Running. The page is never
/// reloaded (the caller's `assert_clean` fails if it was): the tasks arrive through the event
/// stream. Then checks that every task shows its `host:port`.
pub async fn scale_until_healthy(browser: &Browser, n: u32) {
    scale(browser, n).await;
    browser
        .wait_for(&format!("{n} healthy tasks on the page"), &healthy_rows(n as usize))
        .await;
    await_status(browser, "Running").await;
    let hosts = browser
        .eval("return [...document.querySelectorAll('tr[data-task] td:nth-child(2)')].map(td => td.textContent);")
        .await;
    for host in hosts.as_array().expect("host cells") {
        let host = host.as_str().unwrap_or_default();
        let port = host.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        assert!(matches!(port, Some(Ok(_))), "task host:port cell {host:?}");
    }
}

/// Kills the first task with "Kill and scale"; waits until it is gone, one task fewer is left
/// and the instances field follows. Returns the killed task's id.
pub async fn kill_one_and_scale(browser: &Browser) -> String {
    let before = browser.eval("return document.querySelectorAll('tr[data-task]').length;").await;
    let before = before.as_u64().expect("a row count");
    let killed = browser.eval("return document.querySelector('tr[data-task]').dataset.task;").await;
    let killed = killed.as_str().expect("a task id").to_owned();
    browser.click(&format!("tr[data-task=\"{killed}\"] button[data-kill=scale]")).await;
    let remaining = before - 1;
    browser
        .wait_for(
            &format!("{remaining} tasks and {remaining} desired after kill-and-scale"),
            &format!(
                "const rows = [...document.querySelectorAll('tr[data-task]')];
                 return rows.length === {remaining} && !rows.some(r => r.dataset.task === '{killed}')
                   && document.getElementById('scale-count').value === '{remaining}';"
            ),
        )
        .await;
    killed
}

/// Creates `stuck` (an app whose deployment cannot finish) and scales it: the page must show
/// Marathon's 409 naming the deployment, and offer to force. Then rolls the deployment back
/// from the deployments page, which removes the app it was creating. Screenshots
/// `<prefix>-409` and `<prefix>-deployments` (and its phone view); the deployments page's
/// controls are checked for the keyboard.
pub async fn scaling_during_a_deployment_is_refused(browser: &Browser, stuck: &Value, prefix: &str) {
    let id = stuck["id"].as_str().expect("the definition has an id");
    browser.click("#nav-apps").await;
    create(browser, stuck, None).await;
    await_status(browser, "Deploying").await;
    scale(browser, 2).await;
    let error = browser
        .wait_for(
            "the 409 shown",
            "const e = document.getElementById('error'); return !e.hidden && e.textContent;",
        )
        .await;
    let error = error.as_str().unwrap_or_default();
    assert!(error.contains("409"), "the refusal names its status: {error}");
    assert!(
        error.to_lowercase().contains("deployment"),
        "Marathon's message says a deployment holds the app: {error}"
    );
    assert_eq!(
        browser.eval("return !document.getElementById('error-force').hidden;").await,
        Value::Bool(true),
        "a 409 offers to force"
    );
    browser.screenshot(&format!("{prefix}-409")).await;

    browser.click("#nav-deployments").await;
    browser
        .wait_for(
            "the stuck deployment, alone, listed",
            &format!(
                "const rows = document.querySelectorAll('tr[data-deployment]');
                 return rows.length === 1 && rows[0].textContent.includes('{id}');"
            ),
        )
        .await;
    browser.screenshot(&format!("{prefix}-deployments")).await;
    browser.check_phone(&format!("{prefix}-deployments")).await;
    browser.check_keyboard("the deployments page").await;
    browser.click("tr[data-deployment] button").await;
    browser
        .wait_for(
            "no deployment left",
            "return document.getElementById('deployments').textContent.includes('No deployment');",
        )
        .await;
}

/// Destroys the app whose page is shown, confirming; waits for the apps list without it.
pub async fn destroy(browser: &Browser, id: &str) {
    browser.click("#destroy").await;
    browser.click("#destroy-yes").await;
    browser
        .wait_for(
            &format!("the apps list without {id}"),
            &format!(
                "return location.hash === '#/apps' && document.querySelector('#apps table, #apps p.muted') !== null
                   && !document.querySelector('tr[data-app=\"{id}\"]');"
            ),
        )
        .await;
}
