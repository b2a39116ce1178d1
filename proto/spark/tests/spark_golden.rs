//! Golden tests of the Spark RPC codec against frames captured from real Spark 3.5.3 and
//! 4.0.5 clusters (`tests/fixtures/spark-*/NN_*.hex`, one whole frame per file), and
//! robustness tests feeding it random, truncated and mutated input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use flint_spark_proto::jser::{self, JserError, ReaderLimits};
use flint_spark_proto::messages::{
    Command, DecodeError, DriverDescription, DriverState, EndpointRef, ExecutorState,
    ResourceRequirement,
};
use flint_spark_proto::{
    DecodedMessage, Frame, FrameDecoder, FrameError, MessageEncoder, RequestHeader, RequestMessage,
    RpcAddress, SparkLine, SparkMessage, decode_message,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Allocation watch: the largest single allocation each thread asked for, so tests can check
// that hostile lengths are refused before anything is allocated for them.

struct Watch;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

unsafe impl GlobalAlloc for Watch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Watch = Watch;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(Cell::get)
}

// ---------------------------------------------------------------------------------------
// Fixtures

const V353: &str = "spark-3.5.3";
const V405: &str = "spark-4.0.5";

fn fixture_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(version)
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// One captured frame, decoded all the way.
struct Captured {
    name: String,
    bytes: Vec<u8>,
    frame: Frame,
    header: Option<RequestHeader>,
    payload: Bytes,
    decoded: DecodedMessage,
}

impl Captured {
    fn message(&self) -> &SparkMessage {
        &self.decoded.message
    }
}

fn decode_captured(name: &str, bytes: Vec<u8>) -> Captured {
    let mut buf = BytesMut::from(&bytes[..]);
    let frame = FrameDecoder::new()
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: incomplete frame"));
    assert!(buf.is_empty(), "{name}: bytes left after the frame");
    let (header, payload) = match &frame {
        Frame::RpcRequest { body, .. } | Frame::OneWayMessage { body } => {
            let msg = RequestMessage::decode(body).unwrap_or_else(|e| panic!("{name}: {e}"));
            (Some(msg.header), msg.payload)
        }
        Frame::RpcResponse { body, .. } => (None, body.clone()),
        Frame::RpcFailure { .. } => panic!("{name}: no failure was captured"),
    };
    let decoded = decode_message(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
    Captured {
        name: name.to_owned(),
        bytes,
        frame,
        header,
        payload,
        decoded,
    }
}

fn all(version: &str) -> Vec<Captured> {
    let mut paths: Vec<_> = std::fs::read_dir(fixture_dir(version))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".hex") && name.as_bytes()[0].is_ascii_digit()
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_owned();
            decode_captured(&name, read_hex(p))
        })
        .collect()
}

fn one(version: &str, prefix: &str) -> Captured {
    all(version)
        .into_iter()
        .find(|c| c.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no fixture {prefix} in {version}"))
}

fn addr(host: &str, port: i32) -> Option<RpcAddress> {
    Some(RpcAddress::new(host, port))
}

fn line_of(version: &str) -> SparkLine {
    if version == V353 {
        SparkLine::V3_5
    } else {
        SparkLine::V4_0
    }
}

/// The message class a fixture's name announces.
fn expected_class(name: &str) -> &'static str {
    let stem = &name[3..];
    match stem {
        s if s.starts_with("CheckExistence") && s.ends_with("_reply") => "java.lang.Boolean",
        s if s.starts_with("ExecutorStateChanged") && s.ends_with("_reply") => "java.lang.Boolean",
        "RequestExecutors_reply" | "KillExecutors_reply" => "java.lang.Boolean",
        "RequestSubmitDriver_reply" => "SubmitDriverResponse",
        "RequestDriverStatus_reply" => "DriverStatusResponse",
        "RequestKillDriver_reply" => "KillDriverResponse",
        s if s.starts_with("CheckExistence") => "CheckExistence",
        s if s.starts_with("ExecutorStateChanged") => "ExecutorStateChanged",
        s if s.starts_with("ExecutorUpdated") => "ExecutorUpdated",
        s if s.starts_with("DriverStateChanged") => "DriverStateChanged",
        "DecommissionWorker" => "DecommissionWorker$",
        s => Box::leak(s.to_owned().into_boxed_str()),
    }
}

// ---------------------------------------------------------------------------------------
// Every captured frame decodes

fn every_frame_decodes(version: &str, expected_count: usize) {
    let captured = all(version);
    assert_eq!(captured.len(), expected_count, "{version}");
    for c in &captured {
        let class = c.message().class_name();
        assert!(
            !matches!(c.message(), SparkMessage::Other { .. }),
            "{}: undecoded {class}",
            c.name
        );
        assert!(
            class.ends_with(expected_class(&c.name)),
            "{}: decoded as {class}",
            c.name
        );
        // the frame encoder and the header encoder reproduce the capture
        assert_eq!(c.frame.to_bytes().unwrap(), c.bytes, "{}", c.name);
        if let Frame::RpcRequest { body, .. } | Frame::OneWayMessage { body } = &c.frame {
            let msg = RequestMessage {
                header: c.header.clone().unwrap(),
                payload: c.payload.clone(),
            };
            assert_eq!(&msg.encode().unwrap()[..], &body[..], "{}", c.name);
        }
        // the Spark line is read off the stream (a bare Boolean says nothing)
        let detected = c.decoded.spark_line();
        if matches!(c.message(), SparkMessage::Boolean(_)) {
            assert_eq!(detected, None, "{}", c.name);
        } else {
            assert_eq!(detected, Some(line_of(version)), "{}", c.name);
        }
        check_key_fields(version, c);
    }
}

#[test]
fn every_spark_3_5_3_frame_decodes() {
    every_frame_decodes(V353, 37);
}

#[test]
fn every_spark_4_0_5_frame_decodes() {
    every_frame_decodes(V405, 22);
}

/// The values of the captures' `.txt` descriptions.
fn check_key_fields(version: &str, c: &Captured) {
    let v3 = version == V353;
    let (master_port, worker_port, driver_port) = if v3 {
        (7077, 7078, 7079)
    } else {
        (27130, 27132, 27134)
    };
    let worker_id = if v3 {
        "worker-20261122040251-127.0.0.1-7078"
    } else {
        "worker-20261122045227-127.0.0.1-27132"
    };
    let app_id = if v3 {
        "app-20261122040305-0000"
    } else {
        "app-20261122045254-0000"
    };
    let master_ref = EndpointRef::new("Master", addr("127.0.0.1", master_port));
    let worker_ref = EndpointRef::new("Worker", addr("127.0.0.1", worker_port));
    let number = &c.name[..2];
    let request_id = c.frame.request_id();
    let header = c.header.as_ref();
    match (number, c.message()) {
        ("01", SparkMessage::CheckExistence { name }) => {
            assert_eq!(name, "Master");
            let h = header.unwrap();
            assert_eq!(h.sender, addr("127.0.0.1", worker_port));
            assert_eq!(h.receiver, addr("127.0.0.1", master_port));
            assert_eq!(h.endpoint, "endpoint-verifier");
            let id = if v3 {
                6925153780256518274
            } else {
                7400820540145345524
            };
            assert_eq!(request_id, Some(id));
        }
        ("14", SparkMessage::CheckExistence { name }) => {
            assert_eq!(name, "CoarseGrainedScheduler");
            assert_eq!(header.unwrap().sender, None);
            assert_eq!(header.unwrap().receiver, addr("127.0.0.1", driver_port));
        }
        ("16", SparkMessage::CheckExistence { name }) => {
            assert_eq!(name, "Worker");
            assert_eq!(header.unwrap().sender, None);
        }
        ("02" | "12" | "15" | "17" | "22" | "33" | "35" | "37", SparkMessage::Boolean(b)) => {
            assert!(b);
            assert!(matches!(c.frame, Frame::RpcResponse { .. }));
        }
        ("03", SparkMessage::RegisterWorker(w)) => {
            assert_eq!(w.id, worker_id);
            assert_eq!((w.host.as_str(), w.port), ("127.0.0.1", worker_port));
            assert_eq!((w.cores, w.memory), (2, 2048));
            assert_eq!(w.worker, worker_ref);
            assert_eq!(w.master_address, addr("127.0.0.1", master_port));
            assert!(w.resources.is_empty());
            let ui = if v3 {
                "http://127.0.0.1:8081"
            } else {
                "http://127.0.0.1:27133"
            };
            assert_eq!(w.worker_web_ui_url, ui);
        }
        (
            "04",
            SparkMessage::RegisteredWorker {
                master,
                master_web_ui_url,
                master_address,
                duplicate,
            },
        ) => {
            assert_eq!(master, &master_ref);
            assert_eq!(master_address, &addr("127.0.0.1", master_port));
            assert!(!duplicate);
            let ui = if v3 {
                "http://localhost:8080"
            } else {
                "http://localhost:27131"
            };
            assert_eq!(master_web_ui_url, ui);
        }
        (
            "05",
            SparkMessage::WorkerLatestState {
                id,
                executors,
                driver_ids,
            },
        ) => {
            assert_eq!(id, worker_id);
            assert!(executors.is_empty() && driver_ids.is_empty());
        }
        (
            "06",
            SparkMessage::Heartbeat {
                worker_id: id,
                worker,
            },
        ) => {
            assert_eq!(id, worker_id);
            assert_eq!(worker, &worker_ref);
        }
        ("07", SparkMessage::RegisterApplication { app, driver }) => {
            assert_eq!(
                driver,
                &EndpointRef::new("AppClient", addr("127.0.0.1", driver_port))
            );
            assert_eq!(app.name, if v3 { "JavaPi" } else { "Spark Pi" });
            assert_eq!(app.user, "root");
            assert_eq!(app.max_cores, Some(2));
            assert_eq!(app.executor_memory_mb(), Some(512));
            assert_eq!(app.executor_cores(), None);
            assert_eq!(app.initial_executor_limit, None);
            assert_eq!(app.event_log_dir, None);
            assert_eq!(app.event_log_codec, None);
            let ui = if v3 {
                "http://127.0.0.1:4050"
            } else {
                "http://127.0.0.1:27135"
            };
            assert_eq!(app.app_ui_url, ui);
            assert_eq!(app.default_profile.id, 0);
            assert_eq!(app.default_profile.executor_resources["offHeap"].amount, 0);
            assert_eq!(app.default_profile.task_resources["cpus"].amount, 1.0);
            check_executor_command(&app.command, v3, driver_port);
        }
        ("08", SparkMessage::RegisteredApplication { app_id: id, master }) => {
            assert_eq!(id, app_id);
            assert_eq!(master, &master_ref);
            assert_eq!(
                master.url(),
                format!("spark://Master@127.0.0.1:{master_port}")
            );
            let h = header.unwrap();
            assert_eq!(h.endpoint, "AppClient");
            assert_eq!(h.receiver, addr("127.0.0.1", driver_port));
        }
        (
            "09",
            SparkMessage::LaunchExecutor {
                master_url,
                app_id: id,
                exec_id,
                rp_id,
                app,
                cores,
                memory,
                resources,
            },
        ) => {
            assert_eq!(master_url, &format!("spark://127.0.0.1:{master_port}"));
            assert_eq!(id, app_id);
            assert_eq!((*exec_id, *rp_id, *cores, *memory), (0, 0, 2, 512));
            assert!(resources.is_empty());
            assert_eq!(app.max_cores, Some(2));
            check_executor_command(&app.command, v3, driver_port);
        }
        (
            "10",
            SparkMessage::ExecutorAdded {
                id,
                worker_id: w,
                host_port,
                cores,
                memory,
            },
        ) => {
            assert_eq!((*id, *cores, *memory), (0, 2, 512));
            assert_eq!(w, worker_id);
            assert_eq!(host_port, &format!("127.0.0.1:{worker_port}"));
        }
        (
            "11" | "21" | "32",
            SparkMessage::ExecutorStateChanged {
                app_id: id,
                exec_id,
                state,
                message,
                exit_status,
            },
        ) => {
            assert_eq!(*exec_id, 0);
            match (number, v3) {
                ("11", _) => {
                    assert_eq!(id, app_id);
                    assert_eq!(
                        (*state, message, *exit_status),
                        (ExecutorState::Running, &None, None)
                    );
                }
                ("21", true) => {
                    assert_eq!(
                        (*state, message, *exit_status),
                        (ExecutorState::Killed, &None, Some(0))
                    );
                }
                ("21", false) => {
                    assert_eq!((*state, *exit_status), (ExecutorState::Killed, Some(143)));
                    assert_eq!(
                        message.as_deref(),
                        Some("Runner thread for executor app-20261122045254-0000/0 interrupted")
                    );
                }
                _ => {
                    assert_eq!(id, "app-20261122040456-0001");
                    assert_eq!((*state, *exit_status), (ExecutorState::Exited, Some(0)));
                    assert_eq!(message.as_deref(), Some("Command exited with code 0"));
                }
            }
        }
        (
            "13",
            SparkMessage::ExecutorUpdated {
                id,
                state,
                message,
                exit_status,
                worker_host,
            },
        ) => {
            assert_eq!((*id, *state), (0, ExecutorState::Running));
            assert_eq!((message, exit_status, worker_host), (&None, &None, &None));
        }
        ("18", SparkMessage::UnregisterApplication { app_id: id }) => assert_eq!(id, app_id),
        (
            "19",
            SparkMessage::KillExecutor {
                master_url,
                app_id: id,
                exec_id,
            },
        ) => {
            assert_eq!(master_url, &format!("spark://127.0.0.1:{master_port}"));
            assert_eq!((id.as_str(), *exec_id), (app_id, 0));
        }
        ("20", SparkMessage::ApplicationFinished { id }) => assert_eq!(id, app_id),
        (
            "24",
            SparkMessage::SubmitDriverResponse {
                master,
                success,
                driver_id,
                message,
            },
        ) => {
            assert_eq!(request_id, Some(7257554783901049680));
            assert!(success);
            assert_eq!(master, &master_ref);
            assert_eq!(driver_id.as_deref(), Some("driver-20261122040352-0000"));
            assert_eq!(
                message,
                "Driver successfully submitted as driver-20261122040352-0000"
            );
        }
        ("26", SparkMessage::RequestDriverStatus { driver_id }) => {
            assert_eq!(driver_id, "driver-20261122040352-0000");
            assert_eq!(header.unwrap().sender, addr("127.0.0.1", 42551));
        }
        (
            "27",
            SparkMessage::DriverStatusResponse {
                found,
                state,
                worker_id: w,
                worker_host_port,
                exception,
            },
        ) => {
            assert!(found);
            assert_eq!(*state, Some(DriverState::Running));
            assert_eq!(w.as_deref(), Some(worker_id));
            assert_eq!(worker_host_port.as_deref(), Some("127.0.0.1:7078"));
            assert_eq!(exception, &None);
        }
        ("28", SparkMessage::RequestKillDriver { driver_id }) => {
            assert_eq!(driver_id, "driver-20261122040352-0000");
        }
        (
            "29",
            SparkMessage::KillDriverResponse {
                master,
                driver_id,
                success,
                message,
            },
        ) => {
            assert_eq!(master, &master_ref);
            assert_eq!(driver_id, "driver-20261122040352-0000");
            assert!(success);
            assert_eq!(
                message,
                "Kill request for driver-20261122040352-0000 submitted"
            );
        }
        ("30", SparkMessage::KillDriver { driver_id }) => {
            assert_eq!(driver_id, "driver-20261122040352-0000");
        }
        (
            "31",
            SparkMessage::DriverStateChanged {
                driver_id,
                state,
                exception,
            },
        ) => {
            assert_eq!(driver_id, "driver-20261122040352-0000");
            assert_eq!(*state, DriverState::Killed);
            assert_eq!(exception, &None);
        }
        ("34", SparkMessage::RequestExecutors { app_id, totals }) => {
            assert_eq!(app_id, "app-20261122040517-0002");
            assert_eq!(totals.len(), 1);
            let (profile, total) = &totals[0];
            assert_eq!((profile.id, *total), (0, 0));
            assert_eq!(profile.executor_cores(), Some(1));
            assert_eq!(profile.executor_memory_mb(), Some(512));
            assert_eq!(profile.executor_resources["offHeap"].amount, 0);
        }
        (
            "36",
            SparkMessage::KillExecutors {
                app_id,
                executor_ids,
            },
        ) => {
            assert_eq!(app_id, "app-20261122040517-0002");
            assert_eq!(executor_ids, &["0"]);
        }
        ("38", SparkMessage::ApplicationRemoved { message }) => assert_eq!(message, "KILLED"),
        ("39", SparkMessage::DecommissionWorker) => {}
        (_, other) => panic!("{version} {}: unexpected {other:?}", c.name),
    }
}

fn check_executor_command(command: &Command, v3: bool, driver_port: i32) {
    assert_eq!(
        command.main_class,
        "org.apache.spark.executor.CoarseGrainedExecutorBackend"
    );
    let driver_url = format!("spark://CoarseGrainedScheduler@127.0.0.1:{driver_port}");
    let expected_args = [
        "--driver-url",
        &driver_url,
        "--executor-id",
        "{{EXECUTOR_ID}}",
        "--hostname",
        "{{HOSTNAME}}",
        "--cores",
        "{{CORES}}",
        "--app-id",
        "{{APP_ID}}",
        "--worker-url",
        "{{WORKER_URL}}",
        "--resourceProfileId",
        "{{RESOURCE_PROFILE_ID}}",
    ];
    assert_eq!(command.arguments, expected_args);
    let mut env = BTreeMap::new();
    env.insert("SPARK_USER".to_owned(), "root".to_owned());
    env.insert("OMP_NUM_THREADS".to_owned(), "1".to_owned());
    if v3 {
        env.insert("SPARK_EXECUTOR_MEMORY".to_owned(), "512m".to_owned());
    }
    assert_eq!(command.environment, env);
    assert_eq!(command.java_opts.len(), if v3 { 20 } else { 23 });
    let first = if v3 {
        "-Dspark.driver.port=7079"
    } else {
        "-Dspark.ui.port=27135"
    };
    assert_eq!(command.java_opts[0], first);
    assert!(
        command
            .java_opts
            .contains(&"--add-opens=java.base/java.lang=ALL-UNNAMED".to_owned())
    );
    assert!(command.class_path_entries.is_empty());
    assert!(command.library_path_entries.is_empty());
}

// ---------------------------------------------------------------------------------------
// Byte-for-byte encoding

/// `RegisteredApplication` and the verifier's `Boolean(true)` reply, built from scratch with
/// the built-in descriptor tables, are the captured frames.
fn registered_application_and_boolean_are_byte_exact(
    version: &str,
    master_port: i32,
    driver_port: i32,
) {
    let line = line_of(version);
    let captured = one(version, "08_");
    let SparkMessage::RegisteredApplication { app_id, .. } = captured.message() else {
        panic!("08 is {:?}", captured.message())
    };
    let encoder = MessageEncoder::new(line);
    let payload = encoder
        .encode(&SparkMessage::RegisteredApplication {
            app_id: app_id.clone(),
            master: EndpointRef::new("Master", addr("127.0.0.1", master_port)),
        })
        .unwrap();
    let body = RequestMessage {
        header: RequestHeader {
            sender: addr("127.0.0.1", master_port),
            receiver: addr("127.0.0.1", driver_port),
            endpoint: "AppClient".into(),
        },
        payload: payload.into(),
    }
    .encode()
    .unwrap();
    let frame = Frame::OneWayMessage { body: body.into() };
    assert_eq!(frame.to_bytes().unwrap(), captured.bytes, "{version} 08");

    // the same after learning the driver's descriptors from its RegisterApplication
    let mut learning = MessageEncoder::new(line);
    learning.learn(&one(version, "07_").decoded.stream);
    assert_eq!(
        learning.encode(captured.message()).unwrap(),
        &captured.payload[..],
        "{version} 08 with learned descriptors"
    );

    for reply in ["02_", "12_"] {
        let captured = one(version, reply);
        let request_id = captured.frame.request_id().unwrap();
        let body = encoder.encode(&SparkMessage::Boolean(true)).unwrap();
        let frame = Frame::RpcResponse {
            request_id,
            body: body.into(),
        };
        assert_eq!(
            frame.to_bytes().unwrap(),
            captured.bytes,
            "{version} {reply}"
        );
    }
}

#[test]
fn spark_3_5_3_registered_application_and_boolean_are_byte_exact() {
    registered_application_and_boolean_are_byte_exact(V353, 7077, 7079);
}

#[test]
fn spark_4_0_5_registered_application_and_boolean_are_byte_exact() {
    registered_application_and_boolean_are_byte_exact(V405, 27130, 27134);
}

/// Every captured message the encoder supports re-encodes from its decoded form: byte for
/// byte where Spark's own encoding is what the encoder writes (all but the 3.5 messages
/// carrying an enumeration, where Spark inlines the whole enumeration module and the encoder
/// writes the minimal module Spark accepts), and to an equal message everywhere. Of the
/// captured classes only RegisterWorker, WorkerLatestState, RegisterApplication,
/// LaunchExecutor and RequestExecutors have no encoder.
fn re_encode_captured(version: &str, byte_exact: &[&str], different: &[&str]) {
    let encoder = MessageEncoder::new(line_of(version));
    let mut exact = Vec::new();
    let mut equal = Vec::new();
    for c in all(version) {
        let Ok(payload) = encoder.encode(c.message()) else {
            continue;
        };
        let number = c.name[..2].to_owned();
        if payload == c.payload[..] {
            exact.push(number);
        } else {
            let again = decode_message(&payload).unwrap();
            assert_eq!(&again.message, c.message(), "{version} {}", c.name);
            equal.push(number);
        }
    }
    assert_eq!(exact, byte_exact, "{version}: byte-exact re-encodings");
    assert_eq!(equal, different, "{version}: equal but not byte-exact");
}

#[test]
fn spark_3_5_3_captures_re_encode() {
    re_encode_captured(
        V353,
        &[
            "01", "02", "04", "06", "08", "10", "12", "14", "15", "16", "17", "18", "19", "20",
            "22", "24", "26", "28", "29", "30", "33", "35", "37", "38", "39",
        ],
        // the enumeration messages, and KillExecutors (Spark sent an ArrayBuffer, the
        // encoder writes a List)
        &["11", "13", "21", "27", "31", "32", "36"],
    );
}

#[test]
fn spark_4_0_5_captures_re_encode() {
    re_encode_captured(
        V405,
        &[
            "01", "02", "04", "06", "08", "10", "11", "12", "13", "14", "15", "16", "17", "18",
            "19", "20", "21", "22",
        ],
        &[],
    );
}

/// The 3.5 encoder writes `ExecutorUpdated` with the minimal enumeration module, exactly as
/// the Java program that produced the synthetic stream (which Spark 3.5.3 reads back as the
/// canonical `ExecutorState.RUNNING`).
#[test]
fn spark_3_5_minimal_enumeration_matches_java() {
    let expected = read_hex(
        &fixture_dir(V353).join("synthetic_ExecutorUpdated_RUNNING_minimal_enum.javaser.hex"),
    );
    let message = SparkMessage::ExecutorUpdated {
        id: 0,
        state: ExecutorState::Running,
        message: None,
        exit_status: None,
        worker_host: None,
    };
    let bytes = MessageEncoder::new(SparkLine::V3_5)
        .encode(&message)
        .unwrap();
    assert_eq!(bytes, expected);
    assert_eq!(decode_message(&bytes).unwrap().message, message);
}

// ---------------------------------------------------------------------------------------
// Messages without a capture, through the encoder and back

fn submission(env_entries: usize) -> DriverDescription {
    let environment = (0..env_entries)
        .map(|i| (format!("VAR_{i}"), format!("value {i} ünïcödé")))
        .collect();
    DriverDescription {
        jar_url: "file:/opt/app/pi.jar".into(),
        mem: 1024,
        cores: 1,
        supervise: true,
        command: Command {
            main_class: "org.apache.spark.deploy.worker.DriverWrapper".into(),
            arguments: vec![
                "{{WORKER_URL}}".into(),
                "{{USER_JAR}}".into(),
                "org.apache.spark.examples.SparkPi".into(),
            ],
            environment,
            class_path_entries: vec![],
            library_path_entries: vec!["/opt/native".into()],
            java_opts: vec!["-Dspark.master=spark://127.0.0.1:7077".into()],
        },
        resource_reqs: vec![ResourceRequirement {
            resource_name: "gpu".into(),
            amount: 1,
            num_parts: 1,
        }],
    }
}

#[test]
fn legacy_submission_messages_round_trip_for_both_lines() {
    for line in [SparkLine::V3_5, SparkLine::V4_0] {
        let encoder = MessageEncoder::new(line);
        let master = EndpointRef::new("Master", addr("10.0.0.1", 7077));
        let messages = [
            SparkMessage::RequestSubmitDriver {
                driver: submission(45),
            },
            SparkMessage::RequestSubmitDriver {
                driver: submission(0),
            },
            SparkMessage::LaunchDriver {
                driver_id: "driver-1".into(),
                driver: submission(3),
                resources: BTreeMap::new(),
            },
            SparkMessage::SubmitDriverResponse {
                master: master.clone(),
                success: false,
                driver_id: None,
                message: "Can only accept driver submissions in ALIVE state.".into(),
            },
            SparkMessage::DriverStatusResponse {
                found: true,
                state: Some(DriverState::Finished),
                worker_id: Some("worker-1".into()),
                worker_host_port: Some("10.0.0.2:7078".into()),
                exception: None,
            },
            SparkMessage::DriverStatusResponse {
                found: false,
                state: None,
                worker_id: None,
                worker_host_port: None,
                exception: None,
            },
            SparkMessage::KillDriverResponse {
                master: master.clone(),
                driver_id: "driver-1".into(),
                success: false,
                message: "Driver driver-1 has already finished or does not exist".into(),
            },
            SparkMessage::WorkerRemoved {
                id: "worker-1".into(),
                host: "10.0.0.2".into(),
                message: "Not receiving heartbeat for 60 seconds".into(),
            },
            SparkMessage::ExecutorUpdated {
                id: 3,
                state: ExecutorState::Exited,
                message: Some("Command exited with code 0".into()),
                exit_status: Some(0),
                worker_host: Some("10.0.0.2".into()),
            },
            SparkMessage::ApplicationRemoved {
                message: "KILLED".into(),
            },
            SparkMessage::KillExecutors {
                app_id: "app-1".into(),
                executor_ids: vec!["1".into(), "2".into()],
            },
            SparkMessage::DriverStateChanged {
                driver_id: "driver-1".into(),
                state: DriverState::Error,
                exception: None,
            },
            SparkMessage::DecommissionWorker,
            SparkMessage::RegisteredApplication {
                app_id: "app-1".into(),
                master: EndpointRef::new("Master", None),
            },
        ];
        for message in messages {
            let bytes = encoder
                .encode(&message)
                .unwrap_or_else(|e| panic!("{line} {message:?}: {e}"));
            let decoded =
                decode_message(&bytes).unwrap_or_else(|e| panic!("{line} {message:?}: {e}"));
            assert_eq!(decoded.message, message, "{line}");
            assert_eq!(decoded.spark_line(), Some(line), "{line} {message:?}");
        }
    }
}

/// A worker's state report with executors and drivers, and a driver that failed with an
/// exception: shapes the captures do not have, written by hand in Spark 3.5's encoding.
#[test]
fn worker_reports_without_captures_decode() {
    use flint_spark_proto::jser::{ClassDescriptor, FieldDescriptor, Node, ObjectNode};
    let mut set = SparkLine::V3_5.descriptors();
    set.insert(ClassDescriptor {
        name: "java.lang.Throwable".into(),
        suid: -3042686055658047285,
        flags: 0x03,
        fields: vec![FieldDescriptor {
            type_code: b'L',
            name: "detailMessage".into(),
            signature: Some("Ljava/lang/String;".into()),
        }],
        super_class: None,
    });
    for (name, suid, sup) in [
        (
            "java.lang.Exception",
            -3387516993124229948,
            "java.lang.Throwable",
        ),
        (
            "java.io.IOException",
            7818375828146090155,
            "java.lang.Exception",
        ),
    ] {
        set.insert(ClassDescriptor {
            name: name.into(),
            suid,
            flags: 0x02,
            fields: vec![],
            super_class: Some(sup.into()),
        });
    }
    let list_end = Node::shared(
        "end",
        Node::Object(ObjectNode::new(
            "scala.collection.immutable.ListSerializeEnd$",
        )),
    );
    let list = |mut items: Vec<Node>| {
        items.push(list_end.clone());
        let proxy = "scala.collection.immutable.List$SerializationProxy";
        Node::Object(ObjectNode::new(proxy).annotation(proxy, items))
    };
    let module = Node::shared(
        "state",
        Node::Object(ObjectNode::new("org.apache.spark.deploy.ExecutorState$")),
    );
    let running = Node::Object(
        ObjectNode::new("scala.Enumeration$Val")
            .field("$outer", module.clone())
            .field("scala$Enumeration$$outerEnum", module)
            .field("i", Node::Int(1)),
    );
    let executor = Node::Object(
        ObjectNode::new("org.apache.spark.deploy.ExecutorDescription")
            .field("appId", Node::string("app-1"))
            .field("execId", Node::Int(4))
            .field("rpId", Node::Int(0))
            .field("cores", Node::Int(2))
            .field("memoryMb", Node::Int(1024))
            .field("state", running),
    );
    let report = Node::Object(
        ObjectNode::new("org.apache.spark.deploy.DeployMessages$WorkerLatestState")
            .field("id", Node::string("worker-1"))
            .field("executors", list(vec![executor]))
            .field("driverIds", list(vec![Node::string("driver-1")])),
    );
    let bytes = jser::write_stream(&set, &report).unwrap();
    assert_eq!(
        decode_message(&bytes).unwrap().message,
        SparkMessage::WorkerLatestState {
            id: "worker-1".into(),
            executors: vec![flint_spark_proto::messages::ExecutorDescription {
                app_id: "app-1".into(),
                exec_id: 4,
                rp_id: 0,
                cores: 2,
                memory_mb: 1024,
                state: ExecutorState::Running,
            }],
            driver_ids: vec!["driver-1".into()],
        }
    );

    let driver_module = Node::shared(
        "driver-state",
        Node::Object(ObjectNode::new(
            "org.apache.spark.deploy.master.DriverState$",
        )),
    );
    let failed = Node::Object(
        ObjectNode::new("scala.Enumeration$Val")
            .field("$outer", driver_module.clone())
            .field("scala$Enumeration$$outerEnum", driver_module)
            .field("i", Node::Int(6)),
    );
    let exception = Node::Object(
        ObjectNode::new("java.io.IOException").field("detailMessage", Node::string("disk full")),
    );
    let changed = Node::Object(
        ObjectNode::new("org.apache.spark.deploy.DeployMessages$DriverStateChanged")
            .field("driverId", Node::string("driver-1"))
            .field(
                "exception",
                Node::Object(ObjectNode::new("scala.Some").field("value", exception)),
            )
            .field("state", failed),
    );
    let bytes = jser::write_stream(&set, &changed).unwrap();
    assert_eq!(
        decode_message(&bytes).unwrap().message,
        SparkMessage::DriverStateChanged {
            driver_id: "driver-1".into(),
            state: DriverState::Failed,
            exception: Some(flint_spark_proto::messages::JavaThrowable {
                class_name: "java.io.IOException".into(),
                message: Some("disk full".into()),
            }),
        }
    );
}

#[test]
fn messages_a_master_never_sends_are_refused_by_the_encoder() {
    let captured = one(V353, "07_");
    let err = MessageEncoder::new(SparkLine::V3_5)
        .encode(captured.message())
        .unwrap_err();
    assert!(matches!(err, jser::EncodeError::Unsupported(_)), "{err}");
}

// ---------------------------------------------------------------------------------------
// Spark line detection and learned descriptors

#[test]
fn check_existence_tells_the_spark_line() {
    for (version, line) in [(V353, SparkLine::V3_5), (V405, SparkLine::V4_0)] {
        for prefix in ["01_", "14_", "16_"] {
            let c = one(version, prefix);
            let desc = c
                .decoded
                .stream
                .class_descs()
                .find(|d| d.name.ends_with("CheckExistence"))
                .unwrap();
            assert_eq!(desc.suid, line.check_existence_suid());
            assert_eq!(SparkLine::from_check_existence_suid(desc.suid), Some(line));
            assert_eq!(c.decoded.spark_line(), Some(line));
        }
    }
    assert_eq!(SparkLine::V3_5.check_existence_suid(), 7789290765573734431);
    assert_eq!(SparkLine::V4_0.check_existence_suid(), 5378738997755484868);
}

fn replace(haystack: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + from.len() <= haystack.len() {
        if &haystack[i..i + from.len()] == from {
            haystack[i..i + from.len()].copy_from_slice(to);
            count += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    count
}

/// A 4.3.0 driver's `RpcEndpointRef` has another UID than 4.0.5's: the encoder answers with
/// the one the driver sent.
#[test]
fn learned_descriptors_win_over_the_built_in_table() {
    let old = 3898290494905438830i64.to_be_bytes();
    let new = (-6062078299962416402i64).to_be_bytes();
    let register = one(V405, "07_");
    let mut payload = register.payload.to_vec();
    assert_eq!(replace(&mut payload, &old, &new), 1);
    let decoded = decode_message(&payload).unwrap();
    assert_eq!(decoded.message, *register.message());

    let reply = SparkMessage::RegisteredApplication {
        app_id: "app-1".into(),
        master: EndpointRef::new("Master", addr("127.0.0.1", 27130)),
    };
    let mut encoder = MessageEncoder::new(SparkLine::V4_0);
    let before = encoder.encode(&reply).unwrap();
    assert!(before.windows(8).any(|w| w == old));
    assert!(encoder.learn(&decoded.stream) >= 1);
    let after = encoder.encode(&reply).unwrap();
    assert!(after.windows(8).any(|w| w == new));
    assert!(!after.windows(8).any(|w| w == old));
    assert_eq!(decode_message(&after).unwrap().message, reply);
}

// ---------------------------------------------------------------------------------------
// Robustness

fn all_frames() -> Vec<Captured> {
    let mut frames = all(V353);
    frames.extend(all(V405));
    frames
}

/// Decodes a frame stream all the way down, as a server would; must never panic.
fn decode_everything(bytes: &[u8]) {
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let payload = match frame {
            Frame::RpcRequest { body, .. } | Frame::OneWayMessage { body } => {
                match RequestMessage::decode(&body) {
                    Ok(msg) => msg.payload,
                    Err(_) => continue,
                }
            }
            Frame::RpcResponse { body, .. } => body,
            Frame::RpcFailure { .. } => continue,
        };
        let _ = decode_message(&payload);
    }
}

#[test]
fn every_truncation_of_every_frame_is_incomplete_or_an_error() {
    let decoder = FrameDecoder::new();
    for c in all_frames() {
        for n in 0..c.bytes.len() {
            let mut buf = BytesMut::from(&c.bytes[..n]);
            assert_eq!(decoder.decode(&mut buf), Ok(None), "{} cut at {n}", c.name);
            assert_eq!(buf.len(), n);
        }
        // a truncated payload is an error, never a panic
        for n in (0..c.payload.len()).step_by(7) {
            assert!(
                decode_message(&c.payload[..n]).is_err(),
                "{} payload cut at {n}",
                c.name
            );
        }
    }
}

#[test]
fn every_single_byte_mutation_of_small_frames_is_handled() {
    for c in all_frames().iter().filter(|c| c.bytes.len() <= 1600) {
        for i in 0..c.bytes.len() {
            for value in [c.bytes[i] ^ 0xff, c.bytes[i].wrapping_add(1), 0x71] {
                let mut mutated = c.bytes.clone();
                mutated[i] = value;
                let largest = largest_allocation(|| decode_everything(&mutated));
                assert!(
                    largest <= 256 * 1024,
                    "{} byte {i} := {value:#x}: {largest} B",
                    c.name
                );
            }
        }
    }
}

#[test]
fn hostile_lengths_are_refused_without_allocating() {
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        // Object[] of 2^31-1 elements
        (
            "object array",
            [
                &[0xac, 0xed, 0x00, 0x05, 0x75, 0x72, 0x00, 0x13][..],
                b"[Ljava.lang.Object;",
                &[
                    0x90, 0xce, 0x58, 0x9f, 0x10, 0x73, 0x29, 0x6c, 0x02, 0x00, 0x00, 0x78, 0x70,
                ],
                &[0x7f, 0xff, 0xff, 0xff, 0x70],
            ]
            .concat(),
        ),
        // int[] of 2^31-1 elements, in 27 bytes
        (
            "int array",
            [
                &[0xac, 0xed, 0x00, 0x05, 0x75, 0x72, 0x00, 0x02, b'[', b'I'][..],
                &[
                    0x4d, 0xba, 0x60, 0x26, 0x76, 0xea, 0xb2, 0xa5, 0x02, 0x00, 0x00, 0x78, 0x70,
                ],
                &[0x7f, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ),
        // long string of 2^62 bytes
        (
            "long string",
            vec![
                0xac, 0xed, 0x00, 0x05, 0x7c, 0x40, 0, 0, 0, 0, 0, 0, 0, b'x',
            ],
        ),
        // block data of 2^31-1 bytes
        (
            "block data",
            vec![0xac, 0xed, 0x00, 0x05, 0x7a, 0x7f, 0xff, 0xff, 0xff, 0x00],
        ),
        // proxy class with 2^31-1 interfaces
        (
            "proxy interfaces",
            vec![
                0xac, 0xed, 0x00, 0x05, 0x73, 0x7d, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, b'x',
            ],
        ),
        // class with 65535 fields
        (
            "fields",
            vec![
                0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x01, b'A', 0, 0, 0, 0, 0, 0, 0, 1, 0x02,
                0xff, 0xff, b'I',
            ],
        ),
    ];
    for (what, bytes) in hostile {
        assert!(bytes.len() <= 48, "{what}: {} bytes", bytes.len());
        let mut result = None;
        let largest = largest_allocation(|| result = Some(jser::read_stream(&bytes)));
        let err = result.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                JserError::LengthExceedsInput { .. } | JserError::UnexpectedEof { .. }
            ),
            "{what}: {err}"
        );
        assert!(largest < 4096, "{what}: allocated {largest} bytes");
    }
    // a frame announcing 2^62 bytes, and one announcing just under the limit
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::from(&[0x40, 0, 0, 0, 0, 0, 0, 0, 9][..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    let mut buf = BytesMut::from(&[0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0][..]);
    let largest = largest_allocation(|| assert_eq!(decoder.decode(&mut buf), Ok(None)));
    assert!(
        largest <= 128 * 1024,
        "reserved {largest} bytes for an announced frame"
    );
}

#[test]
fn limits_are_configurable() {
    let register = one(V405, "07_");
    let tight = ReaderLimits {
        max_handles: 50,
        ..ReaderLimits::default()
    };
    assert!(matches!(
        flint_spark_proto::messages::decode_message_with(&register.payload, &tight),
        Err(DecodeError::Stream(JserError::LimitExceeded { .. }))
    ));
    let shallow = ReaderLimits {
        max_depth: 5,
        ..ReaderLimits::default()
    };
    assert!(matches!(
        jser::read_stream_with(&register.payload, &shallow),
        Err(JserError::TooDeep { limit: 5 })
    ));
    let small = FrameDecoder::with_max_frame_size(1000);
    let mut buf = BytesMut::from(&register.bytes[..]);
    assert!(matches!(
        small.decode(&mut buf),
        Err(FrameError::TooLarge {
            length: 5101,
            max: 1000
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
        let _ = jser::read_stream(&bytes);
        let mut stream = vec![0xac, 0xed, 0x00, 0x05];
        stream.extend_from_slice(&bytes);
        let largest = largest_allocation(|| { let _ = decode_message(&stream); });
        prop_assert!(largest <= 64 * 1024, "{} bytes", largest);
    }

    #[test]
    fn random_object_streams_never_panic(
        body in proptest::collection::vec(
            prop_oneof![
                (0x70u8..=0x7e).boxed(),
                any::<u8>().boxed(),
                Just(0u8).boxed(),
            ],
            0..256,
        )
    ) {
        let mut stream = vec![0xac, 0xed, 0x00, 0x05];
        stream.extend_from_slice(&body);
        let _ = decode_message(&stream);
    }

    #[test]
    fn mutations_of_large_frames_never_panic(
        index in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames = large_frames();
        let frame = index.get(frames);
        let mut bytes = frame.clone();
        let at = position.index(bytes.len());
        bytes[at] = value;
        let largest = largest_allocation(|| decode_everything(&bytes));
        prop_assert!(largest <= 256 * 1024, "{} bytes", largest);
        let end = cut.index(bytes.len());
        decode_everything(&bytes[..end]);
    }

    #[test]
    fn a_connection_split_anywhere_yields_the_same_frames(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..12),
    ) {
        let frames: Vec<Vec<u8>> = all(V353).into_iter().take(12).map(|c| c.bytes).collect();
        let wire: Vec<u8> = frames.concat();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len())).collect();
        points.push(wire.len());
        points.sort_unstable();
        let decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut start = 0;
        for p in points {
            buf.extend_from_slice(&wire[start..p]);
            start = p;
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(frame.to_bytes().unwrap().to_vec());
            }
        }
        prop_assert_eq!(out, frames);
    }
}

fn large_frames() -> &'static [Vec<u8>] {
    static FRAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FRAMES.get_or_init(|| {
        all_frames()
            .into_iter()
            .filter(|c| c.bytes.len() > 1600)
            .map(|c| c.bytes)
            .collect()
    })
}
