//! The `tls` overlay as shipped: the script's certificates, the overlay's
//! variables on the sidecars' own config files, and the collector's TLS
//! settings, carry spans over mTLS to a collector that requires a client
//! certificate of the stack's CA.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use http::Response;
use serde_json::Value;

use otel_sidecar::config::load_str;

use crate::otlp::OtlpReceiver;
use crate::support::*;
use crate::tools::run;

fn yaml(path: &str) -> Value {
    let script = "import json, sys, yaml\n\
                  json.dump(yaml.safe_load(sys.stdin), sys.stdout, default=str)";
    let json = crate::tools::python_filter(&["yaml"], script, &read(path))
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    serde_json::from_str(&json).unwrap()
}

/// A service's bind mounts of the overlay: container path -> the file's
/// name under tls/certs/.
fn cert_mounts(service: &Value) -> BTreeMap<String, String> {
    service["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let mut parts = v.as_str().unwrap().split(':');
            let host = parts.next()?.strip_prefix("./tls/certs/")?;
            Some((parts.next()?.to_owned(), host.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn the_tls_overlay_carries_each_sidecars_spans_over_mtls_with_the_scripts_certificates() {
    let monitoring = repo("monitoring");
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().to_str().unwrap().to_owned();
    // The script needs only openssl; fail naming it rather than deep in sh.
    crate::tools::require("openssl");
    run("sh", &["tls/gen-certs.sh", &certs], &monitoring);
    run(
        "docker-compose",
        &[
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.tls.yml",
            "config",
            "-q",
        ],
        &monitoring,
    );
    let overlay = yaml("monitoring/docker-compose.tls.yml");
    let services = overlay["services"].as_object().unwrap();

    // The collector: TLS on both OTLP protocols, every file it names mounted
    // from what the script writes.
    let collector = &services["otel-collector"];
    assert!(
        strings(&collector["command"]).contains(&"--config=/etc/otelcol/tls.yaml".to_owned()),
        "the overlay's collector config is loaded"
    );
    let mounts = cert_mounts(collector);
    let tls = yaml("monitoring/otel-collector/tls.yaml");
    for protocol in ["grpc", "http"] {
        let settings = &tls["receivers"]["otlp"]["protocols"][protocol]["tls"];
        for key in ["cert_file", "key_file", "client_ca_file"] {
            let path = settings[key].as_str().unwrap();
            let name = mounts
                .get(path)
                .unwrap_or_else(|| panic!("{protocol} {key} {path} is not mounted"));
            assert!(Path::new(&certs).join(name).exists(), "{name}");
        }
    }
    let name = |path: &str| mounts[path].clone();
    let server = (
        name("/etc/otelcol/certs/collector.pem"),
        name("/etc/otelcol/certs/collector.key"),
    );
    let ca = name("/etc/otelcol/certs/ca.pem");

    let upstream =
        TestUpstream::start(|_| async { Response::new(full(Bytes::from_static(b"{}"))) }).await;
    let compose = super::compose_services(&read("monitoring/docker-compose.yml"));
    let mut checked = 0;
    for (service, settings) in services.iter().filter(|(s, _)| s.ends_with("-sidecar")) {
        let mounts = cert_mounts(settings);
        let identity = (
            mounts["/etc/otel-sidecar/certs/sidecar.pem"].clone(),
            mounts["/etc/otel-sidecar/certs/sidecar.key"].clone(),
        );
        let copy = tempfile::tempdir().unwrap();
        for file in [&ca, &server.0, &server.1, &identity.0, &identity.1] {
            std::fs::copy(Path::new(&certs).join(file), copy.path().join(file)).unwrap();
        }
        let pki = crate::pki::Pki::from_files(
            copy,
            &ca,
            (&server.0, &server.1),
            (&identity.0, &identity.1),
        );
        let receiver = OtlpReceiver::grpc_mtls(&pki).await;
        // The overlay's variables as the container sees them, with the
        // collector's name and the mounted paths made local.
        let env: BTreeMap<String, String> = settings["environment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let value = value.as_str().unwrap();
                let value = match mounts.get(value) {
                    Some(file) => Path::new(&certs).join(file).display().to_string(),
                    None => value.replace(
                        "otel-collector:4317",
                        &format!("localhost:{}", receiver.addr.port()),
                    ),
                };
                (key.clone(), value)
            })
            .collect();
        assert!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"].starts_with("https://"),
            "{service}: {env:?}"
        );
        let file = super::setting(&compose[service.as_str()], "SIDECAR_CONFIG")
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or_else(|| panic!("{service}: no SIDECAR_CONFIG"))
            .to_owned();
        let text = read(&format!("monitoring/sidecar/{file}"));
        let mut config = load_str(&text, &file, |key| env.get(key).cloned())
            .unwrap_or_else(|e| panic!("{service}: {e}"));
        assert_eq!(
            config.otlp.ca_file.as_deref(),
            Some(Path::new(&certs).join(&ca).as_path()),
            "{service}: the CA from OTEL_EXPORTER_OTLP_CERTIFICATE"
        );
        // Local ports and upstream; the rest is the file with the overlay.
        config.listener.address = "127.0.0.1:0".parse().unwrap();
        config.admin.address = "127.0.0.1:0".parse().unwrap();
        config.upstream.url = upstream.url().parse().unwrap();
        config.logging.exporters = Vec::new();
        let sidecar = start_sidecar(config).await;
        send(&client(), get(format!("http://{}/x", sidecar.proxy_addr()))).await;
        sidecar.traces().unwrap().flush().await;
        assert_eq!(receiver.wait_for(2).await.len(), 2, "{service}");
        sidecar.stop().await;
        checked += 1;
    }
    assert_eq!(checked, 2, "both sidecars");
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}
