//! The container image, checked without a container engine: hadolint lints
//! the Dockerfiles, the Dockerfile's instructions and `.dockerignore` are
//! read for what the image must be, and the image's config runs in the real
//! binary. Tools: hadolint (`tests/requirements.txt`); `scripts/test`
//! provides it.

use std::collections::BTreeSet;
use std::process::Command;

use http::Response;
use otel_sidecar::config::{load_str, Config};

use crate::support::*;
use crate::tools::run;

/// The image's config path (Dockerfile's SIDECAR_CONFIG).
pub const IMAGE_CONFIG_PATH: &str = "/etc/otel-sidecar/sidecar.toml";

// ---------------------------------------------------------------- Dockerfile

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// The instructions of the last stage: what `docker build .` produces.
fn final_stage(instructions: &[String]) -> &[String] {
    let start = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("a FROM");
    &instructions[start..]
}

#[test]
fn dockerfiles_pass_hadolint() {
    // hadolint exits non-zero on any finding, down to `info`.
    for dockerfile in ["Dockerfile", "examples/agent/Dockerfile"] {
        let out = run("hadolint", &["--no-color", dockerfile], &repo(""));
        assert!(out.trim().is_empty(), "{dockerfile}: {out}");
    }
}

#[test]
fn dockerfile_pins_bases_and_builds_the_image_the_issue_asks_for() {
    let all = instructions(&read("Dockerfile"));
    let mut stages = BTreeSet::new();
    for from in all.iter().filter(|i| i.starts_with("FROM ")) {
        let words: Vec<&str> = from.split_whitespace().collect();
        let image = words[1];
        if let Some(i) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
            stages.insert(words[i + 1].to_owned());
        }
        if image == "scratch" || stages.contains(image) {
            continue;
        }
        // name:tag@sha256:<64 hex>: the digest is what is pulled, the tag
        // says which release it was.
        let (name_tag, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("{image} is not pinned by digest"));
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{image}: malformed digest"
        );
        assert!(name_tag.contains(':'), "{image}: no tag beside the digest");
    }

    let last = final_stage(&all);
    assert!(
        last[0].contains("distroless/cc-debian12"),
        "the default target must be the runtime image, not {}",
        last[0]
    );
    let has = |prefix: &str| last.iter().find(|i| i.starts_with(prefix));
    assert_eq!(
        has("USER ").map(String::as_str),
        Some("USER 65532:65532"),
        "runAsNonRoot needs a numeric user"
    );
    let version_arg = format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"));
    assert!(
        has(&version_arg).is_some(),
        "{version_arg} (Cargo.toml's version)"
    );
    let labels = has("LABEL ").expect("OCI labels");
    for (label, value) in [
        ("source", "${SOURCE}"),
        ("version", "${VERSION}"),
        ("revision", "${REVISION}"),
    ] {
        let expected = format!("org.opencontainers.image.{label}=\"{value}\"");
        assert!(labels.contains(&expected), "{expected} in {labels}");
    }
    assert!(
        has("HEALTHCHECK ").is_some_and(|h| h.contains("\"healthcheck\"")),
        "the binary probes itself: the image has no shell"
    );
    assert!(has("COPY --from=build /out/otel-sidecar ").is_some());

    // The build stage: dependencies built before the sources arrive, and a
    // stripped binary whose debug info is kept apart.
    let copy_manifest = all
        .iter()
        .position(|i| i == "COPY Cargo.toml Cargo.lock ./")
        .expect("manifest copied on its own");
    let copy_src = all
        .iter()
        .position(|i| i.starts_with("COPY src "))
        .expect("sources copied");
    assert!(
        all[copy_manifest..copy_src]
            .iter()
            .any(|i| i.starts_with("RUN ") && i.contains("cargo build --locked --release")),
        "no dependency build between the manifest and the sources"
    );
    let build = all[copy_src..]
        .iter()
        .find(|i| i.starts_with("RUN ") && i.contains("cargo build"))
        .expect("the proxy's build");
    assert!(build.contains("--strip-all") && build.contains("--only-keep-debug"));

    // The ports the image exposes are the ones its config binds.
    let config = image_config("http://upstream:1");
    let expose = has("EXPOSE ").expect("EXPOSE");
    let exposed: BTreeSet<u16> = expose[7..]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        exposed,
        BTreeSet::from([config.listener.address.port(), config.admin.address.port()])
    );
    assert!(has(&format!(
        "COPY deploy/container/sidecar.toml {IMAGE_CONFIG_PATH}"
    ))
    .is_some());
    assert!(has(&format!("ENV SIDECAR_CONFIG={IMAGE_CONFIG_PATH}")).is_some());
}

#[test]
fn dockerignore_admits_exactly_what_the_build_copies() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Everything out, then what the build needs back in: target/ (gigabytes)
    // and .git never reach the builder.
    assert_eq!(patterns.first(), Some(&"*"), "{ignore}");
    let admitted: Vec<&str> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .collect();
    let dockerfile = instructions(&read("Dockerfile"));
    let mut copied = Vec::new();
    for copy in dockerfile
        .iter()
        .filter(|i| i.starts_with("COPY ") && !i.contains("--from="))
    {
        let words: Vec<&str> = copy.split_whitespace().skip(1).collect();
        for source in &words[..words.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(repo(source).exists(), "COPY {source}: no such path");
            assert!(
                admitted
                    .iter()
                    .any(|a| source == *a || source.starts_with(&format!("{a}/"))),
                ".dockerignore keeps {source} out of the context"
            );
            copied.push(source);
        }
    }
    for a in admitted {
        assert!(
            copied
                .iter()
                .any(|c| *c == a || c.starts_with(&format!("{a}/"))),
            ".dockerignore admits {a}, which no COPY uses"
        );
    }
}

// ------------------------------------------------------------ image config

fn image_config(upstream: &str) -> Config {
    let upstream = upstream.to_owned();
    load_str(
        &read("deploy/container/sidecar.toml"),
        "deploy/container/sidecar.toml",
        move |name| (name == "UPSTREAM_URL").then(|| upstream.clone()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn image_config_binds_every_interface_and_takes_the_upstream_from_the_environment() {
    let check = |upstream: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["check", "--config", "deploy/container/sidecar.toml"])
            .current_dir(repo(""))
            .env_remove("UPSTREAM_URL");
        if let Some(url) = upstream {
            cmd.env("UPSTREAM_URL", url);
        }
        cmd.output().unwrap()
    };
    let out = check(Some("http://host.docker.internal:11434"));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for line in [
        "address = \"0.0.0.0:8080\"",
        "address = \"0.0.0.0:9901\"",
        "url = \"http://host.docker.internal:11434\"",
    ] {
        assert!(shown.contains(line), "{line} not in:\n{shown}");
    }

    // Without the variable the container exits at once, naming it, rather
    // than answering 502 to everything.
    let out = check(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment variable UPSTREAM_URL is not set"),
        "{stderr}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `config` with its listener and admin addresses moved to free loopback
/// ports: 8080 and 9901 may be taken on a test machine, and nothing here
/// should listen beyond loopback. Returns the text and the admin address.
pub fn on_loopback(config: &str) -> (String, String) {
    for fixed in ["address = \"0.0.0.0:8080\"", "address = \"0.0.0.0:9901\""] {
        assert!(config.contains(fixed), "{fixed} not in the config");
    }
    let admin = format!("127.0.0.1:{}", free_port());
    let text = config
        .replace(
            "address = \"0.0.0.0:8080\"",
            &format!("address = \"127.0.0.1:{}\"", free_port()),
        )
        .replace(
            "address = \"0.0.0.0:9901\"",
            &format!("address = \"{admin}\""),
        );
    (text, admin)
}

#[tokio::test]
async fn image_config_proxies_to_upstream_url_and_passes_the_image_healthcheck() {
    let upstream =
        TestUpstream::start(|_req| async { Response::new(full("from the upstream")) }).await;
    let (config, admin) = on_loopback(&read("deploy/container/sidecar.toml"));
    let url = upstream.url();
    // No collector here: spans off, so the run exports nowhere.
    let env = [
        ("UPSTREAM_URL", url.as_str()),
        ("OTEL_SDK_DISABLED", "true"),
    ];
    let binary = spawn_binary_with_env(&config, &env);

    let (parts, body) = send(&client(), get(format!("http://{}/", binary.listener))).await;
    assert_eq!(parts.status, 200);
    assert_eq!(&body[..], b"from the upstream");
    for path in ["/healthz", "/readyz"] {
        let (parts, _) = send(&client(), get(format!("http://{admin}{path}"))).await;
        assert_eq!(parts.status, 200, "{path}");
    }

    // The Dockerfile's HEALTHCHECK, as Docker runs it: no arguments, the
    // config from SIDECAR_CONFIG, the container's environment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.toml");
    std::fs::write(&path, &config).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("healthcheck")
            .env("SIDECAR_CONFIG", &path)
            .env("UPSTREAM_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
