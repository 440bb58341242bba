//! The Kubernetes examples, checked without a cluster: every kustomization
//! under examples/kubernetes is rendered by `kubectl kustomize` and each
//! object validated by `kubernetes-validate` against the Kubernetes 1.29 and
//! 1.37 schemas, and the rendered pods are checked for what a pod needs to
//! start, pass its probes and roll without cutting streams.
//!
//! Tools: kubernetes-validate and PyYAML (which comes with it and turns YAML
//! into JSON here) from `tests/requirements.txt`, and kubectl; `scripts/test`
//! provides them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use http::Response;
use otel_sidecar::config::{load_str, Config};
use serde_json::Value;

use crate::container::{on_loopback, IMAGE_CONFIG_PATH};
use crate::support::*;
use crate::tools::run;

/// Schemas every rendered object must pass: native sidecars need 1.29; the
/// newest one the validator ships catches removed or renamed fields.
const K8S_VERSIONS: &[&str] = &["1.29.0", "1.37.0"];
/// The pre-1.29 variant must also pass the oldest schema the validator ships,
/// which has no `restartPolicy` on init containers.
const LEGACY_VERSION: &str = "1.25.0";
/// Kinds kubernetes-validate has no schema for (CRDs). Each is checked by a
/// test of its own here, so it is skipped there by name, never silently.
const CRD_KINDS: &[&str] = &["PodMonitor"];

/// One kustomization under examples/kubernetes, rendered.
struct Rendering {
    /// Its directory relative to examples/kubernetes, e.g. "ollama".
    name: String,
    yaml: String,
    objects: Vec<Value>,
}

fn kustomizations(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            kustomizations(&path, out);
        } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
            out.push(path);
        }
    }
}

fn is_component(kustomization: &Path) -> bool {
    std::fs::read_to_string(kustomization)
        .unwrap()
        .lines()
        .any(|l| l.trim() == "kind: Component")
}

/// YAML documents as JSON values, through PyYAML (no YAML crate in the tree).
fn yaml_to_json(yaml: &str) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)";
    let json = crate::tools::python_filter(&["yaml"], script, yaml)
        .unwrap_or_else(|e| panic!("PyYAML cannot read the YAML:\n{e}"));
    serde_json::from_str(&json).unwrap()
}

/// Every kustomization that is not a Component, rendered once for all tests.
fn renderings() -> &'static [Rendering] {
    static RENDERINGS: OnceLock<Vec<Rendering>> = OnceLock::new();
    RENDERINGS.get_or_init(|| {
        let root = repo("examples/kubernetes");
        let mut files = Vec::new();
        kustomizations(&root, &mut files);
        let mut out = Vec::new();
        for file in files.iter().filter(|f| !is_component(f)) {
            let dir = file.parent().unwrap();
            let name = dir.strip_prefix(&root).unwrap().display().to_string();
            let yaml = run("kubectl", &["kustomize", dir.to_str().unwrap()], &root);
            let objects = yaml_to_json(&yaml);
            out.push(Rendering {
                name,
                yaml,
                objects,
            });
        }
        out
    })
}

fn rendering(name: &str) -> &'static Rendering {
    renderings()
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no kustomization examples/kubernetes/{name}"))
}

fn kind_name(object: &Value) -> (String, String) {
    (
        object["kind"].as_str().unwrap().to_owned(),
        object["metadata"]["name"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_kustomization_renders_and_every_object_validates_against_the_kubernetes_schema() {
    let all = renderings();
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    for expected in ["ollama", "legacy", "component-demo"] {
        assert!(names.contains(&expected), "{expected} not among {names:?}");
    }
    // A Component renders only through a kustomization that uses it.
    let mut files = Vec::new();
    kustomizations(&repo("examples/kubernetes"), &mut files);
    for component in files.iter().filter(|f| is_component(f)) {
        let dir = component.parent().unwrap().file_name().unwrap();
        assert!(
            files.iter().filter(|f| !is_component(f)).any(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .contains(&format!("components/{}", dir.to_string_lossy()))
            }),
            "{} is used by no kustomization, so nothing renders it",
            component.display()
        );
    }

    let dir = tempfile::tempdir().unwrap();
    for r in all {
        let file = dir
            .path()
            .join(format!("{}.yaml", r.name.replace('/', "_")));
        std::fs::write(&file, &r.yaml).unwrap();
        let mut versions = K8S_VERSIONS.to_vec();
        if r.name == "legacy" {
            versions.push(LEGACY_VERSION);
        }
        let mut args = vec!["--strict"];
        for v in &versions {
            args.extend(["-k", v]);
        }
        args.push(file.to_str().unwrap());
        let out = run("kubernetes-validate", &args, dir.path());

        for object in &r.objects {
            let (kind, name) = kind_name(object);
            for v in &versions {
                let major_minor = &v[..v.rfind('.').unwrap()];
                let passed = format!(
                    "passed for resource {}/{name} against version {major_minor}",
                    kind.to_lowercase()
                );
                let no_schema = format!(
                    "Couldn't find schema for kind {kind} with api version {} \
                     for kubernetes version {major_minor}",
                    object["apiVersion"].as_str().unwrap()
                );
                let skipped = CRD_KINDS.contains(&kind.as_str()) && out.contains(&no_schema);
                assert!(
                    out.contains(&passed) || skipped,
                    "{}: {kind}/{name} not validated against {v}:\n{out}",
                    r.name
                );
            }
        }
        assert!(!r.objects.is_empty(), "{} renders nothing", r.name);
    }
}

/// A pod template's containers, init containers first.
fn all_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |k| pod[k].as_array().into_iter().flatten())
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The config the sidecar container runs: the ConfigMap mounted over the
/// image's config directory, else the image's own; `${VAR}` from the
/// container's literal env values (those from the cluster are unknown here).
fn sidecar_config(r: &Rendering, pod: &Value, sidecar: &Value) -> Config {
    let config_dir = Path::new(IMAGE_CONFIG_PATH).parent().unwrap();
    let mounted = sidecar["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| Path::new(m["mountPath"].as_str().unwrap()) == config_dir);
    let text = match mounted {
        Some(mount) => {
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .expect("the mounted volume");
            let map = &volume["configMap"]["name"];
            let config_map = r
                .objects
                .iter()
                .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == *map)
                .unwrap_or_else(|| panic!("{}: ConfigMap {map} not rendered", r.name));
            config_map["data"]["sidecar.toml"]
                .as_str()
                .expect("sidecar.toml in the ConfigMap")
                .to_owned()
        }
        None => read("deploy/container/sidecar.toml"),
    };
    let sidecar = sidecar.clone();
    load_str(&text, &format!("{} sidecar.toml", r.name), move |var| {
        env_value(&sidecar, var).map(str::to_owned)
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The number a probe's or Service's port (a name or a number) stands for
/// in `container`.
fn port_number(container: &Value, port: &Value) -> Option<u64> {
    if let Some(n) = port.as_u64() {
        return Some(n);
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == *port)?["containerPort"]
        .as_u64()
}

fn mebibytes(quantity: &str) -> f64 {
    for (suffix, factor) in [("Ki", 1.0 / 1024.0), ("Mi", 1.0), ("Gi", 1024.0)] {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<f64>().unwrap() * factor;
        }
    }
    panic!("unexpected quantity {quantity}")
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k] == *v))
}

/// The assertions that matter for the issue, on every rendered pod that runs
/// the sidecar. Returns how many pods were checked.
fn check_sidecar_pods(r: &Rendering) -> usize {
    let mut checked = 0;
    for deployment in r.objects.iter().filter(|o| o["kind"] == "Deployment") {
        let template = &deployment["spec"]["template"];
        let pod = &template["spec"];
        let at = |what: &str| format!("{} {}: {what}", r.name, kind_name(deployment).1);
        let mut init = pod["initContainers"].as_array().into_iter().flatten();
        let (sidecar, native) = match init.find(|c| c["name"] == "otel-sidecar") {
            Some(c) => (c, true),
            None => match all_containers(pod).find(|c| c["name"] == "otel-sidecar") {
                Some(c) => (c, false),
                None => continue,
            },
        };
        checked += 1;
        // A native sidecar keeps running beside the app; any other init
        // container would have to exit before the app could start.
        if native {
            assert_eq!(
                sidecar["restartPolicy"],
                "Always",
                "{}",
                at("restartPolicy")
            );
        } else {
            assert!(
                sidecar["restartPolicy"].is_null(),
                "{}",
                at("restartPolicy")
            );
        }
        assert_eq!(
            native,
            r.name != "legacy",
            "{}",
            at("native sidecar everywhere but legacy")
        );
        assert_eq!(
            sidecar["image"],
            format!("otel-sidecar:{}", env!("CARGO_PKG_VERSION")),
            "{}",
            at("image")
        );

        let security = &sidecar["securityContext"];
        for (key, expected) in [
            ("runAsNonRoot", Value::from(true)),
            ("runAsUser", Value::from(65532)),
            ("runAsGroup", Value::from(65532)),
            ("readOnlyRootFilesystem", Value::from(true)),
            ("allowPrivilegeEscalation", Value::from(false)),
        ] {
            assert_eq!(security[key], expected, "{}", at(key));
        }
        assert_eq!(
            security["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{}",
            at("capabilities")
        );
        let seccomp = if security["seccompProfile"].is_null() {
            &pod["securityContext"]["seccompProfile"]
        } else {
            &security["seccompProfile"]
        };
        assert_eq!(
            seccomp["type"],
            "RuntimeDefault",
            "{}",
            at("seccompProfile")
        );

        let config = sidecar_config(r, pod, sidecar);
        let shutdown_delay = config.listener.shutdown_delay;
        let admin = u64::from(config.admin.address.port());
        let listener = u64::from(config.listener.address.port());
        assert!(
            config.admin.address.ip().is_unspecified()
                && config.listener.address.ip().is_unspecified(),
            "{}",
            at("the kubelet and the Service reach the pod IP, not loopback")
        );
        // Probes go to the admin listener on paths that stay open with
        // admin.token set: no header can carry a token from a probe.
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &sidecar[probe]["httpGet"];
            assert_eq!(get["path"], path, "{}", at(probe));
            assert_eq!(
                port_number(sidecar, &get["port"]),
                Some(admin),
                "{}",
                at(probe)
            );
            assert!(get["httpHeaders"].is_null(), "{}", at(probe));
        }

        // Resources, and the soak's measured peak RSS (91 MiB) under the limit.
        let resources = &sidecar["resources"];
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    resources[kind][resource].is_string(),
                    "{}",
                    at(&format!("{kind}.{resource}"))
                );
            }
        }
        let limit = mebibytes(resources["limits"]["memory"].as_str().unwrap());
        assert!(limit > 91.0, "{}", at("memory limit below the soak's peak"));

        // Shutdown: the kubelet's SIGKILL comes after the sidecar's delay
        // and drain; an app with a preStop sleep outlives that drain.
        let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
        let budget = shutdown_delay + config.listener.drain_timeout;
        assert!(grace > budget, "{}", at("terminationGracePeriodSeconds"));
        let apps: Vec<&Value> = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] != "otel-sidecar")
            .collect();
        for app in &apps {
            let Some(command) = app["lifecycle"]["preStop"]["exec"]["command"].as_array() else {
                assert!(
                    native,
                    "{}",
                    at("an app beside a plain-container sidecar needs a preStop sleep")
                );
                continue;
            };
            assert_eq!(command[0], "sleep", "{}", at("preStop"));
            let sleep = Duration::from_secs(command[1].as_str().unwrap().parse().unwrap());
            assert!(
                sleep >= budget,
                "{}",
                at("preStop shorter than the sidecar's drain")
            );
            assert!(
                grace > sleep + shutdown_delay,
                "{}",
                at("grace after preStop")
            );
        }

        // The upstream is the app in the same pod; when the app declares its
        // port, it is that port (the component derives it from there).
        let upstream = config.upstream.url.to_string();
        let upstream: http::Uri = upstream.parse().unwrap();
        assert_eq!(upstream.host(), Some("127.0.0.1"), "{}", at("upstream"));
        if let Some(port) = apps[0]["ports"][0]["containerPort"].as_u64() {
            assert_eq!(
                upstream.port_u16().map(u64::from),
                Some(port),
                "{}",
                at("upstream port")
            );
        }

        // One port number and one port name per pod.
        let mut numbers = BTreeSet::new();
        let mut names = BTreeSet::new();
        for c in all_containers(pod) {
            for p in c["ports"].as_array().into_iter().flatten() {
                assert!(
                    numbers.insert(p["containerPort"].as_u64()),
                    "{}",
                    at("port taken twice")
                );
                if let Some(name) = p["name"].as_str() {
                    assert!(names.insert(name.to_owned()), "{}", at("port name twice"));
                }
            }
        }

        let annotations = &template["metadata"]["annotations"];
        assert_eq!(
            annotations["prometheus.io/scrape"],
            "true",
            "{}",
            at("scrape")
        );
        assert_eq!(
            annotations["prometheus.io/port"],
            admin.to_string(),
            "{}",
            at("scrape")
        );
        assert_eq!(
            annotations["prometheus.io/path"],
            "/metrics",
            "{}",
            at("scrape")
        );

        // Clients reach the pod through the sidecar.
        let labels = &template["metadata"]["labels"];
        let services: Vec<&Value> = r
            .objects
            .iter()
            .filter(|o| o["kind"] == "Service" && labels_match(&o["spec"]["selector"], labels))
            .collect();
        assert!(!services.is_empty(), "{}", at("no Service selects the pod"));
        for service in services {
            let target = &service["spec"]["ports"][0]["targetPort"];
            assert_eq!(
                port_number(sidecar, target),
                Some(listener),
                "{}",
                at("the Service bypasses the sidecar")
            );
        }
    }
    checked
}

#[test]
fn rendered_pods_start_probe_and_roll_with_the_sidecar() {
    let mut checked = BTreeMap::new();
    for r in renderings() {
        checked.insert(r.name.as_str(), check_sidecar_pods(r));
    }
    for name in ["ollama", "legacy", "component-demo"] {
        assert_eq!(
            checked.get(name),
            Some(&1),
            "sidecar pods in {name}: {checked:?}"
        );
    }
}

#[test]
fn the_component_points_the_sidecar_at_the_apps_port() {
    let demo = rendering("component-demo");
    let deployment = demo
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let app = &pod["containers"][0];
    let port = app["ports"][0]["containerPort"].as_u64().unwrap();
    let sidecar = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "otel-sidecar")
        .unwrap();
    assert_eq!(
        env_value(sidecar, "UPSTREAM_URL"),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );
    // The app itself is untouched: same containers, same ports.
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    assert_eq!(app["ports"].as_array().unwrap().len(), 1);
}

/// The keys of the PodMonitor CRD (prometheus-operator v0.93.0) that these
/// examples may use, per level; the CRD has more, and a key outside these
/// lists fails so that a typo cannot pass unnoticed.
const PODMONITOR_SPEC_KEYS: &[&str] = &[
    "selector",
    "namespaceSelector",
    "podMetricsEndpoints",
    "jobLabel",
    "podTargetLabels",
    "sampleLimit",
];
const PODMONITOR_ENDPOINT_KEYS: &[&str] = &[
    "port",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "authorization",
    "honorLabels",
    "relabelings",
    "metricRelabelings",
];

fn keys_within(object: &Value, allowed: &[&str], what: &str) {
    for key in object
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object"))
        .keys()
    {
        assert!(allowed.contains(&key.as_str()), "{what}: unknown key {key}");
    }
}

/// The CRD's duration pattern, `^(0|(([0-9]+)y)?(([0-9]+)w)?…(([0-9]+)ms)?)$`.
fn is_prometheus_duration(text: &str) -> bool {
    if text == "0" {
        return true;
    }
    let mut rest = text;
    let mut units = ["y", "w", "d", "h", "m", "s", "ms"].iter().peekable();
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        let after = &rest[digits..];
        // "ms" before "m": try the longer unit when both could follow.
        let Some(unit) = units
            .by_ref()
            .find(|u| after.starts_with(**u) && !(**u == "m" && after.starts_with("ms")))
        else {
            return false;
        };
        rest = &after[unit.len()..];
    }
    !text.is_empty()
}

fn check_podmonitor(monitor: &Value, r: &Rendering) {
    let what = format!("{} PodMonitor {}", r.name, kind_name(monitor).1);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1", "{what}");
    let spec = &monitor["spec"];
    keys_within(spec, PODMONITOR_SPEC_KEYS, &what);
    let selector = &spec["selector"]["matchLabels"];
    let pod = r
        .objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|d| &d["spec"]["template"])
        .find(|t| labels_match(selector, &t["metadata"]["labels"]))
        .unwrap_or_else(|| panic!("{what}: selects no rendered pod"));
    let sidecar = all_containers(&pod["spec"])
        .find(|c| c["name"] == "otel-sidecar")
        .unwrap();
    let config = sidecar_config(r, &pod["spec"], sidecar);
    let endpoints = spec["podMetricsEndpoints"].as_array().unwrap();
    assert!(!endpoints.is_empty(), "{what}");
    for endpoint in endpoints {
        keys_within(endpoint, PODMONITOR_ENDPOINT_KEYS, &what);
        assert_eq!(
            port_number(sidecar, &endpoint["port"]),
            Some(u64::from(config.admin.address.port())),
            "{what}: port is not the sidecar's admin port"
        );
        assert_eq!(endpoint["path"], "/metrics", "{what}");
        if let Some(interval) = endpoint["interval"].as_str() {
            assert!(
                is_prometheus_duration(interval),
                "{what}: interval {interval}"
            );
        }
        if !endpoint["authorization"].is_null() {
            let auth = &endpoint["authorization"];
            keys_within(auth, &["type", "credentials"], &what);
            assert_eq!(auth["type"], "Bearer", "{what}");
            keys_within(&auth["credentials"], &["name", "key", "optional"], &what);
            assert!(
                auth["credentials"]["key"].is_string(),
                "{what}: credentials.key"
            );
            assert!(
                auth["credentials"]["name"].is_string(),
                "{what}: credentials.name"
            );
        }
    }
}

/// `yaml` with the commented-out block that starts at `# <key>:` made live.
fn uncomment_block(yaml: &str, key: &str) -> String {
    let mut out = Vec::new();
    let mut indent = None;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        let width = line.len() - trimmed.len();
        match indent {
            None if trimmed == format!("# {key}:") => {
                indent = Some(width);
                out.push(format!("{}{}", " ".repeat(width), &trimmed[2..]));
            }
            Some(i) if width == i && trimmed.starts_with("#   ") => {
                out.push(format!("{}{}", " ".repeat(width), &trimmed[2..]));
            }
            _ => {
                if indent.is_some() && !trimmed.starts_with("#   ") {
                    indent = None;
                }
                out.push(line.to_owned());
            }
        }
    }
    out.join("\n")
}

#[test]
fn podmonitors_scrape_the_sidecars_admin_port_with_or_without_a_token() {
    let mut seen = 0;
    for r in renderings() {
        for monitor in r.objects.iter().filter(|o| o["kind"] == "PodMonitor") {
            check_podmonitor(monitor, r);
            seen += 1;
        }
    }
    assert!(seen >= 2, "PodMonitors checked: {seen}");

    // The documented token option, made live, is a valid monitor too.
    let source = read("examples/kubernetes/ollama/podmonitor.yaml");
    let with_token = uncomment_block(&source, "authorization");
    assert_ne!(with_token, source, "no commented authorization block");
    let monitor = yaml_to_json(&with_token).remove(0);
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["authorization"]["credentials"]["name"],
        "otel-sidecar-admin"
    );
    check_podmonitor(&monitor, rendering("ollama"));
}

#[test]
fn prometheus_durations_follow_the_crd_pattern() {
    for good in ["0", "15s", "1m30s", "500ms", "1h", "2d12h"] {
        assert!(is_prometheus_duration(good), "{good}");
    }
    for bad in ["", "15", "s", "1s1m", "15 s", "1.5s", "15sec"] {
        assert!(!is_prometheus_duration(bad), "{bad}");
    }
}

/// The probes of the rendered Ollama Deployment's sidecar: (kind, path).
fn ollama_probes() -> Vec<(String, String)> {
    let deployment = rendering("ollama")
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let sidecar = all_containers(&deployment["spec"]["template"]["spec"])
        .find(|c| c["name"] == "otel-sidecar")
        .unwrap();
    ["startupProbe", "readinessProbe", "livenessProbe"]
        .iter()
        .map(|p| {
            let path = sidecar[*p]["httpGet"]["path"].as_str().unwrap();
            (p.to_string(), path.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn with_the_admin_token_set_the_probes_pass_and_metrics_need_the_token() {
    // The Ollama example's config with its documented token line made live,
    // as a pod with the Secret runs it; the upstream is a test one.
    let source = read("examples/kubernetes/ollama/sidecar.toml");
    let commented = "# token = \"${ADMIN_TOKEN}\"";
    assert!(source.contains(commented), "no commented token line");
    let upstream = TestUpstream::start(|_req| async { Response::new(full("ok")) }).await;
    let config = source
        .replace(commented, "token = \"${ADMIN_TOKEN}\"")
        .replace(
            "\"http://127.0.0.1:11434\"",
            &format!("\"{}\"", upstream.url()),
        );
    let (config, admin) = on_loopback(&config);
    let token = "s3cr3t-admin-token";
    let _binary = spawn_binary_with_env(
        &config,
        &[("ADMIN_TOKEN", token), ("OTEL_SDK_DISABLED", "true")],
    );

    // The kubelet sends no Authorization header.
    for (probe, path) in ollama_probes() {
        let (parts, body) = send(&client(), get(format!("http://{admin}{path}"))).await;
        assert_eq!(parts.status, 200, "{probe} {path}: {body:?}");
    }
    let metrics = format!("http://{admin}/metrics");
    let (parts, _) = send(&client(), get(metrics.clone())).await;
    assert_eq!(parts.status, 401);
    let with_token = http::Request::get(&metrics)
        .header("authorization", format!("Bearer {token}"))
        .body(full(""))
        .unwrap();
    let (parts, _) = send(&client(), with_token).await;
    assert_eq!(parts.status, 200);
}
