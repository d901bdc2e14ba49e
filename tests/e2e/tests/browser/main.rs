//! The web UI in a real browser: headless Debian Chromium driven over WebDriver (chromedriver),
//! against the whole platform started by the same launcher as `just up`. Screenshots of the
//! main screens go to `target/ui-screenshots/` as test artifacts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly where it stands"
)]

mod browser;
mod console;
mod presenter;
