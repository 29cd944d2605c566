//! A physical optimizer rule for `build-users`: aggregate each group in one
//! phase, after shuffling the input rows by group key, instead of
//! aggregating each partition, shuffling the partial states and merging them.
//!
//! The collapse groups millions of rows into nearly as many users, so the
//! partial phase reduces nothing (DataFusion then skips it and converts each
//! row to a state), while the states of twenty `latest` aggregates each carry
//! their own copy of the row's order key: the shuffle moved and held several
//! times the input. Shuffling the rows moves each column once.
//!
//! The rows go into more partitions than the session's: see
//! [`OnePhaseAggregate::partitions`].

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_expr::Partitioning;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;

#[derive(Debug)]
pub struct OnePhaseAggregate {
    /// The groups' partitions, each aggregated by a task of its own. With
    /// nearly as many groups as rows, smaller partitions than one per
    /// thread keep each one's hash table and records closer to the caches,
    /// and one partition emitting its groups overlaps the others still
    /// aggregating (see `session.rs`).
    pub partitions: usize,
}

impl PhysicalOptimizerRule for OnePhaseAggregate {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match one_phase(&node, self.partitions)? {
                Some(rewritten) => Transformed::yes(rewritten),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "one_phase_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `FinalPartitioned(Repartition(Hash(keys), Partial(input)))` becomes
/// `SinglePartitioned(Repartition(Hash(key expressions), input))`.
fn one_phase(node: &Arc<dyn ExecutionPlan>, partitions: usize) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
    let Some(shuffle) = last.input().downcast_ref::<RepartitionExec>() else { return Ok(None) };
    let Some(first) = shuffle.input().downcast_ref::<AggregateExec>() else { return Ok(None) };
    let Partitioning::Hash(hashed, _) = shuffle.partitioning() else { return Ok(None) };
    let grouping = first.group_expr();
    let hashes_groups = hashed.len() == grouping.expr().len()
        && hashed
            .iter()
            .enumerate()
            .all(|(i, expr)| expr.downcast_ref::<Column>().is_some_and(|column| column.index() == i));
    // An aggregate with ORDER BY may have been told its input arrives in
    // that order, which a shuffle of the rows would not keep.
    let ordered = first.aggr_expr().iter().any(|e| !e.order_bys().is_empty());
    if !hashes_groups
        || ordered
        || *last.mode() != AggregateMode::FinalPartitioned
        || *first.mode() != AggregateMode::Partial
        || shuffle.preserve_order()
        || !grouping.is_single()
        || grouping.expr().is_empty()
    {
        return Ok(None);
    }
    // The shuffle hashed the partial output's group columns, in order: the
    // values of the group expressions over the input.
    let keys = grouping.expr().iter().map(|(expr, _)| Arc::clone(expr)).collect();
    let rows = RepartitionExec::try_new(Arc::clone(first.input()), Partitioning::Hash(keys, partitions))?;
    let single = AggregateExec::try_new(
        AggregateMode::SinglePartitioned,
        Arc::new(grouping.clone()),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        Arc::new(rows),
        first.input_schema(),
    )?;
    if single.schema() != node.schema() {
        return Ok(None);
    }
    Ok(Some(Arc::new(single)))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    async fn run(one_phase: bool) -> (String, String) {
        let config = SessionConfig::new().with_target_partitions(3);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
        if one_phase {
            state = state.with_physical_optimizer_rule(Arc::new(OnePhaseAggregate { partitions: 5 }));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let partitions = (0..4)
            .map(|p| {
                let keys = StringArray::from_iter(
                    (0..50).map(|i| (i % 7 != 0).then(|| format!("k{}", (i * p) % 13))),
                );
                let values = Int64Array::from_iter((0..50).map(|i| (i % 5 != 0).then_some(i * 10 + p)));
                vec![
                    RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(keys), Arc::new(values)])
                        .unwrap(),
                ]
            })
            .collect();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap())).unwrap();
        let frame = ctx
            .sql("SELECT k, count(*) AS n, sum(v) AS s, max(v) FILTER (WHERE v > 100) AS m FROM t GROUP BY k ORDER BY k")
            .await
            .unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let rows = pretty_format_batches(&frame.collect().await.unwrap()).unwrap().to_string();
        (displayable(plan.as_ref()).indent(true).to_string(), rows)
    }

    #[tokio::test]
    async fn rows_are_shuffled_and_aggregated_once_with_the_same_result() {
        let (two_phase, expected) = run(false).await;
        let (one_phase, got) = run(true).await;
        assert!(two_phase.contains("mode=Partial"), "{two_phase}");
        assert!(one_phase.contains("mode=SinglePartitioned"), "{one_phase}");
        assert!(!one_phase.contains("mode=Partial"), "{one_phase}");
        // Into the rule's partitions, not the session's three.
        assert!(one_phase.contains("Hash([k@0], 5)"), "{one_phase}");
        assert_eq!(got, expected);
    }
}
