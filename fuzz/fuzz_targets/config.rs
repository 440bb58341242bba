//! The whole config loader (TOML, interpolation, validation) on any text: an
//! error names the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otel_sidecar::config::load_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = load_str(text, "fuzz.toml", |_| None) {
        assert!(e.to_string().contains("fuzz.toml"), "{e}");
    }
});
