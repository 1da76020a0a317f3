//! Parity of a history table with the upstream's current records: the active rows must be
//! exactly the upstream records, with the same content hash. Used by `syncline demo` against
//! the simulator's ground truth and by the end-to-end tests.

use std::collections::BTreeMap;

use serde_json::Value;
use syncline_core::ObservationKind;
use syncline_destinations::StoredVersion;

use crate::pipedrive::FieldNames;
use crate::reconcile::{observe, record_id};
use crate::spec::EntitySpec;
use crate::ConnectorError;

/// How the active rows of one history table differ from the upstream records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parity {
    /// Upstream records.
    pub expected: usize,
    /// Active rows in the history table.
    pub active: usize,
    /// Ids upstream without an active row.
    pub missing: Vec<String>,
    /// Ids with an active row that upstream does not have.
    pub extra: Vec<String>,
    /// Ids whose active row's hash differs from the upstream record's.
    pub differing: Vec<String>,
}

impl Parity {
    /// Mismatches of every kind.
    pub fn mismatches(&self) -> usize {
        self.missing.len() + self.extra.len() + self.differing.len()
    }
}

/// The row hash each upstream record would have as an observation (`id -> hash`), custom
/// fields renamed as the connector renames them.
pub fn expected_hashes(
    spec: &EntitySpec,
    records: Vec<Value>,
    names: Option<&FieldNames>,
) -> Result<BTreeMap<String, String>, ConnectorError> {
    let mut expected = BTreeMap::new();
    for mut record in records {
        if let Some(names) = names {
            names.rename(&mut record);
        }
        let Some(id) = record_id(&record, spec.id_field) else { continue };
        if let ObservationKind::Upsert { row_hash, .. } = observe(spec, record, 0)?.observation.kind {
            expected.insert(id, row_hash);
        }
    }
    Ok(expected)
}

/// Compares the expected `id -> hash` with a table's versions.
pub fn compare_active(expected: &BTreeMap<String, String>, versions: &[StoredVersion]) -> Parity {
    let actual: BTreeMap<&str, &str> = versions
        .iter()
        .filter(|version| version.active)
        .map(|version| (version.id.as_str(), version.row_hash.as_str()))
        .collect();
    Parity {
        expected: expected.len(),
        active: actual.len(),
        missing: expected.keys().filter(|id| !actual.contains_key(id.as_str())).cloned().collect(),
        extra: actual
            .keys()
            .filter(|id| !expected.contains_key(**id))
            .map(|id| id.to_string())
            .collect(),
        differing: expected
            .iter()
            .filter(|(id, hash)| actual.get(id.as_str()).is_some_and(|actual| actual != hash))
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, hash: &str, active: bool) -> StoredVersion {
        StoredVersion {
            id: id.into(),
            start: 0,
            end: None,
            active,
            row_hash: hash.into(),
        }
    }

    #[test]
    fn finds_missing_extra_and_differing_ids() {
        let expected: BTreeMap<String, String> = [("1", "a"), ("2", "b"), ("3", "c")]
            .into_iter()
            .map(|(id, hash)| (id.to_string(), hash.to_string()))
            .collect();
        let versions = vec![
            version("1", "a", true),
            version("2", "old", false),
            version("2", "x", true),
            version("4", "d", true),
        ];
        let parity = compare_active(&expected, &versions);
        assert_eq!(parity.missing, vec!["3"]);
        assert_eq!(parity.extra, vec!["4"]);
        assert_eq!(parity.differing, vec!["2"]);
        assert_eq!((parity.expected, parity.active, parity.mismatches()), (3, 3, 3));
    }
}
