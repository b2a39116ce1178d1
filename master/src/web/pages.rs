//! The master's HTML pages (maud: the templates are Rust, checked when the crate compiles,
//! and every interpolated value is HTML-escaped).

use flint_domain::types::*;
use maud::{Markup, html};

use super::WebConfig;
use super::json::main_class;
use flint_webui::*;

/// Where a worker's UI is reached from a browser: straight, or through `/proxy/<id>` when
/// `spark.ui.reverseProxy` is on (worker addresses are often unreachable, e.g. pod IPs).
pub fn worker_base(cfg: &WebConfig, w: &WorkerView) -> Option<String> {
    if cfg.reverse_proxy {
        Some(format!("/proxy/{}", enc(w.id.as_str())))
    } else {
        safe_url(&w.webui_url).map(|u| u.trim_end_matches('/').to_owned())
    }
}

fn state(s: &str) -> Markup {
    html! { span class=(format!("state-{s}")) { (s) } }
}

fn worker_link(cfg: &WebConfig, snap: &ClusterSnapshot, id: &WorkerId) -> Markup {
    match snap.worker(id).and_then(|w| worker_base(cfg, w)) {
        Some(base) => html! { a href=(format!("{base}/")) { (id) } },
        None => html! { (id) },
    }
}

fn kill_form(cfg: &WebConfig, action: &str, kind: &str, id: &str, big: bool) -> Markup {
    if !cfg.kill_enabled {
        return html! {};
    }
    let msg = format!("Are you sure you want to kill {kind} {id} ?");
    html! {
        form.kill.big[big] action=(action) method="post" data-confirm=(msg) {
            input type="hidden" name="id" value=(id);
            input type="hidden" name="terminate" value="true";
            button.kill-link type="submit" data-id=(id) {
                @if big { "Kill this " (kind) } @else { "(kill)" }
            }
        }
    }
}

fn app_rows(
    cfg: &WebConfig,
    apps: &[&AppView],
    now_ms: i64,
    active: bool,
    table_id: &str,
) -> Markup {
    html! {
        table.sortable #(table_id) {
            thead { tr {
                th { "Application ID" } th { "Name" } th { "Cores" } th { "Memory per Executor" }
                th { "Submitted Time" } th { "User" } th { "State" } th { "Duration" }
            } }
            tbody {
                @if apps.is_empty() { tr { td.empty colspan="8" { "none" } } }
                @for a in apps {
                    @let href = format!("/app/?appId={}", enc(a.id.as_str()));
                    tr data-app-id=(a.id) {
                        td {
                            a.app-link href=(href) { (a.id) }
                            @if active { (kill_form(cfg, "/app/kill/", "application", a.id.as_str(), false)) }
                        }
                        td.app-name {
                            @match safe_url(&a.desc.app_ui_url).filter(|_| active) {
                                Some(u) => a href=(u) { (a.desc.name) },
                                None => (a.desc.name),
                            }
                        }
                        (sort_cell(a.cores_granted, html! { (a.cores_granted) }))
                        (sort_cell(a.desc.memory_per_executor_mb, html! { (format_mb(a.desc.memory_per_executor_mb)) }))
                        (sort_cell(a.start_time_ms, html! { (format_time(a.start_time_ms)) }))
                        td { (a.desc.user) }
                        td {
                            (state(a.state.as_str()))
                            @if !a.waiting_reason.is_empty() { span.note { (a.waiting_reason) } }
                        }
                        @let d = a.end_time_ms.unwrap_or(now_ms) - a.start_time_ms;
                        (sort_cell(d, html! { (format_duration(d)) }))
                    }
                }
            }
        }
    }
}

fn driver_rows(
    cfg: &WebConfig,
    snap: &ClusterSnapshot,
    drivers: &[&DriverView],
    now_ms: i64,
    active: bool,
    table_id: &str,
) -> Markup {
    html! {
        table.sortable #(table_id) {
            thead { tr {
                th { "Submission ID" } th { "Submitted Time" } th { "Worker" } th { "State" }
                th { "Cores" } th { "Memory" } th { "Main Class" }
                @if active { th { "Duration" } }
            } }
            tbody {
                @if drivers.is_empty() { tr { td.empty colspan="8" { "none" } } }
                @for d in drivers {
                    tr data-driver-id=(d.id) {
                        td {
                            a href=(format!("/driver/?driverId={}", enc(d.id.as_str()))) { (d.id) }
                            @if active { (kill_form(cfg, "/driver/kill/", "driver", d.id.as_str(), false)) }
                        }
                        (sort_cell(d.start_time_ms, html! { (format_time(d.start_time_ms)) }))
                        td { @match &d.worker_id { Some(w) => (worker_link(cfg, snap, w)), None => "None" } }
                        td { (state(d.state.as_str())) }
                        (sort_cell(d.desc.cores, html! { (d.desc.cores) }))
                        (sort_cell(d.desc.memory_mb, html! { (format_mb(d.desc.memory_mb)) }))
                        td { (main_class(&d.desc)) }
                        @if active {
                            @let dur = now_ms - d.start_time_ms;
                            (sort_cell(dur, html! { (format_duration(dur)) }))
                        }
                    }
                }
            }
        }
    }
}

/// `/`: Spark's master page.
pub fn render_master_page(snap: &ClusterSnapshot, cfg: &WebConfig, now_ms: i64) -> String {
    let mut workers: Vec<&WorkerView> = snap.workers.iter().collect();
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    let alive: Vec<&WorkerView> = snap.alive_workers().collect();
    let cores: u64 = alive.iter().map(|w| u64::from(w.cores)).sum();
    let cores_used: u64 = alive.iter().map(|w| u64::from(w.cores_used)).sum();
    let mem: u64 = alive.iter().map(|w| w.memory_mb).sum();
    let mem_used: u64 = alive.iter().map(|w| w.memory_used_mb).sum();
    let mut active: Vec<&AppView> = snap.active_apps.iter().collect();
    active.sort_by_key(|a| std::cmp::Reverse(a.start_time_ms));
    let mut completed: Vec<&AppView> = snap.completed_apps.iter().collect();
    completed.sort_by_key(|a| std::cmp::Reverse(a.end_time_ms));
    let mut active_drivers: Vec<&DriverView> = snap.active_drivers.iter().collect();
    active_drivers.sort_by_key(|d| std::cmp::Reverse(d.start_time_ms));
    let mut completed_drivers: Vec<&DriverView> = snap.completed_drivers.iter().collect();
    completed_drivers.sort_by_key(|d| std::cmp::Reverse(d.start_time_ms));
    let title = format!("Spark Master at {}", snap.master_url);
    let body = html! {
        ul.summary #summary {
            li { strong { "URL:" } " " span #master-url { (snap.master_url) } }
            @if let Some(rest) = &cfg.rest_url {
                li { strong { "REST URL:" } " " (rest) " " span.muted { "(cluster mode)" } }
            }
            li { strong { "Alive Workers:" } " " span #alive-workers { (alive.len()) } }
            li {
                strong { "Cores in use:" } " " span #cores { (cores) " Total, " (cores_used) " Used" }
                (usage_bar(cores_used, cores))
            }
            li {
                strong { "Memory in use:" } " "
                span #memory { (format_mb(mem)) " Total, " (format_mb(mem_used)) " Used" }
                (usage_bar(mem_used, mem))
            }
            li {
                strong { "Applications:" } " "
                (active.len()) " " a href="#running-apps" { "Running" } ", "
                (completed.len()) " " a href="#completed-apps" { "Completed" }
            }
            li {
                strong { "Drivers:" } " "
                (active_drivers.len()) " " a href="#running-drivers" { "Running" } ", "
                (completed_drivers.len()) " " a href="#completed-drivers" { "Completed" }
            }
            li { strong { "Status:" } " " span #status { (state(snap.status.as_str())) } }
        }
        (section("workers", "Workers", workers.len(), html! {
            table.sortable #workers-table {
                thead { tr {
                    th { "Worker Id" } th { "Address" } th { "State" } th { "Cores" } th { "Memory" }
                    th { "Last Heartbeat" }
                } }
                tbody {
                    @if workers.is_empty() { tr { td.empty colspan="6" { "none" } } }
                    @for w in &workers {
                        tr data-worker-id=(w.id) {
                            td { (worker_link(cfg, snap, &w.id)) }
                            td { (w.host) ":" (w.port) }
                            td { (state(w.state.as_str())) }
                            (sort_cell(w.cores_used, html! {
                                (w.cores) " (" (w.cores_used) " Used)" (usage_bar(u64::from(w.cores_used), u64::from(w.cores)))
                            }))
                            (sort_cell(format!("{}.{}", w.memory_mb, w.memory_used_mb), html! {
                                (format_mb(w.memory_mb)) " (" (format_mb(w.memory_used_mb)) " Used)"
                                (usage_bar(w.memory_used_mb, w.memory_mb))
                            }))
                            @let lag = now_ms - w.last_heartbeat_ms;
                            (sort_cell(lag, html! { (format_duration(lag)) " ago" }))
                        }
                    }
                }
            }
        }))
        (section("running-apps", "Running Applications", active.len(), app_rows(cfg, &active, now_ms, true, "running-apps-table")))
        (section("running-drivers", "Running Drivers", active_drivers.len(), driver_rows(cfg, snap, &active_drivers, now_ms, true, "running-drivers-table")))
        (section("completed-apps", "Completed Applications", completed.len(), app_rows(cfg, &completed, now_ms, false, "completed-apps-table")))
        (section("completed-drivers", "Completed Drivers", completed_drivers.len(), driver_rows(cfg, snap, &completed_drivers, now_ms, false, "completed-drivers-table")))
    };
    layout(&title, html! { (title) }, Some(cfg.refresh_secs), body).into_string()
}

fn log_links(cfg: &WebConfig, snap: &ClusterSnapshot, worker: &WorkerId, query: &str) -> Markup {
    match snap.worker(worker).and_then(|w| worker_base(cfg, w)) {
        Some(base) => html! {
            a.log-link href=(format!("{base}/logPage/?{query}&logType=stdout")) { "stdout" }
            " "
            a.log-link href=(format!("{base}/logPage/?{query}&logType=stderr")) { "stderr" }
        },
        None => html! { span.muted { "worker gone" } },
    }
}

fn executor_table(
    cfg: &WebConfig,
    snap: &ClusterSnapshot,
    app: &AppView,
    execs: &[ExecutorView],
    id: &str,
) -> Markup {
    html! {
        table.sortable #(id) {
            thead { tr {
                th { "Executor ID" } th { "Worker" } th { "Cores" } th { "Memory" } th { "State" }
                th { "Exit Status" } th { "Message" } th { "Logs" }
            } }
            tbody {
                @if execs.is_empty() { tr { td.empty colspan="8" { "none" } } }
                @for e in execs {
                    tr data-executor-id=(e.executor_id) {
                        (sort_cell(e.executor_id, html! { (e.executor_id) }))
                        td { (worker_link(cfg, snap, &e.worker_id)) }
                        (sort_cell(e.cores, html! { (e.cores) }))
                        (sort_cell(e.memory_mb, html! { (format_mb(e.memory_mb)) }))
                        td { (state(e.state.as_str())) }
                        td { @if let Some(x) = e.exit_status { (x) } }
                        td { @if let Some(m) = &e.message { (m) } }
                        td { (log_links(cfg, snap, &e.worker_id,
                            &format!("appId={}&executorId={}", enc(app.id.as_str()), e.executor_id))) }
                    }
                }
            }
        }
    }
}

/// `/app/?appId=`: Spark's application page.
pub fn render_app_page(
    snap: &ClusterSnapshot,
    cfg: &WebConfig,
    app: &AppView,
    now_ms: i64,
) -> String {
    let active = !app.state.is_finished();
    let title = format!("Application: {}", app.desc.name);
    let dur = app.end_time_ms.unwrap_or(now_ms) - app.start_time_ms;
    let body = html! {
        ul.summary #summary {
            li { strong { "ID:" } " " span #app-id { (app.id) } }
            li { strong { "Name:" } " " span #app-name { (app.desc.name) } }
            li { strong { "User:" } " " (app.desc.user) }
            li { strong { "Cores:" } " "
                @match app.desc.max_cores { Some(m) => { (m) " max, " }, None => { "Unlimited, " } }
                (app.cores_granted) " granted" }
            li { strong { "Executor Limit:" } " "
                @if app.executor_limit == u32::MAX { "Unlimited" } @else { (app.executor_limit) } }
            li { strong { "Executor Memory:" } " " (format_mb(app.desc.memory_per_executor_mb)) }
            @if let Some(c) = app.desc.cores_per_executor { li { strong { "Cores per Executor:" } " " (c) } }
            li { strong { "Submit Date:" } " " (flint_domain::ids::java_date(app.start_time_ms)) }
            li { strong { "State:" } " " span #app-state { (state(app.state.as_str())) }
                @if !app.waiting_reason.is_empty() { " " span.muted { "(" (app.waiting_reason) ")" } } }
            li { strong { "Duration:" } " " (format_duration(dur)) }
            @if let Some(t) = app.time_to_running_ms {
                li { strong { "Time to RUNNING:" } " " (format_duration(t as i64)) }
            }
            @if app.retry_count > 0 { li { strong { "Executor retries:" } " " (app.retry_count) } }
            @if !app.driver_url.is_empty() { li { strong { "Driver:" } " " (app.driver_url) } }
            @if let Some(u) = safe_url(&app.desc.app_ui_url).filter(|_| active) {
                li { strong { a href=(u) { "Application Detail UI" } } }
            }
            @if active { li { (kill_form(cfg, "/app/kill/", "application", app.id.as_str(), true)) } }
        }
        (section("executors", "Executor Summary", app.executors.len(),
            executor_table(cfg, snap, app, &app.executors, "executors-table")))
        (section("removed-executors", "Removed Executors", app.removed_executors.len(),
            executor_table(cfg, snap, app, &app.removed_executors, "removed-executors-table")))
    };
    let refresh = active.then_some(cfg.refresh_secs);
    layout(
        &title,
        html! { "Application: " (app.desc.name) },
        refresh,
        body,
    )
    .into_string()
}

/// `/driver/?driverId=`: one driver, with links to its logs on its worker.
pub fn render_driver_page(
    snap: &ClusterSnapshot,
    cfg: &WebConfig,
    d: &DriverView,
    now_ms: i64,
) -> String {
    let active = !d.state.is_finished();
    let title = format!("Driver: {}", d.id);
    let command = d.desc.command.display();
    let body = html! {
        ul.summary #summary {
            li { strong { "ID:" } " " span #driver-id { (d.id) } }
            li { strong { "Name:" } " " (d.desc.name) }
            li { strong { "Main Class:" } " " (main_class(&d.desc)) }
            li { strong { "State:" } " " span #driver-state { (state(d.state.as_str())) } }
            li { strong { "Worker:" } " "
                @match &d.worker_id { Some(w) => (worker_link(cfg, snap, w)), None => "None" }
                @if let Some(hp) = &d.worker_host_port { " (" (hp) ")" } }
            li { strong { "Cores:" } " " (d.desc.cores) }
            li { strong { "Memory:" } " " (format_mb(d.desc.memory_mb)) }
            li { strong { "Supervise:" } " " (d.desc.supervise) }
            li { strong { "Submitted:" } " " (format_time(d.start_time_ms)) }
            @if active { li { strong { "Duration:" } " " (format_duration(now_ms - d.start_time_ms)) } }
            @if !d.desc.app_resource.is_empty() { li { strong { "Resource:" } " " (d.desc.app_resource) } }
            @if let Some(x) = d.exit_status { li { strong { "Exit Status:" } " " (x) } }
            @if let Some(m) = &d.message { li { strong { "Message:" } " " (m) } }
            @if let Some(r) = &d.relaunched_as {
                li { strong { "Relaunched as:" } " "
                    a href=(format!("/driver/?driverId={}", enc(r.as_str()))) { (r) } }
            }
            @if let Some(w) = &d.worker_id {
                li { strong { "Logs:" } " " (log_links(cfg, snap, w, &format!("driverId={}", enc(d.id.as_str())))) }
            }
            @if active { li { (kill_form(cfg, "/driver/kill/", "driver", d.id.as_str(), true)) } }
        }
        h3 { "Command" }
        pre.cmd { (command) }
    };
    let refresh = active.then_some(cfg.refresh_secs);
    layout(&title, html! { (title) }, refresh, body).into_string()
}
