//! Presenter mode and the session controls in a browser: S1 step by step with the presenter's
//! narration, the phone page on its own, and "Kill session" bringing up the banner.

use thirtyfour::prelude::*;

use crate::browser::Browser;

#[tokio::test]
async fn presenter_mode_steps_through_s1_and_kill_session_shows_the_banner() {
    let p = e2e::Platform::start().await;
    let web = p.stack.urls.web.clone();
    let b = Browser::start().await;
    b.sign_in(&web, "alice@example.com").await;

    b.driver.goto(format!("{web}/present")).await.unwrap();
    b.find("#present-s1").await.click().await.unwrap();
    // The first pause is the plan, narrated from web/narration/s1.toml.
    let narration = std::fs::read_to_string(e2e::workspace_root().join("web/narration/s1.toml"))
        .expect("s1 narration");
    let pause = b.wait_text("article.pause", "Next hop").await;
    assert!(pause.contains("plan"), "{pause}");
    assert!(
        narration.contains(pause.lines().nth(1).unwrap_or("-")),
        "the narration comes from the file: {pause}"
    );
    b.shot("08-presenter-plan").await;
    let mut hops = vec![];
    let deadline = tokio::time::Instant::now() + crate::browser::PATIENCE * 2;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish; hops seen: {hops:?}"
        );
        if b.driver.find(By::Id("run-finished")).await.is_ok() {
            break;
        }
        if let Ok(approve) = b.driver.find(By::Css("#approvals button.approve")).await {
            b.shot("09-presenter-approval").await;
            approve.click().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            continue;
        }
        if let Ok(pause) = b.driver.find(By::Css("article.pause")).await
            && let Ok(Some(hop)) = pause.attr("data-hop").await
            && let Ok(id) = pause.id().await
            && hops
                .last()
                .map(|(_, i): &(String, Option<String>)| i != &id)
                .unwrap_or(true)
        {
            if hop == "exchange" && !hops.iter().any(|(h, _)| h == "exchange") {
                let artifact = pause.find(By::Css("pre.artifact")).await.unwrap();
                let text = artifact.text().await.unwrap();
                assert!(text.contains("transfer_funds"), "{text}");
                b.shot("10-presenter-exchange").await;
            }
            hops.push((hop, id));
            if let Ok(next) = b.driver.find(By::Id("next")).await {
                let _ = next.click().await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let names: Vec<&str> = hops.iter().map(|(h, _)| h.as_str()).collect();
    assert!(
        names.starts_with(&["plan", "exchange", "dispatch"]),
        "{names:?}"
    );
    b.wait_text("#chat li.msg.done", "Transferred $1,000.00")
        .await;

    // The phone on its own page.
    b.driver.goto(format!("{web}/phone")).await.unwrap();
    b.wait_text("#approvals", "No approval waiting").await;
    b.shot("11-phone-page").await;

    // Kill session: the banner, from the transmitter's session-revoked SET.
    b.driver.goto(format!("{web}/")).await.unwrap();
    b.find("#kill-session").await;
    b.driver
        .execute("window.confirm = function () { return true; };", vec![])
        .await
        .unwrap();
    b.find("#kill-session").await.click().await.unwrap();
    b.wait_text("#banner", "Session revoked").await;
    b.shot("12-session-revoked").await;
    let sid: String = p
        .query(
            "SELECT id FROM idp.sessions WHERE revoked_at IS NOT NULL ORDER BY revoked_at DESC LIMIT 1",
            &[],
        )
        .await[0]
        .get(0);
    assert!(sid.starts_with("ses_"), "{sid}");
    b.quit().await;
}
