//! History profiles: the names and semantics of the history metadata columns.

use crate::time::{Millis, FAR_FUTURE};

/// The built-in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileKind {
    /// `_fivetran_start/_end/_active/_synced`, current versions end at `9999-12-31 23:59:59`.
    #[default]
    Fivetran,
    /// `_cdc_start/_end/_active/_synced`, current versions end at NULL.
    Cdc,
}

/// What the start column of a version means (`[history] start`, `syncline load --start`).
///
/// The setting is stored with the table when syncline first writes it; a table keeps its
/// setting for its whole life (see `docs/history-tables.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartSetting {
    /// The record's modified time in the source (Fivetran's definition): as-of queries match
    /// the source's timeline, but a version written late starts before rows already written.
    /// The default: it is what a table written by the old connector holds, and a replay after
    /// a crash plans the very same rows (see `docs/history-tables.md`).
    #[default]
    Source,
    /// The time syncline wrote the version, strictly increasing per table: an incremental
    /// model that reads `start > max(start)` sees every version, late ones included.
    Observed,
}

impl StartSetting {
    /// The setting's name as written in configuration and stored with the table.
    pub fn as_str(self) -> &'static str {
        match self {
            StartSetting::Observed => "observed",
            StartSetting::Source => "source",
        }
    }

    /// Parses `observed` or `source`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "observed" => Some(StartSetting::Observed),
            "source" => Some(StartSetting::Source),
            _ => None,
        }
    }
}

impl std::fmt::Display for StartSetting {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Column names, the open end and the start setting of one history profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryProfile {
    /// When the version became current.
    pub start_column: String,
    /// When it stopped being current.
    pub end_column: String,
    /// TRUE for the current version only.
    pub active_column: String,
    /// When syncline wrote the row.
    pub synced_column: String,
    /// The row hash.
    pub hash_column: String,
    /// The end of a current version: a far-future timestamp, or `None` for NULL.
    pub open_end: Option<Millis>,
    /// What the start column means. `None` leaves it to the table: the setting stored with
    /// it, or [`StartSetting::default`] for a new table.
    pub start: Option<StartSetting>,
}

impl HistoryProfile {
    /// The profile of a built-in kind.
    pub fn of(kind: ProfileKind) -> Self {
        match kind {
            ProfileKind::Fivetran => Self::with_prefix("_fivetran_", Some(FAR_FUTURE)),
            ProfileKind::Cdc => Self::with_prefix("_cdc_", None),
        }
    }

    /// A profile with a custom prefix (`{prefix}start`, ...) and open end. The hash column is
    /// `_row_hash` in every profile.
    pub fn with_prefix(prefix: &str, open_end: Option<Millis>) -> Self {
        Self {
            start_column: format!("{prefix}start"),
            end_column: format!("{prefix}end"),
            active_column: format!("{prefix}active"),
            synced_column: format!("{prefix}synced"),
            hash_column: "_row_hash".to_string(),
            open_end,
            start: None,
        }
    }

    /// The same profile with an explicit start setting.
    pub fn with_start(mut self, start: StartSetting) -> Self {
        self.start = Some(start);
        self
    }

    /// The metadata columns in table order: start, end, active, synced, hash.
    pub fn metadata_columns(&self) -> [&str; 5] {
        [
            &self.start_column,
            &self.end_column,
            &self.active_column,
            &self.synced_column,
            &self.hash_column,
        ]
    }

    /// The stored end of a version: its end, or the open end when it is current.
    pub fn stored_end(&self, end: Option<Millis>) -> Option<Millis> {
        end.or(self.open_end)
    }
}

impl Default for HistoryProfile {
    fn default() -> Self {
        Self::of(ProfileKind::Fivetran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles() {
        let fivetran = HistoryProfile::of(ProfileKind::Fivetran);
        assert_eq!(
            fivetran.metadata_columns(),
            [
                "_fivetran_start",
                "_fivetran_end",
                "_fivetran_active",
                "_fivetran_synced",
                "_row_hash"
            ]
        );
        assert_eq!(fivetran.stored_end(None), Some(FAR_FUTURE));
        let cdc = HistoryProfile::of(ProfileKind::Cdc);
        assert_eq!(cdc.start_column, "_cdc_start");
        assert_eq!(cdc.stored_end(None), None);
        assert_eq!(cdc.stored_end(Some(5)), Some(5));
    }
}
