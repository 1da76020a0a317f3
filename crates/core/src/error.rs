//! Errors of the pure core.

/// What can go wrong while turning records into history.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CoreError {
    /// A record is not a JSON object.
    #[error("record is not a JSON object; each line must be one object such as {{\"id\": 1}}")]
    NotAnObject,
    /// A record lacks its primary key.
    #[error("record has no primary key field `{field}`; add it, or name the right field with --primary-key")]
    MissingPrimaryKey {
        /// The configured primary-key field.
        field: String,
    },
    /// The primary key is not a string or an integer.
    #[error("primary key `{field}` must be a string or an integer, found {found}")]
    BadPrimaryKey {
        /// The configured primary-key field.
        field: String,
        /// What the record had instead.
        found: String,
    },
    /// Two source fields map to the same column name.
    #[error("two fields of one record both become column `{column}`; rename one upstream or keep names as they are")]
    ColumnCollision {
        /// The column both fields map to.
        column: String,
    },
    /// A record field would shadow a history metadata column.
    #[error("field `{column}` collides with the history column of the same name; choose another history profile prefix")]
    ReservedColumn {
        /// The offending column.
        column: String,
    },
}
