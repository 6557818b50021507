//! Marathon's screen at `/ui/`: an operator's round trip, every step through the page.

use serde_json::Value;

use super::screens::{Browser, marathon as screen};
use crate::marathon::{Platform, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_scales_kills_and_destroys_an_app_from_the_page() {
    let platform = Platform::start(1, 3).await;
    let marathon = platform.marathons[platform.leader().await].url();
    let browser = Browser::start("loopback").await;

    let leader = screen::open(&browser, &marathon).await;
    assert!(marathon.ends_with(&leader), "header leader {leader:?} should be {marathon}");
    browser
        .wait_for(
            "the empty list",
            "return document.getElementById('apps').textContent.includes('No applications');",
        )
        .await;
    browser.screenshot("marathon-apps-empty").await;

    let definition: Value = serde_json::from_str(&web_app("/web", 1, "/", "[]")).expect("test app JSON");
    screen::create(&browser, &definition, Some("marathon-create-form")).await;
    browser.wait_for("one healthy task", &screen::healthy_rows(1)).await;
    // The creating deployment ends once the task is healthy; scaling before would be refused.
    screen::await_status(&browser, "Running").await;

    // Scale to 5 with the button; the tasks appear through the event stream, without a reload.
    screen::scale_until_healthy(&browser, 5).await;
    browser.assert_clean("app page after scaling", &[]).await;
    browser.screenshot("marathon-app-5-healthy").await;
    browser.check_phone("marathon-app").await;
    browser.check_keyboard("app page").await;

    // A live refresh redraws the tasks table; the control a keyboard user is on keeps the focus.
    let kept = browser
        .eval(
            "const button = document.querySelector('tr[data-task] button[data-kill=scale]');
             button.focus();
             button.dataset.before = 'yes';
             return refresh().then(() => {
               const now = document.activeElement;
               return now.dataset.before !== 'yes' && now.getAttribute('aria-label') === button.getAttribute('aria-label');
             });",
        )
        .await;
    assert_eq!(kept, Value::Bool(true), "the redrawn Kill and scale button has the focus");

    // Kill one task and scale down: 4 remain and the app wants 4.
    screen::kill_one_and_scale(&browser).await;
    let app: Value = crate::support::get_json(&platform.http, &format!("{marathon}/v2/apps/web")).await;
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

    // A deployment that cannot finish (no agent satisfies the constraint) locks its app.
    let stuck: Value = serde_json::from_str(&web_app("/stuck", 1, "/", r#"[["hostname","CLUSTER","nowhere"]]"#)).unwrap();
    screen::scaling_during_a_deployment_is_refused(&browser, &stuck, "marathon").await;
    // The refusals shown on purpose (409) are the only failed loads so far.
    browser.assert_clean("apps, app, create and deployments pages", &[409]).await;

    // Destroy /web from its page.
    browser.open(&format!("{marathon}/ui/#/apps/web")).await;
    browser
        .wait_for("the app page", "return document.querySelectorAll('tr[data-task]').length === 1;")
        .await;
    screen::destroy(&browser, "/web").await;
    let apps: Value = crate::support::get_json(&platform.http, &format!("{marathon}/v2/apps")).await;
    assert_eq!(
        apps["apps"],
        serde_json::json!([]),
        "destroy (and the rollback) leave no app: {apps}"
    );
    browser.assert_clean("apps list after destroy", &[]).await;
    browser.check_phone("marathon-apps").await;
}

/// The page outlives the Marathon leader: served by a Marathon that does not lead (which proxies
/// the event stream to the leader), it loses the stream when the leader dies, is refused one
/// (503) while no leader is elected, which makes the browser give up on it; the page starts it
/// again, and changes show up live once more, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_marathon_through_the_loss_of_its_leader() {
    let mut platform = Platform::start(2, 1).await;
    let leader = platform.leader().await;
    let follower = 1 - leader;
    let marathon = platform.marathons[follower].url();
    let browser = Browser::start("loopback").await;
    screen::open(&browser, &marathon).await;
    browser
        .wait_for(
            "the empty list",
            "return document.getElementById('apps').textContent.includes('No applications');",
        )
        .await;

    platform.marathons[leader].process.kill();
    browser
        .wait_for(
            "the page to show the stream lost",
            "return document.getElementById('live').classList.contains('off');",
        )
        .await;
    browser
        .wait_for(
            "the stream live again",
            "return document.getElementById('live').classList.contains('on');",
        )
        .await;

    let app = serde_json::json!({ "id": "/elsewhere", "instances": 1, "cpus": 0.1, "mem": 16, "cmd": "exec sleep 1000" });
    let created = platform.http.post(format!("{marathon}/v2/apps")).json(&app).send().await.unwrap();
    assert_eq!(
        created.status(),
        201,
        "creating /elsewhere: {}",
        created.text().await.unwrap_or_default()
    );
    browser
        .wait_for(
            "the app created through the API listed",
            "return document.querySelector('tr[data-app=\"/elsewhere\"]') !== null;",
        )
        .await;
    assert_eq!(
        browser.eval("return Array.isArray(window.__uiErrors);").await,
        Value::Bool(true),
        "the page was reloaded"
    );
    browser.screenshot("marathon-after-leader-loss").await;
}
