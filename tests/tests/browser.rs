//! A real browser against a real cluster: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by tests/run.sh) driven over WebDriver (fantoccini). A master, two
//! workers and a running application: the overview shows 2 alive workers and the app row,
//! the app link opens its page, the worker log page shows the executor's output, and the
//! kill button (with its confirmation) kills the app. Screenshots of the master page, the
//! app page and the log page are saved under `target/tmp/browser/`; with
//! `FLINT_UPDATE_SCREENSHOTS=1` the master page also goes to `docs/master-ui.png`.
//!
//! This test fails (it does not skip) when the browser cannot run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use flint_domain::types::*;
use flint_tests::*;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

const XSS: &str = "<script>alert(1)</script>";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    for n in names {
        for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Headless Chromium in a fresh profile, through chromedriver (on an ephemeral port) and
/// fantoccini. The session is ended on drop, then chromedriver is killed.
struct Browser {
    /// `None` once closed.
    client: Option<Client>,
    _driver: Proc,
}

impl Browser {
    async fn start(dir: &Path) -> Browser {
        let chromium = find_binary(&["chromium", "chromium-browser"])
            .expect("chromium is not installed: tests/run.sh installs it (apt-get install chromium chromium-driver)");
        let driver = find_binary(&["chromedriver"])
            .expect("chromedriver is not installed: tests/run.sh installs it (apt-get install chromium-driver)");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let mut cmd = Command::new(driver);
        cmd.arg(format!("--port={port}"));
        let proc = Proc::spawn("chromedriver", cmd, dir.join("chromedriver.log"));
        let base = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver ready", Duration::from_secs(30), || async {
            let r = try_http(
                "GET",
                &format!("{base}/status"),
                &[],
                b"",
                Duration::from_secs(5),
            )
            .await
            .ok()?;
            let v: Value = serde_json::from_slice(&r.body).ok()?;
            (v["value"]["ready"] == true).then_some(())
        })
        .await;
        let profile = dir.join("chrome-profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&base)
            .await
            .unwrap_or_else(|e| panic!("chromium did not start: {e}"));
        Browser {
            client: Some(client),
            _driver: proc,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver goto {url}: {e}"));
    }

    async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn source(&self) -> String {
        self.client().source().await.unwrap_or_default()
    }

    async fn try_find(&self, css: &str) -> Option<Element> {
        self.client().find(Locator::Css(css)).await.ok()
    }

    /// Waits (with a deadline) until `css` matches; returns the element.
    async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                let src = self.source().await;
                panic!("no element matches {css} on {}:\n{src}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("WebDriver find all {css}: {e}"))
            .len()
    }

    async fn text(&self, el: &Element) -> String {
        el.text().await.unwrap_or_default()
    }

    /// Waits until the element matching `css` has text satisfying `pred`.
    async fn wait_text(&self, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.try_find(css).await {
                let t = self.text(&e).await;
                if pred(&t) {
                    return t;
                }
            }
            if Instant::now() > deadline {
                let text = match self.client().find(Locator::Css(css)).await {
                    Ok(e) => format!("{:?}", e.text().await),
                    Err(e) => format!("{e:?}"),
                };
                let src = self.source().await;
                panic!(
                    "{what}: {css} never matched on {} ({text}):\n{src}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, el: &Element) {
        el.click()
            .await
            .unwrap_or_else(|e| panic!("WebDriver click: {e}"));
    }

    async fn selected(&self, el: &Element) -> bool {
        el.is_selected()
            .await
            .unwrap_or_else(|e| panic!("WebDriver selected: {e}"))
    }

    async fn screenshot(&self, path: &Path) {
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("WebDriver screenshot: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    async fn alert_text(&self) -> String {
        self.client()
            .get_alert_text()
            .await
            .unwrap_or_else(|e| panic!("WebDriver alert text: {e}"))
    }

    async fn accept_alert(&self) {
        self.client()
            .accept_alert()
            .await
            .unwrap_or_else(|e| panic!("WebDriver accept alert: {e}"));
    }

    /// Ends the browser session.
    async fn close(&mut self) {
        if let Some(c) = self.client.take() {
            c.close()
                .await
                .unwrap_or_else(|e| panic!("WebDriver close: {e}"));
        }
    }
}

/// Ends the browser session even when the test fails, so no Chromium outlives it
/// (chromedriver itself is killed right after, with its `Proc`).
impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
                })
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_watches_and_operates_the_cluster() {
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("screenshot dir");

    let mut c = Cluster::master(&[]);
    for _ in 0..2 {
        c.add_worker(WorkerSpec {
            cores: 2,
            memory: "2g",
        });
    }
    let ui = c.webui_url();
    let mut client = c.client().await;
    let mut desc = app(
        XSS,
        Some(1),
        512,
        Some(2),
        shell(
            "for i in 1 2 3; do echo \"hello-from-executor-{{EXECUTOR_ID}} line $i\"; done; exec sleep 1000",
        ),
    );
    desc.user = "flint".into();
    let mut session = client
        .register_application(desc, "")
        .await
        .expect("register");
    let id = session.app_id().clone();
    c.wait_state("2 executors RUNNING", |s| {
        s.app(&id).is_some_and(|a| {
            a.executors.len() == 2
                && a.executors
                    .iter()
                    .all(|e| e.state == ExecutorState::Running)
        })
    })
    .await;
    // A finished application and a driver make the screenshot look like a real cluster.
    let done = client
        .register_application(
            app(
                "nightly-etl",
                Some(1),
                256,
                Some(1),
                shell("exec sleep 1000"),
            ),
            "",
        )
        .await
        .expect("second app");
    let done_id = done.app_id().clone();
    done.unregister().await.expect("unregister");

    let mut wd = Browser::start(c.dir.path()).await;

    // The overview: 2 alive workers and the application's row.
    wd.goto(&format!("{ui}/")).await;
    wd.wait_text("#alive-workers", "2 alive workers", |t| t == "2")
        .await;
    let refresh = wd.find("#auto-refresh").await;
    if wd.selected(&refresh).await {
        wd.click(&refresh).await; // off, so the page holds still while we click around
    }
    assert!(
        !wd.selected(&refresh).await,
        "auto-refresh can be turned off"
    );
    let row = format!("tr[data-app-id=\"{id}\"]");
    let name = wd
        .wait_text(&format!("{row} td.app-name"), "app row", |t| !t.is_empty())
        .await;
    assert_eq!(name, XSS, "the name shows as text");
    assert_eq!(
        wd.count(&format!(
            "#completed-apps-table tr[data-app-id=\"{done_id}\"]"
        ))
        .await,
        1
    );
    assert_eq!(wd.count("#workers-table tbody tr").await, 2);
    wd.screenshot(&shots.join("master.png")).await;
    if std::env::var("FLINT_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/master-ui.png");
        std::fs::copy(shots.join("master.png"), &docs).expect("copy to docs/");
        eprintln!("updated {}", docs.display());
    }

    // The app link opens the application page.
    let link = wd.find(&format!("{row} a.app-link")).await;
    assert_eq!(wd.text(&link).await, id.as_str());
    wd.click(&link).await;
    wd.wait_text("#app-id", "application page", |t| t == id.as_str())
        .await;
    assert!(wd.url().await.contains(&format!("/app/?appId={id}")));
    assert_eq!(wd.text(&wd.find("#app-name").await).await, XSS);
    assert_eq!(
        wd.count("#executors-table tbody tr[data-executor-id]")
            .await,
        2
    );
    wd.screenshot(&shots.join("app.png")).await;

    // Its first stdout link: the worker's log page with the executor's output.
    let log_link = wd.find("#executors-table a.log-link").await;
    wd.click(&log_link).await;
    let text = wd
        .wait_text("#log-text", "executor output", |t| {
            t.contains("hello-from-executor-")
        })
        .await;
    assert!(text.contains("line 3"), "{text}");
    assert!(wd.url().await.contains("/logPage/?appId="));
    wd.screenshot(&shots.join("log.png")).await;

    // Back on the overview, the kill button asks first, then kills.
    wd.goto(&format!("{ui}/")).await;
    let kill = wd.find(&format!("{row} button.kill-link")).await;
    wd.click(&kill).await;
    let prompt = wd.alert_text().await;
    assert_eq!(
        prompt,
        format!("Are you sure you want to kill application {id} ?")
    );
    wd.accept_alert().await;
    let state = wd
        .wait_text(
            &format!("#completed-apps-table tr[data-app-id=\"{id}\"] span[class^=\"state-\"]"),
            "app KILLED on the overview",
            |t| t == "KILLED",
        )
        .await;
    assert_eq!(state, "KILLED");
    let s = c.state().await;
    assert_eq!(s.app(&id).map(|a| a.state), Some(ApplicationState::Killed));
    // The driver was told.
    let removed = loop {
        match tokio::time::timeout(Duration::from_secs(10), session.next_event()).await {
            Ok(Ok(Some(AppEvent::ApplicationRemoved { state, .. }))) => break Some(state),
            Ok(Ok(Some(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(removed, Some(ApplicationState::Killed));
    wd.close().await;
}
