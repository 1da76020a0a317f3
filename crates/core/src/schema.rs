//! Column types, their widening, and the schema changes a batch needs.

use std::collections::{HashMap, HashSet};

use crate::flatten::FlatRecord;

/// The type of a record column in a history table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// TRUE / FALSE.
    Boolean,
    /// 64-bit integer.
    BigInt,
    /// 64-bit float.
    Double,
    /// UTC timestamp with millisecond precision (declared timestamp fields only).
    Timestamp,
    /// JSON text of a list.
    Json,
    /// Text: the widest type, which every value fits.
    Varchar,
}

impl ColumnType {
    /// The narrowest type that holds values of both types: BIGINT widens to DOUBLE, and any
    /// other mix widens to VARCHAR, so no value is ever lost.
    pub fn widen(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (BigInt, Double) | (Double, BigInt) => Double,
            _ => Varchar,
        }
    }

    /// A stable lowercase name, used in logs and in the state store.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Boolean => "boolean",
            ColumnType::BigInt => "bigint",
            ColumnType::Double => "double",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Json => "json",
            ColumnType::Varchar => "varchar",
        }
    }
}

/// One record column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column name (already flattened and normalised).
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
}

/// The record columns of a history table (the history metadata columns are not listed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSchema {
    /// Columns in table order.
    pub columns: Vec<Column>,
}

/// A change a destination applies before writing a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    /// A new upstream field: add a nullable column.
    AddColumn(Column),
    /// A type conflict: widen the column.
    WidenColumn {
        /// The column.
        name: String,
        /// Its type before.
        from: ColumnType,
        /// Its type after.
        to: ColumnType,
    },
}

impl TableSchema {
    /// The position of a column.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }

    /// The type of a column.
    pub fn column_type(&self, name: &str) -> Option<ColumnType> {
        self.columns
            .iter()
            .find(|column| column.name == name)
            .map(|column| column.column_type)
    }

    /// Infers the schema that holds every record of a batch on top of this one. New columns
    /// come in the order they first appear; a column that only ever holds null is not created
    /// until a value arrives. Returns the new schema and the changes that lead to it.
    pub fn evolve<'a>(
        &self,
        records: impl IntoIterator<Item = &'a FlatRecord>,
        timestamp_columns: &HashSet<String>,
    ) -> (TableSchema, Vec<SchemaChange>) {
        let mut evolved = self.clone();
        let mut positions: HashMap<String, usize> = evolved
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| (column.name.clone(), index))
            .collect();
        let mut changes = Vec::new();
        let mut widened: HashMap<usize, ColumnType> = HashMap::new();
        for record in records {
            for (name, value) in &record.fields {
                let Some(value_type) = value.column_type(timestamp_columns.contains(name)) else {
                    continue;
                };
                match positions.get(name) {
                    Some(&index) => {
                        let column = &mut evolved.columns[index];
                        let wider = column.column_type.widen(value_type);
                        if wider != column.column_type {
                            widened.entry(index).or_insert(column.column_type);
                            column.column_type = wider;
                        }
                    }
                    None => {
                        positions.insert(name.clone(), evolved.columns.len());
                        evolved.columns.push(Column {
                            name: name.clone(),
                            column_type: value_type,
                        });
                    }
                }
            }
        }
        let existing = self.columns.len();
        let mut widened: Vec<_> = widened.into_iter().filter(|(index, _)| *index < existing).collect();
        widened.sort_by_key(|(index, _)| *index);
        for (index, from) in widened {
            let column = &evolved.columns[index];
            changes.push(SchemaChange::WidenColumn {
                name: column.name.clone(),
                from,
                to: column.column_type,
            });
        }
        for column in &evolved.columns[existing..] {
            changes.push(SchemaChange::AddColumn(column.clone()));
        }
        (evolved, changes)
    }
}

/// Most record columns one history table may have (the history metadata columns not counted):
/// a record whose new fields would take its table past it is refused alone.
pub const DEFAULT_MAX_COLUMNS: usize = 1_000;

/// A record refused because its table would pass the column cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverColumnCap {
    /// The record's position among the records given.
    pub index: usize,
    /// The columns the table would have with it.
    pub columns: usize,
}

/// The records (by position) that would take a table past `max_columns` record columns, in
/// order: each record accepted before it counts, so the table never passes the cap and the
/// other records are written. A field that holds null makes no column (as [`TableSchema::evolve`]).
pub fn over_column_cap<'a>(
    schema: &TableSchema,
    records: impl IntoIterator<Item = Option<&'a FlatRecord>>,
    max_columns: usize,
) -> Vec<OverColumnCap> {
    let mut known: HashSet<&str> = schema.columns.iter().map(|column| column.name.as_str()).collect();
    let mut refused = Vec::new();
    for (index, record) in records.into_iter().enumerate() {
        let Some(record) = record else { continue };
        let new: Vec<&str> = record
            .fields
            .iter()
            .filter(|(name, value)| value.column_type(false).is_some() && !known.contains(name.as_str()))
            .map(|(name, _)| name.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if known.len() + new.len() > max_columns {
            refused.push(OverColumnCap {
                index,
                columns: known.len() + new.len(),
            });
        } else {
            known.extend(new);
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::FlatValue;

    fn record(fields: &[(&str, FlatValue)]) -> FlatRecord {
        FlatRecord {
            fields: fields.iter().map(|(name, value)| (name.to_string(), value.clone())).collect(),
        }
    }

    #[test]
    fn widening_is_a_lattice() {
        use ColumnType::*;
        let all = [Boolean, BigInt, Double, Timestamp, Json, Varchar];
        for a in all {
            assert_eq!(a.widen(a), a);
            assert_eq!(a.widen(Varchar), Varchar);
            for b in all {
                assert_eq!(a.widen(b), b.widen(a));
                for c in all {
                    assert_eq!(a.widen(b).widen(c), a.widen(b.widen(c)));
                }
            }
        }
        assert_eq!(BigInt.widen(Double), Double);
        assert_eq!(Boolean.widen(BigInt), Varchar);
        assert_eq!(Timestamp.widen(BigInt), Varchar);
    }

    #[test]
    fn evolve_adds_and_widens() {
        let start = TableSchema {
            columns: vec![Column {
                name: "id".into(),
                column_type: ColumnType::BigInt,
            }],
        };
        let records = [
            record(&[("id", FlatValue::Int(1)), ("value", FlatValue::Int(1)), ("empty", FlatValue::Null)]),
            record(&[("id", FlatValue::Text("x".into())), ("value", FlatValue::Float(1.5))]),
        ];
        let (schema, changes) = start.evolve(&records, &HashSet::new());
        assert_eq!(schema.column_type("id"), Some(ColumnType::Varchar));
        assert_eq!(schema.column_type("value"), Some(ColumnType::Double));
        assert_eq!(schema.column_type("empty"), None);
        assert_eq!(
            changes,
            vec![
                SchemaChange::WidenColumn {
                    name: "id".into(),
                    from: ColumnType::BigInt,
                    to: ColumnType::Varchar
                },
                SchemaChange::AddColumn(Column {
                    name: "value".into(),
                    column_type: ColumnType::Double
                }),
            ]
        );
        let (again, none) = schema.evolve(&records, &HashSet::new());
        assert_eq!(again, schema);
        assert!(none.is_empty());
    }

    #[test]
    fn the_column_cap_refuses_only_the_records_over_it() {
        let base = TableSchema {
            columns: vec![Column {
                name: "id".into(),
                column_type: ColumnType::BigInt,
            }],
        };
        let wide = FlatRecord {
            fields: (0..5).map(|n| (format!("f{n}"), FlatValue::Int(n))).collect(),
        };
        let narrow = record(&[("id", FlatValue::Int(1)), ("a", FlatValue::Int(1)), ("b", FlatValue::Null)]);
        let refused = over_column_cap(&base, [Some(&narrow), Some(&wide), None, Some(&narrow)], 4);
        assert_eq!(refused, vec![OverColumnCap { index: 1, columns: 7 }]);
        assert!(over_column_cap(&base, [Some(&wide)], 6).is_empty());
    }
}
