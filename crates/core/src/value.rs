//! Values of flattened records, before and after typing for a column.

use crate::schema::ColumnType;
use crate::time::{parse_timestamp, Millis};

/// One flattened field of a record, as the API sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum FlatValue {
    /// JSON `null`.
    Null,
    /// JSON `true` / `false`.
    Bool(bool),
    /// A JSON number without fraction that fits in 64 bits.
    Int(i64),
    /// Any other JSON number.
    Float(f64),
    /// A JSON string.
    Text(String),
    /// A JSON list, kept as its JSON text.
    Json(String),
}

impl FlatValue {
    /// The narrowest column type that holds this value (`None` for null). Text is a timestamp
    /// only in a column declared as one and only when it parses.
    pub fn column_type(&self, declared_timestamp: bool) -> Option<ColumnType> {
        Some(match self {
            FlatValue::Null => return None,
            FlatValue::Bool(_) => ColumnType::Boolean,
            FlatValue::Int(_) => ColumnType::BigInt,
            FlatValue::Float(_) => ColumnType::Double,
            FlatValue::Text(text) if declared_timestamp && parse_timestamp(text).is_some() => ColumnType::Timestamp,
            FlatValue::Text(_) => ColumnType::Varchar,
            FlatValue::Json(_) => ColumnType::Json,
        })
    }

    /// This value in a column of the given type. The type must come from schema inference over
    /// this value, so the conversion never loses information.
    pub fn to_cell(&self, column_type: ColumnType) -> CellValue {
        match (self, column_type) {
            (FlatValue::Null, _) => CellValue::Null,
            (FlatValue::Bool(value), ColumnType::Boolean) => CellValue::Bool(*value),
            (FlatValue::Int(value), ColumnType::BigInt) => CellValue::Int(*value),
            (FlatValue::Int(value), ColumnType::Double) => CellValue::Float(*value as f64),
            (FlatValue::Float(value), ColumnType::Double) => CellValue::Float(*value),
            (FlatValue::Text(text), ColumnType::Timestamp) => {
                parse_timestamp(text).map_or_else(|| CellValue::Text(text.clone()), CellValue::Timestamp)
            }
            (value, _) => CellValue::Text(value.to_text()),
        }
    }

    /// As [`FlatValue::to_cell`], moving text instead of copying it.
    pub fn into_cell(self, column_type: ColumnType) -> CellValue {
        match (self, column_type) {
            (FlatValue::Text(text), ColumnType::Timestamp) => match parse_timestamp(&text) {
                Some(millis) => CellValue::Timestamp(millis),
                None => CellValue::Text(text),
            },
            (FlatValue::Text(text) | FlatValue::Json(text), _) => CellValue::Text(text),
            (value, column_type) => value.to_cell(column_type),
        }
    }

    /// The value as text, as it appears in a VARCHAR column.
    pub fn to_text(&self) -> String {
        match self {
            FlatValue::Null => String::new(),
            FlatValue::Bool(value) => value.to_string(),
            FlatValue::Int(value) => value.to_string(),
            FlatValue::Float(value) => serde_json::Number::from_f64(*value).map_or_else(|| value.to_string(), |n| n.to_string()),
            FlatValue::Text(text) | FlatValue::Json(text) => text.clone(),
        }
    }
}

/// A value typed for its destination column.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// BIGINT.
    Int(i64),
    /// DOUBLE.
    Float(f64),
    /// VARCHAR (and JSON text).
    Text(String),
    /// TIMESTAMP, UTC milliseconds.
    Timestamp(Millis),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_follows_the_column() {
        assert_eq!(FlatValue::Int(3).to_cell(ColumnType::Double), CellValue::Float(3.0));
        assert_eq!(FlatValue::Int(3).to_cell(ColumnType::Varchar), CellValue::Text("3".into()));
        assert_eq!(FlatValue::Float(2.5).to_cell(ColumnType::Varchar), CellValue::Text("2.5".into()));
        assert_eq!(FlatValue::Bool(true).to_cell(ColumnType::Varchar), CellValue::Text("true".into()));
        assert_eq!(
            FlatValue::Text("1970-01-01 00:00:01".into()).to_cell(ColumnType::Timestamp),
            CellValue::Timestamp(1000)
        );
        assert_eq!(
            FlatValue::Json("[1]".into()).to_cell(ColumnType::Json),
            CellValue::Text("[1]".into())
        );
        assert_eq!(FlatValue::Null.to_cell(ColumnType::BigInt), CellValue::Null);
    }

    #[test]
    fn into_cell_matches_to_cell() {
        let values = [
            FlatValue::Null,
            FlatValue::Bool(false),
            FlatValue::Int(-3),
            FlatValue::Float(2.5),
            FlatValue::Text("2024-01-01 00:00:00".into()),
            FlatValue::Text("soon".into()),
            FlatValue::Json("[1]".into()),
        ];
        let types = [
            ColumnType::Boolean,
            ColumnType::BigInt,
            ColumnType::Double,
            ColumnType::Timestamp,
            ColumnType::Json,
            ColumnType::Varchar,
        ];
        for value in &values {
            for column_type in types {
                assert_eq!(
                    value.clone().into_cell(column_type),
                    value.to_cell(column_type),
                    "{value:?} {column_type:?}"
                );
            }
        }
    }

    #[test]
    fn only_declared_parseable_text_is_a_timestamp() {
        let text = FlatValue::Text("2024-01-01 00:00:00".into());
        assert_eq!(text.column_type(false), Some(ColumnType::Varchar));
        assert_eq!(text.column_type(true), Some(ColumnType::Timestamp));
        assert_eq!(FlatValue::Text("soon".into()).column_type(true), Some(ColumnType::Varchar));
    }
}
