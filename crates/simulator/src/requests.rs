//! The request log: every data request the simulator served, with its response body, so that a
//! check outside the process can hold each response against the vendor's published spec
//! (`/_sim/requests`, read by `.ci/contract/check.py`).

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::Value;

/// One served data request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestLogEntry {
    /// Order of arrival among logged requests, from 1.
    pub sequence: u64,
    /// HTTP method (`GET`).
    pub method: String,
    /// The request path (`/api/v2/deals/7`).
    pub path: String,
    /// The path with numeric segments as `{id}` (`/api/v2/deals/{id}`), as in `/_sim/stats`.
    pub endpoint: String,
    /// Query parameters as sent, decoded, in order, repeats kept.
    pub query: Vec<(String, String)>,
    /// Response status.
    pub status: u16,
    /// The response body when it is JSON; null for an empty or non-JSON body.
    pub body: Value,
}

/// A bounded log, oldest entries dropped first.
#[derive(Debug, Default)]
pub struct RequestLog {
    limit: usize,
    next_sequence: u64,
    dropped: u64,
    entries: VecDeque<RequestLogEntry>,
}

/// What `/_sim/requests` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestLogView {
    /// The configured `request_log_limit` (0: logging is off).
    pub limit: usize,
    /// Entries dropped because the log was full.
    pub dropped: u64,
    /// The kept entries, oldest first.
    pub requests: Vec<RequestLogEntry>,
}

impl RequestLog {
    /// A log keeping at most `limit` entries (0 keeps none).
    pub fn new(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Whether anything is logged at all (callers skip buffering bodies otherwise).
    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Appends one entry (its `sequence` is assigned here).
    pub fn push(&mut self, mut entry: RequestLogEntry) {
        if !self.enabled() {
            return;
        }
        self.next_sequence += 1;
        entry.sequence = self.next_sequence;
        if self.entries.len() == self.limit {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    /// A copy of the log.
    pub fn view(&self) -> RequestLogView {
        RequestLogView {
            limit: self.limit,
            dropped: self.dropped,
            requests: self.entries.iter().cloned().collect(),
        }
    }

    /// Empties the log (sequence numbers go on).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dropped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> RequestLogEntry {
        RequestLogEntry {
            sequence: 0,
            method: "GET".into(),
            path: path.into(),
            endpoint: path.into(),
            query: vec![("limit".into(), "1".into())],
            status: 200,
            body: Value::Null,
        }
    }

    #[test]
    fn keeps_the_newest_entries_up_to_the_limit() {
        let mut log = RequestLog::new(2);
        for path in ["/a", "/b", "/c"] {
            log.push(entry(path));
        }
        let view = log.view();
        assert_eq!(view.dropped, 1);
        let kept: Vec<(u64, &str)> = view.requests.iter().map(|e| (e.sequence, e.path.as_str())).collect();
        assert_eq!(kept, [(2, "/b"), (3, "/c")]);
        log.clear();
        log.push(entry("/d"));
        assert_eq!(log.view().requests[0].sequence, 4);
    }

    #[test]
    fn a_zero_limit_logs_nothing() {
        let mut log = RequestLog::new(0);
        log.push(entry("/a"));
        assert!(log.view().requests.is_empty());
        assert!(!log.enabled());
    }
}
