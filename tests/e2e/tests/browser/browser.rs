//! A headless Chromium for one test: chromedriver on a free port, a 1280×720 window (the
//! projector), screenshots into `target/ui-screenshots/`, and waits that say what they waited for.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use thirtyfour::prelude::*;

pub struct Browser {
    pub driver: WebDriver,
    chromedriver: Child,
    shots: PathBuf,
}

/// How long a step may take before the test says what it was waiting for.
pub const PATIENCE: Duration = Duration::from_secs(45);

impl Browser {
    pub async fn start() -> Self {
        for bin in ["chromium", "chromedriver"] {
            assert!(
                which(bin).is_some(),
                "{bin} is not installed: sudo apt-get install chromium chromium-driver (scripts/check-prereqs.sh test says so too)"
            );
        }
        let port = stack::postgres::free_port().expect("a free port");
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium").expect("binary");
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1280,720",
        ] {
            caps.add_arg(arg).expect("argument");
        }
        let driver = WebDriver::new(&url, caps)
            .await
            .expect("a Chromium session through chromedriver");
        let shots = e2e::workspace_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        Self {
            driver,
            chromedriver,
            shots,
        }
    }

    /// Saves `target/ui-screenshots/<name>.png`.
    pub async fn shot(&self, name: &str) {
        let path = self.shots.join(format!("{name}.png"));
        self.driver
            .screenshot(&path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> WebElement {
        self.driver
            .query(By::Css(css))
            .wait(PATIENCE, Duration::from_millis(100))
            .first()
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    /// Waits until an element matching `css` contains `text`; returns its whole text.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(elems) = self.driver.find_all(By::Css(css)).await {
                for e in elems {
                    if let Ok(t) = e.text().await
                        && t.contains(text)
                    {
                        return t;
                    }
                }
            }
            if tokio::time::Instant::now() > deadline {
                let body = self.page_text().await;
                panic!("no {css} containing {text:?} within {PATIENCE:?}; the page reads:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn page_text(&self) -> String {
        match self.driver.find(By::Tag("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Signs in through the idp's own form, as a person would.
    pub async fn sign_in(&self, web: &str, email: &str) {
        self.driver
            .goto(format!("{web}/"))
            .await
            .expect("open the UI");
        self.find("input[name=email]")
            .await
            .send_keys(email)
            .await
            .expect("type the email");
        self.find("input[name=password]")
            .await
            .send_keys(e2e::DEMO_PASSWORD)
            .await
            .expect("type the password");
        self.shot("01-sign-in").await;
        self.find("form button, form input[type=submit]")
            .await
            .click()
            .await
            .expect("submit the sign-in form");
        let who = self.find("#who").await.text().await.unwrap_or_default();
        assert_eq!(who, email, "signed in as {email}");
    }

    pub async fn quit(mut self) {
        let _ = self.driver.clone().quit().await;
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}
