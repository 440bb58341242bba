//! Whether a signal's last export failed, so a collector that goes down is
//! logged as a warning once, and its recovery once, however many exports
//! fail in between (each exporter retries every period or batch).

pub struct ExportHealth {
    /// `span`, `metric`: the first word of the lines.
    signal: &'static str,
    /// What a failed export drops: `spans`, `data points`.
    items: &'static str,
    failing: bool,
}

impl ExportHealth {
    pub fn new(signal: &'static str, items: &'static str) -> Self {
        Self {
            signal,
            items,
            failing: false,
        }
    }

    pub fn succeeded(&mut self) {
        if std::mem::take(&mut self.failing) {
            tracing::info!("{} export recovered", self.signal);
        }
    }

    /// `dropped` items of one export were lost because of `failure`.
    pub fn failed(&mut self, dropped: u64, failure: &str) {
        let (signal, items) = (self.signal, self.items);
        if std::mem::replace(&mut self.failing, true) {
            tracing::debug!(dropped, error = %failure, "{signal} export failed; dropping {items}");
        } else {
            tracing::warn!(dropped, error = %failure, "{signal} export failed; dropping {items}");
        }
    }
}
