//! A queued run's checkpoints in `ndf_checkpoints`: each completed stage's
//! output, stored with the run's progress in one transaction.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use sqlx::PgPool;
use sqlx::Row as _;

use super::durable::StageCodec;
use super::queue_error;
use crate::error::Error;
use crate::exec::Checkpoints;

/// The checkpoints of one run: those stored before it was (re)started, and
/// where new ones go.
pub(super) struct Stored {
    pool: PgPool,
    run: String,
    codec: StageCodec,
    /// The outputs of stages 0, 1, … as stored, up to the first gap.
    restored: Vec<serde_json::Value>,
}

impl Stored {
    /// The checkpoints stored for `run`.
    pub(super) async fn load(pool: &PgPool, run: &str, codec: StageCodec) -> Result<Self, Error> {
        let read = |e| queue_error("reading the run's checkpoints", e);
        let rows =
            sqlx::query("SELECT stage, output FROM ndf_checkpoints WHERE run = $1 ORDER BY stage")
                .bind(run)
                .fetch_all(pool)
                .await
                .map_err(read)?;
        let mut restored = Vec::with_capacity(rows.len());
        for row in rows {
            let stage: i32 = row.try_get("stage").map_err(read)?;
            if usize::try_from(stage).ok() != Some(restored.len()) {
                break;
            }
            restored.push(row.try_get("output").map_err(read)?);
        }
        Ok(Self {
            pool: pool.clone(),
            run: run.to_owned(),
            codec,
            restored,
        })
    }
}

impl Checkpoints for Stored {
    fn resume_at(&self) -> usize {
        self.restored.len()
    }

    fn restored(&self, stage: usize) -> Result<Box<dyn Any + Send>, String> {
        let value = self
            .restored
            .get(stage)
            .cloned()
            .ok_or_else(|| "it is missing".to_owned())?;
        (self.codec.decode)(stage, value)
            .unwrap_or_else(|| Err(format!("the workflow has no stage {stage}")))
    }

    fn encode(&self, stage: usize, output: &dyn Any) -> Result<serde_json::Value, String> {
        (self.codec.encode)(stage, output)
            .unwrap_or_else(|| Err(format!("the workflow has no stage {stage}")))
    }

    fn save(
        &self,
        stage: usize,
        output: serde_json::Value,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + '_>> {
        Box::pin(async move {
            let stage = i32::try_from(stage).unwrap_or(i32::MAX);
            let store = async {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO ndf_checkpoints (run, stage, output) VALUES ($1, $2, $3)
                     ON CONFLICT (run, stage) DO UPDATE SET output = EXCLUDED.output, at = now()",
                )
                .bind(&self.run)
                .bind(stage)
                .bind(&output)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE ndf_queued_runs SET stages_done = $2 WHERE id = $1")
                    .bind(&self.run)
                    .bind(stage + 1)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            };
            store
                .await
                .map_err(|e| queue_error(&format!("storing the checkpoint of stage {stage}"), e))
        })
    }
}
