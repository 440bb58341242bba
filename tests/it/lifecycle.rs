//! The built binary as an operator runs it: logs its addresses, exits with
//! the documented codes; and the demo runs standalone. Shutdown: `shutdown.rs`.

use std::process::{Child, Command, Stdio};

use std::time::Duration;

use http::Response;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_otel-sidecar");

pub fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

/// Sends a signal (`-TERM`, `-INT`) with kill(1): the tests forbid unsafe code.
pub fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_exit(child: &mut Child) -> i32 {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("binary did not exit within 10 s");
}

#[tokio::test]
async fn port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    let config = format!(
        "[listener]\naddress = \"{}\"\n[admin]\naddress = \"127.0.0.1:0\"\n[tracing]\nenabled = false\n",
        taken.local_addr().unwrap()
    );
    std::fs::write(&path, config).unwrap();
    let out = Command::new(BIN)
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("(listener)"),
        "{stderr}"
    );
}

#[test]
fn demo_runs_with_nothing_else() {
    let out = Command::new(BIN)
        .arg("demo")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "POST /api/generate",
        "POST /api/chat",
        "POST /v1/chat/completions",
        "request completed",
        "demo-request-42",
        "SERVER POST /api/generate",
        "CLIENT text_completion llama3.2:1b",
        "gen_ai_client_token_usage_sum",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    let access_lines = stdout
        .lines()
        .filter(|l| l.contains("\"request completed\""))
        .count();
    assert_eq!(access_lines, 5, "{stdout}");
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("otel-sidecar "));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["run", "check", "demo", "--config"] {
        assert!(help.contains(word), "{help}");
    }
}

#[tokio::test]
async fn healthcheck_command_probes_the_admin_listener() {
    let upstream = TestUpstream::start(|_req| async { Response::new(full("ok")) }).await;
    let sidecar = crate::support::start_sidecar(crate::support::test_config(&upstream.url())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    let healthcheck = |admin: String| {
        std::fs::write(
            &path,
            format!("[listener]\naddress = \"127.0.0.1:0\"\n[admin]\naddress = \"{admin}\"\n"),
        )
        .unwrap();
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["healthcheck", "--config", path.to_str().unwrap()])
                .output()
                .unwrap()
        })
    };
    let out = healthcheck(sidecar.admin_addr().to_string()).await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The unspecified address is probed on loopback, as in a container.
    let out = healthcheck(format!("0.0.0.0:{}", sidecar.admin_addr().port()))
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = sidecar.admin_addr().port();
    sidecar.stop().await;
    let out = healthcheck(format!("127.0.0.1:{port}")).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}

/// `Max open files` of /proc/PID/limits: (soft, hard).
fn open_files_limits(pid: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut values = line["Max open files".len()..].split_whitespace();
    (
        values.next().unwrap().to_owned(),
        values.next().unwrap().to_owned(),
    )
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit_and_logged() {
    use std::io::{BufRead, BufReader};
    let (_, hard) = open_files_limits("self");
    assert_ne!(
        hard, "512",
        "the test needs a hard limit above the soft one it sets"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(
        &path,
        "[listener]\naddress = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [upstream]\nurl = \"http://127.0.0.1:9\"\n[tracing]\nenabled = false\n",
    )
    .unwrap();
    // A soft limit of 512, as a container runtime might leave it.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 512 && exec \"$0\" run --config \"$1\"",
            BIN,
            path.to_str().unwrap(),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logged = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        if json["message"] == "open-file limit" {
            logged = Some(json["open_files_limit"].clone());
        }
        if json["message"] == "otel-sidecar started" {
            break;
        }
    }
    let (soft, now_hard) = open_files_limits(&child.id().to_string());
    sigterm(&child);
    assert_eq!(wait_exit(&mut child), 0);
    assert_eq!(
        (soft.as_str(), now_hard.as_str()),
        (hard.as_str(), hard.as_str())
    );
    let logged = logged.expect("the limit is logged before the start line");
    assert_eq!(
        logged.to_string(),
        hard,
        "the log names the limit it runs with"
    );
}

#[test]
fn demo_keeps_the_slow_exchange_and_drops_the_fast_one() {
    let out = Command::new(BIN)
        .arg("demo")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"))
    };
    assert!(
        line("fast ").ends_with("dropped, nothing exported"),
        "{stdout}"
    );
    assert!(
        line("slow ").ends_with("kept, 2 spans exported"),
        "{stdout}"
    );
    for series in [
        r#"sidecar_traces_sampled_total{decision="kept",reason="slow"} 1"#,
        r#"sidecar_traces_sampled_total{decision="dropped",reason="ratio"} 1"#,
    ] {
        assert!(stdout.lines().any(|l| l == series), "{series}:\n{stdout}");
    }
}
