//! Foreign-key table-table joins: a left row joins the right row its foreign key names, and
//! follows it as either changes.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::row::OwnedRow;
use datafusion::logical_expr::JoinType;

use super::{ForeignRow, Join, Joined, KeyRef, Row};
use crate::engine::plan::PlanError;

impl Join {
    /// A left table row of a foreign-key join, as Kafka Streams' foreign-key join takes it:
    /// it looks up the right row its foreign key names; without one, a left join emits it
    /// padded with nulls and an inner join retracts the earlier result if the foreign key
    /// changed. A deletion deletes the result.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn foreign_left(
        &mut self,
        primary: &ArrayRef,
        i: usize,
        foreign: &ArrayRef,
        foreign_rows: &datafusion::arrow::row::Rows,
        row: Row,
        deleted: bool,
        results: &mut Vec<Joined>,
    ) -> Result<(), PlanError> {
        if primary.is_null(i) {
            return Ok(());
        }
        let Some(converter) = &self.primary_converter else {
            return Err(PlanError::internal("a foreign-key join without its left key"));
        };
        let sliced = primary.slice(i, 1);
        let id = converter.convert_columns(std::slice::from_ref(&sliced))?.row(0).owned();
        let key = KeyRef::of(sliced);
        let fk = (!foreign.is_null(i)).then(|| foreign_rows.row(i).owned());
        let previous = if deleted {
            self.foreign_rows.remove(&id)
        } else {
            self.foreign_rows.insert(id.clone(), ForeignRow { row: row.clone(), key: key.clone(), foreign: fk.clone() })
        };
        if let Some(old) = previous.as_ref().and_then(|p| p.foreign.as_ref())
            && let Some(ids) = self.foreign_index.get_mut(old)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.foreign_index.remove(old);
            }
        }
        if deleted {
            if let Some(previous) = previous {
                results.push(Joined { left: Some(previous.row.row), right: None, key, time: row.time, deleted: true });
            }
            return Ok(());
        }
        if let Some(fk) = &fk {
            self.foreign_index.entry(fk.clone()).or_default().insert(id);
        }
        match (fk.as_ref().and_then(|f| self.tables[1].get(f)), self.step.kind) {
            (Some(right), _) => results.push(Joined {
                left: Some(row.row.clone()),
                right: Some(right.row.clone()),
                key,
                time: row.time.max(right.time),
                deleted: false,
            }),
            (None, JoinType::Left) => {
                results.push(Joined { left: Some(row.row), right: None, key, time: row.time, deleted: false })
            }
            (None, _) => {
                if previous.is_some_and(|p| p.foreign != fk) {
                    results.push(Joined { left: Some(row.row), right: None, key, time: row.time, deleted: true });
                }
            }
        }
        Ok(())
    }

    /// A right table row of a foreign-key join: every left row naming its key joins it
    /// again (a deletion: an inner join's results are deleted, a left join's null-padded).
    pub(super) fn foreign_right(&mut self, id: OwnedRow, row: Row, deleted: bool, results: &mut Vec<Joined>) {
        let previous =
            if deleted { self.tables[1].remove(&id) } else { self.tables[1].insert(id.clone(), row.clone()) };
        if deleted && previous.is_none() {
            return;
        }
        let Some(ids) = self.foreign_index.get(&id) else { return };
        for left in ids.iter().filter_map(|l| self.foreign_rows.get(l)) {
            let time = left.row.time.max(row.time);
            results.push(match (deleted, self.step.kind) {
                (false, _) => Joined {
                    left: Some(left.row.row.clone()),
                    right: Some(row.row.clone()),
                    key: left.key.clone(),
                    time,
                    deleted: false,
                },
                (true, JoinType::Left) => Joined {
                    left: Some(left.row.row.clone()),
                    right: None,
                    key: left.key.clone(),
                    time,
                    deleted: false,
                },
                (true, _) => {
                    Joined { left: Some(left.row.row.clone()), right: None, key: left.key.clone(), time, deleted: true }
                }
            });
        }
    }
}
