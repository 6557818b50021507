//! Marathon's screen at `/ui/`: an operator's round trip, every step through the page.

use serde_json::Value;

use super::browser::Browser;
use crate::marathon::{Platform, web_app};

/// A script true when exactly `n` task rows say Healthy.
fn healthy_rows(n: usize) -> String {
    format!("return document.querySelectorAll('tr[data-task][data-health=\"Healthy\"]').length === {n};")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_scales_kills_and_destroys_an_app_from_the_page() {
    let platform = Platform::start(1, 3).await;
    let marathon = platform.marathons[platform.leader().await].url();
    let browser = Browser::start().await;

    // `/` sends the browser to the screen, as Marathon does.
    browser.open(&format!("{marathon}/")).await;
    let url = browser.client.current_url().await.expect("current URL");
    assert_eq!(url.path(), "/ui/", "{marathon}/ should redirect to /ui/");
    browser
        .wait_for(
            "the header to show the version",
            "return document.getElementById('version').textContent === '1.11.0';",
        )
        .await;
    let leader = browser.text("#leader").await;
    assert!(marathon.ends_with(&leader), "header leader {leader:?} should be {marathon}");
    browser
        .wait_for(
            "the event stream to connect",
            "return document.getElementById('live').classList.contains('on');",
        )
        .await;
    browser
        .wait_for(
            "the empty list",
            "return document.getElementById('apps').textContent.includes('No applications');",
        )
        .await;
    browser.screenshot("marathon-apps-empty").await;

    // Create from JSON in the form.
    browser.click("#create-open").await;
    let definition: Value = serde_json::from_str(&web_app("/web", 1, "/", "[]")).expect("test app JSON");
    browser.type_into("#create-json", &definition.to_string()).await;
    browser.screenshot("marathon-create-form").await;
    browser.click("#create-submit").await;
    browser
        .wait_for("the app page after creating", "return location.hash === '#/apps/web';")
        .await;
    browser.wait_for("one healthy task", &healthy_rows(1)).await;
    // The creating deployment ends once the task is healthy; scaling before would be refused.
    browser
        .wait_for(
            "status Running after creating",
            "return document.getElementById('app-status')?.textContent === 'Running';",
        )
        .await;

    // Scale to 5 with the button; the tasks appear through the event stream, without a reload.
    browser.type_into("#scale-count", "5").await;
    browser.click("#scale").await;
    browser.wait_for("five healthy tasks on the page", &healthy_rows(5)).await;
    browser
        .wait_for(
            "status Running",
            "return document.getElementById('app-status').textContent === 'Running';",
        )
        .await;
    browser.assert_clean("app page after scaling", &[]).await;
    let hosts = browser
        .eval("return [...document.querySelectorAll('tr[data-task] td:nth-child(2)')].map(td => td.textContent);")
        .await;
    for host in hosts.as_array().expect("host cells") {
        assert!(
            host.as_str().is_some_and(|h| h.starts_with("127.0.0.1:")),
            "task host:port cell {host}"
        );
    }
    browser.screenshot("marathon-app-5-healthy").await;
    browser.resize(390, 844).await;
    browser.screenshot("marathon-app-phone").await;
    let overflow = browser
        .eval("return document.documentElement.scrollWidth > window.innerWidth + 1;")
        .await;
    assert_eq!(overflow, Value::Bool(false), "the app page scrolls sideways on a phone");
    browser.resize(1280, 800).await;

    // Kill one task and scale down: 4 remain and the app wants 4.
    let killed = browser.eval("return document.querySelector('tr[data-task]').dataset.task;").await;
    let killed = killed.as_str().expect("a task id").to_owned();
    browser.click(&format!("tr[data-task=\"{killed}\"] button[data-kill=scale]")).await;
    browser
        .wait_for(
            "4 tasks and 4 desired after kill-and-scale",
            &format!(
                "const rows = [...document.querySelectorAll('tr[data-task]')];
                 return rows.length === 4 && !rows.some(r => r.dataset.task === '{killed}')
                   && document.getElementById('scale-count').value === '4';"
            ),
        )
        .await;
    let app: Value = platform
        .http
        .get(format!("{marathon}/v2/apps/web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(app["app"]["instances"], 4, "kill with scale=true lowers instances: {app}");

    // Roll back to the first version (one instance): the page follows down to one task.
    browser
        .wait_for(
            "the versions listed",
            "return document.querySelectorAll('tr[data-version]').length >= 2;",
        )
        .await;
    browser.screenshot("marathon-app-versions").await;
    browser.click("tr[data-version]:last-child button").await;
    browser
        .wait_for(
            "one task after rolling back to the first version",
            "return document.querySelectorAll('tr[data-task]').length === 1
               && document.getElementById('scale-count').value === '1'
               && document.getElementById('app-status').textContent === 'Running';",
        )
        .await;

    // The list shows the app with its counts.
    browser.click("#nav-apps").await;
    browser
        .wait_for(
            "the list row of /web",
            "const r = document.querySelector('tr[data-app=\"/web\"]');
             return r && r.children[1].textContent === 'Running' && r.children[2].textContent === '1' && r.children[4].textContent === '1';",
        )
        .await;
    browser.screenshot("marathon-apps").await;

    // A deployment that cannot finish (no agent satisfies the constraint) locks its app:
    // scaling it shows Marathon's 409 and offers to force.
    browser.click("#create-open").await;
    let stuck: Value = serde_json::from_str(&web_app("/stuck", 1, "/", r#"[["hostname","CLUSTER","nowhere"]]"#)).unwrap();
    browser.type_into("#create-json", &stuck.to_string()).await;
    browser.click("#create-submit").await;
    browser
        .wait_for(
            "the stuck app deploying",
            "return location.hash === '#/apps/stuck' && document.getElementById('app-status')?.textContent === 'Deploying';",
        )
        .await;
    browser.type_into("#scale-count", "2").await;
    browser.click("#scale").await;
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
    assert!(
        browser.eval("return !document.getElementById('error-force').hidden;").await == Value::Bool(true),
        "409 offers force"
    );
    browser.screenshot("marathon-409").await;

    // The deployments page lists it; rolling it back removes the app that it was creating.
    browser.click("#nav-deployments").await;
    browser
        .wait_for(
            "the stuck deployment listed",
            "return document.getElementById('deployments').textContent.includes('/stuck');",
        )
        .await;
    browser.screenshot("marathon-deployments").await;
    browser.click("tr[data-deployment] button").await;
    browser
        .wait_for(
            "no deployment left",
            "return document.getElementById('deployments').textContent.includes('No deployment');",
        )
        .await;

    // The refusals shown on purpose (409) are the only failed loads so far.
    browser.assert_clean("apps, app, create and deployments pages", &[409]).await;

    // Destroy /web from its page.
    browser.open(&format!("{marathon}/ui/#/apps/web")).await;
    browser
        .wait_for("the app page", "return document.querySelectorAll('tr[data-task]').length === 1;")
        .await;
    browser.click("#destroy").await;
    browser.click("#destroy-yes").await;
    browser
        .wait_for(
            "the list without /web",
            "return location.hash === '#/apps' && document.getElementById('apps').textContent.includes('No applications');",
        )
        .await;
    let apps: Value = platform
        .http
        .get(format!("{marathon}/v2/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        apps["apps"],
        serde_json::json!([]),
        "destroy (and the rollback) leave no app: {apps}"
    );
    browser.assert_clean("apps list after destroy", &[]).await;

    // Readable on a phone.
    browser.resize(390, 844).await;
    browser.screenshot("marathon-apps-phone").await;
    let overflow = browser
        .eval("return document.documentElement.scrollWidth > window.innerWidth + 1;")
        .await;
    assert_eq!(overflow, Value::Bool(false), "the page scrolls sideways on a phone");
}
